//! rolescope's evaluator as one WebAssembly module with two faces:
//!
//! - a JS API (wasm-bindgen; npm package `rolescope`): [`js::Policy`], [`js::validate`];
//! - a plain ABI of integer-only exports (`rs_*`) for non-JS hosts such as the gateway's
//!   wasmtime host, which never touches the JS glue imports: see [`abi`] and `ABI.md`.
//!
//! Only this crate knows JS. The engine stays pure; this crate converts.

pub mod abi;
pub mod js;
