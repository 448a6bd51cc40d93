#!/usr/bin/env bash
# Fetches the guest ingredients from Debian packages into the cache folder (default
# .cache/guest, override with VMNIC_GUEST_CACHE): a Debian kernel and its NIC modules,
# busybox (static), ethtool and the shared libraries it needs. Needs only `apt-get
# download` (no root, nothing is installed). Idempotent; safe to run concurrently (flock).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${VMNIC_GUEST_CACHE:-$root/.cache/guest}"
mkdir -p "$cache"
exec 9>"$cache/.fetch.lock"
flock 9

if [ -f "$cache/ingredients.ok" ]; then
    exit 0
fi

work="$cache/download"
rm -rf "$work" "$cache/kernel" "$cache/userland"
mkdir -p "$work" "$cache/kernel" "$cache/userland"
cd "$work"

# The kernel package the linux-image-amd64 metapackage points at (linux-image-6.1.0-N-amd64).
find_kernel() {
    apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'
}
kpkg="$(find_kernel)"
if [ -z "$kpkg" ] && [ "$(id -u)" = 0 ]; then
    apt-get update -q >&2
    kpkg="$(find_kernel)"
fi
if [ -z "$kpkg" ]; then
    echo "fetch.sh: cannot find the kernel package behind linux-image-amd64 (run apt-get update?)" >&2
    exit 1
fi
echo "fetch.sh: downloading $kpkg busybox-static ethtool libmnl0" >&2
apt-get download -q "$kpkg" busybox-static ethtool libmnl0 >&2

dpkg -x linux-image-*.deb "$cache/kernel"
for deb in busybox-static_*.deb ethtool_*.deb libmnl0_*.deb; do
    dpkg -x "$deb" "$cache/userland"
done

vmlinuz="$(ls "$cache"/kernel/boot/vmlinuz-* | head -n1)"
kver="${vmlinuz##*/vmlinuz-}"
ln -sf "${vmlinuz#"$cache"/}" "$cache/vmlinuz"
echo "$kver" > "$cache/kernel-version"

# Every module the guest tests load must be there (uncompressed .ko in Debian 12).
mods="$cache/kernel/lib/modules/$kver/kernel/drivers/net"
for m in mii.ko ethernet/8390/8390.ko ethernet/8390/ne2k-pci.ko ethernet/realtek/8139too.ko \
         ethernet/realtek/8139cp.ko ethernet/intel/e1000/e1000.ko; do
    if [ ! -f "$mods/$m" ]; then
        echo "fetch.sh: module $m missing from $kpkg" >&2
        exit 1
    fi
done

rm -rf "$work"
touch "$cache/ingredients.ok"
echo "fetch.sh: ingredients ready in $cache (kernel $kver)" >&2
