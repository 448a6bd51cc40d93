//! Shared code of the real-guest tests: boots the test guest once through
//! `scripts/guest/run.sh` (stock QEMU, TCG, `x-pci-proxy-dev` served by `vm-nic remote`)
//! and parses its `VMNIC-RESULT key=value` lines.
//!
//! The first run fetches the guest ingredients (a Debian kernel, busybox, ethtool) with
//! `apt-get download` into `.cache/guest/`; later runs reuse them.

#![allow(dead_code)] // each guest test uses the part it needs

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest a guest may take, boot to power-off, including DHCP, pings and ethtool.
pub const GUEST_LIMIT_SECS: f64 = 60.0;

/// What one guest boot reported.
#[derive(Debug)]
pub struct GuestRun {
    /// Every `key=value` from the result lines (a later line overrides an earlier key).
    pub results: HashMap<String, String>,
    /// The runner's whole output, for failure messages.
    pub output: String,
}

impl GuestRun {
    /// The value of `key`, or a panic that shows the whole guest output.
    pub fn get(&self, key: &str) -> &str {
        match self.results.get(key) {
            Some(v) => v,
            None => panic!("guest reported no {key}; output:\n{}", self.output),
        }
    }

    /// Asserts `key` has value `want`, showing the guest output otherwise.
    pub fn expect(&self, key: &str, want: &str) {
        let got = self.get(key);
        assert_eq!(got, want, "{key}; guest output:\n{}", self.output);
    }
}

/// Parses `VMNIC-RESULT a=1 b=2` lines into a map.
pub fn parse_results(output: &str) -> HashMap<String, String> {
    output
        .lines()
        .filter_map(|l| l.strip_prefix("VMNIC-RESULT "))
        .flat_map(|l| l.split_whitespace())
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A one-file HTTP server on 127.0.0.1 (the guest reaches it as 10.0.2.2 through the
/// user network's NAT) serving `len` pseudo-random bytes. It stops when dropped; its
/// accept loop is bounded to two minutes.
pub struct BlobServer {
    /// The port it listens on.
    pub port: u16,
    /// The blob's length.
    pub len: usize,
    /// The blob's MD5, as `md5sum` prints it.
    pub md5: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl BlobServer {
    /// Starts serving a blob of `len` bytes.
    pub fn start(len: usize) -> Self {
        let mut x: u32 = 0x1234_5678;
        let blob: Arc<Vec<u8>> = Arc::new(
            (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect(),
        );
        let mut md5sum = Command::new("md5sum")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("md5sum");
        md5sum.stdin.take().unwrap().write_all(&blob).unwrap();
        let out = md5sum.wait_with_output().unwrap();
        let md5 = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            while !stop2.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(120) {
                match listener.accept() {
                    Ok((conn, _)) => serve_blob(conn, &blob),
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        BlobServer {
            port,
            len,
            md5,
            stop,
            thread: Some(thread),
        }
    }

    /// The URL the guest fetches.
    pub fn guest_url(&self) -> String {
        format!("http://10.0.2.2:{}/blob", self.port)
    }
}

/// Answers one HTTP request with the blob; every step has a timeout.
fn serve_blob(mut conn: std::net::TcpStream, blob: &[u8]) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = conn.set_write_timeout(Some(Duration::from_secs(30)));
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 8192 {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let head = format!(
        "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        blob.len()
    );
    let _ = conn
        .write_all(head.as_bytes())
        .and_then(|_| conn.write_all(blob));
}

impl Drop for BlobServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What a guest run does besides DHCP and ping.
#[derive(Clone, Copy, Debug, Default)]
pub struct Steps {
    /// Run ethtool's dumps and offline self-test.
    pub ethtool: bool,
    /// Download this many KiB over TCP from a [`BlobServer`] (0: no download).
    pub download_kib: usize,
}

/// Boots the guest with the NIC `-device DEVICE,netdev=n0 -netdev user,id=n0` served by
/// `vm-nic remote` and checks the download, if `steps` asks for one.
pub fn boot(device: &str, steps: Steps) -> GuestRun {
    boot_on("vm-nic", device, steps)
}

/// As [`boot`], with `nic` = `"vm-nic"` (vm-nic's model behind QEMU's PCI proxy) or
/// `"qemu"` (QEMU's own model and user network: a check of the harness itself).
pub fn boot_on(nic: &str, device: &str, steps: Steps) -> GuestRun {
    boot_full(nic, device, "user,id=n0", steps)
}

/// As [`boot_on`] with no extra steps, with `-netdev NETDEV` (its id must be `n0`)
/// instead of the user network: e.g. QEMU's own NIC on a socket whose peer is
/// `vm-nic switch`.
pub fn boot_with(nic: &str, device: &str, netdev: &str) -> GuestRun {
    boot_full(nic, device, netdev, Steps::default())
}

fn boot_full(nic: &str, device: &str, netdev: &str, steps: Steps) -> GuestRun {
    let blob = (steps.download_kib > 0).then(|| BlobServer::start(steps.download_kib * 1024));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = Command::new(root.join("scripts/guest/run.sh"));
    cmd.env("VMNIC_BIN", env!("CARGO_BIN_EXE_vm-nic"))
        .args(["--nic", nic, "--ping", "5", "--timeout"])
        .arg(format!("{}", GUEST_LIMIT_SECS as u64));
    if steps.ethtool {
        cmd.arg("--ethtool");
    }
    if let Some(b) = &blob {
        cmd.args(["--wget", &b.guest_url()]);
    }
    cmd.args([
        "--",
        "-device",
        &format!("{device},netdev=n0"),
        "-netdev",
        netdev,
    ]);
    let out = cmd.output().expect("scripts/guest/run.sh");
    let output = format!(
        "{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let run = GuestRun {
        results: parse_results(&output),
        output,
    };
    assert!(out.status.success(), "guest run failed:\n{}", run.output);
    if let Some(b) = &blob {
        run.expect("wget_bytes", &b.len.to_string());
        run.expect("wget_md5", &b.md5);
    }
    run
}

/// The checks every NIC must pass: the guest has one NIC, the expected driver bound, DHCP gave 10.0.2.15 from
/// vm-nic's user network, 10.0.2.2 answered every ping (5 small, 3 of 1400 bytes), the guest finished in time and
/// the server stopped by itself when QEMU went away.
pub fn assert_network_up(run: &GuestRun, driver: &str) {
    run.expect("host_timeout", "0");
    run.expect("nics", "1");
    run.expect("driver", driver);
    run.expect("dhcp_ip", "10.0.2.15");
    run.expect("dhcp_router", "10.0.2.2");
    run.expect("ping_tx", "5");
    run.expect("ping_rx", "5");
    run.expect("ping_loss", "0");
    run.expect("big_ping_rx", "3");
    run.expect("done", "1");
    let secs: f64 = run.get("host_seconds").parse().unwrap_or(f64::MAX);
    assert!(
        secs < GUEST_LIMIT_SECS,
        "guest took {secs} s; output:\n{}",
        run.output
    );
}

/// The e1000 checks on top of [`assert_network_up`]: ethtool's offline self-test scores 0
/// on register, EEPROM and loopback (QEMU's own e1000 scores 40 and 13 on the register
/// and loopback tests), and the EEPROM and register dumps work. The interrupt test
/// cannot pass under the proxy (its handler is not shared, `irqpoll` does not poll it);
/// unit tests cover interrupts.
pub fn assert_e1000_selftest(run: &GuestRun) {
    run.expect("ethtool_driver", "e1000");
    run.expect("ethtool_register", "0");
    run.expect("ethtool_eeprom", "0");
    run.expect("ethtool_loopback", "0");
    run.expect("ethtool_link", "0");
    run.expect("ethtool_e", "ok");
    run.expect("eeprom_mac", run.get("mac"));
    run.expect("ethtool_d", "ok");
    run.expect("ethtool_k", "ok");
    // Receive checksum offload switched on by the guest and used: the device reported
    // verified checksums for the traffic (pings, and the download when there is one).
    run.expect("rx_csum_enable", "ok");
    run.expect("rx_checksumming", "on");
    run.expect("rx_csum_errors", "0");
    let good: u64 = run.get("rx_csum_good").parse().unwrap_or(0);
    assert!(
        good > 0,
        "no frame had its checksum verified by the device; guest output:\n{}",
        run.output
    );
}
