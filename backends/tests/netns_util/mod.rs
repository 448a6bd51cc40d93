//! Network-namespace helpers shared by the tests that need a network without routes.
#![allow(dead_code)]

/// Runs `f` on a thread in a new network namespace where only a down loopback exists, so
/// every destination is unreachable without anything leaving the host (needs root).
pub fn in_empty_netns(f: impl FnOnce() + Send + 'static) {
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
