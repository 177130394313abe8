//! `rolescope check`.

use crate::{POLICY, fixture, run};

#[test]
fn a_valid_policy_checks_ok() {
    let dir = fixture(&[("demo/roles.yaml", POLICY)]);
    let r = run(dir.path(), &["check", "demo"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    insta::assert_snapshot!(r.stdout, @r"
    ok      demo: policy `demo`, 3 roles, 5 rules
    1 policy: 1 valid, 0 invalid; 0 errors, 0 warnings
    ");
    assert_eq!(r.stderr, "");
}

#[test]
fn the_default_path_is_the_current_folder_searched_recursively() {
    let dir = fixture(&[
        ("a/roles.yaml", POLICY),
        ("nested/deeper/b/roles.yaml", &POLICY.replace("policy: demo", "policy: other")),
        ("nested/README.md", "not a role file"),
    ]);
    let r = run(dir.path(), &["check"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("ok      a: policy `demo`"), "{}", r.stdout);
    assert!(r.stdout.contains("ok      nested/deeper/b: policy `other`"), "{}", r.stdout);
    assert!(r.stdout.contains("2 policies: 2 valid"), "{}", r.stdout);
}

#[test]
fn a_typo_in_a_role_name_points_at_it_and_suggests_the_right_name() {
    let broken = POLICY.replace("  auditor:\n", "  auditor:\n    includes: [technican]\n");
    let dir = fixture(&[("demo/roles.yaml", &broken)]);
    let r = run(dir.path(), &["check", "demo"]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("RS014"));
    assert!(r.stderr.contains("did you mean `technician`?"));
    insta::assert_snapshot!("typo_in_role_name", r.stderr);
    insta::assert_snapshot!(r.stdout, @r"
    invalid demo: 1 error
    1 policy: 0 valid, 1 invalid; 1 error, 0 warnings
    ");
}

#[test]
fn an_unknown_condition_attribute_is_underlined_in_the_condition() {
    let broken = POLICY.replace("resource.created_by == principal.id", "resource.creator == principal.id");
    let dir = fixture(&[("demo/roles.yaml", &broken)]);
    let r = run(dir.path(), &["check", "demo"]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("RS031"), "{}", r.stderr);
    insta::assert_snapshot!("unknown_condition_attribute", r.stderr);
}

#[test]
fn a_yaml_syntax_error_is_located() {
    let dir = fixture(&[
        ("demo/roles.yaml", POLICY),
        ("demo/extra.yaml", "roles:\n  x: { grants: [ { resources: [device }\n"),
    ]);
    let r = run(dir.path(), &["check", "demo"]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("RS001"), "{}", r.stderr);
    assert!(r.stderr.contains("demo/extra.yaml:2:"), "{}", r.stderr);
    insta::assert_snapshot!("yaml_syntax_error", r.stderr);
}

#[test]
fn every_error_of_every_file_is_reported_in_one_run_with_warnings() {
    let roles = POLICY
        .replace("actions: [view] }\n      - resources", "actions: [veiw] }\n      - resources")
        .replace("  auditor:\n", "  idle: {}\n  auditor:\n");
    let dir = fixture(&[("demo/roles.yaml", &roles), ("demo/more.yaml", "roles:\n  extra:\n    includes: [nobody]\n")]);
    let r = run(dir.path(), &["check", "demo"]);
    assert_eq!(r.code, 3);
    for needle in ["RS013", "`veiw`", "RS014", "`nobody`", "demo/more.yaml:3:", "RS050", "`idle`"] {
        assert!(r.stderr.contains(needle), "missing {needle} in:\n{}", r.stderr);
    }
    assert!(r.stdout.contains("2 errors, 1 warning"), "{}", r.stdout);
}

#[test]
fn warnings_alone_do_not_fail() {
    let dir = fixture(&[("demo/roles.yaml", &POLICY.replace("  auditor:\n", "  idle: {}\n  auditor:\n"))]);
    let r = run(dir.path(), &["check", "demo"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("⚠") && r.stderr.contains("RS050"), "{}", r.stderr);
    assert!(r.stdout.contains("1 warning"), "{}", r.stdout);
}

#[test]
fn file_arguments_compile_together_as_one_policy() {
    let (head, roles) = POLICY.split_once("roles:\n").unwrap();
    let dir = fixture(&[("x/head.yaml", head), ("y/roles.yaml", &format!("roles:\n{roles}"))]);
    let alone = run(dir.path(), &["check", "y/roles.yaml"]);
    assert_eq!(alone.code, 3, "roles alone lack scopes and kinds:\n{}", alone.stderr);
    let together = run(dir.path(), &["check", "x/head.yaml", "y/roles.yaml"]);
    assert_eq!(together.code, 0, "{}", together.stderr);
    assert!(together.stdout.contains("1 policy: 1 valid"), "{}", together.stdout);
}

#[test]
fn json_output_is_the_diagnostics_as_data() {
    let broken = POLICY.replace("  auditor:\n", "  auditor:\n    includes: [technican]\n");
    let dir = fixture(&[("demo/roles.yaml", &broken)]);
    let r = run(dir.path(), &["check", "--format", "json", "demo"]);
    assert_eq!(r.code, 3);
    assert_eq!(r.stderr, "", "json mode prints nothing else");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["errors"], 1);
    let p = &v["policies"][0];
    assert_eq!(p["valid"], false);
    assert_eq!(p["path"], "demo");
    let d = &p["diagnostics"][0];
    assert_eq!(d["code"], "RS014");
    assert_eq!(d["severity"], "error");
    assert_eq!(d["location"]["file"], "demo/roles.yaml");
    assert_eq!(d["location"]["line"], 32);
    assert!(d["hint"].as_str().unwrap().contains("technician"));
}

#[test]
fn assignments_are_checked_against_invariants() {
    let dir = fixture(&[
        ("demo/roles.yaml", POLICY),
        (
            "ok.yaml",
            "- { id: ana, assignments: [{ role: admin, scope: \"msp:acme\" }] }\n- { id: tom, assignments: [{ role: technician, scope: \"msp:acme\" }] }\n",
        ),
        ("broken.json", r#"{"ana": {"status": "suspended", "assignments": [{"role": "admin", "scope": "msp:acme"}]}}"#),
    ]);
    let ok = run(dir.path(), &["check", "demo", "--assignments", "ok.yaml"]);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    assert!(ok.stdout.contains("0 invariant violations"), "{}", ok.stdout);
    let broken = run(dir.path(), &["check", "demo", "--assignments", "broken.json"]);
    assert_eq!(broken.code, 3, "{}{}", broken.stdout, broken.stderr);
    assert!(broken.stdout.contains("invariant `admin_remains` at `msp:acme`: 0 of 1 required"), "{}", broken.stdout);
    let json = run(dir.path(), &["check", "demo", "--format", "json", "--assignments", "broken.json"]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["violations"], 1);
    assert_eq!(v["policies"][0]["violations"][0]["invariant"], "admin_remains");
}

#[test]
fn an_invariant_check_over_an_unreadable_principal_fails_naming_it() {
    let dir = fixture(&[
        ("demo/roles.yaml", POLICY),
        // the last admin with a status the policy does not know: not "0 violations"
        ("removed.yaml", "- { id: ana, status: removed, assignments: [{ role: admin, scope: \"msp:acme\" }] }\n"),
        // a lone admin with a misspelled role: not a false violation either
        ("typo.yaml", "- { id: bob, assignments: [{ role: admn, scope: \"msp:acme\" }] }\n"),
    ]);
    let removed = run(dir.path(), &["check", "demo", "--assignments", "removed.yaml"]);
    assert_eq!(removed.code, 2, "{}{}", removed.stdout, removed.stderr);
    assert!(removed.stderr.contains("principal `ana`: unknown status `removed`"), "{}", removed.stderr);
    let typo = run(dir.path(), &["check", "demo", "--assignments", "typo.yaml"]);
    assert_eq!(typo.code, 2, "{}{}", typo.stdout, typo.stderr);
    assert!(typo.stderr.contains("principal `bob`: assignment 0: unknown role `admn`"), "{}", typo.stderr);
}

#[test]
fn check_validates_the_suites_next_to_the_policy_and_deny_warnings_fails_on_warnings() {
    let suite = "principals:\n  tom: { assignments: [{ role: techncian, scope: \"msp:acme/org:o1\" }] }\nresources:\n  d: { kind: device, id: d1, scope: \"msp:acme/org:o1\" }\ncases:\n  - { principal: tom, action: delete, resource: d, expect: deny }\n";
    let dir = fixture(&[("demo/roles.yaml", POLICY), ("demo/demo_test.yaml", suite)]);
    let r = run(dir.path(), &["check", "demo"]);
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("demo/demo_test.yaml:2:32"), "{}", r.stderr);
    assert!(r.stderr.contains("did you mean `technician`?"), "{}", r.stderr);
    assert!(r.stdout.contains("its suites have 1 error"), "{}", r.stdout);
    let fixed =
        suite.replace("techncian", "technician").replace("expect: deny", "expect: deny, reason: no_matching_grant");
    let implicit = POLICY.replace("scope: \"msp:acme\", tenants: all", "scope: \"msp:acme\"");
    let dir = fixture(&[("demo/roles.yaml", &implicit), ("demo/demo_test.yaml", &fixed)]);
    assert_eq!(run(dir.path(), &["check", "demo"]).code, 0);
    let strict = run(dir.path(), &["check", "--deny-warnings", "demo"]);
    assert_eq!(strict.code, 3, "{}{}", strict.stdout, strict.stderr);
    assert!(strict.stderr.contains("RS043") && strict.stderr.contains("tenants: all"), "{}", strict.stderr);
}

#[test]
fn bad_paths_and_inputs_are_usage_errors() {
    let dir = fixture(&[("demo/roles.yaml", POLICY), ("notes.txt", "x"), ("bad.yaml", "ana: [1, 2")]);
    let missing = run(dir.path(), &["check", "nope"]);
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("`nope` does not exist"), "{}", missing.stderr);
    assert_eq!(run(dir.path(), &["check", "notes.txt"]).code, 2);
    let empty = fixture(&[("README.md", "nothing here")]);
    let none = run(empty.path(), &["check"]);
    assert_eq!(none.code, 2);
    assert!(none.stderr.contains("no role files found"), "{}", none.stderr);
    assert_eq!(run(dir.path(), &["check", "demo", "--assignments", "bad.yaml"]).code, 2);
    assert_eq!(run(dir.path(), &["check", "demo", "--assignments", "nope.yaml"]).code, 2);
    assert_eq!(run(dir.path(), &["check", "--format", "xml"]).code, 2, "clap's usage errors exit 2");
}
