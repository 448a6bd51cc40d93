# Issue 8's user-mode network steps, sourced by /init (init.sh) after DHCP and the gateway
# ping when the kernel command line has vmnic.usernet=1. Prints `VMNIC-RESULT key=value`
# lines through init.sh's `result`. The host side (tests/guest_usernet_*.rs) runs the
# servers on its 127.0.0.1 and checks every value.
# Knobs: vmnic.http=PORT (host HTTP server: GET /blob, POST /upload), vmnic.http6=PORT
# (host HTTP server on ::1, fetched through fec0::2: IPv6 TCP NAT), vmnic.fwdport=PORT
# (guest port hostfwd forwards to), vmnic.dnsname=NAME (a name the test's resolver
# serves), vmnic.tftpfile=NAME, vmnic.upmb=N (upload size, MiB), vmnic.restricted=1
# (restrict=on: the host connection must fail, the forward must still work),
# vmnic.bulktimeout=N (guest seconds each bulk transfer may take; 0 = no limit),
# vmnic.tcprmem=N (cap the TCP receive buffer at N bytes, 0 = the kernel's default).
http_port=0
http6_port=0
fwd_port=0
dns_name=""
tftp_file=""
up_mb=16
restricted=0
bulk_timeout=0
tcp_rmem=0
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        vmnic.http=*) http_port="${arg#vmnic.http=}" ;;
        vmnic.http6=*) http6_port="${arg#vmnic.http6=}" ;;
        vmnic.fwdport=*) fwd_port="${arg#vmnic.fwdport=}" ;;
        vmnic.dnsname=*) dns_name="${arg#vmnic.dnsname=}" ;;
        vmnic.tftpfile=*) tftp_file="${arg#vmnic.tftpfile=}" ;;
        vmnic.upmb=*) up_mb="${arg#vmnic.upmb=}" ;;
        vmnic.restricted=*) restricted="${arg#vmnic.restricted=}" ;;
        vmnic.bulktimeout=*) bulk_timeout="${arg#vmnic.bulktimeout=}" ;;
        vmnic.tcprmem=*) tcp_rmem="${arg#vmnic.tcprmem=}" ;;
    esac
done

# A small receive buffer bounds the window the guest advertises (IPv4 and IPv6), so a
# sender that sends the whole window at once cannot overrun a slow NIC's receive ring.
if [ "$tcp_rmem" != 0 ]; then
    echo "4096 $tcp_rmem $tcp_rmem" >/proc/sys/net/ipv4/tcp_rmem
    result "tcp_rmem=$(tr -s ' \t' ',,' </proc/sys/net/ipv4/tcp_rmem)"
fi

# udhcpc.script's `ip addr flush` also removed eth0's IPv6 link-local address, without
# which there is no router solicitation: cycle IPv6 on eth0 to get it back (IPv4 stays).
# Done first so the router advertisement arrives while the other steps run.
echo 1 >/proc/sys/net/ipv6/conf/eth0/disable_ipv6
echo 0 >/proc/sys/net/ipv6/conf/eth0/disable_ipv6

# Guest-side bounds below are generous on purpose: under QEMU's -icount sleep=off guest
# seconds race ahead of host time whenever the guest waits for the host (a 1 s host-side
# retransmission timer can be a minute of guest time); the host-side limit is the real one.

# hostfwd: a one-shot server the host reaches through hostfwd; it sends a greeting and
# records what the host sends. Started first: the host keeps trying until it answers.
if [ "$fwd_port" != 0 ]; then
    echo "guest-greeting-$(cat /sys/class/net/eth0/address)" >/tmp/greet
    (timeout 900 nc -l -p "$fwd_port" </tmp/greet >/tmp/fromhost 2>/tmp/fwd.err; touch /tmp/fwd.done) &
fi

ping_rx() { # ping_rx ARGS...: packets received
    ping "$@" >/tmp/p.log 2>&1
    sed -n 's/.* \([0-9]*\) packets received.*/\1/p' /tmp/p.log
}
result "ping_dns_rx=$(ping_rx -c 3 -W 2 10.0.2.3)"

if [ -n "$dns_name" ]; then
    # Up to 5 tries: under QEMU's -icount sleep=off an idle guest's clock jumps ahead, so
    # nslookup's timeout can pass before the host resolver's answer is back in real time.
    answer=""
    tries=0
    while [ -z "$answer" ] && [ $tries -lt 5 ]; do
        tries=$((tries + 1))
        nslookup "$dns_name" 10.0.2.3 >/tmp/ns.log 2>&1
        # The answer follows the "Name:" line (the server's own address comes before it).
        answer=$(sed -n '/^Name:/,$ s/^Address:[[:space:]]*\([0-9.]*\).*/\1/p' /tmp/ns.log | head -n1)
    done
    sed 's/^/VMNIC-LOG /' /tmp/ns.log
    result "dns_answer=${answer:-none} dns_tries=$tries"
fi

if [ -n "$tftp_file" ]; then
    if tftp -g -r "$tftp_file" -l /tmp/tftp.bin 10.0.2.2 2>/tmp/t.err; then
        result "tftp_sha=$(sha256sum /tmp/tftp.bin | cut -d' ' -f1)"
    else
        result tftp_sha=fail
        sed 's/^/VMNIC-LOG /' /tmp/t.err
    fi
    rm -f /tmp/tftp.bin
fi

# IPv6: an address from the router advertisement (fec0::/64 by default), then the virtual
# host answers echo requests.
i=0
while ! ip -6 addr show dev eth0 | grep -q 'inet6 fec0' && [ $i -lt 150 ]; do
    sleep 0.1
    i=$((i + 1))
done
addr6=$(ip -6 addr show dev eth0 | sed -n 's/.*inet6 \(fec0[0-9a-f:]*\)\/.*/\1/p' | head -n1)
result "ipv6_addr=${addr6:-none}"
[ -n "$addr6" ] || { ip -6 addr show dev eth0; ip -6 route; cat /proc/net/igmp6; } 2>&1 | sed 's/^/VMNIC-LOG /'
result "ping6_rx=$(ping_rx -6 -c 3 -W 2 fec0::2)"
if [ "$http6_port" != 0 ]; then
    # TCP over IPv6: the virtual host fec0::2 is the host's ::1.
    sha6=$(timeout 900 wget -q -O - "http://[fec0::2]:$http6_port/blob" 2>/tmp/w6.err | sha256sum | cut -d' ' -f1)
    result "http6_sha=$sha6"
    sed 's/^/VMNIC-LOG /' /tmp/w6.err
fi

if [ "$fwd_port" != 0 ]; then
    i=0
    while [ ! -f /tmp/fwd.done ] && [ $i -lt 9000 ]; do sleep 0.1; i=$((i + 1)); done
    result "hostfwd_rx=$(cat /tmp/fromhost 2>/dev/null | tr -d ' \n')"
fi

# The HTTP steps come last: when a transfer wedges a NIC's receive path, the steps above
# have already reported.
if [ "$http_port" != 0 ] && [ "$restricted" = 1 ]; then
    if timeout 15 wget -q -O /dev/null "http://10.0.2.2:$http_port/blob" 2>/tmp/w.err; then
        result restricted_http=open
    else
        result restricted_http=blocked
    fi
elif [ "$http_port" != 0 ]; then
    bulk=""
    [ "$bulk_timeout" != 0 ] && bulk="timeout $bulk_timeout"
    t0=$(date +%s)
    sha=$($bulk wget -q -O - "http://10.0.2.2:$http_port/blob" | sha256sum | cut -d' ' -f1)
    t1=$(date +%s)
    result "download_sha=$sha download_seconds=$((t1 - t0))"

    # Text (base64): busybox wget --post-file sends strlen() of the file, so no NULs.
    head -c $((up_mb * 786432)) /dev/urandom | base64 >/tmp/up
    upsha=$(sha256sum /tmp/up | cut -d' ' -f1)
    result "upload_bytes=$(wc -c </tmp/up)"
    t0=$(date +%s)
    $bulk wget -q -O /tmp/upreply --post-file=/tmp/up "http://10.0.2.2:$http_port/upload" 2>/tmp/w.err &
    wpid=$!
    sleep 1
    # The offloads in force while the guest transmits the bulk upload.
    tso=$(ethtool -k eth0 2>/dev/null | sed -n 's/^tcp-segmentation-offload: \([a-z]*\).*/\1/p')
    txcsum=$(ethtool -k eth0 2>/dev/null | sed -n 's/^tx-checksumming: \([a-z]*\).*/\1/p')
    result "tso=${tso:-unknown} tx_csum=${txcsum:-unknown}"
    wait $wpid
    t1=$(date +%s)
    result "upload_sha=$upsha upload_seconds=$((t1 - t0)) upload_reply=$(cat /tmp/upreply 2>/dev/null | tr -d ' \n')"
    rm -f /tmp/up
fi
