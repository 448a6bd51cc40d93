//! C+ tally counters, dumped as a 64-byte block to the address in DTCCR when the guest
//! sets DTCCR.CMD (bit 3); the chip clears CMD when the dump is done.

use vm_memory::GuestMemory;

use super::Rtl8139;
use crate::dma;

/// Size of the dump.
pub const DUMP_LEN: usize = 64;
/// DTCCR command bit.
pub const DTCCR_CMD: u64 = 1 << 3;

/// The counters in the order of the dump (RTL8139C+ datasheet, "Tally Counter").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Tally {
    /// Frames transmitted.
    pub tx_ok: u64,
    /// Frames received.
    pub rx_ok: u64,
    /// Frames aborted on transmit.
    pub tx_err: u64,
    /// Receive errors.
    pub rx_err: u32,
    /// Frames missed for lack of receive descriptors.
    pub miss_pkt: u16,
    /// Frame alignment errors.
    pub fae: u16,
    /// Frames transmitted after one collision.
    pub tx_1col: u32,
    /// Frames transmitted after several collisions.
    pub tx_mcol: u32,
    /// Frames received for our station address.
    pub rx_ok_phy: u64,
    /// Broadcast frames received.
    pub rx_ok_brd: u64,
    /// Multicast frames received.
    pub rx_ok_mul: u32,
    /// Transmit aborts.
    pub tx_abt: u16,
    /// Transmit underruns.
    pub tx_undrn: u16,
}

impl Tally {
    /// The 64-byte little-endian dump.
    pub fn to_bytes(&self) -> [u8; DUMP_LEN] {
        let mut b = [0u8; DUMP_LEN];
        b[0..8].copy_from_slice(&self.tx_ok.to_le_bytes());
        b[8..16].copy_from_slice(&self.rx_ok.to_le_bytes());
        b[16..24].copy_from_slice(&self.tx_err.to_le_bytes());
        b[24..28].copy_from_slice(&self.rx_err.to_le_bytes());
        b[28..30].copy_from_slice(&self.miss_pkt.to_le_bytes());
        b[30..32].copy_from_slice(&self.fae.to_le_bytes());
        b[32..36].copy_from_slice(&self.tx_1col.to_le_bytes());
        b[36..40].copy_from_slice(&self.tx_mcol.to_le_bytes());
        b[40..48].copy_from_slice(&self.rx_ok_phy.to_le_bytes());
        b[48..56].copy_from_slice(&self.rx_ok_brd.to_le_bytes());
        b[56..60].copy_from_slice(&self.rx_ok_mul.to_le_bytes());
        b[60..62].copy_from_slice(&self.tx_abt.to_le_bytes());
        b[62..64].copy_from_slice(&self.tx_undrn.to_le_bytes());
        b
    }
}

impl<M: GuestMemory> Rtl8139<M> {
    /// Handles a DTCCR write: dumps the counters when CMD is set (and DMA is allowed),
    /// then clears CMD.
    pub(super) fn dtccr_written(&mut self) {
        let dtccr = self.r.tsd[0] as u64 | (self.r.tsd[1] as u64) << 32;
        if dtccr & DTCCR_CMD == 0 {
            return;
        }
        let addr = dtccr & !0x3F;
        if !self.pci.bus_master() {
            log::debug!("rtl8139: tally dump ignored: bus mastering is off");
        } else if !dma::write_from(&self.mem, addr, &self.r.tally.to_bytes()) {
            log::debug!("rtl8139: tally dump to {addr:#x} is outside guest memory");
            self.master_abort();
        }
        self.work += 1;
        self.r.tsd[0] &= !(DTCCR_CMD as u32);
    }
}
