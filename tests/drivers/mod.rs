//! Small polling guest drivers written against `vm_nic::testkit`, shared by the driver
//! tests and the save/restore tests.

#![allow(dead_code)]

pub mod e1000;
pub mod ne2000;
pub mod rtl8139;

/// Checks a save/restore run: the driver received exactly `want` (in order) and the
/// device transmitted exactly `sent` (in order), with `what` naming the run.
pub fn assert_exactly_once(
    what: &str,
    got: &[Vec<u8>],
    want: &[Vec<u8>],
    wire: &[Vec<u8>],
    sent: &[Vec<u8>],
) {
    assert_eq!(got.len(), want.len(), "{what}: received frame count");
    assert!(
        got == want,
        "{what}: received frames out of order or altered"
    );
    assert_eq!(wire.len(), sent.len(), "{what}: transmitted frame count");
    assert!(
        wire == sent,
        "{what}: transmitted frames out of order or altered"
    );
}
