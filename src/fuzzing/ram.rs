//! Guest RAM that tells which bytes the device wrote.
//!
//! The RAM is a `GuestMemoryMmap` with vm-memory's [`AtomicBitmap`]: every write through
//! vm-memory (the models' only way in) marks its pages dirty. The harness keeps a shadow
//! copy of what the guest last wrote; after each op it compares only the dirty pages
//! with the shadow, reports the changed byte runs as [`DmaWrite`]s and brings the shadow
//! up to date.

use std::ops::Deref;

use vm_memory::bitmap::AtomicBitmap;
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

use crate::fuzzing::layout::{RAM_SIZE, REGION_SIZE};
use crate::fuzzing::outcome::DmaWrite;

/// The guest memory type every device under the harness gets.
pub type FuzzMemory = GuestMemoryMmap<AtomicBitmap>;

/// Guest RAM plus the shadow of what the guest wrote.
pub struct Ram {
    mem: FuzzMemory,
    shadow: Vec<u8>,
    page: Vec<u8>,
}

impl std::fmt::Debug for Ram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ram").field("size", &RAM_SIZE).finish()
    }
}

impl Ram {
    /// Zeroed RAM laid out as [`crate::fuzzing::layout`] says.
    ///
    /// # Panics
    /// If the host cannot map 256 KiB of anonymous memory.
    pub fn new() -> Ram {
        let mem = FuzzMemory::from_ranges(&[
            (GuestAddress(0), REGION_SIZE as usize),
            (GuestAddress(REGION_SIZE), REGION_SIZE as usize),
        ])
        .expect("mapping 256 KiB of guest RAM");
        Ram {
            mem,
            shadow: vec![0; RAM_SIZE as usize],
            page: Vec::new(),
        }
    }

    /// The memory to give the device (clones share the same RAM).
    pub fn memory(&self) -> &FuzzMemory {
        &self.mem
    }

    /// The guest CPU writes `data` at `addr` (clipped to RAM).
    pub fn guest_write(&mut self, addr: u64, data: &[u8]) {
        if addr >= RAM_SIZE {
            return;
        }
        let n = data.len().min((RAM_SIZE - addr) as usize);
        let data = &data[..n];
        // In range by construction; vm-memory splits the write at the region boundary.
        if self.mem.write_slice(data, GuestAddress(addr)).is_ok() {
            self.shadow[addr as usize..addr as usize + n].copy_from_slice(data);
        }
    }

    /// Reads `len` bytes of RAM at `addr` (zeros where outside RAM).
    pub fn read(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        let _ = self.mem.read_slice(&mut buf, GuestAddress(addr));
        buf
    }

    /// Appends to `out` every byte run the device changed since the last call, tagged with
    /// op index `op`, and returns how many runs were appended.
    pub fn collect_device_writes(&mut self, op: usize, out: &mut Vec<DmaWrite>) -> usize {
        let before = out.len();
        let mut dirty = Vec::new();
        for region in self.mem.iter() {
            let bitmap: &AtomicBitmap = region.deref().bitmap();
            let pages = bitmap.len();
            if pages == 0 {
                continue;
            }
            let region_len = region.len() as usize;
            let page_size = region_len.div_ceil(pages);
            let base = region.start_addr().0 as usize;
            for (word_index, word) in bitmap.get_and_reset().into_iter().enumerate() {
                let mut bits = word;
                while bits != 0 {
                    let bit = bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    let start = (word_index * 64 + bit) * page_size;
                    if start >= region_len {
                        continue;
                    }
                    dirty.push((base + start, page_size.min(region_len - start)));
                }
            }
        }
        for (addr, len) in dirty {
            self.diff_page(op, addr, len, out);
        }
        out.len() - before
    }

    fn diff_page(&mut self, op: usize, addr: usize, len: usize, out: &mut Vec<DmaWrite>) {
        self.page.resize(len, 0);
        if self
            .mem
            .read_slice(&mut self.page, GuestAddress(addr as u64))
            .is_err()
        {
            return;
        }
        let shadow = &mut self.shadow[addr..addr + len];
        if shadow[..] == self.page[..] {
            return;
        }
        let mut i = 0;
        while i < len {
            if shadow[i] == self.page[i] {
                i += 1;
                continue;
            }
            let start = i;
            while i < len && shadow[i] != self.page[i] {
                i += 1;
            }
            let run = &self.page[start..i];
            let at = (addr + start) as u64;
            match out.last_mut() {
                Some(w) if w.op == op && w.addr + w.data.len() as u64 == at => {
                    w.data.extend_from_slice(run)
                }
                _ => out.push(DmaWrite {
                    op,
                    addr: at,
                    data: run.to_vec(),
                }),
            }
            shadow[start..i].copy_from_slice(run);
        }
    }
}

impl Default for Ram {
    fn default() -> Self {
        Ram::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_device_writes_are_reported_merged_across_regions() {
        let mut ram = Ram::new();
        ram.guest_write(0x100, &[1, 2, 3]);
        let mut out = Vec::new();
        assert_eq!(ram.collect_device_writes(0, &mut out), 0);
        // The "device" writes across the region boundary, and once the same bytes.
        let mem = ram.memory().clone();
        mem.write_slice(&[9; 8], GuestAddress(REGION_SIZE - 4))
            .unwrap();
        mem.write_slice(&[1, 2, 3], GuestAddress(0x100)).unwrap();
        assert_eq!(ram.collect_device_writes(5, &mut out), 1);
        assert_eq!(
            out[0],
            DmaWrite {
                op: 5,
                addr: REGION_SIZE - 4,
                data: vec![9; 8]
            }
        );
        assert_eq!(ram.collect_device_writes(6, &mut out), 0);
        ram.guest_write(RAM_SIZE - 2, &[7; 10]);
        assert_eq!(ram.read(RAM_SIZE - 2, 4), vec![7, 7, 0, 0]);
    }
}
