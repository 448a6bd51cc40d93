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

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::backend::{Counters, NetBackend};
use crate::queue::FrameQueue;

#[derive(Debug)]
struct PortSlot {
    name: String,
    inbox: FrameQueue,
    counters: Counters,
    /// Still attached: a dropped [`HubPort`] leaves its slot but receives nothing.
    live: bool,
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
        let mut h = lock(&self.inner);
        let slot = &mut h.ports[self.index];
        let before = slot.inbox.dropped();
        let got = slot.inbox.pop_into(buf);
        for _ in before..slot.inbox.dropped() {
            slot.counters.count_drop();
        }
        if let Some(n) = got {
            slot.counters.count_received(n);
        }
        Ok(got)
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
}
