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

use rolescope_engine::{
    HttpDecision, HttpRequest, Policy, PreparedPrincipal, PreparedResource, Principal, Reason, Request, ResourceCache,
    Status,
};
use wasm_bindgen::prelude::wasm_bindgen;

/// Version of this ABI; bumped on any incompatible change.
pub const ABI_VERSION: u32 = 3;

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
    /// Prepared resources without attributes, by kind and scope (dropped on every load).
    resources: ResourceCache,
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
                    st.resources.clear();
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

/// Bit 15 of a compact request's kind or action field: the other 15 bits are an id from
/// [`rs_names`], not the length of a name.
pub const ID_FLAG: u16 = 0x8000;

/// Write the loaded policy's names table into the output buffer, so that a host can send ids
/// instead of names: `u16` kind count, then per kind in id order `u16` length + name, `u16`
/// action count, per action in id order `u16` length + name (little-endian). Returns 0, or
/// [`ERR_NO_POLICY`].
#[wasm_bindgen]
pub fn rs_names() -> i32 {
    with(
        |st| {
            let Some(policy) = &st.policy else { return ERR_NO_POLICY };
            let out = &mut st.output;
            out.clear();
            let put = |out: &mut Vec<u8>, n: usize| out.extend_from_slice(&u16::try_from(n).unwrap_or(0).to_le_bytes());
            put(out, policy.kind_names().count());
            for kind in policy.kind_names() {
                put(out, kind.len());
                out.extend_from_slice(kind.as_bytes());
                let actions = policy.actions_of(kind).unwrap_or_default();
                put(out, actions.len());
                for a in actions {
                    put(out, a.len());
                    out.extend_from_slice(a.as_bytes());
                }
            }
            0
        },
        ERR_MALFORMED,
    )
}

/// Write the loaded policy's rule table into the output buffer as JSON: an array indexed by
/// rule id (the `rule` of an [`rs_authorize`] answer), each `{effect, role?, condition?,
/// description?, source}` (`Policy::rule_table`). Returns 0, or [`ERR_NO_POLICY`].
#[wasm_bindgen]
pub fn rs_rules() -> i32 {
    with(
        |st| {
            let Some(policy) = &st.policy else { return ERR_NO_POLICY };
            st.output = serde_json::to_vec(&policy.rule_table()).unwrap_or_default();
            0
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
            let principal = match Principal::from_json(bytes) {
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

/// A kind or an action in a compact request: an id from [`rs_names`], or a name.
#[derive(Clone, Copy)]
enum Name<'a> {
    Id(u16),
    Text(&'a str),
}

impl<'a> Reader<'a> {
    #[inline]
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = (self.buf.get(..n)?, self.buf.get(n..)?);
        self.buf = tail;
        Some(head)
    }
    #[inline]
    fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_le_bytes([*b.first()?, *b.get(1)?]))
    }
    #[inline]
    fn u32(&mut self) -> Option<u32> {
        let b = self.take(4)?;
        Some(u32::from_le_bytes([*b.first()?, *b.get(1)?, *b.get(2)?, *b.get(3)?]))
    }
    #[inline]
    fn str16(&mut self) -> Option<&'a str> {
        let n = self.u16()?;
        std::str::from_utf8(self.take(usize::from(n))?).ok()
    }
    #[inline]
    fn str32(&mut self) -> Option<&'a str> {
        let n = usize::try_from(self.u32()?).ok()?;
        std::str::from_utf8(self.take(n)?).ok()
    }
    #[inline]
    fn name16(&mut self) -> Option<Name<'a>> {
        let n = self.u16()?;
        if n & ID_FLAG != 0 {
            return Some(Name::Id(n & !ID_FLAG));
        }
        std::str::from_utf8(self.take(usize::from(n))?).ok().map(Name::Text)
    }
    /// A JSON object of `u32` length; `None` inside for length 0 (no JSON to parse).
    #[inline]
    fn json32(&mut self) -> Option<Option<serde_json::Map<String, serde_json::Value>>> {
        let n = usize::try_from(self.u32()?).ok()?;
        if n == 0 {
            return Some(None);
        }
        serde_json::from_slice(self.take(n)?).ok().map(Some)
    }
}

/// A compact request, decoded (see `ABI.md`).
struct Compact<'a> {
    handle: u32,
    kind: Name<'a>,
    action: Name<'a>,
    scope: &'a str,
    id: &'a str,
    attributes: Option<serde_json::Map<String, serde_json::Value>>,
    context: Option<serde_json::Map<String, serde_json::Value>>,
}

impl<'a> Compact<'a> {
    #[inline]
    fn read(buf: &'a [u8]) -> Option<Self> {
        let mut r = Reader { buf };
        let q = Compact {
            handle: r.u32()?,
            kind: r.name16()?,
            action: r.name16()?,
            scope: r.str16()?,
            id: r.str16()?,
            attributes: r.json32()?,
            context: r.json32()?,
        };
        r.buf.is_empty().then_some(q)
    }
}

/// Decide one request in the compact encoding (see `ABI.md`): principal handle, kind and
/// action (ids from [`rs_names`] or names), scope, resource id, resource attributes (JSON),
/// context (JSON). Returns `(reason_code << 1) | allowed`, or a negative code. Never writes
/// the output buffer.
///
/// The common case (kind and action ids, no attributes, no context) allocates nothing once
/// the (kind, scope) pair was seen: the prepared resource comes from a bounded cache
/// ([`ResourceCache`]), the declared context defaults are prepared once.
#[wasm_bindgen]
pub fn rs_decide(len: u32) -> i32 {
    with(
        |st| {
            let State { policy, input, principals, resources, .. } = st;
            let Some(policy) = policy.as_ref() else { return ERR_NO_POLICY };
            let bytes = usize::try_from(len).ok().and_then(|n| input.get(..n));
            let Some(q) = bytes.and_then(Compact::read) else { return ERR_MALFORMED };
            let Some(Some(principal)) = principals.get(q.handle as usize) else { return ERR_MALFORMED };
            // As the engine's `check`: an inactive principal is denied before anything else.
            if principal.status() != Status::Active {
                return encode(false, Reason::PrincipalInactive);
            }
            let kind = match q.kind {
                Name::Id(id) if policy.action_count(u32::from(id)).is_some() => u32::from(id),
                Name::Id(_) => return ERR_MALFORMED,
                Name::Text(name) => match policy.kind_id(name) {
                    Some(k) => k,
                    None => return encode(false, Reason::UnknownResourceKind),
                },
            };
            let action = match q.action {
                Name::Id(id) => match u8::try_from(id) {
                    Ok(a) if policy.action_count(kind).is_some_and(|n| usize::from(a) < n) => Ok(a),
                    _ => return ERR_MALFORMED,
                },
                Name::Text(name) => Err(name),
            };
            let owned: PreparedResource;
            let resource = match &q.attributes {
                None => match policy.cached_resource(resources, kind, q.scope, q.id) {
                    Ok(r) => r,
                    Err(e) => return encode(false, e.reason()),
                },
                Some(attrs) => match policy.prepare_resource_id(kind, q.scope, q.id, attrs) {
                    Ok(r) => {
                        owned = r;
                        &owned
                    }
                    Err(e) => return encode(false, e.reason()),
                },
            };
            let prepared_context;
            let context = match &q.context {
                None => policy.empty_context(),
                Some(c) => match policy.prepare_context(c) {
                    Ok(c) => {
                        prepared_context = c;
                        &prepared_context
                    }
                    Err(e) => return encode(false, e.reason()),
                },
            };
            let d = match action {
                Ok(a) => policy.decide_ids(principal, a, resource, context),
                Err(name) => policy.decide(principal, name, resource, context),
            };
            encode(d.allowed(), d.reason())
        },
        ERR_MALFORMED,
    )
}

/// Most headers an HTTP request may carry into [`rs_authorize`].
pub const MAX_HEADERS: usize = 256;

/// An optional string in [`rs_authorize`]'s output that is absent.
pub const ABSENT: u32 = u32::MAX;

/// Read the compact HTTP request (see `ABI.md`) into `headers` (reused); `None` when it is
/// malformed.
fn http_request<'a>(buf: &'a [u8], headers: &mut Vec<(&'a str, &'a str)>) -> Option<(&'a str, &'a str)> {
    let mut r = Reader { buf };
    let method = r.str16()?;
    let target = r.str32()?;
    let n = usize::from(r.u16()?);
    if n > MAX_HEADERS {
        return None;
    }
    headers.clear();
    for _ in 0..n {
        let name = r.str16()?;
        let value = r.str32()?;
        headers.push((name, value));
    }
    r.buf.is_empty().then_some((method, target))
}

/// Write an optional string (`u32` length + bytes, or [`ABSENT`]).
fn put_str(out: &mut Vec<u8>, field: Option<&str>) {
    match field.and_then(|s| u32::try_from(s.len()).ok().map(|n| (s, n))) {
        Some((s, n)) if n != ABSENT => {
            out.extend_from_slice(&n.to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        _ => out.extend_from_slice(&ABSENT.to_le_bytes()),
    }
}

/// Write an HTTP decision into `out` (see `ABI.md`).
fn http_decision(out: &mut Vec<u8>, d: &HttpDecision) {
    out.clear();
    out.extend_from_slice(&[u8::from(d.allowed()), d.reason().code(), u8::from(d.public())]);
    for field in [d.route(), d.action(), d.kind(), d.scope(), d.tenant(), d.resource_id(), d.detail()] {
        put_str(out, field);
    }
    out.extend_from_slice(&d.rule().unwrap_or(ABSENT).to_le_bytes());
    put_str(out, d.assignment());
    // at most 3 (the engine's bound)
    out.push(u8::try_from(d.nearest().len()).unwrap_or(0));
    for a in d.nearest() {
        put_str(out, Some(a));
    }
}

/// Decide an HTTP request with the policy's route table (the engine's `authorize_http`): the
/// compact HTTP request (method, raw target, headers; see `ABI.md`) in the first `len` input
/// bytes, for the principal `handle` (from [`rs_principal`]) or `-1` for an anonymous caller
/// (public routes only). Returns `(reason_code << 1) | allowed` with the whole decision
/// (public flag, route, action, kind, scope, tenant, resource id, detail) in the output
/// buffer, or a negative code.
#[wasm_bindgen]
pub fn rs_authorize(handle: i32, len: u32) -> i32 {
    with(
        |st| {
            let State { policy, input, output, principals, .. } = st;
            let Some(policy) = policy.as_ref() else { return ERR_NO_POLICY };
            let principal = match handle {
                -1 => None,
                h => match usize::try_from(h).ok().and_then(|h| principals.get(h)) {
                    Some(Some(p)) => Some(p),
                    _ => return ERR_MALFORMED,
                },
            };
            let mut headers = Vec::new();
            let bytes = usize::try_from(len).ok().and_then(|n| input.get(..n));
            let Some((method, target)) = bytes.and_then(|b| http_request(b, &mut headers)) else {
                return ERR_MALFORMED;
            };
            let d = policy.authorize_http(principal, &HttpRequest { method, target, headers: &headers });
            http_decision(output, &d);
            encode(d.allowed(), d.reason())
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
            let report = match Request::from_json(bytes) {
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
