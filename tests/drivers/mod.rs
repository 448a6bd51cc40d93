//! Small polling guest drivers written against `vm_nic::testkit`, shared by the driver
//! tests and the save/restore tests.

#![allow(dead_code)]

pub mod e1000;
pub mod ne2000;
pub mod rtl8139;
