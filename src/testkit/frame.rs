//! Building Ethernet frames and describing how two frames differ.

use vm_nic_backends::MacAddr;

/// An Ethernet II frame: `dst`, `src`, `ethertype`, then `payload` (no padding, no FCS:
/// the form backends carry).
///
/// ```
/// use vm_nic::backends::MacAddr;
/// use vm_nic::testkit::frame::ethernet;
///
/// let f = ethernet(MacAddr::BROADCAST, MacAddr::QEMU_DEFAULT, 0x88b5, b"hi");
/// assert_eq!(f.len(), 16);
/// assert_eq!(&f[12..14], &[0x88, 0xb5]);
/// ```
pub fn ethernet(dst: MacAddr, src: MacAddr, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst.bytes());
    f.extend_from_slice(&src.bytes());
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A test frame of `len` bytes (at least 14) from `src` to `dst` with the local
/// experimental ethertype 0x88b5, whose payload bytes are `tag, tag+1, ...`: frames with
/// different tags differ everywhere past the header, so a diff shows which one arrived.
pub fn tagged(dst: MacAddr, src: MacAddr, tag: u8, len: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..len.max(14) - 14)
        .map(|i| tag.wrapping_add(i as u8))
        .collect();
    ethernet(dst, src, 0x88b5, &payload)
}

/// Up to 16 bytes of `data` from `at`, in hex.
fn hex_window(data: &[u8], at: usize) -> String {
    let end = data.len().min(at + 16);
    let start = at.min(end);
    data[start..end]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `None` when `expected == actual`; otherwise a description of the difference: the
/// lengths, the first differing offset and 16 bytes of each from there.
///
/// ```
/// use vm_nic::testkit::frame::diff;
///
/// assert_eq!(diff(b"abc", b"abc"), None);
/// let d = diff(b"abcd", b"abXd").unwrap();
/// assert!(d.contains("first difference at byte 2"), "{d}");
/// ```
pub fn diff(expected: &[u8], actual: &[u8]) -> Option<String> {
    if expected == actual {
        return None;
    }
    let first = expected
        .iter()
        .zip(actual)
        .position(|(a, b)| a != b)
        .unwrap_or(expected.len().min(actual.len()));
    let what = match first {
        0..=5 => " (destination MAC)",
        6..=11 => " (source MAC)",
        12..=13 => " (ethertype)",
        _ => " (payload)",
    };
    Some(format!(
        "expected {} bytes, got {}; first difference at byte {first}{what}\n  \
         expected[{first}..]: {}\n  actual[{first}..]:   {}",
        expected.len(),
        actual.len(),
        hex_window(expected, first),
        hex_window(actual, first),
    ))
}
