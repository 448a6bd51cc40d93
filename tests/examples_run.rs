//! Runs every example's `main` (each exits `Ok` only when its guest got user-net's ARP
//! reply) and checks that the commands docs/integrating.md and docs/driver-testing.md
//! tell readers to run name examples and tests that exist.
//!
//! The examples are compiled into this test as modules: `cargo test --all-targets`
//! builds examples only as test harnesses, so there is no example binary to start.

// Each example declares `mod common;` as cargo builds it on its own, so compiled together
// here the shared VMM code is included twice; that is intended.
#![allow(clippy::duplicate_mod)]

use std::path::PathBuf;

#[allow(dead_code)]
#[path = "../examples/vmm_event_loop.rs"]
mod vmm_event_loop;

#[allow(dead_code)]
#[path = "../examples/vmm_runner.rs"]
mod vmm_runner;

/// The examples this file runs.
const EXAMPLES: &[&str] = &["vmm_event_loop", "vmm_runner"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn vmm_event_loop_runs() {
    vmm_event_loop::run(&[]).unwrap();
}

#[test]
fn vmm_runner_runs() {
    vmm_runner::run(&[]).unwrap();
}

/// Every `cargo run --example X` and `cargo test --test X` in the guides names
/// something that exists (and every example named is one this file runs).
#[test]
fn guide_commands_name_real_targets() {
    let mut seen = 0;
    for doc in ["docs/integrating.md", "docs/driver-testing.md"] {
        let text = std::fs::read_to_string(root().join(doc)).unwrap();
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            for w in words.windows(2) {
                let name = w[1].trim_matches(|c: char| !c.is_alphanumeric() && c != '_');
                match (w[0], name) {
                    ("--example", name) => {
                        assert!(
                            EXAMPLES.contains(&name),
                            "{doc}: example {name} is not run here"
                        );
                        assert!(root().join("examples").join(format!("{name}.rs")).exists());
                        seen += 1;
                    }
                    ("--test", name) => {
                        let f = root().join("tests").join(format!("{name}.rs"));
                        assert!(f.exists(), "{doc}: no test target {name}");
                        seen += 1;
                    }
                    _ => {}
                }
            }
        }
    }
    assert!(seen >= 4, "the guides name their commands ({seen} found)");
}
