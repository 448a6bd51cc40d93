//! Properties of the hub: a frame never comes back to its source and reaches every other
//! live port, in order, within the queue bounds (the hub fuzz target's differential
//! check, here over proptest's random sequences).

use proptest::prelude::*;
use vm_nic::fuzzing::hub::{check_hub, HubOp};
use vm_nic_backends::{Hub, NetBackend};

fn hub_op() -> impl Strategy<Value = HubOp> {
    prop_oneof![
        Just(HubOp::AddPort),
        any::<u8>().prop_map(HubOp::DropPort),
        (any::<u8>(), 0u16..3000, any::<u8>()).prop_map(|(port, len, fill)| HubOp::Send {
            port,
            len,
            fill
        }),
        any::<u8>().prop_map(HubOp::Recv),
    ]
}

proptest! {
    #[test]
    fn hub_matches_its_reference_model(ops in prop::collection::vec(hub_op(), 0..200)) {
        prop_assert_eq!(check_hub(&ops), Ok(()));
    }

    #[test]
    fn every_frame_floods_to_all_others_and_never_returns(
        ports in 2usize..8,
        sends in prop::collection::vec((any::<usize>(), 1usize..1600), 1..40),
    ) {
        let hub = Hub::new(7);
        let mut p: Vec<_> = (0..ports).map(|_| hub.add_port()).collect();
        let mut expect: Vec<Vec<Vec<u8>>> = vec![Vec::new(); ports];
        for (i, (src, len)) in sends.iter().enumerate() {
            let src = src % ports;
            let mut frame = vec![src as u8; *len];
            frame[0] = i as u8;
            p[src].send(&frame).unwrap();
            for (n, e) in expect.iter_mut().enumerate() {
                if n != src {
                    e.push(frame.clone());
                }
            }
        }
        let mut buf = vec![0u8; 2048];
        for (n, port) in p.iter_mut().enumerate() {
            let mut got = Vec::new();
            while let Some(len) = port.recv(&mut buf).unwrap() {
                got.push(buf[..len].to_vec());
            }
            prop_assert!(got.iter().all(|f| f[1..].iter().all(|&b| b as usize != n)),
                "port {} received its own frame", n);
            prop_assert_eq!(&got, &expect[n]);
        }
    }
}
