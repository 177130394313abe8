//! The tools `cargo xtask wasm` needs, installed idempotently from the package registries.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Context, Result, capture, cargo, done, fail, run, step};

const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Adds the wasm32 target to the toolchain of `rust-toolchain.toml` unless it is there.
pub(crate) fn ensure_wasm_target(root: &Path) -> Result<()> {
    let installed = Command::new("rustup").current_dir(root).args(["target", "list", "--installed"]).output();
    match installed {
        Ok(out) if String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == WASM_TARGET) => {
            println!("xtask: {WASM_TARGET} target: installed");
            Ok(())
        }
        Ok(_) => run(Command::new("rustup").current_dir(root).args(["target", "add", WASM_TARGET])),
        Err(_) => {
            println!("xtask: no rustup; assuming the toolchain has the {WASM_TARGET} target");
            Ok(())
        }
    }
}

/// The version `Cargo.lock` pins for `package` (exactly one version must be locked).
pub(crate) fn locked_version(root: &Path, package: &str) -> Result<String> {
    let lock = fs::read_to_string(root.join("Cargo.lock")).context("reading Cargo.lock")?;
    let want = format!("name = \"{package}\"");
    let mut versions = Vec::new();
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == want
            && let Some(v) = lines.next().and_then(|l| l.trim().strip_prefix("version = \""))
        {
            versions.push(v.trim_end_matches('"').to_owned());
        }
    }
    match versions.as_slice() {
        [v] => Ok(v.clone()),
        [] => Err(fail(format!("Cargo.lock has no `{package}` package"))),
        many => Err(fail(format!("Cargo.lock has several `{package}` versions: {}", many.join(", ")))),
    }
}

/// Cargo's bin folder (`$CARGO_HOME/bin`), where `cargo install` puts binaries.
fn cargo_bin() -> PathBuf {
    let cargo_home = std::env::var_os("CARGO_HOME").map(PathBuf::from).unwrap_or_else(|| {
        std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")).join(".cargo")
    });
    cargo_home.join("bin")
}

/// A `wasm-bindgen` whose version is exactly `version` (the lock's `wasm-bindgen`: the CLI and
/// the library must match). Uses the one on `PATH` or in `$CARGO_HOME/bin` when it matches,
/// else installs it with `cargo install` (`--locked` first; without it when the CLI's own
/// lockfile cannot be resolved from the registry).
pub(crate) fn ensure_wasm_bindgen(version: &str) -> Result<PathBuf> {
    let want = format!("wasm-bindgen {version}");
    let installed = cargo_bin().join("wasm-bindgen");
    for candidate in [PathBuf::from("wasm-bindgen"), installed.clone()] {
        let found = capture(&candidate, &["--version"]);
        if found.as_deref() == Some(want.as_str()) {
            println!("xtask: {want}: {}", candidate.display());
            return Ok(candidate);
        }
        if let Some(other) = found {
            println!("xtask: {} is `{other}`, not `{want}`", candidate.display());
        }
    }
    let t = step(format!("installing wasm-bindgen-cli {version}"));
    let install = |locked: bool| {
        let mut cmd = cargo();
        cmd.args(["install", "wasm-bindgen-cli", "--version", &format!("={version}"), "--force"]);
        if locked {
            cmd.arg("--locked");
        }
        run(&mut cmd)
    };
    if let Err(e) = install(true) {
        println!("xtask: {e}");
        println!("xtask: retrying without --locked (the CLI's lockfile may pin a crate the registry no longer serves)");
        install(false)?;
    }
    done(t);
    match capture(&installed, &["--version"]) {
        Some(v) if v == want => Ok(installed),
        other => Err(fail(format!("installed {} reports {other:?}, not `{want}`", installed.display()))),
    }
}

/// The pinned npm tools of `tools/package.json` (binaryen for `wasm-opt`, TypeScript for the
/// declaration checks), installed into `tools/node_modules` unless every pin is already there.
/// Returns the `wasm-opt` to run.
pub(crate) fn ensure_node_tools(root: &Path) -> Result<PathBuf> {
    let node = capture("node", &["--version"]).context("Node.js (`node`) is required but not on PATH")?;
    let major: u32 = node.trim_start_matches('v').split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0);
    if major < 18 {
        return Err(fail(format!("Node.js {node} is too old: 18 or later is required")));
    }
    let dir = root.join("tools");
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.join("package.json")).context("reading tools/package.json")?)
            .context("parsing tools/package.json")?;
    let pins = manifest
        .get("devDependencies")
        .and_then(|d| d.as_object())
        .context("tools/package.json: no devDependencies")?;
    let missing: Vec<String> = pins
        .iter()
        .filter(|(name, want)| installed_npm_version(&dir, name).as_deref() != want.as_str())
        .map(|(name, want)| format!("{name}@{}", want.as_str().unwrap_or("?")))
        .collect();
    if missing.is_empty() {
        println!("xtask: npm tools (tools/package.json): installed");
    } else {
        let t = step(format!("npm tools: {}", missing.join(", ")));
        let ci = dir.join("package-lock.json").is_file();
        run(Command::new("npm").current_dir(&dir).args([
            if ci { "ci" } else { "install" },
            "--no-audit",
            "--no-fund",
        ]))?;
        done(t);
    }
    let wasm_opt = dir.join("node_modules/.bin/wasm-opt");
    let version = capture(&wasm_opt, &["--version"]).context(format!("{} does not run", wasm_opt.display()))?;
    println!("xtask: {version}: {}", wasm_opt.display());
    Ok(wasm_opt)
}

fn installed_npm_version(dir: &Path, name: &str) -> Option<String> {
    let text = fs::read_to_string(dir.join("node_modules").join(name).join("package.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("version")?.as_str().map(str::to_owned)
}
