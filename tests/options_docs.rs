//! Every command line collected in docs/qemu-options.md, parsed and checked.

use std::sync::Arc;

use vm_memory::{GuestAddress, GuestMemoryMmap};
use vm_nic::devices::{ManualClock, NoIrq};
use vm_nic::network::{Guest, NetworkBuilder};
use vm_nic::options::{NetConfig, NicPeer, OptionKind, PortPeer};

fn parse(line: &str) -> NetConfig {
    NetConfig::parse_line(line).unwrap_or_else(|e| panic!("{}", e.render()))
}

fn kv(opts: &[(String, String)]) -> Vec<(&str, &str)> {
    opts.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn warnings(cfg: &NetConfig) -> Vec<&str> {
    cfg.warnings.iter().map(|w| w.message.as_str()).collect()
}

fn guest() -> Guest<GuestMemoryMmap> {
    Guest {
        memory: GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10000)]).unwrap(),
        clock: Arc::new(ManualClock::new()),
        irq: Box::new(|_, _| Box::new(NoIrq)),
    }
}

fn build_error(cfg: &NetConfig) -> vm_nic::options::OptionsError {
    match NetworkBuilder::new(cfg).guest(guest()).build() {
        Ok(_) => panic!("build of {} succeeded", cfg.line),
        Err(e) => e,
    }
}

#[test]
fn three_nics_on_two_vlans() {
    let line = "-net nic,model=pcnet -net nic,model=rtl8139,vlan=1, -net nic,model=ne2k_pci,vlan=1";
    let cfg = parse(line);
    let models: Vec<_> = cfg.nics.iter().map(|n| n.model.as_str()).collect();
    assert_eq!(models, ["pcnet", "rtl8139", "ne2k_pci"]);
    let names: Vec<_> = cfg.nics.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["pcnet.0", "rtl8139.0", "ne2k_pci.0"]);
    let macs: Vec<_> = cfg.nics.iter().map(|n| n.mac.to_string()).collect();
    assert_eq!(
        macs,
        [
            "52:54:00:12:34:56",
            "52:54:00:12:34:57",
            "52:54:00:12:34:58"
        ]
    );
    assert_eq!(cfg.nics[0].peer, NicPeer::HubPort { hub: 0, port: 0 });
    assert_eq!(cfg.nics[1].peer, NicPeer::HubPort { hub: 1, port: 0 });
    assert_eq!(cfg.nics[2].peer, NicPeer::HubPort { hub: 1, port: 1 });
    let ports: Vec<Vec<&str>> = cfg
        .hubs
        .iter()
        .map(|h| h.ports.iter().map(|p| p.name.as_str()).collect())
        .collect();
    assert_eq!(ports, [vec!["hub0port0"], vec!["hub1port0", "hub1port1"]]);
    // QEMU walks its hub list newest first.
    assert_eq!(
        warnings(&cfg),
        [
            "hub 1 is not connected to host network",
            "hub 0 is not connected to host network"
        ]
    );
    // pcnet is QEMU's, not ours: a clear error at the model's column.
    let e = build_error(&cfg);
    assert_eq!(e.column, line.find("pcnet").unwrap() + 1);
    assert!(
        e.message.contains("'pcnet'") && e.message.contains("not support yet"),
        "{e}"
    );
    assert!(e.message.contains("supported: e1000"), "{e}");
}

#[test]
fn nic_and_tap_without_scripts() {
    let cfg = parse("-net nic -net tap,ifname=tap0,script=no,downscript=no");
    assert_eq!(cfg.nics.len(), 1);
    assert_eq!(cfg.nics[0].model, "e1000");
    assert_eq!(cfg.nics[0].option, OptionKind::Net);
    assert_eq!(cfg.netdevs.len(), 1);
    let tap = &cfg.netdevs[0];
    assert_eq!(
        (tap.kind.as_str(), tap.name.as_str(), tap.hub),
        ("tap", "tap.0", Some(0))
    );
    assert_eq!(
        kv(&tap.backend_opts()),
        [("ifname", "tap0"), ("script", "no"), ("downscript", "no")]
    );
    assert_eq!(cfg.hubs[0].ports[0].peer, PortPeer::Nic(0));
    assert_eq!(cfg.hubs[0].ports[1].peer, PortPeer::Netdev(0));
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
}

#[test]
fn netdev_tap_with_virtio_device() {
    let cfg = parse(
        "-netdev tap,id=host-net0,ifname=vm1eth0,script=/etc/ifup,downscript=/etc/ifdown \
         -device virtio-net-pci,netdev=host-net0,id=host-net0,mac=0a:e8:4f:c5:6a:16,bus=pci.0,addr=0x7",
    );
    let nd = &cfg.netdevs[0];
    assert_eq!(
        (nd.kind.as_str(), nd.name.as_str(), nd.hub),
        ("tap", "host-net0", None)
    );
    assert_eq!(
        kv(&nd.backend_opts()),
        [
            ("ifname", "vm1eth0"),
            ("script", "/etc/ifup"),
            ("downscript", "/etc/ifdown")
        ]
    );
    let nic = &cfg.nics[0];
    assert_eq!(nic.option, OptionKind::Device);
    assert_eq!(nic.model, "virtio-net-pci");
    // Device ids and netdev ids are separate namespaces in QEMU.
    assert_eq!(nic.name, "host-net0");
    assert_eq!(nic.mac.to_string(), "0a:e8:4f:c5:6a:16");
    assert!(nic.mac_given);
    assert_eq!(nic.bus.as_deref(), Some("pci.0"));
    assert_eq!(nic.addr.as_deref(), Some("0x7"));
    assert!(nic.props.is_empty());
    assert_eq!(nic.peer, NicPeer::Netdev(0));
    assert!(cfg.hubs.is_empty() && cfg.warnings.is_empty());
    let e = build_error(&cfg);
    assert!(e.message.contains("'virtio-net-pci'") && e.message.contains("not support yet"));
    assert_eq!(e.option, "-device");

    // The same line with e1000 builds a real e1000 on that netdev (a stand-in backend
    // here: the real one would create vm1eth0 and run /etc/ifup).
    let line = cfg.line.replace("virtio-net-pci", "e1000");
    let cfg = parse(&line);
    let net = NetworkBuilder::new(&cfg)
        .guest(guest())
        .backend_opener(|kind, _| {
            assert_eq!(kind, "tap");
            Ok(Box::new(vm_nic::backends::memory::NullBackend::new())
                as Box<dyn vm_nic::backends::NetBackend>)
        })
        .build()
        .unwrap_or_else(|e| panic!("{}", e.render()));
    let nic = net.nic(0).unwrap();
    assert_eq!(nic.model(), "e1000");
    assert_eq!(nic.mac().to_string(), "0a:e8:4f:c5:6a:16");
    assert_eq!(nic.pci().unwrap().read(0, 4), 0x100e_8086, "8086:100e");
}

#[test]
fn explicit_mac_on_vlan_0_with_tap() {
    let cfg = parse("-net nic,vlan=0,macaddr=52:54:00:12:34:01 -net tap,vlan=0,ifname=tap0");
    assert_eq!(cfg.nics[0].mac.to_string(), "52:54:00:12:34:01");
    assert_eq!(cfg.netdevs[0].hub, Some(0));
    assert_eq!(kv(&cfg.netdevs[0].backend_opts()), [("ifname", "tap0")]);
    assert_eq!(cfg.hubs.len(), 1);
    assert_eq!(cfg.hubs[0].ports.len(), 2);
    assert!(cfg.warnings.is_empty());
}

#[test]
fn tap_alone_uses_the_default_scripts() {
    let cfg = parse("-net tap,vlan=0,ifname=tap0");
    // No script= reaches the backend, so it runs QEMU's /etc/qemu-ifup and -ifdown.
    assert_eq!(kv(&cfg.netdevs[0].backend_opts()), [("ifname", "tap0")]);
    assert!(cfg.nics.is_empty());
    assert_eq!(warnings(&cfg), ["hub 0 with no nics"]);
    assert_eq!(cfg.warnings[0].column, 6);
}

#[test]
fn virtio_with_uppercase_mac() {
    let cfg = parse("-net nic,model=virtio,macaddr=00:0B:5D:99:82:2B");
    assert_eq!(cfg.nics[0].model, "virtio");
    assert_eq!(cfg.nics[0].mac.to_string(), "00:0b:5d:99:82:2b");
    assert_eq!(warnings(&cfg), ["hub 0 is not connected to host network"]);
    let e = build_error(&cfg);
    assert!(e.message.contains("'virtio'") && e.message.contains("not support yet"));
}

#[test]
fn e1000_in_slot_8_with_user() {
    let cfg = parse("-net nic,vlan=0,macaddr=52:54:00:12:34:22,model=e1000,addr=08 -net user");
    let nic = &cfg.nics[0];
    assert_eq!(
        (nic.model.as_str(), nic.addr.as_deref()),
        ("e1000", Some("08"))
    );
    assert_eq!(nic.mac.to_string(), "52:54:00:12:34:22");
    assert_eq!(cfg.netdevs[0].name, "user.0");
    assert!(cfg.warnings.is_empty());
}

#[test]
fn tap_from_fds_with_vhost() {
    let cfg = parse("-netdev tap,fd=22,id=hostnet0,vhost=on,vhostfd=23");
    let nd = &cfg.netdevs[0];
    assert_eq!(nd.name, "hostnet0");
    assert_eq!(
        kv(&nd.backend_opts()),
        [("fd", "22"), ("vhost", "on"), ("vhostfd", "23")]
    );
    assert_eq!(warnings(&cfg), ["netdev hostnet0 has no peer"]);
}

const USER_IPV6_FWD: &str = "-netdev user,id=n0,hostfwd=tcp:[::1]:2222-[fec0::15]:22,\
                             hostfwd=tcp:[::1]:8080-[::]:80 -device e1000,netdev=n0";

#[test]
fn user_ipv6_hostfwd_in_brackets() {
    let cfg = parse(USER_IPV6_FWD);
    let nd = &cfg.netdevs[0];
    assert_eq!((nd.kind.as_str(), nd.name.as_str()), ("user", "n0"));
    assert_eq!(
        kv(&nd.backend_opts()),
        [
            ("hostfwd", "tcp:[::1]:2222-[fec0::15]:22"),
            ("hostfwd", "tcp:[::1]:8080-[::]:80")
        ]
    );
    let user = vm_nic::backends::user::UserConfig::from_opts(&nd.backend_opts())
        .unwrap_or_else(|e| panic!("{e}"));
    let fwd: Vec<(String, String)> = user
        .hostfwd
        .iter()
        .map(|f| (f.host.to_string(), f.guest.to_string()))
        .collect();
    assert_eq!(
        fwd,
        [
            ("[::1]:2222".to_string(), "[fec0::15]:22".to_string()),
            ("[::1]:8080".to_string(), "[::]:80".to_string())
        ]
    );
    // Without brackets the error says how to write it.
    let bad = parse("-netdev user,id=n0,hostfwd=tcp:::1:2222-fec0::15:22");
    let e =
        vm_nic::backends::user::UserConfig::from_opts(&bad.netdevs[0].backend_opts()).unwrap_err();
    assert_eq!(e.key.as_deref(), Some("hostfwd"));
}

#[test]
fn restricted_user_net_with_guestfwd_and_smb() {
    let line = "-netdev user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:1234-tcp:127.0.0.1:4321,smb=/srv/share -device e1000,netdev=n0";
    let cfg = parse(line);
    let opts = cfg.netdevs[0].backend_opts();
    assert_eq!(
        kv(&opts),
        [
            ("restrict", "on"),
            ("guestfwd", "tcp:10.0.2.100:1234-tcp:127.0.0.1:4321"),
            ("smb", "/srv/share")
        ]
    );
    let user = vm_nic_backends::user::UserConfig::from_opts(&opts).unwrap();
    assert!(user.restrict);
    assert_eq!(user.guestfwd[0].addr, "10.0.2.100:1234".parse().unwrap());
    assert_eq!(
        user.guestfwd[0].target,
        vm_nic_backends::user::FwdTarget::Tcp("127.0.0.1:4321".parse().unwrap())
    );
    assert_eq!(user.smb_server.to_string(), "10.0.2.4");
}

#[test]
fn the_docs_list_every_tested_line() {
    let doc = include_str!("../docs/qemu-options.md");
    for line in [
        "-net nic,model=pcnet -net nic,model=rtl8139,vlan=1, -net nic,model=ne2k_pci,vlan=1",
        "-net nic -net tap,ifname=tap0,script=no,downscript=no",
        "-netdev tap,fd=22,id=hostnet0,vhost=on,vhostfd=23",
        "-net nic,vlan=0,macaddr=52:54:00:12:34:22,model=e1000,addr=08 -net user",
        "-net nic,model=virtio,macaddr=00:0B:5D:99:82:2B",
        "-net tap,vlan=0,ifname=tap0",
        "-netdev user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:1234-tcp:127.0.0.1:4321,smb=/srv/share -device e1000,netdev=n0",
        USER_IPV6_FWD,
    ] {
        assert!(doc.contains(line), "docs/qemu-options.md lacks {line}");
    }
    // Every line in a ```sh block of the doc parses.
    let mut in_block = false;
    let mut n = 0;
    for l in doc.lines() {
        if l.starts_with("```") {
            in_block = l == "```sh";
            continue;
        }
        if in_block {
            let args = l.trim().trim_start_matches("qemu-system-x86_64").trim();
            if !args.is_empty() {
                parse(args);
                n += 1;
            }
        }
    }
    assert!(n >= 8, "only {n} command lines found");
}
