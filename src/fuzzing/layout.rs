//! The guest RAM map the harness uses.
//!
//! Guest RAM is [`RAM_SIZE`] bytes at guest physical address 0, made of two
//! [`REGION_SIZE`] regions back to back, so that DMA crossing the boundary at
//! [`REGION_SIZE`] exercises the models' handling of accesses spanning vm-memory regions.
//! Everything at or above [`RAM_SIZE`] is outside RAM (a master abort).
//!
//! The setup prologue ([`crate::fuzzing::Setup`]) programs the rings and buffers at the
//! addresses below; ops may put anything anywhere.

/// Size of one guest RAM region.
pub const REGION_SIZE: u64 = 0x2_0000;
/// Size of guest RAM (two regions).
pub const RAM_SIZE: u64 = 2 * REGION_SIZE;
/// Transmit descriptor ring (normal priority).
pub const TX_RING: u64 = 0x1000;
/// Second transmit ring (the RTL8139C+ high-priority queue).
pub const TX_RING_HIGH: u64 = 0x3000;
/// Receive descriptor ring.
pub const RX_RING: u64 = 0x2000;
/// Descriptors per ring the prologue programs (16 bytes each).
pub const RING_ENTRIES: u64 = 64;
/// Size of one descriptor in the models that have rings.
pub const DESCRIPTOR_SIZE: u64 = 16;
/// RTL8139 C-mode receive ring buffer (RBSTART): 8 KiB + 16 + room for a wrapped frame.
pub const RX_RING_BUFFER: u64 = 0x8000;
/// Transmit buffers: the RTL8139 C-mode TSAD0-3 point at `TX_BUFFERS + n * 0x800`.
pub const TX_BUFFERS: u64 = 0x1_0000;
/// Receive buffers: receive descriptor `n` points at `RX_BUFFERS + n * RX_BUFFER_SIZE`
/// (the last ones run up to the end of RAM).
pub const RX_BUFFERS: u64 = 0x2_0000;
/// Size of each receive buffer the prologue posts.
pub const RX_BUFFER_SIZE: u64 = 2048;
/// First I/O port the prologue assigns to an I/O BAR (BAR n at `IO_BASE + 0x100 * n`).
pub const IO_BASE: u64 = 0xc000;
/// First address the prologue assigns to a memory BAR (BAR n at `MMIO_BASE + n MiB`).
pub const MMIO_BASE: u64 = 0xfe00_0000;
