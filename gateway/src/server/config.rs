//! The gateway's configuration: one YAML file (unknown fields rejected), environment overrides
//! (`ROLESCOPE_GATEWAY_*`), checked at start. Every error names the field it is about.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::Uri;
use jsonwebtoken::Algorithm;
use serde::Deserialize;

use super::decision_log::{InputSettings, Mask};

/// A configuration that cannot be used; the message names the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read `{path}`: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid YAML for the configuration (unknown field, wrong type, ...).
    #[error("`{path}`: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said (with line and column).
        message: String,
    },
    /// A field has a value the gateway cannot use.
    #[error("{field}: {message}")]
    Field {
        /// The field, as a dotted path (`limits.header_timeout`), or the environment variable
        /// that set it.
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

impl ConfigError {
    fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Field { field: field.into(), message: message.into() }
    }
}

// ---- the file as written

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    listen: Option<String>,
    admin_listen: Option<String>,
    upstream: Option<String>,
    module: Option<String>,
    enforce: Option<bool>,
    #[serde(default)]
    policy: RawPolicy,
    #[serde(default)]
    identity: RawIdentity,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    decision_log: RawDecisionLog,
    trusted_proxies: Option<Vec<String>>,
    mode: Option<String>,
    #[serde(default)]
    authorize: RawAuthorize,
    #[serde(default)]
    upstream_tls: RawUpstreamTls,
    upstream_host: Option<String>,
    tls: Option<RawTls>,
    #[serde(default)]
    readiness: RawReadiness,
    #[serde(default)]
    forwarding: RawForwarding,
    upgrades: Option<Vec<RawUpgrade>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpgrade {
    route: Option<String>,
    protocols: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawForwarding {
    strip_headers: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuthorize {
    path_prefix: Option<String>,
    grpc_listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstreamTls {
    ca_file: Option<String>,
    platform_roots: Option<bool>,
    client_cert_file: Option<String>,
    client_key_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Option<String>,
    key_file: Option<String>,
    poll_interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReadiness {
    health_path: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    file: Option<String>,
    url: Option<String>,
    poll_interval: Option<String>,
    watch: Option<bool>,
    require_signature: Option<RawSignature>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSignature {
    public_keys: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    jwt: Option<RawJwt>,
    principals_from_bundle: Option<bool>,
    directory: Option<RawDirectory>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDirectory {
    file: Option<String>,
    url: Option<String>,
    poll_interval: Option<String>,
    watch: Option<bool>,
    require_signature: Option<RawSignature>,
    unlisted: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClaimRule {
    claim: String,
    value: String,
    role: String,
    scope: String,
    tenants: Option<rolescope_engine::Tenants>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJwt {
    issuer: Option<String>,
    audience: Option<String>,
    algorithms: Option<Vec<String>>,
    jwks_file: Option<String>,
    jwks_url: Option<String>,
    leeway: Option<String>,
    #[serde(default)]
    claims: RawClaims,
    #[serde(default)]
    claim_rules: Vec<RawClaimRule>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClaims {
    subject: Option<String>,
    status: Option<String>,
    assignments: Option<String>,
    attributes: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_header_bytes: Option<u64>,
    max_body_bytes: Option<u64>,
    header_timeout: Option<String>,
    upstream_timeout: Option<String>,
    write_timeout: Option<String>,
    shutdown_grace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDecisionLog {
    sink: Option<String>,
    path: Option<String>,
    #[serde(default)]
    input: RawDecisionInput,
    mask: Option<Vec<RawMask>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDecisionInput {
    record: Option<bool>,
    principal_attributes: Option<bool>,
    headers: Option<Vec<String>>,
}

/// A mask: a JSON pointer (erased), or `{pointer, value}` (replaced).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawMask {
    Erase(String),
    Replace(RawReplace),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReplace {
    pointer: String,
    value: serde_json::Value,
}

// ---- the checked configuration

/// Where decision logs go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DecisionSink {
    Stdout,
    File(PathBuf),
    Off,
}

/// Where the policy bundle comes from.
#[derive(Clone, Debug)]
pub(crate) struct PolicySource {
    pub(crate) file: Option<PathBuf>,
    pub(crate) url: Option<Uri>,
    pub(crate) poll_interval: Duration,
    pub(crate) watch: bool,
    /// When set, only bundles signed (`rolescope build --sign`) by one of these keys load.
    pub(crate) trusted_keys: Option<Vec<rolescope_sign::VerifyingKey>>,
}

/// Names of the claims a principal is read from.
#[derive(Clone, Debug)]
pub(crate) struct ClaimNames {
    pub(crate) subject: String,
    pub(crate) status: String,
    pub(crate) assignments: String,
    pub(crate) attributes: String,
}

/// Where the verification keys come from.
#[derive(Clone, Debug)]
pub(crate) enum KeySource {
    File(PathBuf),
    Url(Uri),
}

/// JWT verification settings.
#[derive(Clone, Debug)]
pub(crate) struct JwtConfig {
    pub(crate) issuer: String,
    pub(crate) audience: String,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) keys: KeySource,
    pub(crate) leeway: Duration,
    pub(crate) claims: ClaimNames,
    /// Assignments granted by claim values (e.g. a `groups` entry).
    pub(crate) rules: Vec<ClaimRule>,
}

/// One claim-mapping rule: a token whose claim `claim` is `value` (or a list holding it) holds
/// `assignment`.
#[derive(Clone, Debug)]
pub(crate) struct ClaimRule {
    pub(crate) claim: String,
    pub(crate) value: String,
    pub(crate) assignment: rolescope_engine::Assignment,
}

/// What a verified subject the directory does not list gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unlisted {
    /// Denied (`unknown_principal`).
    Deny,
    /// The principal its token's claims describe.
    Claims,
}

/// Where the principal directory comes from.
#[derive(Clone, Debug)]
pub(crate) struct DirectorySource {
    pub(crate) file: Option<PathBuf>,
    pub(crate) url: Option<Uri>,
    pub(crate) poll_interval: Duration,
    pub(crate) watch: bool,
    /// When set, only directories signed by one of these keys load.
    pub(crate) trusted_keys: Option<Vec<rolescope_sign::VerifyingKey>>,
    pub(crate) unlisted: Unlisted,
}

/// TLS to the upstream (and to the bundle, key set and directory URLs).
#[derive(Clone, Debug)]
pub(crate) struct UpstreamTls {
    /// PEM CA certificates trusted besides the platform's roots.
    pub(crate) ca_file: Option<PathBuf>,
    /// Trust the platform's root certificates (default).
    pub(crate) platform_roots: bool,
    /// Client certificate chain and key (mTLS to the upstream).
    pub(crate) client_cert: Option<(PathBuf, PathBuf)>,
}

/// The listener's certificate.
#[derive(Clone, Debug)]
pub(crate) struct ListenerTls {
    pub(crate) cert_file: PathBuf,
    pub(crate) key_file: PathBuf,
    /// How often the files are looked at for a change.
    pub(crate) poll_interval: Duration,
}

/// What the listener does with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The enforcing reverse proxy (`proxy.rs`).
    Gateway,
    /// Authorization only (`authz.rs`): answer a proxy's sub-request, forward nothing.
    Authorize,
}

/// The authorization-only mode's settings.
#[derive(Clone, Debug, Default)]
pub(crate) struct AuthorizeConfig {
    /// Envoy ext_authz (HTTP service): the original target follows this prefix.
    pub(crate) path_prefix: Option<String>,
    /// Envoy ext_authz over gRPC (`envoy.service.auth.v3.Authorization/Check`).
    pub(crate) grpc_listen: Option<SocketAddr>,
}

/// Size limits and timeouts.
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    pub(crate) max_header_bytes: usize,
    pub(crate) max_body_bytes: u64,
    pub(crate) header_timeout: Duration,
    pub(crate) upstream_timeout: Duration,
    /// How long a write to a client may make no progress (a client that does not read its
    /// response) before the connection is closed.
    pub(crate) write_timeout: Duration,
    pub(crate) shutdown_grace: Duration,
}

/// Request headers that would make the upstream act on another request than the one decided
/// (method overrides, URL rewrites): removed before forwarding (`forwarding.strip_headers`
/// replaces the list).
pub(crate) const DEFAULT_STRIP_HEADERS: &[&str] = &[
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-original-url",
    "x-rewrite-url",
    "x-original-uri",
    "x-original-method",
    "x-forwarded-uri",
    "x-forwarded-path",
    "x-forwarded-prefix",
    "x-forwarded-method",
];

/// The gateway's configuration, checked: [`GatewayConfig::load`] reads the YAML file and the
/// environment overrides and refuses anything it cannot use, naming the field.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    pub(crate) listen: SocketAddr,
    pub(crate) admin_listen: SocketAddr,
    pub(crate) upstream: Uri,
    pub(crate) module: PathBuf,
    pub(crate) enforce: bool,
    pub(crate) policy: PolicySource,
    pub(crate) jwt: Option<JwtConfig>,
    pub(crate) principals_from_bundle: bool,
    pub(crate) limits: Limits,
    pub(crate) decision_log: DecisionSink,
    /// What decision records carry as `input`, and its masks.
    pub(crate) decision_input: InputSettings,
    /// Peers whose forwarding headers (`X-Forwarded-*`, `Forwarded`, and in the
    /// authorization-only mode the original method and URI) are believed; from anyone else
    /// they are replaced or refused. Empty by default: no peer is trusted.
    pub(crate) trusted_proxies: Vec<ipnet::IpNet>,
    pub(crate) mode: Mode,
    pub(crate) authorize: AuthorizeConfig,
    pub(crate) upstream_tls: UpstreamTls,
    /// The `Host` header sent upstream (default: the upstream URL's authority).
    pub(crate) upstream_host: Option<http::HeaderValue>,
    /// Serve HTTPS (HTTP/2 and HTTP/1.1) on `listen`.
    pub(crate) tls: Option<ListenerTls>,
    /// `/readyz` also asks the upstream `GET <path>` (none: ready once a policy is loaded).
    pub(crate) health_path: Option<String>,
    pub(crate) directory: Option<DirectorySource>,
    /// Request headers removed before forwarding ([`DEFAULT_STRIP_HEADERS`] unless configured).
    pub(crate) strip_headers: Vec<http::HeaderName>,
    /// The routes that may be upgraded (HTTP/1.1 `Upgrade`) and to which protocols.
    pub(crate) upgrades: Vec<UpgradeRoute>,
}

/// The protocols an upgrade may be declared for.
pub(crate) const UPGRADE_PROTOCOLS: &[&str] = &["websocket"];

/// A route that may be upgraded: the engine's route template (`GET /api/v1/orgs/{org}/events`)
/// and the protocols (lowercase) its `Upgrade` may name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UpgradeRoute {
    pub(crate) route: String,
    pub(crate) protocols: Vec<String>,
}

impl GatewayConfig {
    /// Whether the route template `route` declares an upgrade to `protocol`.
    pub(crate) fn upgrade_declared(&self, route: &str, protocol: &str) -> bool {
        self.upgrades.iter().any(|u| u.route == route && u.protocols.iter().any(|p| p.eq_ignore_ascii_case(protocol)))
    }

    /// Whether `peer` is one of the configured trusted proxies.
    pub(crate) fn is_trusted_proxy(&self, peer: std::net::IpAddr) -> bool {
        let peer = match peer {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, std::net::IpAddr::V4),
            v4 => v4,
        };
        self.trusted_proxies.iter().any(|net| net.contains(&peer))
    }
}

/// The environment overrides: variable, field it sets.
const ENV: &[(&str, &str)] = &[
    ("ROLESCOPE_GATEWAY_MODE", "mode"),
    ("ROLESCOPE_GATEWAY_LISTEN", "listen"),
    ("ROLESCOPE_GATEWAY_ADMIN_LISTEN", "admin_listen"),
    ("ROLESCOPE_GATEWAY_UPSTREAM", "upstream"),
    ("ROLESCOPE_GATEWAY_MODULE", "module"),
    ("ROLESCOPE_GATEWAY_ENFORCE", "enforce"),
    ("ROLESCOPE_GATEWAY_POLICY_FILE", "policy.file"),
    ("ROLESCOPE_GATEWAY_POLICY_URL", "policy.url"),
    ("ROLESCOPE_GATEWAY_POLICY_POLL_INTERVAL", "policy.poll_interval"),
    ("ROLESCOPE_GATEWAY_POLICY_WATCH", "policy.watch"),
    ("ROLESCOPE_GATEWAY_JWT_ISSUER", "identity.jwt.issuer"),
    ("ROLESCOPE_GATEWAY_JWT_AUDIENCE", "identity.jwt.audience"),
    ("ROLESCOPE_GATEWAY_JWKS_FILE", "identity.jwt.jwks_file"),
    ("ROLESCOPE_GATEWAY_JWKS_URL", "identity.jwt.jwks_url"),
    ("ROLESCOPE_GATEWAY_MAX_HEADER_BYTES", "limits.max_header_bytes"),
    ("ROLESCOPE_GATEWAY_MAX_BODY_BYTES", "limits.max_body_bytes"),
    ("ROLESCOPE_GATEWAY_HEADER_TIMEOUT", "limits.header_timeout"),
    ("ROLESCOPE_GATEWAY_UPSTREAM_TIMEOUT", "limits.upstream_timeout"),
    ("ROLESCOPE_GATEWAY_WRITE_TIMEOUT", "limits.write_timeout"),
    ("ROLESCOPE_GATEWAY_DECISION_LOG", "decision_log.sink"),
    ("ROLESCOPE_GATEWAY_DECISION_LOG_PATH", "decision_log.path"),
    ("ROLESCOPE_GATEWAY_DECISION_LOG_INPUT", "decision_log.input.record"),
    ("ROLESCOPE_GATEWAY_GRPC_LISTEN", "authorize.grpc_listen"),
];

/// The asymmetric algorithms a token may be signed with (HMAC is never accepted: the
/// gateway holds public keys only).
const ASYMMETRIC: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

impl GatewayConfig {
    /// Read `path`, apply the `ROLESCOPE_GATEWAY_*` variables of the process environment, and
    /// check the result.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with_env(path, |k| std::env::var(k).ok())
    }

    /// [`GatewayConfig::load`] with the environment given as a lookup function.
    pub fn load_with_env(path: &Path, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        Self::parse(&text, path, env)
    }

    /// Parse YAML text (named `origin` in errors) and check it, with the environment given as a
    /// lookup function.
    pub fn parse(text: &str, origin: &Path, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut raw: Raw = if text.trim().is_empty() {
            Raw::default()
        } else {
            serde_saphyr::from_str(text).map_err(|e| ConfigError::Parse {
                path: origin.into(),
                message: e.to_string().lines().next().unwrap_or_default().to_owned(),
            })?
        };
        let mut from_env = Vec::new();
        for (var, field) in ENV {
            if let Some(value) = env(var) {
                raw.set(field, value).map_err(|m| ConfigError::field(format!("{var} ({field})"), m))?;
                from_env.push((*var, *field));
            }
        }
        // Relative paths are relative to the configuration file's folder.
        let base = origin.parent().map(Path::to_path_buf).unwrap_or_default();
        raw.check(&base, &env).map_err(|e| match e {
            // A value set by a variable: name the variable too.
            ConfigError::Field { field, message } => match from_env.iter().find(|(_, f)| *f == field) {
                Some((var, _)) => ConfigError::Field { field: format!("{var} ({field})"), message },
                None => ConfigError::Field { field, message },
            },
            other => other,
        })
    }

    /// The address the gateway serves on.
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// The admin address (`/livez`, `/readyz`, `/metrics`).
    pub fn admin_listen(&self) -> SocketAddr {
        self.admin_listen
    }

    /// Whether requests are authorized (`false`: passthrough, the benchmark baseline).
    pub fn enforce(&self) -> bool {
        self.enforce
    }

    /// `true` in the authorization-only mode (`mode: authorize`).
    pub fn authorize_only(&self) -> bool {
        self.mode == Mode::Authorize
    }

    /// Set both addresses (tests bind port 0).
    pub fn with_addresses(mut self, listen: SocketAddr, admin_listen: SocketAddr) -> Self {
        self.listen = listen;
        self.admin_listen = admin_listen;
        self
    }
}

impl Raw {
    /// An environment override.
    fn set(&mut self, field: &str, v: String) -> Result<(), String> {
        let jwt = || RawJwt::default();
        match field {
            "mode" => self.mode = Some(v),
            "authorize.grpc_listen" => self.authorize.grpc_listen = Some(v),
            "listen" => self.listen = Some(v),
            "admin_listen" => self.admin_listen = Some(v),
            "upstream" => self.upstream = Some(v),
            "module" => self.module = Some(v),
            "enforce" => self.enforce = Some(parse_bool(&v)?),
            "policy.file" => self.policy.file = Some(v),
            "policy.url" => self.policy.url = Some(v),
            "policy.poll_interval" => self.policy.poll_interval = Some(v),
            "policy.watch" => self.policy.watch = Some(parse_bool(&v)?),
            "identity.jwt.issuer" => self.identity.jwt.get_or_insert_with(jwt).issuer = Some(v),
            "identity.jwt.audience" => self.identity.jwt.get_or_insert_with(jwt).audience = Some(v),
            "identity.jwt.jwks_file" => self.identity.jwt.get_or_insert_with(jwt).jwks_file = Some(v),
            "identity.jwt.jwks_url" => self.identity.jwt.get_or_insert_with(jwt).jwks_url = Some(v),
            "limits.max_header_bytes" => self.limits.max_header_bytes = Some(parse_u64(&v)?),
            "limits.max_body_bytes" => self.limits.max_body_bytes = Some(parse_u64(&v)?),
            "limits.header_timeout" => self.limits.header_timeout = Some(v),
            "limits.upstream_timeout" => self.limits.upstream_timeout = Some(v),
            "limits.write_timeout" => self.limits.write_timeout = Some(v),
            "decision_log.sink" => self.decision_log.sink = Some(v),
            "decision_log.path" => self.decision_log.path = Some(v),
            "decision_log.input.record" => self.decision_log.input.record = Some(parse_bool(&v)?),
            _ => return Err("no such field".into()),
        }
        Ok(())
    }

    fn check(self, base: &Path, env: &impl Fn(&str) -> Option<String>) -> Result<GatewayConfig, ConfigError> {
        let addr = |field: &str, v: Option<String>, default: &str| -> Result<SocketAddr, ConfigError> {
            let v = v.unwrap_or_else(|| default.to_owned());
            v.parse().map_err(|_| f(field, format!("invalid socket address {v:?} (expected e.g. 127.0.0.1:8080)")))
        };
        let listen = addr("listen", self.listen, "127.0.0.1:8080")?;
        let admin_listen = addr("admin_listen", self.admin_listen, "127.0.0.1:9090")?;
        if listen == admin_listen && listen.port() != 0 {
            return Err(f("admin_listen", format!("same address as listen ({listen})")));
        }
        let mode = match self.mode.as_deref().unwrap_or("gateway") {
            "gateway" => Mode::Gateway,
            "authorize" => Mode::Authorize,
            other => return Err(f("mode", format!("unknown mode {other:?} (gateway or authorize)"))),
        };
        let upstream = match (mode, self.upstream) {
            (_, Some(u)) => http_url("upstream", &u)?,
            // Authorization only forwards nothing; the field is never read (readiness does not
            // probe an upstream in this mode).
            (Mode::Authorize, None) => Uri::from_static("http://upstream.invalid"),
            (Mode::Gateway, None) => {
                return Err(f("upstream", "missing (the upstream base URL, e.g. http://127.0.0.1:8081)"));
            }
        };
        let a = self.authorize;
        if mode == Mode::Gateway && (a.path_prefix.is_some() || a.grpc_listen.is_some()) {
            return Err(f("authorize", "only with `mode: authorize`"));
        }
        let path_prefix = match a.path_prefix {
            None => None,
            Some(p) if p.starts_with('/') && p.len() > 1 && !p.ends_with('/') && !p.contains(['?', '#', '%']) => {
                Some(p)
            }
            Some(p) => {
                return Err(f(
                    "authorize.path_prefix",
                    format!("invalid prefix {p:?} (expected e.g. /ext_authz: a leading `/`, no trailing `/`)"),
                ));
            }
        };
        let grpc_listen = a.grpc_listen.map(|v| addr("authorize.grpc_listen", Some(v), "")).transpose()?;
        if grpc_listen.is_some_and(|g| (g == listen || g == admin_listen) && g.port() != 0) {
            return Err(f("authorize.grpc_listen", "same address as listen or admin_listen"));
        }
        let authorize = AuthorizeConfig { path_prefix, grpc_listen };
        let module = match self.module {
            Some(m) => base.join(m),
            None => env("ROLESCOPE_WASM").map_or_else(|| PathBuf::from("target/wasm/rolescope.wasm"), PathBuf::from),
        };
        let enforce = self.enforce.unwrap_or(true);

        let p = self.policy;
        let trusted_keys = p.require_signature.map(|sig| signature_keys("policy", base, &sig)).transpose()?;
        let policy = PolicySource {
            file: p.file.map(|x| base.join(x)),
            url: p.url.map(|u| http_url("policy.url", &u)).transpose()?,
            poll_interval: duration("policy.poll_interval", p.poll_interval.as_deref(), Duration::from_secs(2))?,
            watch: p.watch.unwrap_or(true),
            trusted_keys,
        };
        if policy.file.is_some() && policy.url.is_some() {
            return Err(f("policy", "give either `file` or `url`, not both"));
        }
        if enforce && policy.file.is_none() && policy.url.is_none() {
            return Err(f("policy", "missing: `file` or `url` (a bundle written by `rolescope build`)"));
        }
        if policy.poll_interval < Duration::from_millis(10) {
            return Err(f("policy.poll_interval", "at least 10ms"));
        }

        let jwt = self.identity.jwt.map(|j| j.check(base)).transpose()?;
        let principals_from_bundle = self.identity.principals_from_bundle.unwrap_or(false);
        let directory = self.identity.directory.map(|d| d.check(base)).transpose()?;
        if directory.is_some() && principals_from_bundle {
            return Err(f("identity.directory", "give either `directory` or `principals_from_bundle`, not both"));
        }

        let t = self.upstream_tls;
        let client_cert = match (t.client_cert_file, t.client_key_file) {
            (Some(c), Some(k)) => Some((base.join(c), base.join(k))),
            (None, None) => None,
            (Some(_), None) => return Err(f("upstream_tls.client_key_file", "missing (client_cert_file is set)")),
            (None, Some(_)) => return Err(f("upstream_tls.client_cert_file", "missing (client_key_file is set)")),
        };
        let upstream_tls = UpstreamTls {
            ca_file: t.ca_file.map(|c| base.join(c)),
            platform_roots: t.platform_roots.unwrap_or(true),
            client_cert,
        };
        if !upstream_tls.platform_roots && upstream_tls.ca_file.is_none() && upstream.scheme_str() == Some("https") {
            return Err(f("upstream_tls.ca_file", "missing: with platform_roots off, name the CA to trust"));
        }
        let upstream_host = self
            .upstream_host
            .map(|h| {
                h.parse::<http::uri::Authority>()
                    .ok()
                    .filter(|a| a.as_str() == h)
                    .and_then(|_| http::HeaderValue::from_str(&h).ok())
                    .ok_or_else(|| f("upstream_host", format!("invalid host {h:?} (expected e.g. api.example.com)")))
            })
            .transpose()?;
        let tls = match self.tls {
            None => None,
            Some(t) => Some(ListenerTls {
                cert_file: base
                    .join(t.cert_file.ok_or_else(|| f("tls.cert_file", "missing (a PEM certificate chain)"))?),
                key_file: base.join(t.key_file.ok_or_else(|| f("tls.key_file", "missing (a PEM private key)"))?),
                poll_interval: duration("tls.poll_interval", t.poll_interval.as_deref(), Duration::from_secs(2))?,
            }),
        };
        if tls.as_ref().is_some_and(|t| t.poll_interval < Duration::from_millis(10)) {
            return Err(f("tls.poll_interval", "at least 10ms"));
        }
        let health_path = match self.readiness.health_path {
            None => None,
            Some(p) if p.starts_with('/') && p.parse::<http::uri::PathAndQuery>().is_ok() => Some(p),
            Some(p) => return Err(f("readiness.health_path", format!("invalid path {p:?} (expected e.g. /healthz)"))),
        };

        let l = self.limits;
        let max_header_bytes = l.max_header_bytes.unwrap_or(16 * 1024);
        if !(8192..=1 << 20).contains(&max_header_bytes) {
            return Err(f("limits.max_header_bytes", format!("{max_header_bytes} out of range 8192..=1048576")));
        }
        let limits = Limits {
            max_header_bytes: usize::try_from(max_header_bytes).unwrap_or(usize::MAX),
            max_body_bytes: l.max_body_bytes.unwrap_or(10 << 20),
            header_timeout: duration("limits.header_timeout", l.header_timeout.as_deref(), Duration::from_secs(5))?,
            upstream_timeout: duration(
                "limits.upstream_timeout",
                l.upstream_timeout.as_deref(),
                Duration::from_secs(30),
            )?,
            write_timeout: duration("limits.write_timeout", l.write_timeout.as_deref(), Duration::from_secs(30))?,
            shutdown_grace: duration("limits.shutdown_grace", l.shutdown_grace.as_deref(), Duration::from_secs(10))?,
        };
        for (field, d) in [
            ("limits.header_timeout", limits.header_timeout),
            ("limits.upstream_timeout", limits.upstream_timeout),
            ("limits.write_timeout", limits.write_timeout),
        ] {
            if d.is_zero() {
                return Err(f(field, "must be more than 0"));
            }
        }

        let decision_log = match (self.decision_log.sink.as_deref().unwrap_or("stdout"), self.decision_log.path) {
            ("stdout", None) => DecisionSink::Stdout,
            ("off", None) => DecisionSink::Off,
            ("file", Some(path)) => DecisionSink::File(base.join(path)),
            ("file", None) => return Err(f("decision_log.path", "missing (sink is `file`)")),
            ("stdout" | "off", Some(_)) => return Err(f("decision_log.path", "only with sink `file`")),
            (other, _) => return Err(f("decision_log.sink", format!("unknown sink {other:?} (stdout, file or off)"))),
        };
        let decision_input = check_decision_input(self.decision_log.input, self.decision_log.mask)?;

        let mut trusted_proxies = Vec::new();
        for (i, v) in self.trusted_proxies.unwrap_or_default().iter().enumerate() {
            let net = v
                .parse::<ipnet::IpNet>()
                .or_else(|_| v.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    f(
                        format!("trusted_proxies[{i}]"),
                        format!("invalid address {v:?} (expected e.g. 10.0.0.0/8 or 127.0.0.1)"),
                    )
                })?;
            trusted_proxies.push(net);
        }

        let mut strip_headers = Vec::new();
        let names = self
            .forwarding
            .strip_headers
            .unwrap_or_else(|| DEFAULT_STRIP_HEADERS.iter().map(|n| (*n).to_owned()).collect());
        for (i, n) in names.iter().enumerate() {
            let name = http::HeaderName::from_bytes(n.trim().as_bytes())
                .map_err(|_| f(format!("forwarding.strip_headers[{i}]"), format!("not a header name: {n:?}")))?;
            strip_headers.push(name);
        }

        let mut upgrades: Vec<UpgradeRoute> = Vec::new();
        for (i, u) in self.upgrades.unwrap_or_default().into_iter().enumerate() {
            upgrades.push(check_upgrade(i, u, &upgrades)?);
        }

        Ok(GatewayConfig {
            listen,
            admin_listen,
            upstream,
            module,
            enforce,
            policy,
            jwt,
            principals_from_bundle,
            limits,
            decision_log,
            decision_input,
            trusted_proxies,
            mode,
            authorize,
            upstream_tls,
            upstream_host,
            tls,
            health_path,
            directory,
            strip_headers,
            upgrades,
        })
    }
}

/// `decision_log.input` and `decision_log.mask`.
fn check_decision_input(raw: RawDecisionInput, masks: Option<Vec<RawMask>>) -> Result<InputSettings, ConfigError> {
    let defaults = InputSettings::default();
    let mut headers = Vec::new();
    for (i, n) in raw.headers.unwrap_or_default().iter().enumerate() {
        let name = http::HeaderName::from_bytes(n.trim().as_bytes())
            .map_err(|_| f(format!("decision_log.input.headers[{i}]"), format!("not a header name: {n:?}")))?;
        if name == http::header::AUTHORIZATION || name == http::header::COOKIE {
            return Err(f(
                format!("decision_log.input.headers[{i}]"),
                format!("`{name}` carries credentials and is never recorded"),
            ));
        }
        headers.push(name.as_str().to_owned());
    }
    let mut out = Vec::new();
    for (i, m) in masks.unwrap_or_default().into_iter().enumerate() {
        let (pointer, value) = match m {
            RawMask::Erase(p) => (p, None),
            RawMask::Replace(r) => (r.pointer, Some(r.value)),
        };
        out.push(Mask::new(&pointer, value).map_err(|e| f(format!("decision_log.mask[{i}]"), e))?);
    }
    Ok(InputSettings {
        record: raw.record.unwrap_or(defaults.record),
        principal_attributes: raw.principal_attributes.unwrap_or(defaults.principal_attributes),
        headers,
        masks: out,
    })
}

/// `upgrades[i]`: a route template as the engine names it (`METHOD /path`, a method of
/// uppercase letters, a path from `/`), declared once, with at least one known protocol.
fn check_upgrade(i: usize, u: RawUpgrade, before: &[UpgradeRoute]) -> Result<UpgradeRoute, ConfigError> {
    let route = u.route.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
    let route =
        route.ok_or_else(|| f(format!("upgrades[{i}].route"), "missing (e.g. \"GET /api/v1/orgs/{org}/events\")"))?;
    let well_formed = route.split_once(' ').is_some_and(|(m, p)| {
        !m.is_empty()
            && m.bytes().all(|b| b.is_ascii_uppercase())
            && p.starts_with('/')
            && !p.contains(char::is_whitespace)
    });
    if !well_formed {
        return Err(f(
            format!("upgrades[{i}].route"),
            format!("{route:?} is not a route template (METHOD /path, e.g. \"GET /api/v1/orgs/{{org}}/events\")"),
        ));
    }
    if !route.starts_with("GET ") {
        return Err(f(format!("upgrades[{i}].route"), format!("{route:?}: only a GET route can be upgraded")));
    }
    if before.iter().any(|b| b.route == route) {
        return Err(f(format!("upgrades[{i}].route"), format!("{route:?} is declared twice")));
    }
    let protocols = u.protocols.unwrap_or_default();
    if protocols.is_empty() {
        return Err(f(format!("upgrades[{i}].protocols"), "missing (e.g. [websocket])"));
    }
    let mut checked = Vec::with_capacity(protocols.len());
    for (j, p) in protocols.iter().enumerate() {
        let p = p.trim().to_ascii_lowercase();
        if !UPGRADE_PROTOCOLS.contains(&p.as_str()) {
            return Err(f(
                format!("upgrades[{i}].protocols[{j}]"),
                format!("unknown protocol {p:?} (known: {})", UPGRADE_PROTOCOLS.join(", ")),
            ));
        }
        checked.push(p);
    }
    Ok(UpgradeRoute { route, protocols: checked })
}

impl RawJwt {
    fn check(self, base: &Path) -> Result<JwtConfig, ConfigError> {
        let issuer = self.issuer.filter(|s| !s.is_empty()).ok_or_else(|| f("identity.jwt.issuer", "missing"))?;
        let audience = self.audience.filter(|s| !s.is_empty()).ok_or_else(|| f("identity.jwt.audience", "missing"))?;
        let names = self.algorithms.unwrap_or_else(|| vec!["RS256".into(), "ES256".into()]);
        if names.is_empty() {
            return Err(f("identity.jwt.algorithms", "empty"));
        }
        let mut algorithms = Vec::new();
        for name in &names {
            let alg: Algorithm =
                name.parse().map_err(|_| f("identity.jwt.algorithms", format!("unknown algorithm {name:?}")))?;
            if !ASYMMETRIC.contains(&alg) {
                return Err(f(
                    "identity.jwt.algorithms",
                    format!("{name} is not allowed (only asymmetric algorithms)"),
                ));
            }
            algorithms.push(alg);
        }
        let keys = match (self.jwks_file, self.jwks_url) {
            (Some(file), None) => KeySource::File(base.join(file)),
            (None, Some(url)) => KeySource::Url(http_url("identity.jwt.jwks_url", &url)?),
            (None, None) => return Err(f("identity.jwt", "missing `jwks_file` or `jwks_url`")),
            (Some(_), Some(_)) => return Err(f("identity.jwt", "give either `jwks_file` or `jwks_url`, not both")),
        };
        let leeway = duration("identity.jwt.leeway", self.leeway.as_deref(), Duration::from_secs(30))?;
        let c = self.claims;
        let name = |field: &str, v: Option<String>, default: &str| -> Result<String, ConfigError> {
            let v = v.unwrap_or_else(|| default.to_owned());
            if v.is_empty() { Err(f(format!("identity.jwt.claims.{field}"), "empty claim name")) } else { Ok(v) }
        };
        let claims = ClaimNames {
            subject: name("subject", c.subject, "sub")?,
            status: name("status", c.status, "status")?,
            assignments: name("assignments", c.assignments, "assignments")?,
            attributes: name("attributes", c.attributes, "attributes")?,
        };
        let mut rules = Vec::new();
        for (i, r) in self.claim_rules.into_iter().enumerate() {
            for (what, v) in [("claim", &r.claim), ("value", &r.value), ("role", &r.role), ("scope", &r.scope)] {
                if v.is_empty() {
                    return Err(f(format!("identity.jwt.claim_rules[{i}].{what}"), "empty"));
                }
            }
            rules.push(ClaimRule {
                claim: r.claim,
                value: r.value,
                assignment: rolescope_engine::Assignment { role: r.role, scope: r.scope, tenants: r.tenants },
            });
        }
        Ok(JwtConfig { issuer, audience, algorithms, keys, leeway, claims, rules })
    }
}

impl RawDirectory {
    fn check(self, base: &Path) -> Result<DirectorySource, ConfigError> {
        let d = DirectorySource {
            file: self.file.map(|x| base.join(x)),
            url: self.url.map(|u| http_url("identity.directory.url", &u)).transpose()?,
            poll_interval: duration(
                "identity.directory.poll_interval",
                self.poll_interval.as_deref(),
                Duration::from_secs(2),
            )?,
            watch: self.watch.unwrap_or(true),
            trusted_keys: self
                .require_signature
                .map(|sig| signature_keys("identity.directory", base, &sig))
                .transpose()?,
            unlisted: match self.unlisted.as_deref() {
                None | Some("deny") => Unlisted::Deny,
                Some("claims") => Unlisted::Claims,
                Some(other) => {
                    return Err(f("identity.directory.unlisted", format!("unknown value {other:?} (deny or claims)")));
                }
            },
        };
        match (&d.file, &d.url) {
            (Some(_), Some(_)) => Err(f("identity.directory", "give either `file` or `url`, not both")),
            (None, None) => Err(f("identity.directory", "missing `file` or `url`")),
            _ if d.poll_interval < Duration::from_millis(10) => {
                Err(f("identity.directory.poll_interval", "at least 10ms"))
            }
            _ => Ok(d),
        }
    }
}

/// The trusted public keys of `<owner>.require_signature` (PEM files).
fn signature_keys(
    owner: &str,
    base: &Path,
    sig: &RawSignature,
) -> Result<Vec<rolescope_sign::VerifyingKey>, ConfigError> {
    if sig.public_keys.is_empty() {
        return Err(f(
            format!("{owner}.require_signature.public_keys"),
            "empty: list the trusted public keys (PEM files)",
        ));
    }
    let mut keys = Vec::new();
    for (i, k) in sig.public_keys.iter().enumerate() {
        let field = format!("{owner}.require_signature.public_keys[{i}]");
        let path = base.join(k);
        let pem =
            std::fs::read_to_string(&path).map_err(|e| f(&field, format!("cannot read {}: {e}", path.display())))?;
        keys.push(
            rolescope_sign::public_key_from_pem(&pem).map_err(|e| f(&field, format!("{}: {e}", path.display())))?,
        );
    }
    Ok(keys)
}

/// A field error.
fn f(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::field(field, message)
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!("invalid boolean {v:?}")),
    }
}

fn parse_u64(v: &str) -> Result<u64, String> {
    v.parse().map_err(|_| format!("invalid number {v:?}"))
}

/// An `http://` or `https://` URL (TLS settings: `upstream_tls`).
fn http_url(field: &str, v: &str) -> Result<Uri, ConfigError> {
    let uri: Uri = v.parse().map_err(|_| ConfigError::field(field, format!("invalid URL {v:?}")))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.authority().is_none() {
        return Err(ConfigError::field(
            field,
            format!("invalid URL {v:?} (expected http://host:port[/path] or https://host[:port][/path])"),
        ));
    }
    Ok(uri)
}

/// `500ms`, `5s`, `2m`, `1h`, `250us` (a whole number and a unit).
pub(crate) fn parse_duration(v: &str) -> Option<Duration> {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = v.split_at(split);
    let n: u64 = n.parse().ok()?;
    Some(match unit {
        "us" => Duration::from_micros(n),
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        "h" => Duration::from_secs(n.checked_mul(3600)?),
        _ => return None,
    })
}

fn duration(field: &str, v: Option<&str>, default: Duration) -> Result<Duration, ConfigError> {
    match v {
        None => Ok(default),
        Some(v) => parse_duration(v).ok_or_else(|| {
            ConfigError::field(field, format!("invalid duration {v:?} (expected e.g. 500ms, 5s, 2m, 1h)"))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_proxies() {
        let env = |_: &str| None;
        let c = GatewayConfig::parse(
            "upstream: http://127.0.0.1:1\nenforce: false\ntrusted_proxies: [10.0.0.0/8, 127.0.0.1, '::1']\n",
            Path::new("g.yaml"),
            env,
        );
        let c = c.unwrap_or_else(|e| panic!("{e}"));
        assert!(c.is_trusted_proxy("10.1.2.3".parse().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into())));
        assert!(c.is_trusted_proxy("127.0.0.1".parse().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into())));
        assert!(c.is_trusted_proxy("::ffff:127.0.0.1".parse().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into())));
        assert!(!c.is_trusted_proxy("127.0.0.2".parse().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into())));
        let bad = GatewayConfig::parse(
            "upstream: http://127.0.0.1:1\nenforce: false\ntrusted_proxies: [nope]\n",
            Path::new("g.yaml"),
            env,
        );
        assert!(bad.is_err_and(|e| e.to_string().starts_with("trusted_proxies[0]: invalid address")));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7us"), Some(Duration::from_micros(7)));
        for bad in ["5x", "s", "", "5", "-1s", "1.5s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
