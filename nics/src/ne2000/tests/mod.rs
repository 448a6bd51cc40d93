//! Unit tests: the model driven only through `NicDevice` as a guest driver would, with
//! expected values from the DP8390D and RTL8029AS datasheets.

use std::sync::Arc;

use vm_memory::{GuestAddress, GuestMemoryMmap};
use vm_nic_backends::memory::{RecordingBackend, RecordingHandle};
use vm_nic_backends::MacAddr;

use super::{Ne2000, Ne2000Bus};
use crate::device::{NicConfig, NicDevice, RxOutcome};
use crate::irq::IrqRecorder;
use crate::ManualClock;

#[path = "../../../tests/support/ne2000_driver.rs"]
mod driver;

mod dma;
mod registers;
mod rx;
mod security;
mod tx;

use driver::*;

type Mem = GuestMemoryMmap<()>;

const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const PEER: [u8; 6] = [0x52, 0x54, 0x00, 0xab, 0xcd, 0xef];

/// A device, its interrupt line and its network, as a test bench.
struct Bench {
    drv: Driver<Ne2000<Mem>, Mem>,
    irq: IrqRecorder,
    net: RecordingHandle,
}

fn config() -> (NicConfig<Mem>, IrqRecorder, RecordingHandle) {
    let (backend, net) = RecordingBackend::new();
    let irq = IrqRecorder::new();
    let memory = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x1000)]).unwrap();
    let cfg = NicConfig {
        mac: MacAddr(MAC),
        backend: Box::new(backend),
        irq: Box::new(irq.clone()),
        clock: Arc::new(ManualClock::new()),
        memory,
    };
    (cfg, irq, net)
}

fn bench(bus: Ne2000Bus) -> Bench {
    let (cfg, irq, net) = config();
    Bench {
        drv: Driver::new(Ne2000::new(bus, cfg)),
        irq,
        net,
    }
}

fn pci() -> Bench {
    bench(Ne2000Bus::Pci)
}

fn isa() -> Bench {
    bench(Ne2000Bus::Isa {
        iobase: 0x300,
        irq: 9,
    })
}

/// A PCI bench initialised and started as Linux's ne2k-pci leaves it after `ifup`.
fn running() -> Bench {
    let mut b = pci();
    assert!(b.drv.reset_8390());
    b.drv.init(MAC, true);
    b
}

/// An Ethernet frame to `dst` from PEER with `len` bytes in total.
fn frame(dst: [u8; 6], len: usize, seed: u8) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&PEER);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend((0..len.saturating_sub(14)).map(|i| (i as u8).wrapping_mul(7) ^ seed));
    f.truncate(len);
    f
}

impl Bench {
    fn dev(&mut self) -> &mut Ne2000<Mem> {
        &mut self.drv.dev
    }

    fn rx(&mut self, f: &[u8]) -> RxOutcome {
        self.drv.dev.receive(f)
    }

    /// The interrupt rule every test may check: line level == (ISR & IMR) != 0.
    fn assert_irq_rule(&self) {
        let st = self.drv.dev.state();
        let want = st.isr.bits() & st.imr.bits() & 0x7f != 0;
        assert_eq!(
            self.irq.level(),
            want,
            "ISR {:#04x} IMR {:#04x}",
            st.isr.bits(),
            st.imr.bits()
        );
    }
}

#[test]
fn pci_identity_and_bar() {
    let mut b = pci();
    let d = b.dev();
    assert_eq!(NicDevice::model(d), "ne2k_pci");
    assert_eq!(d.config_read(0x00, 4), 0x8029_10ec);
    assert_eq!(
        d.config_read(0x08, 4) >> 8,
        0x02_00_00,
        "class: Ethernet controller"
    );
    assert_eq!(d.config_read(0x3d, 1), 1, "INTA");
    d.config_write(0x10, 4, 0xffff_ffff);
    assert_eq!(d.config_read(0x10, 4), 0xffff_ffe1, "one 32-byte I/O BAR");
    assert_eq!(d.config_read(0x14, 4), 0, "no second BAR");
    assert!(d.isa().is_none());
    assert_eq!(d.mac(), MacAddr(MAC));
    assert_eq!(d.bar_read(1, 0, 4), u32::MAX, "BAR1 does not exist");
}

#[test]
fn isa_identity() {
    let mut b = isa();
    let d = b.dev();
    assert_eq!(NicDevice::model(d), "ne2k_isa");
    assert!(NicDevice::pci(d).is_none());
    let r = d.isa().unwrap();
    assert_eq!((r.iobase, r.ports, r.irq), (0x300, 32, 9));
    assert_eq!(d.config_read(0, 4), u32::MAX);
    assert_eq!(d.config_read(0, 2), 0xffff);
    assert_eq!(d.config_read(0, 1), 0xff);
    d.config_write(0x04, 2, 0x7);
}

#[test]
fn create_validates_properties() {
    use crate::models::{create, ModelError};
    let (cfg, _, _) = config();
    let props = [
        ("iobase".to_string(), "0x280".to_string()),
        ("irq".to_string(), "5".to_string()),
    ];
    let d = create("ne2k_isa", &props, cfg).unwrap();
    let r = d.isa().unwrap();
    assert_eq!((r.iobase, r.irq), (0x280, 5));
    let (cfg, _, _) = config();
    let d = create("ne2k_isa", &[], cfg).unwrap();
    assert_eq!(d.isa().unwrap().iobase, 0x300);
    assert_eq!(d.isa().unwrap().irq, 9);
    let (cfg, _, _) = config();
    match create("ne2k_isa", &[("bogus".into(), "1".into())], cfg) {
        Err(ModelError::UnknownProperty { valid, .. }) => assert_eq!(valid, vec!["iobase", "irq"]),
        other => panic!("{:?}", other.map(|d| d.model())),
    }
    let (cfg, _, _) = config();
    assert!(matches!(
        create("ne2k_isa", &[("irq".into(), "16".into())], cfg),
        Err(ModelError::BadValue { .. })
    ));
    let (cfg, _, _) = config();
    assert!(matches!(
        create("ne2k_pci", &[("irq".into(), "3".into())], cfg),
        Err(ModelError::UnknownProperty { .. })
    ));
    let (cfg, _, _) = config();
    assert_eq!(create("ne2k_pci", &[], cfg).unwrap().model(), "ne2k_pci");
}

#[test]
fn linux_probe_sequence() {
    // ne2k_pci_init_one: reg0 != 0xff, the CNTR0 clear-on-read check, reset ack, PROM.
    let mut b = pci();
    let d = &mut b.drv;
    assert_ne!(d.inb(0), 0xff);
    d.outb(0, E8390_NODMA | E8390_PAGE1 | E8390_STOP);
    d.outb(0x0d, 0xff);
    d.outb(0, E8390_NODMA | E8390_PAGE0);
    d.inb(EN0_COUNTER0);
    assert_eq!(d.inb(EN0_COUNTER0), 0);
    assert!(d.reset_8390());
    d.outb(EN0_ISR, 0xff);
    let prom = d.read_prom();
    assert_eq!(&prom[..6], &MAC, "word-mode byte reads undouble the PROM");
    assert_eq!(
        &prom[14..16],
        &[0x57, 0x57],
        "NE2000 signature at bytes 14/15"
    );
    b.assert_irq_rule();
}

#[test]
fn isa_byte_mode_prom_is_doubled() {
    // ne.c's probe reads the PROM in byte mode and checks for doubled bytes.
    let mut b = isa();
    let d = &mut b.drv;
    d.outb(0, E8390_NODMA | E8390_PAGE0 | E8390_STOP);
    d.outb(EN0_DCFG, 0x48);
    d.outb(EN0_RCNTLO, 32);
    d.outb(EN0_RCNTHI, 0);
    d.outb(EN0_RSARLO, 0);
    d.outb(EN0_RSARHI, 0);
    d.outb(0, E8390_RREAD | E8390_START);
    let prom: Vec<u8> = (0..32).map(|_| d.inb(NE_DATAPORT)).collect();
    for i in 0..6 {
        assert_eq!([prom[2 * i], prom[2 * i + 1]], [MAC[i], MAC[i]]);
    }
    assert_eq!(&prom[0x1c..], &[0x57; 4]);
    assert!(prom[12..0x1c].iter().all(|&b| b == 0));
}
