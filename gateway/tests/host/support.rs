//! Shared fixtures: one compiled engine per process, the policy folders and their bundles.
#![expect(clippy::expect_used, clippy::panic, reason = "test helpers: a failure here is a test failure")]

use std::sync::OnceLock;

use rolescope_gateway::{Config, WasmEngine};
use rolescope_parity::Folder;

use crate::module;

/// The engine module compiled once (default config, no bundle). Tests derive engines with
/// their own limits and bundle slot from it ([`WasmEngine::reconfigured`]).
pub(crate) fn compiled() -> &'static WasmEngine {
    static ENGINE: OnceLock<WasmEngine> = OnceLock::new();
    ENGINE.get_or_init(|| WasmEngine::new(module::bytes(), Config::default()).expect("engine module compiles"))
}

/// A fresh engine (own bundle slot) with `config`.
pub(crate) fn engine(config: Config) -> WasmEngine {
    compiled().reconfigured(config).expect("engine")
}

/// Every policy folder under `policies/` and `tests/corpus/`, compiled natively, with bundles.
pub(crate) fn folders() -> &'static [Folder] {
    static FOLDERS: OnceLock<Vec<Folder>> = OnceLock::new();
    FOLDERS.get_or_init(|| rolescope_parity::folders(&module::workspace()).expect("policy folders"))
}

/// The folder `dir` (e.g. `policies/juniper-mist-msp`).
pub(crate) fn folder(dir: &str) -> &'static Folder {
    folders().iter().find(|f| f.dir == dir).unwrap_or_else(|| panic!("no folder {dir}"))
}

/// An engine with the folder's bundle loaded.
pub(crate) fn loaded(dir: &str, config: Config) -> WasmEngine {
    let e = engine(config);
    let rev = e.load(&folder(dir).bundle).expect("bundle loads");
    assert_eq!(rev.as_str(), folder(dir).policy.revision());
    e
}
