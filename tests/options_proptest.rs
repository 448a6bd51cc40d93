//! The parser never panics, and every error it returns points inside the input.

mod runner_support;

use std::sync::{Arc, Mutex};

use proptest::prelude::*;
use vm_nic::backends::memory::NullBackend;
use vm_nic::backends::NetBackend;
use vm_nic::devices::{ManualClock, NoIrq};
use vm_nic::network::{Guest, NetworkBuilder};
use vm_nic::options::NetConfig;
use vm_nic::runner::Runner;

/// Whatever parses also builds (with stand-in backends and NICs), runs one iteration
/// and prints `info network` without panicking; build errors point inside the line.
fn check_build(line: &str) {
    let Ok(cfg) = NetConfig::parse_line(line) else {
        return;
    };
    let clock = Arc::new(ManualClock::new());
    let built = NetworkBuilder::new(&cfg)
        .guest(Guest {
            memory: runner_support::guest_memory(),
            clock: clock.clone(),
            irq: Box::new(|_, _| Box::new(NoIrq)),
        })
        .nic_factory(runner_support::factory(Arc::new(Mutex::new(Vec::new()))))
        .backend_opener(|_, _| Ok(Box::new(NullBackend::new()) as Box<dyn NetBackend>))
        .filter_opener(|_, inner| Ok(inner))
        .build();
    match built {
        Ok(net) => {
            let info = net.info_network();
            assert_eq!(
                info.lines().filter(|l| l.starts_with("hub ")).count(),
                cfg.hubs.len()
            );
            let mut r = Runner::new(net, clock);
            r.run_once(Some(std::time::Duration::ZERO)).unwrap();
        }
        Err(e) => {
            let n = cfg.line.chars().count().max(1);
            assert!((1..=n).contains(&e.column), "{e}");
        }
    }
}

fn check_line(line: &str) {
    if let Err(e) = NetConfig::parse_line(line) {
        let n = line.chars().count().max(1);
        assert!(
            (1..=n).contains(&e.column),
            "column {} outside 1..={n}: {e}",
            e.column
        );
        assert_eq!(e.line, line);
        assert!(!e.message.is_empty());
    }
}

fn check_args(args: &[String]) {
    let joined = args.join(" ");
    if let Err(e) = NetConfig::parse_args(args) {
        let n = joined.chars().count().max(1);
        assert!(
            (1..=n).contains(&e.column),
            "column {} outside 1..={n}: {e}",
            e.column
        );
        assert_eq!(e.line, joined);
    }
}

/// Words that look like networking options, so the generator reaches deep into the
/// grammar rather than stopping at the first word.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("-net".to_string()),
        Just("-netdev".to_string()),
        Just("-device".to_string()),
        Just("-nic".to_string()),
        Just("-object".to_string()),
        "(nic|user|tap|socket|hubport|e1000|rtl8139|filter-dump|none|dump)(,(vlan|id|hubid|netdev|model|mac|macaddr|name|file|ifname|x)(=[a-z0-9:,? ]{0,6})?){0,4},?",
        "[ -~]{0,12}",
        "\\PC{0,6}",
    ]
}

/// Well-formed options over a few ids and hubs, so many lines parse and reach the
/// builder with references, hubports, filters and shared hubs.
fn option_pair() -> impl Strategy<Value = String> {
    prop_oneof![
        "-net nic(,vlan=[0-2])?(,model=(e1000|rtl8139))?(,macaddr=52:54:00:12:34:5[6-8])?",
        "-net nic,netdev=n[0-2]",
        "-net (user|socket|dump)(,vlan=[0-2])?",
        "-netdev (user|socket),id=n[0-2]",
        "-netdev hubport,id=n[0-2],hubid=[0-2](,netdev=n[0-2])?",
        "-device (e1000|rtl8139)(,netdev=n[0-2])?(,id=d[0-2])?",
        "-nic user(,model=rtl8139)?(,id=n[0-2])?",
        "-object filter-dump,id=f[0-2],netdev=n[0-2],file=x",
        "-net none",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_lines(line in "\\PC{0,60}") {
        check_line(&line);
    }

    #[test]
    fn option_shaped_lines(words in prop::collection::vec(word(), 0..8)) {
        check_line(&words.join(" "));
        check_args(&words);
    }

    #[test]
    fn whatever_parses_builds_and_runs(words in prop::collection::vec(word(), 0..8)) {
        check_build(&words.join(" "));
    }

    #[test]
    fn well_formed_configs_build_and_run(opts in prop::collection::vec(option_pair(), 0..7)) {
        check_build(&opts.join(" "));
    }
}

#[test]
fn edge_cases() {
    for line in [
        "",
        " ",
        "'",
        "\"",
        "-",
        "--",
        "-net",
        "-net ''",
        "-net ,",
        "-net ,,",
        "-net =",
        "-net nic,=",
        "-net nic,,",
        "-net nic, ",
        "-net  nic",
        "-netdev hubport,id=a,hubid=0,netdev=a",
        "-device e1000,netdev=",
        "-net nic,vlan=99999999999",
        "-nic none,x",
        "é -net",
        "-net nic,model=e1000 ''",
    ] {
        check_line(line);
    }
    check_args(&["-net".to_string(), String::new()]);
    check_args(&["-net".to_string(), "nic".to_string(), String::new()]);
}
