//! `vm-nic switch` as slirp4netns: a network namespace this test creates holds a tap that
//! `vm-nic switch -netdev tap,... -netdev user,...` serves. Inside the namespace busybox
//! gets a DHCP lease, pings the gateway, looks up a name (answered by the test's resolver
//! through `dns-upstream=`) and downloads 4 MiB over TCP from a server on the host's
//! 127.0.0.1 reached as 10.0.2.2; the host reaches a server in the namespace through
//! `hostfwd`. SIGTERM stops the switch cleanly and runs the tap's downscript. Needs root
//! (CI has it), `ip` and busybox.

mod usernet_support;

use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use usernet_support::{
    free_port, hostfwd_client, sha256_file, wait_ready, write_blob, DnsResponder, HttpServer, Proc,
    TempDir,
};

const BIN: &str = env!("CARGO_BIN_EXE_vm-nic");

/// A network namespace, deleted on drop.
struct Netns(String);

impl Netns {
    fn new(name: &str) -> Netns {
        let _ = Command::new("ip").args(["netns", "del", name]).output();
        sh("ip", &["netns", "add", name]);
        Netns(name.to_string())
    }

    /// Runs `prog args` inside the namespace.
    fn exec(&self, prog: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.0, prog])
            .args(args)
            .output()
            .expect("ip netns exec")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

fn sh(prog: &str, args: &[&str]) -> String {
    let out = Command::new(prog).args(args).output().expect(prog);
    assert!(
        out.status.success(),
        "{prog} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn namespace_tap_served_by_switch_gets_the_user_network() {
    let id = std::process::id();
    let ns = Netns::new(&format!("vmnsw{id}"));
    let tap = format!("vsw{}", id % 100_000);
    let dir = TempDir::new("switch-netns");
    let marker = dir.0.join("down.ran");
    let down = dir.0.join("down.sh");
    std::fs::write(
        &down,
        format!("#!/bin/sh\necho \"$1\" > {}\n", marker.display()),
    )
    .unwrap();
    std::fs::set_permissions(&down, std::fs::Permissions::from_mode(0o755)).unwrap();
    let lease = dir.0.join("lease");
    let dhcp_script = dir.0.join("udhcpc.sh");
    std::fs::write(
        &dhcp_script,
        format!(
            "#!/bin/sh\ncase \"$1\" in bound|renew)\n  ip addr add \"$ip/${{mask:-24}}\" dev \"$interface\"\n  \
             ip route add default via \"${{router%% *}}\" dev \"$interface\"\n  \
             echo \"ip=$ip router=$router dns=$dns\" > {}\n;; esac\nexit 0\n",
            lease.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&dhcp_script, std::fs::Permissions::from_mode(0o755)).unwrap();

    let blob = dir.0.join("blob");
    write_blob(&blob, 4 << 20, 0xbeef);
    let blob_sha = sha256_file(&blob);
    let http = HttpServer::start(blob);
    let dns = DnsResponder::start("switch-test.example", Ipv4Addr::new(192, 0, 2, 55));
    let fwd_port = free_port();

    let mut switch = Proc(
        Command::new(BIN)
            .args([
                "switch",
                "-netdev",
                &format!(
                    "tap,id=t0,ifname={tap},script=no,downscript={}",
                    down.display()
                ),
                "-netdev",
                &format!(
                    "user,id=u0,dns-upstream=127.0.0.1:{},hostfwd=tcp:127.0.0.1:{fwd_port}-:7777",
                    dns.port
                ),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("vm-nic switch"),
    );
    let info = wait_ready(&mut switch.0);
    assert!(info.contains("hub 0"), "{info}");

    sh("ip", &["link", "set", &tap, "netns", &ns.0]);
    sh("ip", &["-n", &ns.0, "link", "set", "lo", "up"]);
    sh("ip", &["-n", &ns.0, "link", "set", &tap, "up"]);

    // DHCP: busybox udhcpc, 5 discovers 1 s apart.
    let script = dhcp_script.to_string_lossy().to_string();
    let o = ns.exec(
        "busybox",
        &[
            "udhcpc", "-i", &tap, "-n", "-q", "-f", "-t", "5", "-T", "1", "-s", &script,
        ],
    );
    let got = std::fs::read_to_string(&lease).unwrap_or_default();
    assert_eq!(
        got.trim(),
        "ip=10.0.2.15 router=10.0.2.2 dns=10.0.2.3",
        "udhcpc: {}",
        text(&o)
    );

    for target in ["10.0.2.2", "10.0.2.3"] {
        let o = ns.exec("busybox", &["ping", "-c", "3", "-W", "2", target]);
        assert!(
            text(&o).contains("3 packets received"),
            "ping {target}: {}",
            text(&o)
        );
    }

    let o = ns.exec("busybox", &["nslookup", "switch-test.example", "10.0.2.3"]);
    assert!(text(&o).contains("192.0.2.55"), "nslookup: {}", text(&o));
    assert!(dns.queries.load(Ordering::Relaxed) >= 1);

    // TCP to the host's 127.0.0.1 through the gateway: 4 MiB, checksum compared.
    let url = format!("http://10.0.2.2:{}/blob", http.port);
    let o = ns.exec(
        "sh",
        &[
            "-c",
            &format!("timeout 30 busybox wget -q -O - {url} | sha256sum"),
        ],
    );
    assert!(
        text(&o).starts_with(&blob_sha),
        "download: {} (want {blob_sha})",
        text(&o)
    );

    // hostfwd: the host reaches a one-shot server inside the namespace.
    let stop = Arc::new(AtomicBool::new(false));
    let client = hostfwd_client(
        fwd_port,
        "from-host".into(),
        Duration::from_secs(20),
        stop.clone(),
    );
    let o = ns.exec(
        "sh",
        &[
            "-c",
            "echo from-namespace | timeout 20 busybox nc -l -p 7777",
        ],
    );
    stop.store(true, Ordering::Relaxed);
    assert!(text(&o).contains("from-host"), "nc -l got: {}", text(&o));
    assert_eq!(client.join().unwrap().as_deref(), Some("from-namespace"));

    // Clean shutdown: SIGTERM, exit status 0, downscript run with the tap's name.
    let status = switch.terminate().expect("vm-nic switch ignored SIGTERM");
    assert!(status.success(), "vm-nic switch exited with {status}");
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap_or_default().trim(),
        tap,
        "downscript did not run"
    );
}
