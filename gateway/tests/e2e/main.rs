//! End-to-end tests over 127.0.0.1: the real `rolescope-gateway` binary in front of the real
//! demo upstream, with real RS256-signed tokens and bundles built from `policies/`. Every test
//! also checks the upstream's request log: nothing denied ever arrives. One test binary; one
//! module per concern.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test binary: its helpers fail the test by panicking"
)]

mod attacks;
mod authz;
mod bypass;
mod directory;
mod ext_authz;
mod framing;
mod matrix;
#[expect(dead_code, reason = "shared with the host tests, which use the rest of it")]
#[path = "../host/module.rs"]
mod module;
mod proxies;
mod readiness;
mod reload;
mod scale;
mod soak;
mod support;
mod tls;
