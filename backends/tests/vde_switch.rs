//! vm-nic's native VDE plug against the real `vde_switch` and `vde_plug` (Debian
//! packages vde2/vdeplug, scripts/install-deps.sh). Frames are checked byte for byte
//! between vm-nic ports and a `vde_plug` on another port, whose stdin/stdout carry frames
//! as a 2-byte big-endian length plus data. Processes are ended by their PIDs.
#![cfg(feature = "vde")]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use vm_nic_backends::vde;
use vm_nic_backends::NetBackend;

const TIMEOUT: Duration = Duration::from_secs(10);

/// A child process killed by PID and reaped on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn switch_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vmnic-vde-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Starts `vde_switch -s DIR` and waits for its control socket.
fn start_switch(dir: &Path) -> Proc {
    let child = Command::new("vde_switch")
        .arg("-s")
        .arg(dir)
        // The switch reads management commands from stdin: keep it open (piped).
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("vde_switch not found: run scripts/install-deps.sh (Debian package vde2)");
    let p = Proc(child);
    let end = Instant::now() + TIMEOUT;
    // The socket file appears at bind(), before listen(): wait until a connection is
    // accepted, or a loaded machine races the first plug against the switch's start-up.
    while std::os::unix::net::UnixStream::connect(dir.join("ctl")).is_err() {
        assert!(
            Instant::now() < end,
            "vde_switch did not start listening on {}/ctl",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    p
}

/// A `vde_plug` on the switch: frames written to it enter the switch, frames leaving the
/// switch to it come out of the channel.
struct Plug {
    _proc: Proc,
    stdin: ChildStdin,
    frames: Receiver<Vec<u8>>,
}

impl Plug {
    fn start(dir: &Path) -> Plug {
        let mut child = Command::new("vde_plug")
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("vde_plug not found: run scripts/install-deps.sh (Debian package vdeplug)");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // Ends at EOF, when the plug is killed.
        std::thread::spawn(move || {
            let mut hdr = [0u8; 2];
            while stdout.read_exact(&mut hdr).is_ok() {
                let mut f = vec![0u8; u16::from_be_bytes(hdr) as usize];
                if stdout.read_exact(&mut f).is_err() || tx.send(f).is_err() {
                    break;
                }
            }
        });
        Plug {
            _proc: Proc(child),
            stdin,
            frames: rx,
        }
    }

    fn send(&mut self, f: &[u8]) {
        let mut b = (f.len() as u16).to_be_bytes().to_vec();
        b.extend_from_slice(f);
        self.stdin.write_all(&b).unwrap();
    }
}

fn frame(tag: u8, n: u16, len: usize) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x02, 0, 0, tag, (n >> 8) as u8, n as u8]);
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend((0..len - 14).map(|i| (i as u8) ^ tag ^ (n as u8)));
    f
}

fn recv_tagged(b: &mut dyn NetBackend, tag: u8, n: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 10000];
    let end = Instant::now() + TIMEOUT;
    while out.len() < n && Instant::now() < end {
        b.poll(Instant::now()).unwrap();
        match b.recv(&mut buf).unwrap() {
            Some(len) if buf[9] == tag => out.push(buf[..len].to_vec()),
            Some(_) => {}
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    out
}

fn plug_tagged(p: &Plug, tag: u8, n: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let end = Instant::now() + TIMEOUT;
    while out.len() < n {
        let left = end.saturating_duration_since(Instant::now());
        match p.frames.recv_timeout(left) {
            Ok(f) if f.get(9) == Some(&tag) => out.push(f),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    out
}

fn sock_opt(dir: &Path) -> Vec<(String, String)> {
    vec![("sock".to_string(), dir.display().to_string())]
}

#[test]
fn frames_cross_vde_switch_to_vde_plug_and_back() {
    let dir = switch_dir("plug");
    let _sw = start_switch(&dir);
    let mut ours = vde::open(&sock_opt(&dir)).unwrap();
    assert!(ours.link_up());
    let mut plug = Plug::start(&dir);
    // The plug may still be connecting: probe until a frame gets through.
    let end = Instant::now() + TIMEOUT;
    let mut n = 0;
    loop {
        assert!(Instant::now() < end, "vde_plug never delivered a frame");
        plug.send(&frame(0xee, n, 60));
        n += 1;
        if !recv_tagged(&mut *ours, 0xee, 1).is_empty() {
            break;
        }
    }
    let from_plug: Vec<Vec<u8>> = (0..50)
        .map(|i| frame(0x1, i, 60 + i as usize * 29))
        .collect();
    for f in &from_plug {
        plug.send(f);
    }
    assert_eq!(recv_tagged(&mut *ours, 0x1, 50), from_plug);
    let from_us: Vec<Vec<u8>> = (0..50)
        .map(|i| frame(0x2, i, 60 + i as usize * 29))
        .collect();
    for f in &from_us {
        ours.send(f).unwrap();
    }
    assert_eq!(plug_tagged(&plug, 0x2, 50), from_us);
    assert_eq!(ours.counters().dropped, 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn explicit_ports_busy_ports_and_a_dying_switch() {
    let dir = switch_dir("ports");
    let mut sw = start_switch(&dir);
    let mut opts = sock_opt(&dir);
    opts.push(("port".to_string(), "5".to_string()));
    let mut a = vde::open(&opts).unwrap();
    assert!(a.info().contains(&format!("{}", dir.display())));
    // vde_switch has 32 ports unless told otherwise: a request for port 1000 is ignored
    // by the switch; the error names the port after a bounded wait.
    let mut far = sock_opt(&dir);
    far.push(("port".to_string(), "1000".to_string()));
    let e = vde::open(&far).err().unwrap();
    assert_eq!(e.key.as_deref(), Some("port"), "{e}");
    assert!(e.message.contains("port 1000"), "{e}");
    let mut b = vde::open(&sock_opt(&dir)).unwrap();
    let fa: Vec<Vec<u8>> = (0..20).map(|i| frame(0xa, i, 1514)).collect();
    for f in &fa {
        a.send(f).unwrap();
    }
    assert_eq!(recv_tagged(&mut *b, 0xa, 20), fa);
    let fb: Vec<Vec<u8>> = (0..20).map(|i| frame(0xb, i, 64)).collect();
    for f in &fb {
        b.send(f).unwrap();
    }
    assert_eq!(recv_tagged(&mut *a, 0xb, 20), fb);

    // The switch goes away: link down, frames dropped and counted, no error, no panic.
    sw.0.kill().unwrap();
    sw.0.wait().unwrap();
    let end = Instant::now() + TIMEOUT;
    while a.link_up() {
        assert!(Instant::now() < end, "link stayed up after the switch died");
        a.poll(Instant::now()).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let before = a.counters().dropped;
    a.send(&frame(0xa, 99, 60)).unwrap();
    assert_eq!(a.counters().dropped, before + 1);
    assert_eq!(a.recv(&mut [0u8; 2000]).unwrap(), None);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_switch_is_a_clear_error() {
    let dir = switch_dir("none");
    let e = vde::open(&sock_opt(&dir)).err().unwrap();
    assert_eq!(e.key.as_deref(), Some("sock"));
    assert!(
        e.message.contains("cannot connect to the VDE switch"),
        "{e}"
    );
    assert!(e.message.contains("vde_switch -s"), "{e}");
}
