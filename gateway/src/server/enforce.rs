//! The seam between HTTP and the engine: one authorization per request, through the wasmtime
//! host only (the module the npm package ships). A principal is prepared once per verified
//! token and bundle revision; its guest handle is kept per worker thread.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rolescope_engine::{Principal, Reason};

use super::identity::Verified;
use super::lru::ByteLru;
use super::reject::{BadRequest, Rejection, Unavailable};
use crate::wasm_host::{Error, Handle, Host, HttpVerdict, Revision, WasmEngine};

/// The prepared principals a thread keeps, in bytes of their JSON (what the guest parsed and
/// holds; the guest's own copy is a small multiple of it). The least recently used leave
/// first and are released in the guest, so the handles never fill the instance's memory.
pub(crate) const PRINCIPAL_BYTES_PER_THREAD: usize = 2 << 20;

thread_local! {
    /// Guest handles (and their weight) by verified-token id (ids are unique in the process, so
    /// gateways sharing a thread never mix theirs up; a handle used on the wrong host is stale
    /// and re-prepared).
    static HANDLES: RefCell<ByteLru<u64, (Handle, usize)>> = RefCell::new(ByteLru::new(PRINCIPAL_BYTES_PER_THREAD));
}

/// The weight of a prepared principal: its JSON's length (at least 256).
fn principal_weight(p: &Principal) -> usize {
    serde_json::to_vec(p).map_or(usize::MAX, |v| v.len()).max(256)
}

/// The request as the engine sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HttpQuery<'a> {
    pub(crate) method: &'a str,
    /// The raw origin-form target (`path?query`), undecoded.
    pub(crate) target: &'a str,
    pub(crate) headers: &'a [(&'a str, &'a str)],
}

/// The engine's answer, as the gateway logs and enforces it: the host's verdict (kept whole,
/// so its strings are read only when a decision is logged), with the reason the gateway
/// enforces (an unfiled subject's `unauthenticated` becomes `unknown_principal`).
#[derive(Clone, Debug)]
pub(crate) struct Verdict {
    pub(crate) allowed: bool,
    pub(crate) reason: Reason,
    pub(crate) http: HttpVerdict,
    /// With principals filed in the bundle: the one decided for (`None`: not filed, decided
    /// anonymously).
    pub(crate) filed: Option<Arc<Principal>>,
}

/// Principals filed in one bundle, by subject.
#[derive(Debug, Default)]
pub(crate) struct Filed {
    pub(crate) revision: String,
    pub(crate) principals: HashMap<String, Arc<Principal>>,
}

/// The engine as the gateway uses it.
pub(crate) struct Enforcer {
    engine: WasmEngine,
    /// Principals are looked up in the bundle by the token's subject.
    from_bundle: bool,
    /// Filed principals of the current and the previous bundle (requests in flight during a
    /// swap may still run on the previous one).
    filed: ArcSwap<Vec<Arc<Filed>>>,
}

impl std::fmt::Debug for Enforcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enforcer").field("engine", &self.engine).finish_non_exhaustive()
    }
}

/// A host error as the client sees it: no bundle, input the engine cannot take (400), or an
/// engine fault (503). Every one of them denies.
fn unavailable(e: &Error) -> Rejection {
    if e.is_no_policy() {
        Rejection::Unavailable(Unavailable::NoPolicy)
    } else if e.is_invalid_input() {
        Rejection::BadRequest(BadRequest::Unrepresentable)
    } else {
        tracing::warn!(error = %e, "engine fault");
        Rejection::Unavailable(Unavailable::EngineFault)
    }
}

impl Enforcer {
    pub(crate) fn new(engine: WasmEngine, from_bundle: bool) -> Self {
        Self { engine, from_bundle, filed: ArcSwap::from_pointee(Vec::new()) }
    }

    pub(crate) fn engine(&self) -> &WasmEngine {
        &self.engine
    }

    pub(crate) fn principals_filed(&self) -> bool {
        self.from_bundle
    }

    /// Record the principals filed in a bundle the engine accepted.
    pub(crate) fn set_filed(&self, filed: Filed) {
        let current = self.filed.load();
        let mut next = vec![Arc::new(filed)];
        if let Some(prev) = current.first() {
            next.push(Arc::clone(prev));
        }
        self.filed.store(Arc::new(next));
    }

    /// Authorize one request. `Err` never forwards: no policy or an engine fault (503), a
    /// request the engine cannot take (400).
    pub(crate) fn authorize(&self, who: Option<&Verified>, req: &HttpQuery<'_>) -> Result<Verdict, Rejection> {
        self.engine.with_host(|host| {
            let revision = host.refresh().map_err(|e| unavailable(&e))?.clone();
            let Some(who) = who else {
                return decide(host, None, req).map_err(|e| unavailable(&e));
            };
            let principal = if !self.from_bundle {
                &who.principal
            } else {
                let filed = self.filed.load();
                let Some(p) = filed
                    .iter()
                    .find(|f| f.revision == revision.as_str())
                    .and_then(|f| f.principals.get(&who.principal.id))
                    .cloned()
                else {
                    // Not filed: route the request anonymously; a public route stays public,
                    // anything else is denied as the engine denies an unknown principal.
                    let mut v = decide(host, None, req).map_err(|e| unavailable(&e))?;
                    if !v.allowed && v.reason == Reason::Unauthenticated {
                        v.reason = Reason::UnknownPrincipal;
                    }
                    return Ok(v);
                };
                let mut v = with_handle(host, who.id, &p, &revision, |host, handle| decide(host, Some(handle), req))
                    .map_err(|e| unavailable(&e))?;
                v.filed = Some(p);
                return Ok(v);
            };
            with_handle(host, who.id, principal, &revision, |host, handle| decide(host, Some(handle), req))
                .map_err(|e| unavailable(&e))
        })
    }
}

/// Run `f` with this thread's handle of the principal of token `id` (prepared when missing,
/// of an older revision, or stale).
fn with_handle<R>(
    host: &mut Host,
    id: u64,
    principal: &Principal,
    revision: &Revision,
    mut f: impl FnMut(&mut Host, &Handle) -> Result<R, Error>,
) -> Result<R, Error> {
    let cached = HANDLES.with_borrow_mut(|m| m.remove(&id));
    let (mut handle, weight) = match cached {
        Some((h, w)) if h.revision() == revision => (h, w),
        Some((h, _)) => {
            host.release(h);
            (host.principal(principal)?, principal_weight(principal))
        }
        None => (host.principal(principal)?, principal_weight(principal)),
    };
    let mut out = f(host, &handle);
    if out.as_ref().is_err_and(Error::is_stale_handle) {
        // Another host's, or the instance was replaced: prepare again, once.
        handle = host.principal(principal)?;
        out = f(host, &handle);
    }
    let evicted = HANDLES.with_borrow_mut(|m| m.insert(id, (handle, weight), weight));
    for (h, _) in evicted {
        host.release(h);
    }
    out
}

/// One HTTP authorization call into the guest (`rs_authorize`: the engine normalizes the
/// target, matches the bundle's route table and decides).
fn decide(host: &mut Host, handle: Option<&Handle>, req: &HttpQuery<'_>) -> Result<Verdict, Error> {
    let request = rolescope_engine::HttpRequest { method: req.method, target: req.target, headers: req.headers };
    let http = host.authorize(handle, &request)?;
    Ok(Verdict { allowed: http.allowed(), reason: http.reason(), http, filed: None })
}
