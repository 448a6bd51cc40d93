//! Shared pieces of the property tests: frame builders, checksum checks and the driver
//! sequences (transmit through descriptors, read a received frame back) for each model,
//! all through the fuzzing harness so that its oracles hold on every step.
#![allow(dead_code)]

#[path = "../security_support/mod.rs"]
mod security_support;
pub use security_support::*;

/// The Internet checksum sum of `data` added to `sum` (not folded).
pub fn csum(mut sum: u32, data: &[u8]) -> u32 {
    for c in data.chunks(2) {
        sum += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    sum
}

/// True when the folded sum is 0xffff (a buffer including its checksum verifies).
pub fn verifies(mut sum: u32) -> bool {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum == 0xffff
}

/// Ethernet + IPv4 (no options) + TCP (no options) header, 54 bytes, for `payload`
/// bytes, with sequence number `seq`; checksums left 0.
pub fn tcp_header(payload: usize, seq: u32) -> Vec<u8> {
    let mut f = vec![0u8; 54];
    f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    f[6..12].copy_from_slice(&[0x52, 0x54, 0, 0x12, 0x34, 0x56]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x45;
    f[16..18].copy_from_slice(&((40 + payload) as u16).to_be_bytes());
    f[18..20].copy_from_slice(&0x1234u16.to_be_bytes());
    f[22] = 64;
    f[23] = 6;
    f[26..30].copy_from_slice(&[10, 0, 2, 15]);
    f[30..34].copy_from_slice(&[10, 0, 2, 2]);
    f[34..36].copy_from_slice(&40000u16.to_be_bytes());
    f[36..38].copy_from_slice(&80u16.to_be_bytes());
    f[38..42].copy_from_slice(&seq.to_be_bytes());
    f[46] = 0x50;
    f[47] = 0x18; // PSH ACK
    f[48..50].copy_from_slice(&65535u16.to_be_bytes());
    f
}

/// Checks one TSO segment: IPv4 header checksum, IP total length (the frame may be padded
/// to 60 bytes), TCP checksum over the pseudo-header. Returns (sequence number, payload).
pub fn check_segment(seg: &[u8]) -> Result<(u32, Vec<u8>), String> {
    if seg.len() < 54 || seg[12..14] != [0x08, 0x00] || seg[14] != 0x45 {
        return Err(format!(
            "not an Ethernet/IPv4/TCP frame: {} bytes",
            seg.len()
        ));
    }
    if !verifies(csum(0, &seg[14..34])) {
        return Err("IPv4 header checksum".into());
    }
    let total = u16::from_be_bytes([seg[16], seg[17]]) as usize;
    // A frame shorter than the Ethernet minimum may be padded to 60 bytes (e1000 TCTL.PSP).
    let padded = 14 + total < 60 && seg.len() == 60;
    if total < 40 || (seg.len() != 14 + total && !padded) {
        return Err(format!("IP total length {total}, frame {}", seg.len()));
    }
    let tcp = &seg[34..14 + total];
    let pseudo = csum(0, &seg[26..34]) + 6 + tcp.len() as u32;
    if !verifies(csum(pseudo, tcp)) {
        return Err("TCP checksum".into());
    }
    let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
    Ok((seq, tcp[20..].to_vec()))
}
