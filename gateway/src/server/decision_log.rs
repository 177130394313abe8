//! Decision logs: one JSON line per authorized request, written by a thread of its own (the
//! request path only hands the record over; when the writer falls behind, records are dropped
//! and counted rather than slowing requests down).

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use serde::Serialize;

use super::config::DecisionSink;

/// Records waiting for the writer at most.
const QUEUE: usize = 65_536;

/// One decision, as logged.
#[derive(Debug, Serialize)]
pub(crate) struct DecisionRecord {
    pub(crate) decision_id: String,
    /// RFC 3339, UTC.
    pub(crate) time: String,
    pub(crate) principal: Option<String>,
    pub(crate) tenant: Option<String>,
    pub(crate) action: Option<String>,
    pub(crate) kind: Option<String>,
    pub(crate) resource: Option<String>,
    pub(crate) route: Option<String>,
    pub(crate) method: String,
    pub(crate) allowed: bool,
    pub(crate) reason: &'static str,
    pub(crate) revision: Option<String>,
    pub(crate) latency_us: u64,
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
