//! Replays every checked-in fuzz input on stable: `fuzz/corpus/<target>/*` (seed and
//! minimised corpora) and `fuzz/regressions/<target>/*` (inputs that once crashed), so
//! plain `cargo test` exercises the fuzz targets and their oracles without nightly.

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use vm_nic::fuzzing::targets::{availability, run_target, Availability, TARGETS};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join(kind).join(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.is_file());
    files.sort();
    files
}

fn replay(target: &str) -> usize {
    let files: Vec<PathBuf> = ["corpus", "regressions"]
        .iter()
        .flat_map(|k| inputs(k, target))
        .collect();
    if let Availability::Missing(why) = availability(target) {
        eprintln!(
            "{target}: not in this build ({why}); {} inputs not replayed",
            files.len()
        );
        return 0;
    }
    assert!(!files.is_empty(), "{target}: no corpus checked in");
    for f in &files {
        let data = fs::read(f).unwrap();
        let r = catch_unwind(AssertUnwindSafe(|| run_target(target, &data)));
        match r {
            Ok(ran) => assert!(ran, "{target}: {} did not run", f.display()),
            Err(e) => {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                panic!("{target}: {} fails: {msg}", f.display());
            }
        }
    }
    files.len()
}

#[test]
fn every_corpus_directory_belongs_to_a_target() {
    for kind in ["corpus", "regressions"] {
        let Ok(dir) = fs::read_dir(fuzz_dir().join(kind)) else {
            continue;
        };
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            assert!(
                TARGETS.contains(&name.as_str()),
                "fuzz/{kind}/{name}: no such target"
            );
        }
    }
}

#[test]
fn every_target_has_a_fuzz_target_file() {
    for t in TARGETS {
        let f = fuzz_dir().join("fuzz_targets").join(format!("{t}.rs"));
        let src = fs::read_to_string(&f).unwrap_or_else(|_| panic!("{} missing", f.display()));
        assert!(
            src.contains(&format!("\"{t}\"")),
            "{} runs another target",
            f.display()
        );
    }
}

macro_rules! replay_tests {
    ($($name:ident => $target:literal,)*) => {$(
        #[test]
        fn $name() {
            let n = replay($target);
            eprintln!("{}: {n} inputs replayed", $target);
        }
    )*};
}

replay_tests! {
    replay_e1000 => "e1000",
    replay_e1000_82544gc => "e1000_82544gc",
    replay_e1000_82545em => "e1000_82545em",
    replay_rtl8139_c => "rtl8139_c",
    replay_rtl8139_cplus => "rtl8139_cplus",
    replay_ne2k_pci => "ne2k_pci",
    replay_ne2k_isa => "ne2k_isa",
    replay_hub => "hub",
    replay_options => "options",
    replay_socket_stream => "socket_stream",
    replay_remote_protocol => "remote_protocol",
    replay_user_net => "user_net",
}
