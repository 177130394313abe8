//! One decision through wasmtime (the npm package's module, plain ABI: the compact request
//! written into guest memory, then `rs_decide`) against the native engine on the same
//! prepared principal and the same question, in the same run. A Juniper Mist MSP request: a
//! Network Admin of organization o1 reboots an access point at a site of o1.
//!
//! `cargo bench -p rolescope-gateway --bench host` (the module: `ROLESCOPE_WASM`, else built
//! as the tests build it). After the benchmarks it prints the ratios of the wasmtime decision
//! to the native ones, from criterion's medians of this run.

#![expect(clippy::expect_used, reason = "benchmark set-up fails loudly on a broken fixture")]
#![expect(missing_docs, reason = "criterion_group! generates an undocumented function")]

#[path = "../tests/host/module.rs"]
#[expect(dead_code, reason = "shared with the tests, which use all of it")]
mod module;

use std::hint::black_box;

use criterion::{Criterion, criterion_group};
use rolescope_engine::{HttpRequest, Principal, Request, Resource, ResourceCache};
use rolescope_gateway::{Config, Query, WasmEngine};

/// The Juniper Mist MSP seed policy and the principal both benchmarks decide for: a Network
/// Admin listed on organization o1.
fn juniper() -> (rolescope_parity::Folder, Principal) {
    let folders = rolescope_parity::folders(&module::workspace()).expect("policy folders");
    let juniper = folders.into_iter().find(|f| f.dir == "policies/juniper-mist-msp").expect("juniper-mist-msp");
    let principal: Principal = serde_json::from_value(serde_json::json!({
        "id": "na",
        "assignments": [{ "role": "network_admin", "scope": "msp:mist", "tenants": ["org:o1"] }],
    }))
    .expect("principal");
    (juniper, principal)
}

fn decision(c: &mut Criterion) {
    let (juniper, principal) = juniper();
    let policy = &juniper.policy;
    let resource = Resource {
        kind: "device".into(),
        id: "ap-11".into(),
        scope: "msp:mist/org:o1/site:s1".into(),
        ..Resource::default()
    };
    let action = "reboot";

    let engine = WasmEngine::new(module::bytes(), config()).expect("engine");
    engine.load(&juniper.bundle).expect("bundle");
    let mut host = engine.host();
    let handle = host.principal(&principal).expect("handle");
    let query = Query::new(action, &resource.kind, &resource.scope).id(&resource.id);

    let prepared = policy.prepare_principal(&principal).expect("prepared principal");
    let prepared_resource = policy.prepare_resource(&resource).expect("prepared resource");

    // the same answer everywhere
    let wasm = host.decide(&handle, &query).expect("decision");
    let native = policy.decide(&prepared, action, &prepared_resource, policy.empty_context());
    assert!(wasm.allowed() && native.allowed());
    assert_eq!(wasm.reason(), native.reason());

    let mut g = c.benchmark_group("juniper decision");
    g.bench_function(WASM, |b| b.iter(|| host.decide(black_box(&handle), black_box(&query)).expect("decision")));
    g.bench_function(NATIVE, |b| {
        b.iter(|| {
            let r = policy.prepare_resource(black_box(&resource)).expect("resource");
            policy.decide(black_box(&prepared), black_box(action), &r, policy.empty_context())
        })
    });
    // What `rs_decide` does inside the guest, natively: names resolved to ids, the resource
    // from the cache of prepared scopes.
    let mut cache = ResourceCache::new();
    let kind = policy.kind_id(&resource.kind).expect("kind");
    g.bench_function(NATIVE_IDS, |b| {
        b.iter(|| {
            let a = policy.action_id(kind, black_box(action)).expect("action");
            let r = policy
                .cached_resource(&mut cache, kind, black_box(&resource.scope), black_box(&resource.id))
                .expect("resource");
            policy.decide_ids(black_box(&prepared), a, r, policy.empty_context())
        })
    });
    // Many resources: 64 scopes (8 orgs x 8 sites) and 256 devices, round robin.
    let many: Vec<(String, String)> =
        (0..256).map(|i| (format!("msp:mist/org:o{}/site:s{}", i % 8, (i / 8) % 8), format!("ap-{i}"))).collect();
    let mut next = 0usize;
    g.bench_function("wasmtime: 64 scopes x 256 devices, round robin", |b| {
        b.iter(|| {
            next = (next + 1) % many.len();
            let (scope, id) = many.get(next).expect("in range");
            host.decide(&handle, &Query::new(action, &resource.kind, scope).id(id)).expect("decision")
        })
    });
    g.bench_function("native: decide (resource prepared once)", |b| {
        b.iter(|| {
            policy.decide(
                black_box(&prepared),
                black_box(action),
                black_box(&prepared_resource),
                policy.empty_context(),
            )
        })
    });
    // For scale: the other paths a gateway may take per request.
    let request = Request {
        principal: rolescope_engine::PrincipalRef::Inline(principal.clone()),
        action: action.into(),
        resource: resource.clone(),
        context: serde_json::Map::new(),
    };
    g.bench_function("wasmtime: principal + rs_decide + release", |b| {
        b.iter(|| {
            let h = host.principal(black_box(&principal)).expect("handle");
            let d = host.decide(&h, black_box(&query)).expect("decision");
            host.release(h);
            d
        })
    });
    g.bench_function("wasmtime: rs_check_json (report)", |b| {
        b.iter(|| host.check_json(black_box(&request)).expect("report"))
    });
    g.bench_function("native: check (request as data)", |b| b.iter(|| policy.check(black_box(&request))));
    g.finish();
}

/// One HTTP authorization (`rs_authorize`: method, raw target and headers in; the decision with
/// route, action, kind, scope, tenant and resource id out) against the native
/// `Policy::authorize_http`, for the same prepared principal and request.
fn http(c: &mut Criterion) {
    let (juniper, principal) = juniper();
    let policy = &juniper.policy;
    let headers = [("accept", "application/json"), ("x-request-id", "4bf92f3577b34da6")];
    let req = HttpRequest { method: "POST", target: "/api/v1/orgs/o1/devices/ap-11/reboot", headers: &headers };

    let engine = WasmEngine::new(module::bytes(), config()).expect("engine");
    engine.load(&juniper.bundle).expect("bundle");
    let mut host = engine.host();
    let handle = host.principal(&principal).expect("handle");
    let prepared = policy.prepare_principal(&principal).expect("prepared principal");
    let wasm = host.authorize(Some(&handle), &req).expect("verdict");
    let native = policy.authorize_http(Some(&prepared), &req);
    assert!(wasm.allowed() && native.allowed());
    assert_eq!((wasm.route(), wasm.scope()), (native.route(), native.scope()));

    let mut g = c.benchmark_group(HTTP_GROUP);
    g.bench_function(WASM_HTTP, |b| {
        b.iter(|| host.authorize(Some(black_box(&handle)), black_box(&req)).expect("verdict"))
    });
    g.bench_function(NATIVE_HTTP, |b| b.iter(|| policy.authorize_http(Some(black_box(&prepared)), black_box(&req))));
    g.finish();
}

/// The floor: one typed call into the same module (`rs_output_len`, which does nothing), with
/// epoch interruption on as in the host.
fn empty_call(c: &mut Criterion) {
    let mut cfg = wasmtime::Config::new();
    cfg.epoch_interruption(true);
    let engine = wasmtime::Engine::new(&cfg).expect("engine");
    let module = wasmtime::Module::new(&engine, module::bytes()).expect("module");
    let mut linker = wasmtime::Linker::new(&engine);
    linker.define_unknown_imports_as_traps(&module).expect("traps");
    let mut store = wasmtime::Store::new(&engine, ());
    store.set_epoch_deadline(1 << 40);
    let instance = linker.instantiate(&mut store, &module).expect("instance");
    let f = instance.get_typed_func::<(), u32>(&mut store, "rs_output_len").expect("rs_output_len");
    c.bench_function("wasmtime: empty call (rs_output_len)", |b| {
        b.iter(|| {
            store.set_epoch_deadline(26);
            f.call(&mut store, ()).expect("call")
        })
    });
}

/// The host's configuration with a long call deadline: the deadline is wall-clock time, and on
/// a loaded machine a thread descheduled for 25 ms (the default) mid-call would abort the run.
/// Its length does not change the cost of a call.
fn config() -> Config {
    Config::default().call_deadline(std::time::Duration::from_secs(1))
}

const GROUP: &str = "juniper decision";
const WASM: &str = "wasmtime: compact request + rs_decide";
const NATIVE: &str = "native: prepare_resource + decide";
const NATIVE_IDS: &str = "native: ids + cached resource + decide_ids";
const HTTP_GROUP: &str = "juniper http";
const WASM_HTTP: &str = "wasmtime: rs_authorize";
const NATIVE_HTTP: &str = "native: authorize_http";

/// The median of one benchmark of this run, in ns, from criterion's files
/// (`<target>/criterion/**/new/benchmark.json` names it, `estimates.json` has it).
fn median(full_id: &str) -> Option<f64> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| module::workspace().join("target"));
    let mut dirs = vec![target.join("criterion")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).ok()?.flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            let new = path.join("new");
            let named = std::fs::read(new.join("benchmark.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .is_some_and(|b| b.get("full_id").and_then(|v| v.as_str()) == Some(full_id));
            if named {
                let est: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(new.join("estimates.json")).ok()?).ok()?;
                return est.pointer("/median/point_estimate").and_then(serde_json::Value::as_f64);
            }
            dirs.push(path);
        }
    }
    None
}

/// The target: the wasmtime decision at most 2x the native one and at most 300 ns.
fn ratios() {
    let id = |f: &str| format!("{GROUP}/{f}");
    let Some(wasm) = median(&id(WASM)) else {
        println!("ratio: no median for `{WASM}` (filtered out?)");
        return;
    };
    println!("\nwasmtime decision (median): {wasm:.0} ns (target: at most 300 ns)");
    for native in [NATIVE, NATIVE_IDS] {
        match median(&id(native)) {
            Some(n) => println!("  vs {native}: {n:.0} ns, ratio {:.2}x (target: at most 2x)", wasm / n),
            None => println!("  vs {native}: no median (filtered out?)"),
        }
    }
    let http = |f: &str| median(&format!("{HTTP_GROUP}/{f}"));
    if let (Some(w), Some(n)) = (http(WASM_HTTP), http(NATIVE_HTTP)) {
        println!("HTTP authorization (median): wasmtime {w:.0} ns, native {n:.0} ns, ratio {:.2}x", w / n);
    }
}

criterion_group!(benches, decision, http, empty_call);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    ratios();
}
