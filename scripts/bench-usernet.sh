#!/usr/bin/env bash
# User-mode network benchmark: three stacks in one harness, one run, one machine.
# A network namespace whose tap is served by
#   (a) slirp4netns (libslirp)   (b) pasta (passt)   (c) vm-nic switch -netdev user
# measures, against servers on the host's 127.0.0.1 reached through the stack's gateway
# address: iperf3 guest->host, host->guest (-R) and 4 parallel streams (-P 4), MTU 1500;
# ping RTT to the gateway; TCP connections per second (connect + abortive close). Then the peak
# memory (VmHWM) of vm-nic switch holding 1,000 idle TCP flows.
#
#   sudo scripts/bench-usernet.sh [--seconds N] [--runs N] [--out FILE]
#
# Needs root (namespaces, taps). Installs slirp4netns, iperf3 and busybox with apt-get
# when missing. pasta is built from Debian 13 (trixie)'s passt source (2025-05 snapshot;
# Debian 12's 2023-03 pasta gives 0.0-0.2 Gbit/s and no ping on recent kernels): the
# source is fetched with apt-get from a private sources list (the system's apt
# configuration is not touched), built with make and cached in .cache/pasta-trixie
# ($PASTA_BIN uses another pasta). Builds vm-nic in release mode (or uses $VMNIC_BIN).
# Inside every namespace TCP uses cubic (the host's default, bbr, broke pasta; cubic is
# added to the host's net.ipv4.tcp_allowed_congestion_control for the run, which a
# namespace needs to pick it); the host's net.ipv4.ping_group_range is opened for the run
# (the stacks answer echo requests through ping sockets). Both are restored on exit. --runs N measures the three stacks N times
# in a row, one table per run. Prints Markdown tables (and appends them to FILE with
# --out). Every process it starts is ended by its PID and every namespace it creates is
# deleted on exit.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
secs=5
runs=1
out=""
args="$*"
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) secs="$2"; shift 2 ;;
        --runs) runs="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        *) echo "bench-usernet.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "bench-usernet.sh: needs root (namespaces and taps)" >&2; exit 2; }
case "$runs" in ''|*[!0-9]*|0) echo "bench-usernet.sh: --runs wants a count" >&2; exit 2 ;; esac
for p in slirp4netns:slirp4netns iperf3:iperf3 python3:python3 busybox:busybox make:make cc:gcc xz:xz-utils; do
    command -v "${p%%:*}" >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${p#*:}" >&2
done
bin="${VMNIC_BIN:-}"
if [ -z "$bin" ]; then
    (cd "$root" && cargo build --release --bin vm-nic >&2)
    bin="$root/target/release/vm-nic"
fi

# build_pasta: prints the path of a pasta built from trixie's passt source (cached).
build_pasta() {
    local dir="$root/.cache/pasta-trixie" apt orig ver src
    if [ -x "$dir/pasta" ]; then echo "$dir/pasta"; return; fi
    apt="$dir/apt"
    rm -rf "$dir"
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$dir/src"
    echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
        >"$apt/sources.list"
    local o=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache")
    apt-get "${o[@]}" -q update >&2
    # apt checks every file against the signed Sources index. Some mirrors miss the .dsc;
    # the upstream tarball is all the build needs.
    (cd "$dir/src" && apt-get "${o[@]}" -q source --download-only passt >&2) || true
    orig="$(ls "$dir/src"/passt_*.orig.tar.* 2>/dev/null | head -n1)"
    [ -n "$orig" ] || { echo "bench-usernet.sh: could not fetch trixie's passt source" >&2; return 1; }
    ver="${orig##*/passt_}"; ver="${ver%.orig.tar.*}"
    tar -xf "$orig" -C "$dir/src"
    src="$(find "$dir/src" -mindepth 1 -maxdepth 1 -type d -name 'passt*' | head -n1)"
    make -C "$src" -j"$(nproc)" VERSION="$ver" passt >&2
    # passt behaves as pasta when called by that name.
    cp "$src/passt" "$dir/pasta"
    echo "$ver" >"$dir/version"
    echo "$dir/pasta"
}
pasta_bin="${PASTA_BIN:-$(build_pasta)}"
pasta_ver="$(cat "$(dirname "$pasta_bin")/version" 2>/dev/null || "$pasta_bin" --version | head -n1)"
ulimit -n 8192

tag="vb$$"
work="$(mktemp -d)"
pids=()
nss=()
cleanup() {
    local p
    for p in "${pids[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    sleep 0.5
    for p in "${pids[@]}"; do
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    for n in "${nss[@]}"; do ip netns del "$n" 2>/dev/null || true; done
    [ -z "$ping_range" ] || sysctl -qw net.ipv4.ping_group_range="$ping_range"
    [ -z "$cc_allowed" ] || sysctl -qw net.ipv4.tcp_allowed_congestion_control="$cc_allowed"
    rm -rf "$work"
}
ping_range=""
cc_allowed=""
trap cleanup EXIT
# The stacks proxy echo requests through ping sockets, which this range allows.
ping_range="$(sysctl -n net.ipv4.ping_group_range | tr '\t' ' ')"
sysctl -qw net.ipv4.ping_group_range="0 2147483647"
# A namespace may only pick an algorithm the host allows.
cc_allowed="$(sysctl -n net.ipv4.tcp_allowed_congestion_control)"
case " $cc_allowed " in
    *" cubic "*) cc_allowed="" ;;
    *) sysctl -qw net.ipv4.tcp_allowed_congestion_control="$cc_allowed cubic" ;;
esac

# Host-side servers on 127.0.0.1: iperf3, and a TCP acceptor that closes each connection
# (for connections per second) or keeps it open (for the idle-flow memory figure).
iperf_port=$((20000 + $$ % 10000))
cps_port=$((iperf_port + 1))
hold_port=$((iperf_port + 2))
iperf3 -s -B 127.0.0.1 -p "$iperf_port" >"$work/iperf-server.log" 2>&1 &
pids+=($!)
# One process each: the acceptor must keep up with the connection rate (a stack holding a
# flow until the server closes it would otherwise measure this server's accept rate).
cat >"$work/server.py" <<'EOF'
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[2]))); s.listen(4096)
kept = []
while True:
    c, _ = s.accept()
    if sys.argv[1] == "hold": kept.append(c)
    else: c.close()
EOF
python3 "$work/server.py" close "$cps_port" &
pids+=($!)
python3 "$work/server.py" hold "$hold_port" &
pids+=($!)
cat >"$work/client.py" <<'EOF'
import socket, sys, time
mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "cps":  # connections per second; refused or failed ones counted apart
    # Each connection ends with a reset (SO_LINGER 0), not a FIN: a FIN close leaves the
    # client's port in TIME-WAIT whenever the client closes first, and at several
    # thousand connections a second the namespace runs out of ephemeral ports within
    # 2 s (the rate then falls to a few hundred), which measures the client's port pool
    # and who happens to close first, not the stack.
    import struct
    linger = struct.pack("ii", 1, 0)
    n, bad, t0 = 0, 0, time.time()
    while time.time() - t0 < float(sys.argv[4]):
        try:
            s = socket.create_connection((host, port), timeout=5)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger); s.close(); n += 1
        except OSError:
            bad += 1
    print("%.0f" % (n / (time.time() - t0)) + (" (%d refused)" % bad if bad else ""))
else:  # hold N connections open until stdin closes
    keep = [socket.create_connection((host, port), timeout=10) for _ in range(int(sys.argv[4]))]
    print(len(keep), flush=True)
    sys.stdin.read()
EOF
sleep 0.5

newns() {
    ip netns add "$1"
    nss+=("$1")
    ip -n "$1" link set lo up
    ip netns exec "$1" sysctl -qw net.ipv4.tcp_congestion_control=cubic
}

# measure NS GW NAME: one table row.
measure() {
    local ns="$1" gw="$2" name="$3" up down par rtt cps
    iperf() {
        ip netns exec "$ns" iperf3 -c "$gw" -p "$iperf_port" -t "$secs" -O 1 -J "$@" |
            python3 -c 'import json,sys; j=json.load(sys.stdin); print("%.2f" % (j["end"]["sum_received"]["bits_per_second"]/1e9))'
    }
    up=$(iperf) || up=fail
    down=$(iperf -R) || down=fail
    par=$(iperf -P 4) || par=fail
    # One warm-up echo (ARP/NDP resolution) before the 20 measured ones.
    ip netns exec "$ns" busybox ping -c 1 -W 2 "$gw" >/dev/null 2>&1 || true
    rtt=$(ip netns exec "$ns" busybox ping -c 20 -i 0.1 "$gw" 2>/dev/null |
        sed -n 's|.*min/avg/max = [0-9.]*/\([0-9.]*\)/.*|\1|p')
    cps=$(ip netns exec "$ns" python3 "$work/client.py" cps "$gw" "$cps_port" "$secs") || cps=fail
    echo "| $name | $up | $down | $par | ${rtt:-fail} | $cps |"
}

# stop PID NS: ends a stack's process and its namespace once it has been measured, so
# it does not compete with the next one.
stop() {
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 20); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
    ip netns del "$2" 2>/dev/null || true
}

# start_vmnic NS: vm-nic switch serving a tap moved into NS (static 10.0.2.15); sets
# vmnic_pid.
start_vmnic() {
    local ns="$1" tap="${1//-/}"
    "$bin" switch -netdev "tap,id=t0,ifname=$tap,script=no,downscript=no" -netdev user,id=u0 \
        >"$work/$ns.log" 2>&1 &
    vmnic_pid=$!
    pids+=($vmnic_pid)
    for _ in $(seq 50); do ip link show "$tap" >/dev/null 2>&1 && break; sleep 0.1; done
    ip link set "$tap" netns "$ns"
    ip -n "$ns" link set "$tap" up
    ip -n "$ns" addr add 10.0.2.15/24 dev "$tap"
    ip -n "$ns" route add default via 10.0.2.2
    sleep 0.5
}

# run_stacks N: one measurement of the three stacks, each in a fresh namespace; prints
# the run's table.
run_stacks() {
    local r="$1" rows=() gw_b
    # (a) slirp4netns: 10.0.2.100 in the namespace, gateway 10.0.2.2 = host loopback.
    newns "$tag-a$r"
    slirp4netns --configure --mtu=1500 --netns-type=path "/run/netns/$tag-a$r" tap0 >"$work/slirp$r.log" 2>&1 &
    pids+=($!)
    sleep 1.5
    rows+=("$(measure "$tag-a$r" 10.0.2.2 "slirp4netns $(slirp4netns --version | head -n1 | awk '{print $3}')")")
    stop "${pids[-1]}" "$tag-a$r"

    # (b) pasta: the host's addresses copied in; its gateway maps to the host's loopback.
    # As root it must keep root (--runas 0) to enter the namespace.
    newns "$tag-b$r"
    gw_b="$(ip route show default | awk '{print $3; exit}')"
    "$pasta_bin" --config-net -q -m 1500 --runas 0 -P "$work/pasta$r.pid" --netns "/run/netns/$tag-b$r" \
        >"$work/pasta$r.log" 2>&1
    pids+=("$(cat "$work/pasta$r.pid")")
    sleep 1
    rows+=("$(measure "$tag-b$r" "$gw_b" "pasta $pasta_ver")")
    stop "${pids[-1]}" "$tag-b$r"

    # (c) vm-nic switch.
    newns "$tag-c$r"
    start_vmnic "$tag-c$r"
    rows+=("$(measure "$tag-c$r" 10.0.2.2 "vm-nic switch $("$bin" --version | awk '{print $2}')")")
    stop "$vmnic_pid" "$tag-c$r"

    echo "Command: \`${VMNIC_BIN:+VMNIC_BIN=$VMNIC_BIN }scripts/bench-usernet.sh $args\` as root (run $r of $runs) on $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)."
    echo
    echo "| stack | guest→host Gbit/s | host→guest Gbit/s | 4 streams Gbit/s | ping RTT ms | TCP conn/s |"
    echo "|---|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
    echo
}

# Not in a pipeline: run_stacks must add to pids and nss of this shell.
for r in $(seq "$runs"); do
    run_stacks "$r" >"$work/run$r.md"
    tee -a "${out:-/dev/null}" <"$work/run$r.md"
done

# Peak memory of a fresh vm-nic switch (VmHWM) holding 1,000 idle TCP flows.
newns "$tag-d"
start_vmnic "$tag-d"
status() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$vmnic_pid/status"; }
hwm0=$(status VmHWM)
mkfifo "$work/hold"
ip netns exec "$tag-d" python3 "$work/client.py" hold 10.0.2.2 "$hold_port" 1000 \
    <"$work/hold" >"$work/hold.out" &
pids+=($!)
exec 7>"$work/hold"
for _ in $(seq 150); do [ -s "$work/hold.out" ] && break; sleep 0.2; done
flows=$(cat "$work/hold.out" 2>/dev/null || echo 0)
sleep 1
hwm1=$(status VmHWM)
rss1=$(status VmRSS)
exec 7>&-

{
    echo "vm-nic switch memory (a fresh process): VmHWM $hwm0 KiB idle, $hwm1 KiB with $flows idle TCP flows open (VmRSS $rss1 KiB)."
} | tee -a "${out:-/dev/null}"
