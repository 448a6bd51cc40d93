//! The [`NetBackend`] trait: the one contract between a NIC model and the network.
//!
//! ## Contract
//! - **Non-blocking.** No method may block. A backend that talks to the host exposes a
//!   pollable file descriptor through [`NetBackend::poll_fd`] (readable when
//!   [`NetBackend::recv`] may return a frame); an in-process backend returns `None` there
//!   and reports queued frames through [`NetBackend::has_pending`]. One event loop can then
//!   serve many backends.
//! - **Device to network:** [`NetBackend::send`] / [`NetBackend::send_iov`] take one whole
//!   Ethernet frame (no FCS). They never block; a backend that cannot pass a frame on now
//!   either queues it in a bounded queue or drops it, and counts the drop in
//!   [`Counters::dropped`]. An `Err` is for faults worth logging (peer gone, bad fd); the
//!   frame is then lost and counted too.
//! - **Network to device:** [`NetBackend::recv`] writes the next whole frame into the
//!   caller's buffer and returns its length, or `Ok(None)` when nothing is waiting. A frame
//!   is never split or truncated: one longer than the buffer is dropped and counted.
//! - **Flow control (as QEMU):** the caller only calls `recv` when the device can take a
//!   frame. Until then frames wait — in the kernel for host backends, in a bounded
//!   [`crate::FrameQueue`] for in-process ones — and are delivered once the guest refills
//!   its receive ring. When a bound is hit, the drop is counted, never silent.
//! - **Link:** [`NetBackend::link_up`] tells whether the far side is there (a listening
//!   socket with no peer is down); devices raise their link-change interrupt from it.
//! - **Offload:** a backend that can carry the 10-byte virtio-net header (TAP with
//!   `vnet_hdr=on`) says so in [`NetBackend::has_vnet_hdr`] and accepts GSO frames through
//!   [`NetBackend::send_gso`]; every other backend gets fully formed frames (the default
//!   `send_gso` cuts a GSO frame in software, [`crate::gso::segment`]).
//! - **GSO towards a peer:** a backend whose `send_gso` passes TCP GSO frames on whole
//!   says so in [`NetBackend::accepts_gso`]. Whoever wires the network tells a producer
//!   (the user network) that its peer does, with [`NetBackend::set_peer_accepts_gso`];
//!   the producer may then hand out GSO frames, but only through
//!   [`NetBackend::recv_gso`]: `recv` always returns ordinary frames, so a NIC model never
//!   sees a frame longer than its MTU that it did not ask for.
//! - **Time:** host backends may need timers (reconnects, NAT timeouts): they publish the
//!   next deadline in [`NetBackend::next_deadline`] and do the work in
//!   [`NetBackend::poll`], which the event loop calls on readiness or deadline.

use std::io;
use std::os::fd::RawFd;
use std::time::Instant;

use crate::vnet::VirtioNetHdr;

/// The largest frame any backend carries: QEMU's `NET_BUFSIZE` (4096 + 65536 bytes).
pub const MAX_FRAME_LEN: usize = 4096 + 65536;

/// The shortest legal Ethernet frame without FCS (60 bytes).
pub const MIN_FRAME_LEN: usize = 60;

/// Per-backend traffic counters. "Sent" is device to network, "received" is network to
/// device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames taken from the device by `send`/`send_iov`/`send_gso`.
    pub sent_frames: u64,
    /// Bytes in those frames.
    pub sent_bytes: u64,
    /// Frames handed to the device by `recv`.
    pub received_frames: u64,
    /// Bytes in those frames.
    pub received_bytes: u64,
    /// Frames lost in either direction: a bounded queue was full, a frame was too long
    /// for the receive buffer, or the host side failed.
    pub dropped: u64,
}

impl Counters {
    /// Counts one frame of `len` bytes sent towards the network.
    pub fn count_sent(&mut self, len: usize) {
        self.sent_frames += 1;
        self.sent_bytes += len as u64;
    }

    /// Counts one frame of `len` bytes handed to the device.
    pub fn count_received(&mut self, len: usize) {
        self.received_frames += 1;
        self.received_bytes += len as u64;
    }

    /// Counts one lost frame.
    pub fn count_drop(&mut self) {
        self.dropped += 1;
    }
}

/// A host or in-process network endpoint a NIC model is connected to. See the
/// [module documentation](self) for the full contract.
pub trait NetBackend: Send {
    /// QEMU's client type name: `"user"`, `"tap"`, `"socket"`, `"hubport"`, `"dump"`, ...
    fn kind(&self) -> &'static str;

    /// The detail QEMU's `info network` prints after the type, e.g.
    /// `"net=10.0.2.0,restrict=off"`.
    fn info(&self) -> String {
        String::new()
    }

    /// Passes one frame from the device to the network. Never blocks.
    fn send(&mut self, frame: &[u8]) -> io::Result<()>;

    /// Passes one frame given as a gather list. The default joins the pieces into a
    /// buffer owned by the backend and calls [`NetBackend::send`]; backends that can
    /// write a gather list directly override it.
    fn send_iov(&mut self, iov: &[&[u8]]) -> io::Result<()> {
        let len: usize = iov.iter().map(|s| s.len()).sum();
        let mut frame = Vec::with_capacity(len);
        for s in iov {
            frame.extend_from_slice(s);
        }
        self.send(&frame)
    }

    /// Receives the next frame into `buf`, returning its length, or `Ok(None)` when none
    /// is waiting. Call only when the device can take a frame (see the flow-control rule).
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>>;

    /// A descriptor that polls readable when `recv` may return a frame or `poll` has work,
    /// or `None` for in-process backends (see [`NetBackend::has_pending`]).
    fn poll_fd(&self) -> Option<RawFd> {
        None
    }

    /// True when a frame is waiting that `recv` would return without touching the host.
    /// In-process backends must implement this; host backends may return `false`.
    fn has_pending(&self) -> bool {
        false
    }

    /// True when frames reach `recv` only through [`NetBackend::poll_fd`]: once `recv`
    /// has returned `Ok(None)`, it returns `None` again until the descriptor polls
    /// readable (nothing is queued inside the process, as with a tap). An event loop may
    /// then skip `recv` until the descriptor is readable, saving a system call that
    /// would fail with `EAGAIN`. The default, `false`, promises nothing.
    fn recv_waits_for_fd(&self) -> bool {
        false
    }

    /// Whether the far side is there. Devices report this as their link state.
    fn link_up(&self) -> bool {
        true
    }

    /// Administratively sets the link (QEMU's `set_link`). Backends with no link notion
    /// may ignore it.
    fn set_link(&mut self, _up: bool) {}

    /// True when [`NetBackend::send_gso`] passes offload requests on to the host.
    fn has_vnet_hdr(&self) -> bool {
        false
    }

    /// Passes a frame with a virtio-net header describing checksum/segmentation work left
    /// for the host. Devices call it only when [`NetBackend::has_vnet_hdr`] is true; the
    /// default does the work in software ([`crate::gso::segment`]) and sends each
    /// resulting frame with [`NetBackend::send`]; a header it cannot serve (UDP
    /// fragmentation offload) or a frame that does not match its header is refused with an
    /// error and nothing is sent.
    fn send_gso(&mut self, hdr: &VirtioNetHdr, frame: &[u8]) -> io::Result<()> {
        let mut sent = Ok(());
        crate::gso::segment(hdr, frame, &mut |f| {
            if sent.is_ok() {
                sent = self.send(f);
            }
        })?;
        sent
    }

    /// True when [`NetBackend::send_gso`] passes TCP GSO frames (up to 64 KiB) on
    /// without cutting them in software: a tap with `vnet_hdr=on`, or a hub port some
    /// other port of which leads to one.
    fn accepts_gso(&self) -> bool {
        false
    }

    /// Tells the backend whether the frames it hands out go to a peer that
    /// [accepts GSO frames](NetBackend::accepts_gso). A backend that can produce them (the
    /// user network) then may return them from [`NetBackend::recv_gso`]. The default
    /// ignores it.
    fn set_peer_accepts_gso(&mut self, _on: bool) {}

    /// Like [`NetBackend::recv`], but may return a GSO frame whole, with the virtio-net
    /// header describing it (only after [`NetBackend::set_peer_accepts_gso`]`(true)`);
    /// an ordinary frame comes with a plain header ([`VirtioNetHdr::is_plain`]). The
    /// default is `recv` with a plain header.
    fn recv_gso(&mut self, buf: &mut [u8]) -> io::Result<Option<(VirtioNetHdr, usize)>> {
        Ok(self.recv(buf)?.map(|n| (VirtioNetHdr::default(), n)))
    }

    /// Traffic counters since the backend was created.
    fn counters(&self) -> Counters;

    /// The next moment [`NetBackend::poll`] has timed work to do, if any.
    fn next_deadline(&self) -> Option<Instant> {
        None
    }

    /// Does pending host-side work: accepts connections, fires timers, flushes queues.
    /// Called by the event loop when `poll_fd` is readable or a deadline has passed.
    fn poll(&mut self, _now: Instant) -> io::Result<()> {
        Ok(())
    }
}

impl<T: NetBackend + ?Sized> NetBackend for Box<T> {
    fn kind(&self) -> &'static str {
        (**self).kind()
    }
    fn info(&self) -> String {
        (**self).info()
    }
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        (**self).send(frame)
    }
    fn send_iov(&mut self, iov: &[&[u8]]) -> io::Result<()> {
        (**self).send_iov(iov)
    }
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        (**self).recv(buf)
    }
    fn poll_fd(&self) -> Option<RawFd> {
        (**self).poll_fd()
    }
    fn has_pending(&self) -> bool {
        (**self).has_pending()
    }
    fn recv_waits_for_fd(&self) -> bool {
        (**self).recv_waits_for_fd()
    }
    fn link_up(&self) -> bool {
        (**self).link_up()
    }
    fn set_link(&mut self, up: bool) {
        (**self).set_link(up)
    }
    fn has_vnet_hdr(&self) -> bool {
        (**self).has_vnet_hdr()
    }
    fn send_gso(&mut self, hdr: &VirtioNetHdr, frame: &[u8]) -> io::Result<()> {
        (**self).send_gso(hdr, frame)
    }
    fn accepts_gso(&self) -> bool {
        (**self).accepts_gso()
    }
    fn set_peer_accepts_gso(&mut self, on: bool) {
        (**self).set_peer_accepts_gso(on)
    }
    fn recv_gso(&mut self, buf: &mut [u8]) -> io::Result<Option<(VirtioNetHdr, usize)>> {
        (**self).recv_gso(buf)
    }
    fn counters(&self) -> Counters {
        (**self).counters()
    }
    fn next_deadline(&self) -> Option<Instant> {
        (**self).next_deadline()
    }
    fn poll(&mut self, now: Instant) -> io::Result<()> {
        (**self).poll(now)
    }
}
