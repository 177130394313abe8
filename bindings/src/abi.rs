//! The plain ABI: integer-only exports for non-JS hosts (the gateway's wasmtime host).
//!
//! None of these functions touches a JS import, so a host may define the wasm-bindgen glue
//! imports as traps. Memory is exchanged through two guest-owned buffers: the host asks for
//! an input buffer of `len` bytes (`rs_input`), writes into guest memory at the returned
//! address, and calls an operation with the number of bytes written; operations that produce
//! bytes leave them in the output buffer (`rs_output_ptr`, `rs_output_len`).
//!
//! See `bindings/ABI.md` for the full contract and the compact request encoding.

use std::cell::RefCell;

use rolescope_engine::{Policy, PreparedPrincipal, Principal, Reason, Request, Resource};
use wasm_bindgen::prelude::wasm_bindgen;

/// Version of this ABI; bumped on any incompatible change.
pub const ABI_VERSION: u32 = 1;

/// Return code of a malformed call (bad encoding, no policy loaded, unknown handle). Hosts
/// treat it as a deny (and may replace the instance).
pub const ERR_MALFORMED: i32 = -1;
/// Return code when no policy is loaded.
pub const ERR_NO_POLICY: i32 = -2;
/// Return code of a policy load that failed (diagnostics JSON in the output buffer).
pub const ERR_INVALID_POLICY: i32 = -3;

#[derive(Default)]
struct State {
    policy: Option<Policy>,
    input: Vec<u8>,
    output: Vec<u8>,
    principals: Vec<Option<PreparedPrincipal>>,
    free: Vec<u32>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

/// Run `f` on the state; a re-entrant call (impossible from a host, which calls one export at
/// a time) reports malformed instead of panicking.
fn with<R>(f: impl FnOnce(&mut State) -> R, otherwise: R) -> R {
    STATE.with(|s| match s.try_borrow_mut() {
        Ok(mut st) => f(&mut st),
        Err(_) => otherwise,
    })
}

fn input(st: &State, len: u32) -> Option<&[u8]> {
    st.input.get(..usize::try_from(len).ok()?)
}

fn encode(allowed: bool, reason: Reason) -> i32 {
    (i32::from(reason.code()) << 1) | i32::from(allowed)
}

/// The ABI version (see [`ABI_VERSION`]).
#[wasm_bindgen]
pub fn rs_abi_version() -> u32 {
    ABI_VERSION
}

/// Make the input buffer `len` bytes long and return its address in linear memory.
#[wasm_bindgen]
pub fn rs_input(len: u32) -> u32 {
    with(
        |st| {
            let n = usize::try_from(len).unwrap_or(0);
            st.input.clear();
            st.input.resize(n, 0);
            // An address in the 32-bit linear memory; the cast only drops the provenance.
            st.input.as_ptr() as usize as u32
        },
        0,
    )
}

/// Address of the output buffer (valid until the next call).
#[wasm_bindgen]
pub fn rs_output_ptr() -> u32 {
    with(|st| st.output.as_ptr() as usize as u32, 0)
}

/// Length of the output buffer.
#[wasm_bindgen]
pub fn rs_output_len() -> u32 {
    with(|st| u32::try_from(st.output.len()).unwrap_or(0), 0)
}

/// Load a bundle (`rolescope build` output) from the first `len` input bytes. Returns 0, or
/// [`ERR_INVALID_POLICY`] with the diagnostics as JSON in the output buffer (the previous
/// policy stays loaded), or [`ERR_MALFORMED`]. Loading drops every prepared principal.
#[wasm_bindgen]
pub fn rs_load_bundle(len: u32) -> i32 {
    with(
        |st| {
            let Some(bytes) = input(st, len) else { return ERR_MALFORMED };
            let Ok(text) = std::str::from_utf8(bytes) else { return ERR_MALFORMED };
            match Policy::from_bundle(text) {
                Ok(p) => {
                    st.output = p.revision().as_bytes().to_vec();
                    st.policy = Some(p);
                    st.principals.clear();
                    st.free.clear();
                    0
                }
                Err(e) => {
                    st.output = serde_json::to_vec(e.diagnostics()).unwrap_or_default();
                    ERR_INVALID_POLICY
                }
            }
        },
        ERR_MALFORMED,
    )
}

/// Prepare a principal (JSON: `{id, status, attributes, assignments}`) from the first `len`
/// input bytes and keep it; returns a handle (>= 0) for [`rs_decide`], or a negative code
/// (the error message in the output buffer).
#[wasm_bindgen]
pub fn rs_principal(len: u32) -> i32 {
    with(
        |st| {
            let Some(policy) = &st.policy else { return ERR_NO_POLICY };
            let Some(bytes) = input(st, len) else { return ERR_MALFORMED };
            let principal: Principal = match serde_json::from_slice(bytes) {
                Ok(p) => p,
                Err(e) => {
                    st.output = e.to_string().into_bytes();
                    return ERR_MALFORMED;
                }
            };
            let prepared = match policy.prepare_principal(&principal) {
                Ok(p) => p,
                Err(e) => {
                    st.output = e.message().as_bytes().to_vec();
                    return ERR_MALFORMED;
                }
            };
            let handle = match st.free.pop() {
                Some(h) => {
                    if let Some(slot) = st.principals.get_mut(h as usize) {
                        *slot = Some(prepared);
                    }
                    h
                }
                None => {
                    st.principals.push(Some(prepared));
                    u32::try_from(st.principals.len() - 1).unwrap_or(u32::MAX)
                }
            };
            i32::try_from(handle).unwrap_or(ERR_MALFORMED)
        },
        ERR_MALFORMED,
    )
}

/// Forget a prepared principal.
#[wasm_bindgen]
pub fn rs_principal_free(handle: u32) {
    with(
        |st| {
            if let Some(slot) = st.principals.get_mut(handle as usize)
                && slot.take().is_some()
            {
                st.free.push(handle);
            }
        },
        (),
    );
}

/// A little-endian reader over the compact request encoding.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = (self.buf.get(..n)?, self.buf.get(n..)?);
        self.buf = tail;
        Some(head)
    }
    fn u16(&mut self) -> Option<usize> {
        let b = self.take(2)?;
        Some(usize::from(u16::from_le_bytes([*b.first()?, *b.get(1)?])))
    }
    fn u32(&mut self) -> Option<u32> {
        let b = self.take(4)?;
        Some(u32::from_le_bytes([*b.first()?, *b.get(1)?, *b.get(2)?, *b.get(3)?]))
    }
    fn str16(&mut self) -> Option<&'a str> {
        let n = self.u16()?;
        std::str::from_utf8(self.take(n)?).ok()
    }
    fn json32(&mut self) -> Option<serde_json::Map<String, serde_json::Value>> {
        let n = usize::try_from(self.u32()?).ok()?;
        if n == 0 {
            return Some(serde_json::Map::new());
        }
        serde_json::from_slice(self.take(n)?).ok()
    }
}

/// Decide one request in the compact encoding (see `ABI.md`): principal handle, kind, action,
/// scope, resource id, resource attributes (JSON), context (JSON). Returns
/// `(reason_code << 1) | allowed`, or a negative code. Never writes the output buffer.
#[wasm_bindgen]
pub fn rs_decide(len: u32) -> i32 {
    with(
        |st| {
            let Some(policy) = &st.policy else { return ERR_NO_POLICY };
            let Some(bytes) = input(st, len) else { return ERR_MALFORMED };
            let mut r = Reader { buf: bytes };
            let decoded = (|| {
                let handle = r.u32()?;
                let kind = r.str16()?;
                let action = r.str16()?;
                let scope = r.str16()?;
                let id = r.str16()?;
                let attributes = r.json32()?;
                let context = r.json32()?;
                Some((handle, kind, action, scope, id, attributes, context))
            })();
            let Some((handle, kind, action, scope, id, attributes, context)) = decoded else {
                return ERR_MALFORMED;
            };
            let Some(Some(principal)) = st.principals.get(handle as usize) else { return ERR_MALFORMED };
            // As the engine's `check`: an inactive principal is denied before anything else.
            if principal.status() != rolescope_engine::Status::Active {
                return encode(false, Reason::PrincipalInactive);
            }
            let resource = Resource { kind: kind.into(), id: id.into(), scope: scope.into(), attributes };
            let prepared = policy.prepare_resource(&resource).and_then(|res| {
                let ctx = if context.is_empty() { None } else { Some(policy.prepare_context(&context)?) };
                Ok((res, ctx))
            });
            match prepared {
                Ok((res, ctx)) => {
                    let d = policy.decide(principal, action, &res, ctx.as_ref().unwrap_or(policy.empty_context()));
                    encode(d.allowed(), d.reason())
                }
                Err(e) => encode(false, e.reason()),
            }
        },
        ERR_MALFORMED,
    )
}

/// Decide a full request given as JSON (the engine's `Request`) and leave the decision report
/// (JSON) in the output buffer. Returns the same code as [`rs_decide`].
#[wasm_bindgen]
pub fn rs_check_json(len: u32) -> i32 {
    with(
        |st| {
            let Some(policy) = &st.policy else { return ERR_NO_POLICY };
            let Some(bytes) = input(st, len) else { return ERR_MALFORMED };
            let report = match serde_json::from_slice::<Request>(bytes) {
                Ok(req) => policy.check_report(&req),
                Err(e) => {
                    st.output = e.to_string().into_bytes();
                    return ERR_MALFORMED;
                }
            };
            let code = encode(report.allowed, report.reason);
            st.output = serde_json::to_vec(&report).unwrap_or_default();
            code
        },
        ERR_MALFORMED,
    )
}
