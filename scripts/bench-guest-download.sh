#!/usr/bin/env bash
# The out-of-process cost: a Linux guest (the scripts/guest harness: Debian kernel, TCG,
# `irqpoll nolapic`) downloads a 64 MiB file over user-net with the e1000 driver, once
# through `vm-nic remote` (x-pci-proxy-dev, vm-nic's e1000 and user network) and once with
# stock QEMU's own e1000 and libslirp user net. Same guest, same machine, same run.
#
#   scripts/bench-guest-download.sh [--size MiB] [--runs N] [--timeout SECONDS] \
#                                   [--model e1000|ne2k_pci] [--rmem BYTES] [--vm-nic-only]
#
# --model ne2k_pci measures the NE2000 instead (Linux ne2k-pci; the guest's TCP receive
# buffer capped at 32 KiB, as in tests/guest_usernet_ne2k_pci.rs); --rmem sets that cap
# (0: the kernel's default); --vm-nic-only skips the stock QEMU run (e.g. to compare two
# vm-nic builds through VMNIC_BIN).
#
# The file is served by a Python HTTP server on 127.0.0.1 (the guest reaches it as
# 10.0.2.2, the user-net gateway). The guest image is the harness's initramfs with /init
# replaced by a download step (built in a cache folder of its own and handed to
# scripts/guest/run.sh through VMNIC_GUEST_CACHE; the harness itself is unchanged).
# Prints one line per run: nic, bytes received, seconds the download took on the host's
# clock (server side) and MiB/s from it, and the guest's own clock for reference.
# Every process started here is ended by its PID.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
size=64
runs=1
timeout=600
model=e1000
rmem_bytes=""
qemu_too=1
while [ $# -gt 0 ]; do
    case "$1" in
        --model) model="$2"; shift 2 ;;
        --rmem) rmem_bytes="$2"; shift 2 ;;
        --vm-nic-only) qemu_too=0; shift ;;
        --size) size="$2"; shift 2 ;;
        --runs) runs="$2"; shift 2 ;;
        --timeout) timeout="$2"; shift 2 ;;
        *) echo "bench-guest-download.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
case "$model" in
    e1000) modules="mii e1000"; rmem_bytes="${rmem_bytes:-0}" ;;
    ne2k_pci) modules="8390 ne2k-pci"; rmem_bytes="${rmem_bytes:-32768}" ;;
    *) echo "bench-guest-download.sh: --model is e1000 or ne2k_pci" >&2; exit 2 ;;
esac
rmem=""
[ "$rmem_bytes" = 0 ] || rmem="4096 $rmem_bytes $rmem_bytes"

base_cache="${VMNIC_GUEST_CACHE:-$root/.cache/guest}"
base_initrd="$(VMNIC_GUEST_CACHE="$base_cache" "$root/scripts/guest/build-initramfs.sh")"
bin="${VMNIC_BIN:-$root/target/release/vm-nic}"
[ -x "$bin" ] || { echo "build it first: cargo build --release --bin vm-nic" >&2; exit 2; }

work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# The file and its server.
mkdir -p "$work/www"
head -c "$((size << 20))" /dev/urandom >"$work/www/blob"
port=$((20000 + ($$ * 7919) % 12000))
# The server times each GET on the host clock (the guest's clock is not trustworthy under
# TCG with irqpoll: it ran 2.5x fast in one vm-nic run): request read to last byte
# handed to the socket, appended to times.log.
cat >"$work/serve.py" <<'PY'
import functools, http.server, sys, time
class Timed(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        t0 = time.monotonic()
        super().do_GET()
        self.wfile.flush()
        with open(sys.argv[3], "a") as f:
            f.write(f"{time.monotonic() - t0:.3f}\n")
handler = functools.partial(Timed, directory=sys.argv[2])
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), handler).serve_forever()
PY
python3 "$work/serve.py" "$port" "$work/www" "$work/times.log" >"$work/http.log" 2>&1 &
server_pid=$!
for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done

# The guest image: the harness's archive with /init replaced by the download step.
cache="$work/cache"
mkdir -p "$cache/tree"
for f in vmlinuz kernel-version ingredients.ok; do ln -s "$base_cache/$f" "$cache/$f"; done
(cd "$cache/tree" && gzip -dc "$base_initrd" | cpio -id --quiet)
cat >"$cache/tree/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
for m in $modules; do insmod /lib/modules/\$m.ko; done
[ -z "$rmem" ] || echo "$rmem" >/proc/sys/net/ipv4/tcp_rmem
i=0
while [ ! -e /sys/class/net/eth0 ] && [ \$i -lt 50 ]; do sleep 0.1; i=\$((i + 1)); done
ip link set lo up
ip link set eth0 up
# As the harness's init: wait (bounded, 10 s) for carrier before asking for a lease; the
# e1000 PHY reports link only after auto-negotiation.
i=0
while [ "\$(cat /sys/class/net/eth0/carrier 2>/dev/null)" != 1 ] && [ \$i -lt 100 ]; do
    sleep 0.1
    i=\$((i + 1))
done
echo "VMNIC-RESULT carrier=\$(cat /sys/class/net/eth0/carrier 2>/dev/null)"
udhcpc -i eth0 -n -q -f -t 5 -T 2 -s /udhcpc.script >/tmp/udhcpc.log 2>&1 ||
    sed 's/^/VMNIC-LOG /' /tmp/udhcpc.log
echo "VMNIC-RESULT driver=\$(basename "\$(readlink /sys/class/net/eth0/device/driver)")"
t0=\$(cut -d' ' -f1 /proc/uptime)
wget -O - "http://10.0.2.2:$port/blob" 2>/tmp/wget.log | wc -c >/tmp/bytes
sed 's/^/VMNIC-LOG /' /tmp/wget.log
t1=\$(cut -d' ' -f1 /proc/uptime)
echo "VMNIC-RESULT download_bytes=\$(cat /tmp/bytes) t0=\$t0 t1=\$t1"
echo "VMNIC-RESULT done=1"
poweroff -f
sleep 5
EOF
chmod 0755 "$cache/tree/init"
(cd "$cache/tree" && find . | cpio -o -H newc --quiet | gzip -1) >"$cache/initramfs.cpio.gz"
rm -rf "$cache/tree"

run_one() { # run_one vm-nic|qemu
    local nic="$1" out host_t
    : >"$work/times.log"
    out="$(VMNIC_GUEST_CACHE="$cache" VMNIC_GUEST_INITRD="$cache/initramfs.cpio.gz" VMNIC_BIN="$bin" RUST_LOG=warn \
        "$root/scripts/guest/run.sh" --nic "$nic" --timeout "$timeout" -- \
        -device "$model,netdev=n0" -netdev user,id=n0 2>&1)" || true
    local line bytes t0 t1
    line="$(echo "$out" | grep -a "download_bytes=" | tail -n1 || true)"
    if [ -z "$line" ] || echo "$line" | grep -q 'download_bytes=0 '; then
        echo "$nic: no download result"
        echo "$out" | tail -n 30 | sed 's/^/    /'
        return
    fi
    bytes="$(echo "$line" | sed -n 's/.*download_bytes=\([0-9]*\).*/\1/p')"
    t0="$(echo "$line" | sed -n 's/.* t0=\([0-9.]*\).*/\1/p')"
    t1="$(echo "$line" | sed -n 's/.* t1=\([0-9.]*\).*/\1/p')"
    host_t="$(tail -n1 "$work/times.log")"
    echo "$nic bytes=$bytes host_seconds_download=${host_t:-none}" \
        "MiB/s=$(echo "${host_t:-0} $bytes" | awk '{if ($1 > 0) printf "%.2f", $2 / 1048576 / $1; else print "-"}')" \
        "guest_clock_seconds=$(echo "$t0 $t1" | awk '{printf "%.2f", $2 - $1}')" \
        "$(echo "$out" | grep -a 'host_seconds=' | sed 's/VMNIC-RESULT //')"
}

echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); nproc: $(nproc);" \
    "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //');" \
    "load: $(cut -d' ' -f1-3 /proc/loadavg); file: ${size} MiB; model: $model; rmem: $rmem_bytes; vm-nic: $bin"
for _ in $(seq "$runs"); do
    run_one vm-nic
    [ "$qemu_too" = 0 ] || run_one qemu
done
