//! Decision logs: one JSON line per authorized request, written by a thread of its own (the
//! request path only hands the record over; when the writer falls behind, records are dropped
//! and counted rather than slowing requests down).

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use std::time::Duration;

use rolescope_engine::Reason;
use serde::Serialize;

use super::config::DecisionSink;
use crate::wasm_host::HttpVerdict;

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
    /// The bundle revision the request was decided on (null when none was in force).
    pub(crate) revision: Option<String>,
    /// Microseconds from the request head to the decision (identity and engine; not the
    /// upstream).
    pub(crate) latency_us: u64,
}

/// The request as received.
#[derive(Debug, Serialize)]
pub(crate) struct RequestRecord {
    pub(crate) method: String,
    pub(crate) target: String,
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
            revision: revision.map(str::to_owned),
            latency_us: u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
        }
    }
}

/// The sink.
#[derive(Clone, Debug)]
pub(crate) struct DecisionLog {
    tx: Option<SyncSender<DecisionRecord>>,
    dropped: Arc<AtomicU64>,
}

impl DecisionLog {
    /// Start the writer for `sink` (none for `off`).
    pub(crate) fn start(sink: &DecisionSink) -> std::io::Result<Self> {
        let out: Box<dyn Write + Send> = match sink {
            DecisionSink::Off => return Ok(Self { tx: None, dropped: Arc::default() }),
            DecisionSink::Stdout => Box::new(std::io::stdout()),
            DecisionSink::File(path) => Box::new(std::fs::OpenOptions::new().create(true).append(true).open(path)?),
        };
        let (tx, rx) = sync_channel(QUEUE);
        std::thread::Builder::new().name("rolescope-decision-log".into()).spawn(move || write_all(&rx, out))?;
        Ok(Self { tx: Some(tx), dropped: Arc::default() })
    }

    pub(crate) fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    pub(crate) fn log(&self, record: DecisionRecord) {
        if let Some(tx) = &self.tx
            && let Err(TrySendError::Full(_)) = tx.try_send(record)
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn write_all(rx: &Receiver<DecisionRecord>, out: Box<dyn Write + Send>) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(r) = next {
            if serde_json::to_writer(&mut out, &r).is_ok() {
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
