//! Fuzz target `http_route`: see `rolescope_fuzz::checks::http_route` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rolescope_fuzz::checks::http_route(data));
