#!/usr/bin/env bash
# The main job: boot a real Linux guest whose only network card is vm-nic's e1000 model,
# served to stock QEMU by `vm-nic remote`, and show the guest's DHCP lease and pings
# through vm-nic's user-mode network.
#
#   scripts/demo.sh [MODEL[,prop=value]]    (default e1000; also e1000-82544gc,
#                                            e1000-82545em, ne2k_pci, ne2k_isa,
#                                            rtl8139[,revision=0x10])
#
# On a fresh Debian 12 machine with Rust installed it first installs QEMU, busybox, cpio
# and ethtool (when run as root), then fetches a Debian kernel into .cache/guest/.
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:-e1000}"

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    scripts/install-deps.sh
fi
for tool in qemu-system-x86_64 cpio perl apt-get cargo; do
    command -v "$tool" >/dev/null || {
        echo "demo.sh: $tool is missing; run scripts/install-deps.sh as root (and install Rust)" >&2
        exit 1
    }
done

echo "==> building vm-nic"
cargo build --quiet --bin vm-nic
echo "==> preparing the guest (Debian kernel, busybox, ethtool; cached in .cache/guest/)"
scripts/guest/build-initramfs.sh >/dev/null

ethtool=()
case "$model" in e1000*) ethtool=(--ethtool) ;; esac
echo "==> booting Linux under QEMU (TCG) with vm-nic's $model as its NIC:"
echo "    vm-nic remote --fd N -device $model,netdev=n0 -netdev user,id=n0"
echo "    qemu-system-x86_64 ... -device x-pci-proxy-dev,id=nic0,fd=N"
out="$(scripts/guest/run.sh --ping 5 "${ethtool[@]}" -- -device "$model,netdev=n0" -netdev user,id=n0)" || {
    echo "$out"
    echo "demo.sh: the guest run failed" >&2
    exit 1
}
value() { echo "$out" | sed -n "s/^VMNIC-RESULT .*\b$1=\([^ ]*\).*/\1/p" | tail -n1; }

echo
echo "guest kernel       $(value kernel)"
if [ "$(value pci_id)" = none ]; then
    echo "NIC                ISA card at $(value isa_io) IRQ $(value isa_irq) (carrier PCI function $(value isa_carrier)), MAC $(value mac)"
else
    echo "NIC                $(value pci_id) revision $(value revision), MAC $(value mac)"
fi
echo "driver bound       $(value driver)"
echo "DHCP lease         $(value dhcp_ip)/$(value dhcp_mask) router $(value dhcp_router) DNS $(value dhcp_dns) for $(value dhcp_lease) s"
echo "$out" | sed -n 's/^VMNIC-LOG \(.*\(bytes from\|packets transmitted\|round-trip\).*\)/ping               \1/p'
if [ -n "$(value ethtool_test)" ]; then
    echo "ethtool -t offline register $(value ethtool_register), eeprom $(value ethtool_eeprom), loopback $(value ethtool_loopback), link $(value ethtool_link) (0 = pass)"
fi
echo "guest run          $(value host_seconds) s, vm-nic remote $(value server) cleanly"
echo
if [ "$(value dhcp_ip)" = 10.0.2.15 ] && [ "$(value ping_loss)" = 0 ]; then
    echo "OK: Linux's $(value driver) driver on vm-nic's $model got a DHCP lease and pinged 10.0.2.2 with 0% loss."
else
    echo "FAILED: see the full result lines:" >&2
    echo "$out" >&2
    exit 1
fi
