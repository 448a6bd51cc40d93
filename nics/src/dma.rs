//! DMA helpers over `vm-memory`.
//!
//! Every descriptor is read once into a local copy ([`read_array`]) and parsed from
//! there, so a guest rewriting it concurrently cannot make the model see two different
//! values (no double fetch). Every access is bounds-checked by vm-memory; an address
//! outside guest RAM returns `None`/`false`, which the model treats as a master abort.
//!
//! Accesses that fall inside one region of plain (non-IOMMU) guest memory take a direct
//! path: region lookup and one bounds-checked copy. The generic `Bytes` path of
//! vm-memory walks a slice iterator per access, which was most of the e1000 transmit
//! cost for small frames (docs/performance.md); it stays the path for everything else
//! (ranges crossing regions, IOMMU-translated memory, addresses outside RAM).

use vm_memory::{
    Bytes, GuestAddress, GuestMemory, GuestMemoryBackend, GuestMemoryRegion, MemoryRegionAddress,
};

/// The region holding `addr` in plain guest memory and the offset of `addr` in it;
/// `None` sends the caller to the generic path.
fn region_of<M: GuestMemory>(
    mem: &M,
    addr: u64,
) -> Option<(
    &<M::PhysicalMemory as GuestMemoryBackend>::R,
    MemoryRegionAddress,
)> {
    let region = mem.physical_memory()?.find_region(GuestAddress(addr))?;
    let off = addr.checked_sub(region.start_addr().0)?;
    Some((region, MemoryRegionAddress(off)))
}

/// Reads `buf` from inside one region; `None` when the range is not inside one.
fn read_one_region<M: GuestMemory>(mem: &M, addr: u64, buf: &mut [u8]) -> Option<()> {
    let (region, off) = region_of(mem, addr)?;
    let s = region.get_slice(off, buf.len()).ok()?;
    (s.copy_to(buf) == buf.len()).then_some(())
}

/// Writes `data` inside one region; `None` when the range is not inside one.
fn write_one_region<M: GuestMemory>(mem: &M, addr: u64, data: &[u8]) -> Option<()> {
    let (region, off) = region_of(mem, addr)?;
    let s = region.get_slice(off, data.len()).ok()?;
    (s.len() == data.len()).then(|| s.copy_from(data))
}

/// Reads `N` bytes at `addr` into a local array; `None` if any byte is outside guest RAM.
pub fn read_array<M: GuestMemory, const N: usize>(mem: &M, addr: u64) -> Option<[u8; N]> {
    let mut buf = [0u8; N];
    read_into(mem, addr, &mut buf).then_some(buf)
}

/// Reads `buf.len()` bytes at `addr`; false if any byte is outside guest RAM.
pub fn read_into<M: GuestMemory>(mem: &M, addr: u64, buf: &mut [u8]) -> bool {
    if buf.is_empty() {
        return true;
    }
    if read_one_region(mem, addr, buf).is_some() {
        return true;
    }
    mem.read_slice(buf, GuestAddress(addr)).is_ok()
}

/// Writes `data` at `addr`; false if any byte is outside guest RAM (then nothing is
/// guaranteed about partial writes, exactly as on a bus that aborts mid-burst).
pub fn write_from<M: GuestMemory>(mem: &M, addr: u64, data: &[u8]) -> bool {
    if data.is_empty() {
        return true;
    }
    if write_one_region(mem, addr, data).is_some() {
        return true;
    }
    mem.write_slice(data, GuestAddress(addr)).is_ok()
}

/// Little-endian u16 at `off` of a descriptor copy.
pub fn le16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

/// Little-endian u32 at `off` of a descriptor copy.
pub fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// Little-endian u64 at `off` of a descriptor copy.
pub fn le64(b: &[u8], off: usize) -> u64 {
    le32(b, off) as u64 | (le32(b, off + 4) as u64) << 32
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::GuestMemoryMmap;

    #[test]
    fn reads_and_writes_inside_ram_only() {
        let mem: GuestMemoryMmap =
            GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x1000)]).unwrap();
        assert!(write_from(&mem, 0x10, &[1, 2, 3, 4, 5, 6, 7, 8]));
        let d: [u8; 8] = read_array(&mem, 0x10).unwrap();
        assert_eq!(le64(&d, 0), 0x0807_0605_0403_0201);
        assert_eq!(le16(&d, 2), 0x0403);
        assert!(read_array::<_, 16>(&mem, 0xff8).is_none());
        assert!(!write_from(&mem, 0x1000, &[0]));
        assert!(write_from(&mem, 0x5000, &[]));
    }

    #[test]
    fn ranges_across_regions_and_gaps() {
        // Two adjacent regions, then a gap, then a third.
        let mem: GuestMemoryMmap = GuestMemoryMmap::from_ranges(&[
            (GuestAddress(0), 0x1000),
            (GuestAddress(0x1000), 0x1000),
            (GuestAddress(0x4000), 0x1000),
        ])
        .unwrap();
        let data: Vec<u8> = (0..32).collect();
        // Inside one region (direct path) and across two adjacent ones (generic path).
        for at in [0x100u64, 0xff0, 0x4010] {
            assert!(write_from(&mem, at, &data), "write at {at:#x}");
            let mut back = [0u8; 32];
            assert!(read_into(&mem, at, &mut back), "read at {at:#x}");
            assert_eq!(&back[..], &data[..]);
            let mut generic = [0u8; 32];
            mem.read_slice(&mut generic, GuestAddress(at)).unwrap();
            assert_eq!(&generic[..], &data[..], "direct and generic paths agree");
        }
        // Into the gap, from before it, and past the end: refused, nothing read.
        let mut buf = [0u8; 32];
        assert!(!read_into(&mem, 0x1ff0, &mut buf));
        assert!(!write_from(&mem, 0x1ff0, &data));
        assert!(!read_into(&mem, 0x2000, &mut buf));
        assert!(!read_into(&mem, 0x4ff0, &mut buf));
        assert!(read_array::<_, 16>(&mem, 0x4ff0).is_some());
        assert!(read_array::<_, 16>(&mem, 0x4ff1).is_none());
        assert!(!write_from(&mem, u64::MAX - 4, &data));
    }
}
