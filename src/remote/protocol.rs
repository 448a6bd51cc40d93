//! QEMU's multi-process ("mpqemu") wire protocol: message types, a decoder, an encoder,
//! and reading/writing whole messages with file descriptors passed by `SCM_RIGHTS`.
//!
//! Wire layout (all little-endian, as QEMU 7.2's `x-pci-proxy-dev` sends it on x86-64):
//! a 16-byte header — `i32` command, 4 bytes of padding, `u64` payload size — followed by
//! the payload. File descriptors ride on the `recvmsg` that carries the header.
//!
//! | command | payload | fds | reply |
//! |---|---|---|---|
//! | 0 `SYNC_SYSMEM` | `u64 gpas[8]`, `u64 sizes[8]`, `i64 offsets[8]` (192 bytes) | one per region, 1..=8 | none |
//! | 1 `RET` | `u64` value (8 bytes) | 0 | — |
//! | 2 `PCI_CFGWRITE` | `u32 addr`, `u32 val`, `i32 len` (12 bytes) | 0 | `RET` 0 (all-ones on error) |
//! | 3 `PCI_CFGREAD` | as `PCI_CFGWRITE` | 0 | `RET` value read |
//! | 4 `BAR_WRITE` | `u64 addr`, `u64 val`, `u32 size`, `u8 memory`, 3 padding (24 bytes) | 0 | `RET` 0 |
//! | 5 `BAR_READ` | as `BAR_WRITE` | 0 | `RET` value read |
//! | 6 `SET_IRQFD` | none | 2: irqfd, resamplefd | none |
//! | 7 `DEVICE_RESET` | none | 0 | `RET` 0 |
//!
//! The decoder ([`decode`]) is a pure function of the header, payload bytes and received
//! descriptors, so it is unit-tested and fuzzable without sockets. Every rule QEMU's own
//! validator applies (exact payload size per command, descriptors only where the command
//! carries them) is enforced here; anything else is a [`ProtoError`].

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use rustix::net::{
    recvmsg, send, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags,
};

/// Size of the message header: command, padding, payload size.
pub const HEADER_LEN: usize = 16;
/// Most file descriptors one message may carry (QEMU's `REMOTE_MAX_FDS`).
pub const MAX_FDS: usize = 8;
/// Payload of `SYNC_SYSMEM`, the largest message.
pub const SYSMEM_LEN: usize = 8 * 3 * MAX_FDS;
/// Payload of `PCI_CFGREAD`/`PCI_CFGWRITE`.
pub const CONFIG_LEN: usize = 12;
/// Payload of `BAR_READ`/`BAR_WRITE`.
pub const BAR_LEN: usize = 24;
/// Payload of `RET`.
pub const RET_LEN: usize = 8;

/// Command numbers on the wire.
pub mod cmd {
    /// Guest RAM regions as memory-mappable descriptors.
    pub const SYNC_SYSMEM: i32 = 0;
    /// Reply to a request.
    pub const RET: i32 = 1;
    /// PCI config-space write.
    pub const PCI_CFGWRITE: i32 = 2;
    /// PCI config-space read.
    pub const PCI_CFGREAD: i32 = 3;
    /// BAR (MMIO or I/O port) write.
    pub const BAR_WRITE: i32 = 4;
    /// BAR read.
    pub const BAR_READ: i32 = 5;
    /// INTx eventfds.
    pub const SET_IRQFD: i32 = 6;
    /// Device reset.
    pub const DEVICE_RESET: i32 = 7;
}

/// One guest RAM region of a `SYNC_SYSMEM` message: `size` bytes at guest-physical `gpa`,
/// found at `offset` inside the region's descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SysmemRegion {
    /// Guest-physical address.
    pub gpa: u64,
    /// Length in bytes.
    pub size: u64,
    /// Offset inside the file descriptor (signed on the wire, as QEMU's `off_t`).
    pub offset: i64,
}

/// One decoded message.
#[derive(Debug)]
pub enum Message {
    /// The guest's RAM: one region per descriptor, in the same order.
    SyncSysmem {
        /// The regions.
        regions: Vec<SysmemRegion>,
        /// One descriptor per region.
        fds: Vec<OwnedFd>,
    },
    /// A reply carrying one value.
    Ret(u64),
    /// Write `len` bytes of `val` at config-space offset `addr`.
    PciCfgWrite {
        /// Config-space offset.
        addr: u32,
        /// Value.
        val: u32,
        /// Width in bytes as sent (the server checks it is 1, 2 or 4).
        len: i32,
    },
    /// Read `len` bytes at config-space offset `addr`.
    PciCfgRead {
        /// Config-space offset.
        addr: u32,
        /// Width in bytes as sent.
        len: i32,
    },
    /// Write `size` bytes of `val` at guest-physical (`memory`) or I/O-port address `addr`.
    BarWrite {
        /// Guest-physical or port address.
        addr: u64,
        /// Value.
        val: u64,
        /// Width in bytes as sent.
        size: u32,
        /// True for memory space, false for I/O space.
        memory: bool,
    },
    /// Read `size` bytes at guest-physical (`memory`) or I/O-port address `addr`.
    BarRead {
        /// Guest-physical or port address.
        addr: u64,
        /// Width in bytes as sent.
        size: u32,
        /// True for memory space, false for I/O space.
        memory: bool,
    },
    /// The INTx line: assert by writing `irqfd`; `resamplefd` is signalled when the
    /// guest acknowledges the interrupt.
    SetIrqfd {
        /// Interrupt eventfd.
        irqfd: OwnedFd,
        /// Resample eventfd.
        resamplefd: OwnedFd,
    },
    /// Reset the device.
    DeviceReset,
}

impl Message {
    /// The wire command number.
    pub fn command(&self) -> i32 {
        match self {
            Message::SyncSysmem { .. } => cmd::SYNC_SYSMEM,
            Message::Ret(_) => cmd::RET,
            Message::PciCfgWrite { .. } => cmd::PCI_CFGWRITE,
            Message::PciCfgRead { .. } => cmd::PCI_CFGREAD,
            Message::BarWrite { .. } => cmd::BAR_WRITE,
            Message::BarRead { .. } => cmd::BAR_READ,
            Message::SetIrqfd { .. } => cmd::SET_IRQFD,
            Message::DeviceReset => cmd::DEVICE_RESET,
        }
    }

    /// The header and payload bytes of this message (descriptors travel separately, see
    /// [`Message::fds`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut payload = Vec::new();
        match self {
            Message::SyncSysmem { regions, .. } => {
                let mut gpas = [0u64; MAX_FDS];
                let mut sizes = [0u64; MAX_FDS];
                let mut offsets = [0i64; MAX_FDS];
                for (i, r) in regions.iter().take(MAX_FDS).enumerate() {
                    gpas[i] = r.gpa;
                    sizes[i] = r.size;
                    offsets[i] = r.offset;
                }
                gpas.iter()
                    .for_each(|v| payload.extend_from_slice(&v.to_le_bytes()));
                sizes
                    .iter()
                    .for_each(|v| payload.extend_from_slice(&v.to_le_bytes()));
                offsets
                    .iter()
                    .for_each(|v| payload.extend_from_slice(&v.to_le_bytes()));
            }
            Message::Ret(v) => payload.extend_from_slice(&v.to_le_bytes()),
            Message::PciCfgWrite { addr, val, len } => {
                payload.extend_from_slice(&addr.to_le_bytes());
                payload.extend_from_slice(&val.to_le_bytes());
                payload.extend_from_slice(&len.to_le_bytes());
            }
            Message::PciCfgRead { addr, len } => {
                payload.extend_from_slice(&addr.to_le_bytes());
                payload.extend_from_slice(&0u32.to_le_bytes());
                payload.extend_from_slice(&len.to_le_bytes());
            }
            Message::BarWrite {
                addr,
                val,
                size,
                memory,
            } => encode_bar(&mut payload, *addr, *val, *size, *memory),
            Message::BarRead { addr, size, memory } => {
                encode_bar(&mut payload, *addr, 0, *size, *memory)
            }
            Message::SetIrqfd { .. } | Message::DeviceReset => {}
        }
        let mut out = header(self.command(), payload.len() as u64).to_vec();
        out.extend_from_slice(&payload);
        out
    }

    /// The descriptors this message carries, in wire order.
    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        match self {
            Message::SyncSysmem { fds, .. } => fds.iter().map(|f| f.as_fd()).collect(),
            Message::SetIrqfd { irqfd, resamplefd } => vec![irqfd.as_fd(), resamplefd.as_fd()],
            _ => Vec::new(),
        }
    }
}

fn encode_bar(payload: &mut Vec<u8>, addr: u64, val: u64, size: u32, memory: bool) {
    payload.extend_from_slice(&addr.to_le_bytes());
    payload.extend_from_slice(&val.to_le_bytes());
    payload.extend_from_slice(&size.to_le_bytes());
    payload.extend_from_slice(&[memory as u8, 0, 0, 0]);
}

/// A message header for `command` with a payload of `size` bytes.
pub fn header(command: i32, size: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(&command.to_le_bytes());
    h[8..].copy_from_slice(&size.to_le_bytes());
    h
}

/// Why a message could not be read or decoded.
#[derive(Debug)]
pub enum ProtoError {
    /// The socket failed.
    Io(io::Error),
    /// The peer closed the connection in the middle of a message.
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes received.
        got: usize,
        /// Bytes expected.
        want: usize,
    },
    /// The peer stopped sending in the middle of a message for longer than the socket's
    /// read timeout.
    Stalled {
        /// What was being read.
        what: &'static str,
    },
    /// A command number this protocol does not have.
    UnknownCommand(i32),
    /// A payload size that does not match the command.
    BadSize {
        /// The command.
        command: i32,
        /// Size in the header.
        size: u64,
        /// Size the command has.
        expected: usize,
    },
    /// A wrong number of file descriptors for the command.
    BadFds {
        /// The command.
        command: i32,
        /// Descriptors received.
        got: usize,
        /// What the command carries.
        expected: &'static str,
    },
    /// More descriptors were sent than fit the control buffer (the kernel dropped some).
    FdsTruncated,
    /// A second set of descriptors arrived before the message of the first was whole.
    MisplacedFds,
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtoError::Io(e) => write!(f, "socket error: {e}"),
            ProtoError::Truncated { what, got, want } => write!(
                f,
                "peer closed the connection inside a message: {what} has {got} of {want} bytes"
            ),
            ProtoError::Stalled { what } => {
                write!(
                    f,
                    "peer stopped sending in the middle of a message ({what})"
                )
            }
            ProtoError::UnknownCommand(c) => write!(f, "unknown command {c}"),
            ProtoError::BadSize {
                command,
                size,
                expected,
            } => write!(
                f,
                "command {} ({command}) with a {size}-byte payload; it has {expected} bytes",
                command_name(*command)
            ),
            ProtoError::BadFds {
                command,
                got,
                expected,
            } => write!(
                f,
                "command {} ({command}) came with {got} file descriptors; it carries {expected}",
                command_name(*command)
            ),
            ProtoError::FdsTruncated => write!(
                f,
                "more than {MAX_FDS} file descriptors in one message; the kernel dropped some"
            ),
            ProtoError::MisplacedFds => write!(
                f,
                "file descriptors arrived twice for one message (inside it, or ahead of it)"
            ),
        }
    }
}

impl std::error::Error for ProtoError {}

impl From<io::Error> for ProtoError {
    fn from(e: io::Error) -> Self {
        ProtoError::Io(e)
    }
}

/// QEMU's name for a command number.
pub fn command_name(command: i32) -> &'static str {
    match command {
        cmd::SYNC_SYSMEM => "SYNC_SYSMEM",
        cmd::RET => "RET",
        cmd::PCI_CFGWRITE => "PCI_CFGWRITE",
        cmd::PCI_CFGREAD => "PCI_CFGREAD",
        cmd::BAR_WRITE => "BAR_WRITE",
        cmd::BAR_READ => "BAR_READ",
        cmd::SET_IRQFD => "SET_IRQFD",
        cmd::DEVICE_RESET => "DEVICE_RESET",
        _ => "unknown",
    }
}

/// The payload size command `command` has, or `None` for an unknown command.
pub fn payload_len(command: i32) -> Option<usize> {
    Some(match command {
        cmd::SYNC_SYSMEM => SYSMEM_LEN,
        cmd::RET => RET_LEN,
        cmd::PCI_CFGWRITE | cmd::PCI_CFGREAD => CONFIG_LEN,
        cmd::BAR_WRITE | cmd::BAR_READ => BAR_LEN,
        cmd::SET_IRQFD | cmd::DEVICE_RESET => 0,
        _ => return None,
    })
}

/// Splits a header into command and payload size, checking both: the size must be the
/// one the command has, so a hostile size never makes the reader allocate or wait for
/// more than [`SYSMEM_LEN`] bytes.
pub fn parse_header(h: &[u8; HEADER_LEN]) -> Result<(i32, usize), ProtoError> {
    let command = i32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let size = u64::from_le_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]]);
    let expected = payload_len(command).ok_or(ProtoError::UnknownCommand(command))?;
    if size != expected as u64 {
        return Err(ProtoError::BadSize {
            command,
            size,
            expected,
        });
    }
    Ok((command, expected))
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u32_at(b, off) as u64 | (u32_at(b, off + 4) as u64) << 32
}

fn expect_fds(
    command: i32,
    fds: &[OwnedFd],
    ok: bool,
    expected: &'static str,
) -> Result<(), ProtoError> {
    if ok {
        Ok(())
    } else {
        Err(ProtoError::BadFds {
            command,
            got: fds.len(),
            expected,
        })
    }
}

/// Decodes one message from its command, payload and the descriptors that came with it.
pub fn decode(command: i32, payload: &[u8], fds: Vec<OwnedFd>) -> Result<Message, ProtoError> {
    let expected = payload_len(command).ok_or(ProtoError::UnknownCommand(command))?;
    if payload.len() != expected {
        return Err(ProtoError::BadSize {
            command,
            size: payload.len() as u64,
            expected,
        });
    }
    match command {
        cmd::SYNC_SYSMEM => {
            let n = fds.len();
            expect_fds(command, &fds, (1..=MAX_FDS).contains(&n), "1 to 8")?;
            let regions = (0..n)
                .map(|i| SysmemRegion {
                    gpa: u64_at(payload, 8 * i),
                    size: u64_at(payload, 8 * (MAX_FDS + i)),
                    offset: u64_at(payload, 8 * (2 * MAX_FDS + i)) as i64,
                })
                .collect();
            Ok(Message::SyncSysmem { regions, fds })
        }
        cmd::SET_IRQFD => {
            expect_fds(command, &fds, fds.len() == 2, "2")?;
            let mut it = fds.into_iter();
            match (it.next(), it.next()) {
                (Some(irqfd), Some(resamplefd)) => Ok(Message::SetIrqfd { irqfd, resamplefd }),
                _ => unreachable!("two descriptors were checked above"),
            }
        }
        _ => {
            expect_fds(command, &fds, fds.is_empty(), "none")?;
            Ok(match command {
                cmd::RET => Message::Ret(u64_at(payload, 0)),
                cmd::PCI_CFGWRITE => Message::PciCfgWrite {
                    addr: u32_at(payload, 0),
                    val: u32_at(payload, 4),
                    len: u32_at(payload, 8) as i32,
                },
                cmd::PCI_CFGREAD => Message::PciCfgRead {
                    addr: u32_at(payload, 0),
                    len: u32_at(payload, 8) as i32,
                },
                cmd::BAR_WRITE => Message::BarWrite {
                    addr: u64_at(payload, 0),
                    val: u64_at(payload, 8),
                    size: u32_at(payload, 16),
                    memory: payload[20] != 0,
                },
                cmd::BAR_READ => Message::BarRead {
                    addr: u64_at(payload, 0),
                    size: u32_at(payload, 16),
                    memory: payload[20] != 0,
                },
                _ => Message::DeviceReset,
            })
        }
    }
}

/// Longest message on the wire (`SYNC_SYSMEM`).
pub const MAX_MESSAGE_LEN: usize = HEADER_LEN + SYSMEM_LEN;
/// What a [`MessageReader`] asks one `recvmsg` for when no header is buffered: a whole
/// `BAR_READ`/`BAR_WRITE`, the message that dominates a running guest.
const BAR_MESSAGE_LEN: usize = HEADER_LEN + BAR_LEN;

/// What [`MessageReader::next`] found.
#[derive(Debug)]
pub enum Received {
    /// One whole, valid message.
    Message(Message),
    /// Nothing arrived within the socket's receive timeout (or, not waiting, nothing was
    /// there); no part of a message is buffered.
    Idle,
    /// The peer closed (or reset) the connection between messages: a clean disconnect.
    Closed,
}

/// Reads whole messages from a stream socket into a fixed buffer, with no allocation
/// for a message without descriptors.
///
/// One `recvmsg` asks for a whole BAR message (header and payload) when no header is
/// buffered, and for exactly the rest of the message once its header is known, so the
/// common request costs one system call. A peer that sends a shorter message and, without
/// waiting for a reply, the next one may have the start of that next one read along; it
/// stays in the buffer for the next call. Descriptors come with the `recvmsg` that reads
/// the first bytes of the chunk the peer sent them with, and the kernel ends a read after
/// such a chunk (it may join chunks without descriptors before it), so they belong to the
/// message holding the last byte of that read; it must be one that carries descriptors.
///
/// The socket's receive timeout is the wait slice: between messages a read that times out
/// is [`Received::Idle`]; inside a message the reader keeps reading until the peer has
/// sent nothing for the `stall` limit given to [`MessageReader::next`].
pub struct MessageReader {
    buf: [u8; MAX_MESSAGE_LEN],
    len: usize,
    fds: Vec<OwnedFd>,
    /// With descriptors pending: the buffer offset just past the read that brought them.
    fds_end: usize,
    /// Never read past the message whose header is buffered (a client reading replies
    /// with a fresh reader each time must not lose bytes).
    exact: bool,
}

impl fmt::Debug for MessageReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageReader")
            .field("buffered", &self.len)
            .field("fds", &self.fds.len())
            .finish()
    }
}

impl Default for MessageReader {
    fn default() -> Self {
        Self::new()
    }
}

impl MessageReader {
    /// An empty reader.
    pub fn new() -> Self {
        MessageReader {
            buf: [0; MAX_MESSAGE_LEN],
            len: 0,
            fds: Vec::new(),
            fds_end: 0,
            exact: false,
        }
    }

    /// A reader that reads the header on its own and then exactly the payload, so it never
    /// takes bytes of a following message off the socket.
    pub fn exact() -> Self {
        MessageReader {
            exact: true,
            ..Self::new()
        }
    }

    /// True when no byte or descriptor of an unfinished message is buffered.
    pub fn is_empty(&self) -> bool {
        self.len == 0 && self.fds.is_empty()
    }

    /// The next whole message. With `wait`, blocks in `recvmsg` up to the socket's receive
    /// timeout for its first bytes; without, returns [`Received::Idle`] at once when none
    /// are there. Once part of a message is in, reads on (in slices of the receive
    /// timeout) until it is whole, or fails with [`ProtoError::Stalled`] after `stall`
    /// without a byte, or [`ProtoError::Truncated`] when the peer closes.
    pub fn next(
        &mut self,
        sock: &UnixStream,
        wait: bool,
        stall: Duration,
    ) -> Result<Received, ProtoError> {
        let mut stalled_since: Option<Instant> = None;
        loop {
            let want = if self.len >= HEADER_LEN {
                let mut h = [0u8; HEADER_LEN];
                h.copy_from_slice(&self.buf[..HEADER_LEN]);
                let (command, plen) = parse_header(&h)?;
                let total = HEADER_LEN + plen;
                if self.len >= total {
                    let fds = if self.fds_end <= total {
                        std::mem::take(&mut self.fds)
                    } else {
                        self.fds_end -= total;
                        Vec::new()
                    };
                    let msg = decode(command, &self.buf[HEADER_LEN..total], fds);
                    self.buf.copy_within(total..self.len, 0);
                    self.len -= total;
                    return msg.map(Received::Message);
                }
                total - self.len
            } else if self.exact {
                HEADER_LEN - self.len
            } else {
                BAR_MESSAGE_LEN - self.len
            };
            let mut flags = RecvFlags::CMSG_CLOEXEC;
            if !wait && self.is_empty() {
                flags |= RecvFlags::DONTWAIT;
            }
            let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
            let mut control = RecvAncillaryBuffer::new(&mut space);
            let mut iov = [IoSliceMut::new(&mut self.buf[self.len..self.len + want])];
            let r = match recvmsg(sock, &mut iov, &mut control, flags) {
                Ok(r) => r,
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::AGAIN) => {
                    if self.is_empty() {
                        return Ok(Received::Idle);
                    }
                    let since = *stalled_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= stall {
                        return Err(ProtoError::Stalled {
                            what: self.reading(),
                        });
                    }
                    continue;
                }
                // A peer that exits while a reply of ours is still unread in its socket
                // resets the connection: between messages that is a disconnect like EOF.
                Err(rustix::io::Errno::CONNRESET) if self.is_empty() => {
                    return Ok(Received::Closed)
                }
                Err(e) => return Err(ProtoError::Io(e.into())),
            };
            let pending = self.fds.len();
            for msg in control.drain() {
                if let RecvAncillaryMessage::ScmRights(rights) = msg {
                    self.fds.extend(rights);
                }
            }
            if r.flags.contains(ReturnFlags::CTRUNC) || self.fds.len() > MAX_FDS {
                self.fds.clear();
                return Err(ProtoError::FdsTruncated);
            }
            if self.fds.len() > pending {
                if pending > 0 {
                    // A second set before the first found its message: no peer that
                    // sends descriptors only with a message's first bytes does that.
                    self.fds.clear();
                    return Err(ProtoError::MisplacedFds);
                }
                self.fds_end = self.len + r.bytes;
            }
            if r.bytes == 0 {
                if self.is_empty() {
                    return Ok(Received::Closed);
                }
                return Err(self.truncated());
            }
            self.len += r.bytes;
            stalled_since = None;
        }
    }

    /// The command of the buffered header, once it is whole.
    fn command(&self) -> Option<i32> {
        (self.len >= HEADER_LEN)
            .then(|| i32::from_le_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]))
    }

    /// What an unfinished message is stuck in: its header, or the command it has.
    fn reading(&self) -> &'static str {
        self.command().map_or("header", command_name)
    }

    fn truncated(&self) -> ProtoError {
        match self.command() {
            None => ProtoError::Truncated {
                what: "header",
                got: self.len,
                want: HEADER_LEN,
            },
            Some(command) => ProtoError::Truncated {
                what: command_name(command),
                got: self.len - HEADER_LEN,
                want: payload_len(command).unwrap_or(0),
            },
        }
    }
}

/// Reads one whole message, taking nothing of the next off the socket. `Ok(None)` means
/// the peer closed (or reset) the connection between messages (a clean disconnect). The
/// socket should have a read timeout set, so a peer that stops yields
/// [`ProtoError::Stalled`] instead of a hang.
pub fn read_message(sock: &UnixStream) -> Result<Option<Message>, ProtoError> {
    match MessageReader::exact().next(sock, true, Duration::ZERO)? {
        Received::Message(m) => Ok(Some(m)),
        Received::Closed => Ok(None),
        Received::Idle => Err(ProtoError::Stalled { what: "header" }),
    }
}

/// Writes one whole message with its descriptors.
pub fn write_message(sock: &UnixStream, msg: &Message) -> io::Result<()> {
    let bytes = msg.encode();
    let fds = msg.fds();
    let mut sent = 0;
    if !fds.is_empty() {
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "too many file descriptors",
            ));
        }
        sent = loop {
            match sendmsg(
                sock,
                &[IoSlice::new(&bytes)],
                &mut control,
                SendFlags::NOSIGNAL,
            ) {
                Ok(n) => break n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        };
    }
    (&*sock).write_all(&bytes[sent..])
}

/// Sends a `RET` reply carrying `value`: the bytes are built on the stack and go out in
/// one `send` (more only if the socket takes part of them).
pub fn write_ret(sock: &UnixStream, value: u64) -> io::Result<()> {
    let mut bytes = [0u8; HEADER_LEN + RET_LEN];
    bytes[..HEADER_LEN].copy_from_slice(&header(cmd::RET, RET_LEN as u64));
    bytes[HEADER_LEN..].copy_from_slice(&value.to_le_bytes());
    let mut sent = 0;
    while sent < bytes.len() {
        match send(sock, &bytes[sent..], SendFlags::NOSIGNAL) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => sent += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn eventfd() -> OwnedFd {
        rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).unwrap()
    }

    fn pair() -> (UnixStream, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        b.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        (a, b)
    }

    #[test]
    fn a_reset_between_messages_is_a_disconnect() {
        // QEMU killed with our last reply unread: its end closes with data pending and
        // ours reads ECONNRESET, which must stop the server cleanly, not as an error.
        let (ours, qemu) = UnixStream::pair().unwrap();
        write_ret(&ours, 0).unwrap();
        drop(qemu);
        assert!(matches!(read_message(&ours), Ok(None)));
    }

    #[test]
    fn header_layout_matches_qemu() {
        let bytes = Message::PciCfgRead { addr: 0x10, len: 4 }.encode();
        assert_eq!(bytes.len(), HEADER_LEN + CONFIG_LEN);
        assert_eq!(&bytes[..4], &3i32.to_le_bytes());
        assert_eq!(&bytes[4..8], &[0; 4]);
        assert_eq!(&bytes[8..16], &12u64.to_le_bytes());
        assert_eq!(&bytes[16..20], &0x10u32.to_le_bytes());
        assert_eq!(&bytes[24..28], &4i32.to_le_bytes());
        let bar = Message::BarWrite {
            addr: 0xfebc_0000,
            val: 0xdead_beef,
            size: 4,
            memory: true,
        }
        .encode();
        assert_eq!(bar.len(), HEADER_LEN + BAR_LEN);
        assert_eq!(bar[16 + 20], 1);
    }

    #[test]
    fn every_command_round_trips() {
        let (a, b) = pair();
        let msgs = vec![
            Message::PciCfgWrite {
                addr: 4,
                val: 7,
                len: 2,
            },
            Message::PciCfgRead { addr: 0, len: 4 },
            Message::BarWrite {
                addr: 0xc000,
                val: 0x12,
                size: 1,
                memory: false,
            },
            Message::BarRead {
                addr: 0xfeb0_0008,
                size: 4,
                memory: true,
            },
            Message::Ret(u64::MAX),
            Message::DeviceReset,
            Message::SetIrqfd {
                irqfd: eventfd(),
                resamplefd: eventfd(),
            },
            Message::SyncSysmem {
                regions: vec![
                    SysmemRegion {
                        gpa: 0,
                        size: 0xc0000,
                        offset: 0,
                    },
                    SysmemRegion {
                        gpa: 0x100000,
                        size: 0x3f00000,
                        offset: 0x100000,
                    },
                ],
                fds: vec![eventfd(), eventfd()],
            },
        ];
        for m in &msgs {
            write_message(&a, m).unwrap();
        }
        for m in &msgs {
            let got = read_message(&b).unwrap().unwrap();
            assert_eq!(got.command(), m.command());
            assert_eq!(got.encode(), m.encode());
            assert_eq!(got.fds().len(), m.fds().len());
        }
        drop(a);
        assert!(read_message(&b).unwrap().is_none(), "clean EOF");
    }

    #[test]
    fn rejects_what_qemu_rejects() {
        assert!(matches!(
            decode(9, &[], vec![]),
            Err(ProtoError::UnknownCommand(9))
        ));
        assert!(matches!(
            decode(cmd::PCI_CFGREAD, &[0; 8], vec![]),
            Err(ProtoError::BadSize { expected: 12, .. })
        ));
        assert!(matches!(
            decode(cmd::PCI_CFGREAD, &[0; 12], vec![eventfd()]),
            Err(ProtoError::BadFds { got: 1, .. })
        ));
        assert!(matches!(
            decode(cmd::SET_IRQFD, &[], vec![eventfd()]),
            Err(ProtoError::BadFds { got: 1, .. })
        ));
        assert!(matches!(
            decode(cmd::SYNC_SYSMEM, &[0; SYSMEM_LEN], vec![]),
            Err(ProtoError::BadFds { got: 0, .. })
        ));
        let huge = header(cmd::BAR_READ, u64::MAX);
        assert!(matches!(
            parse_header(&huge),
            Err(ProtoError::BadSize { size: u64::MAX, .. })
        ));
    }

    #[test]
    fn truncated_and_stalled_messages_are_errors() {
        let (a, b) = pair();
        let bytes = Message::BarRead {
            addr: 0,
            size: 4,
            memory: true,
        }
        .encode();
        (&a).write_all(&bytes[..HEADER_LEN + 5]).unwrap();
        assert!(matches!(
            read_message(&b),
            Err(ProtoError::Stalled { what: "BAR_READ" })
        ));
        (&a).write_all(&bytes[..7]).unwrap();
        drop(a);
        let e = read_message(&b).unwrap_err();
        assert!(
            matches!(
                e,
                ProtoError::Truncated {
                    what: "header",
                    got: 7,
                    want: 16
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn messages_sent_back_to_back_are_read_whole_and_in_order() {
        // A peer that does not wait between messages: the reader may take the start of
        // the next message with the current one and must keep it, descriptors included.
        let (a, b) = pair();
        let mut batch = Message::PciCfgRead { addr: 8, len: 4 }.encode();
        batch.extend(Message::Ret(0x1234).encode());
        batch.extend(
            Message::BarWrite {
                addr: 0xc010,
                val: 0xaabb_ccdd,
                size: 4,
                memory: false,
            }
            .encode(),
        );
        (&a).write_all(&batch).unwrap();
        let fd = eventfd();
        write_message(
            &a,
            &Message::SyncSysmem {
                regions: vec![SysmemRegion {
                    gpa: 0,
                    size: 0x1000,
                    offset: 0,
                }],
                fds: vec![fd.try_clone().unwrap()],
            },
        )
        .unwrap();
        write_message(&a, &Message::DeviceReset).unwrap();
        write_message(
            &a,
            &Message::SetIrqfd {
                irqfd: eventfd(),
                resamplefd: eventfd(),
            },
        )
        .unwrap();
        write_message(
            &a,
            &Message::BarRead {
                addr: 0xc000,
                size: 1,
                memory: false,
            },
        )
        .unwrap();
        let mut r = MessageReader::new();
        let mut got = Vec::new();
        for _ in 0..7 {
            match r.next(&b, true, Duration::from_millis(200)).unwrap() {
                Received::Message(m) => got.push(m),
                other => panic!("expected a message, got {other:?}"),
            }
        }
        let names: Vec<_> = got.iter().map(|m| command_name(m.command())).collect();
        assert_eq!(
            names,
            [
                "PCI_CFGREAD",
                "RET",
                "BAR_WRITE",
                "SYNC_SYSMEM",
                "DEVICE_RESET",
                "SET_IRQFD",
                "BAR_READ"
            ]
        );
        assert!(matches!(got[1], Message::Ret(0x1234)));
        assert!(matches!(
            got[2],
            Message::BarWrite {
                addr: 0xc010,
                val: 0xaabb_ccdd,
                size: 4,
                memory: false
            }
        ));
        assert_eq!(got[3].fds().len(), 1);
        assert_eq!(got[5].fds().len(), 2);
        assert!(r.is_empty());
        assert!(matches!(
            r.next(&b, false, Duration::ZERO).unwrap(),
            Received::Idle
        ));
        drop(a);
        assert!(matches!(
            r.next(&b, true, Duration::ZERO).unwrap(),
            Received::Closed
        ));
    }

    #[test]
    fn a_message_in_pieces_is_waited_for_up_to_the_stall_limit() {
        // The receive timeout (here 200 ms) is only the wait slice: a peer pausing for
        // several slices inside a message is waited for while under the stall limit.
        let (a, b) = pair();
        b.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
        let bytes = Message::BarRead {
            addr: 0xc000,
            size: 2,
            memory: false,
        }
        .encode();
        let writer = std::thread::spawn(move || {
            for piece in bytes.chunks(7) {
                (&a).write_all(piece).unwrap();
                std::thread::sleep(Duration::from_millis(30));
            }
            a
        });
        let mut r = MessageReader::new();
        let got = r.next(&b, true, Duration::from_secs(5)).unwrap();
        assert!(
            matches!(
                got,
                Received::Message(Message::BarRead {
                    addr: 0xc000,
                    size: 2,
                    memory: false
                })
            ),
            "{got:?}"
        );
        let a = writer.join().unwrap();
        (&a).write_all(&header(cmd::BAR_READ, BAR_LEN as u64))
            .unwrap();
        let e = r.next(&b, true, Duration::from_millis(50)).unwrap_err();
        assert!(matches!(e, ProtoError::Stalled { what: "BAR_READ" }), "{e}");
    }

    proptest::proptest! {
        /// Any header and payload decode to a message or an error, never a panic, and a
        /// header is only accepted with exactly its command's payload size.
        #[test]
        fn arbitrary_bytes_never_panic(
            h in proptest::array::uniform16(proptest::num::u8::ANY),
            payload in proptest::collection::vec(proptest::num::u8::ANY, 0..256),
            command in -2i32..10,
        ) {
            if let Ok((c, len)) = parse_header(&h) {
                proptest::prop_assert_eq!(payload_len(c), Some(len));
            }
            let _ = decode(command, &payload, Vec::new());
        }
    }

    #[test]
    fn descriptors_twice_for_one_message_are_refused() {
        // SYNC_SYSMEM in two pieces, each with a descriptor: the second set cannot belong
        // to the message the first came with.
        let (a, b) = pair();
        let bytes = Message::SyncSysmem {
            regions: vec![SysmemRegion {
                gpa: 0,
                size: 0x1000,
                offset: 0,
            }],
            fds: vec![eventfd()],
        }
        .encode();
        for piece in [&bytes[..20], &bytes[20..]] {
            let fd = eventfd();
            let fds = [fd.as_fd()];
            let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
            let mut control = SendAncillaryBuffer::new(&mut space);
            assert!(control.push(SendAncillaryMessage::ScmRights(&fds)));
            sendmsg(&a, &[IoSlice::new(piece)], &mut control, SendFlags::empty()).unwrap();
        }
        let mut r = MessageReader::new();
        let e = r.next(&b, true, Duration::from_millis(200)).unwrap_err();
        assert!(matches!(e, ProtoError::MisplacedFds), "{e}");
    }

    #[test]
    fn too_many_fds_are_refused() {
        let (a, b) = pair();
        let fds: Vec<OwnedFd> = (0..MAX_FDS + 1).map(|_| eventfd()).collect();
        let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(|f| f.as_fd()).collect();
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(16))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        assert!(control.push(SendAncillaryMessage::ScmRights(&borrowed)));
        let bytes = Message::DeviceReset.encode();
        sendmsg(
            &a,
            &[IoSlice::new(&bytes)],
            &mut control,
            SendFlags::empty(),
        )
        .unwrap();
        assert!(matches!(read_message(&b), Err(ProtoError::FdsTruncated)));
    }
}
