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

pub(crate) fn resolve(p: Parsed, line: String) -> Result<NetConfig, OptionsError> {
    let ctx = |kind: OptionKind| Ctx {
        line: &line,
        option: kind.as_str().to_string(),
    };
    // QEMU's creation order: -netdev, then -nic, then -net; NICs: -nic, -net nic, -device.
    let mut raw_netdevs: Vec<RawNetdev> = p.netdevs;
    let mut raw_nics: Vec<RawNic> = Vec::new();
    for (nd, nic) in p.nic_opts {
        raw_netdevs.push(nd);
        raw_nics.push(nic);
    }
    // Hub ports in creation order: -netdev hubport, then every -net entry.
    enum PortSrc {
        Hubport(usize),
        Nic(usize),
        Netdev(usize),
    }
    let mut port_srcs: Vec<PortSrc> = (0..raw_netdevs.len())
        .filter(|&i| raw_netdevs[i].spec.kind == "hubport")
        .map(PortSrc::Hubport)
        .collect();
    for e in p.net {
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
    raw_nics.extend(p.devices);

    check_duplicates(
        &ctx(OptionKind::Netdev),
        "netdev",
        raw_netdevs
            .iter()
            .filter(|n| n.spec.option != OptionKind::Net)
            .filter_map(|n| n.id.as_ref()),
    )?;
    check_duplicates(
        &ctx(OptionKind::Device),
        "device",
        raw_nics
            .iter()
            .filter(|n| n.spec.option == OptionKind::Device)
            .filter_map(|n| n.id.as_ref()),
    )?;
    check_duplicates(
        &ctx(OptionKind::Object),
        "object",
        p.filters.iter().map(|f| &f.id),
    )?;

    // Client names: the id/name given, or QEMU's TYPE.N / MODEL.N.
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut netdevs: Vec<NetdevSpec> = raw_netdevs
        .iter()
        .map(|nd| NetdevSpec {
            name: client_name(&mut seen, &nd.spec.kind, nd.id.as_ref()),
            ..nd.spec.clone()
        })
        .collect();
    seen.clear();
    let mut nics: Vec<NicSpec> = raw_nics
        .iter()
        .map(|nic| NicSpec {
            name: client_name(&mut seen, &nic.spec.model, nic.id.as_ref()),
            ..nic.spec.clone()
        })
        .collect();
    assign_default_macs(&mut nics);

    // References: each netdev has at most one user (a NIC or a hubport).
    let mut used_by: Vec<Option<String>> = raw_netdevs
        .iter()
        .map(|n| (n.spec.option == OptionKind::Net).then(|| "its hub port".to_string()))
        .collect();
    for (i, nd) in raw_netdevs.iter().enumerate() {
        if let Some((name, col)) = &nd.peer_ref {
            let c = ctx(OptionKind::Netdev);
            let j = find(&c, &netdevs, name, *col)?;
            if netdevs[j].kind == "hubport" {
                return Err(c.err(
                    *col,
                    format!("hubport '{name}' cannot be the netdev of a hubport"),
                ));
            }
            take(
                &c,
                &netdevs,
                &mut used_by,
                j,
                format!("hubport '{}'", netdevs[i].name),
                *col,
            )?;
            used_by[i] = Some(format!("netdev '{name}'"));
            netdevs[i].hubport_peer = Some(j);
        }
    }
    let mut nic_netdev: Vec<Option<usize>> = vec![None; raw_nics.len()];
    for (i, nic) in raw_nics.iter().enumerate() {
        if let RawAttach::Netdev(name, col) = &nic.attach {
            let c = ctx(nic.spec.option);
            let j = find(&c, &netdevs, name, *col)?;
            take(
                &c,
                &netdevs,
                &mut used_by,
                j,
                format!("nic '{}'", nics[i].name),
                *col,
            )?;
            nic_netdev[i] = Some(j);
        }
    }

    // Hubs and ports, in creation order.
    let mut hubs: Vec<HubPlan> = Vec::new();
    let mut port_of_hubport: HashMap<usize, (u32, usize)> = HashMap::new();
    for src in port_srcs {
        let (hub_id, name, peer, hubport) = match src {
            PortSrc::Hubport(j) => {
                let hub = netdevs[j].hub.unwrap_or(0);
                let peer = match netdevs[j].hubport_peer {
                    Some(k) => PortPeer::Netdev(k),
                    None => nic_netdev
                        .iter()
                        .position(|&x| x == Some(j))
                        .map_or(PortPeer::None, PortPeer::Nic),
                };
                (hub, Some(netdevs[j].name.clone()), peer, Some(j))
            }
            PortSrc::Nic(i) => match raw_nics[i].attach {
                RawAttach::Hub(v) => (v, None, PortPeer::Nic(i), None),
                _ => unreachable!("only hub-attached NICs get a port"),
            },
            PortSrc::Netdev(j) => (netdevs[j].hub.unwrap_or(0), None, PortPeer::Netdev(j), None),
        };
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
            nics[i].peer = NicPeer::HubPort {
                hub: hub_id,
                port: m,
            };
        }
    }
    for (i, j) in nic_netdev.iter().enumerate() {
        if let Some(j) = *j {
            nics[i].peer = match port_of_hubport.get(&j) {
                Some(&(hub, port)) => NicPeer::HubPort { hub, port },
                None => NicPeer::Netdev(j),
            };
        }
    }

    let filters = resolve_filters(&ctx(OptionKind::Object), p.filters, &netdevs)?;
    let mut cfg = NetConfig {
        line: line.clone(),
        defaulted: false,
        netdevs,
        nics,
        filters,
        hubs,
        warnings: Vec::new(),
        help: p.help,
    };
    cfg.warnings = warnings(&cfg);
    Ok(cfg)
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
