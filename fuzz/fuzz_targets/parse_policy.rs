//! Fuzz target `parse_policy`: see `rolescope_fuzz::checks::parse_policy` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rolescope_fuzz::checks::parse_policy(data));
