//! The `wasm_abi` target: arbitrary bytes into the plain ABI exports (`bindings/ABI.md`) of the
//! engine's wasm module, run by wasmtime the way the gateway runs it (JS glue imports defined
//! as traps). The module is `target/wasm/rolescope.wasm` (`cargo xtask wasm`), or the file
//! named by `ROLESCOPE_WASM`.
//!
//! Each input gets a fresh instance with one seed policy's bundle loaded, then runs a sequence
//! of operations decoded from the bytes. Checked: no call traps or runs out of fuel (the guest
//! never panics on input); every answer is in the documented range; an allowed answer carries
//! reason `allowed`; a handle that was never issued, or was freed, never decides; bundle loads,
//! `rs_principal`, `rs_check_json` and `rs_authorize` (HTTP requests through the route table:
//! normalization, routing and the decision, for anonymous callers and prepared principals)
//! answer exactly as the native engine does on the same bytes.

use std::collections::HashMap;
use std::sync::OnceLock;

use rolescope_engine::{HttpDecision, HttpRequest, Policy, PreparedPrincipal, Reason, Request, Source};
use wasmtime::{Config, Engine, InstancePre, Linker, Memory, Module, Store, TypedFunc};

use crate::checks::SEEDS;

/// Fuel per call: far more than any decision or bundle load needs, so running out is a hang.
const FUEL: u64 = 20_000_000_000;

struct Compiled {
    engine: Engine,
    pre: InstancePre<()>,
    bundles: Vec<String>,
}

fn compiled() -> &'static Compiled {
    static COMPILED: OnceLock<Compiled> = OnceLock::new();
    COMPILED.get_or_init(|| {
        let path = std::env::var("ROLESCOPE_WASM")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target/wasm/rolescope.wasm").to_owned());
        let wasm = std::fs::read(&path).unwrap_or_else(|e| panic!("read {path} (run `cargo xtask wasm`): {e}"));
        let mut cfg = Config::new();
        cfg.consume_fuel(true);
        let engine = Engine::new(&cfg).expect("engine");
        let module = cached_module(&engine, &wasm);
        let mut linker: Linker<()> = Linker::new(&engine);
        linker.define_unknown_imports_as_traps(&module).expect("trap imports");
        let pre = linker.instantiate_pre(&module).expect("instantiate_pre");
        let bundles = SEEDS
            .iter()
            .map(|(name, roles, routes)| {
                let sources = [
                    Source::new(format!("{name}/roles.yaml"), *roles),
                    Source::new(format!("{name}/routes.yaml"), *routes),
                ];
                Policy::bundle(&sources).expect("seed bundle").1
            })
            .collect();
        Compiled { engine, pre, bundles }
    })
}

/// Compile the module, or load it from `fuzz/target/` where an earlier run left it compiled
/// (compiling the engine module with an instrumented cranelift takes a minute).
fn cached_module(engine: &Engine, wasm: &[u8]) -> Module {
    use std::hash::{Hash as _, Hasher as _};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    wasm.hash(&mut h);
    let path = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target"))
        .join(format!("rolescope-{:016x}.cwasm", h.finish()));
    if path.exists() {
        // SAFETY: the file was written by `Module::serialize` of this very build (same
        // wasmtime, same configuration; wasmtime checks both and refuses a mismatch) into the
        // fuzz crate's own target folder.
        if let Ok(m) = unsafe { Module::deserialize_file(engine, &path) } {
            return m;
        }
    }
    let module = Module::new(engine, wasm).expect("module");
    if let Ok(bytes) = module.serialize() {
        let tmp = path.with_extension("tmp");
        if std::fs::write(&tmp, bytes).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }
    module
}

/// Compile the module and prepare the seed bundles (call from the fuzz target's `init`, so
/// that the first input is not charged with it).
pub fn init() {
    let _ = compiled();
}

/// One fresh instance and its exports.
struct Guest {
    store: Store<()>,
    memory: Memory,
    input: TypedFunc<u32, u32>,
    out_ptr: TypedFunc<(), u32>,
    out_len: TypedFunc<(), u32>,
    load: TypedFunc<u32, i32>,
    principal: TypedFunc<u32, i32>,
    free: TypedFunc<u32, ()>,
    decide: TypedFunc<u32, i32>,
    check_json: TypedFunc<u32, i32>,
    /// ABI v2 (absent from a version 1 module).
    authorize: Option<TypedFunc<(i32, u32), i32>>,
}

impl Guest {
    fn new(c: &Compiled) -> Self {
        let mut store = Store::new(&c.engine, ());
        store.set_fuel(FUEL).expect("fuel");
        let instance = c.pre.instantiate(&mut store).expect("instantiate");
        let memory = instance.get_memory(&mut store, "memory").expect("memory export");
        macro_rules! f {
            ($name:literal) => {
                instance.get_typed_func(&mut store, $name).expect($name)
            };
        }
        Self {
            input: f!("rs_input"),
            out_ptr: f!("rs_output_ptr"),
            out_len: f!("rs_output_len"),
            load: f!("rs_load_bundle"),
            principal: f!("rs_principal"),
            free: f!("rs_principal_free"),
            decide: f!("rs_decide"),
            check_json: f!("rs_check_json"),
            authorize: instance.get_typed_func(&mut store, "rs_authorize").ok(),
            memory,
            store,
        }
    }

    /// Call `f`; a trap or running out of fuel is a finding.
    fn call<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(&mut self, f: TypedFunc<P, R>, p: P, what: &str) -> R {
        self.store.set_fuel(FUEL).expect("fuel");
        match f.call(&mut self.store, p) {
            Ok(r) => r,
            Err(e) => panic!("{what} trapped: {e:#}"),
        }
    }

    /// `rs_input(len)` and copy `bytes` there.
    fn put(&mut self, bytes: &[u8]) -> u32 {
        let len = u32::try_from(bytes.len()).expect("small input");
        let ptr = self.call(self.input.clone(), len, "rs_input");
        self.memory.write(&mut self.store, ptr as usize, bytes).expect("the input buffer lies in memory");
        len
    }

    fn output(&mut self) -> Vec<u8> {
        let ptr = self.call(self.out_ptr.clone(), (), "rs_output_ptr") as usize;
        let len = self.call(self.out_len.clone(), (), "rs_output_len") as usize;
        let mut out = vec![0; len];
        self.memory.read(&self.store, ptr, &mut out).expect("the output buffer lies in memory");
        out
    }
}

/// A cursor over the fuzz input.
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes([self.u8()?, self.u8()?]))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes([self.u8()?, self.u8()?, self.u8()?, self.u8()?]))
    }
    /// A `u16`-length-prefixed chunk (shorter if the input ends).
    fn chunk(&mut self) -> Option<&'a [u8]> {
        let n = usize::from(self.u16()?).min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
}

fn encode(allowed: bool, reason: Reason) -> i32 {
    (i32::from(reason.code()) << 1) | i32::from(allowed)
}

/// A decision code must be a known reason, allowed only with `allowed`.
fn assert_decision_code(code: i32, what: &str) {
    let Ok(c) = u8::try_from(code >> 1) else { panic!("{what}: answer {code} out of range") };
    let reason = Reason::from_code(c).unwrap_or_else(|| panic!("{what}: unknown reason code {c}"));
    assert!((code & 1 == 1) == (reason == Reason::Allowed), "{what}: answer {code} ({reason:?})");
}

fn text(b: &[u8]) -> Option<&str> {
    std::str::from_utf8(b).ok()
}

/// `rs_authorize`'s output decodes to the native decision (all but the free-text detail).
fn assert_http_decision(out: &[u8], d: &HttpDecision) {
    let mut b = Bytes(out);
    let head = [b.u8(), b.u8(), b.u8()];
    assert_eq!(head, [Some(u8::from(d.allowed())), Some(d.reason().code()), Some(u8::from(d.public()))]);
    let field = |b: &mut Bytes<'_>| -> Option<String> {
        let n = b.u32().expect("a field length");
        if n == u32::MAX {
            return None;
        }
        let n = n as usize;
        assert!(n <= b.0.len(), "a field runs past the output");
        let (s, rest) = b.0.split_at(n);
        b.0 = rest;
        Some(String::from_utf8(s.to_vec()).expect("UTF-8 field"))
    };
    let fields: Vec<Option<String>> = (0..7).map(|_| field(&mut b)).collect();
    // ABI 3: the deciding rule's id, its assignment, a default deny's nearest assignments
    let rule = b.u32().expect("a rule id");
    assert_eq!(if rule == u32::MAX { None } else { Some(rule) }, d.rule(), "the deciding rule");
    assert_eq!(field(&mut b).as_deref(), d.assignment(), "the deciding rule's assignment");
    let n = b.u8().expect("a nearest count");
    let nearest: Vec<String> = (0..n).map(|_| field(&mut b).expect("a nearest assignment")).collect();
    assert_eq!(nearest, d.nearest(), "the nearest assignments");
    assert!(b.0.is_empty(), "bytes after the decision");
    let native = [d.route(), d.action(), d.kind(), d.scope(), d.tenant(), d.resource_id()];
    for (i, (w, n)) in fields.iter().zip(native).enumerate() {
        assert_eq!(w.as_deref(), n, "field {i} of the HTTP decision");
    }
    assert_eq!(fields.get(6).is_some_and(Option::is_some), d.detail().is_some(), "detail presence");
}

/// Run one fuzz input (see the module docs).
pub fn run(data: &[u8]) {
    let c = compiled();
    let mut bytes = Bytes(data);
    let Some(first) = bytes.u8() else { return };
    let Some(bundle) = c.bundles.get(usize::from(first) % c.bundles.len()) else { return };
    let mut g = Guest::new(c);
    let len = g.put(bundle.as_bytes());
    assert_eq!(g.call(g.load.clone(), len, "rs_load_bundle"), 0, "a seed bundle loads");
    let mut native = Policy::from_bundle(bundle).expect("a seed bundle loads natively");
    let mut live: HashMap<u32, PreparedPrincipal> = HashMap::new();
    let mut ops = 0;
    while let Some(op) = bytes.u8() {
        ops += 1;
        if ops > 64 {
            break;
        }
        match op % 8 {
            0 => {
                let Some(chunk) = bytes.chunk() else { break };
                let len = g.put(chunk);
                let code = g.call(g.load.clone(), len, "rs_load_bundle");
                let expected = match std::str::from_utf8(chunk) {
                    Err(_) => -1,
                    Ok(text) => match Policy::from_bundle(text) {
                        Ok(p) => {
                            native = p;
                            live.clear();
                            0
                        }
                        Err(_) => -3,
                    },
                };
                assert_eq!(code, expected, "rs_load_bundle vs Policy::from_bundle");
                if code == 0 {
                    let revision = g.output();
                    assert_eq!(revision, native.revision().as_bytes(), "the revision in the output buffer");
                }
            }
            1 => {
                let Some(chunk) = bytes.chunk() else { break };
                let len = g.put(chunk);
                let code = g.call(g.principal.clone(), len, "rs_principal");
                let prepared = serde_json::from_slice(chunk).ok().and_then(|p| native.prepare_principal(&p).ok());
                match u32::try_from(code) {
                    Ok(h) => {
                        let p = prepared.expect("rs_principal accepted what the engine refuses");
                        assert!(live.insert(h, p).is_none(), "handle {h} issued twice");
                    }
                    Err(_) => {
                        assert_eq!(code, -1, "rs_principal answer");
                        assert!(prepared.is_none(), "rs_principal refused what the engine accepts");
                    }
                }
            }
            2 => {
                let Some(chunk) = bytes.chunk() else { break };
                let len = g.put(chunk);
                let code = g.call(g.decide.clone(), len, "rs_decide");
                let handle = Bytes(chunk).u32();
                if code < 0 {
                    assert_eq!(code, -1, "rs_decide answer");
                } else {
                    assert!(
                        handle.is_some_and(|h| live.contains_key(&h)),
                        "a decision for a handle never issued or freed"
                    );
                    assert_decision_code(code, "rs_decide");
                }
            }
            3 => {
                let Some(chunk) = bytes.chunk() else { break };
                let len = g.put(chunk);
                let code = g.call(g.check_json.clone(), len, "rs_check_json");
                match serde_json::from_slice::<Request>(chunk) {
                    Ok(req) => {
                        let report = native.check_report(&req);
                        assert_eq!(code, encode(report.allowed, report.reason), "rs_check_json vs check_report");
                        let out: serde_json::Value = serde_json::from_slice(&g.output()).expect("report JSON");
                        assert_eq!(out.get("allowed"), Some(&serde_json::Value::Bool(report.allowed)));
                        assert_eq!(out.get("reason").and_then(|r| r.as_str()), Some(report.reason.as_str()));
                    }
                    Err(_) => assert_eq!(code, -1, "rs_check_json on bytes that are no request"),
                }
            }
            4 => {
                let Some(h) = bytes.u32() else { break };
                // small handles mostly, to hit live ones
                let h = if h & 0x8000_0000 == 0 { h % 8 } else { h };
                g.call(g.free.clone(), h, "rs_principal_free");
                live.remove(&h);
            }
            5 => {
                // an operation that claims more bytes than the input buffer holds
                let Some(chunk) = bytes.chunk() else { break };
                let Some(extra) = bytes.u32() else { break };
                let len = g.put(chunk).saturating_add(extra.max(1));
                for (f, what) in [
                    (g.decide.clone(), "rs_decide"),
                    (g.check_json.clone(), "rs_check_json"),
                    (g.principal.clone(), "rs_principal"),
                ] {
                    assert_eq!(g.call(f, len, what), -1, "{what} with a length past the input");
                }
                assert_eq!(
                    g.call(g.load.clone(), len, "rs_load_bundle"),
                    -1,
                    "rs_load_bundle with a length past the input"
                );
            }
            7 => {
                let Some(f) = g.authorize.clone() else { continue };
                let Some(who) = bytes.u8() else { break };
                let (Some(method), Some(target), Some(n)) = (bytes.chunk(), bytes.chunk(), bytes.u8()) else { break };
                let mut headers = Vec::new();
                for _ in 0..n % 4 {
                    let (Some(name), Some(value)) = (bytes.chunk(), bytes.chunk()) else { break };
                    headers.push((name, value));
                }
                let handle: i32 = match who % 4 {
                    0 | 1 => -1,
                    2 => live.keys().min().map_or(0, |h| *h as i32),
                    _ => i32::from(who),
                };
                let mut req = Vec::new();
                req.extend_from_slice(&(method.len() as u16).to_le_bytes());
                req.extend_from_slice(method);
                req.extend_from_slice(&(target.len() as u32).to_le_bytes());
                req.extend_from_slice(target);
                req.extend_from_slice(&(headers.len() as u16).to_le_bytes());
                for (name, value) in &headers {
                    req.extend_from_slice(&(name.len() as u16).to_le_bytes());
                    req.extend_from_slice(name);
                    req.extend_from_slice(&(value.len() as u32).to_le_bytes());
                    req.extend_from_slice(value);
                }
                let len = g.put(&req);
                let code = g.call(f, (handle, len), "rs_authorize");
                let principal = if handle == -1 { Some(None) } else { live.get(&(handle as u32)).map(Some) };
                let strings: Option<Vec<(&str, &str)>> =
                    headers.iter().map(|(n, v)| Some((text(n)?, text(v)?))).collect();
                match (principal, text(method), text(target), strings) {
                    (Some(p), Some(method), Some(target), Some(headers)) => {
                        let d = native.authorize_http(p, &HttpRequest { method, target, headers: &headers });
                        assert_eq!(code, encode(d.allowed(), d.reason()), "rs_authorize vs authorize_http: {d:?}");
                        assert_http_decision(&g.output(), &d);
                    }
                    _ => assert_eq!(code, -1, "rs_authorize on a malformed call"),
                }
            }
            _ => {
                // a bare rs_input resize, then reading the output buffer
                let Some(n) = bytes.u16() else { break };
                g.call(g.input.clone(), u32::from(n), "rs_input");
                let _ = g.output();
            }
        }
    }
}
