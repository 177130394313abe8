//! Header hygiene: hop-by-hop headers, headers named in `Connection` and client-sent
//! `x-rolescope-*` never reach the upstream; the gateway adds its own and a `traceparent`.

use super::support::{Setup, Upstream, request, start, token};

const TRACE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passthrough_strips_hop_by_hop_and_internal_headers() {
    let upstream = Upstream::start().await;
    let s = Setup::new();
    let gw = start(s.config(upstream.addr, "enforce: false\n")).await;
    let a = request(
        gw.local_addr(),
        "GET",
        "/anything?x=1",
        &[
            ("X-Rolescope-Principal", "admin"),
            ("x-rolescope-revision", "forged"),
            ("Connection", "close, X-Secret-Hop"),
            ("X-Secret-Hop", "1"),
            ("Keep-Alive", "timeout=5"),
            ("TE", "trailers"),
            ("Proxy-Authorization", "Basic x"),
            ("X-Kept", "yes"),
            ("X-Forwarded-For", "6.6.6.6"),
            ("traceparent", TRACE),
        ],
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let seen = upstream.seen();
    assert_eq!(seen.len(), 1);
    let got = &seen[0];
    assert_eq!(got.target, "/anything?x=1");
    // (an `Upgrade` is refused, not stripped: tests/e2e/bypass.rs)
    for h in ["x-secret-hop", "keep-alive", "te", "proxy-authorization", "x-rolescope-principal"] {
        assert!(got.header(h).is_none(), "{h} reached the upstream: {got:?}");
    }
    assert_ne!(got.header("x-rolescope-revision"), Some("forged"));
    assert_eq!(got.header("x-kept"), Some("yes"));
    assert_eq!(got.header("traceparent"), Some(TRACE), "a valid traceparent is passed on");
    assert_eq!(got.header("x-rolescope-decision-id"), a.header("x-rolescope-decision-id"));
    // the client's own X-Forwarded-For is replaced: no proxy is trusted by default
    assert_eq!(got.header("x-forwarded-for"), Some("127.0.0.1"));
    // the upstream's hop-by-hop answer headers are dropped too
    assert!(a.header("x-upstream-private").is_none() && a.header("keep-alive").is_none(), "{a:?}");
    assert_eq!(a.header("x-upstream"), Some("yes"));
    assert_eq!(a.header("x-rolescope-revision"), Some("none"), "passthrough has no bundle");

    // a malformed traceparent is replaced by a new valid one
    upstream.clear();
    request(gw.local_addr(), "GET", "/x", &[("traceparent", "00-zz-yy-01")]).await;
    let tp = upstream.seen()[0].header("traceparent").unwrap().to_owned();
    let parts: Vec<&str> = tp.split('-').collect();
    assert_eq!((parts.len(), parts[0], parts[1].len(), parts[2].len()), (4, "00", 32, 16), "{tp}");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforced_requests_carry_the_principal_decision_and_revision() {
    let upstream = Upstream::start().await;
    let s = Setup::new();
    let gw = start(s.enforcing(upstream.addr, "")).await;
    let revision = gw.revision().unwrap();
    let tok = token("na_o1");
    let a = request(
        gw.local_addr(),
        "GET",
        "/api/v1/orgs/o1/devices",
        &[("Authorization", &format!("Bearer {tok}")), ("X-Rolescope-Principal", "su")],
    )
    .await;
    assert_eq!(a.status, 200, "{a:?}");
    let got = &upstream.seen()[0];
    assert_eq!(got.header("x-rolescope-principal"), Some("na_o1"), "the token's subject, not the client's header");
    assert_eq!(got.header("x-rolescope-revision"), Some(revision.as_str()));
    assert_eq!(got.header("x-rolescope-decision-id"), a.header("x-rolescope-decision-id"));
    assert_eq!(a.header("x-rolescope-revision"), Some(revision.as_str()));
    assert!(got.header("traceparent").is_some());

    // denied: the answer carries the same headers, the upstream sees nothing
    let a = request(gw.local_addr(), "GET", "/api/v1/orgs/o2/devices", &[("Authorization", &format!("Bearer {tok}"))])
        .await;
    assert_eq!(a.status, 403);
    assert_eq!(a.header("x-rolescope-revision"), Some(revision.as_str()));
    let id = a.header("x-rolescope-decision-id").unwrap().to_owned();
    assert_eq!(a.json()["decision_id"], id.as_str());
    assert_eq!(upstream.seen().len(), 1);

    // the decision log has both, with the documented fields
    let found = super::support::eventually(std::time::Duration::from_secs(5), async || {
        super::support::decisions(s.dir.path()).iter().any(|d| d["decision_id"] == id.as_str())
    })
    .await;
    assert!(found, "decision {id} not logged");
    let log = super::support::decisions(s.dir.path());
    let denied = log.iter().find(|d| d["decision_id"] == id.as_str()).unwrap();
    assert_eq!(denied["allowed"], false);
    assert_eq!(denied["reason"], "out_of_scope");
    assert_eq!(denied["principal"], "na_o1");
    assert_eq!(denied["question"]["action"], "list");
    assert_eq!(denied["question"]["kind"], "device");
    assert_eq!(denied["revision"], revision.as_str());
    for field in ["schema", "time", "request", "question", "route", "route_miss", "cause", "latency_us"] {
        assert!(denied.get(field).is_some(), "{field} missing: {denied}");
    }
    let metrics = gw.metrics_text();
    assert!(metrics.contains("rolescope_decisions_total{decision=\"allow\"} 1"), "{metrics}");
    assert!(metrics.contains("rolescope_decisions_total{decision=\"deny\"} 1"), "{metrics}");
    assert!(metrics.contains(&format!("rolescope_bundle_info{{revision=\"{revision}\"}} 1")));
    assert!(metrics.contains("rolescope_http_requests_total{status=\"403\"} 1"));
    gw.shutdown().await;
}
