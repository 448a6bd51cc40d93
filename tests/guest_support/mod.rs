//! Shared code of the real-guest tests: boots the test guest once through
//! `scripts/guest/run.sh` (stock QEMU, TCG, `x-pci-proxy-dev` served by `vm-nic remote`)
//! and parses its `VMNIC-RESULT key=value` lines.
//!
//! The first run fetches the guest ingredients (a Debian kernel, busybox, ethtool) with
//! `apt-get download` into `.cache/guest/`; later runs reuse them.

#![allow(dead_code)] // each guest test uses the part it needs

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

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

/// Boots the guest with the NIC `-device DEVICE,netdev=n0 -netdev user,id=n0` served by
/// `vm-nic remote`, running ethtool's tests too when `ethtool` is set.
pub fn boot(device: &str, ethtool: bool) -> GuestRun {
    boot_on("vm-nic", device, ethtool)
}

/// As [`boot`], with `nic` = `"vm-nic"` (vm-nic's model behind QEMU's PCI proxy) or
/// `"qemu"` (QEMU's own model and user network: a check of the harness itself).
pub fn boot_on(nic: &str, device: &str, ethtool: bool) -> GuestRun {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = Command::new(root.join("scripts/guest/run.sh"));
    cmd.env("VMNIC_BIN", env!("CARGO_BIN_EXE_vm-nic"))
        .args(["--nic", nic, "--ping", "5", "--timeout"])
        .arg(format!("{}", GUEST_LIMIT_SECS as u64));
    if ethtool {
        cmd.arg("--ethtool");
    }
    cmd.args([
        "--",
        "-device",
        &format!("{device},netdev=n0"),
        "-netdev",
        "user,id=n0",
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
    run.expect("ethtool_d", "ok");
    run.expect("ethtool_k", "ok");
}
