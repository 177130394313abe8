//! Fuzz target `wasm_abi`: arbitrary bytes into the plain ABI exports of the engine's wasm
//! module, run by wasmtime as the gateway runs it; see `rolescope_fuzz::abi::run`.
#![no_main]

libfuzzer_sys::fuzz_target!(init: rolescope_fuzz::abi::init(), |data: &[u8]| rolescope_fuzz::abi::run(data));
