//! `SYNC_SYSMEM`: maps the guest RAM regions QEMU sends as memfd descriptors and builds the
//! [`GuestMemoryMmap`] the device does DMA through.
//!
//! Every region is checked before it is mapped: non-empty, inside the address space,
//! page-aligned file offset, and — so that no DMA can touch a page past the end of the
//! file, which would kill the server with `SIGBUS` — lying entirely inside the file as it
//! is now. Overlapping regions are refused by vm-memory.

use std::fmt;
use std::fs::File;
use std::os::fd::OwnedFd;

use vm_memory::{FileOffset, GuestAddress, GuestMemoryMmap};

use super::protocol::SysmemRegion;

/// Why a `SYNC_SYSMEM` message could not be turned into guest memory.
#[derive(Debug)]
pub enum MemoryError {
    /// Region `index` is malformed (the message says how).
    BadRegion {
        /// Region index in the message.
        index: usize,
        /// The region.
        region: SysmemRegion,
        /// What is wrong with it.
        reason: String,
    },
    /// The descriptor of region `index` cannot be inspected (not a file).
    BadFd {
        /// Region index.
        index: usize,
        /// The error.
        error: std::io::Error,
    },
    /// vm-memory refused the set (overlap, mmap failure).
    Map(String),
}

impl fmt::Display for MemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemoryError::BadRegion {
                index,
                region,
                reason,
            } => write!(
                f,
                "SYNC_SYSMEM region {index} (gpa {:#x} size {:#x} offset {:#x}): {reason}",
                region.gpa, region.size, region.offset
            ),
            MemoryError::BadFd { index, error } => {
                write!(
                    f,
                    "SYNC_SYSMEM region {index}: bad file descriptor: {error}"
                )
            }
            MemoryError::Map(e) => write!(f, "SYNC_SYSMEM: cannot map guest RAM: {e}"),
        }
    }
}

impl std::error::Error for MemoryError {}

fn page_size() -> u64 {
    rustix::param::page_size() as u64
}

/// Maps `regions`, each from the descriptor at the same index of `fds`, into a new guest
/// memory. The caller replaces the device's whole memory with the result: QEMU sends the
/// complete map every time.
pub fn map_regions(
    regions: &[SysmemRegion],
    fds: Vec<OwnedFd>,
) -> Result<GuestMemoryMmap, MemoryError> {
    let mut ranges = Vec::with_capacity(regions.len());
    for (index, (region, fd)) in regions.iter().zip(fds).enumerate() {
        let bad = |reason: &str| MemoryError::BadRegion {
            index,
            region: *region,
            reason: reason.to_string(),
        };
        if region.size == 0 {
            return Err(bad("empty region"));
        }
        if region.gpa.checked_add(region.size).is_none() {
            return Err(bad("wraps around the address space"));
        }
        let size = usize::try_from(region.size).map_err(|_| bad("too large to map"))?;
        let offset = u64::try_from(region.offset).map_err(|_| bad("negative file offset"))?;
        if offset % page_size() != 0 {
            return Err(bad("file offset is not page-aligned"));
        }
        let file = File::from(fd);
        let len = file
            .metadata()
            .map_err(|error| MemoryError::BadFd { index, error })?
            .len();
        match offset.checked_add(region.size) {
            Some(end) if end <= len => {}
            _ => {
                return Err(bad(&format!(
                    "reaches past the end of its file ({len:#x} bytes)"
                )))
            }
        }
        ranges.push((
            GuestAddress(region.gpa),
            size,
            Some(FileOffset::new(file, offset)),
        ));
    }
    ranges.sort_by_key(|r| r.0);
    GuestMemoryMmap::from_ranges_with_files(ranges).map_err(|e| MemoryError::Map(e.to_string()))
}

/// Guest memory with no RAM at all: what the device has until the first `SYNC_SYSMEM`
/// (every DMA then fails as a master abort).
pub fn empty() -> GuestMemoryMmap {
    GuestMemoryMmap::default()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};
    use vm_memory::{Bytes, GuestMemoryBackend};

    /// A memfd of `len` bytes with a marker byte at each page start (page number & 0xff).
    pub(crate) fn memfd(len: u64) -> OwnedFd {
        let fd = rustix::fs::memfd_create("vm-nic-test", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        let mut f = File::from(fd);
        f.set_len(len).unwrap();
        for page in 0..len / 4096 {
            f.seek(SeekFrom::Start(page * 4096)).unwrap();
            f.write_all(&[page as u8]).unwrap();
        }
        f.into()
    }

    fn dup(fd: &OwnedFd) -> OwnedFd {
        fd.try_clone().unwrap()
    }

    #[test]
    fn maps_qemu_style_split_ram_from_one_memfd() {
        let fd = memfd(0x200000);
        let regions = [
            SysmemRegion {
                gpa: 0x100000,
                size: 0x100000,
                offset: 0x100000,
            },
            SysmemRegion {
                gpa: 0,
                size: 0xc0000,
                offset: 0,
            },
        ];
        let mem = map_regions(&regions, vec![dup(&fd), dup(&fd)]).unwrap();
        assert_eq!(mem.num_regions(), 2);
        let b: u8 = mem.read_obj(GuestAddress(0x101000)).unwrap();
        assert_eq!(b, 0x01, "page 0x101 of the file at gpa 0x101000");
        let b: u8 = mem.read_obj(GuestAddress(0x2000)).unwrap();
        assert_eq!(b, 2);
        assert!(mem.read_obj::<u8>(GuestAddress(0xc0000)).is_err(), "hole");
        // Writes land in the shared file: QEMU sees the device's DMA.
        mem.write_obj(0xabu8, GuestAddress(0x3001)).unwrap();
        let again = map_regions(&regions[1..], vec![dup(&fd)]).unwrap();
        assert_eq!(again.read_obj::<u8>(GuestAddress(0x3001)).unwrap(), 0xab);
    }

    #[test]
    fn refuses_regions_that_could_fault_or_overlap() {
        let fd = memfd(0x10000);
        let r = |gpa, size, offset| SysmemRegion { gpa, size, offset };
        let cases = [
            (r(0, 0x20000, 0), "past the end"),
            (r(0, 0x1000, 0x10000), "past the end"),
            (r(0, 0, 0), "empty"),
            (r(0, 0x1000, -4096), "negative"),
            (r(0, 0x1000, 0x10), "page-aligned"),
            (r(u64::MAX - 0xfff, 0x2000, 0), "wraps"),
        ];
        for (region, why) in cases {
            let e = map_regions(&[region], vec![dup(&fd)]).unwrap_err();
            assert!(e.to_string().contains(why), "{region:?}: {e}");
        }
        let overlap = [r(0, 0x2000, 0), r(0x1000, 0x2000, 0)];
        assert!(matches!(
            map_regions(&overlap, vec![dup(&fd), dup(&fd)]),
            Err(MemoryError::Map(_))
        ));
        let sock = rustix::net::socket(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::STREAM,
            None,
        )
        .unwrap();
        assert!(map_regions(&[r(0, 0x1000, 0)], vec![sock]).is_err());
    }
}
