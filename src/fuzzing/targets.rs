//! The fuzz targets, by name: what `fuzz/fuzz_targets/<name>.rs` runs and what
//! `tests/fuzz_replay.rs` replays from `fuzz/corpus/<name>/` and
//! `fuzz/regressions/<name>/`.

use crate::fuzzing::hub::fuzz_hub;
use crate::fuzzing::input::fuzz_device;
use crate::fuzzing::kind::DeviceKind;
use crate::fuzzing::wire;

/// Every target name.
pub const TARGETS: &[&str] = &[
    "e1000",
    "e1000_82544gc",
    "e1000_82545em",
    "rtl8139_c",
    "rtl8139_cplus",
    "ne2k_pci",
    "ne2k_isa",
    "hub",
    "options",
    "socket_stream",
    "remote_protocol",
    "user_net",
];

/// Exit status a fuzz target uses when the code it fuzzes is not in this build (the CI
/// step reports it as skipped rather than fuzzed).
pub const EXIT_UNAVAILABLE: i32 = 77;

/// Whether a target's code is in this build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Availability {
    /// It can be fuzzed.
    Ready,
    /// It cannot, and why.
    Missing(String),
}

/// Whether target `name` can run in this build.
pub fn availability(name: &str) -> Availability {
    match DeviceKind::from_target_name(name) {
        Some(kind) => match crate::fuzzing::Harness::new(kind) {
            Ok(_) => Availability::Ready,
            Err(e) => Availability::Missing(e.to_string()),
        },
        None if TARGETS.contains(&name) => Availability::Ready,
        None => Availability::Missing(format!("no fuzz target named '{name}'")),
    }
}

/// Runs one input through target `name`, panicking on any broken oracle. Returns false
/// when the target's code is not in this build (nothing was exercised).
///
/// # Panics
/// On an oracle violation (that is the point), and for an unknown target name.
pub fn run_target(name: &str, data: &[u8]) -> bool {
    if let Some(kind) = DeviceKind::from_target_name(name) {
        return fuzz_device(kind, data).is_ok();
    }
    match name {
        "hub" => fuzz_hub(data),
        "options" => wire::fuzz_options(data),
        "socket_stream" => wire::fuzz_socket_stream(data),
        "remote_protocol" => wire::fuzz_remote_protocol(data),
        "user_net" => wire::fuzz_user_net(data),
        _ => panic!("no fuzz target named '{name}'"),
    }
    true
}

/// The body every `fuzz/fuzz_targets/*.rs` uses in its `init:` block: exits with
/// [`EXIT_UNAVAILABLE`] when the target's code is not in this build, so a fuzzer never
/// pretends to fuzz a model that is not there.
pub fn exit_if_unavailable(name: &str) {
    if let Availability::Missing(why) = availability(name) {
        eprintln!("fuzz target '{name}' is not available in this build: {why}");
        std::process::exit(EXIT_UNAVAILABLE);
    }
}
