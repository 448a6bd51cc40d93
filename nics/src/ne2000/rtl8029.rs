//! Page 3: the RTL8029AS configuration registers (PCI variant only; on the ISA DP8390D
//! page 3 is reserved and reads as an undriven bus).
//!
//! CONFIG2 and CONFIG3 are writable only while 9346CR.EEM = 11 (config register write
//! enable), which is how Linux's ne2k-pci sets CONFIG3.FUDUP for full duplex. Auto-load
//! (EEM = 01) restores them to their power-on values. The 93C46 serial EEPROM behind
//! EECS/EESK/EEDI/EEDO is not modelled: EEDO reads 0.

use log::debug;

use super::registers::{page3, OPEN_BUS};
use super::Ne2000;

/// 9346CR.EEM1:0 field.
const EEM_MASK: u8 = 0xc0;
/// EEM = 01: auto-load from the 93C46.
const EEM_AUTOLOAD: u8 = 0x40;
/// EEM = 11: CONFIG registers writable.
const EEM_CONFIG_WRITE: u8 = 0xc0;
/// 9346CR bits the host drives: EEM1:0 and EECS/EESK/EEDI (EEDO is an input).
const CR9346_WRITABLE: u8 = 0xce;

impl<M> Ne2000<M> {
    pub(super) fn page3_read(&self, off: u8) -> u8 {
        if !self.is_pci() {
            return OPEN_BUS;
        }
        match off {
            page3::CR9346 => self.st.cr9346,
            // No BNC, no AUI: twisted pair.
            page3::CONFIG0 => 0x00,
            page3::CONFIG2 => self.st.config2,
            page3::CONFIG3 => self.st.config3,
            _ => OPEN_BUS,
        }
    }

    pub(super) fn page3_write(&mut self, off: u8, v: u8) {
        if !self.is_pci() {
            debug!("ne2000: page 3 write {v:#04x} at {off:#x} on the ISA DP8390D ignored");
            return;
        }
        let writable = self.st.cr9346 & EEM_MASK == EEM_CONFIG_WRITE;
        match off {
            page3::CR9346 => {
                if v & EEM_MASK == EEM_AUTOLOAD {
                    // Auto-load completes at once and clears EEM.
                    self.st.config2 = 0;
                    self.st.config3 = 0;
                    self.st.cr9346 = 0;
                } else {
                    self.st.cr9346 = v & CR9346_WRITABLE;
                }
            }
            page3::CONFIG2 if writable => self.st.config2 = v,
            page3::CONFIG3 if writable => self.st.config3 = v,
            page3::CONFIG2 | page3::CONFIG3 => {
                debug!("ne2000: CONFIG write {v:#04x} at {off:#x} while 9346CR.EEM != 11 ignored")
            }
            page3::HLTCLK => debug!("ne2000: HLTCLK {v:#04x}: the virtual clock never halts"),
            _ => debug!("ne2000: page 3 write {v:#04x} at reserved {off:#x} ignored"),
        }
    }
}
