//! `vm-nic switch`: a standalone process that joins netdevs on a hub — the role
//! slirp4netns plays for containers, with any of vm-nic's backends on any port.
//!
//! `vm-nic switch -netdev tap,id=t0,ifname=tap0,script=no -netdev user,id=u0` gives the
//! network namespace holding `tap0` vm-nic's user-mode network; with `-netdev
//! socket,listen=...` (or `stream`, `dgram`, `vde`) instead of the tap, a stock QEMU guest
//! gets it.
//!
//! The semantics on top of `vm-nic run`'s (which this reuses whole: the same parser,
//! [`crate::network::NetworkBuilder`] and [`crate::runner::Runner`]): every `-netdev`
//! given joins hub 0 unless it says otherwise — a netdev that an explicit `-netdev
//! hubport,hubid=N,netdev=ID` already plugs into a hub stays there, and `-net` clients keep
//! their `vlan=`. A switch has no NICs, so QEMU's "hub N with no nics" warning is not
//! printed.

use crate::options::{NetConfig, OptionKind, OptionsError, Warning};

/// `vm-nic switch --help`.
pub const USAGE: &str = "usage: vm-nic switch -netdev TYPE,id=ID,... -netdev TYPE,id=ID,...
Joins every -netdev on hub 0 (unless a -netdev hubport,hubid=N,netdev=ID puts it on hub
N) and moves frames between them until SIGINT or SIGTERM; tap downscripts run on exit.
Options are QEMU's (-netdev, -net, -object filter-dump, -redir); NICs need a VMM and are
refused.
  e.g. vm-nic switch -netdev tap,id=t0,ifname=tap0,script=no \\
                     -netdev user,id=u0,hostfwd=tcp::2222-:22
       vm-nic switch -netdev socket,id=s0,listen=127.0.0.1:5555 -netdev user,id=u0";

/// The hub every `-netdev` without a hub of its own joins.
pub const HUB: u32 = 0;

/// Parses `vm-nic switch`'s arguments into the configuration `vm-nic run` serves: the
/// arguments as given, plus one `-netdev hubport,hubid=0,netdev=ID` for each `-netdev`
/// that no hub port or NIC takes. Errors point into the arguments as given.
pub fn config<S: AsRef<str>>(args: &[S]) -> Result<NetConfig, OptionsError> {
    let given = NetConfig::parse_args(args)?;
    let mut full: Vec<String> = args.iter().map(|a| a.as_ref().to_string()).collect();
    for (i, nd) in given.netdevs.iter().enumerate() {
        let loose = nd.option == OptionKind::Netdev
            && nd.kind != "hubport"
            && given.port_of_netdev(i).is_none()
            && given.nic_of_netdev(i).is_none();
        if loose {
            full.push("-netdev".into());
            full.push(format!(
                "hubport,id={},hubid={HUB},netdev={}",
                port_id(&given, &nd.name),
                nd.name
            ));
        }
    }
    let line = given.line.clone();
    let mut cfg = if full.len() == args.len() {
        given
    } else {
        NetConfig::parse_args(&full)?
    };
    // Errors found later (opening a backend) point into the arguments as the user wrote
    // them: the added hub ports come after them, so every column stays valid.
    cfg.line = line;
    cfg.warnings.retain(|w| !is_no_nics_warning(w));
    Ok(cfg)
}

/// `sw.ID`, or `sw.ID.N` if a netdev already has that name.
fn port_id(cfg: &NetConfig, netdev: &str) -> String {
    let base = format!("sw.{netdev}");
    let mut id = base.clone();
    let mut n = 1;
    while cfg.netdev_by_name(&id).is_some() {
        id = format!("{base}.{n}");
        n += 1;
    }
    id
}

/// QEMU's "hub N with no nics": expected of a switch.
fn is_no_nics_warning(w: &Warning) -> bool {
    w.message.starts_with("hub ") && w.message.ends_with(" with no nics")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::PortPeer;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_string).collect()
    }

    /// The names of the netdevs on hub `id`.
    fn members(cfg: &NetConfig, id: u32) -> Vec<String> {
        let hub = cfg.hubs.iter().find(|h| h.id == id).expect("hub");
        hub.ports
            .iter()
            .filter_map(|p| match p.peer {
                PortPeer::Netdev(j) => Some(cfg.netdevs[j].name.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn every_netdev_joins_hub_0() {
        let cfg = config(&args(
            "-netdev tap,id=t0,ifname=tap0,script=no -netdev user,id=u0,hostfwd=tcp::2222-:22",
        ))
        .unwrap();
        assert_eq!(cfg.hubs.len(), 1);
        assert_eq!(members(&cfg, 0), vec!["t0", "u0"]);
        assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
        assert!(cfg.nics.is_empty());
    }

    #[test]
    fn an_explicit_hubport_keeps_its_netdev_where_it_says() {
        let cfg = config(&args(
            "-netdev socket,id=s0,listen=127.0.0.1:5555 -netdev user,id=u0 \
             -netdev socket,id=s1,listen=127.0.0.1:5556 -netdev user,id=u1 \
             -netdev hubport,id=h1,hubid=1,netdev=s1 -netdev hubport,id=h2,hubid=1,netdev=u1",
        ))
        .unwrap();
        assert_eq!(members(&cfg, 0), vec!["s0", "u0"]);
        assert_eq!(members(&cfg, 1), vec!["s1", "u1"]);
    }

    #[test]
    fn legacy_net_clients_keep_their_vlan_and_port_ids_do_not_collide() {
        let cfg = config(&args(
            "-net user,vlan=3,name=a -net socket,vlan=3,name=b,listen=127.0.0.1:5555 \
             -netdev user,id=sw.d0 -netdev socket,id=d0,listen=127.0.0.1:5556",
        ))
        .unwrap();
        assert_eq!(members(&cfg, 3), vec!["a", "b"]);
        assert_eq!(members(&cfg, 0), vec!["sw.d0", "d0"]);
        let port = cfg.hubs.iter().find(|h| h.id == 0).unwrap();
        assert!(port.ports.iter().any(|p| p.name == "sw.d0.1"));
    }

    #[test]
    fn backend_errors_show_the_arguments_as_given() {
        let given = "-netdev user,id=u0,tftp=/nonexistent -netdev socket,id=s0,listen=127.0.0.1:0";
        let cfg = config(&args(given)).unwrap();
        assert_eq!(cfg.line, given, "no added hub port on the line shown");
        let e = cfg.error_at("-netdev", 20, "tftp=/nonexistent: not found");
        assert_eq!(e.line, given);
        assert!(e.render().contains("^"));
    }

    #[test]
    fn errors_point_into_the_arguments_as_given() {
        let e = config(&args("-netdev user,id=u0 -netdev bogus,id=b0")).unwrap_err();
        assert_eq!(e.line, "-netdev user,id=u0 -netdev bogus,id=b0");
        assert_eq!(e.column, 28, "{}", e.render());
    }
}
