//! Interim construction of the served NIC from `-device MODEL,netdev=ID[,mac=..][,k=v]`
//! and `-netdev TYPE,id=ID[,k=v]`.
//!
//! Kept small and isolated on purpose: the project's shared QEMU option parser
//! (`vm_nic::options` / `vm_nic::network`) replaces [`build_nic`] once it lands. Only what
//! `vm-nic remote` needs is understood: one `-device`, the `-netdev` it names, QEMU's `,,`
//! escape for a comma inside a value.

use std::sync::Arc;

use vm_memory::GuestMemoryMmap;
use vm_nic_backends::memory::NullBackend;
use vm_nic_backends::{MacAddr, NetBackend, OptError};
use vm_nic_devices::{models, Clock, IrqLine, NicConfig, NicDevice};

/// `-device` properties that describe placement on QEMU's side, not the model: accepted
/// and ignored (the proxy device owns the PCI slot).
const PLACEMENT_PROPS: &[&str] = &[
    "id",
    "bus",
    "addr",
    "multifunction",
    "romfile",
    "rombar",
    "bootindex",
];

/// Splits `a,b=c,,d` into `["a", "b=c,d"]` (QEMU's `,,` escapes a comma).
pub fn split_opts(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ',' if chars.peek() == Some(&',') => {
                chars.next();
                cur.push(',');
            }
            ',' => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Parses `NAME,k=v,...` into the leading name and the key/value pairs (a bare `k` means
/// `k=on`, as in QEMU). A leading `driver=`/`type=` may name it instead.
fn name_and_pairs(s: &str, name_key: &str) -> Result<(String, Vec<(String, String)>), String> {
    let mut parts = split_opts(s).into_iter();
    let first = parts.next().unwrap_or_default();
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut name = None;
    if first.contains('=') {
        parts = std::iter::once(first)
            .chain(parts)
            .collect::<Vec<_>>()
            .into_iter();
    } else if !first.is_empty() {
        name = Some(first);
    }
    for p in parts {
        let (k, v) = match p.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (p.clone(), "on".to_string()),
        };
        if k.is_empty() {
            return Err(format!("empty option name in '{s}'"));
        }
        if k == name_key && name.is_none() {
            name = Some(v);
        } else {
            pairs.push((k, v));
        }
    }
    let name = name.ok_or_else(|| format!("'{s}' does not name a {name_key}"))?;
    Ok((name, pairs))
}

fn take(pairs: &mut Vec<(String, String)>, key: &str) -> Option<String> {
    let mut found = None;
    pairs.retain(|(k, v)| {
        if k == key {
            found = Some(v.clone());
            false
        } else {
            true
        }
    });
    found
}

/// Opens a `-netdev TYPE,...` backend (the options after the type, without `id`) through
/// the crate's one backend dispatch, [`crate::network::open_backend`].
pub fn open_backend(
    kind: &str,
    opts: &[(String, String)],
) -> Result<Box<dyn NetBackend>, OptError> {
    crate::network::open_backend(kind, opts)
}

/// Creates the NIC described by `device` (a `-device` argument) connected to the
/// `-netdev` it names among `netdevs`, with interrupt line `irq`, clock `clock` and guest
/// memory `memory`.
pub fn build_nic(
    device: &str,
    netdevs: &[String],
    irq: Box<dyn IrqLine>,
    clock: Arc<dyn Clock>,
    memory: GuestMemoryMmap,
) -> Result<Box<dyn NicDevice<GuestMemoryMmap>>, String> {
    let (model, mut props) =
        name_and_pairs(device, "driver").map_err(|e| format!("-device {e}"))?;
    let netdev_id = take(&mut props, "netdev");
    let mac = match take(&mut props, "mac") {
        Some(m) => m
            .parse::<MacAddr>()
            .map_err(|e| format!("-device {model}: mac={m}: {e}"))?,
        None => MacAddr::QEMU_DEFAULT,
    };
    for p in PLACEMENT_PROPS {
        if let Some(v) = take(&mut props, p) {
            log::debug!("-device {model}: {p}={v} ignored (the proxy device owns the slot)");
        }
    }
    let backend: Box<dyn NetBackend> = match netdev_id {
        None => {
            log::warn!("-device {model} has no netdev: the NIC is not connected to a network");
            Box::new(NullBackend::new())
        }
        Some(id) => {
            let (kind, mut opts) = netdevs
                .iter()
                .map(|n| name_and_pairs(n, "type"))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("-netdev {e}"))?
                .into_iter()
                .find(|(_, opts)| opts.iter().any(|(k, v)| k == "id" && *v == id))
                .ok_or_else(|| format!("-device {model}: no -netdev with id={id}"))?;
            take(&mut opts, "id");
            open_backend(&kind, &opts).map_err(|e| format!("-netdev {kind},id={id}: {e}"))?
        }
    };
    let cfg = NicConfig {
        mac,
        backend,
        irq,
        clock,
        memory,
    };
    models::create(&model, &props, cfg).map_err(|e| format!("-device {model}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn splits_like_qemu() {
        assert_eq!(split_opts("a,b=c,,d,e"), vec!["a", "b=c,d", "e"]);
        assert_eq!(
            name_and_pairs("e1000,netdev=n0,mac=52:54:00:00:00:01", "driver").unwrap(),
            (
                "e1000".to_string(),
                pairs(&[("netdev", "n0"), ("mac", "52:54:00:00:00:01")])
            )
        );
        assert_eq!(
            name_and_pairs("driver=rtl8139,revision=0x10", "driver").unwrap(),
            ("rtl8139".to_string(), pairs(&[("revision", "0x10")]))
        );
        assert_eq!(
            name_and_pairs("user,id=n0,restrict", "type").unwrap().1,
            pairs(&[("id", "n0"), ("restrict", "on")])
        );
        assert!(name_and_pairs("netdev=n0", "driver").is_err());
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let mem = GuestMemoryMmap::default();
        let clock: Arc<dyn Clock> = Arc::new(vm_nic_devices::ManualClock::new());
        let e = build_nic(
            "e1000,netdev=n1",
            &["user,id=n0".to_string()],
            Box::new(vm_nic_devices::NoIrq),
            clock.clone(),
            mem.clone(),
        )
        .err()
        .unwrap();
        assert!(e.contains("no -netdev with id=n1"), "{e}");
        let e = build_nic(
            "e1000,mac=zz",
            &[],
            Box::new(vm_nic_devices::NoIrq),
            clock.clone(),
            mem.clone(),
        )
        .err()
        .unwrap();
        assert!(e.contains("mac=zz"), "{e}");
        let e = build_nic("pcnet", &[], Box::new(vm_nic_devices::NoIrq), clock, mem)
            .err()
            .unwrap();
        assert!(e.contains("does not support"), "{e}");
    }
}
