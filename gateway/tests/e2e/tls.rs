//! HTTPS both ways with certificates made at test time: an HTTPS upstream behind a private CA
//! (and a Host override), an upstream certificate that does not verify (502, nothing sent),
//! mTLS to the upstream; the TLS listener serving HTTP/2 and HTTP/1.1 by ALPN, its certificate
//! reloaded when the files change, and the attack suite's checks over HTTP/2.

use std::time::{Duration, Instant};

use crate::support::tls::{self, Ca, TlsFront, Version};
use crate::support::{self, GatewayConfig, Source, Stack, Upstream, tokens};

const SEED: &str = "juniper-mist-msp";
const ALLOWED: &str = "/api/v1/orgs/o1/devices";

/// A gateway in front of `upstream_url` (the demo upstream behind a TLS front), with `extra`
/// configuration.
fn gateway(upstream: &Upstream, upstream_url: &str, extra: &str) -> (support::Gateway, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle.json");
    support::publish(&bundle, &support::folder(SEED).bundle);
    let mut config = GatewayConfig::new(upstream, Source::File(bundle, true));
    config.upstream = upstream_url.to_owned();
    config.extra = extra.to_owned();
    let gw = support::Gateway::start_ready(&config);
    (gw, dir)
}

fn su() -> String {
    tokens::bearer(&support::principal(SEED, "su"))
}

#[test]
fn tls_upstream_behind_a_private_ca_with_a_host_override() {
    let pki = tempfile::tempdir().unwrap();
    let ca = Ca::new(pki.path(), "private");
    let upstream = Upstream::start();
    let front = TlsFront::start(upstream.addr(), &ca.issue("api", &["localhost"]), None);
    let extra = format!("upstream_tls: {{ ca_file: {} }}\nupstream_host: api.msp.example\n", ca.ca.display());
    let (gw, _dir) = gateway(&upstream, &front.url(), &extra);
    upstream.clear();
    let r = gw.send("GET", ALLOWED, &[("authorization", &su())]);
    assert_eq!(r.status, 200, "{}", r.summary());
    let log = upstream.log();
    assert_eq!(log.len(), 1, "{log:#?}");
    assert_eq!(log[0].target, ALLOWED);
    assert_eq!(log[0].header_values("host"), ["api.msp.example"], "the Host override reached the upstream");
    // a denied request still goes nowhere
    upstream.clear();
    let r = gw.send("GET", "/api/v1/orgs/o1/devices", &[]);
    assert_eq!((r.status, r.reason().as_str()), (401, "missing_token"), "{}", r.summary());
    upstream.assert_untouched("a denied request over an HTTPS upstream");
}

#[test]
fn tls_upstream_certificate_that_does_not_verify_is_502_and_nothing_is_sent() {
    let pki = tempfile::tempdir().unwrap();
    let trusted = Ca::new(pki.path(), "trusted");
    let stranger = Ca::new(pki.path(), "stranger");
    let upstream = Upstream::start();
    // signed by a CA the gateway does not trust
    let untrusted = TlsFront::start(upstream.addr(), &stranger.issue("api-untrusted", &["localhost"]), None);
    // trusted CA, another name
    let misnamed = TlsFront::start(upstream.addr(), &trusted.issue("api-misnamed", &["api.other.example"]), None);
    let extra = format!("upstream_tls: {{ ca_file: {} }}\n", trusted.ca.display());
    for (what, front) in [("an unknown CA", &untrusted), ("a name that is not the upstream's", &misnamed)] {
        let (gw, _dir) = gateway(&upstream, &front.url(), &extra);
        upstream.clear();
        let r = gw.send("GET", ALLOWED, &[("authorization", &su())]);
        assert_eq!(
            (r.status, r.reason().as_str()),
            (502, "upstream_certificate"),
            "{what}: {}\n{}",
            r.summary(),
            gw.warnings()
        );
        assert_eq!(r.json()["error"], "bad_gateway");
        upstream.assert_untouched(what);
    }
}

#[test]
fn tls_upstream_mtls_presents_the_client_certificate() {
    let pki = tempfile::tempdir().unwrap();
    let ca = Ca::new(pki.path(), "server");
    let clients = Ca::new(pki.path(), "clients");
    let upstream = Upstream::start();
    let front = TlsFront::start(upstream.addr(), &ca.issue("api-mtls", &["localhost"]), Some(&clients));
    let client = clients.issue("gateway-client", &["rolescope-gateway"]);

    let without = format!("upstream_tls: {{ ca_file: {} }}\n", ca.ca.display());
    let (gw, _dir) = gateway(&upstream, &front.url(), &without);
    upstream.clear();
    let r = gw.send("GET", ALLOWED, &[("authorization", &su())]);
    assert_eq!(
        (r.status, r.reason().as_str()),
        (502, "upstream_certificate"),
        "no client certificate: {}",
        r.summary()
    );
    upstream.assert_untouched("an upstream requiring a client certificate the gateway lacks");
    drop(gw);

    let with = format!(
        "upstream_tls: {{ ca_file: {}, client_cert_file: {}, client_key_file: {} }}\n",
        ca.ca.display(),
        client.cert.display(),
        client.key.display()
    );
    let (gw, _dir) = gateway(&upstream, &front.url(), &with);
    upstream.clear();
    let r = gw.send("GET", ALLOWED, &[("authorization", &su())]);
    assert_eq!(r.status, 200, "with the client certificate: {}", r.summary());
    assert_eq!(upstream.log().len(), 1);
}

/// A stack whose listener serves TLS with the certificate and key of `pair` (files looked at
/// every 50 ms).
fn tls_stack(pair: &tls::Pair) -> Stack {
    tls_stack_polling(pair, "50ms")
}

fn tls_stack_polling(pair: &tls::Pair, poll: &str) -> Stack {
    let extra = format!(
        "tls: {{ cert_file: {}, key_file: {}, poll_interval: {poll} }}\nlimits: {{ max_body_bytes: 1024 }}\n",
        pair.cert.display(),
        pair.key.display()
    );
    Stack::start_with(SEED, |c| c.extra.push_str(&extra))
}

#[test]
fn tls_listener_serves_http2_and_http11_by_alpn() {
    let pki = tempfile::tempdir().unwrap();
    let ca = Ca::new(pki.path(), "listener");
    let stack = tls_stack(&ca.issue("gateway", &["localhost"]));
    let su = su();
    let na = tokens::bearer(&support::principal(SEED, "na_o1"));
    for (version, alpn) in [(Version::H2, &b"h2"[..]), (Version::H1, &b"http/1.1"[..])] {
        let send = |target: &str, auth: &str| {
            let req = tls::build(version, "GET", target, &[("authorization", auth)]);
            tls::request(stack.gateway.addr, &ca, version, req).unwrap_or_else(|e| panic!("{version:?}: {e}"))
        };
        let (negotiated, r) = send(ALLOWED, &su);
        assert_eq!(negotiated.as_deref(), Some(alpn));
        assert_eq!(r.status, 200, "{version:?}: {}", r.summary());
        assert!(r.header("x-rolescope-decision-id").is_some());
        let log = stack.upstream.log();
        assert_eq!(log.len(), 1, "{version:?}: {log:#?}");
        assert_eq!(log[0].target, ALLOWED);
        assert_eq!(log[0].header_values("host"), [stack.upstream.addr().to_string()]);
        stack.upstream.clear();
        let (_, r) = send("/api/v1/orgs/o2/devices", &na);
        assert_eq!((r.status, r.reason().as_str()), (403, "out_of_scope"), "{version:?}: {}", r.summary());
        stack.upstream.assert_untouched("a denied request over TLS");
    }
    // plain HTTP on the TLS port is not served
    let r = support::http::exchange(
        stack.gateway.addr,
        &support::http::request_bytes("GET", ALLOWED, &[("authorization", &su)], None),
        Duration::from_secs(10),
    );
    assert!(!matches!(r, support::http::Outcome::Response(ref r) if r.status == 200), "{r:?}");
    stack.upstream.assert_untouched("plain HTTP on the TLS listener");
}

#[test]
fn tls_listener_certificate_reloads_when_the_files_change() {
    let pki = tempfile::tempdir().unwrap();
    let ca = Ca::new(pki.path(), "reload");
    let first = ca.issue("gateway", &["localhost"]);
    let stack = tls_stack(&first);
    let before = tls::presented(stack.gateway.addr, &ca).unwrap();
    // a new certificate and key in the same files
    let second = ca.issue("gateway", &["localhost"]);
    assert_eq!(second.cert, first.cert);
    let start = Instant::now();
    let after = loop {
        let now = tls::presented(stack.gateway.addr, &ca).unwrap();
        if now != before {
            break now;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the new certificate was not picked up");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(after, tls::der(&second.cert), "the listener presents the new certificate");
    // a broken pair is refused and the current certificate keeps serving
    std::fs::write(&second.cert, "not a certificate").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(tls::presented(stack.gateway.addr, &ca).unwrap(), after);
    let req = tls::build(Version::H2, "GET", ALLOWED, &[("authorization", &su())]);
    let (_, r) = tls::request(stack.gateway.addr, &ca, Version::H2, req).unwrap();
    assert_eq!(r.status, 200, "{}", r.summary());
}

#[test]
fn tls_listener_certificate_reloads_on_sighup() {
    let pki = tempfile::tempdir().unwrap();
    let ca = Ca::new(pki.path(), "sighup");
    let stack = tls_stack_polling(&ca.issue("gateway", &["localhost"]), "1h");
    let before = tls::presented(stack.gateway.addr, &ca).unwrap();
    let second = ca.issue("gateway", &["localhost"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(tls::presented(stack.gateway.addr, &ca).unwrap(), before, "not looked at for an hour");
    stack.gateway.sighup();
    let start = Instant::now();
    while tls::presented(stack.gateway.addr, &ca).unwrap() == before {
        assert!(start.elapsed() < Duration::from_secs(20), "SIGHUP did not reload the certificate");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(tls::presented(stack.gateway.addr, &ca).unwrap(), tls::der(&second.cert));
}

/// An HTTP/2 attack: target, headers, the status (0: the stream refused) and reason expected.
type H2Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16, &'a str);

/// The attack suite's path and framing checks, sent over HTTP/2 (and the HTTP/1.1-only framing
/// attacks over TLS): the same statuses and reasons as over plain HTTP/1.1, nothing forwarded.
#[test]
fn tls_attack_suite_over_http2() {
    let pki = tempfile::tempdir().unwrap();
    let ca = Ca::new(pki.path(), "attacks");
    let stack = tls_stack(&ca.issue("gateway", &["localhost"]));
    let na = tokens::bearer(&support::principal(SEED, "na_o1"));
    let su = su();
    let su_token = su.trim_start_matches("Bearer ").to_owned();
    let a = [("authorization", na.as_str())];
    let bad = |target: &'static str| (target, a.to_vec(), 400, "invalid_path");
    let long = "a".repeat(64 * 1024);
    let query = format!("/api/v1/orgs/o1/devices?access_token={su_token}");
    let cases: Vec<H2Case<'_>> = vec![
        bad("/api/v1/orgs/o1/../o2/devices"),
        bad("/api/v1/orgs/o1/%2e%2e/o2/devices"),
        bad("/api/v1/orgs/o1/./devices"),
        bad("/api/v1/orgs/o1%2F..%2Fo2/devices"),
        bad("/api/v1/orgs/o1%5C..%5Co2/devices"),
        bad("/api/v1//orgs/o2/devices"),
        bad("/api/v1/orgs/o2;o1/devices"),
        bad("/api/v1/orgs/o1/%252e%252e/o2/devices"),
        bad("/api/v1/orgs/o1/%c0%ae%c0%ae/o2/devices"),
        bad("/api/v1/orgs/o2%00/devices"),
        bad("/api/v1/orgs/o%zz/devices"),
        ("/api/v1/orgs/O1/devices", a.to_vec(), 403, "out_of_scope"),
        ("/api/v1/orgs/o1/devices/", a.to_vec(), 403, "no_route"),
        ("/api/v1/orgs/%6f2/devices", a.to_vec(), 403, "out_of_scope"),
        ("/api/v1/orgs/o2/devices", a.to_vec(), 403, "out_of_scope"),
        (
            "/api/v1/orgs/o2/devices",
            vec![("authorization", &na), ("authorization", &su)],
            400,
            "duplicate_authorization",
        ),
        (ALLOWED, vec![("authorization", &na), ("host", "evil.example")], 400, "host_mismatch"),
        (&query, vec![], 400, "token_in_query"),
        (ALLOWED, vec![("authorization", "Bearer not-a-jwt")], 401, "invalid_token"),
        (ALLOWED, vec![], 401, "missing_token"),
        // over the header limit: 431, or the stream refused (0): never forwarded
        (ALLOWED, vec![("authorization", &na), ("x-padding", &long)], 0, ""),
    ];
    let mut failures = Vec::new();
    for (target, headers, status, reason) in &cases {
        let req = tls::build(Version::H2, "GET", target, headers);
        let observed = match tls::request(stack.gateway.addr, &ca, Version::H2, req) {
            Ok((_, r)) => (r.status, r.reason()),
            Err(e) => (0, e),
        };
        let refused = *status == 0 && (observed.0 == 0 || observed.0 == 431);
        if !refused && (observed.0 != *status || (!reason.is_empty() && observed.1 != *reason)) {
            let names: Vec<&str> = headers.iter().map(|(k, _)| *k).collect();
            failures.push(format!("h2 {target} {names:?}: observed {observed:?}, expected {status} {reason}"));
        }
        if !stack.upstream.log().is_empty() {
            failures.push(format!("h2 {target}: the upstream received it"));
            stack.upstream.clear();
        }
    }
    // a body over the limit
    let mut big = tls::build(Version::H2, "POST", ALLOWED, &[("authorization", &su)]);
    *big.body_mut() = http_body_util::Full::new(bytes::Bytes::from(vec![b'x'; 4096]));
    big.headers_mut().insert("content-length", http::HeaderValue::from_static("4096"));
    match tls::request(stack.gateway.addr, &ca, Version::H2, big) {
        Ok((_, r)) if (r.status, r.reason().as_str()) == (413, "body_too_large") => {}
        other => failures.push(format!("h2 body over the limit: {:?}", other.map(|(_, r)| r.summary()))),
    }
    if !stack.upstream.log().is_empty() {
        failures.push("h2 body over the limit: the upstream received it".into());
        stack.upstream.clear();
    }
    // CONNECT is refused over HTTP/2 as over HTTP/1.1
    let connect = http::Request::builder()
        .method("CONNECT")
        .uri("localhost:443")
        .version(http::Version::HTTP_2)
        .header("authorization", &su)
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    match tls::request(stack.gateway.addr, &ca, Version::H2, connect) {
        Ok((_, r)) if r.status == 400 => {}
        other => failures.push(format!("h2 CONNECT: {other:?}")),
    }
    // over TLS with HTTP/1.1, the framing checks of plain connections hold
    for (what, bytes, reason) in [
        (
            "CL + TE",
            format!(
                "POST /api/v1/orgs/o1/devices HTTP/1.1\r\nHost: localhost\r\nAuthorization: {na}\r\n\
                 Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            ),
            "ambiguous_framing",
        ),
        (
            "fragment",
            format!("GET /api/v1/orgs/o2/devices#/o1 HTTP/1.1\r\nHost: localhost\r\nAuthorization: {na}\r\n\r\n"),
            "invalid_path",
        ),
    ] {
        let out = String::from_utf8_lossy(&tls::raw_h1(stack.gateway.addr, &ca, bytes.as_bytes())).into_owned();
        if !out.starts_with("HTTP/1.1 400") || !out.contains(reason) {
            failures.push(format!("TLS HTTP/1.1 {what}: {out:?}"));
        }
    }
    stack.upstream.assert_untouched("HTTP/1.1 framing attacks over TLS");
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len() + 3, failures.join("\n"));
}
