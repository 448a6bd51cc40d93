//! GSO frames across a hub, as `NetworkBuilder` wires it and the runner moves them: a
//! producer (in the user network's place) is told its peer takes GSO frames only when
//! some other port's backend accepts them (a tap with `vnet_hdr` in real life); the frame
//! then reaches that backend whole, while a plain backend and a NIC on the same hub get
//! the ordinary frames it stands for, none longer than the MTU.

mod runner_support;

use std::io;
use std::sync::{Arc, Mutex};

use runner_support::{factory, guest_memory};
use vm_nic::backends::gso;
use vm_nic::backends::opts::OptError;
use vm_nic::backends::{Counters, FrameQueue, NetBackend, VirtioNetHdr};
use vm_nic::devices::{ManualClock, NoIrq};
use vm_nic::network::{Guest, NetworkBuilder};
use vm_nic::options::NetConfig;
use vm_nic::runner::Runner;

/// What the test backends saw.
#[derive(Default)]
struct Log {
    /// The producer was told its peer takes GSO frames.
    told: Option<bool>,
    /// Frames the GSO sink got through `send_gso`, with their header.
    gso: Vec<(VirtioNetHdr, Vec<u8>)>,
    /// Ordinary frames, per sink kind ("tap", "socket").
    plain: Vec<(&'static str, Vec<u8>)>,
}

type Shared = Arc<Mutex<Log>>;

/// A TCP/IPv4 GSO frame: 4000 bytes of payload to be cut at 1460.
fn gso_frame() -> (VirtioNetHdr, Vec<u8>) {
    let mut f = vec![0u8; 54 + 4000];
    f[0..6].copy_from_slice(&[0x52, 0x54, 0, 0x12, 0x34, 0x56]);
    f[6..12].copy_from_slice(&[0x52, 0x55, 10, 0, 2, 2]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x45;
    f[16..18].copy_from_slice(&((20 + 20 + 4000) as u16).to_be_bytes());
    f[20] = 0x40;
    f[22] = 64;
    f[23] = 6;
    f[46] = 0x50;
    f[47] = 0x18;
    for (i, b) in f[54..].iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    let h = gso::prepare_tcp(&mut f, 1460).unwrap();
    (h, f)
}

/// Produces one GSO frame, handed out whole only after being told its peer takes it.
struct Producer {
    log: Shared,
    queue: FrameQueue,
}

impl NetBackend for Producer {
    fn kind(&self) -> &'static str {
        "user"
    }
    fn send(&mut self, _frame: &[u8]) -> io::Result<()> {
        Ok(())
    }
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        Ok(self.queue.pop_into(buf))
    }
    fn recv_gso(&mut self, buf: &mut [u8]) -> io::Result<Option<(VirtioNetHdr, usize)>> {
        if self.log.lock().unwrap().told == Some(true) {
            Ok(self.queue.pop_gso_into(buf))
        } else {
            Ok(self.recv(buf)?.map(|n| (VirtioNetHdr::default(), n)))
        }
    }
    fn set_peer_accepts_gso(&mut self, on: bool) {
        self.log.lock().unwrap().told = Some(on);
    }
    fn has_pending(&self) -> bool {
        !self.queue.is_empty()
    }
    fn counters(&self) -> Counters {
        Counters::default()
    }
}

/// Records what it is sent; accepts GSO frames when `gso`.
struct Sink {
    kind: &'static str,
    gso: bool,
    log: Shared,
}

impl NetBackend for Sink {
    fn kind(&self) -> &'static str {
        self.kind
    }
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        self.log
            .lock()
            .unwrap()
            .plain
            .push((self.kind, frame.to_vec()));
        Ok(())
    }
    fn recv(&mut self, _buf: &mut [u8]) -> io::Result<Option<usize>> {
        Ok(None)
    }
    fn accepts_gso(&self) -> bool {
        self.gso
    }
    fn send_gso(&mut self, hdr: &VirtioNetHdr, frame: &[u8]) -> io::Result<()> {
        assert!(self.gso, "a plain sink is never handed a GSO frame");
        self.log.lock().unwrap().gso.push((*hdr, frame.to_vec()));
        Ok(())
    }
    fn counters(&self) -> Counters {
        Counters::default()
    }
}

/// Runs `line` (a hub 0 with the producer as `user`, sinks as `tap`/`socket`, maybe a
/// NIC) until nothing moves; returns the log and what the NICs received.
fn run(line: &str, tap_gso: bool) -> (Log, Vec<Vec<u8>>) {
    let cfg = NetConfig::parse_line(line).unwrap();
    let log: Shared = Arc::default();
    let log2 = log.clone();
    let handles = Arc::new(Mutex::new(Vec::new()));
    let clock = Arc::new(ManualClock::new());
    let net = NetworkBuilder::new(&cfg)
        .guest(Guest {
            memory: guest_memory(),
            clock: clock.clone(),
            irq: Box::new(|_, _| Box::new(NoIrq)),
        })
        .nic_factory(factory(handles.clone()))
        .backend_opener(move |kind, _| {
            let log = log2.clone();
            let b: Box<dyn NetBackend> = match kind {
                "user" => {
                    let mut queue = FrameQueue::new();
                    let (h, f) = gso_frame();
                    queue.push_gso(&h, &f);
                    Box::new(Producer { log, queue })
                }
                "tap" => Box::new(Sink {
                    kind: "tap",
                    gso: tap_gso,
                    log,
                }),
                "socket" => Box::new(Sink {
                    kind: "socket",
                    gso: false,
                    log,
                }),
                other => return Err(OptError::whole(format!("unexpected {other}"))),
            };
            Ok(b)
        })
        .build()
        .unwrap();
    let nics = handles.lock().unwrap().clone();
    for n in &nics {
        n.open(64);
    }
    let mut r = Runner::new(net, clock);
    for _ in 0..10 {
        if r.pump() == 0 {
            break;
        }
    }
    let received = nics.iter().flat_map(|n| n.received()).collect();
    let log = std::mem::take(&mut *log.lock().unwrap());
    (log, received)
}

const HUB: &str = "-netdev user,id=u -netdev hubport,id=pu,hubid=0,netdev=u \
                   -netdev tap,id=t -netdev hubport,id=pt,hubid=0,netdev=t \
                   -netdev socket,id=s -netdev hubport,id=ps,hubid=0,netdev=s \
                   -netdev hubport,id=pn,hubid=0 -device e1000,netdev=pn";

#[test]
fn gso_frame_whole_to_the_gso_backend_cut_for_the_others() {
    let (log, nic) = run(HUB, true);
    let (h, f) = gso_frame();
    assert_eq!(log.told, Some(true), "the producer's peer takes GSO frames");
    assert_eq!(
        log.gso,
        vec![(h, f.clone())],
        "one write for the whole frame"
    );
    let segs = gso::segment_to_vec(&h, &f).unwrap();
    assert_eq!(segs.len(), 3);
    let socket: Vec<Vec<u8>> = log.plain.iter().map(|(_, f)| f.clone()).collect();
    assert_eq!(socket, segs, "the plain backend gets the segments");
    assert!(log.plain.iter().all(|(k, _)| *k == "socket"));
    assert_eq!(nic, segs, "the NIC gets the segments");
    assert!(nic.iter().all(|f| f.len() <= 1514));
}

#[test]
fn without_a_gso_backend_nobody_is_told_and_all_get_ordinary_frames() {
    let (log, nic) = run(HUB, false);
    let (h, f) = gso_frame();
    let segs = gso::segment_to_vec(&h, &f).unwrap();
    assert_eq!(log.told, Some(false));
    assert!(log.gso.is_empty());
    let tap: Vec<Vec<u8>> = log
        .plain
        .iter()
        .filter(|(k, _)| *k == "tap")
        .map(|(_, f)| f.clone())
        .collect();
    assert_eq!(tap, segs);
    assert_eq!(nic, segs);
}

#[test]
fn a_producer_owned_by_a_nic_is_never_told() {
    let (log, nic) = run("-netdev user,id=u -device e1000,netdev=u", true);
    assert_eq!(log.told, None);
    let (h, f) = gso_frame();
    assert_eq!(nic, gso::segment_to_vec(&h, &f).unwrap());
}
