//! The host's error: opaque, with a kind and `is_*()` predicates (callers never match on text).

use std::fmt;

/// What went wrong. Every kind is a **deny**: no error ever lets a request through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The module could not be compiled, or does not implement the plain ABI (version 2).
    Module,
    /// The module could not be instantiated (e.g. its initial memory exceeds the limit), or the
    /// epoch ticker could not be started.
    Instantiate,
    /// No policy bundle is loaded.
    NoPolicy,
    /// The bundle was rejected; the previous one stays loaded.
    InvalidBundle,
    /// The guest trapped (including a wasm-bindgen glue import called by mistake).
    Trap,
    /// The guest exceeded its call deadline (epoch interruption).
    Timeout,
    /// The guest tried to grow its memory past the limit.
    OutOfMemory,
    /// The guest answered out of contract: an unknown or negative code, an address outside its
    /// memory, a report that does not parse or contradicts the code.
    Protocol,
    /// The principal handle belongs to another instance or an older revision.
    StaleHandle,
    /// The input cannot be encoded for the guest (e.g. a field longer than the ABI allows).
    InvalidInput,
}

impl ErrorKind {
    fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Module => "engine module rejected",
            ErrorKind::Instantiate => "cannot instantiate the engine module",
            ErrorKind::NoPolicy => "no policy loaded",
            ErrorKind::InvalidBundle => "invalid policy bundle",
            ErrorKind::Trap => "engine instance trapped",
            ErrorKind::Timeout => "engine call exceeded its deadline",
            ErrorKind::OutOfMemory => "engine instance ran out of memory",
            ErrorKind::Protocol => "engine instance answered out of contract",
            ErrorKind::StaleHandle => "stale principal handle; prepare the principal again",
            ErrorKind::InvalidInput => "input cannot be passed to the engine",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error of the wasmtime host. Whatever its kind, the request it concerns is **denied**.
///
/// Guest failures ([`Error::is_guest_failure`]: trap, timeout, out of memory, out-of-contract
/// answer) also discard the instance; the next call runs on a fresh one with the current
/// bundle loaded again.
#[derive(Debug, thiserror::Error)]
#[error("{kind}{}", if detail.is_empty() { String::new() } else { format!(": {detail}") })]
pub struct Error {
    kind: ErrorKind,
    detail: String,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Self { kind, detail: detail.into() }
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// More about it (a trap message, the bundle's diagnostics as JSON, ...); may be empty.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The engine cannot answer right now (HTTP 503 at the gateway): every kind except a
    /// rejected bundle, a stale handle and an input that cannot be encoded.
    pub fn is_unavailable(&self) -> bool {
        !matches!(self.kind, ErrorKind::InvalidBundle | ErrorKind::StaleHandle | ErrorKind::InvalidInput)
    }

    /// The guest failed (trap, timeout, out of memory, out-of-contract answer) and its instance
    /// was discarded.
    pub fn is_guest_failure(&self) -> bool {
        matches!(self.kind, ErrorKind::Trap | ErrorKind::Timeout | ErrorKind::OutOfMemory | ErrorKind::Protocol)
    }

    /// The guest trapped.
    pub fn is_trap(&self) -> bool {
        self.kind == ErrorKind::Trap
    }

    /// The guest exceeded its call deadline.
    pub fn is_timeout(&self) -> bool {
        self.kind == ErrorKind::Timeout
    }

    /// The guest hit its memory limit.
    pub fn is_out_of_memory(&self) -> bool {
        self.kind == ErrorKind::OutOfMemory
    }

    /// No policy bundle is loaded.
    pub fn is_no_policy(&self) -> bool {
        self.kind == ErrorKind::NoPolicy
    }

    /// A bundle was rejected ([`Error::detail`] holds the diagnostics as JSON).
    pub fn is_invalid_bundle(&self) -> bool {
        self.kind == ErrorKind::InvalidBundle
    }

    /// The principal handle is stale: prepare the principal again.
    pub fn is_stale_handle(&self) -> bool {
        self.kind == ErrorKind::StaleHandle
    }

    /// The input cannot be passed to the engine as given.
    pub fn is_invalid_input(&self) -> bool {
        self.kind == ErrorKind::InvalidInput
    }
}
