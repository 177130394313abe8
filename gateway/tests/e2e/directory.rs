//! The principal directory: tokens carrying only `sub` (minted by `rolescope-gateway mint`, as
//! an identity provider would issue them), `groups` mapped to roles by claim rules, a
//! suspension in the directory denying a still-valid token within one poll, and malformed or
//! unsigned directories refused while the previous one serves.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{self, Stack, tokens};

const SEED: &str = "juniper-mist-msp";
const O1: &str = "/api/v1/orgs/o1/devices";
const POLL: Duration = Duration::from_millis(300);

/// A token minted by the gateway binary: `mint` with `args` (and the e2e key, issuer, audience).
fn mint(args: &[&str]) -> String {
    let key = tokens::keys_dir().join("signer.pem");
    let mut all = vec![
        "mint",
        "--key",
        key.to_str().unwrap(),
        "--kid",
        tokens::KID,
        "--issuer",
        tokens::ISSUER,
        "--audience",
        tokens::AUDIENCE,
    ];
    all.extend_from_slice(args);
    let (code, out) = support::run_gateway(&all, &[]);
    assert_eq!(code, Some(0), "mint {args:?}: {out}");
    format!("Bearer {}", out.trim())
}

/// The claims of a token (unverified).
fn claims(bearer: &str) -> Value {
    use base64::Engine as _;
    let payload = bearer.trim_start_matches("Bearer ").split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn directory(principals: Value) -> String {
    json!({ "format": "rolescope-directory/1", "principals": principals }).to_string()
}

fn super_user(id: &str, status: &str) -> Value {
    json!({ "id": id, "status": status, "assignments": [{ "role": "super_user", "scope": "msp:mist", "tenants": "all" }] })
}

/// A stack whose gateway reads the directory file at `path` (written first), with `extra`
/// configuration under `identity:` and at the top level.
fn stack(path: &Path, first: &str, directory_extra: &str, jwt_extra: &str) -> Stack {
    support::publish(path, first);
    let directory = format!(
        "  directory: {{ file: {}, poll_interval: {}ms{directory_extra} }}\n",
        path.display(),
        POLL.as_millis()
    );
    Stack::start_with(SEED, |c| c.identity_extra = format!("{jwt_extra}{directory}"))
}

#[test]
fn directory_tokens_with_only_sub_and_a_suspension_mid_session() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("principals.json");
    let stack = stack(&path, &directory(json!([super_user("ana@msp.example", "active")])), "", "");
    let ana = mint(&["--principal", "ana@msp.example"]);
    let c = claims(&ana);
    assert_eq!(c["sub"], "ana@msp.example");
    assert!(c.get("assignments").is_none() && c.get("status").is_none(), "only `sub`: {c}");

    let r = stack.gateway.send("GET", O1, &[("authorization", &ana)]);
    assert_eq!(r.status, 200, "a token with only `sub`, the directory's principal: {}", r.summary());
    assert_eq!(stack.upstream.log()[0].header_values("x-rolescope-principal"), ["ana@msp.example"]);
    stack.upstream.clear();

    // a subject the directory does not list
    let stranger = mint(&["--principal", "eve@elsewhere.example"]);
    let r = stack.gateway.send("GET", O1, &[("authorization", &stranger)]);
    assert_eq!((r.status, r.reason().as_str()), (403, "unknown_principal"), "{}", r.summary());
    // a token claiming assignments the directory does not give: the directory wins
    let forged = mint(&[
        "--principal-json",
        r#"{"id":"bo@msp.example","assignments":[{"role":"super_user","scope":"msp:mist"}]}"#,
    ]);
    support::publish(&path, &directory(json!([super_user("ana@msp.example", "active"), { "id": "bo@msp.example" }])));
    let start = Instant::now();
    loop {
        let r = stack.gateway.send("GET", O1, &[("authorization", &forged)]);
        if r.reason() != "unknown_principal" {
            assert_eq!(r.status, 403, "bo is listed without assignments: {}", r.summary());
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "the new directory was not picked up");
        std::thread::sleep(Duration::from_millis(20));
    }
    stack.upstream.assert_untouched("the token's own assignments are ignored for a listed subject");

    // ana is suspended in the directory mid-session: her still-valid token is denied within a poll
    support::publish(&path, &directory(json!([super_user("ana@msp.example", "suspended")])));
    let start = Instant::now();
    let denied_after = loop {
        let r = stack.gateway.send("GET", O1, &[("authorization", &ana)]);
        if r.status == 403 {
            assert_eq!(r.reason(), "principal_inactive", "{}", r.summary());
            break start.elapsed();
        }
        assert_eq!(r.status, 200, "{}", r.summary());
        assert!(start.elapsed() < Duration::from_secs(10), "the suspension was not enforced");
        std::thread::sleep(Duration::from_millis(10));
    };
    // one poll interval, plus the time to read and swap the file on a busy 2-core machine
    assert!(denied_after < POLL + Duration::from_millis(1500), "denied only after {denied_after:?} (poll {POLL:?})");
    stack.upstream.clear();
    let r = stack.gateway.send("GET", O1, &[("authorization", &ana)]);
    assert_eq!((r.status, r.reason().as_str()), (403, "principal_inactive"), "{}", r.summary());
    stack.upstream.assert_untouched("a suspended principal");
    // deleted, then active again
    support::publish(&path, &directory(json!([super_user("ana@msp.example", "deleted")])));
    std::thread::sleep(POLL * 3);
    let r = stack.gateway.send("GET", O1, &[("authorization", &ana)]);
    assert_eq!((r.status, r.reason().as_str()), (403, "principal_inactive"), "{}", r.summary());
    support::publish(&path, &directory(json!([super_user("ana@msp.example", "active")])));
    std::thread::sleep(POLL * 3);
    let r = stack.gateway.send("GET", O1, &[("authorization", &ana)]);
    assert_eq!(r.status, 200, "reactivated: {}", r.summary());
}

#[test]
fn directory_groups_mapped_to_roles() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("principals.json");
    let rules = "    claim_rules:\n      \
                 - { claim: groups, value: mist-o1-admins, role: network_admin, scope: \"msp:mist\", tenants: [\"org:o1\"] }\n";
    // listed without assignments: the claim rules give them; unlisted subjects go by their claims
    let stack = stack(&path, &directory(json!([{ "id": "cy@msp.example" }])), ", unlisted: claims", rules);
    let o2 = "/api/v1/orgs/o2/devices";
    for who in ["cy@msp.example", "dee@partner.example"] {
        let admin = mint(&["--principal", who, "--groups", "staff,mist-o1-admins"]);
        assert_eq!(claims(&admin)["groups"], json!(["staff", "mist-o1-admins"]));
        let r = stack.gateway.send("GET", O1, &[("authorization", &admin)]);
        assert_eq!(r.status, 200, "{who}: the group's role in o1: {}", r.summary());
        let r = stack.gateway.send("GET", o2, &[("authorization", &admin)]);
        assert_eq!((r.status, r.reason().as_str()), (403, "out_of_scope"), "{who} in o2: {}", r.summary());
        let staff = mint(&["--principal", who, "--groups", "staff"]);
        let r = stack.gateway.send("GET", O1, &[("authorization", &staff)]);
        assert_eq!(r.status, 403, "{who}: no group with a rule: {}", r.summary());
    }
    assert_eq!(stack.upstream.log().len(), 2, "only the two allowed requests arrived");
}

#[test]
fn directory_malformed_or_unsigned_is_refused_while_the_previous_one_serves() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("principals.json");
    let key = rolescope_sign::generate().unwrap();
    let key_pem = dir.path().join("signing.pem");
    std::fs::write(&key_pem, rolescope_sign::private_key_to_pem(&key).unwrap()).unwrap();
    let pub_pem = dir.path().join("signing.pub.pem");
    std::fs::write(&pub_pem, rolescope_sign::public_key_to_pem(&key.verifying_key()).unwrap()).unwrap();
    // signed by the gateway binary's `sign-directory`
    let sign_file = |text: &str| {
        let input = dir.path().join("unsigned.json");
        let output = dir.path().join("signed.json");
        std::fs::write(&input, text).unwrap();
        let args = ["--key", key_pem.to_str().unwrap(), "--input", input.to_str().unwrap()];
        let (code, out) = support::run_gateway(
            &[&["sign-directory"][..], &args, &["--output", output.to_str().unwrap()]].concat(),
            &[],
        );
        (code, out, std::fs::read_to_string(output).unwrap_or_default())
    };
    let sign = |text: &str| {
        let (code, out, signed) = sign_file(text);
        assert_eq!(code, Some(0), "{out}");
        signed
    };
    let active = directory(json!([super_user("ana@msp.example", "active")]));
    let suspended = directory(json!([super_user("ana@msp.example", "suspended")]));
    let extra = format!(", require_signature: {{ public_keys: [{}] }}", pub_pem.display());
    let mut stack = stack(&path, &sign(&active), &extra, "");
    let ana = mint(&["--principal", "ana@msp.example"]);
    let allowed = |stack: &Stack, what: &str| {
        let r = stack.gateway.send("GET", O1, &[("authorization", &ana)]);
        assert_eq!(r.status, 200, "{what}: {}", r.summary());
    };
    allowed(&stack, "the signed directory");
    let malformed = sign(&active).replace("rolescope-directory/1", "rolescope-directory/9");
    for (what, text) in [
        ("unsigned", suspended.clone()),
        ("malformed", "{\"format\": \"rolescope-directory/1\", \"principals\": [".to_owned()),
        ("tampered", sign(&active).replace("active", "suspended")),
        ("signed but of another format", malformed),
    ] {
        support::publish(&path, &text);
        std::thread::sleep(POLL * 3);
        allowed(&stack, &format!("after an {what} directory"));
    }
    assert!(stack.gateway.output().contains("principal directory refused"), "refusals are logged");
    // the signed suspension applies
    support::publish(&path, &sign(&suspended));
    stack.gateway.wait_for(
        |g| {
            let r = g.send("GET", O1, &[("authorization", &ana)]);
            r.status == 403 && r.reason() == "principal_inactive"
        },
        "the signed suspension",
    );
    // `sign-directory` refuses to sign a malformed directory
    let (code, out, _) = sign_file("{\"format\": \"rolescope-directory/1\", \"principals\": [{\"id\": \"\"}]}");
    assert!(code != Some(0) && out.contains("empty `id`"), "{code:?} {out}");
}
