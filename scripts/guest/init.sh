#!/bin/busybox sh
# /init of the vm-nic guest initramfs. Loads the NIC drivers, brings eth0 up, asks for a
# DHCP lease, pings the gateway and (optionally) runs ethtool's tests, printing one
# `VMNIC-RESULT key=value` line per fact on the console, then powers off.
# Kernel command-line knobs: vmnic.ping=N (pings, default 5), vmnic.ethtool=1 (run
# ethtool -i/-k/-e/-d/-t offline), vmnic.target=IP (default 10.0.2.2).
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null

result() { echo "VMNIC-RESULT $*"; }
# Guest uptime in seconds, for the stage timings (t_*=) in the result lines.
uptime_s() { cut -d' ' -f1 /proc/uptime; }
finish() {
    if [ -e /sys/module/isa_irqpoll ]; then
        result "isa_irqs_delivered=$(cat /sys/module/isa_irqpoll/parameters/delivered)"
    fi
    result done=1
    sync
    poweroff -f
    sleep 5
}

ping_count=5
run_ethtool=0
target=10.0.2.2
wget_url=""
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        vmnic.ping=*) ping_count="${arg#vmnic.ping=}" ;;
        vmnic.ethtool=*) run_ethtool="${arg#vmnic.ethtool=}" ;;
        vmnic.target=*) target="${arg#vmnic.target=}" ;;
        vmnic.wget=*) wget_url="${arg#vmnic.wget=}" ;;
    esac
done
result boot=ok kernel=$(uname -r)

# Every NIC driver the harness covers, in dependency order: the one whose PCI ID table
# (and revision check: 8139too refuses revision >= 0x20, 8139cp below it) matches binds.
for m in mii 8390 ne2k-pci 8139too 8139cp e1000; do
    if insmod "/lib/modules/$m.ko" 2>/tmp/insmod.err; then
        result "insmod_$m=ok"
    else
        result "insmod_$m=fail"
        sed 's/^/VMNIC-LOG /' /tmp/insmod.err
    fi
done

# vm-nic serves an ISA card (ne2k_isa) behind a PCI carrier function (1b36:00f0) whose
# BAR 0 is the card's 32 ports: Linux's ISA driver is loaded at that address and the
# function's IRQ, as an ISA card's jumpers would be given to it. isa-irqpoll then stands
# in for the interrupt wire (irqpoll skips the exclusive line an ISA driver takes).
for dev in /sys/bus/pci/devices/*; do
    [ "$(cat "$dev/vendor"):$(cat "$dev/device")" = 0x1b36:0x00f0 ] || continue
    io=$(head -n1 "$dev/resource" | cut -d' ' -f1)
    io=$(printf '0x%x' "$io")
    irq=$(cat "$dev/irq")
    result "isa_carrier=${dev##*/} isa_io=$io isa_irq=$irq"
    for m in 8390p ne isa-irqpoll; do
        case "$m" in
            ne) args="io=$io irq=$irq" ;;
            *) args="" ;;
        esac
        # shellcheck disable=SC2086
        if insmod "/lib/modules/$m.ko" $args 2>/tmp/insmod.err; then
            result "insmod_$m=ok"
        else
            result "insmod_$m=fail"
            sed 's/^/VMNIC-LOG /' /tmp/insmod.err
        fi
    done
done

i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 50 ]; do
    sleep 0.1
    i=$((i + 1))
done
if [ ! -e /sys/class/net/eth0 ]; then
    result driver=none
    dmesg | tail -n 40 | sed 's/^/VMNIC-LOG /'
    finish
fi
# Exactly one NIC is expected: a second one (e.g. QEMU's default NIC) would make eth0 ambiguous.
result "nics=$(ls /sys/class/net | grep -vc '^lo$')"
driver=$(basename "$(readlink /sys/class/net/eth0/device/driver)")
result "driver=$driver t_driver=$(uptime_s)"
result "mac=$(cat /sys/class/net/eth0/address)"
if [ -e /sys/class/net/eth0/device/vendor ]; then
    result "pci_id=$(cat /sys/class/net/eth0/device/vendor):$(cat /sys/class/net/eth0/device/device) revision=$(cat /sys/class/net/eth0/device/revision)"
else
    result "pci_id=none device=$(basename "$(readlink /sys/class/net/eth0/device)")"
fi

ip link set lo up
if [ "$run_ethtool" = 1 ]; then
    # Receive checksum offload: Linux's e1000 offers it but leaves it off by default (it
    # is only in hw_features); switching it on makes the driver trust the checksum
    # status the device writes, which the traffic below then exercises.
    if ethtool -K eth0 rx on >/tmp/e.log 2>&1; then result rx_csum_enable=ok; else result rx_csum_enable=fail; fi
    # TCP segmentation offload where the driver offers it (8139cp leaves it off).
    if ethtool -K eth0 tso on >/tmp/e.log 2>&1; then result tso_enable=ok; else result tso_enable=fail; fi
fi
if ip link set eth0 up; then result link_up=ok; else result link_up=fail; fi
# Wait (bounded, 5 s) for carrier: the drivers report it from the PHY/link status.
i=0
while [ "$(cat /sys/class/net/eth0/carrier 2>/dev/null)" != 1 ] && [ $i -lt 50 ]; do
    sleep 0.1
    i=$((i + 1))
done
result "carrier=$(cat /sys/class/net/eth0/carrier 2>/dev/null)"

# udhcpc: 5 discovers, 2 s apart; the script writes the lease to /tmp/lease.
if udhcpc -i eth0 -n -q -f -t 5 -T 2 -s /udhcpc.script >/tmp/udhcpc.log 2>&1; then
    . /tmp/lease
    result "dhcp_ip=$ip t_dhcp=$(uptime_s)"
    result "dhcp_router=$router"
    result "dhcp_dns=$dns"
    result "dhcp_lease=$lease"
    result "dhcp_mask=$subnet"
else
    result dhcp_ip=none
    sed 's/^/VMNIC-LOG /' /tmp/udhcpc.log
fi

ping -c "$ping_count" -W 2 "$target" >/tmp/ping.log 2>&1
sed 's/^/VMNIC-LOG /' /tmp/ping.log
summary=$(grep 'packets transmitted' /tmp/ping.log)
tx=$(echo "$summary" | sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p')
rx=$(echo "$summary" | sed -n 's/.* \([0-9]*\) packets received.*/\1/p')
loss=$(echo "$summary" | sed -n 's/.* \([0-9]*\)% packet loss.*/\1/p')
result "ping_target=$target ping_tx=${tx:-0} ping_rx=${rx:-0} ping_loss=${loss:-100} t_ping=$(uptime_s)"

# Full-size frames (1442 bytes on the wire): several NE2000 ring pages, a whole e1000
# receive buffer's worth of descriptors' data.
ping -c 3 -s 1400 -W 2 "$target" >/tmp/ping.log 2>&1
summary=$(grep 'packets transmitted' /tmp/ping.log)
rx=$(echo "$summary" | sed -n 's/.* \([0-9]*\) packets received.*/\1/p')
result "big_ping_rx=${rx:-0}"

if [ -n "$wget_url" ]; then
    # Bulk TCP through the user network's NAT: fills the receive ring again and again.
    # Bounded by timeout(1): busybox 1.35's own wget -T crashes in this static build.
    # The bound is in guest seconds, which under `-icount sleep=off` race ahead of host
    # time whenever the guest idles waiting for the host-side NIC process (8 MiB took 62
    # guest seconds in 11 host seconds on one CI machine): keep it far above any real
    # transfer and let the host-side limit (run.sh --timeout) be the one that bites.
    if timeout 900 wget -q -O /tmp/blob "$wget_url" >/tmp/wget.log 2>&1; then
        result "wget_bytes=$(wc -c </tmp/blob) wget_md5=$(md5sum /tmp/blob | cut -d' ' -f1) t_wget=$(uptime_s)"
    else
        result "wget_bytes=0 t_wget=$(uptime_s)"
        sed 's/^/VMNIC-LOG /' /tmp/wget.log
    fi
    rm -f /tmp/blob
fi

if [ "$run_ethtool" = 1 ]; then
    if ethtool -i eth0 >/tmp/e.log 2>&1; then
        result "ethtool_driver=$(sed -n 's/^driver: //p' /tmp/e.log)"
    else
        result ethtool_driver=fail
    fi
    ethtool -k eth0 >/tmp/e.log 2>&1
    result "rx_checksumming=$(sed -n 's/^rx-checksumming: \([a-z]*\).*/\1/p' /tmp/e.log)"
    result "tso=$(sed -n 's/^tcp-segmentation-offload: \([a-z]*\).*/\1/p' /tmp/e.log)"
    # e1000 counts frames whose checksum the device verified; other drivers have no
    # such counter.
    if ethtool -S eth0 >/tmp/e.log 2>&1; then
        good=$(sed -n 's/^ *rx_csum_offload_good: \([0-9]*\)/\1/p' /tmp/e.log)
        bad=$(sed -n 's/^ *rx_csum_offload_errors: \([0-9]*\)/\1/p' /tmp/e.log)
        result "rx_csum_good=${good:-none} rx_csum_errors=${bad:-none}"
    fi
    for opt in k e d; do
        if ethtool -$opt eth0 >/tmp/e.log 2>&1; then
            result "ethtool_$opt=ok lines=$(wc -l </tmp/e.log)"
        else
            result "ethtool_$opt=fail"
            sed 's/^/VMNIC-LOG /' /tmp/e.log
        fi
        # The station address as the EEPROM dump shows it (its first six bytes).
        [ "$opt" = e ] && result "eeprom_mac=$(sed -n 's/^0x0000:[[:space:]]*//p' /tmp/e.log |
            awk '{print $1":"$2":"$3":"$4":"$5":"$6}')"
    done
    # The offline self-test resets the adapter; it runs last.
    ethtool -t eth0 offline >/tmp/t.log 2>&1
    sed 's/^/VMNIC-LOG /' /tmp/t.log
    verdict=$(sed -n 's/^The test result is \([A-Z]*\).*/\1/p' /tmp/t.log)
    result "ethtool_test=${verdict:-none} t_ethtool=$(uptime_s)"
    # Lines such as "Register test  (offline)	 0" -> ethtool_register=0.
    sed -n 's/^\([A-Za-z]*\) test *([a-z/]*)[[:space:]]*\([0-9]*\)$/\1 \2/p' /tmp/t.log |
        while read -r name value; do
            name=$(echo "$name" | tr 'A-Z' 'a-z')
            result "ethtool_$name=$value"
        done
fi

# Optional step files (scripts/guest/steps-*.sh), each enabled by vmnic.<name>=1.
for steps in /steps-*.sh; do
    [ -f "$steps" ] || continue
    name=${steps#/steps-}; name=${name%.sh}
    grep -q "vmnic.$name=1" /proc/cmdline && . "$steps"
done

dmesg | grep -iE 'eth0|e1000|8139|ne2k|8390' | tail -n 30 | sed 's/^/VMNIC-LOG /'
finish
