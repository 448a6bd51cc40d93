//! Construction of the served NIC from QEMU-style `-device MODEL,netdev=ID[,mac=..][,k=v]`
//! and `-netdev TYPE,id=ID[,k=v]` options, through the project's one option parser
//! ([`crate::options`]) and network builder ([`crate::network`]), so `vm-nic remote`
//! accepts exactly what `vm-nic run` accepts and reports errors the same way (the
//! command line with a caret under the offending column).

use std::sync::Arc;

use vm_memory::GuestMemoryMmap;
use vm_nic_devices::{Clock, IrqLine, NicDevice};

use crate::network::{Guest, NetworkBuilder};
use crate::options::NetConfig;

/// Creates the NIC described by `device` (a `-device` argument) connected to the
/// `-netdev` it names among `netdevs`, with interrupt line `irq`, clock `clock` and guest
/// memory `memory`. Placement properties QEMU's side owns (`bus`, `addr`, `id`, ...) are
/// accepted and ignored: the proxy device holds the PCI slot.
pub fn build_nic(
    device: &str,
    netdevs: &[String],
    irq: Box<dyn IrqLine>,
    clock: Arc<dyn Clock>,
    memory: GuestMemoryMmap,
) -> Result<Box<dyn NicDevice<GuestMemoryMmap>>, String> {
    let mut args = vec!["-device".to_string(), device.to_string()];
    for n in netdevs {
        args.push("-netdev".to_string());
        args.push(n.clone());
    }
    let cfg = NetConfig::parse_args(&args).map_err(|e| e.render())?;
    for w in &cfg.warnings {
        log::warn!("{}", w.message);
    }
    let mut irq = Some(irq);
    let guest = Guest {
        memory,
        clock,
        irq: Box::new(move |_, _| {
            irq.take()
                .unwrap_or_else(|| Box::new(vm_nic_devices::NoIrq))
        }),
    };
    let net = NetworkBuilder::new(&cfg)
        .guest(guest)
        .build()
        .map_err(|e| e.render())?;
    net.into_only_nic()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(
        device: &str,
        netdevs: &[&str],
    ) -> Result<Box<dyn NicDevice<GuestMemoryMmap>>, String> {
        let netdevs: Vec<String> = netdevs.iter().map(|s| s.to_string()).collect();
        let clock: Arc<dyn Clock> = Arc::new(vm_nic_devices::ManualClock::new());
        build_nic(
            device,
            &netdevs,
            Box::new(vm_nic_devices::NoIrq),
            clock,
            GuestMemoryMmap::default(),
        )
    }

    #[test]
    fn builds_with_model_props_and_placement_props() {
        let nic = build(
            "rtl8139,revision=0x10,netdev=n0,mac=52:54:00:ab:cd:ef,id=nic0,bus=pci.0,addr=0x4",
            &["user,id=n0"],
        )
        .unwrap();
        assert_eq!(nic.model(), "rtl8139");
        assert_eq!(nic.mac().to_string(), "52:54:00:ab:cd:ef");
        assert_eq!(nic.pci().unwrap().read(0x08, 1), 0x10);
        assert_eq!(nic.backend().kind(), "user");
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let e = build("e1000,netdev=n1", &["user,id=n0"]).err().unwrap();
        assert!(e.contains("n1"), "{e}");
        let e = build("e1000,mac=zz,netdev=n0", &["user,id=n0"])
            .err()
            .unwrap();
        assert!(e.contains("zz") && e.contains('^'), "{e}");
        let e = build("pcnet,netdev=n0", &["user,id=n0"]).err().unwrap();
        assert!(e.contains("does not support"), "{e}");
        let e = build("e1000,netdev=n0", &["user,id=n0", "user,id=n1"])
            .err()
            .unwrap();
        assert!(e.contains("vm-nic run"), "{e}");
    }
}
