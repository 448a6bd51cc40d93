//! Network-namespace and capability helpers shared by the tests that need a network
//! without routes or a thread without some privilege.
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

/// Runs `ip ARGS` (iproute2), in the calling thread's namespace, and checks it worked.
pub fn ip(args: &[&str]) {
    let st = std::process::Command::new("ip")
        .args(args)
        .status()
        .expect("ip (iproute2) is needed");
    assert!(st.success(), "ip {args:?} failed");
}

/// Sets the calling thread's namespace's `net.ipv4.ping_group_range` (which governs
/// ICMP and ICMPv6 ping sockets): net sysctls resolve to the namespace of the thread
/// that opens them.
pub fn set_ping_group_range(range: &str) {
    std::fs::write("/proc/sys/net/ipv4/ping_group_range", range).unwrap();
}

/// CAP_NET_ADMIN.
pub const CAP_NET_ADMIN: u32 = 12;
/// CAP_NET_RAW.
pub const CAP_NET_RAW: u32 = 13;

/// Drops capability `cap` (a number below 32) from the calling thread's effective set
/// only: capabilities are per thread, so the rest of the test process keeps it.
pub fn drop_capability(cap: u32) {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut h = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let mut d = [Data::default(); 2];
    // SAFETY: capget/capset with a version-3 header and two data words, as the ABI says.
    unsafe {
        assert_eq!(
            libc::syscall(libc::SYS_capget, &mut h as *mut Header, d.as_mut_ptr()),
            0
        );
        d[0].effective &= !(1 << cap);
        assert_eq!(
            libc::syscall(libc::SYS_capset, &mut h as *mut Header, d.as_ptr()),
            0
        );
    }
}
