//! `eval --batch`, delegation and invariant questions, several `--policy` paths, and
//! `--principal` finding a suite's fixtures.

use crate::{POLICY, SUITE, fixture, rolescope, run};

#[test]
fn batch_answers_one_line_per_request_in_order_and_keeps_going_past_a_bad_line() {
    let dir = fixture(&[("demo/roles.yaml", POLICY)]);
    let lines = [
        r#"{"principal":"ana","action":"delete","resource":{"kind":"device","id":"d1","scope":"msp:acme/org:o1"}}"#,
        r#"{"principal":"ana","action":"delete","resource":{"kind":"device""#,
        "",
        r#"{"principal":{"id":"x","assignments":[{"role":"auditor","scope":"msp:acme/org:o1"}]},"action":"delete","resource":{"kind":"device","id":"d1","scope":"msp:acme/org:o1"}}"#,
    ];
    let out = rolescope(dir.path())
        .args(["eval", "--policy", "demo", "--batch", "-"])
        .write_stdin(lines.join("\n"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let answers: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert_eq!(answers.len(), 3, "{text}");
    assert_eq!(answers[0]["allowed"], true);
    assert_eq!(answers[1]["line"], 2);
    assert!(answers[1]["error"].as_str().is_some_and(|e| e.contains("not a request")), "{}", answers[1]);
    assert_eq!(answers[2]["allowed"], false);
    assert_eq!(answers[2]["reason"], "no_matching_grant");
    assert!(String::from_utf8(out.stderr).expect("utf-8").contains("1 line(s)"));
}

#[test]
fn eval_and_explain_ask_delegation_and_invariant_questions() {
    let principals = "- { id: ana, assignments: [{ role: admin, scope: \"msp:acme\", tenants: all }] }\n- { id: tom, status: suspended, assignments: [{ role: admin, scope: \"msp:globex\", tenants: all }] }\n";
    let dir = fixture(&[("demo/roles.yaml", POLICY), ("staff.yaml", principals)]);
    let r = run(
        dir.path(),
        &["explain", "--policy", "demo", "--principal", "ana", "--assign", "technician@msp:acme/org:o1"],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.starts_with("DENY (no_delegation_rule)"), "{}", r.stdout);
    let r = run(dir.path(), &["eval", "--policy", "demo", "--principal", "ana", "--assign", "ghost@msp:acme"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v["reason"], "unknown_role");
    let r = run(dir.path(), &["eval", "--policy", "demo", "--invariants", "staff.yaml"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v["violations"][0]["scope"], "msp:globex");
    let r = run(dir.path(), &["explain", "--policy", "demo", "--invariants", "staff.yaml"]);
    assert!(r.stdout.contains("violated invariant `admin_remains` at `msp:globex`: 0 of 1 required"), "{}", r.stdout);
}

#[test]
fn several_policy_paths_compile_together_and_principal_finds_suite_fixtures() {
    let overlay =
        "roles:\n  night_shift:\n    held_at: [org]\n    grants: [{ resources: [device], actions: [update] }]\n";
    let dir =
        fixture(&[("demo/roles.yaml", POLICY), ("demo/basics_test.yaml", SUITE), ("overlay/night.yaml", overlay)]);
    let nurse = r#"{"id":"n","assignments":[{"role":"night_shift","scope":"msp:acme/org:o1"}]}"#;
    let ask = ["--action", "update", "--kind", "device", "--scope", "msp:acme/org:o1", "--resource-id", "d1"];
    let alone = run(dir.path(), &[&["eval", "--policy", "demo", "--principal-json", nurse][..], &ask[..]].concat());
    assert!(alone.stdout.contains("\"reason\": \"out_of_scope\""), "{}", alone.stdout);
    let both = run(
        dir.path(),
        &[&["eval", "--policy", "demo", "--policy", "overlay", "--principal-json", nurse][..], &ask[..]].concat(),
    );
    assert!(both.stdout.contains("\"allowed\": true"), "{}{}", both.stdout, both.stderr);
    // `tom` is no principal filed with the policy: a fixture of demo/basics_test.yaml
    let tom = run(dir.path(), &[&["eval", "--policy", "demo", "--principal", "tom"][..], &ask[..]].concat());
    assert_eq!(tom.code, 0, "{}{}", tom.stdout, tom.stderr);
    assert!(tom.stdout.contains("\"reason\": \"condition_false\""), "{}", tom.stdout);
    let typo = run(dir.path(), &[&["eval", "--policy", "demo", "--principal", "tomm"][..], &ask[..]].concat());
    assert_eq!(typo.code, 0, "a deny is a value");
    assert!(typo.stdout.contains("\"reason\": \"unknown_principal\""), "{}", typo.stdout);
    assert!(typo.stderr.contains("did you mean `tom`?"), "{}", typo.stderr);
}

#[test]
fn an_overlay_extends_a_kind_with_actions_and_attributes() {
    let overlay = "resources:\n  device:\n    extend: true\n    actions: [reboot]\n    attributes: { firmware: string }\nroles:\n  rebooter:\n    held_at: [org]\n    grants: [{ resources: [device], actions: [reboot], when: resource.firmware == \"v2\" }]\n";
    let dir = fixture(&[("demo/roles.yaml", POLICY), ("overlay/reboot.yaml", overlay)]);
    let who = r#"{"id":"r","assignments":[{"role":"rebooter","scope":"msp:acme/org:o1"}]}"#;
    let ask = |policies: &[&str], firmware: &str| {
        let mut args = vec!["eval"];
        for p in policies {
            args.extend(["--policy", p]);
        }
        args.extend(["--principal-json", who, "--action", "reboot", "--kind", "device", "--scope", "msp:acme/org:o1"]);
        args.extend(["--resource-id", "d1", "--resource-attr", firmware]);
        run(dir.path(), &args)
    };
    let v2 = ask(&["demo", "overlay"], "firmware=v2");
    assert!(v2.stdout.contains("\"allowed\": true"), "{}{}", v2.stdout, v2.stderr);
    // the kind keeps what it had: its own actions and attributes still decide as before
    let view = run(
        dir.path(),
        &[
            "eval",
            "--policy",
            "demo",
            "--policy",
            "overlay",
            "--principal",
            "ana",
            "--action",
            "delete",
            "--kind",
            "device",
            "--scope",
            "msp:acme/org:o1",
        ],
    );
    assert!(view.stdout.contains("\"allowed\": true"), "{}{}", view.stdout, view.stderr);
    let v1 = ask(&["demo", "overlay"], "firmware=v1");
    assert!(v1.stdout.contains("\"reason\": \"condition_false\""), "{}", v1.stdout);
    // without the overlay the action does not exist
    let base = run(
        dir.path(),
        &[
            "eval",
            "--policy",
            "demo",
            "--principal",
            "ana",
            "--action",
            "reboot",
            "--kind",
            "device",
            "--scope",
            "msp:acme/org:o1",
        ],
    );
    assert!(base.stdout.contains("\"reason\": \"unknown_action\""), "{}", base.stdout);
}
