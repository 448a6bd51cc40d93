//! Socket faults that need a network without routes: run as root in a network namespace
//! the test creates (only loopback exists there), so "unreachable" is real and local.
#![cfg(feature = "socket")]

use vm_nic_backends::socket;

fn in_empty_netns(f: impl FnOnce() + Send + 'static) {
    let r = std::thread::spawn(move || {
        // SAFETY: unshare affects only this thread's namespace membership.
        assert_eq!(
            unsafe { libc::unshare(libc::CLONE_NEWNET) },
            0,
            "unshare(CLONE_NEWNET) failed (this test needs root): {}",
            std::io::Error::last_os_error()
        );
        f()
    })
    .join();
    if let Err(p) = r {
        std::panic::resume_unwind(p);
    }
}

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
