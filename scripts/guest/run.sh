#!/usr/bin/env bash
# Boots the vm-nic test guest once and prints its `VMNIC-RESULT key=value` lines.
#
#   run.sh [--nic vm-nic|qemu] [--ping N] [--ethtool] [--wget URL] [--timeout SECONDS] \
#          [--log FILE] [--append "KERNEL ARGS"] \
#          -- -device MODEL,netdev=n0[,prop=value] -netdev user,id=n0
#
# --nic vm-nic (default): QEMU (TCG, memfd RAM) gets `-device x-pci-proxy-dev` whose socket
#   is served by `vm-nic remote` with the given -device/-netdev options; the binary is
#   $VMNIC_BIN or target/debug/vm-nic.
# --nic qemu: the same options go to QEMU itself (its own NIC models and user network), to
#   check the guest side independently of vm-nic.
# The guest runs with `irqpoll nolapic`: under TCG the proxy cannot inject INTx, so Linux
# polls the NIC's interrupt handler on every timer tick.
# Both processes are ended by PID; a guest still running after the timeout is killed and
# reported as `VMNIC-RESULT host_timeout=1`. Exit status 0 when the guest reached its end.
# $VMNIC_GUEST_CACHE: the ingredients cache (default .cache/guest); $VMNIC_GUEST_INITRD:
# boot this archive instead of the one build-initramfs.sh makes (benchmarks).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="${VMNIC_GUEST_CACHE:-$root/.cache/guest}"

nic=vm-nic
ping=5
ethtool=0
wget=""
timeout=60
log=""
extra_append=""
while [ $# -gt 0 ]; do
    case "$1" in
        --nic) nic="$2"; shift 2 ;;
        --ping) ping="$2"; shift 2 ;;
        --ethtool) ethtool=1; shift ;;
        --wget) wget="$2"; shift 2 ;;
        --timeout) timeout="$2"; shift 2 ;;
        --log) log="$2"; shift 2 ;;
        --append) extra_append="$2"; shift 2 ;;
        --) shift; break ;;
        *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[ $# -gt 0 ] || { echo "run.sh: give the NIC as -- -device ... -netdev ..." >&2; exit 2; }

# VMNIC_GUEST_INITRD: a ready archive to boot instead of the harness's own (benchmarks).
initrd="${VMNIC_GUEST_INITRD:-$("$here/build-initramfs.sh")}"
kernel="$cache/vmlinuz"
tmp="$(mktemp -d)"
console="${log:-$tmp/console.log}"
: >"$console"
server_log="$tmp/server.log"
qemu_pid=""
server_pid=""
launcher_pid=""

end_pid() { # end_pid PID: TERM, then KILL after 2 s; reaps it if it is our child.
    local pid="$1" i=0
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 20 ]; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    end_pid "$qemu_pid"
    end_pid "$server_pid"
    end_pid "$launcher_pid"
    rm -rf "$tmp"
}
trap cleanup EXIT

append="console=ttyS0 irqpoll nolapic panic=-1 loglevel=4 vmnic.ping=$ping vmnic.ethtool=$ethtool $extra_append"
[ -z "$wget" ] || append="$append vmnic.wget=$wget"
# -icount shift=3,sleep=off: guest time counts instructions (8 ns each) and skips idle
# periods, instead of following the host clock. Guest timeouts (ethtool's loopback test
# allows 80 ms for 64 frames) then do not fail because a loaded host descheduled QEMU,
# and the guest's sleeps and DHCP/ping intervals cost no host time (a run takes ~15 s
# instead of ~40 s).
qemu=(qemu-system-x86_64 -machine pc,accel=tcg -m 256M -smp 1 -icount shift=3,sleep=off
      -object memory-backend-memfd,id=mem,size=256M,share=on -numa node,memdev=mem
      -kernel "$kernel" -initrd "$initrd" -append "$append"
      -nodefaults -display none -no-reboot -serial "file:$console")

start=$(date +%s.%N)
case "$nic" in
    vm-nic)
        bin="${VMNIC_BIN:-$root/target/debug/vm-nic}"
        [ -x "$bin" ] || { echo "run.sh: $bin not found; build it or set VMNIC_BIN" >&2; exit 2; }
        RUST_LOG="${RUST_LOG:-info}" perl "$here/socketpair-exec.pl" "$tmp/pids" \
            "$bin" remote --fd '{fd}' "$@" -- \
            "${qemu[@]}" -device 'x-pci-proxy-dev,id=nic0,fd={fd}' 2>"$server_log" &
        launcher_pid=$!
        i=0
        while [ ! -s "$tmp/pids" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        read -r server_pid qemu_pid <"$tmp/pids" || {
            echo "run.sh: could not start vm-nic remote and QEMU" >&2
            exit 1
        }
        ;;
    qemu)
        "${qemu[@]}" "$@" 2>"$server_log" &
        qemu_pid=$!
        ;;
    *) echo "run.sh: --nic is vm-nic or qemu" >&2; exit 2 ;;
esac

timed_out=0
server_rc=none
deadline=$(( $(date +%s) + timeout ))
while kill -0 "$qemu_pid" 2>/dev/null; do
    if [ "$(date +%s)" -ge "$deadline" ]; then timed_out=1; break; fi
    # The server must outlive QEMU: if it stops first the device is gone, so stop the
    # guest. It also stops as soon as an exiting QEMU closes the socket, so QEMU gets 3 s
    # to finish exiting before the server's end counts as a death.
    if [ -n "$server_pid" ] && ! kill -0 "$server_pid" 2>/dev/null; then
        i=0
        while kill -0 "$qemu_pid" 2>/dev/null && [ $i -lt 30 ]; do sleep 0.1; i=$((i + 1)); done
        if kill -0 "$qemu_pid" 2>/dev/null; then server_rc=died; else server_rc=exited; fi
        break
    fi
    sleep 0.2
done
end_pid "$qemu_pid"; qemu_pid=""
# The server exits by itself when QEMU closes the socket; give it 3 s.
if [ -n "$server_pid" ] && [ "$server_rc" = none ]; then
    i=0
    while kill -0 "$server_pid" 2>/dev/null && [ $i -lt 30 ]; do sleep 0.1; i=$((i + 1)); done
    if kill -0 "$server_pid" 2>/dev/null; then server_rc=hung; else server_rc=exited; fi
    end_pid "$server_pid"; server_pid=""
fi
elapsed=$(echo "$(date +%s.%N) $start" | awk '{printf "%.1f", $1 - $2}')

# Host-side log (vm-nic and QEMU stderr): its start and its end (the server's summary),
# or all of it with VMNIC_HOST_LINES=all.
if [ -s "$server_log" ]; then
    if [ "${VMNIC_HOST_LINES:-}" = all ] || [ "$(wc -l <"$server_log")" -le 40 ]; then
        sed 's/^/VMNIC-HOST /' "$server_log"
    else
        { head -n 30 "$server_log"; echo "[...]"; tail -n 10 "$server_log"; } | sed 's/^/VMNIC-HOST /'
    fi
fi
tr -d '\r' <"$console" | grep -a '^VMNIC-' || true
echo "VMNIC-RESULT host_seconds=$elapsed host_timeout=$timed_out server=$server_rc"
if [ "$server_rc" = died ]; then
    echo "run.sh: vm-nic remote stopped before the guest finished (see VMNIC-HOST lines)" >&2
    exit 1
fi
if [ "$timed_out" = 1 ]; then
    echo "--- guest console (timed out) ---" >&2
    tail -n 60 "$console" >&2
    exit 1
fi
tr -d '\r' <"$console" | grep -qa '^VMNIC-RESULT done=1' || {
    echo "--- guest console (no done line) ---" >&2
    tail -n 60 "$console" >&2
    exit 1
}
