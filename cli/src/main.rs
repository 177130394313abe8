//! The `rolescope` command line (being written).
fn main() {}
