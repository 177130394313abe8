//! The wasmtime host of the engine module: the very `rolescope_wasm_bg.wasm` the npm package
//! ships, driven through its plain ABI (`bindings/ABI.md`).
//!
//! - [`WasmEngine`] compiles the module once (`Engine`, `Module`, `InstancePre`), runs the
//!   epoch ticker and holds the current policy bundle (swapped atomically by
//!   [`WasmEngine::load`]).
//! - [`Host`] owns one long-lived instance (a `Store` is not `Sync`: one host per worker
//!   thread; [`WasmEngine::with_host`] keeps one per thread for you). It loads the current
//!   bundle into a fresh instance when the engine's bundle changes, and replaces its instance
//!   after any guest failure.
//!
//! Fail closed: every error is a deny. A trap, a timeout, an out-of-memory guest or an answer
//! out of contract discards the instance ([`Error::is_guest_failure`]); the next call runs on
//! a fresh instance with the bundle loaded again.

mod error;
mod guest;
mod host;
mod http;
mod names;
mod ticker;

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use rolescope_engine::{HttpRequest, Principal, Reason};
use sha2::{Digest, Sha256};
use wasmtime::{InstancePre, Linker, Module};

pub use self::error::{Error, ErrorKind};
use self::guest::{ABI_VERSION, Guest, Limits};
pub use self::host::{Handle, Host, Query};
pub use self::http::HttpVerdict;
pub(crate) use self::http::default_deny;
use self::ticker::Ticker;

/// Limits and deadlines of the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    memory_limit: usize,
    call_deadline: Duration,
    load_deadline: Duration,
    tick: Duration,
}

impl Default for Config {
    /// 64 MiB of linear memory per instance, 1 s per decision call, 5 s per bundle load,
    /// an epoch tick every millisecond.
    fn default() -> Self {
        Self {
            memory_limit: 64 << 20,
            // A decision takes microseconds; the deadline bounds a runaway guest. It is wall-clock
            // time (epochs), so it sits far above scheduling noise: at 25 ms a starved worker
            // thread on a loaded machine turned good requests into 503s.
            call_deadline: Duration::from_secs(1),
            load_deadline: Duration::from_secs(5),
            tick: Duration::from_millis(1),
        }
    }
}

impl Config {
    /// Most linear memory one instance may use, in bytes (the module starts with about 1.1 MiB).
    pub fn memory_limit(mut self, bytes: usize) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// Deadline of one call (principal, decision, report). Zero: every call times out.
    pub fn call_deadline(mut self, deadline: Duration) -> Self {
        self.call_deadline = deadline;
        self
    }

    /// Deadline of loading a bundle into an instance (it compiles the policy).
    pub fn load_deadline(mut self, deadline: Duration) -> Self {
        self.load_deadline = deadline;
        self
    }

    /// Period of the epoch ticker (at least 100 µs): deadlines are counted in ticks, so a call
    /// is interrupted between its deadline and one tick later.
    pub fn tick(mut self, period: Duration) -> Self {
        self.tick = period.max(Duration::from_micros(100));
        self
    }

    /// A deadline in ticks: enough whole ticks to cover it, plus one for the tick in progress;
    /// at most [`Config::MAX_TICKS`] (wasmtime adds it to the current epoch).
    fn ticks(&self, deadline: Duration) -> u64 {
        if deadline.is_zero() {
            return 0;
        }
        let tick = self.tick.as_nanos().max(1);
        u64::try_from(deadline.as_nanos().div_ceil(tick)).unwrap_or(u64::MAX).saturating_add(1).min(Self::MAX_TICKS)
    }

    /// A deadline that never comes in practice (2^62 ticks), and cannot overflow the epoch.
    const MAX_TICKS: u64 = 1 << 62;
}

/// The revision of a loaded policy bundle (its content hash, from the engine).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Revision(Arc<str>);

impl Revision {
    /// The revision string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A decision made by the guest: allowed or not, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Decision {
    allowed: bool,
    reason: Reason,
}

impl Decision {
    pub(crate) fn new(allowed: bool, reason: Reason) -> Self {
        Self { allowed, reason }
    }

    /// Whether the action is allowed.
    pub fn allowed(&self) -> bool {
        self.allowed
    }

    /// The reason code.
    pub fn reason(&self) -> Reason {
        self.reason
    }
}

/// A bundle the engine accepted.
struct Bundle {
    /// Sequence number of the load (hosts reload when theirs differs).
    seq: u64,
    json: Box<[u8]>,
    revision: Revision,
}

/// The module compiled once, with its ticker: shared by [`WasmEngine::reconfigured`] engines.
struct Compiled {
    engine: wasmtime::Engine,
    pre: InstancePre<Limits>,
    digest: String,
    tick: Duration,
    _ticker: Ticker,
}

/// What every host of one engine shares.
struct Shared {
    compiled: Arc<Compiled>,
    config: Config,
    call_ticks: u64,
    load_ticks: u64,
    bundle: ArcSwapOption<Bundle>,
    loads: AtomicU64,
    instances: AtomicU64,
}

impl Shared {
    fn new(compiled: Arc<Compiled>, mut config: Config) -> Self {
        config.tick = compiled.tick;
        Self {
            compiled,
            call_ticks: config.ticks(config.call_deadline),
            load_ticks: config.ticks(config.load_deadline),
            config,
            bundle: ArcSwapOption::empty(),
            loads: AtomicU64::new(0),
            instances: AtomicU64::new(0),
        }
    }

    /// A fresh instance (no code runs).
    fn instantiate(&self) -> Result<Guest, Error> {
        self.instances.fetch_add(1, Ordering::Relaxed);
        Guest::new(&self.compiled.engine, &self.compiled.pre, self.config.memory_limit)
    }

    /// Unique id of one (instance, bundle) pairing; principal handles carry it.
    fn next_generation(&self) -> u64 {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }
}

/// The engine module compiled once, its epoch ticker, and the current policy bundle. Cheap to
/// clone; `Send + Sync`.
#[derive(Clone)]
pub struct WasmEngine {
    shared: Arc<Shared>,
    /// Held by engine handles only: thread-local hosts of an engine nobody holds are dropped.
    owner: Arc<()>,
}

impl fmt::Debug for WasmEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WasmEngine")
            .field("module_sha256", &self.shared.compiled.digest)
            .field("revision", &self.revision())
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

thread_local! {
    static HOSTS: RefCell<Vec<Host>> = const { RefCell::new(Vec::new()) };
}

impl WasmEngine {
    /// Compile the module (the wasm-bindgen `_bg.wasm`), define its JS glue imports as traps,
    /// start the epoch ticker and check the plain ABI on a probe instance.
    pub fn new(wasm: &[u8], config: Config) -> Result<Self, Error> {
        let module_err = |e: wasmtime::Error| Error::new(ErrorKind::Module, format!("{e:#}"));
        let mut cfg = wasmtime::Config::new();
        cfg.epoch_interruption(true);
        let engine = wasmtime::Engine::new(&cfg).map_err(module_err)?;
        let module = Module::new(&engine, wasm).map_err(module_err)?;
        let mut linker: Linker<Limits> = Linker::new(&engine);
        // The `__wbg_*` / `__wbindgen_*` imports serve the JS API only; the plain ABI never
        // calls them, so each is a function that traps if it ever is.
        linker.define_unknown_imports_as_traps(&module).map_err(module_err)?;
        let pre = linker.instantiate_pre(&module).map_err(module_err)?;
        let digest = Sha256::digest(wasm).iter().map(|b| format!("{b:02x}")).collect();
        let ticker = Ticker::start(engine.clone(), config.tick)?;
        let compiled = Compiled { engine, pre, digest, tick: config.tick, _ticker: ticker };
        Self::start(Shared::new(Arc::new(compiled), config))
    }

    /// Probe the ABI on a fresh instance (which also checks that one fits the memory limit).
    fn start(shared: Shared) -> Result<Self, Error> {
        let version = shared.instantiate()?.abi_version(shared.load_ticks)?;
        if version != ABI_VERSION {
            return Err(Error::new(
                ErrorKind::Module,
                format!("plain ABI version {version}; this host speaks {ABI_VERSION}"),
            ));
        }
        Ok(Self { shared: Arc::new(shared), owner: Arc::new(()) })
    }

    /// Another engine over the same compiled module and epoch ticker, with other limits and
    /// deadlines (the tick period stays this engine's) and its own bundle slot (empty).
    pub fn reconfigured(&self, config: Config) -> Result<Self, Error> {
        Self::start(Shared::new(Arc::clone(&self.shared.compiled), config))
    }

    /// SHA-256 (lowercase hex) of the module bytes this engine runs.
    pub fn module_sha256(&self) -> &str {
        &self.shared.compiled.digest
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Load a policy bundle (`rolescope build` output): checked on a fresh instance, then
    /// swapped in atomically. Decisions never wait for it; each host loads the new bundle
    /// into a fresh instance at its next [`Host::principal`] or [`Host::check_json`]. A
    /// rejected bundle leaves the previous one in force.
    pub fn load(&self, bundle_json: &str) -> Result<Revision, Error> {
        let mut guest = self.shared.instantiate()?;
        let revision = guest.load_bundle(bundle_json.as_bytes(), self.shared.load_ticks)?;
        let revision = Revision(revision.into());
        let seq = self.shared.loads.fetch_add(1, Ordering::AcqRel).wrapping_add(1);
        let bundle = Bundle { seq, json: bundle_json.as_bytes().into(), revision: revision.clone() };
        self.shared.bundle.store(Some(Arc::new(bundle)));
        Ok(revision)
    }

    /// The revision of the bundle in force, if any.
    pub fn revision(&self) -> Option<Revision> {
        self.shared.bundle.load().as_ref().map(|b| b.revision.clone())
    }

    /// How many instances this engine has started (probes and replacements included): a
    /// metric of guest failures and bundle swaps.
    pub fn instances_started(&self) -> u64 {
        self.shared.instances.load(Ordering::Relaxed)
    }

    /// A new host with its own instance (created at its first call). Keep one per thread.
    pub fn host(&self) -> Host {
        Host::new(Arc::clone(&self.shared), Arc::downgrade(&self.owner))
    }

    /// Decide an HTTP request on this thread's host ([`WasmEngine::with_host`]): prepare
    /// `principal` (`None`: an anonymous caller, public routes only), decide with the policy's
    /// route table ([`Host::authorize`]) and release the principal. The current bundle is
    /// used; the verdict names its revision. An `Err` is a deny.
    ///
    /// This prepares the principal for every request; a caller that sees the same principal
    /// again and again may keep [`Handle`]s on its own [`Host`] instead.
    pub fn authorize(&self, principal: Option<&Principal>, req: &HttpRequest<'_>) -> Result<HttpVerdict, Error> {
        self.with_host(|host| match principal {
            None => host.authorize(None, req),
            Some(p) => {
                let handle = host.principal(p)?;
                let verdict = host.authorize(Some(&handle), req);
                host.release(handle);
                verdict
            }
        })
    }

    /// Run `f` on this thread's host of this engine (created on first use and kept for the
    /// thread's life, or until every handle of this engine is dropped).
    pub fn with_host<R>(&self, f: impl FnOnce(&mut Host) -> R) -> R {
        let taken = HOSTS
            .try_with(|cell| {
                let mut hosts = cell.try_borrow_mut().ok()?;
                hosts.retain(|h| h.owner().strong_count() > 0);
                let i = hosts.iter().position(|h| h.belongs_to(&self.shared))?;
                Some(hosts.swap_remove(i))
            })
            .ok()
            .flatten();
        let mut host = taken.unwrap_or_else(|| self.host());
        let out = f(&mut host);
        // A nested call for the same engine made its own host; keep one.
        let _ = HOSTS.try_with(|cell| {
            if let Ok(mut hosts) = cell.try_borrow_mut()
                && !hosts.iter().any(|h| h.belongs_to(&self.shared))
            {
                hosts.push(host);
            }
        });
        out
    }
}

/// For [`Host`]: identity of its engine.
fn same(a: &Arc<Shared>, b: &Arc<Shared>) -> bool {
    Arc::ptr_eq(a, b)
}

/// For [`Host`]: the owner token type.
type Owner = Weak<()>;

// Engines are shared across threads; a host moves to (but is never shared between) threads.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    const fn send<T: Send>() {}
    send_sync::<WasmEngine>();
    send::<Host>();
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_round_up_to_whole_ticks_plus_the_one_in_progress() {
        let c = Config::default();
        assert_eq!(c.ticks(Duration::ZERO), 0);
        assert_eq!(c.ticks(Duration::from_micros(1)), 2);
        assert_eq!(c.ticks(Duration::from_millis(1)), 2);
        assert_eq!(c.ticks(Duration::from_micros(1_001)), 3);
        assert_eq!(c.ticks(Duration::from_millis(25)), 26);
        assert_eq!(c.clone().tick(Duration::ZERO).ticks(Duration::from_millis(1)), 11);
        assert_eq!(c.ticks(Duration::MAX), Config::MAX_TICKS);
    }
}
