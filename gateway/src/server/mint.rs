//! `rolescope-gateway mint`: tokens (development and testing) for any principal: one a policy
//! suite files as a fixture, a subject alone (`sub`, as an identity provider issues it, for a
//! gateway with a principal directory), or a principal given as JSON; optionally with `groups`
//! (for claim rules). Signed with a private key from a file (RS256 or ES256).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rolescope_engine::{Policy, Principal, Source};
use serde::Deserialize;
use serde::de::{IgnoredAny, MapAccess, Visitor};

/// Why no token was minted.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    /// A file cannot be read.
    #[error("cannot read `{path}`: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The policy next to the suite does not compile, or the suite is invalid.
    #[error("{0}")]
    Policy(String),
    /// The suite files no such principal.
    #[error("the suite files no principal `{principal}` (it files: {known})")]
    UnknownPrincipal {
        /// The name asked for.
        principal: String,
        /// The names the suite files.
        known: String,
    },
    /// The key cannot sign.
    #[error("key: {0}")]
    Key(String),
    /// The principal given as JSON is not one.
    #[error("principal: {0}")]
    Principal(String),
}

/// Whom a token is for.
#[derive(Clone, Debug)]
enum Whom {
    /// A principal a suite files (its key there, or its id).
    Fixture { suite: PathBuf, principal: String },
    /// A subject alone: the token carries `sub` and no principal claims.
    Subject(String),
    /// A principal given whole.
    Principal(Principal),
}

/// What to mint: [`MintOptions::new`], [`MintOptions::subject`] or
/// [`MintOptions::principal_json`], then the optional settings.
#[derive(Clone, Debug)]
pub struct MintOptions {
    whom: Whom,
    groups: Vec<String>,
    key: PathBuf,
    ttl: Duration,
    kid: String,
    issuer: String,
    audience: String,
    algorithm: Option<Algorithm>,
}

impl MintOptions {
    /// A token for `principal` (the key it is filed under in the suite, or its id) of the suite
    /// at `suite` (the policy is the role files in the same folder), signed with the PEM private
    /// key at `key`. Defaults: one hour, kid `demo-rs256` / `demo-es256` by key type, issuer
    /// `rolescope-demo`, audience `rolescope-gateway` (as in `gateway/demo/`).
    pub fn new(suite: impl Into<PathBuf>, principal: impl Into<String>, key: impl Into<PathBuf>) -> Self {
        Self::with(Whom::Fixture { suite: suite.into(), principal: principal.into() }, key.into())
    }

    /// A token naming `subject` only (`sub`), as an ordinary identity provider issues it: the
    /// gateway's principal directory (or claim rules) says who that is.
    pub fn subject(subject: impl Into<String>, key: impl Into<PathBuf>) -> Self {
        Self::with(Whom::Subject(subject.into()), key.into())
    }

    /// A token for the principal `json` describes (`{"id", "status"?, "assignments"?,
    /// "attributes"?}`; `id` required), its fields as claims.
    pub fn principal_json(json: &str, key: impl Into<PathBuf>) -> Result<Self, MintError> {
        let p = Principal::from_json(json.as_bytes()).map_err(|e| MintError::Principal(e.to_string()))?;
        if p.id.is_empty() {
            return Err(MintError::Principal("`id` is missing or empty".into()));
        }
        Ok(Self::with(Whom::Principal(p), key.into()))
    }

    fn with(whom: Whom, key: PathBuf) -> Self {
        Self {
            whom,
            groups: Vec::new(),
            key,
            ttl: Duration::from_secs(3600),
            kid: String::new(),
            issuer: "rolescope-demo".into(),
            audience: "rolescope-gateway".into(),
            algorithm: None,
        }
    }

    /// A `groups` claim (what claim rules read).
    pub fn groups(mut self, groups: Vec<String>) -> Self {
        self.groups = groups;
        self
    }

    /// Lifetime of the token.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The `kid` header.
    pub fn kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = kid.into();
        self
    }

    /// The `iss` claim.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = issuer.into();
        self
    }

    /// The `aud` claim.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = audience.into();
        self
    }

    /// The signing algorithm (default: RS256 for an RSA key, ES256 for a P-256 key).
    pub fn algorithm(mut self, alg: &str) -> Result<Self, MintError> {
        self.algorithm = Some(alg.parse().map_err(|_| MintError::Key(format!("unknown algorithm {alg:?}")))?);
        Ok(self)
    }
}

/// The keys of the suite's `principals:` map, in file order.
#[derive(Default)]
struct Keys(Vec<String>);

impl<'de> Deserialize<'de> for Keys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Keys;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of principals")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
                let mut keys = Vec::new();
                while let Some((k, IgnoredAny)) = map.next_entry::<String, IgnoredAny>()? {
                    keys.push(k);
                }
                Ok(Keys(keys))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Deserialize, Default)]
struct SuiteHead {
    #[serde(default)]
    principals: Keys,
}

fn read(path: &Path) -> Result<String, MintError> {
    std::fs::read_to_string(path).map_err(|source| MintError::Read { path: path.into(), source })
}

fn is_suite(name: &str) -> bool {
    ["_test.yaml", "_test.yml", "_test.json"].iter().any(|s| name.ends_with(s))
}

/// The principal a suite files under `principal` (its key there, or its id).
fn fixture(suite_path: &Path, principal: &str) -> Result<Principal, MintError> {
    let suite_text = read(suite_path)?;
    let dir = suite_path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let entries = std::fs::read_dir(dir).map_err(|source| MintError::Read { path: dir.into(), source })?;
    let mut names: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            [".yaml", ".yml", ".json"].iter().any(|x| name.ends_with(x)) && !is_suite(name)
        })
        .collect();
    names.sort();
    let mut sources = Vec::new();
    for p in &names {
        sources.push(Source::new(p.display().to_string(), read(p)?));
    }
    let policy = Policy::compile(&sources).map_err(|e| MintError::Policy(e.to_string()))?;
    let suite = Source::new(suite_path.display().to_string(), suite_text.clone());
    let fixtures = policy
        .suite_fixtures(&suite)
        .map_err(|d| MintError::Policy(d.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")))?;
    let head: SuiteHead = if suite_path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&suite_text).map_err(|e| MintError::Policy(e.to_string()))?
    } else {
        serde_saphyr::from_str(&suite_text).map_err(|e| MintError::Policy(e.to_string()))?
    };
    let by_key = head.principals.0.iter().zip(&fixtures.principals).find(|(k, _)| **k == principal);
    by_key.map(|(_, p)| p).or_else(|| fixtures.principals.iter().find(|p| p.id == principal)).cloned().ok_or_else(
        || MintError::UnknownPrincipal { principal: principal.to_owned(), known: head.principals.0.join(", ") },
    )
}

/// Mint a token. The demo keys under `gateway/demo/` are public: never trust them anywhere.
pub fn mint(opts: &MintOptions) -> Result<String, MintError> {
    let principal = match &opts.whom {
        Whom::Fixture { suite, principal } => Some(fixture(suite, principal)?),
        Whom::Principal(p) => Some(p.clone()),
        Whom::Subject(_) => None,
    };

    let pem = std::fs::read(&opts.key).map_err(|source| MintError::Read { path: opts.key.clone(), source })?;
    let (key, alg) = match opts.algorithm {
        Some(alg) if alg.family() == jsonwebtoken::AlgorithmFamily::Ec => {
            (EncodingKey::from_ec_pem(&pem).map_err(|e| MintError::Key(e.to_string()))?, alg)
        }
        Some(alg) if alg.family() == jsonwebtoken::AlgorithmFamily::Rsa => {
            (EncodingKey::from_rsa_pem(&pem).map_err(|e| MintError::Key(e.to_string()))?, alg)
        }
        Some(alg) => return Err(MintError::Key(format!("{alg:?} is not supported here (RSA or EC keys only)"))),
        None => match EncodingKey::from_rsa_pem(&pem) {
            Ok(k) => (k, Algorithm::RS256),
            Err(_) => (
                EncodingKey::from_ec_pem(&pem)
                    .map_err(|e| MintError::Key(format!("neither an RSA nor an EC key: {e}")))?,
                Algorithm::ES256,
            ),
        },
    };
    let mut header = Header::new(alg);
    header.kid = Some(if opts.kid.is_empty() {
        if alg.family() == jsonwebtoken::AlgorithmFamily::Ec { "demo-es256".into() } else { "demo-rs256".into() }
    } else {
        opts.kid.clone()
    });
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let subject = match (&opts.whom, &principal) {
        (Whom::Subject(s), _) => s.clone(),
        (_, Some(p)) => p.id.clone(),
        (_, None) => String::new(),
    };
    let mut claims = serde_json::json!({
        "iss": opts.issuer,
        "aud": opts.audience,
        "sub": subject,
        "iat": now,
        "nbf": now,
        "exp": now.saturating_add(opts.ttl.as_secs()),
    });
    if let Some(obj) = claims.as_object_mut() {
        if let Some(principal) = &principal {
            obj.insert("assignments".into(), serde_json::json!(principal.assignments));
            if let Some(status) = &principal.status {
                obj.insert("status".into(), serde_json::Value::String(status.clone()));
            }
            if !principal.attributes.is_empty() {
                obj.insert("attributes".into(), serde_json::Value::Object(principal.attributes.clone()));
            }
        }
        if !opts.groups.is_empty() {
            obj.insert("groups".into(), serde_json::json!(opts.groups));
        }
    }
    jsonwebtoken::encode(&header, &claims, &key).map_err(|e| MintError::Key(e.to_string()))
}
