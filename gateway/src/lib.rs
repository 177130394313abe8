#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

mod server;
pub mod wasm_host;

pub use server::{
    ConfigError, DirectoryError, Gateway, GatewayConfig, MintError, MintOptions, PrincipalDirectory, StartError,
    TlsError, check_config, mint, sign_directory,
};
pub use wasm_host::{Config, Decision, Error, ErrorKind, Handle, Host, HttpVerdict, Query, Revision, WasmEngine};
