//! Decision and compile benchmarks for the engine.
//!
//! Run: `cargo bench -p rolescope-engine --bench decide` (add `-- --quick` for a short run).
//! Groups:
//! - `decide/msp`: a Juniper-style MSP policy, a principal holding 10 assignments across 100
//!   orgs, decisions on an allowed org, an unassigned org, an ownership condition and a
//!   suspended principal;
//! - `decide/scale`: the same question as roles and tenants grow from 10 to 10,000
//!   (generated policies) — the time should stay flat;
//! - `batch`: allowed actions for one resource, and 100 resources x 4 actions;
//! - `compile`: a generated policy of 10,000 roles and 100,000 grants.

#![expect(clippy::expect_used, clippy::panic, reason = "benchmark set-up fails loudly on a broken fixture")]
#![expect(missing_docs, reason = "criterion_group! generates an undocumented function")]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rolescope_engine::{Assignment, HttpRequest, Policy, Principal, Resource, Source};

#[path = "support/generated_policy.rs"]
mod generated_policy;
use generated_policy::generated_policy;

/// The Juniper-style policy of the `msp` group.
const MSP_POLICY: &str = include_str!("msp.yaml");

fn principal(roles: &[&str], orgs: usize, assignments: usize) -> Principal {
    let mut a = Vec::new();
    for i in 0..assignments {
        let role = roles.get(i % roles.len()).copied().unwrap_or("observer");
        // spread the assignments across the org range
        let org = (i * orgs.max(1)) / assignments.max(1);
        a.push(Assignment { role: role.into(), scope: format!("msp:acme/org:o{org}"), tenants: None });
    }
    Principal { id: "ana".into(), status: None, attributes: Default::default(), assignments: a }
}

fn resource(kind: &str, org: usize, created_by: Option<&str>) -> Resource {
    let mut attributes = serde_json::Map::new();
    if let Some(c) = created_by {
        attributes.insert("created_by".into(), serde_json::Value::String(c.into()));
    }
    Resource { kind: kind.into(), id: "r1".into(), scope: format!("msp:acme/org:o{org}/site:s1"), attributes }
}

fn bench_msp(c: &mut Criterion) {
    let policy =
        Policy::compile(&[Source::new("msp.yaml", MSP_POLICY)]).unwrap_or_else(|e| panic!("{:#?}", e.diagnostics()));
    let roles = ["network_admin", "observer", "installer", "helpdesk", "network_admin"];
    let p = policy.prepare_principal(&principal(&roles, 100, 10)).expect("principal");
    let mut suspended = principal(&roles, 100, 10);
    suspended.status = Some("suspended".into());
    let suspended = policy.prepare_principal(&suspended).expect("principal");
    let ctx = policy.empty_context();
    let allowed = policy.prepare_resource(&resource("device", 50, None)).expect("resource");
    let other = policy.prepare_resource(&resource("device", 61, None)).expect("resource");
    let owned = policy.prepare_resource(&resource("maintenance_window", 0, Some("ana"))).expect("resource");
    assert!(policy.decide(&p, "update", &allowed, ctx).allowed());
    assert!(!policy.decide(&p, "update", &other, ctx).allowed());
    assert!(policy.decide(&p, "delete", &owned, ctx).allowed());
    assert!(!policy.decide(&suspended, "view", &allowed, ctx).allowed());

    let mut g = c.benchmark_group("decide/msp");
    g.bench_function("allowed_org", |b| b.iter(|| policy.decide(black_box(&p), "update", black_box(&allowed), ctx)));
    g.bench_function("other_org_denied", |b| b.iter(|| policy.decide(black_box(&p), "update", black_box(&other), ctx)));
    g.bench_function("ownership_condition", |b| {
        b.iter(|| policy.decide(black_box(&p), "delete", black_box(&owned), ctx))
    });
    g.bench_function("suspended", |b| {
        b.iter(|| policy.decide(black_box(&suspended), "view", black_box(&allowed), ctx))
    });
    // the whole path from request data: preparation included
    let req = rolescope_engine::Request {
        principal: rolescope_engine::PrincipalRef::Inline(principal(&roles, 100, 10)),
        action: "update".into(),
        resource: resource("device", 50, None),
        context: Default::default(),
    };
    g.bench_function("from_request_data", |b| b.iter(|| policy.check(black_box(&req))));
    g.finish();

    let mut g = c.benchmark_group("batch");
    g.bench_function("allowed_actions_one_resource", |b| {
        b.iter(|| policy.allowed_actions(black_box(&p), black_box(&allowed), ctx))
    });
    let many: Vec<_> =
        (0..100).map(|i| policy.prepare_resource(&resource("device", i, None)).expect("resource")).collect();
    let actions = ["view", "update", "delete", "reboot"];
    g.bench_function("100_resources_x_4_actions", |b| {
        b.iter(|| policy.check_batch(black_box(&p), &actions, black_box(&many), ctx))
    });
    g.finish();
}

fn bench_scale(c: &mut Criterion) {
    let mut g = c.benchmark_group("decide/scale");
    for n in [10usize, 100, 1_000, 10_000] {
        let policy = Policy::compile(&[Source::new("gen.yaml", generated_policy(n, 10))]).expect("generated compiles");
        let names: Vec<String> = (0..10).map(|i| format!("role{}", (i * n) / 10)).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let p = policy.prepare_principal(&principal(&refs, n, 10)).expect("principal");
        let ctx = policy.empty_context();
        let r = policy.prepare_resource(&resource("kind3", n / 2, Some("bob"))).expect("resource");
        g.bench_with_input(BenchmarkId::new("roles_and_tenants", n), &n, |b, _| {
            b.iter(|| policy.decide(black_box(&p), "view", black_box(&r), ctx))
        });
    }
    g.finish();
}

fn bench_compile(c: &mut Criterion) {
    let text = generated_policy(10_000, 10);
    let src = [Source::new("gen.yaml", text)];
    let p = Policy::compile(&src).expect("compiles");
    assert_eq!(p.rule_count(), 100_001);
    // The same policy as JSON (the fast path: serde_json instead of the YAML parser).
    let value: serde_json::Value = serde_saphyr::from_str_with_options(
        src[0].text(),
        serde_saphyr::options! { budget: serde_saphyr::budget! { max_events: 8_000_000, max_nodes: 4_000_000 } },
    )
    .expect("yaml to json");
    let json = [Source::new("gen.json", serde_json::to_string(&value).expect("json"))];
    assert_eq!(Policy::compile(&json).expect("json compiles").rule_count(), 100_001);
    let mut g = c.benchmark_group("compile");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("10k_roles_100k_grants_yaml", |b| b.iter(|| Policy::compile(black_box(&src))));
    g.bench_function("10k_roles_100k_grants_json", |b| b.iter(|| Policy::compile(black_box(&json))));
    g.finish();

    // A shipped seed policy, as authors and the gateway load it.
    let seed = [Source::new("roles.yaml", include_str!("../../policies/jumpcloud-mtp/roles.yaml"))];
    Policy::compile(&seed).expect("seed policy compiles");
    let mut g = c.benchmark_group("compile");
    g.bench_function("seed_jumpcloud_mtp_yaml", |b| b.iter(|| Policy::compile(black_box(&seed))));
    g.finish();
}

/// The gateway's question: an HTTP request through the route table (normalization, matching,
/// resource and context preparation, decision), on a shipped seed policy and its routes.
fn bench_http(c: &mut Criterion) {
    let sources = [
        Source::new("roles.yaml", include_str!("../../policies/juniper-mist-msp/roles.yaml")),
        Source::new("routes.yaml", include_str!("../../policies/juniper-mist-msp/routes.yaml")),
    ];
    let policy = Policy::compile(&sources).expect("seed policy compiles");
    let na: Principal = serde_json::from_str(
        r#"{"id":"na","assignments":[{"role":"network_admin","scope":"msp:mist","tenants":["org:o1","org:o2"]}]}"#,
    )
    .expect("principal");
    let p = policy.prepare_principal(&na).expect("prepared");
    let headers = [("accept", "application/json"), ("user-agent", "bench")];
    let allowed = HttpRequest { method: "POST", target: "/api/v1/orgs/o1/devices/ap-10/reboot", headers: &headers };
    let other = HttpRequest { method: "GET", target: "/api/v1/orgs/o3/devices?page=2", headers: &headers };
    let hostile = HttpRequest { method: "GET", target: "/api/v1/orgs/o1/%2e%2e/o3/devices", headers: &headers };
    assert!(policy.authorize_http(Some(&p), &allowed).allowed());
    assert!(!policy.authorize_http(Some(&p), &other).allowed());
    let mut g = c.benchmark_group("http");
    g.bench_function("allowed_route", |b| b.iter(|| policy.authorize_http(Some(black_box(&p)), black_box(&allowed))));
    g.bench_function("other_tenant_denied", |b| {
        b.iter(|| policy.authorize_http(Some(black_box(&p)), black_box(&other)))
    });
    g.bench_function("invalid_path", |b| b.iter(|| policy.authorize_http(Some(black_box(&p)), black_box(&hostile))));
    g.finish();
}

criterion_group!(benches, bench_msp, bench_scale, bench_compile, bench_http);
criterion_main!(benches);
