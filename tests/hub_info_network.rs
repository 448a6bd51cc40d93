//! `info network` in QEMU's format for a mixed topology: named hub ports, a backend
//! peered with a hub port, a NIC on a netdev, a backend and a NIC with no peer.

mod runner_support;

use std::io;
use std::sync::{Arc, Mutex};

use runner_support::{factory, guest_memory, Mem};
use vm_nic::backends::opts::OptError;
use vm_nic::backends::{Counters, NetBackend};
use vm_nic::devices::{ManualClock, NoIrq};
use vm_nic::network::{Guest, NetworkBuilder};
use vm_nic::options::NetConfig;

/// A backend that only has a type and an info string.
struct Named(&'static str, String);

impl NetBackend for Named {
    fn kind(&self) -> &'static str {
        self.0
    }
    fn info(&self) -> String {
        self.1.clone()
    }
    fn send(&mut self, _frame: &[u8]) -> io::Result<()> {
        Ok(())
    }
    fn recv(&mut self, _buf: &mut [u8]) -> io::Result<Option<usize>> {
        Ok(None)
    }
    fn counters(&self) -> Counters {
        Counters::default()
    }
}

fn open(kind: &str, opts: &[(String, String)]) -> Result<Box<dyn NetBackend>, OptError> {
    let kind: &'static str = match kind {
        "user" => "user",
        "tap" => "tap",
        "socket" => "socket",
        other => return Err(OptError::whole(format!("unexpected {other}"))),
    };
    let info = opts
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    Ok(Box::new(Named(kind, info)))
}

#[test]
fn mixed_topology_prints_like_qemu() {
    let line = "-netdev socket,id=s0,listen=127.0.0.1:5555 \
                -netdev hubport,id=hp0,hubid=2,netdev=s0 -netdev hubport,id=hp1,hubid=2 \
                -device ne2k_isa,netdev=hp1,iobase=0x300,irq=9 \
                -netdev user,id=u,restrict=off -device e1000,netdev=u \
                -netdev tap,id=lonely,ifname=tap9 -device rtl8139 \
                -object filter-dump,id=f0,netdev=u,file=u.pcap,maxlen=128";
    let cfg = NetConfig::parse_line(line).unwrap();
    let warnings: Vec<_> = cfg.warnings.iter().map(|w| w.message.as_str()).collect();
    assert_eq!(
        warnings,
        ["netdev lonely has no peer", "nic rtl8139.0 has no peer"]
    );
    let net = NetworkBuilder::new(&cfg)
        .guest(Guest::<Mem> {
            memory: guest_memory(),
            clock: Arc::new(ManualClock::new()),
            irq: Box::new(|_, _| Box::new(NoIrq)),
        })
        .nic_factory(factory(Arc::new(Mutex::new(Vec::new()))))
        .backend_opener(open)
        .filter_opener(|_, inner| Ok(inner))
        .build()
        .unwrap();
    assert_eq!(
        net.info_network(),
        "hub 2\n\
         \x20\\ hp1: ne2k_isa.0: index=0,type=nic,model=ne2k_isa,macaddr=52:54:00:12:34:56\n\
         \x20\\ hp0: s0: index=0,type=socket,listen=127.0.0.1:5555\n\
         lonely: index=0,type=tap,ifname=tap9\n\
         e1000.0: index=0,type=nic,model=e1000,macaddr=52:54:00:12:34:57\n\
         \x20\\ u: index=0,type=user,restrict=off\n\
         filters:\n\
         \x20 - f0: type=filter-dump,netdev=u,file=u.pcap,maxlen=128\n\
         rtl8139.0: index=0,type=nic,model=rtl8139,macaddr=52:54:00:12:34:58\n"
    );
    assert_eq!(net.nic_index("e1000.0"), Some(1));
    assert_eq!(net.backend("lonely").unwrap().kind(), "tap");
    assert_eq!(net.backend("s0").unwrap().kind(), "socket");
    assert!(net.backend("u").is_none(), "u belongs to the e1000");
    assert_eq!(net.nic(1).unwrap().backend().kind(), "user");
}

#[test]
fn default_network_prints_like_qemu() {
    let cfg = NetConfig::parse_line("").unwrap();
    let net = NetworkBuilder::new(&cfg)
        .guest(Guest::<Mem> {
            memory: guest_memory(),
            clock: Arc::new(ManualClock::new()),
            irq: Box::new(|_, _| Box::new(NoIrq)),
        })
        .nic_factory(factory(Arc::new(Mutex::new(Vec::new()))))
        .backend_opener(|_, _| Ok(Box::new(Named("user", "net=10.0.2.0,restrict=off".into()))))
        .build()
        .unwrap();
    assert_eq!(
        net.info_network(),
        "hub 0\n \\ hub0port1: user.0: index=0,type=user,net=10.0.2.0,restrict=off\n \
         \\ hub0port0: e1000.0: index=0,type=nic,model=e1000,macaddr=52:54:00:12:34:56\n"
    );
}
