//! Register offsets and bit definitions of the RTL8139C(L) and RTL8139C+ (Realtek
//! datasheets, section "Register Descriptions"). Offsets are the same in the I/O BAR and
//! the memory BAR.

/// ID registers IDR0-5 (station address).
pub const IDR0: u8 = 0x00;
/// Multicast hash registers MAR0-7.
pub const MAR0: u8 = 0x08;
/// Transmit status of descriptor 0 (TSD0); TSDn at `TSD0 + 4 * n`. In C+ mode, 0x10-0x17
/// is DTCCR.
pub const TSD0: u8 = 0x10;
/// Transmit start address of descriptor 0 (TSAD0). In C+ mode, 0x20-0x27 is TNPDS and
/// 0x28-0x2F THPDS.
pub const TSAD0: u8 = 0x20;
/// Receive buffer start address (RBSTART).
pub const RBSTART: u8 = 0x30;
/// Early receive byte count (ERBCR, 16 bits).
pub const ERBCR: u8 = 0x34;
/// Early receive status (ERSR).
pub const ERSR: u8 = 0x36;
/// Command register (CR).
pub const CR: u8 = 0x37;
/// Current address of packet read (CAPR, 16 bits).
pub const CAPR: u8 = 0x38;
/// Current buffer address (CBR, 16 bits).
pub const CBR: u8 = 0x3A;
/// Interrupt mask (IMR, 16 bits).
pub const IMR: u8 = 0x3C;
/// Interrupt status (ISR, 16 bits).
pub const ISR: u8 = 0x3E;
/// Transmit configuration (TCR, 32 bits).
pub const TCR: u8 = 0x40;
/// Receive configuration (RCR, 32 bits).
pub const RCR: u8 = 0x44;
/// Timer count (TCTR, 32 bits).
pub const TCTR: u8 = 0x48;
/// Missed packet counter (MPC, 24 bits valid).
pub const MPC: u8 = 0x4C;
/// 93C46 command register (9346CR).
pub const CR9346: u8 = 0x50;
/// Configuration register 0.
pub const CONFIG0: u8 = 0x51;
/// Configuration register 1.
pub const CONFIG1: u8 = 0x52;
/// Timer interrupt (TimerInt, 32 bits).
pub const TIMER_INT: u8 = 0x54;
/// Media status (MSR).
pub const MSR: u8 = 0x58;
/// Configuration register 3.
pub const CONFIG3: u8 = 0x59;
/// Configuration register 4.
pub const CONFIG4: u8 = 0x5A;
/// Halt clock register (HltClk): `'R'` runs, `'H'` halts.
pub const HLTCLK: u8 = 0x5B;
/// Multiple interrupt select (MULINT, 16 bits).
pub const MULINT: u8 = 0x5C;
/// PCI revision ID (RERID).
pub const RERID: u8 = 0x5E;
/// Transmit status of all descriptors (TSAD, 16 bits).
pub const TSAD: u8 = 0x60;
/// Basic mode control (BMCR).
pub const BMCR: u8 = 0x62;
/// Basic mode status (BMSR).
pub const BMSR: u8 = 0x64;
/// Auto-negotiation advertisement (ANAR).
pub const ANAR: u8 = 0x66;
/// Auto-negotiation link partner ability (ANLPAR).
pub const ANLPAR: u8 = 0x68;
/// Auto-negotiation expansion (ANER).
pub const ANER: u8 = 0x6A;
/// Disconnect counter (DIS).
pub const DIS: u8 = 0x6C;
/// False carrier sense counter (FCSC).
pub const FCSC: u8 = 0x6E;
/// N-way test register (NWAYTR).
pub const NWAYTR: u8 = 0x70;
/// RX_ER counter (REC).
pub const REC: u8 = 0x72;
/// CS configuration register (CSCR).
pub const CSCR: u8 = 0x74;
/// PHY parameter 1 (32 bits).
pub const PHY1_PARM: u8 = 0x78;
/// Twister parameter (32 bits).
pub const TW_PARM: u8 = 0x7C;
/// PHY parameter 2.
pub const PHY2_PARM: u8 = 0x80;
/// First power-management CRC register (CRC0); wake-up frames and LSBCRC follow up to 0xD3.
pub const CRC0: u8 = 0x84;
/// Flash memory read/write (32 bits).
pub const FLASH: u8 = 0xD4;
/// Configuration register 5.
pub const CONFIG5: u8 = 0xD8;
/// C+ transmit priority polling (TPPoll).
pub const TPPOLL: u8 = 0xD9;
/// C+ command register (CpCmd, 16 bits).
pub const CPCMD: u8 = 0xE0;
/// C+ interrupt mitigation (16 bits).
pub const INTR_MITIGATE: u8 = 0xE2;
/// C+ receive descriptor start address (RDSAR, 64 bits).
pub const RDSAR: u8 = 0xE4;
/// C+ early transmit threshold (ETTHR).
pub const ETTHR: u8 = 0xEC;
/// CardBus function event register (FER); FEMR, FPSR and FFER follow.
pub const FER: u8 = 0xF0;

/// CR bits.
pub mod cr {
    /// Software reset (self-clearing).
    pub const RST: u8 = 1 << 4;
    /// Receiver enable.
    pub const RE: u8 = 1 << 3;
    /// Transmitter enable.
    pub const TE: u8 = 1 << 2;
    /// Receive buffer empty (read-only).
    pub const BUFE: u8 = 1 << 0;
}

/// ISR / IMR bits.
pub mod int {
    /// System error (PCI master abort).
    pub const SERR: u16 = 1 << 15;
    /// TCTR reached TimerInt.
    pub const PCS_TIMEOUT: u16 = 1 << 14;
    /// Cable length change.
    pub const LEN_CHG: u16 = 1 << 13;
    /// C+: software interrupt requested through TPPoll.FSWInt.
    pub const SW_INT: u16 = 1 << 8;
    /// C+: transmit descriptor unavailable.
    pub const TX_DESC_UNAVAIL: u16 = 1 << 7;
    /// Receive FIFO overflow.
    pub const FOVW: u16 = 1 << 6;
    /// Packet underrun / link change.
    pub const LINK_CHG: u16 = 1 << 5;
    /// Receive buffer overflow (C mode) / receive descriptor unavailable (C+).
    pub const RXOVW: u16 = 1 << 4;
    /// Transmit error.
    pub const TER: u16 = 1 << 3;
    /// Transmit OK.
    pub const TOK: u16 = 1 << 2;
    /// Receive error.
    pub const RER: u16 = 1 << 1;
    /// Receive OK.
    pub const ROK: u16 = 1 << 0;
    /// Bits that exist in C mode (RTL8139C).
    pub const VALID_C: u16 = 0xE07F;
    /// Bits that exist on the RTL8139C+.
    pub const VALID_CPLUS: u16 = 0xE1FF;
}

/// TSD bits (C mode).
pub mod tsd {
    /// Carrier sense lost.
    pub const CRS: u32 = 1 << 31;
    /// Transmit abort.
    pub const TABT: u32 = 1 << 30;
    /// Out of window collision.
    pub const OWC: u32 = 1 << 29;
    /// CD heart beat.
    pub const CDH: u32 = 1 << 28;
    /// Early TX threshold field (in 32-byte units, 0 = 8 bytes).
    pub const ERTXTH_MASK: u32 = 0x3F << 16;
    /// Transmit OK.
    pub const TOK: u32 = 1 << 15;
    /// Transmit FIFO underrun.
    pub const TUN: u32 = 1 << 14;
    /// DMA of this descriptor completed; the driver writes 0 to start a transmission.
    pub const OWN: u32 = 1 << 13;
    /// Descriptor size in bytes.
    pub const SIZE_MASK: u32 = 0x1FFF;
    /// Bits the driver writes.
    pub const WRITABLE: u32 = ERTXTH_MASK | SIZE_MASK | OWN;
    /// Largest frame a C-mode descriptor may carry (datasheet: 1792 bytes).
    pub const MAX_SIZE: usize = 1792;
}

/// TCR bits.
pub mod tcr {
    /// Hardware version bits (read-only): 30:26 and 23:22.
    pub const HWVERID_MASK: u32 = 0x7C80_0000 | (1 << 22);
    /// RTL8139C: HWVERID_A = 11101, HWVERID_B = 00 (Linux 8139too: "RTL-8139C").
    pub const HWVERID_8139C: u32 = 0x7400_0000;
    /// RTL8139C+: HWVERID_A = 11101, HWVERID_B = 10.
    pub const HWVERID_8139CPLUS: u32 = 0x7480_0000;
    /// Loopback test mode (both bits).
    pub const LBK: u32 = 3 << 17;
    /// Clear abort: retransmit the aborted descriptor (write-only).
    pub const CLRABT: u32 = 1 << 0;
    /// Writable bits: IFG 25:24, LBK 18:17, CRC 16, MXDMA 10:8, TXRR 7:4.
    pub const WRITABLE: u32 = 0x0307_07F0;
}

/// RCR bits.
pub mod rcr {
    /// Accept all packets with a physical destination address.
    pub const AAP: u32 = 1 << 0;
    /// Accept physical match packets.
    pub const APM: u32 = 1 << 1;
    /// Accept multicast packets (hash filtered through MAR).
    pub const AM: u32 = 1 << 2;
    /// Accept broadcast packets.
    pub const AB: u32 = 1 << 3;
    /// Accept runt packets.
    pub const AR: u32 = 1 << 4;
    /// Accept error packets.
    pub const AER: u32 = 1 << 5;
    /// Do not wrap packets at the end of the ring (WRAP).
    pub const WRAP: u32 = 1 << 7;
    /// Ring length select, bits 12:11.
    pub const RBLEN_SHIFT: u32 = 11;
    /// Writable bits (bit 6, 9356SEL, is read-only 0: a 93C46 is fitted).
    pub const WRITABLE: u32 = 0x0F03_FFBF;
}

/// Receive packet header status bits (C mode).
pub mod rxstat {
    /// Receive OK.
    pub const ROK: u16 = 1 << 0;
    /// Broadcast address received.
    pub const BAR: u16 = 1 << 13;
    /// Physical address matched.
    pub const PAM: u16 = 1 << 14;
    /// Multicast address received.
    pub const MAR: u16 = 1 << 15;
}

/// 9346CR bits.
pub mod cr9346 {
    /// Operating mode field (EEM1:EEM0).
    pub const EEM_MASK: u8 = 0xC0;
    /// Auto-load mode.
    pub const EEM_AUTOLOAD: u8 = 0x40;
    /// Programming mode: EECS/EESK/EEDI drive the 93C46 pins.
    pub const EEM_PROGRAM: u8 = 0x80;
    /// Config register write enable.
    pub const EEM_CONFIG_WRITE: u8 = 0xC0;
    /// Chip select.
    pub const EECS: u8 = 1 << 3;
    /// Serial clock.
    pub const EESK: u8 = 1 << 2;
    /// Data in (to the EEPROM).
    pub const EEDI: u8 = 1 << 1;
    /// Data out (from the EEPROM, read-only).
    pub const EEDO: u8 = 1 << 0;
}

/// C+ command register bits.
pub mod cpcmd {
    /// Receive VLAN de-tagging.
    pub const RX_VLAN: u16 = 1 << 6;
    /// Receive checksum offload.
    pub const RX_CHKSUM: u16 = 1 << 5;
    /// 64-bit PCI dual address cycle.
    pub const DAC: u16 = 1 << 4;
    /// PCI multiple read/write.
    pub const MULRW: u16 = 1 << 3;
    /// C+ receive enable.
    pub const RX_ON: u16 = 1 << 1;
    /// C+ transmit enable.
    pub const TX_ON: u16 = 1 << 0;
    /// Writable bits.
    pub const WRITABLE: u16 = 0x007B;
}

/// TPPoll bits.
pub mod tppoll {
    /// High-priority queue polling.
    pub const HPQ: u8 = 1 << 7;
    /// Normal-priority queue polling.
    pub const NPQ: u8 = 1 << 6;
    /// Forced software interrupt.
    pub const FSWINT: u8 = 1 << 0;
}

/// C+ descriptor bits (first dword, `opts1`) and second dword (`opts2`).
pub mod desc {
    /// Owned by the NIC.
    pub const OWN: u32 = 1 << 31;
    /// End of ring.
    pub const EOR: u32 = 1 << 30;
    /// First segment of a frame.
    pub const FS: u32 = 1 << 29;
    /// Last segment of a frame.
    pub const LS: u32 = 1 << 28;
    /// TX: large send (TSO).
    pub const LGSEN: u32 = 1 << 27;
    /// TX: MSS field position.
    pub const MSS_SHIFT: u32 = 16;
    /// TX: MSS field mask (11 bits, after shifting).
    pub const MSS_MASK: u32 = 0x7FF;
    /// TX status: error summary.
    pub const TX_ERR: u32 = 1 << 23;
    /// TX: compute IP checksum.
    pub const IPCS: u32 = 1 << 18;
    /// TX: compute UDP checksum.
    pub const UDPCS: u32 = 1 << 17;
    /// TX: compute TCP checksum.
    pub const TCPCS: u32 = 1 << 16;
    /// TX: frame/fragment length mask.
    pub const TX_LEN_MASK: u32 = 0xFFFF;
    /// TX opts2: insert VLAN tag.
    pub const TX_VLAN_TAG: u32 = 1 << 17;
    /// RX opts2: VLAN tag stripped and stored in the low 16 bits.
    pub const RX_VLAN_TAGGED: u32 = 1 << 16;
    /// RX status: multicast.
    pub const RX_MAR: u32 = 1 << 26;
    /// RX status: physical address matched.
    pub const RX_PAM: u32 = 1 << 25;
    /// RX status: broadcast.
    pub const RX_BAR: u32 = 1 << 24;
    /// RX status: protocol id shift (0 non-IP, 1 TCP, 2 UDP, 3 IP).
    pub const RX_PID_SHIFT: u32 = 16;
    /// RX status: IP checksum failed.
    pub const RX_IPF: u32 = 1 << 15;
    /// RX status: UDP checksum failed.
    pub const RX_UDPF: u32 = 1 << 14;
    /// RX status: TCP checksum failed.
    pub const RX_TCPF: u32 = 1 << 13;
    /// RX buffer size / frame length mask.
    pub const RX_LEN_MASK: u32 = 0x1FFF;
    /// Descriptors per ring: the chip's ring index is 6 bits.
    pub const RING_MAX: usize = 64;
    /// Size of one descriptor.
    pub const SIZE: u64 = 16;
}

/// MII register values.
pub mod mii {
    /// BMCR: reset (self-clearing).
    pub const BMCR_RESET: u16 = 1 << 15;
    /// BMCR: 100 Mbit/s.
    pub const BMCR_SPEED100: u16 = 1 << 13;
    /// BMCR: auto-negotiation enable.
    pub const BMCR_ANE: u16 = 1 << 12;
    /// BMCR: restart auto-negotiation (self-clearing).
    pub const BMCR_RESTART_AN: u16 = 1 << 9;
    /// BMCR: full duplex.
    pub const BMCR_DUPLEX: u16 = 1 << 8;
    /// BMCR bits protected by the 9346CR write lock.
    pub const BMCR_LOCKED: u16 = BMCR_SPEED100 | BMCR_ANE | BMCR_DUPLEX;
    /// BMCR after reset: 100 Mbit/s, auto-negotiation on, full duplex.
    pub const BMCR_DEFAULT: u16 = BMCR_SPEED100 | BMCR_ANE | BMCR_DUPLEX;
    /// BMSR capabilities: 100BASE-TX full/half, 10BASE-T full/half, AN able, extended.
    pub const BMSR_BASE: u16 = 0x7809;
    /// BMSR: auto-negotiation complete.
    pub const BMSR_AN_COMPLETE: u16 = 1 << 5;
    /// BMSR: link status.
    pub const BMSR_LINK: u16 = 1 << 2;
    /// ANAR after reset: pause, 100FD, 100HD, 10FD, 10HD, IEEE 802.3 selector.
    pub const ANAR_DEFAULT: u16 = 0x05E1;
    /// ANLPAR reported while the link is up: what the emulated partner advertises.
    pub const ANLPAR_PARTNER: u16 = 0x45E1;
    /// ANER: link partner is auto-negotiation able.
    pub const ANER_LP_NW_ABLE: u16 = 1 << 0;
    /// MSR: link down (LINKB, active high "link fail").
    pub const MSR_LINKB: u8 = 1 << 2;
    /// CSCR: link OK.
    pub const CSCR_LINK_OK: u16 = 1 << 10;
    /// CSCR: link changed (mirrors ISR.LinkChg).
    pub const CSCR_LINK_CHANGE: u16 = 1 << 11;
}
