//! [`Host`]: one long-lived instance, the current bundle loaded into it, and the calls a
//! gateway makes per request.

use std::sync::Arc;

use rolescope_engine::{DecisionReport, HttpRequest, MatchedRule, Principal, Reason, Request};
use serde_json::{Map, Value};

use super::error::{Error, ErrorKind};
use super::guest::{Guest, PrincipalAnswer};
use super::http::{self, HttpVerdict};
use super::names::{ID_FLAG, Names};
use super::{Bundle, Decision, Owner, Revision, Shared, same};

/// A principal prepared by a host's instance, for [`Host::decide`]. Not `Clone`: a released
/// handle can never be used again, and a handle is only valid on the host (and the bundle)
/// that prepared it; elsewhere [`Host::decide`] answers [`Error::is_stale_handle`].
#[derive(Debug)]
pub struct Handle(Inner);

#[derive(Debug)]
enum Inner {
    /// A principal held by the guest.
    Live { generation: u64, slot: u32, revision: Revision },
    /// The engine denies the principal everything (inactive, or refused): with `reason`.
    DeniesAll { reason: Reason, message: String, revision: Revision },
}

impl Handle {
    /// The revision of the bundle the principal was prepared for.
    pub fn revision(&self) -> &Revision {
        match &self.0 {
            Inner::Live { revision, .. } | Inner::DeniesAll { revision, .. } => revision,
        }
    }

    /// When the engine denies the principal everything (a suspended or deleted principal, or
    /// one it refuses: unknown status, bad attribute, ...): the reason every decision on it
    /// carries, and what the engine said.
    pub fn denies_all(&self) -> Option<(Reason, &str)> {
        match &self.0 {
            Inner::DeniesAll { reason, message, .. } => Some((*reason, message)),
            Inner::Live { .. } => None,
        }
    }
}

/// One question for [`Host::decide`]: an action on a resource (kind, scope, id, attributes) in
/// a context. Attributes and context are given as JSON objects (absent or empty: none; the
/// policy's declared context defaults apply).
#[derive(Clone, Copy, Debug)]
pub struct Query<'a> {
    action: &'a str,
    kind: &'a str,
    scope: &'a str,
    id: &'a str,
    attributes: Option<&'a Map<String, Value>>,
    context: Option<&'a Map<String, Value>>,
}

impl<'a> Query<'a> {
    /// `action` on a resource of `kind` at `scope` (e.g. `msp:acme/org:o1/site:s2`).
    pub fn new(action: &'a str, kind: &'a str, scope: &'a str) -> Self {
        Self { action, kind, scope, id: "", attributes: None, context: None }
    }

    /// The resource's id.
    pub fn id(mut self, id: &'a str) -> Self {
        self.id = id;
        self
    }

    /// The resource's attributes.
    pub fn attributes(mut self, attributes: &'a Map<String, Value>) -> Self {
        self.attributes = Some(attributes);
        self
    }

    /// The request context.
    pub fn context(mut self, context: &'a Map<String, Value>) -> Self {
        self.context = Some(context);
        self
    }

    /// The action, resource and context of an engine [`Request`] (its principal aside).
    pub fn of(request: &'a Request) -> Self {
        let r = &request.resource;
        Self::new(&request.action, &r.kind, &r.scope).id(&r.id).attributes(&r.attributes).context(&request.context)
    }
}

/// Write the compact request (`bindings/ABI.md`) into `buf`: the kind and the action as ids
/// when the names table has them (the guest then looks no name up), else as text (the guest
/// denies an unknown kind or action as the engine does); attributes and context as JSON only
/// when not empty.
fn encode(buf: &mut Vec<u8>, names: &Names, slot: u32, q: &Query<'_>) -> Result<(), Error> {
    fn text(buf: &mut Vec<u8>, what: &str, s: &str, max: usize) -> Result<(), Error> {
        let n = u16::try_from(s.len()).ok().filter(|n| usize::from(*n) <= max).ok_or_else(|| {
            Error::new(ErrorKind::InvalidInput, format!("{what} of {} bytes (at most {max})", s.len()))
        })?;
        buf.extend_from_slice(&n.to_le_bytes());
        buf.extend_from_slice(s.as_bytes());
        Ok(())
    }
    buf.clear();
    buf.extend_from_slice(&slot.to_le_bytes());
    let (kind, action) = names.ids(q.kind, q.action);
    let name_max = usize::from(ID_FLAG - 1);
    match kind {
        Some(id) => buf.extend_from_slice(&(id | ID_FLAG).to_le_bytes()),
        None => text(buf, "kind", q.kind, name_max)?,
    }
    match action {
        Some(id) => buf.extend_from_slice(&(id | ID_FLAG).to_le_bytes()),
        None => text(buf, "action", q.action, name_max)?,
    }
    text(buf, "scope", q.scope, usize::from(u16::MAX))?;
    text(buf, "id", q.id, usize::from(u16::MAX))?;
    for (what, m) in [("attributes", q.attributes), ("context", q.context)] {
        let at = buf.len();
        buf.extend_from_slice(&[0; 4]);
        if let Some(m) = m.filter(|m| !m.is_empty()) {
            serde_json::to_writer(&mut *buf, m)
                .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("{what}: {e}")))?;
            let n = u32::try_from(buf.len() - at - 4)
                .map_err(|_| Error::new(ErrorKind::InvalidInput, format!("{what} larger than 4 GiB")))?;
            if let Some(len) = buf.get_mut(at..at + 4) {
                len.copy_from_slice(&n.to_le_bytes());
            }
        }
    }
    Ok(())
}

/// The instance with a bundle in it.
struct Live {
    guest: Guest,
    /// The bundle's kind and action ids (`rs_names`).
    names: Names,
    /// The bundle's rules by id (`rs_rules`): what an HTTP decision's rule id names.
    rules: Vec<Arc<MatchedRule>>,
    /// Unique id of this (instance, bundle) pairing.
    generation: u64,
    bundle: Arc<Bundle>,
}

/// One long-lived instance of the engine module, for one thread at a time (`Send`, not
/// `Sync`). Get one from [`super::WasmEngine::host`] or use [`super::WasmEngine::with_host`].
///
/// Every method fails closed: an `Err` is a deny. After a guest failure the instance is gone;
/// the next call starts a fresh one and loads the current bundle into it.
pub struct Host {
    shared: Arc<Shared>,
    owner: Owner,
    live: Option<Live>,
    /// Reused encoding buffer (compact requests, JSON inputs).
    scratch: Vec<u8>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").field("revision", &self.revision()).finish_non_exhaustive()
    }
}

impl Host {
    pub(super) fn new(shared: Arc<Shared>, owner: Owner) -> Self {
        Self { shared, owner, live: None, scratch: Vec::with_capacity(512) }
    }

    pub(super) fn owner(&self) -> &Owner {
        &self.owner
    }

    pub(super) fn belongs_to(&self, shared: &Arc<Shared>) -> bool {
        same(&self.shared, shared)
    }

    /// The revision loaded in this host's instance (none before its first call or right after
    /// a guest failure).
    pub fn revision(&self) -> Option<&Revision> {
        self.live.as_ref().map(|l| &l.bundle.revision)
    }

    /// Bring this host to the engine's current bundle: if it changed (or the instance is gone),
    /// start a fresh instance and load the bundle into it. [`Host::principal`] and
    /// [`Host::check_json`] do this themselves; call it to pay for a reload ahead of requests.
    pub fn refresh(&mut self) -> Result<&Revision, Error> {
        let current = self.shared.bundle.load();
        let Some(bundle) = current.as_ref() else {
            return Err(Error::new(ErrorKind::NoPolicy, ""));
        };
        let up_to_date = self.live.as_ref().is_some_and(|l| l.bundle.seq == bundle.seq);
        if !up_to_date {
            let bundle = Arc::clone(bundle);
            drop(current);
            // A new bundle goes into a new instance: no state of the old one carries over.
            self.live = None;
            let mut guest = self.shared.instantiate()?;
            let revision = guest.load_bundle(&bundle.json, self.shared.load_ticks).map_err(|e| {
                // The engine accepted this bundle before: refusing it now is out of contract.
                if e.is_invalid_bundle() { Error::new(ErrorKind::Protocol, e.detail().to_owned()) } else { e }
            })?;
            if revision != bundle.revision.as_str() {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    format!("bundle loaded as revision `{revision}`, expected `{}`", bundle.revision),
                ));
            }
            let names = guest.names(self.shared.load_ticks)?;
            let rules = guest.rules(self.shared.load_ticks)?;
            let generation = self.shared.next_generation();
            self.live = Some(Live { guest, names, rules, generation, bundle });
        }
        self.live.as_ref().map(|l| &l.bundle.revision).ok_or_else(|| Error::new(ErrorKind::NoPolicy, ""))
    }

    /// Run `f` on the live instance; a guest failure discards it.
    fn on_live<R>(&mut self, f: impl FnOnce(&mut Live, &mut Vec<u8>, u64) -> Result<R, Error>) -> Result<R, Error> {
        let Some(live) = self.live.as_mut() else {
            return Err(Error::new(ErrorKind::StaleHandle, "the instance was replaced"));
        };
        let out = f(live, &mut self.scratch, self.shared.call_ticks);
        if out.as_ref().is_err_and(Error::is_guest_failure) {
            self.live = None;
        }
        out
    }

    /// Prepare a principal for [`Host::decide`] (refreshing the bundle first).
    ///
    /// A principal the engine denies everything (a status other than `active`, or one it
    /// refuses to prepare: unknown status, bad attribute, ...) still gives a handle, on which
    /// every decision denies with the engine's reason ([`Handle::denies_all`]). The reason comes
    /// from the guest's own check of a request by that principal (`rs_check_json`), so it is
    /// the native one: the principal is looked at before anything else. (`rs_decide` alone
    /// would look at the resource first; see the README.)
    pub fn principal(&mut self, principal: &Principal) -> Result<Handle, Error> {
        self.refresh()?;
        let active = principal.status.as_deref().is_none_or(|s| s == "active");
        self.on_live(|live, buf, ticks| {
            let revision = live.bundle.revision.clone();
            let mut refused = None;
            if active {
                buf.clear();
                serde_json::to_writer(&mut *buf, principal)
                    .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("principal: {e}")))?;
                match live.guest.principal(buf, ticks)? {
                    PrincipalAnswer::Handle(slot) => {
                        return Ok(Handle(Inner::Live { generation: live.generation, slot, revision }));
                    }
                    PrincipalAnswer::Rejected(message) => refused = Some(message),
                }
            }
            let probe = serde_json::json!({
                "principal": principal,
                "action": "",
                "resource": { "kind": "", "scope": "" },
            });
            buf.clear();
            serde_json::to_writer(&mut *buf, &probe)
                .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("principal: {e}")))?;
            let (d, out) = live.guest.check_json(buf, ticks)?;
            let report: DecisionReport = serde_json::from_slice(&out)
                .map_err(|e| Error::new(ErrorKind::Protocol, format!("decision report: {e}")))?;
            // The probe names no resource kind: only a principal that is denied everything
            // (inactive or refused) may be denied with any other reason than that.
            if d.allowed() || report.allowed || report.reason != d.reason() || d.reason() == Reason::UnknownResourceKind
            {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    format!("a principal the engine denies everything was answered `{}`", d.reason()),
                ));
            }
            let message = refused.unwrap_or(report.explanation);
            Ok(Handle(Inner::DeniesAll { reason: d.reason(), message, revision }))
        })
    }

    /// Forget a prepared principal (the guest keeps principals until they are released, the
    /// bundle changes or the instance is replaced).
    pub fn release(&mut self, handle: Handle) {
        let Inner::Live { generation, slot, .. } = handle.0 else { return };
        if self.live.as_ref().is_some_and(|l| l.generation == generation) {
            // A failure here discards the instance, which forgets the principal too.
            let _ = self.on_live(|live, _, ticks| live.guest.principal_free(slot, ticks));
        }
    }

    /// Decide `query` for a prepared principal: the compact request and `rs_decide`. Uses the
    /// bundle the handle was prepared for (no reload here): a handle from another host, an
    /// older bundle or a replaced instance answers [`Error::is_stale_handle`].
    pub fn decide(&mut self, handle: &Handle, query: &Query<'_>) -> Result<Decision, Error> {
        let (generation, slot) = match &handle.0 {
            Inner::DeniesAll { reason, .. } => return Ok(Decision::new(false, *reason)),
            Inner::Live { generation, slot, .. } => (*generation, *slot),
        };
        if self.live.as_ref().is_none_or(|l| l.generation != generation) {
            return Err(Error::new(ErrorKind::StaleHandle, ""));
        }
        self.on_live(|live, buf, ticks| {
            encode(buf, &live.names, slot, query)?;
            live.guest.decide(buf, ticks)
        })
    }

    /// Decide an HTTP request with the policy's route table (`rs_authorize`; the engine's
    /// `Policy::authorize_http`): normalize the raw target, match a route, and decide for
    /// `principal`, or for an anonymous caller (`None`: public routes only; a protected route
    /// answers `unauthenticated`).
    ///
    /// With a principal, the bundle is the one the handle was prepared for (no reload here): a
    /// handle from another host, an older bundle or a replaced instance answers
    /// [`Error::is_stale_handle`]. Anonymous calls refresh the bundle first. A principal the
    /// engine denies everything ([`Handle::denies_all`]) gets what the engine gives it: an
    /// inactive one gets public routes and routing refusals as anyone would, and
    /// `principal_inactive` on a protected route; one the engine refused to prepare is refused
    /// whatever the request (as the policy suites' `http` cases expect).
    ///
    /// Fails closed: an `Err` is a deny. The verdict carries the revision it was decided on.
    /// The request's headers are passed as given (at most 256; only those a route reads are
    /// looked at); more, or a method or header name over 64 KiB, is
    /// [`Error::is_invalid_input`].
    pub fn authorize(&mut self, principal: Option<&Handle>, req: &HttpRequest<'_>) -> Result<HttpVerdict, Error> {
        let (slot, denied) = match principal.map(|h| &h.0) {
            None => {
                self.refresh()?;
                (-1, None)
            }
            Some(Inner::Live { generation, slot, .. }) => {
                if self.live.as_ref().is_none_or(|l| l.generation != *generation) {
                    return Err(Error::new(ErrorKind::StaleHandle, ""));
                }
                let slot = i32::try_from(*slot).map_err(|_| Error::new(ErrorKind::StaleHandle, ""))?;
                (slot, None)
            }
            Some(Inner::DeniesAll { reason, message, revision }) => {
                if self.refresh()? != revision {
                    return Err(Error::new(ErrorKind::StaleHandle, ""));
                }
                if *reason != Reason::PrincipalInactive {
                    return Ok(HttpVerdict::refused(*reason, message, revision.clone()));
                }
                (-1, Some((*reason, message.as_str())))
            }
        };
        let verdict = self.on_live(|live, buf, ticks| {
            http::encode(buf, req)?;
            let (d, out) = live.guest.authorize(slot, buf, ticks)?;
            http::decode(&out, d.allowed(), d.reason(), live.bundle.revision.clone(), &live.rules)
                .ok_or_else(|| Error::new(ErrorKind::Protocol, "malformed HTTP decision"))
        })?;
        Ok(match denied {
            Some((reason, message)) => verdict.for_denied_principal(reason, message),
            None => verdict,
        })
    }

    /// Decide a full request (`rs_check_json`, refreshing the bundle first) and return the
    /// engine's report. The report must agree with the returned code and carry the loaded
    /// revision, or the answer is out of contract.
    pub fn check_json(&mut self, request: &Request) -> Result<DecisionReport, Error> {
        self.refresh()?;
        self.on_live(|live, buf, ticks| {
            buf.clear();
            serde_json::to_writer(&mut *buf, request)
                .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("request: {e}")))?;
            let (d, out) = live.guest.check_json(buf, ticks)?;
            let report: DecisionReport = serde_json::from_slice(&out)
                .map_err(|e| Error::new(ErrorKind::Protocol, format!("decision report: {e}")))?;
            if report.allowed != d.allowed() || report.reason != d.reason() {
                return Err(Error::new(ErrorKind::Protocol, "decision report contradicts the return code"));
            }
            if report.revision != live.bundle.revision.as_str() {
                return Err(Error::new(ErrorKind::Protocol, "decision report from another revision"));
            }
            Ok(report)
        })
    }

    /// Call any export of the module with integer arguments, under the same deadline, memory
    /// limit and failure rules (a failure discards the instance). Refreshes the bundle first.
    /// For diagnostics and the fail-closed tests (feature `testing`).
    #[cfg(feature = "testing")]
    pub fn call_export(&mut self, name: &str, args: &[i32]) -> Result<Vec<i32>, Error> {
        self.refresh()?;
        self.on_live(|live, _, ticks| live.guest.call_export(name, args, ticks))
    }
}
