//! TAP tests, run as root inside a network namespace each test creates (it disappears
//! with the test's thread): a Linux bridge, a veth pair with one end on the bridge and the
//! other holding 10.99.0.2/24, and vm-nic's tap on the bridge speaking as 10.99.0.1.
//! Frames cross both ways: the namespace's kernel answers vm-nic's ARP and ICMP echo
//! requests, and vm-nic answers the kernel's ARP requests.
#![cfg(feature = "tap")]

mod netns_util;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use vm_nic_backends::tap::{self, bridge, TapBackend, TapConfig};
use vm_nic_backends::{NetBackend, VirtioNetHdr};

const OUR_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
const OUR_IP: [u8; 4] = [10, 99, 0, 1];
const PEER_IP: [u8; 4] = [10, 99, 0, 2];
const BRIDGE: &str = "vmbr0";
const TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `f` on a thread that has entered a new network namespace with the bridge, the
/// veth pair and the peer address set up.
fn in_netns(f: impl FnOnce() + Send + 'static) {
    let r = std::thread::spawn(move || {
        // SAFETY: unshare affects only this thread's namespace membership.
        assert_eq!(
            unsafe { libc::unshare(libc::CLONE_NEWNET) },
            0,
            "unshare(CLONE_NEWNET) failed (these tests need root): {}",
            std::io::Error::last_os_error()
        );
        for cmd in [
            "link set lo up",
            &format!("link add {BRIDGE} type bridge"),
            "link add veth0 type veth peer name veth1",
            &format!("link set veth0 master {BRIDGE}"),
            "addr add 10.99.0.2/24 dev veth1",
            &format!("link set {BRIDGE} up"),
            "link set veth0 up",
            "link set veth1 up",
        ] {
            ip(cmd);
        }
        // Only the interface holding an address answers ARP for it (not the bridge too).
        // /proc/sys/net shows the namespace of the thread that opens it.
        std::fs::write("/proc/sys/net/ipv4/conf/all/arp_ignore", "1").unwrap();
        f()
    })
    .join();
    if let Err(p) = r {
        std::panic::resume_unwind(p);
    }
}

fn ip(args: &str) -> String {
    let out = Command::new("ip")
        .args(args.split_whitespace())
        .output()
        .expect("ip (iproute2) is needed");
    assert!(
        out.status.success(),
        "ip {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes an executable script under a name no other test uses (tests run in parallel;
/// rewriting a script another test is executing would fail with ETXTBSY).
fn write_script(name: &str, body: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let p = std::env::temp_dir().join(format!("vmnic-tap-{}-{n}-{name}", std::process::id()));
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn csum(data: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in data.chunks(2) {
        s += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

fn arp(op: u16, src_mac: [u8; 6], src_ip: [u8; 4], dst_mac: [u8; 6], dst_ip: [u8; 4]) -> Vec<u8> {
    let eth_dst = if op == 1 { [0xff; 6] } else { dst_mac };
    let mut f = eth_dst.to_vec();
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&src_ip);
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&dst_ip);
    f.resize(60, 0);
    f
}

fn ipv4(dst_mac: [u8; 6], proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = dst_mac.to_vec();
    f.extend_from_slice(&OUR_MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + payload.len()) as u16;
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, proto, 0, 0]);
    h.extend_from_slice(&OUR_IP);
    h.extend_from_slice(&PEER_IP);
    let c = csum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&h);
    f.extend_from_slice(payload);
    f
}

fn icmp_echo(dst_mac: [u8; 6], seq: u16, data: &[u8]) -> Vec<u8> {
    let mut m = vec![8, 0, 0, 0, 0x77, 0x77];
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(data);
    let c = csum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    ipv4(dst_mac, 1, &m)
}

/// Receives until `pick` accepts a frame, answering the kernel's ARP requests for
/// OUR_IP meanwhile (frames from the namespace to vm-nic). `request`, if given, is sent
/// now and again every 250 ms: links that were just created may drop the first frames.
fn recv_until<T>(
    t: &mut dyn NetBackend,
    request: Option<&[u8]>,
    mut pick: impl FnMut(&[u8]) -> Option<T>,
) -> (T, u32) {
    let mut buf = vec![0u8; 70000];
    let end = Instant::now() + TIMEOUT;
    let mut next_send = Instant::now();
    let mut arp_answered = 0;
    let mut seen: Vec<String> = Vec::new();
    while Instant::now() < end {
        if let Some(r) = request.filter(|_| Instant::now() >= next_send) {
            t.send(r).unwrap();
            next_send = Instant::now() + Duration::from_millis(250);
        }
        let Some(n) = t.recv(&mut buf).unwrap() else {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        };
        let f = &buf[..n];
        seen.push(format!("{n}: {:02x?}", &f[..n.min(48)]));
        if f.len() >= 42 && f[12..14] == [8, 6] && f[20..22] == [0, 1] && f[38..42] == OUR_IP {
            let mac: [u8; 6] = f[22..28].try_into().unwrap();
            let ipa: [u8; 4] = f[28..32].try_into().unwrap();
            t.send(&arp(2, OUR_MAC, OUR_IP, mac, ipa)).unwrap();
            arp_answered += 1;
            continue;
        }
        if let Some(v) = pick(f) {
            return (v, arp_answered);
        }
    }
    let last = &seen[seen.len().saturating_sub(8)..];
    panic!(
        "expected frame did not arrive within {TIMEOUT:?}; {} frames seen, last: {last:#?}; {:?}",
        seen.len(),
        t.counters()
    );
}

/// ARP for the peer, then ICMP echo: returns the peer's MAC.
fn arp_and_ping(t: &mut dyn NetBackend) -> [u8; 6] {
    let request = arp(1, OUR_MAC, OUR_IP, [0; 6], PEER_IP);
    let (peer_mac, _) = recv_until(t, Some(&request), |f| {
        (f.len() >= 42 && f[12..14] == [8, 6] && f[20..22] == [0, 2] && f[28..32] == PEER_IP)
            .then(|| f[22..28].try_into().unwrap())
    });
    for seq in 1..=3u16 {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * seq as u32) as u8).collect();
        let echo = icmp_echo(peer_mac, seq, &data);
        recv_until(t, Some(&echo), |f| {
            let ok = f.len() == 14 + 20 + 8 + data.len()
                && f[12..14] == [8, 0]
                && f[23] == 1
                && f[26..30] == PEER_IP
                && f[34] == 0
                && f[38..40] == [0x77, 0x77]
                && f[40..42] == seq.to_be_bytes()
                && f[42..] == data[..];
            ok.then_some(())
        });
    }
    peer_mac
}

fn on_bridge_script() -> PathBuf {
    write_script(
        "up-bridge",
        &format!("ip link set \"$1\" master {BRIDGE} && ip link set \"$1\" up"),
    )
}

#[test]
fn tap_on_bridge_exchanges_frames_and_runs_scripts() {
    in_netns(|| {
        let log = std::env::temp_dir().join(format!("vmnic-tap-{}-log", std::process::id()));
        let _ = std::fs::remove_file(&log);
        let up = write_script(
            "up",
            &format!(
                "echo \"up $1 $#\" >> {l}\nfor f in /proc/$$/fd/*; do readlink $f; done | grep -c net/tun >> {l}\nip link set \"$1\" master {BRIDGE} && ip link set \"$1\" up",
                l = log.display()
            ),
        );
        let down = write_script("down", &format!("echo \"down $1\" >> {}", log.display()));
        let opts = vec![
            ("ifname".to_string(), "vmtap%d".to_string()),
            ("script".to_string(), up.display().to_string()),
            ("downscript".to_string(), down.display().to_string()),
            ("vnet_hdr".to_string(), "off".to_string()),
        ];
        let mut t = tap::open(&opts).unwrap();
        assert_eq!(t.kind(), "tap");
        assert!(!t.has_vnet_hdr());
        let info = t.info();
        assert!(info.starts_with("ifname=vmtap0,"), "{info}");
        assert!(ip("link show vmtap0").contains(&format!("master {BRIDGE}")));
        arp_and_ping(&mut *t);
        assert_eq!(t.counters().dropped, 0);
        drop(t);
        let logged = std::fs::read_to_string(&log).unwrap();
        // $1 is the interface, no other argument; the tap descriptor was not inherited.
        assert_eq!(logged, "up vmtap0 1\n0\ndown vmtap0\n");
        for p in [&up, &down, &log] {
            std::fs::remove_file(p).unwrap();
        }
    });
}

#[test]
fn failing_or_missing_script_is_a_clear_error_and_leaves_no_tap() {
    in_netns(|| {
        let bad = write_script("bad", "exit 7");
        let cfg = TapConfig {
            ifname: "vmbad0".into(),
            script: Some(bad.clone()),
            downscript: None,
            ..TapConfig::default()
        };
        let e = TapBackend::open(&cfg).unwrap_err().to_string();
        assert_eq!(
            e,
            format!("network script {} failed with status 7", bad.display())
        );
        assert!(
            !ip("link show").contains("vmbad0"),
            "the tap is closed again"
        );
        let opts = vec![("script".to_string(), "/nonexistent/qemu-ifup".to_string())];
        let e = tap::open(&opts).err().unwrap();
        assert_eq!(e.key.as_deref(), Some("script"));
        assert!(e
            .message
            .contains("could not launch network script /nonexistent/qemu-ifup"));
        std::fs::remove_file(bad).unwrap();
    });
}

#[test]
fn multiqueue_opens_n_queues_and_receives_from_all() {
    in_netns(|| {
        let cfg = TapConfig {
            ifname: "vmmq0".into(),
            script: Some(on_bridge_script()),
            downscript: None,
            queues: 4,
            vnet_hdr: Some(false),
            sndbuf: Some(1 << 20),
        };
        let mut t = TapBackend::open(&cfg).unwrap();
        std::fs::remove_file(cfg.script.as_ref().unwrap()).unwrap();
        assert_eq!(t.queue_count(), 4);
        assert!(ip("-d link show vmmq0").contains("multi_queue"));
        // Descriptors of this process attached to the interface.
        let attached = std::fs::read_dir("/proc/self/fdinfo")
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
            .filter(|s| s.contains("iff:\tvmmq0"))
            .count();
        assert_eq!(attached, 4);
        arp_and_ping(&mut t);
    });
}

#[test]
fn vnet_hdr_frames_and_gso_reach_the_namespace() {
    in_netns(|| {
        let cfg = TapConfig {
            ifname: "vmvh0".into(),
            script: Some(on_bridge_script()),
            downscript: None,
            vnet_hdr: Some(true),
            ..TapConfig::default()
        };
        let mut t = TapBackend::open(&cfg).unwrap();
        std::fs::remove_file(cfg.script.as_ref().unwrap()).unwrap();
        assert!(t.has_vnet_hdr());
        let peer_mac = arp_and_ping(&mut t);
        // One 3000-byte TCP segment (no ACK flag) to a closed port, handed to the kernel
        // as GSO with MSS 1000 and a checksum left to the host. The namespace's stack
        // answers with a reset acknowledging all 3000 bytes: the frame went in whole.
        let seq: u32 = 0x1000_0000;
        let payload = vec![0x5a; 3000];
        let mut tcp = vec![0x9c, 0x40, 0x00, 0x09];
        tcp.extend_from_slice(&seq.to_be_bytes());
        tcp.extend_from_slice(&[0, 0, 0, 0, 0x50, 0x08, 0xff, 0xff, 0, 0, 0, 0]);
        tcp.extend_from_slice(&payload);
        let mut frame = ipv4(peer_mac, 6, &tcp);
        // Pseudo-header sum in the checksum field, as NEEDS_CSUM expects.
        let mut ph = OUR_IP.to_vec();
        ph.extend_from_slice(&PEER_IP);
        ph.extend_from_slice(&[0, 6]);
        ph.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
        let partial = !csum(&ph);
        frame[34 + 16..34 + 18].copy_from_slice(&partial.to_be_bytes());
        let hdr = VirtioNetHdr {
            flags: VirtioNetHdr::F_NEEDS_CSUM,
            gso_type: VirtioNetHdr::GSO_TCPV4,
            hdr_len: 54,
            gso_size: 1000,
            csum_start: 34,
            csum_offset: 16,
        };
        t.send_gso(&hdr, &frame).unwrap();
        let acked = seq.wrapping_add(3000).to_be_bytes();
        recv_until(&mut t, None, |f| {
            let rst_all = f.len() >= 54
                && f[12..14] == [8, 0]
                && f[23] == 6
                && f[47] & 0x04 != 0
                && f[42..46] == acked;
            rst_all.then_some(())
        });
        // An inconsistent header is refused by the kernel: an error, counted, no panic.
        let bad = VirtioNetHdr {
            gso_type: 0x77,
            ..hdr
        };
        let before = t.counters().dropped;
        assert!(t.send_gso(&bad, &frame).is_err());
        assert_eq!(t.counters().dropped, before + 1);
    });
}

#[test]
fn bridge_builtin_attaches_the_tap() {
    in_netns(|| {
        let opts = vec![("br".to_string(), BRIDGE.to_string())];
        let mut t = bridge::open(&opts).unwrap();
        assert_eq!(t.info(), format!("br={BRIDGE}"));
        arp_and_ping(&mut *t);
        let e = bridge::open(&[("br".to_string(), "nosuchbr".to_string())])
            .err()
            .unwrap();
        assert!(e.message.contains("nosuchbr"), "{e}");
    });
}

/// Makes /etc/qemu/bridge.conf allow `br` for the duration of the test, restoring it.
struct BridgeAcl {
    path: &'static Path,
    old: Option<String>,
    made_dir: bool,
}

impl BridgeAcl {
    fn allow(br: &str) -> Self {
        let path = Path::new("/etc/qemu/bridge.conf");
        let old = std::fs::read_to_string(path).ok();
        let made_dir = !Path::new("/etc/qemu").exists();
        std::fs::create_dir_all("/etc/qemu").unwrap();
        let mut new = old.clone().unwrap_or_default();
        new.push_str(&format!("\nallow {br}\n"));
        std::fs::write(path, new).unwrap();
        BridgeAcl {
            path,
            old,
            made_dir,
        }
    }
}

impl Drop for BridgeAcl {
    fn drop(&mut self) {
        match &self.old {
            Some(s) => std::fs::write(self.path, s).unwrap(),
            None => std::fs::remove_file(self.path).unwrap(),
        }
        if self.made_dir {
            std::fs::remove_dir("/etc/qemu").unwrap();
        }
    }
}

#[test]
fn qemu_bridge_helper_hands_over_a_tap() {
    assert!(
        Path::new(bridge::DEFAULT_HELPER).exists(),
        "{} missing: install qemu-system-common (scripts/install-deps.sh)",
        bridge::DEFAULT_HELPER
    );
    in_netns(|| {
        let _acl = BridgeAcl::allow(BRIDGE);
        let opts = vec![
            ("br".to_string(), BRIDGE.to_string()),
            ("helper".to_string(), bridge::DEFAULT_HELPER.to_string()),
        ];
        let mut t = bridge::open(&opts).unwrap();
        assert!(t.has_vnet_hdr(), "--use-vnet was passed and honoured");
        arp_and_ping(&mut *t);
        // A helper that fails names itself and what to check.
        let e = tap::open(&[
            ("helper".to_string(), bridge::DEFAULT_HELPER.to_string()),
            ("br".to_string(), "notallowed0".to_string()),
        ])
        .err()
        .unwrap();
        assert_eq!(e.key.as_deref(), Some("helper"));
        assert!(e.message.contains("bridge helper"), "{e}");
    });
}

#[test]
fn without_cap_net_admin_the_error_says_what_to_do() {
    std::thread::spawn(|| {
        // Capabilities are per thread: drop CAP_NET_ADMIN from this one only.
        netns_util::drop_capability(netns_util::CAP_NET_ADMIN);
        let cfg = TapConfig {
            script: None,
            downscript: None,
            ..TapConfig::default()
        };
        let e = TapBackend::open(&cfg).unwrap_err().to_string();
        assert!(e.contains("CAP_NET_ADMIN"), "{e}");
    })
    .join()
    .unwrap();
}

#[test]
fn missing_dev_net_tun_is_explained() {
    std::thread::spawn(|| {
        // A private mount namespace for this thread, with an empty /dev/net.
        // SAFETY: unshare/mount affect only this thread's mount namespace.
        unsafe {
            assert_eq!(libc::unshare(libc::CLONE_NEWNS), 0);
            assert_eq!(
                libc::mount(
                    c"none".as_ptr(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null()
                ),
                0
            );
            assert_eq!(
                libc::mount(
                    c"tmpfs".as_ptr(),
                    c"/dev/net".as_ptr(),
                    c"tmpfs".as_ptr(),
                    0,
                    std::ptr::null()
                ),
                0,
                "{}",
                std::io::Error::last_os_error()
            );
        }
        let e = tap::open(&[("script".to_string(), "no".to_string())])
            .err()
            .unwrap();
        assert!(e.message.contains("could not open /dev/net/tun"), "{e}");
        assert!(e.message.contains("modprobe tun"), "{e}");
    })
    .join()
    .unwrap();
}

#[test]
fn pre_opened_tap_via_fd_option() {
    in_netns(|| {
        use std::os::fd::IntoRawFd;
        let (file, name) = tap::tun::open_tap("vmfd%d", true, false).unwrap();
        ip(&format!("link set {name} master {BRIDGE}"));
        ip(&format!("link set {name} up"));
        let fd = file.into_raw_fd().to_string();
        let e = tap::open(&[
            ("fd".to_string(), fd.clone()),
            ("ifname".to_string(), "x".to_string()),
        ])
        .err()
        .unwrap();
        assert_eq!(e.key.as_deref(), Some("ifname"));
        let mut t = tap::open(&[("fd".to_string(), fd.clone())]).unwrap();
        assert!(
            t.has_vnet_hdr(),
            "IFF_VNET_HDR is detected on the adopted tap"
        );
        assert_eq!(t.info(), format!("fd={fd}"));
        arp_and_ping(&mut *t);
    });
}
