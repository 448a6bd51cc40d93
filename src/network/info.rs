//! QEMU's `info network` text.
//!
//! QEMU prints each hub (newest first: its hub list is built by inserting at the head)
//! as `hub N` followed by ` \ PORT: PEER-LINE` for each port (newest first too), then
//! every client not on a hub in creation order: a NIC line followed by ` \ ` and its
//! backend's line, or a backend with no peer alone. A client line is
//! `NAME: index=0,type=TYPE,INFO`, followed for a filtered netdev by `filters:` and
//! `  - ID: type=filter-dump,KEY=VALUE...`.

use std::fmt::Write;

use vm_memory::GuestMemory;
use vm_nic_backends::NetBackend;

use super::Network;
use crate::options::{NicPeer, PortPeer};

impl<M: GuestMemory> Network<M> {
    /// The `info network` text, in QEMU's format.
    pub fn info_network(&self) -> String {
        let mut s = String::new();
        for plan in self.cfg.hubs.iter().rev() {
            let _ = writeln!(s, "hub {}", plan.id);
            for port in plan.ports.iter().rev() {
                let _ = write!(s, " \\ {}", port.name);
                match port.peer {
                    PortPeer::Nic(i) => {
                        s.push_str(": ");
                        self.nic_line(&mut s, i);
                    }
                    PortPeer::Netdev(j) => {
                        s.push_str(": ");
                        let b = self.links.iter().find_map(|l| {
                            (l.netdev == Some(j) && l.hub == Some(plan.id))
                                .then_some(l.backend.as_deref())
                                .flatten()
                        });
                        self.netdev_line(&mut s, j, b);
                    }
                    PortPeer::None => s.push('\n'),
                }
            }
        }
        for l in &self.links {
            if let (Some(j), None, Some(b)) = (l.netdev, &l.port, &l.backend) {
                self.netdev_line(&mut s, j, Some(&**b));
            }
        }
        for (i, nic) in self.nics.iter().enumerate() {
            match nic.spec.peer {
                NicPeer::HubPort { .. } => {}
                NicPeer::None => self.nic_line(&mut s, i),
                NicPeer::Netdev(j) => {
                    self.nic_line(&mut s, i);
                    s.push_str(" \\ ");
                    self.netdev_line(&mut s, j, Some(nic.device.backend()));
                }
            }
        }
        s
    }

    fn nic_line(&self, s: &mut String, i: usize) {
        let n = &self.nics[i];
        let _ = writeln!(
            s,
            "{}: index=0,type=nic,model={},macaddr={}",
            n.spec.name, n.spec.model, n.spec.mac
        );
    }

    fn netdev_line(&self, s: &mut String, j: usize, b: Option<&dyn NetBackend>) {
        let name = &self.cfg.netdevs[j].name;
        let (kind, info) = match b {
            Some(b) => (b.kind(), b.info()),
            None => (self.cfg.netdevs[j].kind.as_str(), String::new()),
        };
        let _ = writeln!(s, "{name}: index=0,type={kind},{info}");
        let filters: Vec<_> = self.cfg.filters.iter().filter(|f| f.netdev == j).collect();
        if !filters.is_empty() {
            s.push_str("filters:\n");
        }
        for f in filters {
            let _ = write!(s, "  - {}: type=filter-dump", f.id);
            for p in &f.opts {
                let _ = write!(s, ",{}={}", p.key, p.value);
            }
            s.push('\n');
        }
    }
}
