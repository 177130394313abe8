//! rolescope against its peers on the same scenarios: cedar-policy (entity hierarchy),
//! casbin (RBAC with domains), regorus (Rego), and rolescope's own wasmtime host.
//!
//! - [`scenario`]: the scenarios (a)-(d) and the growth sizes, as peer-neutral data;
//! - one adapter per engine with the same interface ([`Peer`]): built once from a
//!   [`scenario::Scenario`], each case prepared once, then run (answers as booleans);
//! - [`agree`]: the expected answers come from rolescope (native); every peer is checked
//!   against them on every case before anything is timed.
//!
//! The benchmarks are `benches/peers.rs`; `peers-report` turns criterion's results into the
//! report fragment (`native.md`, `native.json`, `growth.svg`).

#[cfg(feature = "engines")]
pub mod casbin_peer;
#[cfg(feature = "engines")]
pub mod cedar_peer;
#[cfg(feature = "engines")]
pub mod native;
#[cfg(feature = "engines")]
pub mod rego_peer;
pub mod scenario;

#[cfg(feature = "engines")]
pub use casbin_peer::Casbin;
#[cfg(feature = "engines")]
pub use cedar_peer::Cedar;
#[cfg(feature = "engines")]
pub use native::{Native, NativeStrings, Wasmtime};
#[cfg(feature = "engines")]
pub use rego_peer::Regorus;
use scenario::{Case, Scenario};

/// The engines' names in the benchmarks and the report ([`Peer::NAME`]).
pub mod names {
    /// rolescope, native, prepared principal and resource.
    pub const NATIVE: &str = "rolescope-native";
    /// rolescope, native, the resource prepared from strings per call.
    pub const FROM_STRINGS: &str = "rolescope-from-strings";
    /// rolescope through the gateway's wasmtime host.
    pub const WASMTIME: &str = "rolescope-wasmtime";
    /// cedar-policy.
    pub const CEDAR: &str = "cedar-policy";
    /// casbin.
    pub const CASBIN: &str = "casbin";
    /// regorus.
    pub const REGORUS: &str = "regorus";
}

/// Every failure of set-up, preparation or a decision call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// rolescope refused the policy or an input.
    #[error("rolescope: {0}")]
    Rolescope(String),
    /// The wasmtime host failed.
    #[error("rolescope wasmtime host: {0}")]
    Wasmtime(String),
    /// cedar-policy failed.
    #[error("cedar-policy: {0}")]
    Cedar(String),
    /// casbin failed.
    #[error("casbin: {0}")]
    Casbin(String),
    /// regorus failed.
    #[error("regorus: {0}")]
    Rego(String),
    /// A peer answered differently from rolescope.
    #[error("{0}")]
    Disagree(Box<Disagreement>),
}

/// A peer's answers that differ from rolescope's on one case.
#[derive(Debug, thiserror::Error)]
#[error(
    "{peer} disagrees with rolescope on scenario {scenario}, case `{case}` ({title}): expected {expected:?}, got {got:?}"
)]
pub struct Disagreement {
    /// Engine name.
    peer: &'static str,
    /// Scenario id.
    scenario: String,
    /// Case id.
    case: &'static str,
    /// Case title.
    title: String,
    /// rolescope's answers.
    expected: Vec<bool>,
    /// The peer's answers.
    got: Vec<bool>,
}

/// One engine under test: built once from a scenario (its own constructor), then each case
/// prepared once and run many times.
pub trait Peer {
    /// A case in the engine's own input form.
    type Prepared;
    /// The engine's name in the report.
    const NAME: &'static str;
    /// Turn a case into the engine's input form (not timed).
    fn prepare(&mut self, s: &Scenario, case: &Case) -> Result<Self::Prepared, Error>;
    /// Answer a prepared case into `out` (cleared first): one boolean per question, in the
    /// case's order (resource-major for batches).
    fn run(&mut self, p: &Self::Prepared, out: &mut Vec<bool>) -> Result<(), Error>;
}

/// rolescope's (native) answers to every case of `s`.
#[cfg(feature = "engines")]
pub fn expected(s: &Scenario) -> Result<Vec<Vec<bool>>, Error> {
    let mut native = Native::new(s)?;
    s.cases
        .iter()
        .map(|c| {
            let p = native.prepare(s, c)?;
            let mut out = Vec::new();
            native.run(&p, &mut out)?;
            Ok(out)
        })
        .collect()
}

/// Prepare every case of `s` for `peer` and check its answers against `expected` (from
/// [`expected`]): the prepared cases, in order, or the first disagreement.
pub fn agree<P: Peer>(peer: &mut P, s: &Scenario, expected: &[Vec<bool>]) -> Result<Vec<P::Prepared>, Error> {
    let mut prepared = Vec::with_capacity(s.cases.len());
    for (case, want) in s.cases.iter().zip(expected) {
        let p = peer.prepare(s, case)?;
        let mut got = Vec::new();
        peer.run(&p, &mut got)?;
        if &got != want || got.len() != case.work.answers() {
            return Err(Error::Disagree(Box::new(Disagreement {
                peer: P::NAME,
                scenario: s.id.clone(),
                case: case.id,
                title: case.title.clone(),
                expected: want.clone(),
                got,
            })));
        }
        prepared.push(p);
    }
    Ok(prepared)
}

/// Run a future that never waits on I/O or timers (casbin's set-up over a string adapter) to
/// completion on this thread.
#[cfg(feature = "engines")]
pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}
