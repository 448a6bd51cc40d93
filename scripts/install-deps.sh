#!/usr/bin/env bash
# Installs the Debian packages vm-nic's tests use (run as root). Idempotent.
set -euo pipefail
pkgs=(qemu-system-x86 busybox-static cpio ethtool libmnl0 iproute2 ca-certificates)
pkgs+=(tcpdump)  # backends/tests/dump_*: reads vm-nic's pcap files back
pkgs+=(vde2)     # backends/tests/vde_*: vde_switch and vde_plug as real peers
pkgs+=(make gcc-12 libelf1 libssl3 xz-utils)  # scripts/guest/fetch.sh builds the ISA NE2000 driver
pkgs+=(samba)    # backends/tests/user_guestfwd.rs: smbd serves smb= (QEMU runs it the same way)
missing=()
for p in "${pkgs[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
