//! Fuzz target `options`: see `vm_nic::fuzzing::targets` and docs/fuzzing.md.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vm_nic::fuzzing::targets;

fuzz_target!(
    init: targets::exit_if_unavailable("options"),
    |data: &[u8]| {
        targets::run_target("options", data);
    }
);
