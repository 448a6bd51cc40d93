//! Host-side peers of the user-network tests, all on 127.0.0.1 and all bounded in time:
//! an HTTP server (GET /blob serves a file, POST /upload hashes what it receives), a UDP
//! DNS responder for one name, a client that reaches a guest server through `hostfwd`,
//! and files with known SHA-256 sums.

#![allow(dead_code)] // each test uses the part it needs

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// No peer here lives longer than this. Longer than any guest boot's host-side limit
/// (the NE2000's bulk boot may take 45 minutes): a server that stopped accepting before
/// the guest's last step would fail that step for a reason that is not the NIC's.
pub const LIFETIME: Duration = Duration::from_secs(3000);

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh directory under the system temp dir, unique to this process and `tag`.
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("vmnic-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `len` pseudo-random bytes (xorshift from `seed`) to `path`.
pub fn write_blob(path: &Path, len: usize, seed: u64) {
    let mut x = seed | 1;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut chunk = vec![0u8; 1 << 16];
    let mut left = len;
    while left > 0 {
        for b in chunk.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let bytes = x.to_le_bytes();
            b.copy_from_slice(&bytes[..b.len()]);
        }
        let n = left.min(chunk.len());
        f.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
    f.flush().unwrap();
}

/// SHA-256 of a file, by coreutils' `sha256sum`.
pub fn sha256_file(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// SHA-256 of bytes read from `r`, at most `len` of them, by `sha256sum` on a pipe.
fn sha256_stream(r: &mut impl Read, len: usize) -> std::io::Result<String> {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().unwrap();
    let copied = std::io::copy(&mut r.take(len as u64), &mut stdin);
    drop(stdin);
    let out = child.wait_with_output()?;
    copied?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string())
}

/// A stop flag ended on drop.
struct Stop(Arc<AtomicBool>);

impl Drop for Stop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A minimal HTTP/1.0 server on 127.0.0.1 (or ::1): `GET /blob` sends the blob file,
/// `POST /upload` answers with the SHA-256 of the body and records it.
pub struct HttpServer {
    /// Its port on the loopback.
    pub port: u16,
    /// Connections accepted so far.
    pub connections: Arc<AtomicUsize>,
    /// SHA-256 sums of the bodies of completed uploads, in order.
    pub uploads: Arc<Mutex<Vec<(usize, String)>>>,
    _stop: Stop,
}

impl HttpServer {
    /// Serves `blob` on 127.0.0.1 until dropped (or [`LIFETIME`]).
    pub fn start(blob: PathBuf) -> HttpServer {
        HttpServer::start_on(Ipv4Addr::LOCALHOST.into(), blob)
    }

    /// Serves `blob` on the loopback address `ip` (127.0.0.1 or ::1) until dropped.
    pub fn start_on(ip: IpAddr, blob: PathBuf) -> HttpServer {
        let l = TcpListener::bind((ip, 0)).unwrap_or_else(|e| {
            panic!("cannot listen on {ip} (does the host have it on `lo`?): {e}")
        });
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicUsize::new(0));
        let uploads = Arc::new(Mutex::new(Vec::new()));
        let (s, c, u) = (stop.clone(), connections.clone(), uploads.clone());
        std::thread::spawn(move || {
            let t = Instant::now();
            while !s.load(Ordering::Relaxed) && t.elapsed() < LIFETIME {
                match l.accept() {
                    Ok((conn, _)) => {
                        c.fetch_add(1, Ordering::Relaxed);
                        let (blob, u) = (blob.clone(), u.clone());
                        std::thread::spawn(move || {
                            if let Err(e) = serve_http(conn, &blob, &u) {
                                eprintln!("test HTTP server: {e}");
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        HttpServer {
            port,
            connections,
            uploads,
            _stop: Stop(stop),
        }
    }
}

fn serve_http(
    conn: TcpStream,
    blob: &Path,
    uploads: &Mutex<Vec<(usize, String)>>,
) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut rd = BufReader::new(conn.try_clone()?);
    let mut request = String::new();
    rd.read_line(&mut request)?;
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if rd.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut w = conn;
    let path = request.split_whitespace().nth(1).unwrap_or("");
    if request.starts_with("GET ") && path == "/blob" {
        let mut f = std::fs::File::open(blob)?;
        let size = f.metadata()?.len();
        write!(
            w,
            "HTTP/1.0 200 OK\r\nContent-Length: {size}\r\nContent-Type: application/octet-stream\r\n\r\n"
        )?;
        std::io::copy(&mut f, &mut w)?;
    } else if request.starts_with("POST ") && path == "/upload" {
        let sha = sha256_stream(&mut rd, len)?;
        uploads.lock().unwrap().push((len, sha.clone()));
        write!(
            w,
            "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{sha}",
            sha.len()
        )?;
    } else {
        write!(w, "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n")?;
    }
    w.flush()?;
    let _ = w.shutdown(Shutdown::Write);
    Ok(())
}

/// A UDP DNS responder on 127.0.0.1: answers `A` queries for one name with one address,
/// NXDOMAIN for anything else; counts the queries it saw.
pub struct DnsResponder {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Queries answered.
    pub queries: Arc<AtomicUsize>,
    _stop: Stop,
}

impl DnsResponder {
    /// Answers `name` with `addr` until dropped (or [`LIFETIME`]).
    pub fn start(name: &str, addr: Ipv4Addr) -> DnsResponder {
        let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let port = sock.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let queries = Arc::new(AtomicUsize::new(0));
        let (s, q, name) = (stop.clone(), queries.clone(), name.to_ascii_lowercase());
        std::thread::spawn(move || {
            let t = Instant::now();
            let mut buf = [0u8; 512];
            while !s.load(Ordering::Relaxed) && t.elapsed() < LIFETIME {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                if let Some(reply) = dns_reply(&buf[..n], &name, addr) {
                    q.fetch_add(1, Ordering::Relaxed);
                    let _ = sock.send_to(&reply, from);
                }
            }
        });
        DnsResponder {
            port,
            queries,
            _stop: Stop(stop),
        }
    }
}

/// The answer to one DNS query (RFC 1035 §4.1): the question echoed, one A record when
/// it asks for `name` type A class IN, NXDOMAIN otherwise (empty NOERROR for other types
/// of `name`, as busybox nslookup also asks AAAA).
pub fn dns_reply(q: &[u8], name: &str, addr: Ipv4Addr) -> Option<Vec<u8>> {
    if q.len() < 12 || q[2] & 0x80 != 0 || u16::from_be_bytes([q[4], q[5]]) != 1 {
        return None;
    }
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let l = *q.get(i)? as usize;
        i += 1;
        if l == 0 {
            break;
        }
        if l > 63 {
            return None;
        }
        labels.push(String::from_utf8_lossy(q.get(i..i + l)?).to_ascii_lowercase());
        i += l;
    }
    let qtype = u16::from_be_bytes([*q.get(i)?, *q.get(i + 1)?]);
    let question_end = i + 4;
    q.get(..question_end)?;
    let ours = labels.join(".") == name;
    let mut r = q[..question_end].to_vec();
    r[2] = 0x80 | (q[2] & 0x01); // QR, RD copied
    r[3] = 0x80 | if ours { 0 } else { 3 }; // RA, NOERROR or NXDOMAIN
    r[6..12].copy_from_slice(&[0, 0, 0, 0, 0, 0]);
    if ours && qtype == 1 {
        r[7] = 1; // ANCOUNT
        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        r.extend_from_slice(&addr.octets());
    }
    Some(r)
}

/// Reaches a one-shot guest server through `hostfwd` at 127.0.0.1:`port`: connects,
/// sends `token`, half-closes and reads until EOF; retries (every 300 ms, until
/// `limit`) while the guest is not listening yet. Returns what the guest sent.
/// Stops early when `stop` is set.
pub fn hostfwd_client(
    port: u16,
    token: String,
    limit: Duration,
    stop: Arc<AtomicBool>,
) -> JoinHandle<Option<String>> {
    std::thread::spawn(move || {
        let t = Instant::now();
        while t.elapsed() < limit && !stop.load(Ordering::Relaxed) {
            if let Ok(mut s) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
                let mut got = String::new();
                let ok = s.write_all(token.as_bytes()).is_ok()
                    && s.write_all(b"\n").is_ok()
                    && s.shutdown(Shutdown::Write).is_ok()
                    && s.read_to_string(&mut got).is_ok();
                if ok && !got.is_empty() {
                    return Some(got.trim().to_string());
                }
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        None
    })
}

/// A free TCP port on 127.0.0.1 (bound and released; the caller binds it next).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process ended by its PID on drop (SIGTERM, then SIGKILL after 5 s).
pub struct Proc(pub Child);

impl Proc {
    /// Sends SIGTERM and waits (at most 10 s) for the exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        // SAFETY: signals the child this test started, by its PID.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(s)) = self.0.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() && self.terminate().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Waits (bounded) until a `vm-nic switch` child has printed its `info network` (its hub
/// is live); returns the text.
pub fn wait_ready(child: &mut Child) -> String {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut acc = String::new();
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            acc.push_str(&line);
            acc.push('\n');
            // `info network` is printed in one write after every backend opened.
            if acc.lines().count() >= 2 {
                let _ = tx.send(acc.clone());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("vm-nic switch printed no info network")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_reply_answers_the_name_and_refuses_others() {
        // Query id 0x1234, RD, one question: vmnic-test.example A IN.
        let mut q = vec![0x12, 0x34, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in ["vmnic-test", "example"] {
            q.push(l.len() as u8);
            q.extend_from_slice(l.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        let a = Ipv4Addr::new(192, 0, 2, 77);
        let r = dns_reply(&q, "vmnic-test.example", a).unwrap();
        assert_eq!(&r[..4], &[0x12, 0x34, 0x81, 0x80]);
        assert_eq!(&r[r.len() - 4..], &a.octets());
        let r = dns_reply(&q, "other.example", a).unwrap();
        assert_eq!(r[3] & 0x0f, 3);
        assert!(dns_reply(&q[..10], "x", a).is_none());
    }
}
