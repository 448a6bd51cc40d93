//! DMA helpers over `vm-memory`.
//!
//! Every descriptor is read once into a local copy ([`read_array`]) and parsed from
//! there, so a guest rewriting it concurrently cannot make the model see two different
//! values (no double fetch). Every access is bounds-checked by vm-memory; an address
//! outside guest RAM returns `None`/`false`, which the model treats as a master abort.

use vm_memory::{Bytes, GuestAddress, GuestMemory};

/// Reads `N` bytes at `addr` into a local array; `None` if any byte is outside guest RAM.
pub fn read_array<M: GuestMemory, const N: usize>(mem: &M, addr: u64) -> Option<[u8; N]> {
    let mut buf = [0u8; N];
    mem.read_slice(&mut buf, GuestAddress(addr)).ok()?;
    Some(buf)
}

/// Reads `buf.len()` bytes at `addr`; false if any byte is outside guest RAM.
pub fn read_into<M: GuestMemory>(mem: &M, addr: u64, buf: &mut [u8]) -> bool {
    if buf.is_empty() {
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
}
