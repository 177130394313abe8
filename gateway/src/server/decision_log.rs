//! Decision logs: one JSON line per authorized request, written by a thread of its own (the
//! request path only hands the record over; when the writer falls behind, records are dropped
//! and counted rather than slowing requests down).

use std::io::Write;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rolescope_engine::Principal;
use serde::ser::SerializeMap as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use std::time::Duration;

use rolescope_engine::Reason;
use serde::Serialize;

use super::config::DecisionSink;
use super::identity::Verified;
use crate::wasm_host::{HttpVerdict, default_deny};

/// Records waiting for the writer at most.
const QUEUE: usize = 65_536;

/// The shape's name and version, the first member of every record (gateway/README.md, "Decision records").
pub(crate) const SCHEMA: &str = "rolescope-decision/1";

/// One decision, as logged (`rolescope-decision/1`; the edge worker writes the same shape).
#[derive(Debug, Serialize)]
pub(crate) struct DecisionRecord {
    pub(crate) schema: &'static str,
    pub(crate) decision_id: String,
    /// RFC 3339, UTC.
    pub(crate) time: String,
    /// The request as received: method and raw origin-form target (undecoded).
    pub(crate) request: RequestRecord,
    /// The matched route template, e.g. `GET /api/v1/orgs/{org}/devices`, or null.
    pub(crate) route: Option<String>,
    /// Why no route is named: `no_route`, `invalid_path`, `not_reached` (refused before the
    /// route table: a token, the directory, no policy, an engine fault). Null when one matched.
    pub(crate) route_miss: Option<&'static str>,
    pub(crate) principal: Option<String>,
    /// The question the route asked the engine (null when none was asked).
    pub(crate) question: Option<Question>,
    pub(crate) allowed: bool,
    /// The reason code, as in the response body (`allowed` for an allowed request).
    pub(crate) reason: &'static str,
    /// A token refusal's precise cause (`bad_signature`, `algorithm_not_allowed`, `expired_token`,
    /// ...); null otherwise.
    pub(crate) cause: Option<&'static str>,
    /// The engine's words on a refused request (a bad path, an unknown principal), or null.
    pub(crate) detail: Option<String>,
    /// The rule that decided: for an allow the grant, for an `explicit_deny` the deny; null
    /// otherwise (a default deny, a refusal, a public route).
    pub(crate) rule: Option<RuleRecord>,
    /// For a default deny (`no_matching_grant`, `out_of_scope`, `condition_false`): the
    /// principal's assignments nearest to the question's scope, the nearest first (at most 3,
    /// `role@scope`); null otherwise.
    pub(crate) nearest: Option<Vec<String>>,
    /// The bundle revision the request was decided on (null when none was in force).
    pub(crate) revision: Option<String>,
    /// Microseconds from the request head to the decision (identity and engine; not the
    /// upstream).
    pub(crate) latency_us: u64,
    /// What the request was decided on, for deciding it again offline (`rolescope explain
    /// --log`, `rolescope replay`): null when `decision_log.input.record` is off.
    pub(crate) input: Option<InputRecord>,
}

/// What the record's `input` is made of (`decision_log.input`, `decision_log.mask`).
#[derive(Clone, Debug)]
pub(crate) struct InputSettings {
    /// Record `input` at all (default on).
    pub(crate) record: bool,
    /// Record the principal's attributes (default off: they may be personal data).
    pub(crate) principal_attributes: bool,
    /// Headers recorded besides those the route table reads (lowercase).
    pub(crate) headers: Vec<String>,
    /// Applied to every record before it is written, in order.
    pub(crate) masks: Vec<Mask>,
}

impl Default for InputSettings {
    fn default() -> Self {
        Self { record: true, principal_attributes: false, headers: Vec::new(), masks: Vec::new() }
    }
}

/// One mask, as OPA's decision-log masks: a JSON pointer into the record's `input`, erased
/// (the member removed) or replaced by a value. A pointer that names nothing is skipped.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Mask {
    pointer: String,
    replace: Option<serde_json::Value>,
}

impl Mask {
    /// A mask of `pointer` (RFC 6901, below `/input/`): erased, or replaced by `value`.
    pub(crate) fn new(pointer: &str, value: Option<serde_json::Value>) -> Result<Self, String> {
        let Some(rest) = pointer.strip_prefix("/input/").filter(|r| !r.is_empty()) else {
            return Err(format!(
                "{pointer:?} is not a JSON pointer into the record's input (e.g. /input/principal/attributes/email); \
                 to record no input at all, set decision_log.input.record: false"
            ));
        };
        for token in rest.split('/') {
            let mut chars = token.chars();
            while let Some(c) = chars.next() {
                if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
                    return Err(format!("{pointer:?}: `~` must be followed by 0 or 1 (RFC 6901)"));
                }
            }
        }
        Ok(Self { pointer: pointer.to_owned(), replace: value })
    }

    /// Apply to `record` (a record as JSON); whether it changed anything.
    fn apply(&self, record: &mut serde_json::Value) -> bool {
        match &self.replace {
            Some(v) => match record.pointer_mut(&self.pointer) {
                Some(at) => {
                    *at = v.clone();
                    true
                }
                None => false,
            },
            None => {
                let Some((parent, last)) = self.pointer.rsplit_once('/') else { return false };
                let last = last.replace("~1", "/").replace("~0", "~");
                match record.pointer_mut(parent) {
                    Some(serde_json::Value::Object(o)) => o.remove(&last).is_some(),
                    Some(serde_json::Value::Array(a)) => match last.parse::<usize>() {
                        Ok(i) if i < a.len() => {
                            a.remove(i);
                            true
                        }
                        _ => false,
                    },
                    _ => false,
                }
            }
        }
    }
}

/// Apply `masks` to a record (as JSON) and list what they did in `input.erased` and
/// `input.masked` (as OPA's events do).
pub(crate) fn mask_record(record: &mut serde_json::Value, masks: &[Mask]) {
    let mut erased = Vec::new();
    let mut masked = Vec::new();
    for m in masks {
        if m.apply(record) {
            let list = if m.replace.is_some() { &mut masked } else { &mut erased };
            list.push(serde_json::Value::String(m.pointer.clone()));
        }
    }
    if let Some(input) = record.get_mut("input").and_then(serde_json::Value::as_object_mut) {
        input.insert("erased".into(), erased.into());
        input.insert("masked".into(), masked.into());
    }
}

/// The principal the engine decided for.
#[derive(Clone, Debug)]
pub(crate) enum DecidedPrincipal {
    /// The token's (or the directory's) principal.
    Verified(Arc<Verified>),
    /// The principal filed in the bundle under the token's subject.
    Filed(Arc<Principal>),
}

impl DecidedPrincipal {
    fn principal(&self) -> &Principal {
        match self {
            Self::Verified(v) => &v.principal,
            Self::Filed(p) => p,
        }
    }
}

/// A record's `input`: the principal as decided (null: none was given to the engine), the
/// request headers the route table reads (and those configured), `erased` and `masked`.
#[derive(Clone, Debug)]
pub(crate) struct InputRecord {
    principal: Option<DecidedPrincipal>,
    attributes: bool,
    /// Lowercase name, value; a repeated header is recorded as a list.
    headers: Vec<(String, String)>,
}

impl Serialize for InputRecord {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct P<'a>(&'a Principal, bool);
        impl Serialize for P<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let p = self.0;
                let mut m = s.serialize_map(None)?;
                m.serialize_entry("id", &p.id)?;
                m.serialize_entry("status", p.status.as_deref().unwrap_or("active"))?;
                m.serialize_entry("assignments", &p.assignments)?;
                if self.1 {
                    m.serialize_entry("attributes", &p.attributes)?;
                }
                m.end()
            }
        }
        struct H<'a>(&'a [(String, String)]);
        impl Serialize for H<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(None)?;
                let mut done: Vec<&str> = Vec::new();
                for (name, value) in self.0 {
                    if done.contains(&name.as_str()) {
                        continue;
                    }
                    done.push(name);
                    let all: Vec<&str> = self.0.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect();
                    if all.len() == 1 {
                        m.serialize_entry(name, value)?;
                    } else {
                        m.serialize_entry(name, &all)?;
                    }
                }
                m.end()
            }
        }
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("principal", &self.principal.as_ref().map(|p| P(p.principal(), self.attributes)))?;
        m.serialize_entry("headers", &H(&self.headers))?;
        m.serialize_entry("erased", &[] as &[&str])?;
        m.serialize_entry("masked", &[] as &[&str])?;
        m.end()
    }
}

/// The request as received.
#[derive(Debug, Serialize)]
pub(crate) struct RequestRecord {
    pub(crate) method: String,
    pub(crate) target: String,
}

/// The rule that decided.
#[derive(Debug, Serialize)]
pub(crate) struct RuleRecord {
    /// `grant` or `deny`.
    pub(crate) effect: String,
    /// The role declaring it; null for a policy-wide deny.
    pub(crate) role: Option<String>,
    /// The assignment it came through, `role@scope`; null for a policy-wide deny.
    pub(crate) assignment: Option<String>,
    /// `file:line:col` in the bundle's sources.
    pub(crate) source: String,
}

/// The authorization question a route asked.
#[derive(Debug, Serialize)]
pub(crate) struct Question {
    pub(crate) action: String,
    pub(crate) kind: String,
    pub(crate) scope: String,
    /// The resource id (empty for a collection).
    pub(crate) id: String,
    pub(crate) tenant: Option<String>,
}

impl DecisionRecord {
    /// The record of one decision.
    #[expect(clippy::too_many_arguments, reason = "one record from the pipeline's parts, named at the call")]
    pub(crate) fn new(
        decision_id: &str,
        method: &str,
        target: &str,
        principal: Option<&str>,
        http: Option<&HttpVerdict>,
        allowed: bool,
        reason: &'static str,
        cause: Option<&'static str>,
        revision: Option<&str>,
        took: Duration,
        input: Option<InputRecord>,
    ) -> Self {
        let route = http.and_then(|h| h.route()).map(str::to_owned);
        let route_miss = match (&route, http.map(HttpVerdict::reason)) {
            (Some(_), _) => None,
            (None, Some(Reason::InvalidPath)) => Some("invalid_path"),
            (None, Some(_)) => Some("no_route"),
            (None, None) => Some("not_reached"),
        };
        let question = http.and_then(|h| {
            Some(Question {
                action: h.action()?.to_owned(),
                kind: h.kind()?.to_owned(),
                scope: h.scope().unwrap_or_default().to_owned(),
                id: h.resource_id().unwrap_or_default().to_owned(),
                tenant: h.tenant().map(str::to_owned),
            })
        });
        Self {
            schema: SCHEMA,
            decision_id: decision_id.to_owned(),
            time: now_rfc3339(),
            request: RequestRecord { method: method.to_owned(), target: target.to_owned() },
            route,
            route_miss,
            principal: principal.map(str::to_owned),
            question,
            allowed,
            reason,
            cause,
            detail: http.and_then(HttpVerdict::detail).map(str::to_owned),
            rule: http.and_then(|h| {
                let r = h.rule()?;
                Some(RuleRecord {
                    effect: r.effect.clone(),
                    role: r.role.clone(),
                    assignment: h.assignment().map(str::to_owned),
                    source: r.source.clone(),
                })
            }),
            nearest: http.filter(|h| default_deny(h.reason())).map(|h| h.nearest().to_vec()),
            revision: revision.map(str::to_owned),
            latency_us: u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            input,
        }
    }
}

/// The sink.
#[derive(Clone, Debug)]
pub(crate) struct DecisionLog {
    tx: Option<SyncSender<DecisionRecord>>,
    dropped: Arc<AtomicU64>,
    input: Arc<InputSettings>,
    /// The headers recorded: the route table's (of the bundle in force) and the configured.
    headers: Arc<ArcSwap<Vec<String>>>,
}

impl DecisionLog {
    /// Start the writer for `sink` (none for `off`).
    pub(crate) fn start(sink: &DecisionSink, input: &InputSettings) -> std::io::Result<Self> {
        let mut log = Self {
            tx: None,
            dropped: Arc::default(),
            input: Arc::new(input.clone()),
            headers: Arc::new(ArcSwap::from_pointee(input.headers.clone())),
        };
        let out: Box<dyn Write + Send> = match sink {
            DecisionSink::Off => return Ok(log),
            DecisionSink::Stdout => Box::new(std::io::stdout()),
            DecisionSink::File(path) => Box::new(std::fs::OpenOptions::new().create(true).append(true).open(path)?),
        };
        let (tx, rx) = sync_channel(QUEUE);
        let masks = input.masks.clone();
        std::thread::Builder::new().name("rolescope-decision-log".into()).spawn(move || write_all(&rx, out, &masks))?;
        log.tx = Some(tx);
        Ok(log)
    }

    pub(crate) fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Whether records carry `input` (then a bundle's route headers are worth reading).
    pub(crate) fn records_input(&self) -> bool {
        self.enabled() && self.input.record
    }

    /// The bundle in force reads these request headers (`Policy::request_headers`).
    pub(crate) fn set_route_headers(&self, route_headers: &[&str]) {
        // credentials are never recorded, even when a route reads them
        let mut all: Vec<String> = route_headers
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .filter(|h| !matches!(h.as_str(), "authorization" | "proxy-authorization" | "cookie"))
            .collect();
        for h in &self.input.headers {
            if !all.contains(h) {
                all.push(h.clone());
            }
        }
        self.headers.store(Arc::new(all));
    }

    /// The `input` of a record (`None` when input is not recorded).
    pub(crate) fn input(&self, principal: Option<DecidedPrincipal>, headers: &http::HeaderMap) -> Option<InputRecord> {
        if !self.input.record {
            return None;
        }
        let names = self.headers.load();
        let headers = headers
            .iter()
            .filter(|(k, _)| names.iter().any(|n| n == k.as_str()))
            .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        Some(InputRecord { principal, attributes: self.input.principal_attributes, headers })
    }

    pub(crate) fn log(&self, record: DecisionRecord) {
        if let Some(tx) = &self.tx
            && let Err(TrySendError::Full(_)) = tx.try_send(record)
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn write_all(rx: &Receiver<DecisionRecord>, out: Box<dyn Write + Send>, masks: &[Mask]) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(r) = next {
            let written = if masks.is_empty() || r.input.is_none() {
                serde_json::to_writer(&mut out, &r)
            } else {
                serde_json::to_value(&r).and_then(|mut v| {
                    mask_record(&mut v, masks);
                    serde_json::to_writer(&mut out, &v)
                })
            };
            if written.is_ok() {
                let _ = out.write_all(b"\n");
            }
            next = rx.try_recv().ok();
        }
        // Nothing more waiting: flush, so a line is visible as soon as the burst ends.
        let _ = out.flush();
    }
}

/// Now, as RFC 3339 (UTC).
pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}
