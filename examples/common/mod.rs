//! The VMM side shared by the embedding examples: guest RAM, a PCI host that routes
//! config-space, MMIO and port I/O accesses to the NIC by address, an eventfd-backed
//! interrupt line, and a tiny "guest" e1000 driver that the examples run against it.

#![allow(dead_code)]

pub mod guest;

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rustix::event::{eventfd, EventfdFlags};
use vm_memory::{GuestAddress, GuestMemoryMmap};
use vm_nic::devices::pci::{command, reg};
use vm_nic::devices::{IrqLine, NicDevice};
use vm_nic::network::Network;

/// The network options given (QEMU syntax), or user-net with an e1000 when none are.
pub fn net_config(
    args: &[String],
) -> Result<vm_nic::options::NetConfig, vm_nic::options::OptionsError> {
    if args.is_empty() {
        return vm_nic::options::NetConfig::parse_line(
            "-netdev user,id=n0 -device e1000,netdev=n0",
        );
    }
    vm_nic::options::NetConfig::parse_args(args)
}

/// The guest memory type: plain mmap'd RAM from vm-memory.
pub type Mem = GuestMemoryMmap;

/// 4 MiB of guest RAM at guest physical address 0.
pub fn guest_ram() -> Mem {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 4 << 20)]).expect("mapping guest RAM")
}

/// A level-triggered line delivered as an eventfd, the way KVM's irqfd works: each
/// assertion signals the eventfd; the VMM's interrupt controller keeps the level so that
/// after the guest's handler runs ("resample") it can tell whether the line is still up.
#[derive(Clone)]
pub struct EventFdIrq {
    pub fd: Arc<OwnedFd>,
    pub level: Arc<AtomicBool>,
}

impl EventFdIrq {
    pub fn new() -> std::io::Result<Self> {
        let fd = eventfd(0, EventfdFlags::NONBLOCK | EventfdFlags::CLOEXEC)?;
        Ok(EventFdIrq {
            fd: Arc::new(fd),
            level: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Consumes the pending signal (after poll says the fd is readable).
    pub fn acknowledge(&self) {
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(&*self.fd, &mut buf);
    }

    /// The level the device drives now.
    pub fn asserted(&self) -> bool {
        self.level.load(Ordering::SeqCst)
    }
}

impl IrqLine for EventFdIrq {
    fn set_level(&self, asserted: bool) {
        self.level.store(asserted, Ordering::SeqCst);
        if asserted {
            // A full counter (never in practice) only means a signal is already pending.
            let _ = rustix::io::write(&*self.fd, &1u64.to_ne_bytes());
        }
    }
}

/// The VMM's PCI host bridge with one slot: routes accesses to NIC `nic` of the
/// network. Config space is reached by the slot; memory and I/O accesses by address,
/// through whatever BARs the guest programmed (`PciConfig::decode`), so a BAR the guest
/// moves is followed at once.
pub struct PciHost {
    pub nic: usize,
}

impl PciHost {
    fn dev<'a>(&self, net: &'a mut Network<Mem>) -> &'a mut (dyn NicDevice<Mem> + 'static) {
        net.nic_mut(self.nic).expect("the slot's NIC exists")
    }

    pub fn config_read(&self, net: &mut Network<Mem>, offset: u16, size: u8) -> u32 {
        self.dev(net).config_read(offset, size)
    }

    pub fn config_write(&self, net: &mut Network<Mem>, offset: u16, size: u8, value: u32) {
        self.dev(net).config_write(offset, size, value)
    }

    /// A guest load from MMIO address `addr`: `None` if no BAR of this device decodes
    /// it (another device's, or nobody's: the VMM's bus decides).
    pub fn mmio_read(&self, net: &mut Network<Mem>, addr: u64, size: u8) -> Option<u32> {
        let dev = self.dev(net);
        let (bar, off) = dev.pci()?.decode(addr, false)?;
        Some(dev.bar_read(bar, off, size))
    }

    /// A guest store to MMIO address `addr`; false if no BAR decodes it.
    pub fn mmio_write(&self, net: &mut Network<Mem>, addr: u64, size: u8, value: u32) -> bool {
        let dev = self.dev(net);
        match dev.pci().and_then(|p| p.decode(addr, false)) {
            Some((bar, off)) => {
                dev.bar_write(bar, off, size, value);
                true
            }
            None => false,
        }
    }

    /// A guest `in` from port `port`.
    pub fn pio_read(&self, net: &mut Network<Mem>, port: u16, size: u8) -> Option<u32> {
        let dev = self.dev(net);
        let (bar, off) = dev.pci()?.decode(port as u64, true)?;
        Some(dev.bar_read(bar, off, size))
    }

    /// A guest `out` to port `port`.
    pub fn pio_write(&self, net: &mut Network<Mem>, port: u16, size: u8, value: u32) -> bool {
        let dev = self.dev(net);
        match dev.pci().and_then(|p| p.decode(port as u64, true)) {
            Some((bar, off)) => {
                dev.bar_write(bar, off, size, value);
                true
            }
            None => false,
        }
    }

    /// What the firmware does: size BAR0 (memory) and BAR1 (I/O), place them, enable
    /// decoding and bus mastering. Returns (BAR0 address, BAR1 port).
    pub fn firmware_setup(&self, net: &mut Network<Mem>, mmio: u32, io: u32) -> (u64, u16) {
        for (bar, addr) in [(0u16, mmio), (1, io)] {
            let off = reg::BAR0 + 4 * bar;
            self.config_write(net, off, 4, u32::MAX);
            let mask = self.config_read(net, off, 4);
            let type_bits = if mask & 1 == 1 { 0x3 } else { 0xf };
            let size = !(mask & !type_bits) as u64 + 1;
            println!("vmm: BAR{bar} probe {mask:#010x}: {size:#x} bytes, placed at {addr:#x}");
            self.config_write(net, off, 4, addr);
        }
        let cmd = command::IO | command::MEMORY | command::BUS_MASTER;
        self.config_write(net, reg::COMMAND, 2, cmd as u32);
        (mmio as u64, io as u16)
    }
}
