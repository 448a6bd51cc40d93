//! Errors and warnings: located at a column, never a panic.

use vm_nic::backends::memory::NullBackend;
use vm_nic::backends::opts::check_keys;
use vm_nic::backends::NetBackend;
use vm_nic::network::NetworkBuilder;
use vm_nic::options::{model_help, NetConfig, OptionsError};

fn err_line(line: &str) -> OptionsError {
    match NetConfig::parse_line(line) {
        Ok(c) => panic!("{line} parsed: {c:?}"),
        Err(e) => e,
    }
}

fn col_of(line: &str, needle: &str) -> usize {
    line.find(needle).expect("needle") + 1
}

#[test]
fn space_after_comma_in_argv() {
    let e = NetConfig::parse_args(&["-net", "tap,ifname=tap0,", "script=no"]).unwrap_err();
    assert_eq!(e.line, "-net tap,ifname=tap0, script=no");
    assert_eq!(e.column, 22);
    assert_eq!(e.option, "-net");
    assert!(
        e.message
            .contains("whitespace is not allowed between parameters"),
        "{e}"
    );
    assert!(e.message.contains("tap,ifname=tap0,script=no"), "{e}");
    let r = e.render();
    assert!(r.contains("\n                     ^\n"), "{r}");
}

#[test]
fn space_after_comma_in_one_line_and_quoted() {
    let line = "-net tap,ifname=tap0, script=no";
    let e = err_line(line);
    assert_eq!(e.column, 22);
    assert!(e
        .message
        .contains("whitespace is not allowed between parameters"));
    let quoted = "-net 'tap,ifname=tap0, script=no'";
    let e = err_line(quoted);
    assert_eq!(e.column, col_of(quoted, " script"));
    assert!(e
        .message
        .contains("whitespace is not allowed between parameters"));
}

#[test]
fn space_before_comma_and_after_equals() {
    let e = NetConfig::parse_args(&["-net", "tap,ifname=tap0", ",script=no"]).unwrap_err();
    assert_eq!(e.column, 21);
    assert!(e.message.contains("whitespace"));
    let e = NetConfig::parse_args(&["-net", "tap,ifname=", "tap0"]).unwrap_err();
    assert_eq!(e.column, 17);
    assert!(e.message.contains("whitespace"));
}

#[test]
fn stray_words_and_foreign_options() {
    let e = err_line("-net nic disk.img");
    assert_eq!(e.column, 10);
    assert!(e.message.contains("unexpected argument 'disk.img'"));
    let e = err_line("-m 512");
    assert_eq!(e.column, 1);
    assert!(e.message.contains("not a networking option"));
    let e = err_line("-net nic -netdev");
    assert_eq!(e.column, 10);
    assert!(e.message.contains("needs an argument"));
}

#[test]
fn unknown_key_lists_valid_keys() {
    let line = "-net nic,modle=e1000";
    let e = err_line(line);
    assert_eq!(e.column, col_of(line, "modle"));
    assert!(
        e.message
            .contains("'modle' is not a valid parameter for 'nic'"),
        "{e}"
    );
    assert!(e
        .message
        .contains("valid: vlan, netdev, macaddr, model, name, addr, vectors"));
    let line = "-netdev hubport,id=h,hubid=0,vlan=1";
    assert_eq!(err_line(line).column, col_of(line, "vlan"));
}

#[test]
fn unknown_type_lists_valid_types() {
    let line = "-netdev tapp,id=x";
    let e = err_line(line);
    assert_eq!(e.column, 9);
    assert!(
        e.message
            .contains("'tapp' is not a valid -netdev type; valid: user, tap"),
        "{e}"
    );
}

#[test]
fn backend_key_error_points_at_the_key() {
    let line = "-netdev user,id=u,restrict=on,hostfwdd=tcp::1-:2";
    let cfg = NetConfig::parse_line(line).unwrap();
    let e = match NetworkBuilder::<vm_memory::GuestMemoryMmap>::new(&cfg)
        .backend_opener(|kind, opts| {
            check_keys(kind, opts, &["restrict", "hostfwd"])?;
            Ok(Box::new(NullBackend::new()) as Box<dyn NetBackend>)
        })
        .build()
    {
        Ok(_) => panic!("built"),
        Err(e) => e,
    };
    assert_eq!(e.column, col_of(line, "hostfwdd"));
    assert_eq!(e.option, "-netdev");
    assert!(e.message.contains("valid: restrict, hostfwd"), "{e}");
}

#[test]
fn backend_not_in_this_build() {
    let line = "-netdev l2tpv3,id=l,src=127.0.0.1";
    let cfg = NetConfig::parse_line(line).unwrap();
    let e = match NetworkBuilder::<vm_memory::GuestMemoryMmap>::new(&cfg).build() {
        Ok(_) => panic!("built"),
        Err(e) => e,
    };
    assert!(
        e.message
            .contains("backend l2tpv3 is not available in this build"),
        "{e}"
    );
    assert_eq!(e.column, 9);
}

#[test]
fn duplicate_ids() {
    let line = "-netdev user,id=a -netdev socket,id=a,listen=:1";
    let e = err_line(line);
    assert_eq!(e.column, line.rfind("id=a").unwrap() + 4);
    assert!(
        e.message
            .contains("duplicate ID 'a' for netdev (first defined at column 17)"),
        "{e}"
    );
    let line = "-netdev user,id=a -device e1000,netdev=a,id=d -device rtl8139,id=d";
    assert!(err_line(line)
        .message
        .contains("duplicate ID 'd' for device"));
    // -nic ids live with the netdevs.
    assert!(err_line("-netdev user,id=a -nic user,id=a")
        .message
        .contains("duplicate ID 'a'"));
}

#[test]
fn undefined_and_reused_netdevs() {
    let line = "-netdev user,id=u -device e1000,netdev=nope";
    let e = err_line(line);
    assert_eq!(e.column, col_of(line, "nope"));
    assert!(e
        .message
        .contains("netdev 'nope' is referenced but never defined; defined: u"));
    let e = err_line("-device e1000,netdev=x");
    assert!(e.message.contains("no -netdev is defined"), "{e}");
    let line = "-netdev user,id=u -device e1000,netdev=u -device rtl8139,netdev=u";
    let e = err_line(line);
    assert_eq!(e.column, line.rfind("=u").unwrap() + 2);
    assert!(e.message.contains("already in use by nic 'e1000.0'"), "{e}");
    let e =
        err_line("-netdev user,id=u -netdev hubport,id=h,hubid=0,netdev=u -device e1000,netdev=u");
    assert!(e.message.contains("already in use by hubport 'h'"), "{e}");
    let e = err_line("-object filter-dump,id=f,netdev=zz,file=x");
    assert!(e
        .message
        .contains("netdev 'zz' is referenced but never defined"));
}

#[test]
fn missing_required_parameters() {
    assert!(err_line("-netdev user")
        .message
        .contains("parameter 'id' is missing"));
    assert!(err_line("-netdev hubport,id=h")
        .message
        .contains("'hubid' is missing"));
    assert!(err_line("-object filter-dump,netdev=n")
        .message
        .contains("'id' is missing"));
    assert!(err_line("-object filter-mirror,id=m")
        .message
        .contains("filter-dump"));
    assert!(err_line("-net ,vlan=1").message.contains("needs a type"));
    assert!(err_line("-net nic,vlan=x")
        .message
        .contains("vlan=x is not a number"));
    assert!(err_line("-net nic,macaddr=01:00:5e:00:00:01")
        .message
        .contains("multicast"));
    assert!(err_line("-net nic,macaddr=52:54")
        .message
        .contains("not a MAC address"));
    assert!(err_line("-net none,vlan=1")
        .message
        .contains("takes no parameters"));
    assert!(err_line("-netdev dump,id=d")
        .message
        .contains("filter-dump"));
}

#[test]
fn qemu_warnings() {
    let w = |line: &str| -> Vec<String> {
        NetConfig::parse_line(line)
            .unwrap()
            .warnings
            .into_iter()
            .map(|w| w.message)
            .collect()
    };
    assert_eq!(w("-net user"), ["hub 0 with no nics"]);
    assert_eq!(w("-net nic"), ["hub 0 is not connected to host network"]);
    assert_eq!(
        w("-net nic -net dump"),
        ["hub 0 is not connected to host network"]
    );
    assert_eq!(w("-device e1000"), ["nic e1000.0 has no peer"]);
    assert_eq!(w("-netdev user,id=u"), ["netdev u has no peer"]);
    assert_eq!(
        w("-netdev hubport,id=h,hubid=3"),
        ["hub port h has no peer", "netdev h has no peer"]
    );
    assert!(w("-net nic -net user").is_empty());
    assert!(w("-netdev hubport,id=h,hubid=0 -device e1000,netdev=h -net user").is_empty());
}

#[test]
fn defaults_none_and_help() {
    let cfg = NetConfig::parse_line("").unwrap();
    assert!(cfg.defaulted);
    assert_eq!(cfg.line, "-net nic -net user");
    assert_eq!((cfg.nics.len(), cfg.netdevs.len()), (1, 1));
    assert_eq!(cfg.nics[0].mac.to_string(), "52:54:00:12:34:56");
    for none in ["-net none", "-nic none"] {
        let cfg = NetConfig::parse_line(none).unwrap();
        assert!(!cfg.defaulted && cfg.nics.is_empty() && cfg.netdevs.is_empty());
    }
    for help in [
        "-net nic,model=help",
        "-net nic,model=?",
        "-device help",
        "-nic user,model=?",
    ] {
        let cfg = NetConfig::parse_line(help).unwrap();
        assert_eq!(cfg.help.as_deref(), Some(model_help().as_str()), "{help}");
    }
    let h = model_help();
    assert!(h.starts_with("Supported NIC models:\ne1000\n"));
    assert!(h.contains("\nrtl8139\n") && h.contains("\nne2k_pci\n") && h.contains("\nne2k_isa\n"));
}

#[test]
fn default_macs_skip_given_ones() {
    let cfg = NetConfig::parse_line(
        "-net nic,macaddr=52:54:00:12:34:56 -net nic -device e1000,netdev=u -netdev user,id=u",
    )
    .unwrap();
    let macs: Vec<_> = cfg.nics.iter().map(|n| n.mac.to_string()).collect();
    assert_eq!(
        macs,
        [
            "52:54:00:12:34:56",
            "52:54:00:12:34:57",
            "52:54:00:12:34:58"
        ]
    );
}

#[test]
fn nic_option_makes_a_netdev_and_a_nic() {
    let cfg = NetConfig::parse_line("-nic user,model=rtl8139,hostfwd=tcp::2222-:22 -nic tap,id=t")
        .unwrap();
    assert_eq!(cfg.netdevs[0].name, "__org.qemu.nic0");
    assert_eq!(cfg.netdevs[1].name, "t");
    assert_eq!(
        cfg.netdevs[0].backend_opts(),
        [("hostfwd".to_string(), "tcp::2222-:22".to_string())]
    );
    assert_eq!(cfg.nics[0].model, "rtl8139");
    assert_eq!(cfg.nics[1].model, "e1000");
    assert!(cfg.warnings.is_empty());
}

#[test]
fn nics_need_a_guest() {
    let cfg = NetConfig::parse_line("-net nic -net user").unwrap();
    let e = match NetworkBuilder::<vm_memory::GuestMemoryMmap>::new(&cfg).build() {
        Ok(_) => panic!("built"),
        Err(e) => e,
    };
    assert_eq!(e.column, 6);
    assert!(e.message.contains("needs a guest"));
}

#[test]
fn comma_escapes_and_flags() {
    let cfg = NetConfig::parse_line("-netdev tap,id=t,script=/a,,b,vhost").unwrap();
    assert_eq!(
        cfg.netdevs[0].backend_opts(),
        [
            ("script".into(), "/a,b".into()),
            ("vhost".into(), "on".into())
        ]
    );
}

#[test]
fn device_properties_go_to_the_model() {
    let cfg = NetConfig::parse_line(
        "-device rtl8139,id=r,revision=0x10,vectors=2,bootindex=1,mac=52:54:00:00:00:01",
    )
    .unwrap();
    let props: Vec<_> = cfg.nics[0]
        .props
        .iter()
        .map(|p| (p.key.as_str(), p.value.as_str()))
        .collect();
    // vectors is no generic -device property: the model decides (and rtl8139 has none).
    assert_eq!(props, [("revision", "0x10"), ("vectors", "2")]);
    assert_eq!(cfg.nics[0].vectors, None);
    assert_eq!(cfg.nics[0].name, "r");
    let cfg = NetConfig::parse_line("-net nic,vectors=4").unwrap();
    assert_eq!(cfg.nics[0].vectors.as_deref(), Some("4"));
}
