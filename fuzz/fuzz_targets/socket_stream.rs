//! Fuzz target `socket_stream`: see `vm_nic::fuzzing::targets` and docs/fuzzing.md.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vm_nic::fuzzing::targets;

fuzz_target!(
    init: targets::exit_if_unavailable("socket_stream"),
    |data: &[u8]| {
        targets::run_target("socket_stream", data);
    }
);
