//! One decision through wasmtime (the npm package's module, plain ABI: the compact request
//! written into guest memory, then `rs_decide`) against the native engine on the same
//! prepared principal and the same question, in the same run. A Juniper Mist MSP request: a
//! Network Admin of organization o1 reboots an access point at a site of o1.
//!
//! `cargo bench -p rolescope-gateway --bench host` (the module: `ROLESCOPE_WASM`, else built
//! as the tests build it).

#![expect(clippy::expect_used, reason = "benchmark set-up fails loudly on a broken fixture")]
#![expect(missing_docs, reason = "criterion_group! generates an undocumented function")]

#[path = "../tests/host/module.rs"]
#[expect(dead_code, reason = "shared with the tests, which use all of it")]
mod module;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rolescope_engine::{Principal, Request, Resource};
use rolescope_gateway::{Config, Query, WasmEngine};

fn decision(c: &mut Criterion) {
    let folders = rolescope_parity::folders(&module::workspace()).expect("policy folders");
    let juniper = folders.iter().find(|f| f.dir == "policies/juniper-mist-msp").expect("juniper-mist-msp");
    let policy = &juniper.policy;
    let principal: Principal = serde_json::from_value(serde_json::json!({
        "id": "na",
        "assignments": [{ "role": "network_admin", "scope": "msp:mist", "tenants": ["org:o1"] }],
    }))
    .expect("principal");
    let resource = Resource {
        kind: "device".into(),
        id: "ap-11".into(),
        scope: "msp:mist/org:o1/site:s1".into(),
        ..Resource::default()
    };
    let action = "reboot";

    let engine = WasmEngine::new(module::bytes(), Config::default()).expect("engine");
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
    g.bench_function("wasmtime: compact request + rs_decide", |b| {
        b.iter(|| host.decide(black_box(&handle), black_box(&query)).expect("decision"))
    });
    g.bench_function("native: prepare_resource + decide", |b| {
        b.iter(|| {
            let r = policy.prepare_resource(black_box(&resource)).expect("resource");
            policy.decide(black_box(&prepared), black_box(action), &r, policy.empty_context())
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

criterion_group!(benches, decision, empty_call);
criterion_main!(benches);
