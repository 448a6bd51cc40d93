#!/usr/bin/env bash
# Fetches the guest ingredients from Debian packages into the cache folder (default
# .cache/guest, override with VMNIC_GUEST_CACHE): a Debian kernel and its NIC modules,
# the ISA NE2000 modules built from that kernel's source, busybox (static), ethtool and
# the shared libraries it needs. Needs `apt-get download`, make and gcc-12 (no root,
# nothing is installed). Idempotent; safe to run concurrently (flock).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="${VMNIC_GUEST_CACHE:-$root/.cache/guest}"
mkdir -p "$cache"
exec 9>"$cache/.fetch.lock"
flock 9

# build_isa_modules: the ISA NE2000 driver (ne.ko), the port-I/O 8390 core it links
# against (8390p.ko) and the harness's isa-irqpoll.ko. Debian's x86-64 kernel has no ISA
# bus option, so it ships neither driver: both are built here, unmodified, from the
# kernel's own source package against its own headers (unpacked into the cache, nothing
# installed). Needs make and the compiler the kernel was built with (gcc-12 on Debian
# 12). The guest loads them for `ne2k_isa`, which `vm-nic remote` serves behind a PCI
# carrier function. Rebuilt when isa-irqpoll.c changes.
build_isa_modules() {
    local kver work src hdr ver series key
    key="$(sha256sum "$here/isa-irqpoll.c" | cut -c1-16)"
    [ "$(cat "$cache/isa-modules.ok" 2>/dev/null)" = "$key" ] && return 0
    kver="$(cat "$cache/kernel-version")"
    work="$cache/isa-build"
    rm -rf "$work" "$cache/isa-modules"
    mkdir -p "$work/root" "$work/module" "$cache/isa-modules"
    echo "fetch.sh: building ne.ko, 8390p.ko and isa-irqpoll.ko for $kver" >&2
    (cd "$work" && apt-get download -q "linux-headers-$kver" "linux-headers-${kver%-*}-common" >&2)
    ver="$(dpkg-deb -f "$work"/linux-headers-"$kver"_*.deb Version)"
    series="$(echo "$kver" | cut -d. -f1-2)"
    (cd "$work" && apt-get download -q "linux-kbuild-$series=$ver" "linux-source-$series=$ver" >&2)
    for deb in "$work"/linux-headers-*.deb "$work"/linux-kbuild-*.deb; do
        dpkg -x "$deb" "$work/root"
    done
    hdr="$work/root/usr/src/linux-headers-$kver"
    # The flavour's Makefile includes the common one by absolute path.
    sed -i "s|^include /usr/src/|include $work/root/usr/src/|" "$hdr/Makefile"
    src="linux-source-$series/drivers/net/ethernet/8390"
    dpkg-deb --fsys-tarfile "$work"/linux-source-"$series"_*.deb |
        tar -xO "./usr/src/linux-source-$series.tar.xz" | xz -dc |
        tar -x -C "$work" "$src/ne.c" "$src/8390p.c" "$src/lib8390.c" "$src/8390.h"
    cp "$work/$src"/{ne.c,8390p.c,lib8390.c,8390.h} "$here/isa-irqpoll.c" "$work/module/"
    # CONFIG_NE2000_MODULE: ne.c registers its io= devices only when built as a module.
    printf 'obj-m := ne.o 8390p.o isa-irqpoll.o\nccflags-y := -DCONFIG_NE2000_MODULE=1\n' \
        >"$work/module/Kbuild"
    if ! make -s -C "$hdr" M="$work/module" modules >"$work/build.log" 2>&1; then
        cat "$work/build.log" >&2
        echo "fetch.sh: building ne.ko failed (needs make and gcc-12: scripts/install-deps.sh)" >&2
        exit 1
    fi
    cp "$work/module"/{ne.ko,8390p.ko,isa-irqpoll.ko} "$cache/isa-modules/"
    rm -rf "$work"
    echo "$key" >"$cache/isa-modules.ok"
}

if [ -f "$cache/ingredients.ok" ]; then
    build_isa_modules
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
build_isa_modules
echo "fetch.sh: ingredients ready in $cache (kernel $kver)" >&2
