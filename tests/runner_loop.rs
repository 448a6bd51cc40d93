//! The runner: flow control, hub pumping, timers, fd polling, link state.

mod runner_support;

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use runner_support::{factory, frame, guest_memory, Handle, Mem};
use vm_nic::backends::memory::{RecordingBackend, RecordingHandle};
use vm_nic::backends::{Counters, MacAddr, NetBackend};
use vm_nic::devices::{Clock, ManualClock, NoIrq};
use vm_nic::network::{Guest, NetworkBuilder};
use vm_nic::options::NetConfig;
use vm_nic::runner::{MonotonicClock, Runner};

/// Builds `line` with scripted NICs; every `socket` backend is a recording backend whose
/// handle is returned in creation order.
fn build(line: &str, clock: Arc<dyn Clock>) -> (Runner<Mem>, Vec<Handle>, Vec<RecordingHandle>) {
    let cfg = NetConfig::parse_line(line).unwrap();
    let handles = Arc::new(Mutex::new(Vec::new()));
    let recs = Arc::new(Mutex::new(Vec::new()));
    let recs2 = recs.clone();
    let net = NetworkBuilder::new(&cfg)
        .guest(Guest {
            memory: guest_memory(),
            clock: clock.clone(),
            irq: Box::new(|_, _| Box::new(NoIrq)),
        })
        .nic_factory(factory(handles.clone()))
        .backend_opener(move |_, _| {
            let (b, h) = RecordingBackend::new();
            recs2.lock().unwrap().push(h);
            Ok(Box::new(b) as Box<dyn NetBackend>)
        })
        .build()
        .unwrap();
    let h = handles.lock().unwrap().clone();
    let r = recs.lock().unwrap().clone();
    (Runner::new(net, clock), h, r)
}

fn tagged(tag: u8) -> Vec<u8> {
    frame(MacAddr::BROADCAST, MacAddr::QEMU_DEFAULT, tag)
}

#[test]
fn frames_wait_in_the_backend_until_the_nic_can_receive() {
    let (mut r, nic, be) = build(
        "-netdev socket,id=s -device e1000,netdev=s",
        Arc::new(ManualClock::new()),
    );
    for t in 1..=3 {
        assert!(be[0].inject(&tagged(t)));
    }
    // Receiver off: nothing is pulled.
    assert_eq!(r.pump(), 0);
    assert_eq!(be[0].pending(), 3);
    // Room for one: the second is refused with NoBuffer and kept; the third stays put.
    nic[0].open(1);
    assert_eq!(r.pump(), 1);
    assert_eq!(nic[0].received(), vec![tagged(1)]);
    assert!(r.holds_frame(0));
    assert_eq!(be[0].pending(), 1);
    // The guest refills its ring: the kept frame comes first, nothing is lost.
    nic[0].lock().room = 10;
    assert_eq!(r.pump(), 2);
    assert_eq!(nic[0].received(), vec![tagged(2), tagged(3)]);
    assert!(!r.holds_frame(0));
}

#[test]
fn backend_on_a_hub_is_pumped_both_ways() {
    let (mut r, nic, be) = build("-net nic -net socket", Arc::new(ManualClock::new()));
    nic[0].open(10);
    be[0].inject(&tagged(7));
    r.pump();
    assert_eq!(nic[0].received(), vec![tagged(7)]);
    nic[0].lock().to_send.push(tagged(8));
    r.network_mut().nic_mut(0).unwrap().bar_write(0, 0, 4, 0);
    r.pump();
    assert_eq!(be[0].take_sent(), vec![tagged(8)]);
    // Nothing came back to the NIC that sent it.
    assert!(nic[0].received().is_empty());
}

#[test]
fn hub_backend_is_not_read_while_no_peer_can_receive() {
    let (mut r, nic, be) = build("-net nic -net socket", Arc::new(ManualClock::new()));
    be[0].inject(&tagged(1));
    r.pump();
    assert_eq!(
        be[0].pending(),
        1,
        "QEMU's hub can_receive: no NIC ready, frame stays"
    );
    nic[0].open(1);
    r.pump();
    assert_eq!(be[0].pending(), 0);
    assert_eq!(nic[0].received(), vec![tagged(1)]);
}

#[test]
fn two_backends_on_a_hub_form_a_switch() {
    let (mut r, _nic, be) = build(
        "-net socket -net socket,vlan=0",
        Arc::new(ManualClock::new()),
    );
    be[0].inject(&tagged(1));
    be[1].inject(&tagged(2));
    r.pump();
    assert_eq!(be[1].take_sent(), vec![tagged(1)]);
    assert_eq!(be[0].take_sent(), vec![tagged(2)]);
}

#[test]
fn peerless_clients_drop_what_reaches_them() {
    let (mut r, _nic, be) = build(
        "-netdev socket,id=s -netdev hubport,id=h,hubid=0",
        Arc::new(ManualClock::new()),
    );
    be[0].inject(&tagged(1));
    assert_eq!(r.pump(), 1);
    assert_eq!(be[0].pending(), 0);
}

#[test]
fn a_peerless_hub_port_lets_the_hub_take_frames() {
    // QEMU counts a port with no peer as able to receive: the backend is read and the
    // frame is dropped at that port.
    let (mut r, _nic, be) = build(
        "-netdev hubport,id=h,hubid=0 -net socket",
        Arc::new(ManualClock::new()),
    );
    be[0].inject(&tagged(1));
    assert_eq!(
        r.pump(),
        2,
        "pulled into the hub, then dropped at the peerless port"
    );
    assert_eq!(be[0].pending(), 0);
    assert_eq!(r.network().hub(0).unwrap().port_names(), ["h", "hub0port1"]);
}

#[test]
fn device_timers_fire_on_the_injected_clock() {
    let clock = Arc::new(ManualClock::new());
    let (mut r, nic, _be) = build("-device e1000", clock.clone());
    nic[0].lock().deadline = Some(1_000);
    assert_eq!(r.next_timeout(), Some(Duration::from_nanos(1_000)));
    r.run_once(Some(Duration::ZERO)).unwrap();
    assert_eq!(nic[0].lock().timers_fired, 0);
    clock.advance(1_000);
    assert_eq!(r.next_timeout(), Some(Duration::ZERO));
    let act = r.run_once(Some(Duration::ZERO)).unwrap();
    assert_eq!(act.timers, 1);
    assert_eq!(nic[0].lock().timers_fired, 1);
    assert_eq!(r.next_timeout(), None);
}

#[test]
fn link_changes_reach_the_nic() {
    let (mut r, nic, be) = build(
        "-netdev socket,id=s -device e1000,netdev=s",
        Arc::new(ManualClock::new()),
    );
    r.pump();
    assert!(nic[0].lock().links.is_empty());
    be[0].set_link(false);
    r.pump();
    be[0].set_link(true);
    r.pump();
    r.pump();
    assert_eq!(nic[0].lock().links, vec![false, true]);
}

/// A host-like backend: one datagram per frame on a Unix socket, with a deadline.
struct DatagramBackend {
    sock: UnixDatagram,
    counters: Counters,
    deadline: Option<Instant>,
    polls: Arc<Mutex<usize>>,
    /// What `recv_waits_for_fd` says (true: nothing is queued in-process, as for a tap).
    waits_for_fd: bool,
    /// Calls of `recv`.
    recvs: Arc<Mutex<usize>>,
}

impl NetBackend for DatagramBackend {
    fn kind(&self) -> &'static str {
        "socket"
    }
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        self.counters.count_sent(frame.len());
        self.sock.send(frame).map(|_| ())
    }
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        *self.recvs.lock().unwrap() += 1;
        match self.sock.recv(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }
    fn poll_fd(&self) -> Option<RawFd> {
        Some(self.sock.as_raw_fd())
    }
    fn recv_waits_for_fd(&self) -> bool {
        self.waits_for_fd
    }
    fn counters(&self) -> Counters {
        self.counters
    }
    fn next_deadline(&self) -> Option<Instant> {
        self.deadline
    }
    fn poll(&mut self, now: Instant) -> io::Result<()> {
        *self.polls.lock().unwrap() += 1;
        if self.deadline.is_some_and(|d| d <= now) {
            self.deadline = None;
        }
        Ok(())
    }
}

fn build_with_datagram(
    deadline: Option<Instant>,
) -> (Runner<Mem>, Vec<Handle>, UnixDatagram, Arc<Mutex<usize>>) {
    let d = build_with_datagram_waiting(deadline, false);
    (d.runner, d.nics, d.peer, d.polls)
}

/// A runner over one NIC on a [`DatagramBackend`], with the test's ends of it.
struct DatagramRig {
    runner: Runner<Mem>,
    nics: Vec<Handle>,
    peer: UnixDatagram,
    polls: Arc<Mutex<usize>>,
    recvs: Arc<Mutex<usize>>,
}

/// As [`build_with_datagram`], the backend saying `waits_for_fd`.
fn build_with_datagram_waiting(deadline: Option<Instant>, waits_for_fd: bool) -> DatagramRig {
    let recvs = Arc::new(Mutex::new(0));
    let recvs2 = recvs.clone();
    let cfg = NetConfig::parse_line("-netdev socket,id=s -device e1000,netdev=s").unwrap();
    let (ours, theirs) = UnixDatagram::pair().unwrap();
    ours.set_nonblocking(true).unwrap();
    let slot = Mutex::new(Some(ours));
    let polls = Arc::new(Mutex::new(0));
    let polls2 = polls.clone();
    let handles = Arc::new(Mutex::new(Vec::new()));
    let clock = Arc::new(MonotonicClock::new());
    let net = NetworkBuilder::new(&cfg)
        .guest(Guest {
            memory: guest_memory(),
            clock: clock.clone(),
            irq: Box::new(|_, _| Box::new(NoIrq)),
        })
        .nic_factory(factory(handles.clone()))
        .backend_opener(move |_, _| {
            Ok(Box::new(DatagramBackend {
                sock: slot.lock().unwrap().take().unwrap(),
                counters: Counters::default(),
                deadline,
                polls: polls2.clone(),
                waits_for_fd,
                recvs: recvs2.clone(),
            }) as Box<dyn NetBackend>)
        })
        .build()
        .unwrap();
    let nics = handles.lock().unwrap().clone();
    DatagramRig {
        runner: Runner::new(net, clock),
        nics,
        peer: theirs,
        polls,
        recvs,
    }
}

#[test]
fn a_drained_backend_that_waits_for_its_fd_is_read_again_only_once_it_polls_readable() {
    let DatagramRig {
        runner: mut r,
        nics: nic,
        peer,
        recvs,
        ..
    } = build_with_datagram_waiting(None, true);
    nic[0].open(4);
    let reads = || *recvs.lock().unwrap();
    // The first pump finds nothing; later ones do not ask again (each would be an EAGAIN).
    assert_eq!(r.pump(), 0);
    assert_eq!(reads(), 1);
    r.pump();
    r.dispatch(&[]);
    assert_eq!(
        reads(),
        1,
        "a drained backend was read before its fd polled readable"
    );
    assert_eq!(r.poll_fds().len(), 1, "its fd is still watched");
    // A frame arrives: once the loop reports the fd readable, it is read.
    peer.send(&tagged(7)).unwrap();
    assert_eq!(r.dispatch(&r.poll_fds()).frames, 1);
    assert_eq!(nic[0].received(), vec![tagged(7)]);
    assert_eq!(
        reads(),
        3,
        "the frame, then the read that found the socket empty"
    );
}

#[test]
fn a_backend_that_promises_nothing_is_read_on_every_pump() {
    let DatagramRig {
        runner: mut r,
        nics: nic,
        recvs,
        ..
    } = build_with_datagram_waiting(None, false);
    nic[0].open(4);
    r.pump();
    r.pump();
    r.dispatch(&[]);
    assert_eq!(*recvs.lock().unwrap(), 3);
}

/// An in-process backend that answers every frame at once (as the user network answers
/// an ARP request or a ping of its gateway).
struct EchoBackend {
    queue: std::collections::VecDeque<Vec<u8>>,
    counters: Counters,
}

impl NetBackend for EchoBackend {
    fn kind(&self) -> &'static str {
        "user"
    }
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        self.queue.push_back(frame.to_vec());
        Ok(())
    }
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        Ok(self.queue.pop_front().map(|f| {
            buf[..f.len()].copy_from_slice(&f);
            f.len()
        }))
    }
    fn has_pending(&self) -> bool {
        !self.queue.is_empty()
    }
    fn counters(&self) -> Counters {
        self.counters
    }
}

#[test]
fn an_in_process_answer_goes_out_in_the_same_pump() {
    let cfg = NetConfig::parse_line(
        "-netdev socket,id=a -netdev socket,id=b \
         -netdev hubport,id=ha,hubid=0,netdev=a -netdev hubport,id=hb,hubid=0,netdev=b",
    )
    .unwrap();
    let rec = Arc::new(Mutex::new(None));
    let rec2 = rec.clone();
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new());
    let net = NetworkBuilder::new(&cfg)
        .guest(Guest {
            memory: guest_memory(),
            clock: clock.clone(),
            irq: Box::new(|_, _| Box::new(NoIrq)),
        })
        .backend_opener(move |_, _| {
            let mut slot = rec2.lock().unwrap();
            if slot.is_none() {
                let (b, h) = RecordingBackend::new();
                *slot = Some(h);
                return Ok(Box::new(b) as Box<dyn NetBackend>);
            }
            Ok(Box::new(EchoBackend {
                queue: Default::default(),
                counters: Counters::default(),
            }) as Box<dyn NetBackend>)
        })
        .build()
        .unwrap();
    let mut r = Runner::new(net, clock);
    let host = rec.lock().unwrap().clone().unwrap();
    assert!(host.inject(&tagged(9)));
    // One pump: the frame reaches the echo backend, and its answer comes back.
    assert_eq!(
        r.pump(),
        4,
        "in, to the echo, its answer in, out to the host"
    );
    assert_eq!(host.take_sent(), vec![tagged(9)]);
}

#[test]
fn run_once_wakes_on_a_readable_backend_fd() {
    let (mut r, nic, peer, polls) = build_with_datagram(None);
    // Receiver off: the fd is not watched, so a waiting frame does not make it spin.
    peer.send(&tagged(4)).unwrap();
    assert!(r.poll_fds().is_empty());
    let t = Instant::now();
    assert_eq!(
        r.run_once(Some(Duration::from_millis(30))).unwrap().frames,
        0
    );
    assert!(
        t.elapsed() >= Duration::from_millis(25),
        "waited the full timeout"
    );
    nic[0].open(4);
    assert_eq!(r.poll_fds().len(), 1);
    assert_eq!(r.run_once(Some(Duration::ZERO)).unwrap().frames, 1);
    assert_eq!(nic[0].received(), vec![tagged(4)]);
    // A frame arriving while the loop sleeps in poll wakes it at once.
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        peer.send(&tagged(5)).unwrap();
        peer
    });
    let t = Instant::now();
    let act = r.run_once(Some(Duration::from_secs(5))).unwrap();
    assert!(t.elapsed() < Duration::from_secs(2));
    assert_eq!(act.frames, 1);
    assert_eq!(nic[0].received(), vec![tagged(5)]);
    assert!(
        *polls.lock().unwrap() >= 1,
        "readiness reached NetBackend::poll"
    );
    let peer = sender.join().unwrap();
    // The NIC transmits through the same socket.
    nic[0].lock().to_send.push(tagged(6));
    r.network_mut().nic_mut(0).unwrap().bar_write(0, 0, 4, 0);
    let mut buf = [0u8; 128];
    peer.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    assert_eq!(peer.recv(&mut buf).unwrap(), 60);
    assert_eq!(&buf[..60], &tagged(6)[..]);
}

#[test]
fn backend_deadlines_are_served() {
    let (mut r, _nic, _peer, polls) =
        build_with_datagram(Some(Instant::now() + Duration::from_millis(20)));
    let wait = r.next_timeout().unwrap();
    assert!(wait <= Duration::from_millis(20));
    let t = Instant::now();
    while *polls.lock().unwrap() == 0 && t.elapsed() < Duration::from_secs(2) {
        r.run_once(Some(Duration::from_secs(1))).unwrap();
    }
    assert_eq!(*polls.lock().unwrap(), 1);
    assert!(t.elapsed() >= Duration::from_millis(15));
    assert_eq!(r.next_timeout(), None);
}

#[test]
fn run_returns_when_the_stop_fd_is_readable() {
    let (mut r, _nic, _peer, _polls) = build_with_datagram(None);
    let (stop, mut wake) = UnixStream::pair().unwrap();
    std::io::Write::write_all(&mut wake, b"x").unwrap();
    r.run(stop.as_fd()).unwrap();
}

#[test]
fn monotonic_clock_moves_forward() {
    let c = MonotonicClock::new();
    let a = c.now_ns();
    std::thread::sleep(Duration::from_millis(2));
    assert!(c.now_ns() >= a + 1_000_000);
}
