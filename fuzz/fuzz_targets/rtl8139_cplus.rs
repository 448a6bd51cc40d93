//! Fuzz target `rtl8139_cplus`: see `vm_nic::fuzzing::targets` and docs/fuzzing.md.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vm_nic::fuzzing::targets;

fuzz_target!(
    init: targets::exit_if_unavailable("rtl8139_cplus"),
    |data: &[u8]| {
        targets::run_target("rtl8139_cplus", data);
    }
);
