//! Fuzz target `decide`: see `rolescope_fuzz::checks::decide` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rolescope_fuzz::checks::decide(data));
