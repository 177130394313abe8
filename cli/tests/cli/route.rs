//! `rolescope route`: an HTTP request through a seed policy's route table.

use crate::{root, run};

const NA_O1: &str =
    r#"{"id": "na", "assignments": [{"role": "network_admin", "scope": "msp:mist", "tenants": ["org:o1"]}]}"#;

fn route(args: &[&str]) -> (i32, serde_json::Value, String) {
    let mut all = vec!["route", "--policy", "policies/juniper-mist-msp"];
    all.extend_from_slice(args);
    let r = run(&root(), &all);
    let v = serde_json::from_str(&r.stdout).unwrap_or(serde_json::Value::Null);
    (r.code, v, r.stderr)
}

#[test]
fn route_maps_and_decides() {
    let (code, v, err) = route(&["--principal-json", NA_O1, "POST /api/v1/orgs/o1/devices/ap-1/reboot"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["allowed"], true);
    assert_eq!(v["route"], "POST /api/v1/orgs/{org}/devices/{device}/reboot");
    assert_eq!(v["scope"], "msp:mist/org:o1");
    assert_eq!(v["tenant"], "org:o1");
    assert_eq!(v["resourceId"], "ap-1");
}

#[test]
fn route_denies_other_tenants_bad_paths_and_anonymous_callers() {
    let (code, v, _) = route(&["--principal-json", NA_O1, "--exit-code", "GET /api/v1/orgs/o2/devices"]);
    assert_eq!((code, v["reason"].as_str()), (5, Some("out_of_scope")));
    let (code, v, _) = route(&["--principal-json", NA_O1, "--exit-code", "GET /api/v1/orgs/o1/%2e%2e/o2/devices"]);
    assert_eq!((code, v["reason"].as_str()), (5, Some("invalid_path")));
    let (code, v, _) = route(&["GET /api/v1/orgs/o1/devices"]);
    assert_eq!((code, v["reason"].as_str()), (0, Some("unauthenticated")));
    let (code, v, _) = route(&["GET /api/v1/status"]);
    assert_eq!((code, v["allowed"].as_bool(), v["public"].as_bool()), (0, Some(true), Some(true)));
}

#[test]
fn route_usage_errors() {
    let (code, _, err) = route(&["GET"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a request line"), "{err}");
    let (code, _, err) = route(&["-H", "no-colon", "GET /api/v1/status"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = route(&["--principal", "nobody", "GET /api/v1/status"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no principal `nobody`"), "{err}");
}
