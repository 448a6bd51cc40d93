//! The register map of the 8254x parts modelled here: offsets, bit fields and a table
//! giving every register its readable and writable masks and its reset value.
//!
//! Source: Intel "PCI/PCI-X Family of Gigabit Ethernet Controllers Software Developer's
//! Manual" (8254x SDM), chapter 13 (Register Descriptions): the register summary table and
//! the per-register descriptions that follow it. Offsets are byte offsets inside BAR0.

/// Which parts have a register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parts {
    /// 82544GC, 82540EM and 82545EM.
    All,
    /// 82540EM and 82545EM only (registers the 82540 generation added).
    Since82540,
}

/// How the device treats a register beyond its masks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Plain storage: reads return the stored value under the read mask.
    Plain,
    /// Reading has a side effect or the value is computed (ICR, STATUS, EECD, MDIC, ...).
    Special,
    /// A statistics counter: read-only, cleared on read.
    Stat,
}

/// One register (or an array of equally spaced registers).
#[derive(Clone, Copy, Debug)]
pub struct RegDef {
    /// The SDM's mnemonic.
    pub name: &'static str,
    /// Byte offset of the first entry.
    pub offset: u32,
    /// Number of entries (1 for a single register).
    pub count: u16,
    /// Bytes between entries.
    pub stride: u8,
    /// Bits a read can return.
    pub read: u32,
    /// Bits a write changes.
    pub write: u32,
    /// Value after power-on and software reset.
    pub reset: u32,
    /// Which parts have it.
    pub parts: Parts,
    /// Treatment beyond the masks.
    pub kind: Kind,
    /// Title of its description in the SDM's chapter 13 (Register Descriptions).
    pub sdm: &'static str,
}

macro_rules! regs {
    ($($name:ident = $off:expr),* $(,)?) => {
        $(
            #[doc = concat!("Offset of `", stringify!($name), "`.")]
            pub const $name: u32 = $off;
        )*
    };
}

regs! {
    CTRL = 0x0000, STATUS = 0x0008, EECD = 0x0010, EERD = 0x0014, CTRL_EXT = 0x0018,
    MDIC = 0x0020, FCAL = 0x0028, FCAH = 0x002c, FCT = 0x0030, VET = 0x0038,
    ICR = 0x00c0, ITR = 0x00c4, ICS = 0x00c8, IMS = 0x00d0, IMC = 0x00d8,
    RCTL = 0x0100, FCTTV = 0x0170, TXCW = 0x0178, RXCW = 0x0180,
    TCTL = 0x0400, TIPG = 0x0410, AIFS = 0x0458, LEDCTL = 0x0e00, PBA = 0x1000,
    FCRTL = 0x2160, FCRTH = 0x2168,
    RDFH = 0x2410, RDFT = 0x2418, RDFHS = 0x2420, RDFTS = 0x2428, RDFPC = 0x2430,
    RDBAL = 0x2800, RDBAH = 0x2804, RDLEN = 0x2808, RDH = 0x2810, RDT = 0x2818,
    RDTR = 0x2820, RXDCTL = 0x2828, RADV = 0x282c, RSRPD = 0x2c00,
    TXDMAC = 0x3000,
    TDFH = 0x3410, TDFT = 0x3418, TDFHS = 0x3420, TDFTS = 0x3428, TDFPC = 0x3430,
    TDBAL = 0x3800, TDBAH = 0x3804, TDLEN = 0x3808, TDH = 0x3810, TDT = 0x3818,
    TIDV = 0x3820, TXDCTL = 0x3828, TADV = 0x382c, TSPMT = 0x3830,
    STATS = 0x4000, RXCSUM = 0x5000,
    MTA = 0x5200, RAL0 = 0x5400, RAH0 = 0x5404, VFTA = 0x5600,
    WUC = 0x5800, WUFC = 0x5808, WUS = 0x5810, IPAV = 0x5838, IP4AT = 0x5840,
    IP6AT = 0x5880, WUPL = 0x5900, WUPM = 0x5a00, FFLT = 0x5f00, FFMT = 0x9000,
    FFVT = 0x9800, PBM = 0x10000,
}

/// Size of the memory BAR (128 KiB).
pub const MMIO_SIZE: u64 = 0x20000;
/// Size of the I/O BAR.
pub const IO_SIZE: u64 = 0x40;
/// Number of receive address (RAL/RAH) pairs.
pub const RA_ENTRIES: usize = 16;

/// Device Control (CTRL) bits (SDM chapter 13).
pub mod ctrl {
    /// Full duplex.
    pub const FD: u32 = 1 << 0;
    /// Link reset.
    pub const LRST: u32 = 1 << 3;
    /// Auto-speed detection enable.
    pub const ASDE: u32 = 1 << 5;
    /// Set link up.
    pub const SLU: u32 = 1 << 6;
    /// Invert loss-of-signal.
    pub const ILOS: u32 = 1 << 7;
    /// Speed selection (bits 9:8).
    pub const SPEED_MASK: u32 = 3 << 8;
    /// Force speed.
    pub const FRCSPD: u32 = 1 << 11;
    /// Force duplex.
    pub const FRCDPX: u32 = 1 << 12;
    /// Device reset (self-clearing).
    pub const RST: u32 = 1 << 26;
    /// VLAN mode enable.
    pub const VME: u32 = 1 << 30;
    /// PHY reset.
    pub const PHY_RST: u32 = 1 << 31;
}

/// Device Status (STATUS) bits (SDM chapter 13).
pub mod status {
    /// Full duplex.
    pub const FD: u32 = 1 << 0;
    /// Link up.
    pub const LU: u32 = 1 << 1;
    /// Speed 1000 Mb/s (bits 7:6 = 10b).
    pub const SPEED_1000: u32 = 2 << 6;
    /// Auto-speed detection value 1000 Mb/s (bits 9:8 = 10b).
    pub const ASDV_1000: u32 = 2 << 8;
}

/// EEPROM/Flash Control (EECD) bits (SDM chapter 13).
pub mod eecd {
    /// Clock input to the EEPROM.
    pub const SK: u32 = 1 << 0;
    /// Chip select.
    pub const CS: u32 = 1 << 1;
    /// Data input to the EEPROM.
    pub const DI: u32 = 1 << 2;
    /// Data output from the EEPROM (read-only).
    pub const DO: u32 = 1 << 3;
    /// Flash write enable control (bits 5:4).
    pub const FWE_MASK: u32 = 3 << 4;
    /// Request EEPROM access (82540 and later).
    pub const REQ: u32 = 1 << 6;
    /// EEPROM access granted (read-only).
    pub const GNT: u32 = 1 << 7;
    /// EEPROM present (read-only).
    pub const PRES: u32 = 1 << 8;
    /// EEPROM size: 0 = 64 words (read-only).
    pub const SIZE: u32 = 1 << 9;
}

/// EEPROM Read (EERD) fields (SDM chapter 13).
pub mod eerd {
    /// Start a read.
    pub const START: u32 = 1 << 0;
    /// The read is done.
    pub const DONE: u32 = 1 << 4;
    /// Word address, bits 15:8.
    pub const ADDR_SHIFT: u32 = 8;
    /// Data, bits 31:16.
    pub const DATA_SHIFT: u32 = 16;
}

/// MDI Control (MDIC) fields (SDM chapter 13).
pub mod mdic {
    /// Data, bits 15:0.
    pub const DATA_MASK: u32 = 0xffff;
    /// PHY register address shift (bits 20:16).
    pub const REG_SHIFT: u32 = 16;
    /// PHY address shift (bits 25:21).
    pub const PHY_SHIFT: u32 = 21;
    /// Opcode shift (bits 27:26): 01 write, 10 read.
    pub const OP_SHIFT: u32 = 26;
    /// Write opcode.
    pub const OP_WRITE: u32 = 1;
    /// Read opcode.
    pub const OP_READ: u32 = 2;
    /// Ready: the cycle has completed.
    pub const READY: u32 = 1 << 28;
    /// Interrupt at the end of the cycle (MDAC).
    pub const INT_EN: u32 = 1 << 29;
    /// Error: no PHY answered.
    pub const ERROR: u32 = 1 << 30;
}

/// Interrupt cause bits shared by ICR, ICS, IMS and IMC (SDM chapter 13).
pub mod icr {
    /// Transmit descriptor written back.
    pub const TXDW: u32 = 1 << 0;
    /// Transmit queue empty.
    pub const TXQE: u32 = 1 << 1;
    /// Link status change.
    pub const LSC: u32 = 1 << 2;
    /// Receive sequence error.
    pub const RXSEQ: u32 = 1 << 3;
    /// Receive descriptor minimum threshold reached.
    pub const RXDMT0: u32 = 1 << 4;
    /// Receiver overrun.
    pub const RXO: u32 = 1 << 6;
    /// Receiver timer interrupt.
    pub const RXT0: u32 = 1 << 7;
    /// MDI/O access complete.
    pub const MDAC: u32 = 1 << 9;
    /// Receiving /C/ ordered sets.
    pub const RXCFG: u32 = 1 << 10;
    /// PHY interrupt.
    pub const PHYINT: u32 = 1 << 12;
    /// General purpose interrupts on SDP6/SDP7.
    pub const GPI: u32 = 3 << 13;
    /// Transmit descriptor low threshold hit.
    pub const TXD_LOW: u32 = 1 << 15;
    /// Small receive packet detected.
    pub const SRPD: u32 = 1 << 16;
    /// Every cause bit these parts define.
    pub const ALL: u32 = 0x0001_ffff;
    /// Interrupt asserted (read-only, ICR bit 31).
    pub const INT_ASSERTED: u32 = 1 << 31;
}

/// Extended Device Control (CTRL_EXT) bits (SDM chapter 13).
pub mod ctrl_ext {
    /// EEPROM reset: reload the station address and words the MAC takes from the EEPROM
    /// (self-clearing).
    pub const EE_RST: u32 = 1 << 13;
}

/// Receive Control (RCTL) bits (SDM chapter 13).
pub mod rctl {
    /// Receiver enable.
    pub const EN: u32 = 1 << 1;
    /// Store bad packets.
    pub const SBP: u32 = 1 << 2;
    /// Unicast promiscuous.
    pub const UPE: u32 = 1 << 3;
    /// Multicast promiscuous.
    pub const MPE: u32 = 1 << 4;
    /// Long packet enable.
    pub const LPE: u32 = 1 << 5;
    /// Loopback mode (bits 7:6); 01 = MAC loopback.
    pub const LBM_MASK: u32 = 3 << 6;
    /// MAC loopback.
    pub const LBM_MAC: u32 = 1 << 6;
    /// Descriptor minimum threshold size shift (bits 9:8).
    pub const RDMTS_SHIFT: u32 = 8;
    /// Multicast offset shift (bits 13:12).
    pub const MO_SHIFT: u32 = 12;
    /// Broadcast accept mode.
    pub const BAM: u32 = 1 << 15;
    /// Buffer size shift (bits 17:16).
    pub const BSIZE_SHIFT: u32 = 16;
    /// VLAN filter enable.
    pub const VFE: u32 = 1 << 18;
    /// Canonical form indicator enable.
    pub const CFIEN: u32 = 1 << 19;
    /// Canonical form indicator value.
    pub const CFI: u32 = 1 << 20;
    /// Buffer size extension.
    pub const BSEX: u32 = 1 << 25;
    /// Strip Ethernet CRC.
    pub const SECRC: u32 = 1 << 26;
}

/// Transmit Control (TCTL) bits (SDM chapter 13).
pub mod tctl {
    /// Transmit enable.
    pub const EN: u32 = 1 << 1;
    /// Pad short packets.
    pub const PSP: u32 = 1 << 3;
}

/// Receive Checksum Control (RXCSUM) bits (SDM chapter 13).
pub mod rxcsum {
    /// IP checksum offload enable.
    pub const IPOFL: u32 = 1 << 8;
    /// TCP/UDP checksum offload enable.
    pub const TUOFL: u32 = 1 << 9;
}

const ALL: Parts = Parts::All;
const P40: Parts = Parts::Since82540;
const PLAIN: Kind = Kind::Plain;
const SPECIAL: Kind = Kind::Special;

// One row of the table; the argument list mirrors the table columns.
#[allow(clippy::too_many_arguments)]
const fn r(
    name: &'static str,
    offset: u32,
    read: u32,
    write: u32,
    reset: u32,
    parts: Parts,
    kind: Kind,
    sdm: &'static str,
) -> RegDef {
    RegDef {
        name,
        offset,
        count: 1,
        stride: 4,
        read,
        write,
        reset,
        parts,
        kind,
        sdm,
    }
}

const fn arr(
    name: &'static str,
    offset: u32,
    count: u16,
    stride: u8,
    mask: u32,
    parts: Parts,
    sdm: &'static str,
) -> RegDef {
    RegDef {
        name,
        offset,
        count,
        stride,
        read: mask,
        write: mask,
        reset: 0,
        parts,
        kind: PLAIN,
        sdm,
    }
}

const fn stat(name: &'static str, offset: u32) -> RegDef {
    r(
        name,
        offset,
        u32::MAX,
        0,
        0,
        ALL,
        Kind::Stat,
        "Statistics Registers",
    )
}

/// Every register of the SDM's register summary for the 82544GC, 82540EM and 82545EM.
///
/// Reset values are the SDM's; where the SDM gives a value loaded from the EEPROM the
/// value for this model's EEPROM image is used. Masks: `read` is what a read returns
/// (write-only bits such as RDTR.FPD are absent), `write` what a write changes.
#[rustfmt::skip]
pub const TABLE: &[RegDef] = &[
    // RST self-clears, so it never reads back.
    r("CTRL", CTRL, 0xd8fc_1be9, 0xdcfc_1be9, ctrl::FD | ctrl::ASDE | ctrl::SLU | 2 << 8, ALL, SPECIAL, "Device Control"),
    r("STATUS", STATUS, 0x0000_3fff, 0, 0, ALL, SPECIAL, "Device Status"),
    r("EECD", EECD, 0x0000_03ff, 0x0000_0077, eecd::PRES | 1 << 4, ALL, SPECIAL, "EEPROM/Flash Control"),
    r("EERD", EERD, 0xffff_ff11, 0x0000_ff01, 0, P40, SPECIAL, "EEPROM Read"),
    r("CTRL_EXT", CTRL_EXT, 0x00ef_fcff, 0x00ef_dcff, 0, ALL, SPECIAL, "Extended Device Control"),
    r("MDIC", MDIC, 0x7fff_ffff, 0x3fff_ffff, mdic::READY, ALL, SPECIAL, "MDI Control"),
    r("FCAL", FCAL, u32::MAX, u32::MAX, 0, ALL, PLAIN, "Flow Control Address Low"),
    r("FCAH", FCAH, 0xffff, 0xffff, 0, ALL, PLAIN, "Flow Control Address High"),
    r("FCT", FCT, 0xffff, 0xffff, 0, ALL, PLAIN, "Flow Control Type"),
    r("VET", VET, 0xffff, 0xffff, 0x8100, ALL, PLAIN, "VLAN Ether Type"),
    r("FCTTV", FCTTV, 0xffff, 0xffff, 0, ALL, PLAIN, "Flow Control Transmit Timer Value"),
    r("TXCW", TXCW, 0xc000_ffff, 0xc000_ffff, 0, ALL, PLAIN, "Transmit Configuration Word"),
    r("RXCW", RXCW, 0xfc00_ffff, 0, 0, ALL, PLAIN, "Receive Configuration Word"),
    r("LEDCTL", LEDCTL, 0xcfcf_cfcf, 0xcfcf_cfcf, 0x0706_8302, ALL, PLAIN, "LED Control"),
    r("PBA", PBA, 0xffff_ffff, 0x0000_ffff, 0x0010_0030, ALL, SPECIAL, "Packet Buffer Allocation"),
    r("ICR", ICR, 0x8001_ffff, 0x0001_ffff, 0, ALL, SPECIAL, "Interrupt Cause Read"),
    r("ITR", ITR, 0xffff, 0xffff, 0, P40, SPECIAL, "Interrupt Throttling"),
    r("ICS", ICS, 0, 0x0001_ffff, 0, ALL, SPECIAL, "Interrupt Cause Set"),
    r("IMS", IMS, 0x0001_ffff, 0x0001_ffff, 0, ALL, SPECIAL, "Interrupt Mask Set/Read"),
    r("IMC", IMC, 0, 0x0001_ffff, 0, ALL, SPECIAL, "Interrupt Mask Clear"),
    r("RCTL", RCTL, 0x06df_b3fe, 0x06df_b3fe, 0, ALL, SPECIAL, "Receive Control"),
    r("FCRTL", FCRTL, 0x8000_fff8, 0x8000_fff8, 0, ALL, PLAIN, "Flow Control Receive Threshold Low"),
    r("FCRTH", FCRTH, 0x0000_fff8, 0x0000_fff8, 0, ALL, PLAIN, "Flow Control Receive Threshold High"),
    r("RDBAL", RDBAL, 0xffff_fff0, 0xffff_fff0, 0, ALL, PLAIN, "Receive Descriptor Base Address Low"),
    r("RDBAH", RDBAH, u32::MAX, u32::MAX, 0, ALL, PLAIN, "Receive Descriptor Base Address High"),
    r("RDLEN", RDLEN, 0x000f_ff80, 0x000f_ff80, 0, ALL, PLAIN, "Receive Descriptor Length"),
    r("RDH", RDH, 0xffff, 0xffff, 0, ALL, PLAIN, "Receive Descriptor Head"),
    r("RDT", RDT, 0xffff, 0xffff, 0, ALL, SPECIAL, "Receive Descriptor Tail"),
    r("RDTR", RDTR, 0xffff, 0x8000_ffff, 0, ALL, SPECIAL, "Receive Delay Timer"),
    r("RADV", RADV, 0xffff, 0xffff, 0, P40, PLAIN, "Receive Interrupt Absolute Delay Timer"),
    r("RSRPD", RSRPD, 0x0fff, 0x0fff, 0, P40, PLAIN, "Receive Small Packet Detect Interrupt"),
    r("RXDCTL", RXDCTL, 0x013f_3f3f, 0x013f_3f3f, 0x0001_0000, ALL, PLAIN, "Receive Descriptor Control"),
    r("RXCSUM", RXCSUM, 0x0000_03ff, 0x0000_03ff, rxcsum::IPOFL | rxcsum::TUOFL, ALL, PLAIN, "Receive Checksum Control"),
    r("TCTL", TCTL, 0x037f_fffa, 0x037f_fffa, 0, ALL, SPECIAL, "Transmit Control"),
    r("TIPG", TIPG, 0x3fff_ffff, 0x3fff_ffff, 0x0060_2008, ALL, PLAIN, "Transmit IPG"),
    r("AIFS", AIFS, 0xffff, 0xffff, 0, ALL, PLAIN, "Adaptive IFS Throttle"),
    r("TDBAL", TDBAL, 0xffff_fff0, 0xffff_fff0, 0, ALL, PLAIN, "Transmit Descriptor Base Address Low"),
    r("TDBAH", TDBAH, u32::MAX, u32::MAX, 0, ALL, PLAIN, "Transmit Descriptor Base Address High"),
    r("TDLEN", TDLEN, 0x000f_ff80, 0x000f_ff80, 0, ALL, PLAIN, "Transmit Descriptor Length"),
    r("TDH", TDH, 0xffff, 0xffff, 0, ALL, PLAIN, "Transmit Descriptor Head"),
    r("TDT", TDT, 0xffff, 0xffff, 0, ALL, SPECIAL, "Transmit Descriptor Tail"),
    r("TIDV", TIDV, 0xffff, 0x8000_ffff, 0, ALL, SPECIAL, "Transmit Interrupt Delay Value"),
    r("TXDMAC", TXDMAC, 1, 1, 0, ALL, PLAIN, "TX DMA Control"),
    r("TXDCTL", TXDCTL, 0xff3f_3f3f, 0xff3f_3f3f, 0, ALL, PLAIN, "Transmit Descriptor Control"),
    r("TADV", TADV, 0xffff, 0xffff, 0, P40, PLAIN, "Transmit Absolute Interrupt Delay Value"),
    r("TSPMT", TSPMT, u32::MAX, u32::MAX, 0x0100_0400, ALL, PLAIN, "TCP Segmentation Pad and Minimum Threshold"),
    r("RDFH", RDFH, 0x1fff, 0x1fff, 0, ALL, PLAIN, "Receive Data FIFO Head"),
    r("RDFT", RDFT, 0x1fff, 0x1fff, 0, ALL, PLAIN, "Receive Data FIFO Tail"),
    r("RDFHS", RDFHS, 0x1fff, 0x1fff, 0, ALL, PLAIN, "Receive Data FIFO Head Saved"),
    r("RDFTS", RDFTS, 0x1fff, 0x1fff, 0, ALL, PLAIN, "Receive Data FIFO Tail Saved"),
    r("RDFPC", RDFPC, 0x1fff, 0x1fff, 0, ALL, PLAIN, "Receive Data FIFO Packet Count"),
    r("TDFH", TDFH, 0x1fff, 0x1fff, 0, ALL, PLAIN, "Transmit Data FIFO Head"),
    r("TDFT", TDFT, 0x1fff, 0x1fff, 0, ALL, PLAIN, "Transmit Data FIFO Tail"),
    r("TDFHS", TDFHS, 0x1fff, 0x1fff, 0, ALL, PLAIN, "Transmit Data FIFO Head Saved"),
    r("TDFTS", TDFTS, 0x1fff, 0x1fff, 0, ALL, PLAIN, "Transmit Data FIFO Tail Saved"),
    r("TDFPC", TDFPC, 0x1fff, 0x1fff, 0, ALL, PLAIN, "Transmit Data FIFO Packet Count"),
    arr("MTA", MTA, 128, 4, u32::MAX, ALL, "Multicast Table Array"),
    // RAL: all bits; RAH: address high 15:0, ASEL 17:16, AV 31.
    arr("RAL", RAL0, 16, 8, u32::MAX, ALL, "Receive Address Low"),
    arr("RAH", RAH0, 16, 8, 0x8003_ffff, ALL, "Receive Address High"),
    arr("VFTA", VFTA, 128, 4, u32::MAX, ALL, "VLAN Filter Table Array"),
    r("WUC", WUC, 0xf, 0xf, 0, ALL, PLAIN, "Wake Up Control"),
    r("WUFC", WUFC, 0x000f_00ff, 0x000f_00ff, 0, ALL, PLAIN, "Wake Up Filter Control"),
    r("WUS", WUS, 0x000f_00ff, 0, 0, ALL, SPECIAL, "Wake Up Status"),
    r("IPAV", IPAV, 0x0001_000f, 0x0001_000f, 0, ALL, PLAIN, "IP Address Valid"),
    arr("IP4AT", IP4AT, 4, 8, u32::MAX, ALL, "IPv4 Address Table"),
    arr("IP6AT", IP6AT, 4, 4, u32::MAX, ALL, "IPv6 Address Table"),
    r("WUPL", WUPL, 0x0fff, 0, 0, ALL, PLAIN, "Wake Up Packet Length"),
    arr("WUPM", WUPM, 32, 4, u32::MAX, ALL, "Wake Up Packet Memory"),
    arr("FFLT", FFLT, 4, 8, 0x07ff, ALL, "Flexible Filter Length Table"),
    arr("FFMT", FFMT, 128, 8, 0xf, ALL, "Flexible Filter Mask Table"),
    arr("FFVT", FFVT, 128, 8, 0xff, ALL, "Flexible Filter Value Table"),
    stat("CRCERRS", 0x4000),
    stat("ALGNERRC", 0x4004),
    stat("SYMERRS", 0x4008),
    stat("RXERRC", 0x400c),
    stat("MPC", 0x4010),
    stat("SCC", 0x4014),
    stat("ECOL", 0x4018),
    stat("MCC", 0x401c),
    stat("LATECOL", 0x4020),
    stat("COLC", 0x4028),
    stat("DC", 0x4030),
    stat("TNCRS", 0x4034),
    stat("SEC", 0x4038),
    stat("CEXTERR", 0x403c),
    stat("RLEC", 0x4040),
    stat("XONRXC", 0x4048),
    stat("XONTXC", 0x404c),
    stat("XOFFRXC", 0x4050),
    stat("XOFFTXC", 0x4054),
    stat("FCRUC", 0x4058),
    stat("PRC64", 0x405c),
    stat("PRC127", 0x4060),
    stat("PRC255", 0x4064),
    stat("PRC511", 0x4068),
    stat("PRC1023", 0x406c),
    stat("PRC1522", 0x4070),
    stat("GPRC", 0x4074),
    stat("BPRC", 0x4078),
    stat("MPRC", 0x407c),
    stat("GPTC", 0x4080),
    stat("GORCL", 0x4088),
    stat("GORCH", 0x408c),
    stat("GOTCL", 0x4090),
    stat("GOTCH", 0x4094),
    stat("RNBC", 0x40a0),
    stat("RUC", 0x40a4),
    stat("RFC", 0x40a8),
    stat("ROC", 0x40ac),
    stat("RJC", 0x40b0),
    stat("MGTPRC", 0x40b4),
    stat("MGTPDC", 0x40b8),
    stat("MGTPTC", 0x40bc),
    stat("TORL", 0x40c0),
    stat("TORH", 0x40c4),
    stat("TOTL", 0x40c8),
    stat("TOTH", 0x40cc),
    stat("TPR", 0x40d0),
    stat("TPT", 0x40d4),
    stat("PTC64", 0x40d8),
    stat("PTC127", 0x40dc),
    stat("PTC255", 0x40e0),
    stat("PTC511", 0x40e4),
    stat("PTC1023", 0x40e8),
    stat("PTC1522", 0x40ec),
    stat("MPTC", 0x40f0),
    stat("BPTC", 0x40f4),
    stat("TSCTC", 0x40f8),
    stat("TSCTFC", 0x40fc),
    // Packet buffer memory: the on-chip FIFO RAM, readable and writable for diagnostics.
    arr("PBM", PBM, 0x4000, 4, u32::MAX, ALL, "Packet Buffer Memory"),
];

/// Number of 32-bit words in BAR0.
pub const WORDS: usize = (MMIO_SIZE / 4) as usize;

/// Marker for "no register here" in [`index`].
pub const NONE: u16 = u16::MAX;

/// A word-indexed map from BAR0 dword to its [`TABLE`] entry, built once per process.
pub fn index() -> &'static [u16] {
    static INDEX: std::sync::OnceLock<Box<[u16]>> = std::sync::OnceLock::new();
    INDEX.get_or_init(|| {
        let mut map = vec![NONE; WORDS].into_boxed_slice();
        for (i, def) in TABLE.iter().enumerate() {
            for n in 0..def.count as u32 {
                let word = ((def.offset + n * def.stride as u32) / 4) as usize;
                map[word] = i as u16;
            }
        }
        map
    })
}

/// The table entry covering byte offset `offset` (dword aligned), if any.
pub fn lookup(offset: u32) -> Option<&'static RegDef> {
    let i = *index().get((offset / 4) as usize)?;
    (i != NONE).then(|| &TABLE[i as usize])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_entries_do_not_overlap_and_fit_the_bar() {
        let mut seen = vec![false; WORDS];
        for def in TABLE {
            assert!(def.stride >= 4 && def.stride % 4 == 0, "{}", def.name);
            for n in 0..def.count as u32 {
                let word = ((def.offset + n * def.stride as u32) / 4) as usize;
                assert!(word < WORDS, "{} past the BAR", def.name);
                assert!(!seen[word], "{} overlaps", def.name);
                seen[word] = true;
            }
            assert_eq!(def.reset & !def.read & !def.write, 0, "{} reset", def.name);
        }
    }

    #[test]
    fn lookup_finds_arrays_and_gaps() {
        assert_eq!(lookup(0x5408).unwrap().name, "RAL");
        assert_eq!(lookup(0x540c).unwrap().name, "RAH");
        assert_eq!(lookup(0x53fc).unwrap().name, "MTA");
        assert_eq!(lookup(0x9008).unwrap().name, "FFMT");
        assert!(lookup(0x9004).is_none(), "FFMT upper dwords are reserved");
        assert!(lookup(0x0004).is_none());
        assert!(lookup(0x4024).is_none());
        assert_eq!(lookup(0x1fffc).unwrap().name, "PBM");
    }
}
