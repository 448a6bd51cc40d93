//! Turns parsed options into a configuration: QEMU's creation order, client names,
//! default MACs, id references, hub ports and QEMU's topology warnings.

use std::collections::HashMap;

use vm_nic_backends::MacAddr;

use super::grammar::{Ctx, NetEntry, Parsed, RawAttach, RawFilter, RawNetdev, RawNic};
use super::{
    FilterSpec, HubPlan, NetConfig, NetdevSpec, NicPeer, NicSpec, OptionKind, OptionsError,
    PortPeer, PortPlan, Warning,
};

/// Netdev types QEMU counts as a host connection when checking a hub
/// (`net_hub_check_clients`); `bridge` creates a tap client.
const HOST_KINDS: &[&str] = &[
    "user",
    "tap",
    "bridge",
    "socket",
    "stream",
    "dgram",
    "vde",
    "vhost-user",
];

/// Where each hub port comes from, in creation order.
enum PortSrc {
    /// `-netdev hubport` number `j` of the netdevs.
    Hubport(usize),
    /// A `-net nic` (NIC `i`).
    Nic(usize),
    /// A `-net` host client (netdev `j`).
    Netdev(usize),
}

/// The options in QEMU's creation order, being resolved.
struct Resolver<'a> {
    line: &'a str,
    raw_netdevs: Vec<RawNetdev>,
    raw_nics: Vec<RawNic>,
    port_srcs: Vec<PortSrc>,
    netdevs: Vec<NetdevSpec>,
    nics: Vec<NicSpec>,
    /// Per NIC: the netdev its `netdev=` names.
    nic_netdev: Vec<Option<usize>>,
}

pub(crate) fn resolve(mut p: Parsed, line: String) -> Result<NetConfig, OptionsError> {
    let mut r = Resolver::order(&mut p, &line);
    r.check_ids(&p.filters)?;
    r.name_clients();
    r.link_references()?;
    let hubs = r.plan_hubs();
    let filters = resolve_filters(&r.ctx(OptionKind::Object), p.filters, &r.netdevs)?;
    let mut cfg = NetConfig {
        line: line.clone(),
        defaulted: false,
        netdevs: r.netdevs,
        nics: r.nics,
        filters,
        hubs,
        warnings: Vec::new(),
        help: p.help,
    };
    cfg.warnings = warnings(&cfg);
    Ok(cfg)
}

impl<'a> Resolver<'a> {
    /// QEMU's creation order: -netdev, then -nic, then -net; NICs: -nic, -net nic,
    /// -device. Hub ports: -netdev hubport, then every -net entry.
    fn order(p: &mut Parsed, line: &'a str) -> Self {
        let mut raw_netdevs: Vec<RawNetdev> = std::mem::take(&mut p.netdevs);
        let mut raw_nics: Vec<RawNic> = Vec::new();
        for (nd, nic) in std::mem::take(&mut p.nic_opts) {
            raw_netdevs.push(nd);
            raw_nics.push(nic);
        }
        let mut port_srcs: Vec<PortSrc> = (0..raw_netdevs.len())
            .filter(|&i| raw_netdevs[i].spec.kind == "hubport")
            .map(PortSrc::Hubport)
            .collect();
        for e in std::mem::take(&mut p.net) {
            match e {
                NetEntry::Backend(nd) => {
                    port_srcs.push(PortSrc::Netdev(raw_netdevs.len()));
                    raw_netdevs.push(nd);
                }
                NetEntry::Nic(nic) => {
                    if matches!(nic.attach, RawAttach::Hub(_)) {
                        port_srcs.push(PortSrc::Nic(raw_nics.len()));
                    }
                    raw_nics.push(nic);
                }
            }
        }
        raw_nics.append(&mut p.devices);
        Resolver {
            line,
            nic_netdev: vec![None; raw_nics.len()],
            raw_netdevs,
            raw_nics,
            port_srcs,
            netdevs: Vec::new(),
            nics: Vec::new(),
        }
    }

    fn ctx(&self, kind: OptionKind) -> Ctx<'a> {
        Ctx {
            line: self.line,
            option: kind.as_str().to_string(),
        }
    }

    /// Ids are unique per QEMU namespace: netdevs (with `-nic`), devices, objects.
    fn check_ids(&self, filters: &[RawFilter]) -> Result<(), OptionsError> {
        let netdev_ids = self
            .raw_netdevs
            .iter()
            .filter(|n| n.spec.option != OptionKind::Net);
        check_duplicates(
            &self.ctx(OptionKind::Netdev),
            "netdev",
            netdev_ids.filter_map(|n| n.id.as_ref()),
        )?;
        let device_ids = self
            .raw_nics
            .iter()
            .filter(|n| n.spec.option == OptionKind::Device);
        check_duplicates(
            &self.ctx(OptionKind::Device),
            "device",
            device_ids.filter_map(|n| n.id.as_ref()),
        )?;
        check_duplicates(
            &self.ctx(OptionKind::Object),
            "object",
            filters.iter().map(|f| &f.id),
        )
    }

    /// Client names (the id/name given, or QEMU's TYPE.N / MODEL.N) and default MACs.
    fn name_clients(&mut self) {
        let mut seen: HashMap<String, usize> = HashMap::new();
        self.netdevs = self
            .raw_netdevs
            .iter()
            .map(|nd| NetdevSpec {
                name: client_name(&mut seen, &nd.spec.kind, nd.id.as_ref()),
                ..nd.spec.clone()
            })
            .collect();
        seen.clear();
        self.nics = self
            .raw_nics
            .iter()
            .map(|nic| NicSpec {
                name: client_name(&mut seen, &nic.spec.model, nic.id.as_ref()),
                ..nic.spec.clone()
            })
            .collect();
        assign_default_macs(&mut self.nics);
    }

    /// Resolves `netdev=` references; each netdev has at most one user (a NIC or a
    /// hubport), and a `-net` client already has its hub port.
    fn link_references(&mut self) -> Result<(), OptionsError> {
        let mut used_by: Vec<Option<String>> = self
            .raw_netdevs
            .iter()
            .map(|n| (n.spec.option == OptionKind::Net).then(|| "its hub port".to_string()))
            .collect();
        for i in 0..self.raw_netdevs.len() {
            let Some((name, col)) = self.raw_netdevs[i].peer_ref.clone() else {
                continue;
            };
            let c = self.ctx(OptionKind::Netdev);
            let j = find(&c, &self.netdevs, &name, col)?;
            if self.netdevs[j].kind == "hubport" {
                let msg = format!("hubport '{name}' cannot be the netdev of a hubport");
                return Err(c.err(col, msg));
            }
            let user = format!("hubport '{}'", self.netdevs[i].name);
            take(&c, &self.netdevs, &mut used_by, j, user, col)?;
            used_by[i] = Some(format!("netdev '{name}'"));
            self.netdevs[i].hubport_peer = Some(j);
        }
        for i in 0..self.raw_nics.len() {
            let RawAttach::Netdev(name, col) = &self.raw_nics[i].attach else {
                continue;
            };
            let c = self.ctx(self.raw_nics[i].spec.option);
            let j = find(&c, &self.netdevs, name, *col)?;
            let user = format!("nic '{}'", self.nics[i].name);
            take(&c, &self.netdevs, &mut used_by, j, user, *col)?;
            self.nic_netdev[i] = Some(j);
        }
        Ok(())
    }

    /// Hubs and their ports in creation order; sets each NIC's peer.
    fn plan_hubs(&mut self) -> Vec<HubPlan> {
        let mut hubs: Vec<HubPlan> = Vec::new();
        let mut port_of_hubport: HashMap<usize, (u32, usize)> = HashMap::new();
        for src in &self.port_srcs {
            let (hub_id, name, peer, hubport) = self.port_source(src);
            let h = match hubs.iter().position(|h| h.id == hub_id) {
                Some(h) => h,
                None => {
                    hubs.push(HubPlan {
                        id: hub_id,
                        ports: Vec::new(),
                    });
                    hubs.len() - 1
                }
            };
            let m = hubs[h].ports.len();
            if let Some(j) = hubport {
                port_of_hubport.insert(j, (hub_id, m));
            }
            hubs[h].ports.push(PortPlan {
                name: name.unwrap_or_else(|| format!("hub{hub_id}port{m}")),
                named: hubport.is_some(),
                peer,
            });
            if let PortPeer::Nic(i) = peer {
                self.nics[i].peer = NicPeer::HubPort {
                    hub: hub_id,
                    port: m,
                };
            }
        }
        for (i, j) in self.nic_netdev.iter().enumerate() {
            if let Some(j) = *j {
                self.nics[i].peer = match port_of_hubport.get(&j) {
                    Some(&(hub, port)) => NicPeer::HubPort { hub, port },
                    None => NicPeer::Netdev(j),
                };
            }
        }
        hubs
    }

    /// A port's hub id, explicit name, peer and (for a hubport) netdev index.
    fn port_source(&self, src: &PortSrc) -> (u32, Option<String>, PortPeer, Option<usize>) {
        match *src {
            PortSrc::Hubport(j) => {
                let nd = &self.netdevs[j];
                let peer = match nd.hubport_peer {
                    Some(k) => PortPeer::Netdev(k),
                    None => self
                        .nic_netdev
                        .iter()
                        .position(|&x| x == Some(j))
                        .map_or(PortPeer::None, PortPeer::Nic),
                };
                (nd.hub.unwrap_or(0), Some(nd.name.clone()), peer, Some(j))
            }
            PortSrc::Nic(i) => {
                let vlan = match self.raw_nics[i].attach {
                    RawAttach::Hub(v) => v,
                    _ => 0,
                };
                (vlan, None, PortPeer::Nic(i), None)
            }
            PortSrc::Netdev(j) => (
                self.netdevs[j].hub.unwrap_or(0),
                None,
                PortPeer::Netdev(j),
                None,
            ),
        }
    }
}

fn check_duplicates<'a>(
    c: &Ctx,
    what: &str,
    ids: impl Iterator<Item = &'a (String, usize)>,
) -> Result<(), OptionsError> {
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (id, col) in ids {
        if let Some(prev) = first.insert(id, *col) {
            return Err(c.err(
                *col,
                format!("duplicate ID '{id}' for {what} (first defined at column {prev})"),
            ));
        }
    }
    Ok(())
}

/// QEMU's `qemu_macaddr_default_if_unset`: a NIC without a MAC gets 52:54:00:12:34:XX
/// with the lowest XX from 0x56 not yet taken by an earlier NIC, given or defaulted.
fn assign_default_macs(nics: &mut [NicSpec]) {
    let base = MacAddr::QEMU_DEFAULT.0;
    let mut used = [false; 256];
    for nic in nics.iter_mut() {
        if nic.mac_given {
            if nic.mac.0[..5] == base[..5] {
                used[nic.mac.0[5] as usize] = true;
            }
            continue;
        }
        // QEMU's search stops below 0xff and then yields 0xff (its -1 as a byte).
        let free = (0x56..0xff).find(|&b| !used[b]).unwrap_or(0xff);
        used[free] = true;
        nic.mac = MacAddr::nth_default(free - 0x56);
    }
}

fn resolve_filters(
    c: &Ctx,
    raw: Vec<RawFilter>,
    netdevs: &[super::NetdevSpec],
) -> Result<Vec<FilterSpec>, OptionsError> {
    raw.into_iter()
        .map(|f| {
            let (name, col) = &f.netdev;
            let netdev = netdevs
                .iter()
                .position(|n| &n.name == name)
                .ok_or_else(|| {
                    c.err(
                        *col,
                        format!("filter-dump: netdev '{name}' is referenced but never defined"),
                    )
                })?;
            Ok(FilterSpec {
                column: f.column,
                id: f.id.0,
                netdev,
                opts: f.opts,
            })
        })
        .collect()
}

/// QEMU's `net_hub_check_clients` then `net_check_clients`, in QEMU's list order
/// (hubs and ports newest first).
fn warnings(cfg: &NetConfig) -> Vec<Warning> {
    let mut out = Vec::new();
    let nic_col = |i: usize| cfg.nics[i].column;
    for hub in cfg.hubs.iter().rev() {
        let (mut has_nic, mut has_host) = (false, false);
        let mut col = usize::MAX;
        for port in hub.ports.iter().rev() {
            match port.peer {
                PortPeer::None => {
                    let c = cfg
                        .netdev_by_name(&port.name)
                        .map_or(1, |j| cfg.netdevs[j].column);
                    out.push(Warning {
                        message: format!("hub port {} has no peer", port.name),
                        column: c,
                    });
                }
                PortPeer::Nic(i) => {
                    has_nic = true;
                    col = col.min(nic_col(i));
                }
                PortPeer::Netdev(j) => {
                    has_host |= HOST_KINDS.contains(&cfg.netdevs[j].kind.as_str());
                    col = col.min(cfg.netdevs[j].column);
                }
            }
        }
        let column = if col == usize::MAX { 1 } else { col };
        if has_host && !has_nic {
            out.push(Warning {
                message: format!("hub {} with no nics", hub.id),
                column,
            });
        }
        if has_nic && !has_host {
            out.push(Warning {
                message: format!("hub {} is not connected to host network", hub.id),
                column,
            });
        }
    }
    for (j, nd) in cfg.netdevs.iter().enumerate() {
        let peered = if nd.kind == "hubport" {
            cfg.hubs
                .iter()
                .flat_map(|h| &h.ports)
                .any(|p| p.named && p.name == nd.name && p.peer != PortPeer::None)
        } else {
            nd.option == OptionKind::Net
                || cfg.nic_of_netdev(j).is_some()
                || cfg.port_of_netdev(j).is_some()
                || cfg
                    .nics
                    .iter()
                    .any(|n| matches!(n.peer, NicPeer::Netdev(k) if k == j))
        };
        if !peered {
            out.push(Warning {
                message: format!("netdev {} has no peer", nd.name),
                column: nd.column,
            });
        }
    }
    for nic in &cfg.nics {
        if nic.peer == NicPeer::None {
            out.push(Warning {
                message: format!("nic {} has no peer", nic.name),
                column: nic.column,
            });
        }
    }
    out
}

/// The netdev named `name`, or an error listing the defined ones.
fn find(c: &Ctx, netdevs: &[NetdevSpec], name: &str, col: usize) -> Result<usize, OptionsError> {
    netdevs.iter().position(|n| n.name == name).ok_or_else(|| {
        let defined: Vec<&str> = netdevs
            .iter()
            .filter(|n| n.option != OptionKind::Net)
            .map(|n| n.name.as_str())
            .collect();
        let hint = if defined.is_empty() {
            "no -netdev is defined".to_string()
        } else {
            format!("defined: {}", defined.join(", "))
        };
        c.err(
            col,
            format!("netdev '{name}' is referenced but never defined; {hint}"),
        )
    })
}

/// Records that netdev `j` is used by `user`; a second user is an error.
fn take(
    c: &Ctx,
    netdevs: &[NetdevSpec],
    used_by: &mut [Option<String>],
    j: usize,
    user: String,
    col: usize,
) -> Result<(), OptionsError> {
    if let Some(prev) = &used_by[j] {
        return Err(c.err(
            col,
            format!("netdev '{}' is already in use by {prev}", netdevs[j].name),
        ));
    }
    used_by[j] = Some(user);
    Ok(())
}

/// QEMU's `assign_name`: the id given, else `MODEL.N` with N counting earlier clients of
/// the same model (named ones included).
fn client_name(
    seen: &mut HashMap<String, usize>,
    model: &str,
    id: Option<&(String, usize)>,
) -> String {
    let n = seen.entry(model.to_string()).or_default();
    let name = match id {
        Some((id, _)) => id.clone(),
        None => format!("{model}.{n}"),
    };
    *n += 1;
    name
}
