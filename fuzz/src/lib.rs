//! Shared code of the rolescope fuzz targets: the invariants (`checks`, also replayed by
//! `engine/tests/fuzz_regressions.rs`) and the plain-ABI driver of the wasm module (`abi`).

#[cfg(feature = "wasm")]
pub mod abi;
pub mod checks;
