//! Runs every example (built by `cargo test --all-targets`, as scripts/test.sh does) and
//! checks that the commands docs/integrating.md and docs/driver-testing.md tell readers
//! to run name examples and tests that exist.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The examples CI runs; each must exit 0 within the time limit.
const EXAMPLES: &[&str] = &["vmm_event_loop", "vmm_runner"];
const LIMIT: Duration = Duration::from_secs(60);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn example_binary(name: &str) -> PathBuf {
    // target/<profile>/deps/examples_run-HASH -> target/<profile>/examples/NAME
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    profile_dir.join("examples").join(name)
}

fn run_example(name: &str) {
    let bin = example_binary(name);
    assert!(
        bin.exists(),
        "{} is not built: run `cargo test --all-targets` (or `cargo build --examples`) first",
        bin.display()
    );
    let mut child = Command::new(&bin)
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > LIMIT {
            // Ended by its own PID, never by name.
            let _ = child.kill();
            let _ = child.wait();
            panic!("example {name} still running after {LIMIT:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        status.success(),
        "example {name} failed ({status}):\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("10.0.2.2 is at"), "{name}: {stdout}");
}

#[test]
fn vmm_event_loop_runs() {
    run_example("vmm_event_loop");
}

#[test]
fn vmm_runner_runs() {
    run_example("vmm_runner");
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
