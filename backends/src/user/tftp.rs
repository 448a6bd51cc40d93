//! The read-only TFTP server of the virtual gateway (`tftp=dir`, RFC 1350 with the
//! blksize and tsize options of RFC 2348/2349), answering from port 69 like libslirp,
//! on the IPv4 gateway and on the IPv6 virtual host (`ipv6-host`). Files are served
//! only from inside the root; writes are refused.

use std::fs::File;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Ctx, Verdict};

/// The TFTP server port.
pub const PORT: u16 = 69;
/// Concurrent transfers (libslirp: 20).
const MAX_SESSIONS: usize = 20;
/// A transfer with no ACK for this long is dropped (the client retransmits its ACKs).
const SESSION_IDLE: Duration = Duration::from_secs(5);
const DEFAULT_BLKSIZE: usize = 512;
/// Largest block that fits a 1500-byte MTU without fragmentation.
const MAX_BLKSIZE: usize = 1432;

const OP_RRQ: u16 = 1;
const OP_WRQ: u16 = 2;
const OP_DATA: u16 = 3;
const OP_ACK: u16 = 4;
const OP_ERROR: u16 = 5;
const OP_OACK: u16 = 6;

const ERR_NOT_DEFINED: u16 = 0;
const ERR_NOT_FOUND: u16 = 1;
const ERR_ACCESS: u16 = 2;
const ERR_ILLEGAL_OP: u16 = 4;
const ERR_UNKNOWN_TID: u16 = 5;

/// The two ends of a transfer.
#[derive(Clone, Copy, Debug)]
struct Peer {
    /// The virtual host the guest asked, which answers.
    server: IpAddr,
    guest: SocketAddr,
}

#[derive(Debug)]
struct Session {
    peer: Peer,
    file: File,
    size: u64,
    blksize: usize,
    /// Number of the block last sent (0 = OACK sent, waiting for ACK 0).
    block: u64,
    last: Instant,
}

/// TFTP transfers in progress.
#[derive(Debug, Default)]
pub(crate) struct TftpServer {
    sessions: Vec<Session>,
}

/// Checks at start-up that `tftp=` names a directory, so that a typo is an error naming
/// the option rather than "File not found" for every guest request.
pub(crate) fn check_root(root: &Path) -> std::io::Result<()> {
    let bad = |why: String| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("tftp={}: {why}", root.display()),
        )
    };
    match std::fs::metadata(root) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(bad("not a directory".into())),
        Err(e) => Err(bad(e.to_string())),
    }
}

/// `name` resolved inside `root`, or `None` when it would leave it.
fn resolve(root: &Path, name: &str) -> Option<PathBuf> {
    let rel = Path::new(name.trim_start_matches('/'));
    if name.is_empty() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    let root = root.canonicalize().ok()?;
    let full = root.join(rel).canonicalize().ok()?;
    // A symlink must not lead out of the root either.
    full.starts_with(&root).then_some(full)
}

/// Splits NUL-terminated strings.
fn strings(b: &[u8]) -> Vec<&[u8]> {
    let mut v: Vec<&[u8]> = b.split(|&c| c == 0).collect();
    // The text after the last NUL is not a complete string.
    v.pop();
    v
}

impl TftpServer {
    /// A datagram from `guest` to port 69 of the virtual host `server`.
    pub fn input(&mut self, cx: &mut Ctx, server: IpAddr, guest: SocketAddr, p: &[u8]) -> Verdict {
        let to = Peer { server, guest };
        if p.len() < 4 {
            log::debug!("user: TFTP packet of {} bytes too short", p.len());
            return Verdict::Malformed;
        }
        let op = u16::from_be_bytes([p[0], p[1]]);
        match op {
            OP_RRQ => self.read_request(cx, to, &p[2..]),
            OP_WRQ => {
                error(cx, to, ERR_ACCESS, "Access violation");
                Verdict::Refused
            }
            OP_ACK => {
                let n = u16::from_be_bytes([p[2], p[3]]);
                self.ack(cx, to, n)
            }
            OP_ERROR => {
                self.sessions.retain(|s| s.peer.guest != guest);
                Verdict::Handled
            }
            _ => {
                error(cx, to, ERR_ILLEGAL_OP, "Illegal TFTP operation");
                Verdict::Ignored
            }
        }
    }

    fn read_request(&mut self, cx: &mut Ctx, to: Peer, body: &[u8]) -> Verdict {
        let s = strings(body);
        if s.len() < 2 || s.len() % 2 != 0 {
            log::debug!("user: TFTP read request malformed");
            return Verdict::Malformed;
        }
        let Some(root) = cx.cfg.tftp.clone() else {
            error(cx, to, ERR_ACCESS, "Access violation");
            return Verdict::Refused;
        };
        if !s[1].eq_ignore_ascii_case(b"octet") {
            error(cx, to, ERR_NOT_DEFINED, "Only octet mode supported");
            return Verdict::Refused;
        }
        let name = String::from_utf8_lossy(s[0]);
        let file = resolve(&root, &name).and_then(|p| File::open(p).ok());
        let Some((file, size)) = file.and_then(|f| {
            let m = f.metadata().ok()?;
            m.is_file().then_some((f, m.len()))
        }) else {
            log::debug!("user: TFTP file '{name}' not found or outside the root");
            error(cx, to, ERR_NOT_FOUND, "File not found");
            return Verdict::Refused;
        };
        self.sessions.retain(|x| x.peer.guest != to.guest);
        if self.sessions.len() >= MAX_SESSIONS {
            error(cx, to, ERR_NOT_DEFINED, "Too many transfers");
            return Verdict::Refused;
        }
        let mut blksize = DEFAULT_BLKSIZE;
        let mut oack: Vec<u8> = Vec::new();
        for kv in s[2..].chunks(2) {
            let (k, v) = (kv[0], String::from_utf8_lossy(kv[1]));
            if k.eq_ignore_ascii_case(b"blksize") {
                // RFC 2348: 8..65464; the server may only lower the value, so a
                // request below 8 is not acknowledged (the transfer uses 512).
                if let Some(b) = v.parse::<usize>().ok().filter(|b| *b >= 8) {
                    blksize = b.min(MAX_BLKSIZE);
                    push_opt(&mut oack, "blksize", blksize as u64);
                }
            } else if k.eq_ignore_ascii_case(b"tsize") {
                push_opt(&mut oack, "tsize", size);
            }
        }
        let mut sess = Session {
            peer: to,
            file,
            size,
            blksize,
            block: 0,
            last: cx.now,
        };
        if oack.is_empty() {
            sess.block = 1;
            send_block(cx, &sess);
        } else {
            let mut p = OP_OACK.to_be_bytes().to_vec();
            p.extend_from_slice(&oack);
            send(cx, to, &p);
        }
        self.sessions.push(sess);
        Verdict::Handled
    }

    fn ack(&mut self, cx: &mut Ctx, to: Peer, n: u16) -> Verdict {
        let Some(i) = self.sessions.iter().position(|s| s.peer.guest == to.guest) else {
            error(cx, to, ERR_UNKNOWN_TID, "Unknown transfer ID");
            return Verdict::Ignored;
        };
        let s = &mut self.sessions[i];
        s.last = cx.now;
        if n == s.block as u16 {
            // The block just acknowledged was short: the transfer is complete.
            if s.block > 0 && s.block * s.blksize as u64 > s.size {
                self.sessions.swap_remove(i);
                return Verdict::Handled;
            }
            s.block += 1;
        } else if n != (s.block as u16).wrapping_sub(1) {
            return Verdict::Ignored;
        }
        // Either the next block, or a repeat of the one whose ACK the guest repeated
        // (our DATA was lost).
        send_block(cx, s);
        Verdict::Handled
    }

    /// The earliest session expiry.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.sessions.iter().map(|s| s.last + SESSION_IDLE).min()
    }

    /// Drops idle sessions.
    pub fn timers(&mut self, now: Instant) {
        self.sessions.retain(|s| s.last + SESSION_IDLE > now);
    }
}

fn push_opt(v: &mut Vec<u8>, k: &str, val: u64) {
    v.extend_from_slice(k.as_bytes());
    v.push(0);
    v.extend_from_slice(val.to_string().as_bytes());
    v.push(0);
}

fn send_block(cx: &mut Ctx, s: &Session) {
    let off = (s.block - 1) * s.blksize as u64;
    let want = s.size.saturating_sub(off).min(s.blksize as u64) as usize;
    let mut p = vec![0u8; 4 + want];
    p[0..2].copy_from_slice(&OP_DATA.to_be_bytes());
    p[2..4].copy_from_slice(&(s.block as u16).to_be_bytes());
    let mut got = 0;
    while got < want {
        match s.file.read_at(&mut p[4 + got..], off + got as u64) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) => {
                log::debug!("user: TFTP read failed: {e}");
                break;
            }
        }
    }
    p.truncate(4 + got);
    send(cx, s.peer, &p);
}

fn error(cx: &mut Ctx, to: Peer, code: u16, msg: &str) {
    let mut p = OP_ERROR.to_be_bytes().to_vec();
    p.extend_from_slice(&code.to_be_bytes());
    p.extend_from_slice(msg.as_bytes());
    p.push(0);
    send(cx, to, &p);
}

/// Sends a TFTP packet from port 69 of the virtual host to the guest.
fn send(cx: &mut Ctx, to: Peer, p: &[u8]) {
    cx.out.udp(SocketAddr::new(to.server, PORT), to.guest, p);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_leave_the_root() {
        let dir = std::env::temp_dir().join(format!("vm-nic-tftp-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/f"), b"x").unwrap();
        assert!(resolve(&dir, "sub/f").is_some());
        assert!(resolve(&dir, "/sub/f").is_some());
        assert!(resolve(&dir, "../etc/passwd").is_none());
        assert!(resolve(&dir, "sub/../sub/f").is_none());
        assert!(resolve(&dir, "").is_none());
        std::os::unix::fs::symlink("/etc", dir.join("out")).ok();
        assert!(resolve(&dir, "out/hostname").is_none());
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(strings(b"a\0octet\0tail"), vec![&b"a"[..], b"octet"]);
    }
}
