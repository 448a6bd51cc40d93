#!/usr/bin/env bash
# Builds the guest initramfs (busybox, ethtool and its libraries, the NIC modules, /init)
# from the ingredients fetch.sh cached. Prints the path of the gzipped cpio archive.
# Builds only when no archive for exactly these inputs exists yet.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="${VMNIC_GUEST_CACHE:-$root/.cache/guest}"
"$here/fetch.sh"
exec 9>"$cache/.build.lock"
flock 9

# The archive is named by a hash of everything that goes into it, so checkouts with
# different guest scripts can share one cache (and run concurrently) without one using
# the other's /init.
key="$(cat "$here/init.sh" "$here/udhcpc.script" "$here/build-initramfs.sh" \
        "$here"/steps-*.sh "$cache/ingredients.ok" "$cache/kernel-version" \
        "$cache/isa-modules.ok" 2>/dev/null |
       sha256sum | cut -c1-16)"
out="$cache/initramfs-$key.cpio.gz"
if [ -f "$out" ]; then
    echo "$out"
    exit 0
fi

kver="$(cat "$cache/kernel-version")"
mods="$cache/kernel/lib/modules/$kver/kernel/drivers/net"
user="$cache/userland"
tree="$cache/initramfs-$key.d"
rm -rf "$tree"
mkdir -p "$tree"/{bin,sbin,proc,sys,dev,tmp,lib/modules,lib64,lib/x86_64-linux-gnu}

cp "$user/bin/busybox" "$tree/bin/busybox"
install -m 0755 "$here/init.sh" "$tree/init"
install -m 0755 "$here/udhcpc.script" "$tree/udhcpc.script"
for steps in "$here"/steps-*.sh; do
    [ -f "$steps" ] && install -m 0644 "$steps" "$tree/${steps##*/}"
done
for m in mii.ko ethernet/8390/8390.ko ethernet/8390/ne2k-pci.ko ethernet/realtek/8139too.ko \
         ethernet/realtek/8139cp.ko ethernet/intel/e1000/e1000.ko; do
    cp "$mods/$m" "$tree/lib/modules/"
done
cp "$cache/isa-modules"/{ne.ko,8390p.ko,isa-irqpoll.ko} "$tree/lib/modules/"

# ethtool plus every shared library the loader needs (libmnl from the package, the rest
# from the host's libc6, which is the same Debian release).
cp "$user/sbin/ethtool" "$tree/sbin/ethtool"
libdir="$user/usr/lib/x86_64-linux-gnu"
LD_LIBRARY_PATH="$libdir" ldd "$user/sbin/ethtool" | awk '/=>/ {print $3} !/=>/ && /^[ \t]*\// {print $1}' |
    while read -r lib; do
        [ -f "$lib" ] || continue
        case "$lib" in
            */ld-linux-x86-64.so.2) cp -L "$lib" "$tree/lib64/ld-linux-x86-64.so.2" ;;
            *) cp -L "$lib" "$tree/lib/x86_64-linux-gnu/" ;;
        esac
    done

(cd "$tree" && find . | cpio -o -H newc --quiet | gzip -1) > "$out.tmp"
mv "$out.tmp" "$out"
rm -rf "$tree"
# Keep the eight newest archives.
ls -t "$cache"/initramfs-*.cpio.gz | tail -n +9 | xargs -r rm -f
echo "$out"
