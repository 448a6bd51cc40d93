//! Fuzz targets for the parsers that read untrusted bytes outside the device models:
//! the QEMU option parser, the socket stream deframer, the multi-process protocol
//! decoder and the user-mode network's guest input path. Each checks a contract, not
//! only the absence of panics.

use std::fs::File;
use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::time::Instant;

use arbitrary::Unstructured;
use vm_nic_backends::socket::framing::{Deframer, Fill, FrameTooLong, HEADER_LEN};
use vm_nic_backends::user::{UserConfig, UserNet};
use vm_nic_backends::{FrameQueue, NetBackend, MAX_FRAME_LEN};

use crate::options::NetConfig;
use crate::remote::protocol;

/// The option parser: arguments are the input's lines, and the whole input is also
/// parsed as one command line. An error's column must lie inside its line (1-based,
/// counting characters), as [`crate::options::OptionsError`] promises, and rendering it
/// must not fail.
pub fn fuzz_options(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let args: Vec<&str> = text.split('\n').collect();
    let results = [
        NetConfig::parse_args(&args),
        NetConfig::parse_line(&text.replace('\n', " ")),
    ];
    for r in results {
        if let Err(e) = r {
            let chars = e.line.chars().count().max(1);
            assert!(
                (1..=chars).contains(&e.column),
                "column {} outside a {chars}-character line: {e:?}",
                e.column
            );
            let _ = e.render();
        }
    }
}

/// A reader handing out a byte stream in chunks of fuzzer-chosen sizes; a size of 0
/// reports `WouldBlock`.
struct ChunkedReader<'a> {
    stream: &'a [u8],
    chunks: Vec<u16>,
    next: usize,
}

impl Read for ChunkedReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let chunk = self.chunks.get(self.next).copied().unwrap_or(u16::MAX);
        self.next += 1;
        if chunk == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = (chunk as usize).min(buf.len()).min(self.stream.len());
        buf[..n].copy_from_slice(&self.stream[..n]);
        self.stream = &self.stream[n..];
        Ok(n)
    }
}

/// What a length-prefixed stream holds, parsed the simple way: the whole frames, then
/// either an over-long announced length or an incomplete tail.
fn reference_frames(mut s: &[u8]) -> (Vec<&[u8]>, Option<u32>) {
    let mut frames = Vec::new();
    while s.len() >= HEADER_LEN {
        let len = u32::from_be_bytes([s[0], s[1], s[2], s[3]]);
        if len as usize > MAX_FRAME_LEN {
            return (frames, Some(len));
        }
        let total = HEADER_LEN + len as usize;
        if s.len() < total {
            break;
        }
        frames.push(&s[HEADER_LEN..total]);
        s = &s[total..];
    }
    (frames, None)
}

/// The socket stream deframer: fed a stream in chunks of any size (with `WouldBlock`s
/// between), it must yield exactly the frames a straight parse finds, report an
/// over-long length where the straight parse meets it, and never hold more than one
/// maximal frame.
pub fn fuzz_socket_stream(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let chunks: Vec<u16> = u.arbitrary().unwrap_or_default();
    let stream = u.take_rest();
    let (want, want_err) = reference_frames(stream);
    let mut reader = ChunkedReader {
        stream,
        chunks,
        next: 0,
    };
    let mut d = Deframer::new();
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut err = None;
    // Each fill reads at least one byte or reports WouldBlock/EOF once per chunk entry.
    let bound = stream.len() + reader.chunks.len() + 2;
    'outer: for _ in 0..bound {
        let fill = d.fill(&mut reader).expect("an in-memory read cannot fail");
        loop {
            match d.next_frame() {
                Ok(Some(f)) => got.push(f.to_vec()),
                Ok(None) => break,
                Err(FrameTooLong(len)) => {
                    err = Some(len);
                    break 'outer;
                }
            }
        }
        assert!(
            d.buffered() <= HEADER_LEN + MAX_FRAME_LEN + 64 * 1024,
            "deframer holds {} bytes",
            d.buffered()
        );
        if fill == Fill::Eof {
            break;
        }
    }
    assert_eq!(err, want_err, "over-long length reported differently");
    assert_eq!(got.len(), want.len(), "frame count differs");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(&g[..], *w, "frame bytes differ");
    }
}

fn null_fds(n: usize) -> Vec<OwnedFd> {
    (0..n)
        .filter_map(|_| File::open("/dev/null").ok().map(OwnedFd::from))
        .collect()
}

/// The multi-process protocol decoder: the first byte says how many descriptors came
/// with the message (0-9, `/dev/null` stands in), then a 16-byte header and the payload.
/// Whatever decodes must encode back to a header that parses to the same command and
/// size, and decoding that encoding must give the same bytes again (one canonical form).
pub fn fuzz_remote_protocol(data: &[u8]) {
    let Some((&nfds, rest)) = data.split_first() else {
        return;
    };
    let Some(header) = rest.get(..protocol::HEADER_LEN) else {
        return;
    };
    let header: [u8; protocol::HEADER_LEN] = header.try_into().unwrap_or_default();
    let payload = &rest[protocol::HEADER_LEN..];
    let nfds = nfds as usize % (protocol::MAX_FDS + 2);
    // The header check and the decoder must agree on what a valid size is.
    let command = i32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    if let Ok((cmd, size)) = protocol::parse_header(&header) {
        assert_eq!(cmd, command);
        assert_eq!(Some(size), protocol::payload_len(cmd));
    }
    let Ok(msg) = protocol::decode(command, payload, null_fds(nfds)) else {
        return;
    };
    let enc = msg.encode();
    let h: [u8; protocol::HEADER_LEN] = enc[..protocol::HEADER_LEN]
        .try_into()
        .expect("an encoded message has a header");
    assert_eq!(
        protocol::parse_header(&h).ok(),
        Some((command, payload.len())),
        "encoding of {msg:?} has another header"
    );
    let again = protocol::decode(
        command,
        &enc[protocol::HEADER_LEN..],
        null_fds(msg.fds().len()),
    )
    .expect("an encoded message decodes");
    assert_eq!(again.encode(), enc, "{msg:?} has two encodings");
}

/// Most guest frames one user-net input carries.
const MAX_USER_FRAMES: usize = 64;

/// The Internet checksum of `data` added to `sum`.
fn csum_add(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    if let [b] = chunks.remainder() {
        sum += (*b as u32) << 8;
    }
    sum
}

fn csum_fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Makes an Ethernet/IPv4 frame's IP header checksum and its TCP, UDP or ICMP checksum
/// valid, so the fuzzer's frames get past validation into the protocol handlers.
fn fix_ipv4_checksums(f: &mut [u8]) {
    if f.len() < 34 || f[12..14] != [0x08, 0x00] {
        return;
    }
    let ihl = (f[14] & 0x0f) as usize * 4;
    if ihl < 20 || f.len() < 14 + ihl {
        return;
    }
    f[24..26].fill(0);
    let c = csum_fold(csum_add(0, &f[14..14 + ihl]));
    f[24..26].copy_from_slice(&c.to_be_bytes());
    let total = (u16::from_be_bytes([f[16], f[17]]) as usize).clamp(ihl, f.len() - 14);
    let (l4, proto) = (14 + ihl, f[23]);
    let end = 14 + total;
    let off = match proto {
        1 => 2,
        6 => 16,
        17 => 6,
        _ => return,
    };
    if end < l4 + off + 2 {
        return;
    }
    f[l4 + off..l4 + off + 2].fill(0);
    let mut sum = 0;
    if proto != 1 {
        sum = csum_add(sum, &f[26..34]);
        sum += proto as u32 + (end - l4) as u32;
    }
    let c = csum_fold(csum_add(sum, &f[l4..end]));
    f[l4 + off..l4 + off + 2].copy_from_slice(&c.to_be_bytes());
}

/// The user-mode network's guest input path, with `restrict=on` and DNS forwarded only
/// to 127.0.0.1:9 so nothing leaves the machine: frames are `u16` length + a flag byte
/// (bit 0: fix IPv4 checksums) + bytes. Every frame the network sends back must be a
/// plausible Ethernet frame, and what waits for the guest stays within its queue bound.
pub fn fuzz_user_net(data: &[u8]) {
    let mut cfg = UserConfig {
        restrict: true,
        ..UserConfig::default()
    };
    cfg.dns_resolvers = vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 9))];
    let Ok(mut net) = UserNet::new(cfg) else {
        return;
    };
    let mut u = Unstructured::new(data);
    let mut buf = vec![0u8; MAX_FRAME_LEN];
    for _ in 0..MAX_USER_FRAMES {
        if u.is_empty() {
            break;
        }
        let len: u16 = u.arbitrary().unwrap_or(0);
        let flags: u8 = u.arbitrary().unwrap_or(0);
        let bytes = u.bytes((len as usize).min(u.len())).unwrap_or(&[]);
        let mut frame = bytes.to_vec();
        if flags & 1 != 0 {
            fix_ipv4_checksums(&mut frame);
        }
        let _ = net.send(&frame);
        let _ = net.poll(Instant::now());
        let mut drained = 0;
        while let Ok(Some(n)) = net.recv(&mut buf) {
            assert!(
                (14..=MAX_FRAME_LEN).contains(&n),
                "user net sent a {n}-byte frame"
            );
            drained += 1;
            assert!(
                drained <= FrameQueue::DEFAULT_MAX_FRAMES,
                "more frames waiting than the queue bound"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deframer_agrees_with_the_reference_on_split_and_bad_streams() {
        let mut s = Vec::new();
        for len in [0u32, 5, 300] {
            s.extend_from_slice(&len.to_be_bytes());
            s.extend(std::iter::repeat_n(len as u8, len as usize));
        }
        let (frames, err) = reference_frames(&s);
        assert_eq!((frames.len(), err), (3, None));
        // Chunk sizes 1, WouldBlock, 7, then the rest.
        let mut input = vec![3, 1, 0, 0, 0, 7, 0];
        input.extend_from_slice(&s);
        fuzz_socket_stream(&input);
        s.extend_from_slice(&(MAX_FRAME_LEN as u32 + 1).to_be_bytes());
        assert_eq!(reference_frames(&s).1, Some(MAX_FRAME_LEN as u32 + 1));
        fuzz_socket_stream(&s);
    }

    #[test]
    fn checksums_fixed_by_the_harness_verify() {
        let mut f = vec![0u8; 14 + 20 + 8 + 4];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[16..18].copy_from_slice(&32u16.to_be_bytes());
        f[23] = 17;
        f[26..34].copy_from_slice(&[10, 0, 2, 15, 10, 0, 2, 3]);
        f[38..40].copy_from_slice(&12u16.to_be_bytes());
        fix_ipv4_checksums(&mut f);
        assert_eq!(csum_fold(csum_add(0, &f[14..34])), 0);
        let pseudo = csum_add(0, &f[26..34]) + 17 + 12;
        assert_eq!(csum_fold(csum_add(pseudo, &f[34..46])), 0);
    }

    #[test]
    fn parsers_take_sample_inputs() {
        fuzz_options(b"-netdev\nuser,id=n0\n-device\ne1000,netdev=n0");
        fuzz_options(b"-nic tap,ifname=\xff\n-net nic,model=");
        let mut msg = vec![0u8];
        msg.extend_from_slice(&protocol::header(2, 12));
        msg.extend_from_slice(&[4, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0]);
        fuzz_remote_protocol(&msg);
        fuzz_user_net(&[60, 0, 1, 0xff]);
    }
}
