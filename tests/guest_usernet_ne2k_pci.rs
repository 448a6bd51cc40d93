//! Issue 8's real-guest user-network steps on vm-nic's `ne2k_pci` (Linux ne2k_pci).

mod guest_support;
mod guest_usernet_support;
mod usernet_support;

/// Every step but the bulk transfers, which get 120 guest seconds each so the later
/// steps run: with this driver the download stalls (see the next test).
#[test]
fn linux_ne2k_pci_every_user_network_step_but_bulk() {
    guest_usernet_support::boot_bulk_limited("ne2k_pci", false, 120)
        .assert_all_but_bulk("ne2k-pci");
}

/// Known failure: the HTTP download stalls after 0.5-1.7 MB (the user network's
/// 512 KiB guest-bound buffer stays full, the guest stops acknowledging; e1000 and
/// 8139cp complete 64 MiB). Run with `--ignored` to reproduce.
#[test]
#[ignore = "the download stalls after ~1 MB with this driver; see the doc comment"]
fn linux_ne2k_pci_bulk_download_and_upload() {
    let r = guest_usernet_support::boot("ne2k_pci", false);
    r.assert_all("ne2k-pci");
}

#[test]
fn linux_ne2k_pci_restrict_on_blocks_the_host_but_not_forwards() {
    guest_usernet_support::boot("ne2k_pci", true).assert_restricted("ne2k-pci");
}
