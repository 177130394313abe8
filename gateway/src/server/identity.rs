//! Who is calling: `Authorization: Bearer` JWTs verified with pinned algorithms (`exp`, `nbf`,
//! `iss`, `aud`), keys from a JWKS by `kid`, claims mapped to an engine principal by
//! configurable claim names plus claim-mapping rules (a `groups` value -> a role at a scope);
//! a cache of verified tokens until they expire.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use jsonwebtoken::errors::ErrorKind as JwtErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rolescope_engine::{Assignment, Principal};
use serde_json::{Map, Value};

use super::config::{ClaimNames, ClaimRule, JwtConfig};
use super::lru::ByteLru;
use super::reject::TokenError;

/// The verified-token cache's budget, in bytes of weight (see [`token_weight`]); the least
/// recently used tokens leave first.
pub(crate) const TOKEN_CACHE_BYTES: usize = 16 << 20;

/// About the memory a cached token holds: the key, and a principal parsed from the token's
/// claims (never more than twice the token's size).
fn token_weight(token: &str) -> usize {
    3 * token.len() + 256
}

/// A verified token: who it names, until when.
#[derive(Debug)]
pub(crate) struct Verified {
    /// Unique per verified token (keys the per-thread cache of prepared principals).
    pub(crate) id: u64,
    /// The principal the claims describe (its `id` is the subject). With principals filed in
    /// the bundle, only `id` is read from the token.
    pub(crate) principal: Principal,
    /// `exp`, in seconds since the epoch.
    pub(crate) exp: u64,
    /// The assignments the claim rules granted (also in `principal.assignments`; kept apart so
    /// a principal directory can add them to its own entry).
    pub(crate) granted: Vec<Assignment>,
}

/// One verification key.
struct Key {
    key: DecodingKey,
    /// The JWK's `alg`, when it names one: the token's must be the same.
    alg: Option<Algorithm>,
}

/// The JWT verifier.
pub(crate) struct Identity {
    /// The pinned algorithms.
    algorithms: Vec<Algorithm>,
    /// One validation per pinned algorithm (jsonwebtoken wants every algorithm of a
    /// validation to be of the key's family).
    validations: Vec<(Algorithm, Validation)>,
    claims: ClaimNames,
    rules: Vec<ClaimRule>,
    keys: ArcSwap<HashMap<String, Key>>,
    cache: Mutex<ByteLru<Arc<str>, Arc<Verified>>>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("keys", &self.keys.load().len()).finish_non_exhaustive()
    }
}

/// A JWKS that cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeySetError {
    #[error("not a JWK set: {0}")]
    Parse(String),
    #[error("key `{kid}`: {message}")]
    Key { kid: String, message: String },
    #[error("no usable key (every key needs a `kid` and a pinned algorithm's key type)")]
    Empty,
}

/// A process-unique id for a verified (or directory-resolved) principal.
pub(crate) fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Identity {
    pub(crate) fn new(cfg: &JwtConfig) -> Self {
        let validation = |alg: Algorithm| {
            let mut v = Validation::new(alg);
            v.set_issuer(&[&cfg.issuer]);
            v.set_audience(&[&cfg.audience]);
            v.set_required_spec_claims(&["exp", "iss", "aud"]);
            v.validate_exp = true;
            v.validate_nbf = true;
            v.validate_aud = true;
            v.leeway = cfg.leeway.as_secs();
            (alg, v)
        };
        Self {
            algorithms: cfg.algorithms.clone(),
            validations: cfg.algorithms.iter().map(|a| validation(*a)).collect(),
            claims: cfg.claims.clone(),
            rules: cfg.rules.clone(),
            keys: ArcSwap::from_pointee(HashMap::new()),
            cache: Mutex::new(ByteLru::new(TOKEN_CACHE_BYTES)),
        }
    }

    /// Replace the key set (JWKS JSON). Keys without `kid`, or of a type no pinned algorithm
    /// uses, are skipped; a set with no usable key is refused (the old one stays). Verified
    /// tokens are forgotten.
    pub(crate) fn set_keys(&self, jwks: &[u8]) -> Result<usize, KeySetError> {
        let set: JwkSet = serde_json::from_slice(jwks).map_err(|e| KeySetError::Parse(e.to_string()))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else { continue };
            let key_err = |message: String| KeySetError::Key { kid: kid.clone(), message };
            let alg = match jwk.common.key_algorithm {
                Some(a) => Some(Algorithm::try_from(a).map_err(|e| key_err(e.to_string()))?),
                None => None,
            };
            let key = DecodingKey::from_jwk(jwk).map_err(|e| key_err(e.to_string()))?;
            let usable = self.algorithms.iter().any(|a| a.family() == key.family() && alg.is_none_or(|k| k == *a));
            if usable {
                keys.insert(kid, Key { key, alg });
            }
        }
        if keys.is_empty() {
            return Err(KeySetError::Empty);
        }
        let n = keys.len();
        self.keys.store(Arc::new(keys));
        if let Ok(mut cache) = self.cache.lock() {
            *cache = ByteLru::new(TOKEN_CACHE_BYTES);
        }
        Ok(n)
    }

    /// Verify a bearer token (cached until it expires).
    pub(crate) fn verify(&self, token: &str, now: u64) -> Result<Arc<Verified>, TokenError> {
        if let Ok(mut cache) = self.cache.lock()
            && let Some(v) = cache.get(token)
            && now < v.exp
        {
            return Ok(Arc::clone(v));
        }
        let verified = Arc::new(self.verify_uncached(token)?);
        if let Ok(mut cache) = self.cache.lock() {
            // what leaves is dropped (a token is verified again when it comes back)
            drop(cache.insert(token.into(), Arc::clone(&verified), token_weight(token)));
        }
        Ok(verified)
    }

    fn verify_uncached(&self, token: &str) -> Result<Verified, TokenError> {
        jose_header_rules(token)?;
        // `alg: none` and unknown algorithms fail here: `Algorithm` has no such variant.
        let header = jsonwebtoken::decode_header(token).map_err(|_| unreadable_header(token))?;
        let validation = self.validations.iter().find(|(a, _)| *a == header.alg).map(|(_, v)| v);
        let validation = validation.ok_or(TokenError::AlgorithmNotAllowed)?;
        // Keys come from the configured key set only (never `jwk` / `jku` / `x5u` of the header).
        let keys = self.keys.load();
        let key = header.kid.as_deref().and_then(|kid| keys.get(kid)).ok_or(TokenError::UnknownKey)?;
        if key.key.family() != header.alg.family() || key.alg.is_some_and(|a| a != header.alg) {
            return Err(TokenError::KeyMismatch);
        }
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, validation).map_err(|e| match e.kind() {
                JwtErrorKind::ExpiredSignature => TokenError::Expired,
                JwtErrorKind::ImmatureSignature => TokenError::NotYetValid,
                JwtErrorKind::InvalidIssuer => TokenError::WrongIssuer,
                JwtErrorKind::InvalidAudience => TokenError::WrongAudience,
                JwtErrorKind::MissingRequiredClaim(c) if c == "iss" => TokenError::WrongIssuer,
                JwtErrorKind::MissingRequiredClaim(c) if c == "aud" => TokenError::WrongAudience,
                JwtErrorKind::InvalidSignature => TokenError::BadSignature,
                JwtErrorKind::InvalidToken
                | JwtErrorKind::Base64(_)
                | JwtErrorKind::Json(_)
                | JwtErrorKind::Utf8(_) => TokenError::Malformed,
                _ => TokenError::Invalid,
            })?;
        let claims = data.claims;
        // jsonwebtoken accepts an `iss` array holding the issuer; a token names one issuer.
        if !claims.get("iss").is_some_and(Value::is_string) {
            return Err(TokenError::WrongIssuer);
        }
        if claims.get("sub").is_some_and(|s| !s.is_string()) {
            return Err(TokenError::Claims);
        }
        let exp = claims.get("exp").and_then(Value::as_u64).ok_or(TokenError::Claims)?;
        let mut principal = principal_from_claims(&claims, &self.claims).ok_or(TokenError::Claims)?;
        let granted = granted_by_rules(&claims, &self.rules);
        for a in &granted {
            if !principal.assignments.contains(a) {
                principal.assignments.push(a.clone());
            }
        }
        Ok(Verified { id: next_id(), principal, exp, granted })
    }
}

/// Why a token's header cannot be read: a header that names an algorithm jsonwebtoken does
/// not know (`none`, ...) is an algorithm refused; anything else is not a JWT.
fn unreadable_header(token: &str) -> TokenError {
    let alg = header_json(token).is_some_and(|h| h.get("alg").is_some_and(Value::is_string));
    if alg { TokenError::AlgorithmNotAllowed } else { TokenError::Malformed }
}

/// The token's JOSE header as sent (`None`: not base64url JSON).
fn header_json(token: &str) -> Option<Map<String, Value>> {
    use base64::Engine as _;
    let segment = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(segment.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// RFC 7515 rules on the JOSE header that jsonwebtoken does not apply: a `crit` parameter
/// names extensions the verifier must understand, and the gateway understands none (4.1.11:
/// refuse); `b64` (RFC 7797, unencoded payloads) changes what the signature covers and is
/// refused whatever its value. (An unreadable header is left to `decode_header`.)
fn jose_header_rules(token: &str) -> Result<(), TokenError> {
    if header_json(token).is_some_and(|h| h.contains_key("crit") || h.contains_key("b64")) {
        return Err(TokenError::HeaderNotAllowed);
    }
    Ok(())
}

/// The principal described by verified claims; `None` when they do not fit (no subject, an
/// assignment list of another shape, ...): the token is refused.
pub(crate) fn principal_from_claims(claims: &Map<String, Value>, names: &ClaimNames) -> Option<Principal> {
    let id = claims.get(&names.subject)?.as_str().filter(|s| !s.is_empty())?.to_owned();
    let status = match claims.get(&names.status) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return None,
    };
    let assignments: Vec<Assignment> = match claims.get(&names.assignments) {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => serde_json::from_value(v.clone()).ok()?,
    };
    let attributes = match claims.get(&names.attributes) {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return None,
    };
    Some(Principal { id, status, attributes, assignments })
}

/// The assignments the claim rules grant: a rule applies when its claim is its value, or a
/// list holding it (as identity providers send `groups` and `roles`).
pub(crate) fn granted_by_rules(claims: &Map<String, Value>, rules: &[ClaimRule]) -> Vec<Assignment> {
    let mut out: Vec<Assignment> = Vec::new();
    for rule in rules {
        let holds = match claims.get(&rule.claim) {
            Some(Value::String(s)) => *s == rule.value,
            Some(Value::Array(items)) => items.iter().any(|v| v.as_str() == Some(rule.value.as_str())),
            _ => false,
        };
        if holds && !out.contains(&rule.assignment) {
            out.push(rule.assignment.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::server::config::KeySource;

    fn config() -> JwtConfig {
        JwtConfig {
            issuer: "rolescope-demo".into(),
            audience: "rolescope-gateway".into(),
            algorithms: vec![Algorithm::RS256, Algorithm::ES256],
            keys: KeySource::File("unused".into()),
            leeway: Duration::from_secs(0),
            claims: ClaimNames {
                subject: "sub".into(),
                status: "status".into(),
                assignments: "assignments".into(),
                attributes: "attributes".into(),
            },
            rules: Vec::new(),
        }
    }

    #[test]
    fn a_demo_token_verifies() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/keys");
        let id = Identity::new(&config());
        assert_eq!(id.set_keys(&std::fs::read(dir.join("jwks.json")).unwrap_or_default()).ok(), Some(2));
        let now = jsonwebtoken::get_current_timestamp();
        let claims =
            serde_json::json!({"iss": "rolescope-demo", "aud": "rolescope-gateway", "sub": "ana", "exp": now + 60});
        let pem = std::fs::read(dir.join("demo-rs256.pem")).unwrap_or_default();
        let mut header = jsonwebtoken::Header::new(Algorithm::RS256);
        header.kid = Some("demo-rs256".into());
        let token = jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap())
            .unwrap_or_default();
        let keys = id.keys.load();
        let key = keys.get("demo-rs256").map(|k| &k.key);
        assert!(key.is_some());
        let v = id.verify(&token, now);
        assert_eq!(v.map(|v| v.principal.id.clone()).ok().as_deref(), Some("ana"));
    }
}
