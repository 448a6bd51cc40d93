//! Issue 8's real-guest user-network steps on vm-nic's `rtl8139,revision=0x10` (Linux 8139too (RTL8139 revision 0x10)).

mod guest_support;
mod guest_usernet_support;
mod usernet_support;

/// Every step but the bulk transfers, which get 120 guest seconds each so the later
/// steps run: with this driver the download stalls (see the next test).
#[test]
fn linux_8139too_every_user_network_step_but_bulk() {
    guest_usernet_support::boot_bulk_limited("rtl8139,revision=0x10", false, 120)
        .assert_all_but_bulk("8139too");
}

/// Known failure: the HTTP download stalls after 0.5-1.7 MB (the user network's
/// 512 KiB guest-bound buffer stays full, the guest stops acknowledging; e1000 and
/// 8139cp complete 64 MiB). Run with `--ignored` to reproduce.
#[test]
#[ignore = "the download stalls after ~1 MB with this driver; see the doc comment"]
fn linux_8139too_bulk_download_and_upload() {
    let r = guest_usernet_support::boot("rtl8139,revision=0x10", false);
    r.assert_all("8139too");
}

#[test]
fn linux_8139too_restrict_on_blocks_the_host_but_not_forwards() {
    guest_usernet_support::boot("rtl8139,revision=0x10", true).assert_restricted("8139too");
}
