//! The principal directory: subject -> principal (status, assignments, attributes), from a file
//! or a URL polled like bundles (file stamps, `ETag` / `If-None-Match`), optionally signed like
//! bundles (`rolescope-signed-bundle/1` envelopes, `rolescope-gateway sign-directory`). A
//! directory is checked whole off the request path and swapped in atomically; a malformed or
//! unsigned one is refused and the previous one keeps serving.
//!
//! With a directory, tokens need carry only `sub` (and, for claim rules, e.g. `groups`). Which
//! source wins when token and directory disagree, for a subject the directory lists:
//! - status: the directory is authoritative. A subject suspended or deleted there is denied
//!   (`principal_inactive`) from the next poll on, whatever its token says; a token's own
//!   `status` claim can only make it stricter (an inactive token status is kept).
//! - assignments: the directory's, plus those the claim rules grant from the token (e.g. its
//!   `groups`); a token's own `assignments` claim is ignored.
//! - attributes: the directory's; a token's `attributes` claim is ignored.
//!
//! A subject the directory does not list is denied (`unknown_principal`) unless
//! `identity.directory.unlisted: claims`, which lets its token's claims describe it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use rolescope_engine::{Principal, Reason};
use serde::Deserialize;
use tokio::sync::watch;

use super::State;
use super::config::{DirectorySource, Unlisted};
use super::identity::{Verified, next_id};
use super::reject::{Rejection, Unavailable};
use super::reload::{Hangups, Seen, poll_ticker};

/// The directory format identifier.
pub(crate) const FORMAT: &str = "rolescope-directory/1";

/// How many resolved principals are kept (then the cache starts over).
const RESOLVED_CAPACITY: usize = 65_536;

/// The statuses a directory entry may have (none: active).
const STATUSES: &[&str] = &["active", "suspended", "deleted"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    format: String,
    principals: Vec<Principal>,
}

/// One loaded directory.
#[derive(Debug)]
struct Snapshot {
    generation: u64,
    principals: HashMap<String, Principal>,
}

/// Read a directory (verified first when `trusted` keys are given): every entry a principal
/// with a non-empty, unique `id` and a known status. Any fault refuses the whole document.
pub(crate) fn parse(
    bytes: &[u8],
    trusted: Option<&[rolescope_sign::VerifyingKey]>,
) -> Result<HashMap<String, Principal>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "directory is not UTF-8".to_owned())?;
    let verified;
    let json = match trusted {
        None => text,
        Some(keys) => {
            verified = rolescope_sign::verify(text, keys).map_err(|e| format!("directory signature: {e}"))?;
            verified.as_str()
        }
    };
    let doc: Document = serde_json::from_str(json).map_err(|e| format!("directory: {e}"))?;
    if doc.format != FORMAT {
        return Err(format!("directory: format `{}` (expected `{FORMAT}`)", doc.format));
    }
    let mut out = HashMap::with_capacity(doc.principals.len());
    for (i, p) in doc.principals.into_iter().enumerate() {
        if p.id.is_empty() {
            return Err(format!("directory: principals[{i}]: empty `id`"));
        }
        if let Some(s) = p.status.as_deref()
            && !STATUSES.contains(&s)
        {
            return Err(format!(
                "directory: principals[{i}] (`{}`): unknown status `{s}` (active, suspended or deleted)",
                p.id
            ));
        }
        let id = p.id.clone();
        if out.insert(id.clone(), p).is_some() {
            return Err(format!("directory: `{id}` is listed twice"));
        }
    }
    Ok(out)
}

/// A verified token resolved against one directory generation (`None`: not listed, denied).
type Resolved = (u64, Option<Arc<Verified>>);

/// A principal directory read and checked as the gateway reads it (for tools and benchmarks:
/// the gateway's own poller loads directories itself).
#[derive(Debug)]
pub struct PrincipalDirectory {
    principals: HashMap<String, Principal>,
}

impl PrincipalDirectory {
    /// Read a `rolescope-directory/1` document (its signature verified first when `trusted`
    /// keys are given), as the gateway does before swapping it in.
    pub fn from_json(bytes: &[u8], trusted: Option<&[rolescope_sign::VerifyingKey]>) -> Result<Self, DirectoryError> {
        parse(bytes, trusted).map(|principals| Self { principals }).map_err(DirectoryError)
    }

    /// How many principals it lists.
    pub fn len(&self) -> usize {
        self.principals.len()
    }

    /// Whether it lists none.
    pub fn is_empty(&self) -> bool {
        self.principals.is_empty()
    }

    /// The entry for `subject`.
    pub fn get(&self, subject: &str) -> Option<&Principal> {
        self.principals.get(subject)
    }
}

/// A directory that cannot be read or signed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DirectoryError(String);

/// Check a directory (`rolescope-directory/1` JSON) and sign it with the ed25519 private key
/// `key_pem` (PKCS#8 PEM): the envelope `identity.directory.require_signature` accepts.
pub fn sign_directory(json: &str, key_pem: &str) -> Result<String, DirectoryError> {
    parse(json.as_bytes(), None).map_err(DirectoryError)?;
    let key = rolescope_sign::private_key_from_pem(key_pem).map_err(|e| DirectoryError(format!("key: {e}")))?;
    rolescope_sign::sign(json, &[&key]).map_err(|e| DirectoryError(e.to_string()))
}

/// The directory in force and the principals resolved against it.
pub(crate) struct Directory {
    unlisted: Unlisted,
    trusted_keys: Option<Vec<rolescope_sign::VerifyingKey>>,
    current: ArcSwapOption<Snapshot>,
    generation: AtomicU64,
    /// By verified-token id: the directory generation it was resolved against, and the result
    /// (a new `Verified` with its own id, so principals prepared for an older directory are
    /// never reused).
    resolved: RwLock<HashMap<u64, Resolved>>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory").field("generation", &self.generation).finish_non_exhaustive()
    }
}

impl Directory {
    pub(crate) fn new(src: &DirectorySource) -> Self {
        Self {
            unlisted: src.unlisted,
            trusted_keys: src.trusted_keys.clone(),
            current: ArcSwapOption::empty(),
            generation: AtomicU64::new(0),
            resolved: RwLock::new(HashMap::new()),
        }
    }

    /// Whether a directory has loaded.
    pub(crate) fn loaded(&self) -> bool {
        self.current.load().is_some()
    }

    /// Swap in a checked directory; returns how many principals it lists.
    fn install(&self, principals: HashMap<String, Principal>) -> usize {
        let n = principals.len();
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        self.current.store(Some(Arc::new(Snapshot { generation, principals })));
        if let Ok(mut r) = self.resolved.write() {
            r.clear();
        }
        n
    }

    /// The principal a verified token names, as the directory in force describes it.
    pub(crate) fn resolve(&self, who: Arc<Verified>) -> Result<Arc<Verified>, Rejection> {
        let Some(snapshot) = self.current.load_full() else {
            return Err(Rejection::Unavailable(Unavailable::NoDirectory));
        };
        if let Ok(r) = self.resolved.read()
            && let Some((generation, resolved)) = r.get(&who.id)
            && *generation == snapshot.generation
        {
            return resolved.clone().ok_or(Rejection::Denied(Reason::UnknownPrincipal));
        }
        let resolved = match snapshot.principals.get(&who.principal.id) {
            Some(entry) => Some(Arc::new(merge(&who, entry))),
            None if self.unlisted == Unlisted::Claims => Some(Arc::clone(&who)),
            None => None,
        };
        if let Ok(mut r) = self.resolved.write() {
            if r.len() >= RESOLVED_CAPACITY {
                r.clear();
            }
            r.insert(who.id, (snapshot.generation, resolved.clone()));
        }
        resolved.ok_or(Rejection::Denied(Reason::UnknownPrincipal))
    }
}

/// The directory's entry for a listed subject, with the token's claim-rule assignments and, if
/// stricter, its status (see the module documentation).
fn merge(who: &Verified, entry: &Principal) -> Verified {
    let active = |s: Option<&str>| s.is_none_or(|s| s == "active");
    let status = if active(entry.status.as_deref()) && !active(who.principal.status.as_deref()) {
        who.principal.status.clone()
    } else {
        entry.status.clone()
    };
    let mut assignments = entry.assignments.clone();
    for a in &who.granted {
        if !assignments.contains(a) {
            assignments.push(a.clone());
        }
    }
    let principal =
        Principal { id: who.principal.id.clone(), status, attributes: entry.attributes.clone(), assignments };
    Verified { id: next_id(), principal, exp: who.exp, granted: Vec::new() }
}

/// Loads the directory at start and polls it (file stamps or conditional GET) until stopped.
pub(crate) struct Poller {
    state: Arc<State>,
    src: DirectorySource,
    seen: Seen,
}

impl Poller {
    /// A poller when a directory is configured.
    pub(crate) fn new(state: Arc<State>) -> Option<Self> {
        let src = state.config.directory.clone()?;
        Some(Self { state, src, seen: Seen::default() })
    }

    /// Look once. `force` (start, SIGHUP): read or fetch even if nothing seems to have changed.
    pub(crate) async fn tick(&mut self, force: bool) {
        let fetched = match (&self.src.file, &self.src.url) {
            (Some(path), _) if force || self.src.watch => self.seen.file(path, force, "principal directory").await,
            (_, Some(uri)) => self.seen.url(&self.state.fetcher, uri, force, "principal directory").await,
            _ => None,
        };
        if let Some((bytes, origin)) = fetched {
            let _ = load(&self.state, bytes, &origin).await;
        }
    }

    /// Poll every `poll_interval`, and reload on SIGHUP, until `stop` turns true.
    pub(crate) async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut ticker = poll_ticker(self.src.poll_interval.max(Duration::from_millis(10)));
        let mut hangups = Hangups::new();
        loop {
            let hangup = hangups.recv();
            tokio::select! {
                _ = stop.changed() => return,
                _ = ticker.tick() => self.tick(false).await,
                _ = hangup => self.tick(true).await,
            }
        }
    }
}

/// Check a directory off the request path, then swap it in; a refused one leaves the current
/// one serving.
async fn load(state: &Arc<State>, bytes: Bytes, origin: &str) -> Result<usize, String> {
    let st = Arc::clone(state);
    let result = tokio::task::spawn_blocking(move || {
        let directory = st.directory.as_ref().ok_or_else(|| "no directory configured".to_owned())?;
        let principals = parse(&bytes, directory.trusted_keys.as_deref())?;
        Ok(directory.install(principals))
    })
    .await
    .map_err(|e| format!("directory load task: {e}"))
    .and_then(|r| r);
    match &result {
        Ok(n) => tracing::info!(principals = n, %origin, "principal directory loaded"),
        Err(e) => tracing::error!(error = %e, %origin, "principal directory refused; the previous one keeps serving"),
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_checked_whole() {
        let ok = br#"{"format":"rolescope-directory/1","principals":[{"id":"ana","status":"suspended"},{"id":"bo"}]}"#;
        assert_eq!(parse(ok, None).map(|m| m.len()), Ok(2));
        for (bad, says) in [
            (&br#"{"format":"rolescope-directory/2","principals":[]}"#[..], "format"),
            (br#"{"format":"rolescope-directory/1","principals":[{"id":""}]}"#, "empty `id`"),
            (br#"{"format":"rolescope-directory/1","principals":[{"id":"a"},{"id":"a"}]}"#, "twice"),
            (br#"{"format":"rolescope-directory/1","principals":[{"id":"a","status":"gone"}]}"#, "unknown status"),
            (br#"{"format":"rolescope-directory/1","principals":[{"id":"a","rolez":[]}]}"#, "unknown field"),
            (b"not json", "directory"),
        ] {
            let e = parse(bad, None).err().unwrap_or_default();
            assert!(e.contains(says), "{e}");
        }
        let key = rolescope_sign::generate().ok();
        let keys: Vec<_> = key.iter().map(|k| k.verifying_key()).collect();
        let e = parse(ok, Some(&keys)).err().unwrap_or_default();
        assert!(e.starts_with("directory signature"), "unsigned refused: {e}");
        let signed = key.as_ref().and_then(|k| rolescope_sign::sign(std::str::from_utf8(ok).ok()?, &[k]).ok());
        assert_eq!(parse(signed.unwrap_or_default().as_bytes(), Some(&keys)).map(|m| m.len()), Ok(2));
    }
}
