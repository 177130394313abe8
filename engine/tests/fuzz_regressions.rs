//! The fuzz targets' checks, run natively on stable: every input under
//! `fuzz/regressions/<target>/` (minimized crashes found by `cargo fuzz`, kept so that they
//! stay fixed) and every committed seed under `fuzz/seeds/<target>/` goes through the same
//! function the fuzz target calls (`fuzz/src/checks.rs`, included here). The `wasm_abi`
//! target needs wasmtime; `scripts/fuzz.sh` replays its regressions.

#![expect(clippy::expect_used, reason = "test helpers fail loudly")]

#[path = "../../fuzz/src/checks.rs"]
pub mod checks;

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut files = Vec::new();
    for dir in ["regressions", "seeds"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join(target)) else { continue };
        files.extend(entries.map(|e| e.expect("a directory entry").path()).filter(|p| p.is_file()));
    }
    files.sort();
    files
}

/// Run `check` on every input of `target`; report every failing file at once.
fn replay(target: &str, check: fn(&[u8])) {
    let files = inputs(target);
    assert!(!files.is_empty(), "no seeds or regressions for `{target}` (run fuzz/make_seeds.py)");
    let failed: Vec<String> = files
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).expect("read a fuzz input");
            std::panic::catch_unwind(|| check(&data)).is_err()
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(failed.is_empty(), "{} of {} `{target}` inputs fail:\n{}", failed.len(), files.len(), failed.join("\n"));
}

#[test]
fn parse_policy() {
    replay("parse_policy", checks::parse_policy);
}

#[test]
fn condition() {
    replay("condition", checks::condition);
}

#[test]
fn http_route() {
    replay("http_route", checks::http_route);
}

#[test]
fn decide() {
    replay("decide", checks::decide);
}

/// The `http_route` check's superusers are allowed somewhere: its allow-side assertions run.
#[test]
fn http_route_superusers_are_allowed_on_seed_requests() {
    let files = inputs("http_route");
    for (policy, superuser) in checks::seed_policies().iter().zip(checks::superusers()) {
        let allowed = files
            .iter()
            .filter(|path| {
                let text = std::fs::read_to_string(path).expect("a text seed");
                let mut lines = text.split('\n');
                let (method, target) = (lines.next().unwrap_or(""), lines.next().unwrap_or(""));
                let req = rolescope_engine::HttpRequest { method, target, headers: &[] };
                policy.authorize_http(Some(superuser), &req).allowed()
            })
            .count();
        assert!(allowed >= 5, "policy `{}`: the superuser is allowed on {allowed} seed requests", policy.name());
    }
}
