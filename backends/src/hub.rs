//! QEMU's hub: the model behind the old `vlan=N` parameter and `-netdev hubport`.
//!
//! A hub has an integer id. Each port is named `hub<N>port<M>` (M counts up per hub) unless
//! given an explicit name (`-netdev hubport,id=NAME,hubid=N`). A frame entering one port
//! goes to every other port of the hub and never back to its source. Each port has a
//! bounded inbox ([`FrameQueue`]): what the peer on that port has not taken yet waits
//! there, and a full inbox counts a drop for that port only.
//!
//! A [`HubPort`] is itself a [`NetBackend`]: give it to a NIC as its backend, or pump
//! frames between it and a host backend (the runner in the `vm-nic` crate does that).
//!
//! GSO frames ([`crate::gso`]) cross a hub whole only where they can be taken whole: a
//! port marked with [`HubPort::set_accepts_gso`] (its backend, a tap with `vnet_hdr`,
//! accepts them) gets a GSO frame as it was sent; every other port gets the ordinary
//! frames the software segmenter cuts from it, so a NIC on a hub never sees a frame
//! longer than its MTU. A port [accepts GSO frames](NetBackend::accepts_gso) itself when
//! some other port of its hub is so marked.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::backend::{Counters, NetBackend};
use crate::gso;
use crate::queue::FrameQueue;
use crate::vnet::VirtioNetHdr;

#[derive(Debug)]
struct PortSlot {
    name: String,
    inbox: FrameQueue,
    counters: Counters,
    /// Still attached: a dropped [`HubPort`] leaves its slot but receives nothing.
    live: bool,
    /// The port's consumer takes GSO frames whole ([`HubPort::set_accepts_gso`]).
    gso: bool,
}

#[derive(Debug)]
struct HubInner {
    id: u32,
    ports: Vec<PortSlot>,
    next_port: u32,
}

/// A hub: frames entering one port leave through every other port.
///
/// ```
/// use vm_nic_backends::{Hub, NetBackend};
///
/// let hub = Hub::new(0);
/// let (mut a, mut b, mut c) = (hub.add_port(), hub.add_port(), hub.add_port());
/// a.send(b"frame").unwrap();
/// let mut buf = [0u8; 64];
/// assert_eq!(b.recv(&mut buf).unwrap(), Some(5)); // every other port gets it
/// assert_eq!(c.recv(&mut buf).unwrap(), Some(5));
/// assert_eq!(a.recv(&mut buf).unwrap(), None); // never back to the sender
/// ```
#[derive(Clone, Debug)]
pub struct Hub {
    inner: Arc<Mutex<HubInner>>,
}

/// One port of a [`Hub`]; implements [`NetBackend`].
#[derive(Debug)]
pub struct HubPort {
    inner: Arc<Mutex<HubInner>>,
    index: usize,
}

fn lock(inner: &Mutex<HubInner>) -> MutexGuard<'_, HubInner> {
    // A panic elsewhere while holding the lock leaves queues consistent (every mutation
    // is a single push or pop), so a poisoned hub keeps working.
    inner.lock().unwrap_or_else(|e| e.into_inner())
}

impl Hub {
    /// A new hub with QEMU hub id `id`.
    pub fn new(id: u32) -> Self {
        Hub {
            inner: Arc::new(Mutex::new(HubInner {
                id,
                ports: Vec::new(),
                next_port: 0,
            })),
        }
    }

    /// The hub id (the old `vlan=` number).
    pub fn id(&self) -> u32 {
        lock(&self.inner).id
    }

    /// Adds a port named `hub<N>port<M>`.
    pub fn add_port(&self) -> HubPort {
        self.add_port_inner(None)
    }

    /// Adds a port with an explicit name (QEMU's `-netdev hubport,id=NAME`).
    pub fn add_named_port(&self, name: &str) -> HubPort {
        self.add_port_inner(Some(name))
    }

    fn add_port_inner(&self, name: Option<&str>) -> HubPort {
        let mut h = lock(&self.inner);
        let m = h.next_port;
        h.next_port += 1;
        let name = match name {
            Some(n) => n.to_string(),
            None => format!("hub{}port{}", h.id, m),
        };
        h.ports.push(PortSlot {
            name,
            inbox: FrameQueue::new(),
            counters: Counters::default(),
            live: true,
            gso: false,
        });
        HubPort {
            inner: self.inner.clone(),
            index: h.ports.len() - 1,
        }
    }

    /// Names of the attached ports, in the order they were added.
    pub fn port_names(&self) -> Vec<String> {
        lock(&self.inner)
            .ports
            .iter()
            .filter(|p| p.live)
            .map(|p| p.name.clone())
            .collect()
    }

    /// Number of attached ports.
    pub fn port_count(&self) -> usize {
        lock(&self.inner).ports.iter().filter(|p| p.live).count()
    }
}

impl HubPort {
    /// The port's name, e.g. `hub0port1`.
    pub fn name(&self) -> String {
        lock(&self.inner).ports[self.index].name.clone()
    }

    /// The id of the hub this port belongs to.
    pub fn hub_id(&self) -> u32 {
        lock(&self.inner).id
    }

    /// Frames waiting in this port's inbox.
    pub fn pending(&self) -> usize {
        lock(&self.inner).ports[self.index].inbox.len()
    }

    /// Says whether whoever takes this port's frames (its backend, through
    /// [`NetBackend::recv_gso`] and then [`NetBackend::send_gso`]) accepts GSO frames
    /// whole. Off (the default): GSO frames sent into the hub reach this port cut into
    /// ordinary frames.
    pub fn set_accepts_gso(&self, on: bool) {
        lock(&self.inner).ports[self.index].gso = on;
    }

    /// Takes the next frame from the inbox, whole with its header when `gso`.
    fn take(&mut self, buf: &mut [u8], gso: bool) -> Option<(VirtioNetHdr, usize)> {
        let mut h = lock(&self.inner);
        let slot = &mut h.ports[self.index];
        let before = slot.inbox.dropped();
        let got = if gso {
            slot.inbox.pop_gso_into(buf)
        } else {
            slot.inbox
                .pop_into(buf)
                .map(|n| (VirtioNetHdr::default(), n))
        };
        for _ in before..slot.inbox.dropped() {
            slot.counters.count_drop();
        }
        if let Some((_, n)) = got {
            slot.counters.count_received(n);
        }
        got
    }
}

impl Drop for HubPort {
    fn drop(&mut self) {
        let mut h = lock(&self.inner);
        let slot = &mut h.ports[self.index];
        slot.live = false;
        slot.inbox.clear();
    }
}

impl NetBackend for HubPort {
    fn kind(&self) -> &'static str {
        "hubport"
    }

    fn info(&self) -> String {
        self.name()
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        self.send_iov(&[frame])
    }

    fn send_iov(&mut self, iov: &[&[u8]]) -> io::Result<()> {
        let len = iov.iter().map(|s| s.len()).sum();
        let mut h = lock(&self.inner);
        h.ports[self.index].counters.count_sent(len);
        let src = self.index;
        for (i, slot) in h.ports.iter_mut().enumerate() {
            if i == src || !slot.live {
                continue;
            }
            if !slot.inbox.push_iov(iov) {
                slot.counters.count_drop();
            }
        }
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        Ok(self.take(buf, false).map(|(_, n)| n))
    }

    fn recv_gso(&mut self, buf: &mut [u8]) -> io::Result<Option<(VirtioNetHdr, usize)>> {
        Ok(self.take(buf, true))
    }

    fn accepts_gso(&self) -> bool {
        let h = lock(&self.inner);
        let me = self.index;
        h.ports
            .iter()
            .enumerate()
            .any(|(i, p)| i != me && p.live && p.gso)
    }

    /// Floods a GSO frame: whole to ports that accept GSO frames, cut into ordinary frames
    /// (once, whatever the number of such ports) for the others. A frame the segmenter
    /// refuses reaches only the former; it is counted as a drop at the others and the
    /// error returned.
    fn send_gso(&mut self, hdr: &VirtioNetHdr, frame: &[u8]) -> io::Result<()> {
        if hdr.is_plain() {
            return self.send(frame);
        }
        let mut h = lock(&self.inner);
        h.ports[self.index].counters.count_sent(frame.len());
        let src = self.index;
        let mut segs = None;
        for (i, slot) in h.ports.iter_mut().enumerate() {
            if i == src || !slot.live {
                continue;
            }
            if slot.gso {
                if !slot.inbox.push_gso(hdr, frame) {
                    slot.counters.count_drop();
                }
                continue;
            }
            match segs.get_or_insert_with(|| gso::segment_to_vec(hdr, frame)) {
                Ok(v) => {
                    for f in v.iter() {
                        if !slot.inbox.push(f) {
                            slot.counters.count_drop();
                        }
                    }
                }
                Err(_) => slot.counters.count_drop(),
            }
        }
        match segs {
            Some(Err(e)) => Err(e.into()),
            _ => Ok(()),
        }
    }

    fn has_pending(&self) -> bool {
        !lock(&self.inner).ports[self.index].inbox.is_empty()
    }

    fn counters(&self) -> Counters {
        lock(&self.inner).ports[self.index].counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recv_all(p: &mut HubPort) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 2048];
        while let Some(n) = p.recv(&mut buf).unwrap() {
            out.push(buf[..n].to_vec());
        }
        out
    }

    #[test]
    fn names_follow_qemu() {
        let hub = Hub::new(3);
        let a = hub.add_port();
        let b = hub.add_named_port("hp");
        let c = hub.add_port();
        assert_eq!(a.name(), "hub3port0");
        assert_eq!(b.name(), "hp");
        assert_eq!(c.name(), "hub3port2");
    }

    #[test]
    fn floods_to_others_never_back() {
        let hub = Hub::new(0);
        let mut a = hub.add_port();
        let mut b = hub.add_port();
        let mut c = hub.add_port();
        a.send(b"from-a").unwrap();
        assert!(recv_all(&mut a).is_empty());
        assert_eq!(recv_all(&mut b), vec![b"from-a".to_vec()]);
        assert_eq!(recv_all(&mut c), vec![b"from-a".to_vec()]);
        assert_eq!(a.counters().sent_frames, 1);
        assert_eq!(b.counters().received_frames, 1);
    }

    #[test]
    fn dropped_port_receives_nothing() {
        let hub = Hub::new(0);
        let mut a = hub.add_port();
        let b = hub.add_port();
        drop(b);
        a.send(b"x").unwrap();
        assert_eq!(hub.port_count(), 1);
    }

    /// A TCP/IPv4 GSO frame: 4000 bytes of payload cut at 1460.
    fn gso_frame() -> (VirtioNetHdr, Vec<u8>) {
        gso::test_frame(4000, 1460)
    }

    #[test]
    fn gso_frames_whole_to_gso_ports_cut_for_plain_ones() {
        let hub = Hub::new(0);
        let mut src = hub.add_port();
        let mut tap = hub.add_port();
        let mut nic = hub.add_port();
        assert!(!src.accepts_gso(), "nobody takes GSO frames yet");
        tap.set_accepts_gso(true);
        assert!(src.accepts_gso());
        assert!(nic.accepts_gso());
        assert!(!tap.accepts_gso(), "only the tap's own port is marked");

        let (h, f) = gso_frame();
        src.send_gso(&h, &f).unwrap();
        let mut buf = vec![0u8; 70000];
        assert_eq!(tap.recv_gso(&mut buf).unwrap(), Some((h, f.len())));
        assert_eq!(&buf[..f.len()], &f[..]);
        assert_eq!(tap.recv_gso(&mut buf).unwrap(), None);
        let want = gso::segment_to_vec(&h, &f).unwrap();
        assert_eq!(want.len(), 3);
        assert_eq!(recv_all(&mut nic), want);
        assert!(want.iter().all(|w| w.len() <= 1514));
        assert_eq!(nic.counters().received_frames, 3);
        assert_eq!(src.counters().sent_frames, 1);

        // A plain receive on the GSO port still gets ordinary frames; a plain header is
        // an ordinary send.
        src.send_gso(&h, &f).unwrap();
        assert_eq!(recv_all(&mut tap), want);
        src.send_gso(&VirtioNetHdr::default(), b"plain").unwrap();
        assert_eq!(recv_all(&mut tap), vec![b"plain".to_vec()]);
    }

    #[test]
    fn a_gso_frame_the_segmenter_refuses_is_counted_at_plain_ports() {
        let hub = Hub::new(0);
        let mut src = hub.add_port();
        let mut nic = hub.add_port();
        let (h, f) = gso_frame();
        assert!(src.send_gso(&h, &f[..100]).is_err());
        assert!(recv_all(&mut nic).is_empty());
        assert_eq!(nic.counters().dropped, 1);
    }
}
