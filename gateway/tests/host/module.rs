//! Where the engine module comes from: `ROLESCOPE_WASM` when set (`cargo xtask wasm` writes
//! `target/wasm/rolescope.wasm`, the bytes of the npm package's `rolescope_wasm_bg.wasm`),
//! else built once from the current sources with cargo and wasm-bindgen (the xtask's steps
//! before `wasm-opt`) into `target/wasm/host-test/`. A file lock serializes builds across test
//! and bench processes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root.
pub(crate) fn workspace() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    dir.canonicalize().unwrap_or(dir)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target"))
}

/// The path of the module file (the npm package's `_bg.wasm`).
pub(crate) fn path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| match std::env::var_os("ROLESCOPE_WASM") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => build(),
    })
}

/// Whether the module is the xtask's (`ROLESCOPE_WASM`), not built here.
pub(crate) fn from_xtask() -> bool {
    std::env::var_os("ROLESCOPE_WASM").is_some_and(|p| !p.is_empty())
}

/// The module's bytes, read once.
#[expect(clippy::panic, reason = "a test helper: a failure here is a test failure")]
pub(crate) fn bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| std::fs::read(path()).unwrap_or_else(|e| panic!("{}: {e}", path().display())))
}

#[expect(clippy::panic, reason = "a test helper: a failure here is a test failure")]
fn run(cmd: &mut Command) {
    let status = cmd.status().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(status.success(), "{cmd:?} failed: {status}");
}

#[expect(clippy::expect_used, reason = "a test helper: a failure here is a test failure")]
fn build() -> PathBuf {
    let target = target_dir();
    let out = target.join("wasm/host-test");
    std::fs::create_dir_all(&out).expect("create target/wasm/host-test");
    let lock = std::fs::File::create(out.join(".build-lock")).expect("lock file");
    lock.lock().expect("lock target/wasm/host-test");
    // Always run cargo: it is a no-op when the module is up to date with the sources.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run(Command::new(cargo)
        .current_dir(workspace())
        .args(["build", "--quiet", "-p", "rolescope-wasm", "--target", "wasm32-unknown-unknown", "--profile", "wasm"])
        .env("CARGO_TARGET_DIR", &target));
    let raw = target.join("wasm32-unknown-unknown/wasm/rolescope_wasm.wasm");
    run(Command::new("wasm-bindgen").arg("--target").arg("web").arg("--out-dir").arg(&out).arg(&raw));
    out.join("rolescope_wasm_bg.wasm")
}
