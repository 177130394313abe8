//! Hot reload of the policy bundle (and the JWKS): on SIGHUP, when the file changes (polled
//! mtime, size and content hash), and by polling a URL with `ETag` / `If-None-Match`. A bundle
//! is validated off the request path (on a fresh engine instance, in a blocking task) and
//! swapped in atomically; a refused one is logged and counted and the old one keeps serving.
//! Requests in flight finish on the bundle they started with (a decision runs on one instance
//! with one bundle).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty, Limited};
use rolescope_engine::Principal;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::State;
use super::body::stream;
use super::config::{KeySource, PolicySource};
use super::enforce::Filed;
use super::forward::UpstreamClient;

/// Largest bundle or key set fetched.
const MAX_DOCUMENT: usize = 64 << 20;
/// Deadline of one fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The answer to a conditional GET.
pub(crate) enum Fetched {
    NotModified,
    Body { bytes: Bytes, etag: Option<String> },
}

/// `GET uri` with `If-None-Match: etag`.
pub(crate) async fn fetch(client: &UpstreamClient, uri: &Uri, etag: Option<&str>) -> Result<Fetched, String> {
    let mut req = Request::new(stream(Empty::<Bytes>::new()));
    *req.uri_mut() = uri.clone();
    if let Some(tag) = etag.and_then(|t| HeaderValue::from_str(t).ok()) {
        req.headers_mut().insert(header::IF_NONE_MATCH, tag);
    }
    let res = tokio::time::timeout(FETCH_TIMEOUT, client.request(req))
        .await
        .map_err(|_| format!("GET {uri}: timed out"))?
        .map_err(|e| format!("GET {uri}: {e}"))?;
    if res.status() == StatusCode::NOT_MODIFIED {
        return Ok(Fetched::NotModified);
    }
    if !res.status().is_success() {
        return Err(format!("GET {uri}: status {}", res.status()));
    }
    let etag = res.headers().get(header::ETAG).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = tokio::time::timeout(FETCH_TIMEOUT, Limited::new(res.into_body(), MAX_DOCUMENT).collect())
        .await
        .map_err(|_| format!("GET {uri}: body timed out"))?
        .map_err(|e| format!("GET {uri}: {e}"))?;
    Ok(Fetched::Body { bytes: body.to_bytes(), etag })
}

/// The principals filed in a bundle's role files, by id (the key they are filed under unless
/// they give an `id`).
pub(crate) fn filed_principals(bundle: &str) -> Result<HashMap<String, Arc<Principal>>, String> {
    #[derive(Deserialize)]
    struct File {
        name: String,
        text: String,
    }
    #[derive(Deserialize)]
    struct Doc {
        files: Vec<File>,
    }
    #[derive(Deserialize, Default)]
    struct RoleFile {
        #[serde(default)]
        principals: BTreeMap<String, Principal>,
    }
    let doc: Doc = serde_json::from_str(bundle).map_err(|e| format!("bundle: {e}"))?;
    let mut out = HashMap::new();
    for f in doc.files {
        let parsed: RoleFile = if f.text.trim().is_empty() {
            RoleFile::default()
        } else if f.name.ends_with(".json") {
            serde_json::from_str(&f.text).map_err(|e| format!("{}: {e}", f.name))?
        } else {
            serde_saphyr::from_str(&f.text).map_err(|e| format!("{}: {e}", f.name))?
        };
        for (key, mut p) in parsed.principals {
            if p.id.is_empty() {
                p.id = key;
            }
            out.insert(p.id.clone(), Arc::new(p));
        }
    }
    Ok(out)
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Reload state of one document source.
#[derive(Default)]
pub(crate) struct Seen {
    /// mtime and size at the last look (files).
    stamp: Option<(SystemTime, u64)>,
    /// Hash of the last content tried (loaded or refused): the same bytes are not tried again.
    hash: Option<[u8; 32]>,
    etag: Option<String>,
}

impl Seen {
    /// New content of a file (its stamp changed, or `force`, and its hash is new), with its
    /// name.
    pub(crate) async fn file(&mut self, path: &Path, force: bool, what: &str) -> Option<(Bytes, String)> {
        let now = stamp(path);
        if !force && now == self.stamp {
            return None;
        }
        self.stamp = now;
        match tokio::fs::read(path).await {
            Ok(bytes) => self.fresh(Bytes::from(bytes)).map(|b| (b, path.display().to_string())),
            Err(e) => {
                tracing::warn!(error = %e, path = %path.display(), "cannot read the {what}");
                None
            }
        }
    }

    /// New content behind a URL (conditional GET unless `force`), with the URL.
    pub(crate) async fn url(
        &mut self,
        client: &UpstreamClient,
        uri: &Uri,
        force: bool,
        what: &str,
    ) -> Option<(Bytes, String)> {
        match fetch(client, uri, self.etag.as_deref().filter(|_| !force)).await {
            Ok(Fetched::NotModified) => None,
            Ok(Fetched::Body { bytes, etag }) => {
                self.etag = etag;
                self.fresh(bytes).map(|b| (b, uri.to_string()))
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot fetch the {what}");
                None
            }
        }
    }

    /// `bytes` unless they are what was tried last.
    fn fresh(&mut self, bytes: Bytes) -> Option<Bytes> {
        let h = sha256(&bytes);
        if self.hash == Some(h) {
            return None;
        }
        self.hash = Some(h);
        Some(bytes)
    }
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// The bundle JSON to load from a document as published. With trusted keys configured
/// (`policy.require_signature`), only a signed envelope whose signature verifies yields one
/// (unsigned, tampered or signed by another key: refused); without, the document is the
/// bundle. `serve` (every load and reload) and `check-config` both go through here.
pub(crate) fn verified_bundle<'a>(policy: &PolicySource, text: &'a str) -> Result<Cow<'a, str>, String> {
    match &policy.trusted_keys {
        None => Ok(Cow::Borrowed(text)),
        Some(keys) => rolescope_sign::verify(text, keys).map(Cow::Owned).map_err(|e| format!("bundle signature: {e}")),
    }
}

/// Load a bundle: validate (engine, filed principals) off the request path, then swap.
pub(crate) async fn load_bundle(state: &Arc<State>, bytes: Bytes, origin: &str) -> Result<String, String> {
    let Some(enforcer) = state.enforcer.as_ref() else { return Err("enforcement is off".into()) };
    let from_bundle = enforcer.principals_filed();
    let st = Arc::clone(state);
    let result = tokio::task::spawn_blocking(move || -> Result<String, String> {
        let Some(enforcer) = st.enforcer.as_ref() else { return Err("enforcement is off".into()) };
        let text = std::str::from_utf8(&bytes).map_err(|_| "bundle is not UTF-8".to_owned())?;
        let json = verified_bundle(&st.config.policy, text)?;
        let filed = if from_bundle { Some(filed_principals(&json)?) } else { None };
        // the request headers the route table reads, recorded with each decision (the engine
        // module answers decisions only; the native engine reads the bundle's route table)
        let route_headers = if st.log.records_input() {
            let policy = rolescope_engine::Policy::from_bundle(&json).map_err(|e| e.to_string())?;
            Some(policy.request_headers().into_iter().map(str::to_owned).collect::<Vec<_>>())
        } else {
            None
        };
        let revision = enforcer.engine().load(&json).map_err(|e| e.to_string())?;
        if let Some(h) = route_headers {
            st.log.set_route_headers(&h.iter().map(String::as_str).collect::<Vec<_>>());
        }
        if let Some(principals) = filed {
            enforcer.set_filed(Filed { revision: revision.as_str().to_owned(), principals });
        }
        Ok(revision.as_str().to_owned())
    })
    .await
    .map_err(|e| format!("bundle load task: {e}"))?;
    match &result {
        Ok(revision) => {
            state.metrics.reload(true);
            state.metrics.set_revision(revision);
            tracing::info!(%revision, %origin, "policy bundle loaded");
        }
        Err(e) => {
            state.metrics.reload(false);
            if state.current_revision().is_some() {
                tracing::error!(error = %e, %origin, "policy bundle refused; the previous one keeps serving");
            } else {
                tracing::error!(
                    error = %e,
                    %origin,
                    "policy bundle refused; no bundle is loaded, so every request is refused (503 no_policy)"
                );
            }
        }
    }
    result
}

/// Load the key set into the verifier.
fn load_keys(state: &State, bytes: &[u8], origin: &str) {
    let Some(identity) = &state.identity else { return };
    match identity.set_keys(bytes) {
        Ok(n) => tracing::info!(keys = n, %origin, "key set loaded"),
        Err(e) => tracing::error!(error = %e, %origin, "key set refused; the previous one stays"),
    }
}

/// A poller's clock: the first tick one `period` from now; late ticks are not made up for.
pub(crate) fn poll_ticker(period: Duration) -> tokio::time::Interval {
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.reset();
    ticker
}

/// SIGHUP, for each poller that reloads on it (never, where there are no signals).
pub(crate) struct Hangups {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangups {
    pub(crate) fn new() -> Self {
        Self {
            #[cfg(unix)]
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok(),
        }
    }

    /// The next SIGHUP.
    pub(crate) async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(s) = self.signal.as_mut() {
            s.recv().await;
            return;
        }
        std::future::pending::<()>().await;
    }
}

/// Where the policy and keys come from, and what was last seen of each.
pub(crate) struct Reloader {
    state: Arc<State>,
    bundle_file: Option<PathBuf>,
    bundle_url: Option<Uri>,
    keys: Option<KeySource>,
    watch: bool,
    interval: Duration,
    bundle: Seen,
    key_seen: Seen,
}

impl Reloader {
    pub(crate) fn new(state: Arc<State>) -> Self {
        let cfg = &state.config;
        Self {
            bundle_file: cfg.policy.file.clone(),
            bundle_url: cfg.policy.url.clone(),
            keys: cfg.jwt.as_ref().map(|j| j.keys.clone()),
            watch: cfg.policy.watch,
            interval: cfg.policy.poll_interval,
            bundle: Seen::default(),
            key_seen: Seen::default(),
            state,
        }
    }

    /// Look at every source once. `force` (start, SIGHUP): read files even if their stamp did
    /// not change, fetch URLs unconditionally. Content already tried (loaded or refused) is not
    /// loaded again.
    pub(crate) async fn tick(&mut self, force: bool) {
        let watch = force || self.watch;
        let keys = match self.keys.clone() {
            Some(KeySource::File(path)) if watch => self.key_seen.file(&path, force, "key set").await,
            Some(KeySource::Url(uri)) => self.key_seen.url(&self.state.fetcher, &uri, force, "key set").await,
            _ => None,
        };
        if let Some((bytes, origin)) = keys {
            load_keys(&self.state, &bytes, &origin);
        }
        if self.state.enforcer.is_none() {
            return;
        }
        let bundle = match (self.bundle_file.clone(), self.bundle_url.clone()) {
            (Some(path), _) if watch => self.bundle.file(&path, force, "policy bundle").await,
            (_, Some(uri)) => self.bundle.url(&self.state.fetcher, &uri, force, "policy bundle").await,
            _ => None,
        };
        if let Some((bytes, origin)) = bundle {
            let _ = load_bundle(&self.state, bytes, &origin).await;
        }
    }

    /// Poll (file watch, URL), and reload on SIGHUP, until `stop` turns true.
    pub(crate) async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let polling = self.bundle_url.is_some() || self.watch || matches!(self.keys, Some(KeySource::Url(_)));
        let mut ticker = poll_ticker(self.interval);
        let mut hangups = Hangups::new();
        loop {
            let hangup = hangups.recv();
            tokio::select! {
                _ = stop.changed() => return,
                _ = ticker.tick(), if polling => self.tick(false).await,
                _ = hangup => {
                    tracing::info!("SIGHUP: reloading the policy bundle and key set");
                    self.tick(true).await;
                }
            }
        }
    }
}
