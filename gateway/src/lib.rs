#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

pub mod wasm_host;

pub use wasm_host::{Config, Decision, Error, ErrorKind, Handle, Host, Query, Revision, WasmEngine};
