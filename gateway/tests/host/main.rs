//! The wasmtime host of the engine module, through the public API only: the module is the
//! npm package's file, its decisions equal the native engine's, every failure denies, and a
//! bundle swap never stops decisions. One test binary; one module per concern.

mod fail_closed;
mod http;
mod identity;
mod module;
mod parity;
mod support;
mod swap;
