//! Fuzz target `condition`: see `rolescope_fuzz::checks::condition` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rolescope_fuzz::checks::condition(data));
