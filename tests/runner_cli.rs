//! `vm-nic run`: prints `info network` and stops cleanly on SIGTERM.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_vm-nic");

#[test]
fn run_serves_a_hub_until_sigterm() {
    let mut child = Command::new(BIN)
        .args(["run", "-netdev", "hubport,id=hp0,hubid=3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut out = child.stdout.take().unwrap();
    let mut text = String::new();
    let t = Instant::now();
    let mut buf = [0u8; 256];
    while !text.contains(" \\ hp0\n") && t.elapsed() < Duration::from_secs(10) {
        let n = out.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        text.push_str(std::str::from_utf8(&buf[..n]).unwrap());
    }
    assert_eq!(text, "hub 3\n \\ hp0\n");
    // SAFETY: signals the child this test started, by its PID.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t.elapsed() > Duration::from_secs(10) {
            child.kill().unwrap();
            panic!("vm-nic run ignored SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.contains("warning: hub port hp0 has no peer"), "{err}");
}

#[test]
fn run_reports_errors_with_a_caret() {
    let out = Command::new(BIN)
        .args(["run", "-net", "tap,ifname=tap0,", "script=no"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("-net tap,ifname=tap0, script=no\n                     ^\n"),
        "{err}"
    );
    assert!(err.contains("whitespace is not allowed between parameters"));
}

#[test]
fn run_lists_models_and_refuses_nics() {
    let out = Command::new(BIN)
        .args(["run", "-net", "nic,model=?"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .starts_with("Supported NIC models:\ne1000\n"));
    let out = Command::new(BIN)
        .args(["run", "-device", "e1000"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("needs a guest"));
}
