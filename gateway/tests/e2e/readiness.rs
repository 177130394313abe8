//! Readiness before and after a policy loads, readiness without an upstream, and config
//! errors that stop the gateway at start with a message naming the field.

use std::time::{Duration, Instant};

use crate::support::{self, GatewayConfig, Source, Upstream, http, tokens};

#[test]
fn not_ready_until_the_bundle_file_appears() {
    let upstream = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle.json");
    let mut gw = support::Gateway::start(&GatewayConfig::new(&upstream, Source::File(bundle.clone(), true)));
    assert_eq!(http::get(gw.admin, "/livez").status, 200);
    assert_eq!(http::get(gw.admin, "/readyz").status, 503, "no policy loaded yet");
    let su = support::principal("juniper-mist-msp", "su");
    let auth = tokens::bearer(&su);
    let target = "/api/v1/orgs/o1/devices/ap-11";
    let r = gw.send("GET", target, &[("authorization", &auth)]);
    assert_eq!((r.status, r.reason().as_str()), (503, "no_policy"), "{}", r.summary());
    assert_eq!(r.json()["error"], "unavailable");
    let r = gw.send("GET", target, &[]);
    assert_eq!(r.status, 503, "without a policy even anonymous requests are unavailable: {}", r.summary());
    upstream.assert_untouched("before a policy loads");

    // a refused bundle while none is loaded: the log says so (no "previous one" to keep serving)
    support::publish(&bundle, "{\"format\": \"rolescope-bundle/1\"}");
    gw.wait_for(|g| g.output().contains("policy bundle refused"), "the refusal of a malformed bundle");
    let out = gw.output();
    assert!(out.contains("no bundle is loaded, so every request is refused (503 no_policy)"), "{out}");
    assert!(!out.contains("the previous one keeps serving"), "{out}");

    support::publish(&bundle, &support::folder("juniper-mist-msp").bundle);
    let start = Instant::now();
    gw.wait_for(|g| http::try_status(g.admin, "/readyz") == 200, "readyz after the bundle file appeared");
    assert!(start.elapsed() < Duration::from_secs(30));
    let r = gw.send("GET", target, &[("authorization", &auth)]);
    assert_ne!(r.status, 503, "{}", r.summary());
    assert_eq!(r.header("x-rolescope-revision"), Some(support::policy("juniper-mist-msp").revision()));
    assert!(gw.metrics().contains("rolescope_bundle_info"), "metrics name the bundle");
}

#[test]
fn not_ready_while_the_upstream_is_down() {
    let upstream = Upstream::start();
    let dead = support::free_addr();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle.json");
    support::publish(&bundle, &support::folder("juniper-mist-msp").bundle);
    let mut config = GatewayConfig::new(&upstream, Source::File(bundle, true));
    config.upstream = format!("http://{dead}");
    config.extra.push_str("readiness: { health_path: /__health }\n");
    let gw = support::Gateway::start(&config);
    // give it time to load the policy: readiness must stay 503 because the upstream is down
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(http::get(gw.admin, "/readyz").status, 503);
    let su = support::principal("juniper-mist-msp", "su");
    let r = gw.send("GET", "/api/v1/orgs/o1/devices/ap-11", &[("authorization", &tokens::bearer(&su))]);
    assert_eq!(r.status, 502, "an allowed request to a dead upstream: {}", r.summary());
    assert_eq!(r.reason(), "upstream_unavailable");
}

/// In front of an API without a special health path, the gateway is ready once its policy has
/// loaded: the upstream is not asked (here it is not even running).
#[test]
fn ready_without_an_upstream_health_path() {
    let upstream = Upstream::start();
    let dead = support::free_addr();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle.json");
    let mut config = GatewayConfig::new(&upstream, Source::File(bundle.clone(), true));
    config.upstream = format!("http://{dead}/base");
    let mut gw = support::Gateway::start(&config);
    let r = http::get(gw.admin, "/readyz");
    assert_eq!((r.status, r.json()["detail"].as_str()), (503, Some("no policy loaded")), "{}", r.summary());
    support::publish(&bundle, &support::folder("juniper-mist-msp").bundle);
    gw.wait_for(|g| http::try_status(g.admin, "/readyz") == 200, "readyz without a health path");
    let r = http::get(gw.admin, "/readyz");
    assert_eq!(r.json()["ready"], true, "{}", r.summary());
    assert_eq!(r.json()["revision"].as_str(), Some(support::policy("juniper-mist-msp").revision()));
    // the health path, when set, is asked on the upstream (below its base path)
    let mut config = GatewayConfig::new(&upstream, Source::File(bundle, true));
    config.extra.push_str("readiness: { health_path: /__health }\n");
    let gw = support::Gateway::start(&config);
    let mut gw = gw;
    gw.wait_for(|g| http::try_status(g.admin, "/readyz") == 200, "readyz with the demo's health path");
}

/// Write `yaml` as a config and run `serve` and `check-config` on it: both must fail, naming
/// `field`.
#[track_caller]
fn refused(yaml: &str, envs: &[(&str, &str)], field: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, yaml).unwrap();
    let path = path.to_str().unwrap();
    for cmd in ["check-config", "serve"] {
        let (code, out) = support::run_gateway(&[cmd, "--config", path], envs);
        assert!(code.is_some_and(|c| c != 0), "{cmd} accepted a bad config ({code:?}):\n{yaml}\n{out}");
        assert!(out.contains(field), "{cmd}: the error does not name `{field}`:\n{out}");
    }
}

/// A valid config (its bundle written into `dir`).
fn base_config(dir: &std::path::Path) -> String {
    let bundle = dir.join("bundle.json");
    support::publish(&bundle, &support::folder("juniper-mist-msp").bundle);
    format!(
        "listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\nupstream: http://127.0.0.1:9\nmodule: {}\n\
         policy: {{ file: {} }}\nidentity:\n  jwt:\n    issuer: x\n    audience: y\n    algorithms: [RS256]\n    jwks_file: {}\n",
        crate::module::path().display(),
        bundle.display(),
        tokens::jwks_file().display()
    )
}

#[test]
fn config_errors_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let base = base_config(dir.path());
    // the base itself is accepted by check-config (so every refusal below is about its change)
    let ok = dir.path().join("ok.yaml");
    std::fs::write(&ok, &base).unwrap();
    let (code, out) = support::run_gateway(&["check-config", "--config", ok.to_str().unwrap()], &[]);
    assert_eq!(code, Some(0), "the base config is valid:\n{out}");

    refused(&format!("{base}listne: 127.0.0.1:1\n"), &[], "listne");
    refused(&base.replace("listen: 127.0.0.1:0\n", "listen: not-an-address\n"), &[], "listen");
    refused(&base.replace("upstream: http://127.0.0.1:9", "upstream: ftp://["), &[], "upstream");
    refused(&base.replace("[RS256]", "[HS999]"), &[], "algorithms");
    refused(&format!("{base}limits: {{ header_timeout: soon }}\n"), &[], "header_timeout");
    refused(&format!("{base}decision_log: {{ sink: carrier-pigeon }}\n"), &[], "sink");
    refused(&base, &[("ROLESCOPE_GATEWAY_LISTEN", "nowhere")], "listen");
    refused(&base, &[("ROLESCOPE_GATEWAY_ENFORCE", "maybe")], "enforce");
    let (code, out) = support::run_gateway(&["serve", "--config", "/nonexistent/rolescope.yaml"], &[]);
    assert!(code.is_some_and(|c| c != 0), "a missing config file must fail: {out}");
}
