//! QEMU's old `-redir [tcp|udp]:hostport:[guestaddr]:guestport`: a `hostfwd` of the first
//! user-mode network (the default `-net nic -net user` when it is the only option).
#![cfg(feature = "user")]

use std::net::SocketAddr;

use vm_nic::backends::user::{FwdProto, UserConfig};
use vm_nic::options::NetConfig;

/// The hostfwd rules of netdev `name`, as the user network parses them.
fn forwards(cfg: &NetConfig, name: &str) -> Vec<(FwdProto, SocketAddr, SocketAddr)> {
    let i = cfg.netdev_by_name(name).expect("netdev");
    let user = UserConfig::from_opts(&cfg.netdevs[i].backend_opts()).unwrap();
    user.hostfwd
        .iter()
        .map(|f| (f.proto, f.host, f.guest))
        .collect()
}

#[test]
fn redir_goes_to_the_first_user_network() {
    let cfg = NetConfig::parse_line(
        "-netdev socket,id=s0,listen=127.0.0.1:5555 -netdev user,id=u0 -netdev user,id=u1 \
         -redir tcp:2222::22 -redir udp:5353:10.0.2.20:53 -redir 8080::80",
    )
    .unwrap();
    assert_eq!(
        forwards(&cfg, "u0"),
        vec![
            (
                FwdProto::Tcp,
                "0.0.0.0:2222".parse().unwrap(),
                "10.0.2.15:22".parse().unwrap()
            ),
            (
                FwdProto::Udp,
                "0.0.0.0:5353".parse().unwrap(),
                "10.0.2.20:53".parse().unwrap()
            ),
            (
                FwdProto::Tcp,
                "0.0.0.0:8080".parse().unwrap(),
                "10.0.2.15:80".parse().unwrap()
            ),
        ]
    );
    assert!(forwards(&cfg, "u1").is_empty());
    // -netdev is created before -net, as in QEMU.
    let cfg =
        NetConfig::parse_line("-net user,name=old -netdev user,id=new -redir tcp:1::2").unwrap();
    assert_eq!(forwards(&cfg, "new").len(), 1);
    assert!(forwards(&cfg, "old").is_empty());
}

#[test]
fn redir_alone_applies_to_the_default_network() {
    let cfg = NetConfig::parse_args(&["-redir", "tcp:2222::22"]).unwrap();
    assert!(cfg.defaulted);
    assert_eq!(forwards(&cfg, "user.0").len(), 1);
}

#[test]
fn bad_redir_is_an_error_at_its_argument() {
    for (line, why) in [
        ("-netdev user,id=u0 -redir tcp:x::22", "bad host port 'x'"),
        (
            "-netdev user,id=u0 -redir tcp:2222::0",
            "bad guest port '0'",
        ),
        (
            "-netdev user,id=u0 -redir tcp:2222:10.0.2:22",
            "bad guest address",
        ),
        (
            "-netdev user,id=u0 -redir sctp:1:2:3:4",
            "wrong number of fields",
        ),
        (
            "-netdev user,id=u0 -redir 2222:22",
            "wrong number of fields",
        ),
    ] {
        let e = NetConfig::parse_line(line).unwrap_err();
        assert_eq!(e.option, "-redir", "{line}");
        assert_eq!(e.column, line.find("-redir ").unwrap() + 8, "{line}");
        assert!(e.message.contains(why), "{line}: {e}");
    }
    let e = NetConfig::parse_line("-netdev user,id=u0 -redir").unwrap_err();
    assert!(e.message.contains("needs an argument"), "{e}");
    let line = "-netdev socket,id=s0,listen=127.0.0.1:5555 -redir tcp:2222::22";
    let e = NetConfig::parse_line(line).unwrap_err();
    assert_eq!(e.option, "-redir");
    assert_eq!(e.column, line.find("tcp:2222").unwrap() + 1);
    assert!(e.message.contains("needs a user-mode network"), "{e}");
}
