//! Tokens: every way a token can be wrong answers 401 with its reason and reaches nothing
//! upstream; good tokens (RS256 and ES256) are decided by the engine.

use base64::Engine as _;
use jsonwebtoken::Algorithm;

use super::support::{Setup, Upstream, claims, get_as, now, request, sign, start, token};

fn b64(v: &serde_json::Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_token_is_refused_with_its_reason() {
    let upstream = Upstream::start().await;
    let s = Setup::new();
    let gw = start(s.enforcing(upstream.addr, "")).await;
    let addr = gw.local_addr();
    let target = "/api/v1/orgs/o1/devices";

    let good = claims();
    let with = |k: &str, v: serde_json::Value| {
        let mut c = good.clone();
        c[k] = v;
        c
    };
    let without = |k: &str| {
        let mut c = good.clone();
        c.as_object_mut().unwrap().remove(k);
        c
    };
    let rs = |c: &serde_json::Value| sign(Algorithm::RS256, Some("demo-rs256"), c);
    // alg none: a header naming no algorithm and no signature
    let none =
        format!("{}.{}.", b64(&serde_json::json!({"alg": "none", "typ": "JWT", "kid": "demo-rs256"})), b64(&good));
    // HS256 "signed" with the RSA public key as the HMAC secret (the classic confusion)
    let public_pem = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(super::support::keys().join("demo-rs256.pem"))
        .output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    let mut hs_header = jsonwebtoken::Header::new(Algorithm::HS256);
    hs_header.kid = Some("demo-rs256".into());
    let hs256 = jsonwebtoken::encode(&hs_header, &good, &jsonwebtoken::EncodingKey::from_secret(&public_pem)).unwrap();
    // a valid token with one byte of its signature changed
    let mut tampered = rs(&good);
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    // an RS256 token presented under the EC key's kid
    let wrong_key_type = sign(Algorithm::RS256, Some("demo-es256"), &good);

    let cases: Vec<(&str, String, &str)> = vec![
        ("alg none", none, "invalid_token"),
        ("HS256 with the RSA public key", hs256, "invalid_token"),
        ("tampered signature", tampered, "invalid_token"),
        ("RS256 under an EC kid", wrong_key_type, "invalid_token"),
        ("not a JWT", "abc.def".into(), "invalid_token"),
        ("expired", rs(&with("exp", (now() - 3600).into())), "expired_token"),
        ("not yet valid", rs(&with("nbf", (now() + 3600).into())), "token_not_yet_valid"),
        ("wrong issuer", rs(&with("iss", "someone-else".into())), "wrong_issuer"),
        ("no issuer", rs(&without("iss")), "wrong_issuer"),
        ("wrong audience", rs(&with("aud", "another-api".into())), "wrong_audience"),
        ("no expiry", rs(&without("exp")), "invalid_token"),
        ("unknown kid", sign(Algorithm::RS256, Some("rotated-away"), &good), "unknown_key"),
        ("no kid", sign(Algorithm::RS256, None, &good), "unknown_key"),
        ("no subject", rs(&without("sub")), "invalid_token"),
        ("assignments of another shape", rs(&with("assignments", "network_admin".into())), "invalid_token"),
    ];
    for (what, tok, reason) in &cases {
        let a = get_as(addr, target, tok).await;
        assert_eq!(a.status, 401, "{what}: {a:?}");
        assert_eq!(a.reason(), *reason, "{what}: {a:?}");
        assert_eq!(a.json()["error"], "unauthenticated", "{what}");
        assert!(a.header("www-authenticate").is_some_and(|h| h.starts_with("Bearer")), "{what}: {a:?}");
        assert_eq!(a.json()["decision_id"].as_str(), a.header("x-rolescope-decision-id"), "{what}");
    }
    // other schemes, and a token in the query string
    let a = request(addr, "GET", target, &[("Authorization", "Basic dXNlcjpwYXNz")]).await;
    assert_eq!((a.status, a.reason().as_str()), (401, "invalid_token"));
    let a = request(addr, "GET", &format!("{target}?access_token={}", token("na_o1")), &[]).await;
    assert_eq!((a.status, a.reason().as_str()), (400, "token_in_query"));
    // no token on a protected route: the engine says unauthenticated
    let a = request(addr, "GET", target, &[]).await;
    assert_eq!((a.status, a.reason().as_str()), (401, "missing_token"), "{a:?}");
    assert_eq!(a.header("www-authenticate"), Some("Bearer"));
    assert!(upstream.seen().is_empty(), "refused requests reached the upstream: {:?}", upstream.seen());

    // good tokens, both algorithms, are decided by the engine (allowed in o1, denied in o2)
    let es = sign(Algorithm::ES256, Some("demo-es256"), &good);
    for tok in [rs(&good), es, token("na_o1")] {
        let a = get_as(addr, target, &tok).await;
        assert_eq!(a.status, 200, "{a:?}");
        let a = get_as(addr, "/api/v1/orgs/o2/devices", &tok).await;
        assert_eq!((a.status, a.reason().as_str()), (403, "out_of_scope"), "{a:?}");
    }
    assert_eq!(upstream.seen().len(), 3, "exactly the allowed requests reach the upstream");
    // the cached token answers the same
    let tok = rs(&good);
    for _ in 0..3 {
        assert_eq!(get_as(addr, target, &tok).await.status, 200);
    }
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_principal_is_denied_and_anonymous_callers_reach_public_routes_only() {
    let upstream = Upstream::start().await;
    let s = Setup::new();
    let gw = start(s.enforcing(upstream.addr, "")).await;
    let addr = gw.local_addr();
    let a = get_as(addr, "/api/v1/msp/orgs", &token("su")).await;
    assert_eq!(a.status, 200, "{a:?}");
    let a = get_as(addr, "/api/v1/msp/orgs", &token("su_suspended")).await;
    assert_eq!((a.status, a.reason().as_str()), (403, "principal_inactive"), "{a:?}");
    let a = request(addr, "GET", "/api/v1/status", &[]).await;
    assert_eq!(a.status, 200, "public route: {a:?}");
    let a = get_as(addr, "/api/v1/orgs/o1/../o2/devices", &token("su")).await;
    assert_eq!((a.status, a.reason().as_str(), a.json()["error"].as_str()), (400, "invalid_path", Some("bad_request")));
    let a = get_as(addr, "/api/v1/nothing-here", &token("su")).await;
    assert_eq!((a.status, a.reason().as_str()), (403, "no_route"), "{a:?}");
    let targets: Vec<String> = upstream.seen().iter().map(|s| s.target.clone()).collect();
    assert_eq!(targets, ["/api/v1/msp/orgs", "/api/v1/status"]);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn principals_filed_in_the_bundle_replace_the_token_claims() {
    let upstream = Upstream::start().await;
    let s = Setup::new();
    let filed = "\nprincipals:\n  ana:\n    assignments: [{ role: network_admin, scope: \"msp:mist\", tenants: [\"org:o1\"] }]\n";
    let (bundle, _) = super::support::mist_bundle(filed);
    let config = s.config(
        upstream.addr,
        &format!(
            "policy: {{ file: bundle.json }}\nidentity:\n  principals_from_bundle: true\n  jwt: {{ issuer: rolescope-demo, audience: rolescope-gateway, jwks_file: {} }}\n",
            super::support::keys().join("jwks.json").display()
        ),
    );
    s.write("bundle.json", &bundle);
    let gw = start(config).await;
    let addr = gw.local_addr();
    // the token claims super_user everywhere; the bundle files ana as a network admin of o1
    let mut c = claims();
    c["sub"] = "ana".into();
    c["assignments"] = serde_json::json!([{ "role": "super_user", "scope": "msp:mist" }]);
    let ana = sign(Algorithm::RS256, Some("demo-rs256"), &c);
    assert_eq!(get_as(addr, "/api/v1/orgs/o1/devices", &ana).await.status, 200);
    let a = get_as(addr, "/api/v1/orgs/o2/devices", &ana).await;
    assert_eq!((a.status, a.reason().as_str()), (403, "out_of_scope"), "{a:?}");
    // a subject the bundle does not file: public routes only
    c["sub"] = "nobody".into();
    let nobody = sign(Algorithm::RS256, Some("demo-rs256"), &c);
    let a = get_as(addr, "/api/v1/orgs/o1/devices", &nobody).await;
    assert_eq!((a.status, a.reason().as_str()), (403, "unknown_principal"), "{a:?}");
    assert_eq!(get_as(addr, "/api/v1/status", &nobody).await.status, 200);
    assert_eq!(upstream.seen().len(), 2);
    gw.shutdown().await;
}
