//! Packet capture to classic pcap files: QEMU's `-net dump` and `-object filter-dump`.
//!
//! - [`PcapWriter`] writes the libpcap format QEMU writes: magic `0xa1b2c3d4` in host byte
//!   order, version 2.4, link type 1 (Ethernet), snap length = `len`/`maxlen` (default
//!   65536). Each frame is written with one `write` as it passes, so the file is readable
//!   while the VM runs; a write error is logged once and dumping stops (as in QEMU), the
//!   traffic itself is never affected.
//! - [`DumpBackend`] is the hub client of `-net dump,vlan=N,file=F,len=L`: put it on a hub
//!   and it records every frame the hub floods to it; it never has a frame to give.
//! - [`DumpFilter`] is `-object filter-dump,id=,netdev=,file=,maxlen=`: it wraps another
//!   backend and records the frames passing in the directions chosen by `queue=`.
//!
//! Time stamps come from the wall clock: the file is for humans and tools like tshark.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::backend::{Counters, NetBackend};
use crate::opts::{check_keys, get, OptError};
use crate::vnet::VirtioNetHdr;

/// The pcap magic number, written in host byte order so readers detect the endianness.
pub const PCAP_MAGIC: u32 = 0xa1b2_c3d4;
/// pcap link type for Ethernet.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// QEMU's default snap length (`len=` / `maxlen=`).
pub const DEFAULT_SNAPLEN: u32 = 65536;

/// Keys `-net dump` accepts (besides the generic `id`/`vlan`/`name`).
pub const KEYS: &[&str] = &["file", "len"];

/// Keys `-object filter-dump` accepts besides `id` (`queue`, `status`, `position` and
/// `insert` are the options every QEMU net filter takes).
pub const FILTER_KEYS: &[&str] = &[
    "netdev", "file", "maxlen", "queue", "status", "position", "insert",
];

/// QEMU's default capture file for `-net dump` on hub `vlan`.
pub fn default_file_name(vlan: u32) -> String {
    format!("qemu-vlan{vlan}.pcap")
}

/// Writes frames to a classic pcap file.
#[derive(Debug)]
pub struct PcapWriter {
    file: Option<File>,
    path: PathBuf,
    snaplen: u32,
    record: Vec<u8>,
}

impl PcapWriter {
    /// Creates (truncating) `path` and writes the pcap file header with `snaplen`.
    pub fn create(path: &Path, snaplen: u32) -> io::Result<Self> {
        let mut file = File::create(path)?;
        let mut hdr = Vec::with_capacity(24);
        hdr.extend_from_slice(&PCAP_MAGIC.to_ne_bytes());
        hdr.extend_from_slice(&2u16.to_ne_bytes());
        hdr.extend_from_slice(&4u16.to_ne_bytes());
        hdr.extend_from_slice(&0i32.to_ne_bytes()); // thiszone: UTC
        hdr.extend_from_slice(&0u32.to_ne_bytes()); // sigfigs
        hdr.extend_from_slice(&snaplen.to_ne_bytes());
        hdr.extend_from_slice(&LINKTYPE_ETHERNET.to_ne_bytes());
        file.write_all(&hdr)?;
        Ok(PcapWriter {
            file: Some(file),
            path: path.to_path_buf(),
            snaplen,
            record: Vec::new(),
        })
    }

    /// The snap length: frames are cut to this many bytes in the file.
    pub fn snaplen(&self) -> u32 {
        self.snaplen
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True until a write error stopped the capture.
    pub fn is_active(&self) -> bool {
        self.file.is_some()
    }

    /// Records one frame given as a gather list, stamped with the wall clock.
    pub fn write_frame(&mut self, iov: &[&[u8]]) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        let len: usize = iov.iter().map(|s| s.len()).sum();
        let caplen = len.min(self.snaplen as usize);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.record.clear();
        self.record
            .extend_from_slice(&(now.as_secs() as u32).to_ne_bytes());
        self.record
            .extend_from_slice(&now.subsec_micros().to_ne_bytes());
        self.record
            .extend_from_slice(&(caplen as u32).to_ne_bytes());
        self.record
            .extend_from_slice(&(len.min(u32::MAX as usize) as u32).to_ne_bytes());
        let mut left = caplen;
        for s in iov {
            let take = s.len().min(left);
            self.record.extend_from_slice(&s[..take]);
            left -= take;
        }
        if let Err(e) = file.write_all(&self.record) {
            log::error!(
                "dump: writing {} failed ({e}); capture stopped",
                self.path.display()
            );
            self.file = None;
        }
    }

    /// Flushes the file to the kernel (records are written unbuffered; this syncs nothing
    /// further but reports a late error).
    pub fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for PcapWriter {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            log::error!("dump: flushing {} failed: {e}", self.path.display());
        }
    }
}

fn parse_snaplen(key: &str, v: Option<&str>) -> Result<u32, OptError> {
    match v {
        None => Ok(DEFAULT_SNAPLEN),
        Some(s) => match parse_size(s) {
            Some(n) if n > 0 && n <= u32::MAX as u64 => Ok(n as u32),
            _ => Err(OptError::at(
                key,
                format!("'{s}' is not a valid capture length (bytes, 1..4G, k/M suffix allowed)"),
            )),
        },
    }
}

/// Parses a QEMU size: a number with an optional k/M/G suffix (powers of 1024).
fn parse_size(s: &str) -> Option<u64> {
    let (num, mult) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 1u64 << 10),
        b'M' => (&s[..s.len() - 1], 1 << 20),
        b'G' => (&s[..s.len() - 1], 1 << 30),
        b'b' | b'B' => (&s[..s.len() - 1], 1),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

fn create_writer(key: &str, path: &str, snaplen: u32) -> Result<PcapWriter, OptError> {
    PcapWriter::create(Path::new(path), snaplen)
        .map_err(|e| OptError::at(key, format!("cannot create dump file '{path}': {e}")))
}

/// `-net dump`: a hub client that records every frame it is sent and never has a frame
/// to receive.
#[derive(Debug)]
pub struct DumpBackend {
    writer: PcapWriter,
    counters: Counters,
}

impl DumpBackend {
    /// Records to `path` with snap length `snaplen`.
    pub fn create(path: &Path, snaplen: u32) -> io::Result<Self> {
        Ok(DumpBackend {
            writer: PcapWriter::create(path, snaplen)?,
            counters: Counters::default(),
        })
    }

    /// The underlying writer.
    pub fn writer(&self) -> &PcapWriter {
        &self.writer
    }
}

/// Opens `-net dump,file=F,len=L` (file defaults to [`default_file_name`]`(0)`; a parser
/// that knows the hub number passes `file=` itself for other hubs).
pub fn open(opts: &[(String, String)]) -> Result<Box<dyn NetBackend>, OptError> {
    check_keys("dump", opts, KEYS)?;
    let snaplen = parse_snaplen("len", get(opts, "len"))?;
    let file = get(opts, "file")
        .map(str::to_string)
        .unwrap_or_else(|| default_file_name(0));
    Ok(Box::new(DumpBackend {
        writer: create_writer("file", &file, snaplen)?,
        counters: Counters::default(),
    }))
}

impl NetBackend for DumpBackend {
    fn kind(&self) -> &'static str {
        "dump"
    }

    fn info(&self) -> String {
        format!(
            "dump to {} (len={})",
            self.writer.path.display(),
            self.writer.snaplen
        )
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        self.send_iov(&[frame])
    }

    fn send_iov(&mut self, iov: &[&[u8]]) -> io::Result<()> {
        self.counters.count_sent(iov.iter().map(|s| s.len()).sum());
        self.writer.write_frame(iov);
        Ok(())
    }

    fn recv(&mut self, _buf: &mut [u8]) -> io::Result<Option<usize>> {
        Ok(None)
    }

    fn counters(&self) -> Counters {
        self.counters
    }
}

/// Which directions a [`DumpFilter`] records (QEMU's `queue=` filter option).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterQueue {
    /// Both directions (`queue=all`, the default).
    All,
    /// Frames sent to the netdev, i.e. from the device (`queue=rx`).
    Rx,
    /// Frames the netdev transmits, i.e. towards the device (`queue=tx`).
    Tx,
}

/// `-object filter-dump`: wraps a backend and records the frames passing through it.
pub struct DumpFilter {
    inner: Box<dyn NetBackend>,
    writer: PcapWriter,
    queue: FilterQueue,
    enabled: bool,
}

impl DumpFilter {
    /// Wraps `inner`, recording the directions in `queue` to `path` cut at `maxlen`.
    pub fn new(
        inner: Box<dyn NetBackend>,
        path: &Path,
        maxlen: u32,
        queue: FilterQueue,
    ) -> io::Result<Self> {
        Ok(DumpFilter {
            inner,
            writer: PcapWriter::create(path, maxlen)?,
            queue,
            enabled: true,
        })
    }

    /// Turns recording on or off (QEMU's `status=on|off`).
    pub fn set_enabled(&mut self, on: bool) {
        self.enabled = on;
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &dyn NetBackend {
        &*self.inner
    }

    /// Unwraps the filter, closing the capture file.
    pub fn into_inner(self) -> Box<dyn NetBackend> {
        self.inner
    }

    fn records(&self, q: FilterQueue) -> bool {
        self.enabled && (self.queue == FilterQueue::All || self.queue == q)
    }
}

/// Opens `-object filter-dump,netdev=N,file=F[,maxlen=L][,queue=all|rx|tx][,status=on|off]`
/// around `inner`, the backend named by `netdev=` (the caller resolves that name).
/// `position`/`insert` only order filters in a chain and are accepted and ignored here.
pub fn open_filter(
    opts: &[(String, String)],
    inner: Box<dyn NetBackend>,
) -> Result<DumpFilter, OptError> {
    check_keys("filter-dump", opts, FILTER_KEYS)?;
    if get(opts, "netdev").is_none() {
        return Err(OptError::whole(
            "filter-dump needs netdev=ID: the netdev whose traffic to record",
        ));
    }
    let file = get(opts, "file").ok_or_else(|| {
        OptError::whole("filter-dump needs file=PATH: where to write the pcap capture")
    })?;
    let maxlen = parse_snaplen("maxlen", get(opts, "maxlen"))?;
    let queue = match get(opts, "queue").unwrap_or("all") {
        "all" => FilterQueue::All,
        "rx" => FilterQueue::Rx,
        "tx" => FilterQueue::Tx,
        other => {
            return Err(OptError::at(
                "queue",
                format!("'{other}' is not a filter queue; use all, rx or tx"),
            ))
        }
    };
    let enabled = match get(opts, "status") {
        None | Some("on") => true,
        Some("off") => false,
        Some(other) => {
            return Err(OptError::at(
                "status",
                format!("'{other}' is not a filter status; use on or off"),
            ))
        }
    };
    let mut f = DumpFilter {
        inner,
        writer: create_writer("file", file, maxlen)?,
        queue,
        enabled: true,
    };
    f.set_enabled(enabled);
    Ok(f)
}

impl NetBackend for DumpFilter {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    fn info(&self) -> String {
        self.inner.info()
    }
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        self.send_iov(&[frame])
    }
    fn send_iov(&mut self, iov: &[&[u8]]) -> io::Result<()> {
        if self.records(FilterQueue::Rx) {
            self.writer.write_frame(iov);
        }
        self.inner.send_iov(iov)
    }
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let got = self.inner.recv(buf)?;
        if let Some(n) = got {
            if self.records(FilterQueue::Tx) {
                self.writer.write_frame(&[&buf[..n]]);
            }
        }
        Ok(got)
    }
    fn poll_fd(&self) -> Option<RawFd> {
        self.inner.poll_fd()
    }
    fn has_pending(&self) -> bool {
        self.inner.has_pending()
    }
    fn recv_waits_for_fd(&self) -> bool {
        self.inner.recv_waits_for_fd()
    }
    fn link_up(&self) -> bool {
        self.inner.link_up()
    }
    fn set_link(&mut self, up: bool) {
        self.inner.set_link(up)
    }
    fn has_vnet_hdr(&self) -> bool {
        self.inner.has_vnet_hdr()
    }
    fn send_gso(&mut self, hdr: &VirtioNetHdr, frame: &[u8]) -> io::Result<()> {
        // The capture shows the frame as the device handed it over (before the host
        // segments it), which is what a driver author wants to see.
        if self.records(FilterQueue::Rx) {
            self.writer.write_frame(&[frame]);
        }
        self.inner.send_gso(hdr, frame)
    }
    fn accepts_gso(&self) -> bool {
        self.inner.accepts_gso()
    }
    fn set_peer_accepts_gso(&mut self, on: bool) {
        self.inner.set_peer_accepts_gso(on)
    }
    fn recv_gso(&mut self, buf: &mut [u8]) -> io::Result<Option<(VirtioNetHdr, usize)>> {
        let got = self.inner.recv_gso(buf)?;
        if let Some((_, n)) = got {
            // A GSO frame is recorded whole, as for send_gso.
            if self.records(FilterQueue::Tx) {
                self.writer.write_frame(&[&buf[..n]]);
            }
        }
        Ok(got)
    }
    fn counters(&self) -> Counters {
        self.inner.counters()
    }
    fn next_deadline(&self) -> Option<Instant> {
        self.inner.next_deadline()
    }
    fn poll(&mut self, now: Instant) -> io::Result<()> {
        self.inner.poll(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryBackend;

    fn tmp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("vmnic-dump-{}-{name}.pcap", std::process::id()))
    }

    fn o(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Parses a pcap file written on this host into (caplen, len, data) records.
    fn records(path: &Path) -> (u32, Vec<(u32, Vec<u8>)>) {
        let b = std::fs::read(path).unwrap();
        let u32_at = |i: usize| u32::from_ne_bytes(b[i..i + 4].try_into().unwrap());
        assert_eq!(u32_at(0), PCAP_MAGIC);
        assert_eq!(u16::from_ne_bytes([b[4], b[5]]), 2);
        assert_eq!(u16::from_ne_bytes([b[6], b[7]]), 4);
        assert_eq!(u32_at(20), LINKTYPE_ETHERNET);
        let mut out = Vec::new();
        let mut i = 24;
        while i < b.len() {
            let cap = u32_at(i + 8) as usize;
            let len = u32_at(i + 12);
            out.push((len, b[i + 16..i + 16 + cap].to_vec()));
            i += 16 + cap;
        }
        (u32_at(16), out)
    }

    #[test]
    fn header_and_snaplen_cut() {
        let p = tmp("cut");
        {
            let mut d = open(&o(&[("file", p.to_str().unwrap()), ("len", "64")])).unwrap();
            d.send(&[0xab; 100]).unwrap();
            d.send_iov(&[&[1; 10], &[2; 10]]).unwrap();
            assert_eq!(d.recv(&mut [0; 100]).unwrap(), None);
            assert_eq!(d.counters().sent_frames, 2);
        }
        let (snap, recs) = records(&p);
        assert_eq!(snap, 64);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0], (100, vec![0xab; 64]));
        let mut joined = vec![1; 10];
        joined.extend_from_slice(&[2; 10]);
        assert_eq!(recs[1], (20, joined));
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn bad_options_name_the_key() {
        assert_eq!(
            open(&o(&[("len", "x")])).err().unwrap().key.as_deref(),
            Some("len")
        );
        assert_eq!(
            open(&o(&[("len", "0")])).err().unwrap().key.as_deref(),
            Some("len")
        );
        let e = open(&o(&[("file", "/nonexistent-dir/x.pcap")]))
            .err()
            .unwrap();
        assert_eq!(e.key.as_deref(), Some("file"));
        assert_eq!(parse_size("2k"), Some(2048));
        let (a, _b) = MemoryBackend::pair();
        let e = open_filter(
            &o(&[("netdev", "n"), ("file", "/tmp/x"), ("queue", "up")]),
            Box::new(a),
        )
        .err()
        .unwrap();
        assert_eq!(e.key.as_deref(), Some("queue"));
    }

    #[test]
    fn filter_records_both_directions_in_order() {
        let p = tmp("filter");
        let (a, mut b) = MemoryBackend::pair();
        let opts = o(&[
            ("netdev", "n0"),
            ("file", p.to_str().unwrap()),
            ("maxlen", "1k"),
        ]);
        {
            let mut f = open_filter(&opts, Box::new(a)).unwrap();
            f.send(b"guest-to-net").unwrap();
            b.send(b"net-to-guest").unwrap();
            let mut buf = [0u8; 64];
            assert_eq!(f.recv(&mut buf).unwrap(), Some(12));
            assert_eq!(&buf[..12], b"net-to-guest");
            let mut got = [0u8; 64];
            assert_eq!(b.recv(&mut got).unwrap(), Some(12));
        }
        let (snap, recs) = records(&p);
        assert_eq!(snap, 1024);
        assert_eq!(
            recs,
            vec![
                (12, b"guest-to-net".to_vec()),
                (12, b"net-to-guest".to_vec())
            ]
        );
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn filter_queue_selects_direction() {
        let p = tmp("queue");
        let (a, mut b) = MemoryBackend::pair();
        let opts = o(&[
            ("netdev", "n0"),
            ("file", p.to_str().unwrap()),
            ("queue", "tx"),
        ]);
        {
            let mut f = open_filter(&opts, Box::new(a)).unwrap();
            f.send(b"from-device").unwrap();
            b.send(b"to-device").unwrap();
            f.recv(&mut [0u8; 64]).unwrap();
        }
        let (_, recs) = records(&p);
        assert_eq!(recs, vec![(9, b"to-device".to_vec())]);
        std::fs::remove_file(&p).unwrap();
    }
}
