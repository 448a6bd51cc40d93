//! Reads vm-nic's pcap files back with the real tcpdump and checks every frame byte for
//! byte. Needs Debian's `tcpdump` (scripts/install-deps.sh); without it the test fails
//! with a message saying so.
#![cfg(feature = "dump")]

use std::path::{Path, PathBuf};
use std::process::Command;

use vm_nic_backends::dump::{self, DumpFilter, FilterQueue};
use vm_nic_backends::hub::Hub;
use vm_nic_backends::memory::MemoryBackend;
use vm_nic_backends::NetBackend;

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("vmnic-it-{}-{name}.pcap", std::process::id()))
}

/// Runs `tcpdump -r FILE -xx` and returns the captured bytes of each frame.
fn tcpdump_frames(path: &Path) -> Vec<Vec<u8>> {
    let out = Command::new("tcpdump")
        .args(["-r", path.to_str().unwrap(), "-n", "-tt", "-xx"])
        .output()
        .expect("tcpdump not found: run scripts/install-deps.sh (Debian package tcpdump)");
    assert!(
        out.status.success(),
        "tcpdump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut frames: Vec<Vec<u8>> = Vec::new();
    for line in text.lines() {
        let Some(hex) = line.trim_start().strip_prefix("0x") else {
            if !line.starts_with([' ', '\t']) {
                frames.push(Vec::new());
            }
            continue;
        };
        let (_, bytes) = hex.split_once(':').unwrap();
        let cur = frames.last_mut().unwrap();
        for word in bytes.split_whitespace() {
            for i in (0..word.len()).step_by(2) {
                cur.push(u8::from_str_radix(&word[i..i + 2], 16).unwrap());
            }
        }
    }
    frames
}

/// A recognisable frame: broadcast destination, a made-up EtherType, `n` in the payload.
fn frame(n: u8, len: usize) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, n]);
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend((0..len - 14).map(|i| (i as u8).wrapping_mul(7).wrapping_add(n)));
    f
}

#[test]
fn hub_dump_is_read_back_by_tcpdump() {
    let p = tmp("hub");
    let hub = Hub::new(0);
    let mut nic = hub.add_port();
    let mut dump_port = hub.add_port();
    let opts = vec![
        ("file".to_string(), p.to_str().unwrap().to_string()),
        ("len".to_string(), "100".to_string()),
    ];
    let mut dumper = dump::open(&opts).unwrap();
    let sent: Vec<Vec<u8>> = (0..20u8).map(|n| frame(n, 60 + n as usize * 37)).collect();
    for f in &sent {
        nic.send(f).unwrap();
    }
    // The runner's job: pump what the hub gives the dump port into the dump backend.
    let mut buf = vec![0u8; 2048];
    while let Some(n) = dump_port.recv(&mut buf).unwrap() {
        dumper.send(&buf[..n]).unwrap();
    }
    // Written as frames pass: readable before the backend is dropped.
    let got = tcpdump_frames(&p);
    assert_eq!(got.len(), sent.len());
    for (g, s) in got.iter().zip(&sent) {
        assert_eq!(g[..], s[..s.len().min(100)]);
    }
    drop(dumper);
    std::fs::remove_file(&p).unwrap();
}

#[test]
fn filter_dump_is_read_back_by_tcpdump() {
    let p = tmp("filter");
    let (a, mut far) = MemoryBackend::pair();
    let mut f = DumpFilter::new(Box::new(a), &p, 65536, FilterQueue::All).unwrap();
    let mut expect = Vec::new();
    let mut buf = vec![0u8; 2048];
    for n in 0..10u8 {
        let out = frame(n, 1514);
        f.send(&out).unwrap();
        expect.push(out);
        let inbound = frame(100 + n, 64);
        far.send(&inbound).unwrap();
        assert_eq!(f.recv(&mut buf).unwrap(), Some(64));
        expect.push(inbound);
    }
    drop(f);
    assert_eq!(tcpdump_frames(&p), expect);
    std::fs::remove_file(&p).unwrap();
}
