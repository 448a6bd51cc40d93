//! Fuzz target `e1000_82545em`: see `vm_nic::fuzzing::targets` and docs/fuzzing.md.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vm_nic::fuzzing::targets;

fuzz_target!(
    init: targets::exit_if_unavailable("e1000_82545em"),
    |data: &[u8]| {
        targets::run_target("e1000_82545em", data);
    }
);
