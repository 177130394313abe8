//! `rolescope explain --log` and `rolescope replay` on a log the gateway recorded
//! (`fixtures/gateway-decisions.jsonl`, written by `gateway/tests/server/records.rs`, which
//! checks that it is still what the gateway records): every kind of record explained
//! offline, the log replayed against the same policy (no change) and a changed one (known
//! flips), `--fail-on-change`, malformed lines.

use std::path::{Path, PathBuf};

use crate::{root, run};

const ALLOW: &str = "fe4ca4f8d411b307e962f3b82f7f4e38";
const OUT_OF_SCOPE: &str = "1c70533084e2fb5f6a3636649bb79735";
const NO_MATCHING_GRANT: &str = "88e95a772343173f6a54f9d912d37de3";
const INACTIVE: &str = "c566446671612f31e32a77e196d380f3";
const NO_ROUTE: &str = "85a98c667817b7f54fbf4981bab1883c";
const INVALID_PATH: &str = "b247283b8de321b928bc04671778f1c7";
const MISSING_TOKEN: &str = "688e70b93b2fdd778a45ddf1598d7353";

fn log() -> PathBuf {
    root().join("cli/tests/cli/fixtures/gateway-decisions.jsonl")
}

/// The Mist policy as the gateway test bundled it (same files, same names: same revision),
/// in `dir/bundles/`, and a copy of its folder with `edit` applied to roles.yaml in `dir/NAME`.
#[expect(clippy::unwrap_used, reason = "a test fails loudly")]
fn setup(dir: &Path, edits: &[(&str, &str)]) -> PathBuf {
    let mist = root().join("policies/juniper-mist-msp");
    let sources: Vec<rolescope_engine::Source> = ["roles.yaml", "routes.yaml"]
        .iter()
        .map(|n| rolescope_engine::Source::new(*n, std::fs::read_to_string(mist.join(n)).unwrap()))
        .collect();
    let (_, json) = rolescope_engine::Policy::bundle(&sources).unwrap();
    std::fs::create_dir_all(dir.join("bundles")).unwrap();
    std::fs::write(dir.join("bundles/mist.json"), json).unwrap();
    let changed = dir.join("candidate");
    std::fs::create_dir_all(&changed).unwrap();
    for n in ["roles.yaml", "routes.yaml"] {
        let mut text = std::fs::read_to_string(mist.join(n)).unwrap();
        for (from, to) in edits {
            if n == "roles.yaml" {
                assert!(text.contains(from), "{from}");
                text = text.replace(from, to);
            }
        }
        std::fs::write(changed.join(n), text).unwrap();
    }
    changed
}

fn explain(dir: &Path, id: &str) -> (i32, String) {
    let log = log();
    let r = run(dir, &["explain", "--log", log.to_str().unwrap_or_default(), "--id", id, "--bundles", "bundles"]);
    (r.code, format!("{}{}", r.stdout, r.stderr))
}

#[test]
fn explain_log_explains_every_kind_of_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    setup(dir.path(), &[]);
    let (code, out) = explain(dir.path(), ALLOW);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("ALLOW (allowed) decision fe4ca4f8"), "{out}");
    assert!(out.contains("GET /api/v1/orgs/o1/devices") && out.contains("principal  `na_o1` (inline)"), "{out}");
    assert!(out.contains("grant of role `network_admin`"), "{out}");
    assert!(!out.contains("note:"), "decided as logged: {out}");
    for (id, reason, says) in [
        (OUT_OF_SCOPE, "out_of_scope", "steps:"),
        (NO_MATCHING_GRANT, "no_matching_grant", "steps:"),
        (INACTIVE, "principal_inactive", "steps:"),
        (
            NO_ROUTE,
            "no_route",
            "No policy question was asked: no route of the policy matches `GET /api/v1/nothing-here?x=1`",
        ),
        (
            INVALID_PATH,
            "invalid_path",
            "No policy question was asked: the target is refused by path normalization: the path has a `..` segment",
        ),
        (
            MISSING_TOKEN,
            "missing_token",
            "No policy question was asked: the caller sent no token and the route needs a principal",
        ),
    ] {
        let (code, out) = explain(dir.path(), id);
        assert_eq!(code, 0, "{out}");
        assert!(out.starts_with(&format!("DENY ({reason})")), "{reason}: {out}");
        assert!(out.contains(says), "{reason}: {out}");
        assert!(!out.contains("note:"), "{reason}: decided as logged: {out}");
    }
    // token failures: every one says why no question was asked, with its cause
    let text = std::fs::read_to_string(log()).unwrap_or_default();
    let token_failures: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["route_miss"] == "not_reached")
        .collect();
    assert_eq!(token_failures.len(), 12);
    for r in token_failures {
        let (code, out) = explain(dir.path(), r["decision_id"].as_str().unwrap_or_default());
        let (reason, cause) = (r["reason"].as_str().unwrap_or_default(), r["cause"].as_str().unwrap_or_default());
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains(&format!("No policy question was asked: the request was refused before the route table, by its token ({reason}, cause `{cause}`)")),
            "{out}"
        );
    }
    // an unknown id, a revision with no bundle
    let (code, out) = explain(dir.path(), "0123");
    assert_eq!(code, 2);
    assert!(out.contains("no decision `0123` in"), "{out}");
    std::fs::remove_file(dir.path().join("bundles/mist.json")).unwrap_or_default();
    let (code, out) = explain(dir.path(), ALLOW);
    assert_eq!(code, 2);
    assert!(out.contains("no bundle of revision"), "{out}");
}

fn replay(dir: &Path, policy: &Path, extra: &[&str]) -> (i32, serde_json::Value, String) {
    let log = log();
    let mut args =
        vec!["replay", "--log", log.to_str().unwrap_or_default(), "--policy", policy.to_str().unwrap_or_default()];
    args.extend_from_slice(extra);
    let r = run(dir, &args);
    (r.code, serde_json::from_str(&r.stdout).unwrap_or(serde_json::Value::Null), format!("{}{}", r.stdout, r.stderr))
}

#[test]
fn replay_reports_no_change_under_the_same_policy_and_the_flips_of_a_changed_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let same = setup(dir.path(), &[]);
    let (code, v, out) = replay(dir.path(), &same, &["--format", "json", "--fail-on-change"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        (v["records"].as_u64(), v["replayed"].as_u64(), v["unchanged"].as_u64()),
        (Some(20), Some(8), Some(8)),
        "{out}"
    );
    assert_eq!((v["allow_to_deny"].as_u64(), v["deny_to_allow"].as_u64()), (Some(0), Some(0)), "{out}");
    // token failures are counted apart, never dropped
    assert_eq!(v["not_replayable"]["not_reached: algorithm_not_allowed"], 2, "{out}");
    assert_eq!(
        v["not_replayable"].as_object().map(|o| o.values().filter_map(serde_json::Value::as_u64).sum::<u64>()),
        Some(12)
    );

    // network admins lose devices, helpdesk may release them
    let changed = setup(
        dir.path(),
        &[
            (
                "device:        [manage, operate, read, install_ap]",
                "device:        [none,   operate, read, install_ap]",
            ),
            ("operate: [read, reboot, upgrade]", "operate: [read, reboot, upgrade, release]"),
        ],
    );
    let (code, v, out) = replay(dir.path(), &changed, &["--format", "json"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!((v["allow_to_deny"].as_u64(), v["deny_to_allow"].as_u64()), (Some(1), Some(1)), "{out}");
    let a2d = &v["allow_to_deny_by"][0];
    assert_eq!(a2d["route"], "GET /api/v1/orgs/{org}/devices");
    assert_eq!(a2d["reason"], "no_matching_grant");
    assert_eq!(a2d["role"], "network_admin");
    assert_eq!(a2d["examples"], serde_json::json!([ALLOW]));
    let d2a = &v["deny_to_allow_by"][0];
    assert_eq!(d2a["route"], "DELETE /api/v1/orgs/{org}/devices/{device}");
    assert_eq!((d2a["role"].as_str(), d2a["reason"].as_str()), (Some("helpdesk"), Some("no_matching_grant")));
    assert_eq!(d2a["examples"], serde_json::json!([NO_MATCHING_GRANT]));
    // --fail-on-change exits 5; the human report names the flips
    let (code, _, out) = replay(dir.path(), &changed, &["--fail-on-change"]);
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("decisions change: 1 allow -> deny, 1 deny -> allow"), "{out}");
    assert!(out.contains(&format!("e.g. {ALLOW}")), "{out}");
}

#[test]
fn malformed_lines_are_reported_with_their_line_and_lose_nothing_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let same = setup(dir.path(), &[]);
    let mut lines: Vec<String> =
        std::fs::read_to_string(log()).unwrap_or_default().lines().map(str::to_owned).collect();
    lines.insert(2, "{not json".into());
    lines.insert(5, r#"{"schema": "rolescope-decision/9"}"#.into());
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, lines.join("\n")).unwrap_or_default();
    let r = run(
        dir.path(),
        &["replay", "--log", "bad.jsonl", "--policy", same.to_str().unwrap_or_default(), "--format", "json"],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("bad.jsonl:3: not a decision record"), "{}", r.stderr);
    assert!(r.stderr.contains("bad.jsonl:6: not a decision record"), "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap_or_default();
    assert_eq!((v["records"].as_u64(), v["replayed"].as_u64()), (Some(20), Some(8)), "{}", r.stdout);
    assert_eq!(v["malformed"].as_array().map(Vec::len), Some(2));
}
