#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

mod server;
pub mod wasm_host;

pub use server::{ConfigError, Gateway, GatewayConfig, MintError, MintOptions, StartError, check_config, mint};
pub use wasm_host::{Config, Decision, Error, ErrorKind, Handle, Host, HttpVerdict, Query, Revision, WasmEngine};
