//! The data-driven corpus: every folder under `policies/` and `tests/corpus/` holds role files
//! and `*_test.yaml` suites; each suite runs against the folder's policy and every case must
//! pass. The same files are the parity corpus for the wasm hosts.

#![expect(clippy::expect_used, reason = "test helpers fail loudly on unreadable fixtures")]

use std::fs;
use std::path::{Path, PathBuf};

use rolescope_engine::{CoverageTracker, Policy, Source};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Policy folders: direct subfolders of `policies/` and `tests/corpus/` that hold YAML files.
fn folders() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for base in ["policies", "tests/corpus"] {
        let Ok(rd) = fs::read_dir(root().join(base)) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() && p.file_name().is_some_and(|n| n != "schema") {
                out.push(p);
            }
        }
    }
    // `ROLESCOPE_CORPUS=policies/msp-panel` runs one folder only (while writing a policy).
    if let Ok(only) = std::env::var("ROLESCOPE_CORPUS") {
        out.retain(|p| p.ends_with(only.trim_end_matches('/')));
    }
    out.sort();
    out
}

fn is_suite(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with("_test.yaml") || n.ends_with("_test.yml") || n.ends_with("_test.json"))
}

fn is_policy_file(p: &Path) -> bool {
    let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
    matches!(ext, "yaml" | "yml" | "json") && !is_suite(p)
}

fn files(dir: &Path, pred: fn(&Path) -> bool) -> Vec<Source> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.is_file() && pred(p)).collect())
        .unwrap_or_default();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let name = p.strip_prefix(root()).unwrap_or(&p).display().to_string();
            let text = fs::read_to_string(&p).expect("policy files are readable");
            Source::new(name, text)
        })
        .collect()
}

#[test]
fn every_suite_passes() {
    let mut total = 0;
    let mut failures = Vec::new();
    let dirs = folders();
    assert!(!dirs.is_empty(), "no policy folders found");
    for dir in dirs {
        let sources = files(&dir, is_policy_file);
        let suites = files(&dir, is_suite);
        if sources.is_empty() {
            continue;
        }
        let policy = match Policy::compile(&sources) {
            Ok(p) => p,
            Err(e) => {
                let msgs: Vec<String> = e.diagnostics().iter().map(ToString::to_string).collect();
                panic!("{} does not compile:\n{}", dir.display(), msgs.join("\n"));
            }
        };
        assert!(!suites.is_empty(), "{} has no *_test.yaml suite", dir.display());
        let mut cov = CoverageTracker::new();
        for s in &suites {
            let (report, diags) = policy.run_suite(s, &mut cov);
            assert!(
                diags.is_empty(),
                "{}: {}",
                s.name(),
                diags.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
            );
            assert!(!report.cases.is_empty(), "{} has no cases", s.name());
            total += report.cases.len();
            for c in report.cases.iter().filter(|c| !c.passed) {
                failures.push(format!(
                    "{}: {} — {} {} {}: expected {}{}, got {} ({}): {}",
                    c.source,
                    c.name,
                    c.principal,
                    c.action,
                    c.resource,
                    c.expected,
                    c.expected_reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default(),
                    c.got,
                    c.reason,
                    c.explanation
                ));
            }
        }
        let cov = cov.report(&policy);
        println!(
            "{}: {} roles ({} covered), {} rules ({} covered), {:.1}%",
            dir.display(),
            cov.roles_total,
            cov.roles_covered,
            cov.rules_total,
            cov.rules_covered,
            cov.percent
        );
    }
    println!("{total} corpus cases");
    assert!(failures.is_empty(), "{} failing case(s):\n{}", failures.len(), failures.join("\n"));
}
