//! Issue 7's guest interop: a Linux guest on stock QEMU's own e1000 (no proxy device),
//! whose `-netdev socket` (connect and mcast)/`stream`/`dgram` peer on the loopback is `vm-nic switch` with
//! `-netdev user`, gets its DHCP lease from vm-nic's user network and pings 10.0.2.2 with
//! no loss — frames both ways between QEMU's framing and vm-nic's, against the real
//! program. One guest boot per transport.

mod guest_support;
mod usernet_support;

use std::process::{Command, Stdio};

use usernet_support::{free_port, wait_ready, Proc};

const BIN: &str = env!("CARGO_BIN_EXE_vm-nic");

/// Starts `vm-nic switch VMNIC_NETDEV -netdev user`, boots the guest on QEMU's e1000 with
/// `qemu_netdev` (id `n0`), checks the lease and pings, then stops the switch by SIGTERM.
fn interop(vmnic_netdev: &str, qemu_netdev: &str) {
    let mut switch = Proc(
        Command::new(BIN)
            .args(["switch", "-netdev", vmnic_netdev, "-netdev", "user,id=u0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("vm-nic switch"),
    );
    let info = wait_ready(&mut switch.0);
    assert!(info.contains("type=user"), "{info}");
    let run = guest_support::boot_with("qemu", "e1000", qemu_netdev);
    guest_support::assert_network_up(&run, "e1000");
    let status = switch.terminate().expect("vm-nic switch ignored SIGTERM");
    assert!(status.success(), "vm-nic switch exited with {status}");
}

#[test]
fn qemu_socket_connect_to_vm_nic_socket_listen() {
    let p = free_port();
    interop(
        &format!("socket,id=s0,listen=127.0.0.1:{p}"),
        &format!("socket,id=n0,connect=127.0.0.1:{p}"),
    );
}

#[test]
fn qemu_stream_client_to_vm_nic_stream_server() {
    let p = free_port();
    interop(
        &format!("stream,id=s0,server=on,addr.type=inet,addr.host=127.0.0.1,addr.port={p}"),
        &format!("stream,id=n0,server=off,addr.type=inet,addr.host=127.0.0.1,addr.port={p}"),
    );
}

#[test]
fn qemu_dgram_to_vm_nic_dgram() {
    let (a, b) = (free_port(), free_port());
    let dgram = |local: u16, remote: u16, id: &str| {
        format!(
            "dgram,id={id},local.type=inet,local.host=127.0.0.1,local.port={local},\
             remote.type=inet,remote.host=127.0.0.1,remote.port={remote}"
        )
    };
    interop(&dgram(a, b, "d0"), &dgram(b, a, "n0"));
}

#[test]
fn qemu_mcast_and_vm_nic_mcast_on_the_loopback() {
    // Both ends join the same group on the loopback interface; QEMU and vm-nic each also
    // see their own datagrams (IP_MULTICAST_LOOP), as QEMU's semantics require.
    let p = free_port();
    let mcast = |id: &str| format!("socket,id={id},mcast=239.192.0.7:{p},localaddr=127.0.0.1");
    interop(&mcast("m0"), &mcast("n0"));
}
