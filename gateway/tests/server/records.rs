//! Decision records (`rolescope-decision/1`, gateway/README.md) golden-tested: an allow,
//! each deny reason the Mist policy gives, each token failure with its precise cause,
//! `no_route` and `invalid_path`; and the metrics those requests leave (names and labels).

use base64::Engine as _;
use jsonwebtoken::Algorithm;

use super::support::{
    Setup, Upstream, claims, decisions, eventually, mist_bundle_with, now, request, sign, start, token,
};

fn b64(v: &serde_json::Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

/// The CLI's `explain --log` and `replay` tests read a log this test recorded
/// (`cli/tests/cli/fixtures/gateway-decisions.jsonl`, with the ids and times of that run): it
/// must still be what the gateway records for these requests, but for the decision ids, times
/// and latencies. `ROLESCOPE_BLESS=1` records it again.
#[expect(clippy::unwrap_used, clippy::indexing_slicing, reason = "a test fails loudly")]
fn recorded_log_fixture(log: &[serde_json::Value], revision: &str) {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../cli/tests/cli/fixtures/gateway-decisions.jsonl");
    if std::env::var_os("ROLESCOPE_BLESS").is_some() {
        let text: String = log.iter().map(|r| format!("{r}\n")).collect();
        std::fs::write(&path, text).unwrap();
        return;
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let fixture: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let strip = |r: &serde_json::Value| {
        let mut r = stable(r.clone(), revision);
        // a token in the log stays as recorded; the revision is compared whole
        r["revision"] = r["revision"].as_str().map_or(serde_json::Value::Null, |_| "[some]".into());
        r
    };
    assert_eq!(fixture.len(), log.len(), "{}: record count (ROLESCOPE_BLESS=1 records it again)", path.display());
    for (old, new) in fixture.iter().zip(log) {
        assert_eq!(
            old["revision"], new["revision"],
            "the Mist bundle changed: ROLESCOPE_BLESS=1 records the fixture again"
        );
        assert_eq!(strip(old), strip(new), "{}: ROLESCOPE_BLESS=1 records it again", path.display());
    }
}

/// A record with what changes from run to run replaced.
#[expect(clippy::unwrap_used, reason = "a test fails loudly")]
fn stable(mut r: serde_json::Value, revision: &str) -> serde_json::Value {
    let o = r.as_object_mut().unwrap();
    for (k, want) in [("decision_id", 32usize), ("time", 0)] {
        let v = o.get(k).and_then(|v| v.as_str()).unwrap_or_default();
        assert!(want == 0 || v.len() == want, "{k}: {v}");
        assert!(!v.is_empty(), "{k} empty");
        o.insert(k.into(), format!("[{k}]").into());
    }
    assert!(o.get("latency_us").is_some_and(serde_json::Value::is_u64));
    o.insert("latency_us".into(), "[latency_us]".into());
    if o.get("revision").and_then(|v| v.as_str()) == Some(revision) {
        o.insert("revision".into(), "[revision]".into());
    }
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_record() {
    let upstream = Upstream::start().await;
    let s = Setup::new();
    let gw = start(s.enforcing(upstream.addr, "")).await;
    let revision = gw.revision().unwrap();
    let addr = gw.local_addr();
    let good = claims();
    let with = |k: &str, v: serde_json::Value| {
        let mut c = good.clone();
        c[k] = v;
        c
    };
    let rs = |c: &serde_json::Value| sign(Algorithm::RS256, Some("demo-rs256"), c);
    // one character in the middle of the signature changed: still base64, no longer valid
    let mut tampered = rs(&good).into_bytes();
    let at = tampered.len() - 20;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let none = format!("{}.{}.", b64(&serde_json::json!({"alg": "none", "typ": "JWT"})), b64(&good));
    let devices = "/api/v1/orgs/o1/devices";
    let bearer = |t: &str| format!("Bearer {t}");
    let cases: Vec<(&str, &str, &str, Option<String>)> = vec![
        ("allow", "GET", devices, Some(bearer(&token("na_o1")))),
        ("out_of_scope", "GET", "/api/v1/orgs/o2/devices", Some(bearer(&token("na_o1")))),
        ("no_matching_grant", "DELETE", "/api/v1/orgs/o1/devices/ap-11", Some(bearer(&token("hd_o1")))),
        ("principal_inactive", "GET", devices, Some(bearer(&token("su_suspended")))),
        ("no_route", "GET", "/api/v1/nothing-here?x=1", Some(bearer(&token("su")))),
        ("invalid_path", "GET", "/api/v1/orgs/o1/%2e%2e/o2/devices", Some(bearer(&token("su")))),
        ("missing_token", "GET", devices, None),
        ("public route, anonymous", "GET", "/api/v1/status", None),
        ("token: not bearer", "GET", devices, Some("Basic dXNlcjpwYXNz".into())),
        ("token: malformed", "GET", devices, Some(bearer("abc.def"))),
        ("token: alg none", "GET", devices, Some(bearer(&none))),
        (
            "token: disallowed algorithm",
            "GET",
            devices,
            Some(bearer(&sign(Algorithm::PS256, Some("demo-rs256"), &good))),
        ),
        ("token: key mismatch", "GET", devices, Some(bearer(&sign(Algorithm::RS256, Some("demo-es256"), &good)))),
        ("token: bad signature", "GET", devices, Some(bearer(&tampered))),
        ("token: expired", "GET", devices, Some(bearer(&rs(&with("exp", (now() - 3600).into()))))),
        ("token: not yet valid", "GET", devices, Some(bearer(&rs(&with("nbf", (now() + 3600).into()))))),
        ("token: wrong issuer", "GET", devices, Some(bearer(&rs(&with("iss", "elsewhere".into()))))),
        ("token: wrong audience", "GET", devices, Some(bearer(&rs(&with("aud", "another".into()))))),
        ("token: unknown key", "GET", devices, Some(bearer(&sign(Algorithm::RS256, Some("rotated"), &good)))),
        ("token: claims", "GET", devices, Some(bearer(&rs(&with("assignments", "admin".into()))))),
    ];
    let mut ids = Vec::new();
    for (what, method, target, auth) in &cases {
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
        let a = request(addr, method, target, &headers).await;
        ids.push((*what, a.header("x-rolescope-decision-id").unwrap().to_owned(), a.status));
    }
    let all =
        eventually(std::time::Duration::from_secs(5), async || decisions(s.dir.path()).len() >= cases.len()).await;
    assert!(all, "{} records", decisions(s.dir.path()).len());
    let log = decisions(s.dir.path());
    let mut golden = serde_json::Map::new();
    for (what, id, status) in &ids {
        let r = log.iter().find(|r| r["decision_id"] == id.as_str()).unwrap_or_else(|| panic!("{what}: no record"));
        assert_eq!(r["schema"], "rolescope-decision/1");
        golden.insert(format!("{what} ({status})"), stable(r.clone(), &revision));
    }
    insta::assert_json_snapshot!("decision_records", golden);
    recorded_log_fixture(&log, &revision);

    let metrics = gw.metrics_text();
    for line in [
        "rolescope_decisions_by_reason_total{reason=\"allowed\"} 2",
        "rolescope_decisions_by_reason_total{reason=\"out_of_scope\"} 1",
        "rolescope_decisions_by_reason_total{reason=\"no_route\"} 1",
        "rolescope_decisions_by_reason_total{reason=\"invalid_path\"} 1",
        "rolescope_decisions_by_reason_total{reason=\"invalid_token\"} 7",
        "rolescope_token_failures_total{cause=\"bad_signature\"} 1",
        "rolescope_token_failures_total{cause=\"algorithm_not_allowed\"} 2",
        "rolescope_token_failures_total{cause=\"not_bearer\"} 1",
        "rolescope_token_failures_total{cause=\"expired_token\"} 1",
        "rolescope_route_decision_duration_seconds_count{route=\"GET /api/v1/orgs/{org}/devices\"} 4",
        "rolescope_bundle_reloads_total{result=\"ok\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing:\n{metrics}");
    }
    // no label carries a raw path or a tenant id
    for l in metrics.lines().filter(|l| !l.starts_with('#')) {
        assert!(!l.contains("/o1/") && !l.contains("nothing-here") && !l.contains("org:o1"), "{l}");
    }
    gw.shutdown().await;
}

/// `decision_log.input`: configured headers recorded (credentials never), principal attributes
/// when asked for, masks that erase and replace, listed in `erased` and `masked`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_recording_and_masks() {
    let upstream = Upstream::start().await;
    let s = Setup::new();
    let log = "decision_log:\n  sink: file\n  path: decisions.jsonl\n  input:\n    principal_attributes: true\n    \
               headers: [x-request-tag, x-secret]\n  mask:\n    - /input/headers/x-secret\n    - /input/nothing/here\n    \
               - { pointer: /input/principal/assignments/0/scope, value: \"[masked]\" }\n";
    let gw = start(s.enforcing(upstream.addr, log)).await;
    let bearer = format!("Bearer {}", token("na_o1"));
    let a = request(
        gw.local_addr(),
        "GET",
        "/api/v1/orgs/o1/devices",
        &[("authorization", &bearer), ("x-request-tag", "t1"), ("x-secret", "s3cret"), ("cookie", "c=1")],
    )
    .await;
    assert_eq!(a.status, 200);
    let id = a.header("x-rolescope-decision-id").unwrap().to_owned();
    assert!(eventually(std::time::Duration::from_secs(5), async || !decisions(s.dir.path()).is_empty()).await);
    let r = decisions(s.dir.path()).into_iter().find(|r| r["decision_id"] == id.as_str()).unwrap();
    assert_eq!(
        r["input"],
        serde_json::json!({
            "principal": {
                "id": "na_o1", "status": "active", "attributes": {},
                "assignments": [{ "role": "network_admin", "scope": "[masked]", "tenants": ["org:o1"] }],
            },
            "headers": { "x-request-tag": "t1" },
            "erased": ["/input/headers/x-secret"],
            "masked": ["/input/principal/assignments/0/scope"],
        })
    );
    let text = std::fs::read_to_string(s.path("decisions.jsonl")).unwrap();
    assert!(!text.contains("s3cret") && !text.contains("c=1") && !text.contains("Bearer"), "{text}");
    gw.shutdown().await;
}

/// A role and a policy-wide deny added to the Mist policy, so that every way a rule decides
/// shows in a record: a grant, a role's deny, a policy-wide deny, a grant whose condition is
/// false, no grant, no assignment covering the scope.
const TECHNICIAN: &str = r#"roles:
  technician:
    title: Technician
    rank: 10
    held_at: [org]
    grants:
      - { resources: [device], actions: [view, list] }
      - resources: [device]
        actions: [reboot]
        when: resource.id == "ap-12"
    denies:
      - { resources: [device], actions: [upgrade] }
denies:
  - { resources: [device], actions: [release] }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_name_the_rule_that_decided_or_the_nearest_assignments() {
    let upstream = Upstream::start().await;
    let s = Setup::new();
    let config = s.enforcing(upstream.addr, "");
    let (bundle, revision) = mist_bundle_with("", &[("technician.yaml", TECHNICIAN)]);
    s.write("bundle.json", &bundle);
    let gw = start(config).await;
    let addr = gw.local_addr();
    let mut c = claims();
    c["sub"] = "tech_o1".into();
    c["assignments"] = serde_json::json!([
        { "role": "technician", "scope": "msp:mist/org:o1" },
        { "role": "observer", "scope": "msp:mist/org:o3" },
    ]);
    let auth = format!("Bearer {}", sign(Algorithm::RS256, Some("demo-rs256"), &c));
    let ap = "/api/v1/orgs/o1/devices/ap-11";
    let cases = [
        ("allow", "GET", ap.to_owned()),
        ("explicit_deny, the role's", "POST", format!("{ap}/upgrade")),
        ("explicit_deny, policy-wide", "DELETE", ap.to_owned()),
        ("condition_false", "POST", format!("{ap}/reboot")),
        ("no_matching_grant", "PUT", ap.to_owned()),
        ("out_of_scope", "GET", "/api/v1/orgs/o2/devices".to_owned()),
    ];
    let mut ids = Vec::new();
    for (what, method, target) in &cases {
        let a = request(addr, method, target, &[("authorization", auth.as_str())]).await;
        ids.push((*what, a.header("x-rolescope-decision-id").unwrap().to_owned(), a.status, a.body.clone()));
    }
    let all =
        eventually(std::time::Duration::from_secs(5), async || decisions(s.dir.path()).len() >= cases.len()).await;
    assert!(all, "{} records", decisions(s.dir.path()).len());
    let log = decisions(s.dir.path());
    let mut golden = serde_json::Map::new();
    for (what, id, status, body) in &ids {
        let r = log.iter().find(|r| r["decision_id"] == id.as_str()).unwrap_or_else(|| panic!("{what}: no record"));
        let r = stable(r.clone(), &revision);
        let mut o = serde_json::Map::new();
        for k in ["allowed", "reason", "rule", "nearest"] {
            o.insert(k.into(), r[k].clone());
        }
        if *status != 200 {
            let mut b: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(b["decision_id"], id.as_str());
            b.as_object_mut().unwrap().remove("decision_id");
            o.insert("body".into(), b);
        }
        golden.insert(format!("{what} ({status})"), o.into());
    }
    insta::assert_json_snapshot!("decision_records_rules", golden);
    gw.shutdown().await;
}
