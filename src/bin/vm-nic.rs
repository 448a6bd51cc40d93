//! The `vm-nic` command line.

fn main() {
    println!("vm-nic {}", env!("CARGO_PKG_VERSION"));
}
