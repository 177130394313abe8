//! Configuration errors name the field; environment overrides; `check-config`.

use std::path::Path;

use rolescope_gateway::GatewayConfig;

use super::support::{Setup, keys, mist_bundle};

fn parse(yaml: &str) -> Result<GatewayConfig, String> {
    GatewayConfig::parse(yaml, Path::new("/etc/gw/gateway.yaml"), |_| None).map_err(|e| e.to_string())
}

fn parse_env(yaml: &str, env: &[(&str, &str)]) -> Result<GatewayConfig, String> {
    GatewayConfig::parse(yaml, Path::new("/etc/gw/gateway.yaml"), |k| {
        env.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
    })
    .map_err(|e| e.to_string())
}

const BASE: &str = "upstream: http://127.0.0.1:8081\npolicy: { file: bundle.json }\n";

#[test]
fn a_minimal_config_gets_the_documented_defaults() {
    let c = parse(BASE).unwrap();
    assert_eq!(c.listen().to_string(), "127.0.0.1:8080");
    assert_eq!(c.admin_listen().to_string(), "127.0.0.1:9090");
    assert!(c.enforce());
}

#[test]
fn every_error_names_its_field() {
    let cases: &[(&str, &str)] = &[
        ("limits: { header_timeout: 5x }", "limits.header_timeout: invalid duration \"5x\""),
        ("limits: { upstream_timeout: 0s }", "limits.upstream_timeout: must be more than 0"),
        ("limits: { max_header_bytes: 10 }", "limits.max_header_bytes"),
        ("listen: nowhere", "listen: invalid socket address \"nowhere\""),
        ("policy: { file: a.json, url: \"http://x:1/b\" }", "policy: give either"),
        ("policy: { file: b, poll_interval: 1ms }", "policy.poll_interval"),
        ("policy: { file: b, require_signature: { public_keys: [] } }", "policy.require_signature.public_keys: empty"),
        (
            "policy: { file: b, require_signature: { public_keys: [no-such-key.pem] } }",
            "policy.require_signature.public_keys[0]: cannot read",
        ),
        ("decision_log: { sink: file }", "decision_log.path: missing"),
        ("decision_log: { sink: syslog }", "decision_log.sink: unknown sink \"syslog\""),
        (
            "decision_log: { mask: [/request/target] }",
            "decision_log.mask[0]: \"/request/target\" is not a JSON pointer into",
        ),
        (
            "decision_log: { mask: [/input/a, /input/b~2] }",
            "decision_log.mask[1]: \"/input/b~2\": `~` must be followed",
        ),
        (
            "decision_log: { input: { headers: [x-ok, authorization] } }",
            "decision_log.input.headers[1]: `authorization` carries",
        ),
        ("decision_log: { input: { headers: [\"bad name\"] } }", "decision_log.input.headers[0]: not a header name"),
        ("identity: { jwt: { audience: a, jwks_file: k.json } }", "identity.jwt.issuer: missing"),
        ("identity: { jwt: { issuer: i, audience: a } }", "identity.jwt: missing `jwks_file` or `jwks_url`"),
        (
            "identity: { jwt: { issuer: i, audience: a, jwks_file: k, algorithms: [HS256] } }",
            "identity.jwt.algorithms: HS256 is not allowed",
        ),
        (
            "identity: { jwt: { issuer: i, audience: a, jwks_file: k, algorithms: [none] } }",
            "identity.jwt.algorithms: unknown algorithm",
        ),
        (
            "identity: { jwt: { issuer: i, audience: a, jwks_url: \"ftp://idp/keys\" } }",
            "identity.jwt.jwks_url: invalid URL",
        ),
        ("tls: { cert_file: c.pem }", "tls.key_file: missing"),
        ("upstream_tls: { client_cert_file: c.pem }", "upstream_tls.client_key_file: missing"),
        ("readiness: { health_path: healthz }", "readiness.health_path: invalid path"),
        ("upstream_host: \"a b\"", "upstream_host: invalid host"),
        (
            "identity: { directory: { file: d.json, url: \"https://d/p.json\" } }",
            "identity.directory: give either `file` or `url`",
        ),
        ("identity: { directory: { file: d.json, unlisted: allow } }", "identity.directory.unlisted: unknown value"),
        (
            "identity: { jwt: { issuer: i, audience: a, jwks_file: k, claim_rules: [{ claim: groups, value: g, role: \"\", scope: s }] } }",
            "identity.jwt.claim_rules[0].role: empty",
        ),
    ];
    for (extra, want) in cases {
        // later keys override earlier ones in our YAML only by replacement: build each whole
        let yaml = if extra.starts_with("policy:") {
            format!("upstream: http://127.0.0.1:8081\n{extra}\n")
        } else {
            format!("{BASE}{extra}\n")
        };
        let err = parse(&yaml).err().unwrap_or_else(|| format!("accepted: {yaml}"));
        assert!(err.contains(want), "{extra}: got `{err}`, want `{want}`");
    }
}

#[test]
fn upgrade_declarations_are_checked() {
    let ok = "upgrades:\n  - { route: \"GET /api/v1/orgs/{org}/events\", protocols: [websocket] }\n  - { route: \"GET /ws\", protocols: [WebSocket] }\n";
    assert!(parse(&format!("{BASE}{ok}")).is_ok(), "{ok}");
    let cases: &[(&str, &str)] = &[
        ("[{ protocols: [websocket] }]", "upgrades[0].route: missing"),
        ("[{ route: \"\", protocols: [websocket] }]", "upgrades[0].route: missing"),
        ("[{ route: /api/x, protocols: [websocket] }]", "upgrades[0].route: \"/api/x\" is not a route template"),
        (
            "[{ route: \"get /api/x\", protocols: [websocket] }]",
            "upgrades[0].route: \"get /api/x\" is not a route template",
        ),
        (
            "[{ route: \"GET api/x\", protocols: [websocket] }]",
            "upgrades[0].route: \"GET api/x\" is not a route template",
        ),
        (
            "[{ route: \"POST /api/x\", protocols: [websocket] }]",
            "upgrades[0].route: \"POST /api/x\": only a GET route",
        ),
        ("[{ route: \"GET /a\" }]", "upgrades[0].protocols: missing"),
        ("[{ route: \"GET /a\", protocols: [] }]", "upgrades[0].protocols: missing"),
        ("[{ route: \"GET /a\", protocols: [websocket, h2c] }]", "upgrades[0].protocols[1]: unknown protocol \"h2c\""),
        (
            "[{ route: \"GET /a\", protocols: [websocket] }, { route: \"GET /a\", protocols: [websocket] }]",
            "upgrades[1].route: \"GET /a\" is declared twice",
        ),
        ("[{ route: \"GET /a\", protocols: [websocket], methods: [GET] }]", "methods"),
    ];
    for (list, want) in cases {
        let yaml = format!("{BASE}upgrades: {list}\n");
        let err = parse(&yaml).err().unwrap_or_else(|| format!("accepted: {yaml}"));
        assert!(err.contains(want), "{list}: got `{err}`, want `{want}`");
    }
}

#[test]
fn unknown_fields_and_missing_upstream_are_refused() {
    let err = parse("upstream: http://127.0.0.1:1\npolicy: { file: b }\nlimits: { max_body: 1 }\n").unwrap_err();
    assert!(err.contains("max_body"), "{err}");
    let err = parse("policy: { file: b }\n").unwrap_err();
    assert!(err.starts_with("upstream: missing"), "{err}");
    let err = parse("upstream: ftp://api.example:443\npolicy: { file: b }\n").unwrap_err();
    assert!(err.starts_with("upstream: invalid URL"), "{err}");
    // HTTPS upstreams (verified against the platform's roots, or `upstream_tls.ca_file`)
    assert!(parse("upstream: https://api.example\npolicy: { file: b }\n").is_ok());
    let err = parse("upstream: http://127.0.0.1:1\n").unwrap_err();
    assert!(err.starts_with("policy: missing"), "{err}");
    // passthrough needs no policy
    assert!(!parse("upstream: http://127.0.0.1:1\nenforce: false\n").unwrap().enforce());
}

#[test]
fn environment_overrides_win_and_their_errors_name_the_variable() {
    let c = parse_env(BASE, &[("ROLESCOPE_GATEWAY_LISTEN", "0.0.0.0:1234"), ("ROLESCOPE_GATEWAY_ENFORCE", "false")])
        .unwrap();
    assert_eq!(c.listen().to_string(), "0.0.0.0:1234");
    assert!(!c.enforce());
    let err = parse_env(BASE, &[("ROLESCOPE_GATEWAY_HEADER_TIMEOUT", "soon")]).unwrap_err();
    assert_eq!(
        err,
        "ROLESCOPE_GATEWAY_HEADER_TIMEOUT (limits.header_timeout): invalid duration \"soon\" (expected e.g. 500ms, 5s, 2m, 1h)"
    );
    let err = parse_env(BASE, &[("ROLESCOPE_GATEWAY_ENFORCE", "maybe")]).unwrap_err();
    assert!(err.starts_with("ROLESCOPE_GATEWAY_ENFORCE (enforce): invalid boolean"), "{err}");
    // the upstream may come from the environment alone
    let c = parse_env("policy: { file: b }\n", &[("ROLESCOPE_GATEWAY_UPSTREAM", "http://10.0.0.1:80")]);
    assert!(c.is_ok(), "{c:?}");
}

#[test]
fn check_config_loads_the_module_bundle_and_keys() {
    let s = Setup::new();
    let (bundle, revision) = mist_bundle("");
    s.write("bundle.json", &bundle);
    let config = s.config(
        "127.0.0.1:9".parse().unwrap(),
        &format!(
            "policy: {{ file: bundle.json }}\nidentity: {{ jwt: {{ issuer: i, audience: a, jwks_file: {} }} }}\n",
            keys().join("jwks.json").display()
        ),
    );
    let summary = rolescope_gateway::check_config(&config).unwrap();
    assert!(summary.contains(&format!("bundle revision {revision}")), "{summary}");
    assert!(summary.contains("2 verification key(s)"), "{summary}");

    s.write("bundle.json", "{\"format\": \"rolescope-bundle/1\"}");
    let err = rolescope_gateway::check_config(&config).unwrap_err().to_string();
    assert!(err.starts_with("policy.file: "), "{err}");
}

/// `check-config` with `policy.require_signature` verifies as `serve` does: a bundle signed by
/// a trusted key passes; unsigned, tampered and foreign-signed ones are refused.
#[test]
fn check_config_verifies_signatures_as_serve_does() {
    let s = Setup::new();
    let trusted = rolescope_sign::generate().unwrap();
    let foreign = rolescope_sign::generate().unwrap();
    s.write("trusted.pub.pem", &rolescope_sign::public_key_to_pem(&trusted.verifying_key()).unwrap());
    let (bundle, revision) = mist_bundle("\n# signed\n");
    let config = s.config(
        "127.0.0.1:9".parse().unwrap(),
        "policy: { file: bundle.json, require_signature: { public_keys: [trusted.pub.pem] } }\n",
    );
    let signed = rolescope_sign::sign(&bundle, &[&trusted]).unwrap();
    s.write("bundle.json", &signed);
    let summary = rolescope_gateway::check_config(&config).unwrap();
    assert!(summary.contains(&format!("bundle revision {revision} (signature verified)")), "{summary}");

    let tampered = signed.replacen("# signed", "# signeD", 1);
    assert_ne!(tampered, signed);
    for (what, text) in [
        ("unsigned", bundle.clone()),
        ("tampered", tampered),
        ("foreign", rolescope_sign::sign(&bundle, &[&foreign]).unwrap()),
    ] {
        s.write("bundle.json", &text);
        let err = rolescope_gateway::check_config(&config).unwrap_err().to_string();
        assert!(err.starts_with("policy.file: bundle signature: "), "{what}: {err}");
    }
}

/// The configuration the root README shows for fronting a real MSP API (HTTPS both ways, a
/// JWKS URL, claim rules, a directory URL, no health path) is accepted as written.
#[test]
fn the_readmes_real_api_configuration_is_accepted() {
    let readme = std::fs::read_to_string(super::support::workspace().join("README.md")).unwrap();
    let start = readme.find("# gateway.yaml\n").expect("README shows `# gateway.yaml`");
    let block = &readme[start..];
    let yaml = &block[..block.find("```").expect("the block ends")];
    let c = parse(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    assert_eq!(c.listen().to_string(), "0.0.0.0:8443");
    // the directory is the part the README's JSON example describes
    let json_start = readme[start..].find("```json\n").map(|i| start + i + 8).expect("a directory example");
    let json = &readme[json_start..json_start + readme[json_start..].find("```").unwrap()];
    let d = rolescope_gateway::PrincipalDirectory::from_json(json.as_bytes(), None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(d.get("bo@acme.example").and_then(|p| p.status.as_deref()), Some("suspended"));
}
