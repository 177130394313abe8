//! `rolescope build`.

use crate::{POLICY, fixture, run};

#[test]
fn build_writes_a_bundle_that_eval_loads() {
    let dir = fixture(&[("demo/roles.yaml", POLICY)]);
    let r = run(dir.path(), &["build", "demo", "-o", "bundle.json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("built policy `demo` revision sha256:"), "{}", r.stdout);
    assert!(r.stdout.contains("1 file, 3 roles, 5 rules -> bundle.json"), "{}", r.stdout);
    let bundle: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("bundle.json")).unwrap()).unwrap();
    assert_eq!(bundle["format"], "rolescope-bundle/1");
    assert_eq!(bundle["policy"], "demo");
    assert_eq!(bundle["files"][0]["name"], "roles.yaml", "files are named relative to the policy folder");
    let e = run(
        dir.path(),
        &[
            "eval",
            "--policy",
            "bundle.json",
            "--principal",
            "ana",
            "--action",
            "view",
            "--kind",
            "device",
            "--scope",
            "msp:acme/org:o1",
        ],
    );
    assert_eq!(e.code, 0, "{}", e.stderr);
    assert!(e.stdout.contains("\"allowed\": true"), "{}", e.stdout);
    assert!(e.stdout.contains(bundle["revision"].as_str().unwrap()), "eval reports the bundle's revision");
}

#[test]
fn the_revision_does_not_depend_on_where_the_build_runs() {
    let dir = fixture(&[("a/b/demo/roles.yaml", POLICY)]);
    let top = run(dir.path(), &["build", "a/b/demo", "-o", "-"]);
    let inside = run(&dir.path().join("a/b/demo"), &["build", ".", "-o", "-"]);
    assert_eq!(top.code, 0, "{}", top.stderr);
    assert_eq!(top.stdout, inside.stdout);
    assert!(top.stderr.starts_with("built policy `demo`"), "the summary goes to stderr when the bundle goes to stdout");
}

#[test]
fn an_invalid_policy_is_not_built() {
    let dir = fixture(&[(
        "demo/roles.yaml",
        &POLICY.replace("includes", "x").replace("  auditor:\n", "  auditor:\n    includes: [ghost]\n"),
    )]);
    let r = run(dir.path(), &["build", "demo", "-o", "bundle.json"]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("demo/roles.yaml:32:"), "diagnostics name the file as the user sees it:\n{}", r.stderr);
    assert!(!dir.path().join("bundle.json").exists());
    assert_eq!(run(dir.path(), &["build", "nothing"]).code, 2, "-o is required");
    assert_eq!(run(dir.path(), &["build", ".", "-o", "x.json"]).code, 2, "no role files directly in .");
}
