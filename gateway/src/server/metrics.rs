//! Prometheus metrics (text format 0.0.4), hand-rolled on atomics: nothing on the request path
//! takes a lock. No label carries a tenant, principal or path: labels are reason and cause
//! codes (static strings of the code), reload results, status codes and route templates of
//! the bundle (at most [`MAX_ROUTES`], then `other`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the decision-duration buckets, in seconds.
const DECISION_BUCKETS: &[f64] = &[1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 1e-3, 1e-2];
/// Upper bounds of the request-duration buckets, in seconds.
const REQUEST_BUCKETS: &[f64] = &[1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 0.1, 0.25, 1.0, 2.5, 10.0];

/// Route templates with a histogram of their own at most (a bundle with more shares `other`).
pub(crate) const MAX_ROUTES: usize = 512;
/// The `route` label of a request no route matched (or that was refused before the table).
const NO_ROUTE: &str = "none";

/// Series of one metric by one bounded label, added on first use without a lock (a copy of
/// the map is swapped in; the request path only reads).
#[derive(Debug)]
struct Family<T> {
    series: ArcSwap<BTreeMap<Box<str>, Arc<T>>>,
}

impl<T> Default for Family<T> {
    fn default() -> Self {
        Self { series: ArcSwap::from_pointee(BTreeMap::new()) }
    }
}

impl<T> Family<T> {
    /// The series of `label` (made by `make` on first use), or `None` past `cap` series.
    fn get(&self, label: &str, cap: usize, make: impl Fn() -> T) -> Option<Arc<T>> {
        if let Some(t) = self.series.load().get(label) {
            return Some(Arc::clone(t));
        }
        if self.series.load().len() >= cap {
            return None;
        }
        let fresh = Arc::new(make());
        self.series.rcu(|m| {
            let mut m = BTreeMap::clone(m);
            m.entry(label.into()).or_insert_with(|| Arc::clone(&fresh));
            m
        });
        // Another thread may have added it first: the one in the map counts.
        self.series.load().get(label).cloned()
    }

    fn snapshot(&self) -> Arc<BTreeMap<Box<str>, Arc<T>>> {
        self.series.load_full()
    }
}

/// A histogram with fixed buckets.
#[derive(Debug)]
struct Histogram {
    bounds: &'static [f64],
    /// One count per bound, then the `+Inf` one (not cumulative; summed when rendered).
    counts: Vec<AtomicU64>,
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self { bounds, counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(), sum_nanos: AtomicU64::new(0) }
    }

    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = self.bounds.iter().position(|b| secs <= *b).unwrap_or(self.bounds.len());
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_nanos.fetch_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        self.render_series(out, name, "");
    }

    /// The series' lines; `labels` (e.g. `route="GET /x",`) come before `le`.
    fn render_series(&self, out: &mut String, name: &str, labels: &str) {
        let mut total = 0;
        for (i, c) in self.counts.iter().enumerate() {
            total += c.load(Ordering::Relaxed);
            match self.bounds.get(i) {
                Some(b) => {
                    let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{b}\"}} {total}");
                }
                None => {
                    let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {total}");
                }
            }
        }
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let braces = if labels.is_empty() { String::new() } else { format!("{{{}}}", labels.trim_end_matches(',')) };
        let _ = writeln!(out, "{name}_sum{braces} {sum}\n{name}_count{braces} {total}");
    }
}

/// Every metric the gateway exports.
#[derive(Debug)]
pub(crate) struct Metrics {
    allow: AtomicU64,
    deny: AtomicU64,
    decision_duration: Histogram,
    /// Decisions by reason code (`allowed` included).
    by_reason: Family<AtomicU64>,
    /// Token refusals by precise cause.
    token_failures: Family<AtomicU64>,
    /// Decision time by route template.
    by_route: Family<Histogram>,
    reload_ok: AtomicU64,
    reload_refused: AtomicU64,
    /// Requests by status code (index: status - 100).
    statuses: Vec<AtomicU64>,
    request_duration: Histogram,
    revision: Mutex<Option<String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            allow: AtomicU64::new(0),
            deny: AtomicU64::new(0),
            decision_duration: Histogram::new(DECISION_BUCKETS),
            by_reason: Family::default(),
            token_failures: Family::default(),
            by_route: Family::default(),
            reload_ok: AtomicU64::new(0),
            reload_refused: AtomicU64::new(0),
            statuses: (100..600).map(|_| AtomicU64::new(0)).collect(),
            request_duration: Histogram::new(REQUEST_BUCKETS),
            revision: Mutex::new(None),
        }
    }
}

impl Metrics {
    /// One decision: its reason code, a token refusal's cause, the route template it matched.
    /// `reason` and `cause` are codes of this program (static strings), never input.
    pub(crate) fn decision(
        &self,
        allowed: bool,
        reason: &'static str,
        cause: Option<&'static str>,
        route: Option<&str>,
        took: Duration,
    ) {
        if allowed { &self.allow } else { &self.deny }.fetch_add(1, Ordering::Relaxed);
        self.decision_duration.observe(took);
        if let Some(c) = self.by_reason.get(reason, usize::MAX, AtomicU64::default) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(cause) = cause
            && let Some(c) = self.token_failures.get(cause, usize::MAX, AtomicU64::default)
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let h = self
            .by_route
            .get(route.unwrap_or(NO_ROUTE), MAX_ROUTES, || Histogram::new(DECISION_BUCKETS))
            .or_else(|| self.by_route.get("other", usize::MAX, || Histogram::new(DECISION_BUCKETS)));
        if let Some(h) = h {
            h.observe(took);
        }
    }

    pub(crate) fn request(&self, status: u16, took: Duration) {
        if let Some(c) = self.statuses.get(usize::from(status.saturating_sub(100))) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.request_duration.observe(took);
    }

    pub(crate) fn reload(&self, ok: bool) {
        if ok { &self.reload_ok } else { &self.reload_refused }.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn set_revision(&self, revision: &str) {
        if let Ok(mut r) = self.revision.lock() {
            *r = Some(revision.to_owned());
        }
    }

    /// The Prometheus text exposition.
    pub(crate) fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP rolescope_decisions_total Authorization decisions.\n# TYPE rolescope_decisions_total counter\n\
             rolescope_decisions_total{{decision=\"allow\"}} {}\nrolescope_decisions_total{{decision=\"deny\"}} {}",
            load(&self.allow),
            load(&self.deny)
        );
        let _ = writeln!(
            out,
            "# HELP rolescope_decisions_by_reason_total Authorization decisions, by reason code.\n\
             # TYPE rolescope_decisions_by_reason_total counter"
        );
        for (reason, c) in self.by_reason.snapshot().iter() {
            let _ = writeln!(out, "rolescope_decisions_by_reason_total{{reason=\"{}\"}} {}", escape(reason), load(c));
        }
        let _ = writeln!(
            out,
            "# HELP rolescope_token_failures_total Bearer tokens refused, by precise cause.\n\
             # TYPE rolescope_token_failures_total counter"
        );
        for (cause, c) in self.token_failures.snapshot().iter() {
            let _ = writeln!(out, "rolescope_token_failures_total{{cause=\"{}\"}} {}", escape(cause), load(c));
        }
        self.decision_duration.render(
            &mut out,
            "rolescope_decision_duration_seconds",
            "Time to authorize one request.",
        );
        let name = "rolescope_route_decision_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time to authorize one request, by route template (`none`: no route).\n# TYPE {name} histogram"
        );
        for (route, h) in self.by_route.snapshot().iter() {
            h.render_series(&mut out, name, &format!("route=\"{}\",", escape(route)));
        }
        let _ = writeln!(
            out,
            "# HELP rolescope_bundle_info The policy bundle in force.\n# TYPE rolescope_bundle_info gauge"
        );
        if let Ok(r) = self.revision.lock()
            && let Some(r) = r.as_deref()
        {
            let _ = writeln!(out, "rolescope_bundle_info{{revision=\"{}\"}} 1", escape(r));
        }
        let _ = writeln!(
            out,
            "# HELP rolescope_bundle_reloads_total Policy bundle loads, by result.\n# TYPE rolescope_bundle_reloads_total counter\n\
             rolescope_bundle_reloads_total{{result=\"ok\"}} {}\nrolescope_bundle_reloads_total{{result=\"refused\"}} {}",
            load(&self.reload_ok),
            load(&self.reload_refused)
        );
        let _ = writeln!(
            out,
            "# HELP rolescope_http_requests_total Requests answered, by status.\n# TYPE rolescope_http_requests_total counter"
        );
        for (i, c) in self.statuses.iter().enumerate() {
            let n = load(c);
            if n > 0 {
                let _ = writeln!(out, "rolescope_http_requests_total{{status=\"{}\"}} {n}", i + 100);
            }
        }
        self.request_duration.render(
            &mut out,
            "rolescope_http_request_duration_seconds",
            "Time to answer one request.",
        );
        out
    }
}

/// A label value as the text format wants it.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_cumulative_buckets_and_counters() {
        let m = Metrics::default();
        m.decision(true, "allowed", None, Some("GET /api/v1/orgs/{org}/devices"), Duration::from_micros(3));
        m.decision(false, "invalid_token", Some("bad_signature"), None, Duration::from_millis(50));
        m.request(200, Duration::from_millis(1));
        m.request(403, Duration::from_millis(1));
        m.reload(false);
        m.set_revision("abc");
        let text = m.render();
        assert!(text.contains("rolescope_decisions_total{decision=\"allow\"} 1"), "{text}");
        assert!(text.contains("rolescope_decisions_total{decision=\"deny\"} 1"));
        assert!(text.contains("rolescope_decision_duration_seconds_bucket{le=\"0.000005\"} 1"), "{text}");
        assert!(text.contains("rolescope_decision_duration_seconds_bucket{le=\"+Inf\"} 2"));
        assert!(text.contains("rolescope_http_requests_total{status=\"403\"} 1"));
        assert!(text.contains("rolescope_bundle_reloads_total{result=\"refused\"} 1"));
        assert!(text.contains("rolescope_bundle_info{revision=\"abc\"} 1"));
        assert!(text.contains("rolescope_decisions_by_reason_total{reason=\"allowed\"} 1"), "{text}");
        assert!(text.contains("rolescope_decisions_by_reason_total{reason=\"invalid_token\"} 1"), "{text}");
        assert!(text.contains("rolescope_token_failures_total{cause=\"bad_signature\"} 1"), "{text}");
        assert!(
            text.contains(
                "rolescope_route_decision_duration_seconds_bucket{route=\"GET /api/v1/orgs/{org}/devices\",le=\"0.000005\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("rolescope_route_decision_duration_seconds_count{route=\"none\"} 1"), "{text}");
    }

    #[test]
    fn route_series_are_bounded() {
        let m = Metrics::default();
        for i in 0..MAX_ROUTES + 10 {
            m.decision(true, "allowed", None, Some(&format!("GET /r{i}")), Duration::from_micros(1));
        }
        let text = m.render();
        let series = text.lines().filter(|l| l.starts_with("rolescope_route_decision_duration_seconds_count")).count();
        assert_eq!(series, MAX_ROUTES + 1, "the cap plus `other`");
        assert!(text.contains("rolescope_route_decision_duration_seconds_count{route=\"other\"} 10"), "{text}");
    }
}
