//! Socket faults that need a network without routes: run as root in a network namespace
//! the test creates (only loopback exists there), so "unreachable" is real and local.
#![cfg(feature = "socket")]

mod netns_util;

use netns_util::in_empty_netns;
use vm_nic_backends::socket;

fn o(k: &str, v: &str) -> Vec<(String, String)> {
    vec![(k.to_string(), v.to_string())]
}

#[test]
fn unreachable_peers_are_clear_errors() {
    in_empty_netns(|| {
        // No interface but a down loopback: every destination is unreachable.
        let e = socket::open(&o("connect", "192.0.2.1:5555")).err().unwrap();
        assert_eq!(e.key.as_deref(), Some("connect"));
        assert!(
            e.message.contains("cannot connect to 192.0.2.1:5555"),
            "{e}"
        );
        assert!(e.message.contains("unreachable"), "{e}");
        // Joining a multicast group on an interface address this host does not have.
        let mut opts = o("mcast", "239.1.2.3:5000");
        opts.push(("localaddr".to_string(), "192.0.2.1".to_string()));
        let e = socket::open(&opts).err().unwrap();
        assert!(e.message.contains("cannot join 239.1.2.3"), "{e}");
    });
}

fn ip(args: &str) {
    let st = std::process::Command::new("ip")
        .args(args.split_whitespace())
        .status()
        .expect("ip (iproute2) is needed");
    assert!(st.success(), "ip {args}");
}

#[test]
fn reconnecting_client_never_blocks_the_event_loop() {
    use std::time::{Duration, Instant};
    in_empty_netns(|| {
        // 10.2.0.0/24 is first an "unreachable" route: connects fail at once. Then it is
        // routed through a veth whose peer is down: ARP is never answered and a connect
        // stays pending for a long time. Neither may ever block poll().
        ip("link add v0 type veth peer name v1");
        ip("addr add 10.1.0.1/24 dev v0");
        ip("link set v0 up");
        ip("route add unreachable 10.2.0.0/24");
        let mut b = vm_nic_backends::socket::stream::open(&[
            ("addr.type".to_string(), "inet".to_string()),
            ("addr.host".to_string(), "10.2.0.2".to_string()),
            ("addr.port".to_string(), "5555".to_string()),
            ("reconnect".to_string(), "1".to_string()),
        ])
        .unwrap();
        assert!(!b.link_up());
        let first = b
            .next_deadline()
            .expect("a failed first connect schedules a retry");
        let poll_for = |b: &mut Box<dyn vm_nic_backends::NetBackend>, d: Duration| {
            let end = Instant::now() + d;
            let mut deadlines = Vec::new();
            while Instant::now() < end {
                let t = Instant::now();
                b.poll(Instant::now()).unwrap();
                assert!(t.elapsed() < Duration::from_millis(100), "poll blocked");
                assert!(!b.link_up());
                b.send(&[0u8; 60]).unwrap();
                if let Some(d) = b.next_deadline() {
                    if deadlines.last() != Some(&d) {
                        deadlines.push(d);
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            deadlines
        };
        let seen = poll_for(&mut b, Duration::from_millis(2500));
        assert!(
            seen.iter().any(|d| *d > first),
            "failed retries schedule new ones"
        );
        ip("route del unreachable 10.2.0.0/24");
        ip("route add 10.2.0.0/24 dev v0");
        poll_for(&mut b, Duration::from_secs(3));
        assert_eq!(b.info(), "connecting to 10.2.0.2:5555");
        assert!(
            b.counters().dropped > 0,
            "frames sent while down are counted"
        );
    });
}
