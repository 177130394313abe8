//! `rolescope eval` and `rolescope explain`.

use std::io::Write as _;

use crate::{POLICY, fixture, rolescope, run};

const TOM: &str = r#"{"id": "tom", "assignments": [{"role": "technician", "scope": "msp:acme/org:o1"}]}"#;

fn flags<'a>(action: &'a str, created_by: &'a str) -> Vec<&'a str> {
    vec![
        "--policy",
        "demo",
        "--principal-json",
        TOM,
        "--action",
        action,
        "--kind",
        "device",
        "--scope",
        "msp:acme/org:o1",
        "--resource-id",
        "d2",
        "--resource-attr",
        created_by,
        "--context",
        "channel=web",
    ]
}

#[test]
fn eval_prints_the_decision_report_as_json() {
    let dir = fixture(&[("demo/roles.yaml", POLICY)]);
    let mut args = vec!["eval"];
    args.extend(flags("update", "created_by=tom"));
    let r = run(dir.path(), &args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["allowed"], true);
    assert_eq!(v["reason"], "allowed");
    assert_eq!(v["matched"][0]["role"], "technician");
    assert_eq!(v["matched"][0]["source"], "demo/roles.yaml:23:9");
    assert!(v["revision"].as_str().unwrap().starts_with("sha256:"));
}

#[test]
fn a_deny_exits_0_unless_exit_code_is_asked_for() {
    let dir = fixture(&[("demo/roles.yaml", POLICY)]);
    let mut args = vec!["eval"];
    args.extend(flags("update", "created_by=zoe"));
    let r = run(dir.path(), &args);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("\"reason\": \"condition_false\""), "{}", r.stdout);
    args.push("--exit-code");
    assert_eq!(run(dir.path(), &args).code, 5);
    let mut allowed = vec!["eval", "--exit-code"];
    allowed.extend(flags("view", "created_by=zoe"));
    assert_eq!(run(dir.path(), &allowed).code, 0);
}

#[test]
fn a_principal_filed_with_the_policy_is_named_by_id() {
    let dir = fixture(&[("demo/roles.yaml", POLICY)]);
    let r = run(
        dir.path(),
        &[
            "eval",
            "--policy",
            "demo",
            "--principal",
            "ana",
            "--action",
            "delete",
            "--kind",
            "device",
            "--scope",
            "msp:acme/org:o9",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("\"allowed\": true"), "{}", r.stdout);
    let unknown = run(
        dir.path(),
        &[
            "eval",
            "--policy",
            "demo",
            "--principal",
            "zed",
            "--action",
            "view",
            "--kind",
            "device",
            "--scope",
            "msp:acme/org:o1",
        ],
    );
    assert!(unknown.stdout.contains("\"reason\": \"unknown_principal\""), "{}", unknown.stdout);
}

#[test]
fn requests_come_from_files_or_stdin_with_flags_on_top() {
    let request = "principal: ana\naction: view\nresource: { kind: device, id: d1, scope: \"msp:acme/org:o1\" }\ncontext: { channel: web }\n";
    let dir = fixture(&[("demo/roles.yaml", POLICY), ("req.yaml", request)]);
    let r = run(dir.path(), &["eval", "--policy", "demo", "req.yaml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("\"allowed\": true"), "{}", r.stdout);
    // A flag overrides the file: an unknown action.
    let r = run(dir.path(), &["eval", "--policy", "demo", "req.yaml", "--action", "reboot"]);
    assert!(r.stdout.contains("\"reason\": \"unknown_action\""), "{}", r.stdout);
    let out = rolescope(dir.path())
        .args(["eval", "--policy", "demo", "-"])
        .write_stdin(
            r#"{"principal": "ana", "action": "view", "resource": {"kind": "device", "scope": "msp:acme/org:o1"}}"#,
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"allowed\": true"));
}

#[test]
fn an_incomplete_or_malformed_request_is_a_usage_error() {
    let dir = fixture(&[("demo/roles.yaml", POLICY), ("bad.yaml", "principal: [\n")]);
    let r = run(dir.path(), &["eval", "--policy", "demo", "--principal", "ana"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("the request is incomplete: give --action, --kind, --scope"), "{}", r.stderr);
    assert_eq!(run(dir.path(), &["eval", "--policy", "demo", "bad.yaml"]).code, 2);
    assert_eq!(run(dir.path(), &["eval", "--policy", "demo", "missing.yaml"]).code, 2);
    assert_eq!(
        run(
            dir.path(),
            &[
                "eval",
                "--policy",
                "nowhere",
                "--principal",
                "a",
                "--action",
                "view",
                "--kind",
                "device",
                "--scope",
                "msp:a"
            ]
        )
        .code,
        2
    );
    assert_eq!(
        run(
            dir.path(),
            &[
                "eval",
                "--policy",
                "demo",
                "--principal-json",
                "{nope",
                "--action",
                "view",
                "--kind",
                "device",
                "--scope",
                "msp:a"
            ]
        )
        .code,
        2
    );
    assert_eq!(
        run(
            dir.path(),
            &[
                "eval",
                "--policy",
                "demo",
                "--principal",
                "a",
                "--context",
                "novalue",
                "--action",
                "view",
                "--kind",
                "device",
                "--scope",
                "msp:a"
            ]
        )
        .code,
        2
    );
    assert_eq!(
        run(dir.path(), &["eval", "--policy", "demo", "--principal", "a", "--principal-json", "{}"]).code,
        2,
        "conflicting flags"
    );
}

#[test]
fn an_invalid_policy_exits_3_with_its_diagnostics() {
    let dir = fixture(&[("demo/roles.yaml", &POLICY.replace("[view, update, delete]", "[view, update, delete"))]);
    let r = run(
        dir.path(),
        &[
            "explain",
            "--policy",
            "demo",
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
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("RS001"), "{}", r.stderr);
    assert_eq!(r.stdout, "");
}

#[test]
fn explain_shows_the_verdict_and_every_step_with_its_location() {
    let dir = fixture(&[("demo/roles.yaml", POLICY)]);
    let mut args = vec!["explain"];
    args.extend(flags("update", "created_by=zoe"));
    let r = run(dir.path(), &args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("DENY (condition_false)"), "{}", r.stdout);
    insta::assert_snapshot!("explain_condition_false", r.stdout);
    let mut args = vec!["explain"];
    args.extend(flags("delete", "created_by=tom"));
    args.extend(["--context", "channel=api"]);
    let r = run(dir.path(), &args);
    insta::assert_snapshot!("explain_explicit_deny", r.stdout);
}

#[test]
fn explain_json_is_the_explanation_as_data() {
    let dir = fixture(&[("demo/roles.yaml", POLICY)]);
    let mut args = vec!["explain", "--format", "json"];
    args.extend(flags("update", "created_by=tom"));
    let r = run(dir.path(), &args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["decision"]["allowed"], true);
    let steps = v["steps"].as_array().unwrap();
    assert!(steps.iter().any(|s| s["step"] == "assignment" && s["outcome"] == "covers"), "{steps:?}");
    assert!(steps.iter().any(|s| s["source"] == "demo/roles.yaml:23:9"), "{steps:?}");
}

#[test]
fn a_single_role_file_can_be_the_policy() {
    let dir = fixture(&[("demo/roles.yaml", POLICY)]);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rolescope"))
        .current_dir(dir.path())
        .args(["eval", "--policy", "demo/roles.yaml", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"principal: ana\naction: view\nresource: { kind: device, scope: \"msp:acme/org:o1\" }\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"allowed\": true"));
}
