//! The HTTP gateway in process, over loopback, through the public API only: configuration
//! errors, the status mapping, header hygiene, JWT verification, framing limits, hot reload and
//! draining. A recording upstream checks that nothing refused is ever forwarded.

#[path = "../host/module.rs"]
#[expect(dead_code, reason = "shared with the host tests, which use more of it")]
mod module;

mod config;
mod framing;
mod headers;
mod jwt;
mod records;
mod reload;
mod support;
