//! The parser never panics, and every error it returns points inside the input.

use proptest::prelude::*;
use vm_nic::options::NetConfig;

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
