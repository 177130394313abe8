//! One instance of the engine module and the plain ABI's calls on it (`bindings/ABI.md`).
//!
//! Every call runs under an epoch deadline and the instance's memory limit; every failure is
//! classified into an [`Error`] and the caller ([`super::Host`]) drops the instance.

use std::sync::Arc;

use rolescope_engine::{MatchedRule, Reason};
use wasmtime::{Instance, InstancePre, Memory, ResourceLimiter, Store, Trap, TypedFunc};

use super::Decision;
use super::error::{Error, ErrorKind};
use super::names::Names;

/// The ABI version this host speaks (`rs_abi_version`).
pub(super) const ABI_VERSION: u32 = 3;
/// `rs_principal`: the principal was rejected (the message is in the output buffer).
const ERR_MALFORMED: i32 = -1;
/// `rs_load_bundle`: the bundle was rejected (diagnostics JSON in the output buffer).
const ERR_INVALID_POLICY: i32 = -3;

/// Per-instance resource limits; remembers whether a memory growth was refused so that the
/// trap which follows (Rust aborts on allocation failure) is reported as out of memory.
pub(super) struct Limits {
    memory: usize,
    table_elements: usize,
    refused: bool,
}

impl Limits {
    pub(super) fn new(memory: usize) -> Self {
        Self { memory, table_elements: 100_000, refused: false }
    }
}

impl ResourceLimiter for Limits {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory {
            self.refused = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= self.table_elements)
    }

    fn instances(&self) -> usize {
        1
    }

    fn memories(&self) -> usize {
        1
    }
}

/// What `rs_principal` answered.
pub(super) enum PrincipalAnswer {
    /// A guest handle.
    Handle(u32),
    /// The engine refused to prepare the principal (its message).
    Rejected(String),
}

/// The exports of the plain ABI, looked up once per instance.
struct Exports {
    input: TypedFunc<u32, u32>,
    output_ptr: TypedFunc<(), u32>,
    output_len: TypedFunc<(), u32>,
    load_bundle: TypedFunc<u32, i32>,
    principal: TypedFunc<u32, i32>,
    principal_free: TypedFunc<u32, ()>,
    names: TypedFunc<(), i32>,
    rules: TypedFunc<(), i32>,
    decide: TypedFunc<u32, i32>,
    authorize: TypedFunc<(i32, u32), i32>,
    check_json: TypedFunc<u32, i32>,
}

/// One live instance.
pub(super) struct Guest {
    store: Store<Limits>,
    instance: Instance,
    memory: Memory,
    f: Exports,
    /// The input buffer: its address and size (0 until the first input).
    input_ptr: usize,
    input_cap: usize,
}

/// Smallest input buffer the host asks for: a compact request and most JSON inputs fit.
const MIN_INPUT: usize = 4096;

fn protocol(detail: impl Into<String>) -> Error {
    Error::new(ErrorKind::Protocol, detail)
}

/// Decode `(reason_code << 1) | allowed`; anything else is out of contract.
pub(super) fn decode(code: i32) -> Result<Decision, Error> {
    if code < 0 {
        return Err(protocol(format!("negative return code {code}")));
    }
    let allowed = code & 1 == 1;
    let reason = u8::try_from(code >> 1)
        .ok()
        .and_then(Reason::from_code)
        .ok_or_else(|| protocol(format!("unknown reason code {}", code >> 1)))?;
    if allowed != (reason == Reason::Allowed) {
        return Err(protocol(format!("allowed bit {allowed} contradicts reason `{reason}`")));
    }
    Ok(Decision::new(allowed, reason))
}

impl Guest {
    /// Instantiate the module. No wasm code runs here: the module has no start section, and
    /// `__wbindgen_start` (the JS glue's initializer) is never called by this host.
    pub(super) fn new(
        engine: &wasmtime::Engine,
        pre: &InstancePre<Limits>,
        memory_limit: usize,
    ) -> Result<Self, Error> {
        let mut store = Store::new(engine, Limits::new(memory_limit));
        store.limiter(|l| l);
        // Deadline 0 has always elapsed: were any code to run during instantiation, it traps.
        store.set_epoch_deadline(0);
        let instance = pre.instantiate(&mut store).map_err(|e| {
            let kind = if store.data().refused { ErrorKind::OutOfMemory } else { ErrorKind::Instantiate };
            Error::new(kind, format!("{e:#}"))
        })?;
        let module = |e: wasmtime::Error| Error::new(ErrorKind::Module, format!("{e:#}"));
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| Error::new(ErrorKind::Module, "no exported `memory`"))?;
        let f = Exports {
            input: instance.get_typed_func(&mut store, "rs_input").map_err(module)?,
            output_ptr: instance.get_typed_func(&mut store, "rs_output_ptr").map_err(module)?,
            output_len: instance.get_typed_func(&mut store, "rs_output_len").map_err(module)?,
            load_bundle: instance.get_typed_func(&mut store, "rs_load_bundle").map_err(module)?,
            principal: instance.get_typed_func(&mut store, "rs_principal").map_err(module)?,
            principal_free: instance.get_typed_func(&mut store, "rs_principal_free").map_err(module)?,
            names: instance.get_typed_func(&mut store, "rs_names").map_err(module)?,
            rules: instance.get_typed_func(&mut store, "rs_rules").map_err(module)?,
            decide: instance.get_typed_func(&mut store, "rs_decide").map_err(module)?,
            authorize: instance.get_typed_func(&mut store, "rs_authorize").map_err(module)?,
            check_json: instance.get_typed_func(&mut store, "rs_check_json").map_err(module)?,
        };
        Ok(Self { store, instance, memory, f, input_ptr: 0, input_cap: 0 })
    }

    /// `rs_abi_version()`, checked once per engine on a probe instance.
    pub(super) fn abi_version(&mut self, ticks: u64) -> Result<u32, Error> {
        let version: TypedFunc<(), u32> = self
            .instance
            .get_typed_func(&mut self.store, "rs_abi_version")
            .map_err(|e| Error::new(ErrorKind::Module, format!("{e:#}")))?;
        self.store.set_epoch_deadline(ticks);
        version.call(&mut self.store, ()).map_err(|e| self.classify(e))
    }

    /// Call any export with integer arguments (diagnostics and the fail-closed tests).
    #[cfg(feature = "testing")]
    pub(super) fn call_export(&mut self, name: &str, args: &[i32], ticks: u64) -> Result<Vec<i32>, Error> {
        use wasmtime::Val;
        let func = self
            .instance
            .get_func(&mut self.store, name)
            .ok_or_else(|| Error::new(ErrorKind::InvalidInput, format!("no exported function `{name}`")))?;
        let ty = func.ty(&self.store);
        if ty.params().len() != args.len() {
            return Err(Error::new(ErrorKind::InvalidInput, format!("`{name}` takes {} arguments", ty.params().len())));
        }
        let params: Vec<Val> = args.iter().map(|a| Val::I32(*a)).collect();
        let mut results: Vec<Val> = ty.results().map(|_| Val::I32(0)).collect();
        self.store.set_epoch_deadline(ticks);
        // A buffer sized behind the host's back: forget the one the host knows.
        if name == "rs_input" {
            self.input_cap = 0;
        }
        func.call(&mut self.store, &params, &mut results).map_err(|e| self.classify(e))?;
        Ok(results.iter().map(|v| v.i32().unwrap_or(i32::MIN)).collect())
    }

    /// Turn a failed call into an error.
    fn classify(&self, e: wasmtime::Error) -> Error {
        if self.store.data().refused {
            return Error::new(ErrorKind::OutOfMemory, format!("{e:#}"));
        }
        match e.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => Error::new(ErrorKind::Timeout, ""),
            Some(t) => Error::new(ErrorKind::Trap, t.to_string()),
            None => Error::new(ErrorKind::Trap, format!("{e:#}")),
        }
    }

    /// Copy `bytes` into the guest's input buffer; returns the length to pass to the operation.
    ///
    /// The buffer is sized once (`rs_input`, at least [`MIN_INPUT`] bytes) and reused while
    /// inputs fit: its address stays valid until the next `rs_input`, and every operation reads
    /// the first `len` bytes. A decision is then one call into the guest, not two.
    fn put(&mut self, bytes: &[u8]) -> Result<u32, Error> {
        let len = u32::try_from(bytes.len())
            .map_err(|_| Error::new(ErrorKind::InvalidInput, format!("input of {} bytes", bytes.len())))?;
        if bytes.len() > self.input_cap {
            let cap = bytes.len().max(MIN_INPUT);
            let cap32 = u32::try_from(cap).unwrap_or(len);
            let ptr = self.f.input.call(&mut self.store, cap32).map_err(|e| self.classify(e))?;
            self.input_ptr = usize::try_from(ptr).map_err(|_| protocol("input address"))?;
            self.input_cap = usize::try_from(cap32).unwrap_or(0);
        }
        let start = self.input_ptr;
        let dst = self
            .memory
            .data_mut(&mut self.store)
            .get_mut(start..start.saturating_add(bytes.len()))
            .ok_or_else(|| protocol(format!("input buffer at {start} (+{len}) is outside the guest's memory")))?;
        dst.copy_from_slice(bytes);
        Ok(len)
    }

    /// The guest's output buffer.
    fn output(&mut self) -> Result<Vec<u8>, Error> {
        let ptr = self.f.output_ptr.call(&mut self.store, ()).map_err(|e| self.classify(e))?;
        let len = self.f.output_len.call(&mut self.store, ()).map_err(|e| self.classify(e))?;
        let (start, n) = (usize::try_from(ptr).unwrap_or(usize::MAX), usize::try_from(len).unwrap_or(usize::MAX));
        self.memory
            .data(&self.store)
            .get(start..start.saturating_add(n))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| protocol(format!("output buffer at {ptr} (+{len}) is outside the guest's memory")))
    }

    /// `rs_load_bundle`: the revision, or the diagnostics (JSON) of a rejected bundle.
    pub(super) fn load_bundle(&mut self, json: &[u8], ticks: u64) -> Result<String, Error> {
        self.store.set_epoch_deadline(ticks);
        let len = self.put(json)?;
        let code = self.f.load_bundle.call(&mut self.store, len).map_err(|e| self.classify(e))?;
        let out = self.output()?;
        match code {
            0 => String::from_utf8(out).map_err(|_| protocol("revision is not UTF-8")),
            ERR_INVALID_POLICY | ERR_MALFORMED => {
                Err(Error::new(ErrorKind::InvalidBundle, String::from_utf8_lossy(&out).into_owned()))
            }
            other => Err(protocol(format!("rs_load_bundle returned {other}"))),
        }
    }

    /// `rs_names`: the loaded policy's names table (kinds and their actions, by id).
    pub(super) fn names(&mut self, ticks: u64) -> Result<Names, Error> {
        self.store.set_epoch_deadline(ticks);
        let code = self.f.names.call(&mut self.store, ()).map_err(|e| self.classify(e))?;
        if code != 0 {
            return Err(protocol(format!("rs_names returned {code}")));
        }
        let out = self.output()?;
        Names::parse(&out).ok_or_else(|| protocol("malformed names table"))
    }

    /// `rs_rules`: the loaded policy's rule table (JSON), by rule id.
    pub(super) fn rules(&mut self, ticks: u64) -> Result<Vec<Arc<MatchedRule>>, Error> {
        self.store.set_epoch_deadline(ticks);
        let code = self.f.rules.call(&mut self.store, ()).map_err(|e| self.classify(e))?;
        if code != 0 {
            return Err(protocol(format!("rs_rules returned {code}")));
        }
        let out = self.output()?;
        let rules: Vec<MatchedRule> =
            serde_json::from_slice(&out).map_err(|e| protocol(format!("malformed rule table: {e}")))?;
        Ok(rules.into_iter().map(Arc::new).collect())
    }

    /// `rs_principal`.
    pub(super) fn principal(&mut self, json: &[u8], ticks: u64) -> Result<PrincipalAnswer, Error> {
        self.store.set_epoch_deadline(ticks);
        let len = self.put(json)?;
        let code = self.f.principal.call(&mut self.store, len).map_err(|e| self.classify(e))?;
        match code {
            h if h >= 0 => Ok(PrincipalAnswer::Handle(h.unsigned_abs())),
            ERR_MALFORMED => {
                let out = self.output()?;
                Ok(PrincipalAnswer::Rejected(String::from_utf8_lossy(&out).into_owned()))
            }
            other => Err(protocol(format!("rs_principal returned {other}"))),
        }
    }

    /// `rs_principal_free`.
    pub(super) fn principal_free(&mut self, handle: u32, ticks: u64) -> Result<(), Error> {
        self.store.set_epoch_deadline(ticks);
        self.f.principal_free.call(&mut self.store, handle).map_err(|e| self.classify(e))
    }

    /// `rs_decide` on a compact request.
    pub(super) fn decide(&mut self, compact: &[u8], ticks: u64) -> Result<Decision, Error> {
        self.store.set_epoch_deadline(ticks);
        let len = self.put(compact)?;
        let code = self.f.decide.call(&mut self.store, len).map_err(|e| self.classify(e))?;
        decode(code)
    }

    /// `rs_authorize` on a compact HTTP request for the principal `handle` (`-1`: anonymous):
    /// the decision and the HTTP decision's bytes.
    pub(super) fn authorize(&mut self, handle: i32, compact: &[u8], ticks: u64) -> Result<(Decision, Vec<u8>), Error> {
        self.store.set_epoch_deadline(ticks);
        let len = self.put(compact)?;
        let code = self.f.authorize.call(&mut self.store, (handle, len)).map_err(|e| self.classify(e))?;
        let decision = decode(code)?;
        Ok((decision, self.output()?))
    }

    /// `rs_check_json`: the decision and the report's bytes.
    pub(super) fn check_json(&mut self, json: &[u8], ticks: u64) -> Result<(Decision, Vec<u8>), Error> {
        self.store.set_epoch_deadline(ticks);
        let len = self.put(json)?;
        let code = self.f.check_json.call(&mut self.store, len).map_err(|e| self.classify(e))?;
        let decision = decode(code)?;
        Ok((decision, self.output()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_codes_within_the_contract_decode() {
        for r in Reason::ALL {
            let code = (i32::from(r.code()) << 1) | i32::from(r == Reason::Allowed);
            let d = decode(code).expect("in contract");
            assert_eq!((d.allowed(), d.reason()), (r == Reason::Allowed, r));
        }
        // negative codes (malformed, no policy, anything else)
        for code in [-1, -2, -3, i32::MIN] {
            assert_eq!(decode(code).expect_err("negative").kind(), ErrorKind::Protocol);
        }
        // an unknown reason code, and an allowed bit that contradicts the reason
        let unknown = i32::try_from(Reason::ALL.len()).expect("small") << 1;
        for code in [unknown, unknown | 1, i32::MAX, (i32::from(Reason::ExplicitDeny.code()) << 1) | 1, 0] {
            assert!(decode(code).expect_err("out of contract").is_guest_failure(), "{code}");
        }
    }
}
