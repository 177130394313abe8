//! Helpers: a recording upstream, the Mist MSP bundle, gateway configs, tokens, raw HTTP.
#![expect(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test helpers: a failure is a test failure"
)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rolescope_engine::{Policy, Source};
use rolescope_gateway::{Gateway, GatewayConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::module;

/// One request the upstream received.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    #[expect(dead_code, reason = "seen in failure messages (Debug)")]
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Seen {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// An upstream that records every request and answers 200 (`/slow` after 3 s). Its answers
/// carry hop-by-hop headers the gateway must drop.
pub(crate) struct Upstream {
    pub(crate) addr: SocketAddr,
    pub(crate) seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    pub(crate) async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = Arc::clone(&seen);
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { continue };
                let log = Arc::clone(&log);
                let svc = service_fn(move |req: Request<Incoming>| {
                    let log = Arc::clone(&log);
                    async move {
                        let method = req.method().to_string();
                        let target = req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
                        let headers = req
                            .headers()
                            .iter()
                            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                            .collect();
                        let body = req.into_body().collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();
                        if target == "/slow" {
                            tokio::time::sleep(Duration::from_secs(3)).await;
                        }
                        if target != "/__health" {
                            log.lock().unwrap().push(Seen { method, target, headers, body });
                        }
                        let res = Response::builder()
                            .header("content-type", "application/json")
                            .header("connection", "x-upstream-private")
                            .header("x-upstream-private", "1")
                            .header("keep-alive", "timeout=5")
                            .header("x-upstream", "yes")
                            .body(Full::new(Bytes::from_static(b"{\"ok\":true}")))
                            .unwrap();
                        Ok::<_, Infallible>(res)
                    }
                });
                tokio::spawn(async move {
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(tcp), svc).await;
                });
            }
        });
        Self { addr, seen }
    }

    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub(crate) fn clear(&self) {
        self.seen.lock().unwrap().clear();
    }
}

/// The workspace root.
pub(crate) fn workspace() -> PathBuf {
    module::workspace()
}

/// The Juniper Mist MSP policy (roles + routes) as a bundle; `extra` is appended to the role
/// file (a comment gives another revision).
pub(crate) fn mist_bundle(extra: &str) -> (String, String) {
    mist_bundle_with(extra, &[])
}

/// [`mist_bundle`] with more role files (name, text) compiled along.
pub(crate) fn mist_bundle_with(extra: &str, files: &[(&str, &str)]) -> (String, String) {
    let dir = workspace().join("policies/juniper-mist-msp");
    let mut sources = Vec::new();
    for name in ["roles.yaml", "routes.yaml"] {
        let mut text = std::fs::read_to_string(dir.join(name)).unwrap();
        if name == "roles.yaml" {
            text.push_str(extra);
        }
        sources.push(Source::new(name, text));
    }
    sources.extend(files.iter().map(|(name, text)| Source::new(*name, *text)));
    let (policy, json) = Policy::bundle(&sources).expect("the seed policy compiles");
    (json, policy.revision().to_owned())
}

/// The demo key folder.
pub(crate) fn keys() -> PathBuf {
    workspace().join("gateway/demo/keys")
}

/// The Mist suite.
pub(crate) fn mist_suite() -> PathBuf {
    workspace().join("policies/juniper-mist-msp/mist_msp_test.yaml")
}

/// A demo token (RS256) for a principal of the Mist suite.
pub(crate) fn token(principal: &str) -> String {
    let opts = rolescope_gateway::MintOptions::new(mist_suite(), principal, keys().join("demo-rs256.pem"));
    rolescope_gateway::mint(&opts).expect("mint")
}

pub(crate) fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Sign arbitrary claims with a demo key.
pub(crate) fn sign(alg: jsonwebtoken::Algorithm, kid: Option<&str>, claims: &serde_json::Value) -> String {
    let key = match alg {
        jsonwebtoken::Algorithm::ES256 => {
            jsonwebtoken::EncodingKey::from_ec_pem(&std::fs::read(keys().join("demo-es256.pem")).unwrap()).unwrap()
        }
        _ => jsonwebtoken::EncodingKey::from_rsa_pem(&std::fs::read(keys().join("demo-rs256.pem")).unwrap()).unwrap(),
    };
    let mut header = jsonwebtoken::Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// Claims of a network admin of org o1 (valid now).
pub(crate) fn claims() -> serde_json::Value {
    let now = now();
    serde_json::json!({
        "iss": "rolescope-demo", "aud": "rolescope-gateway", "sub": "na_o1",
        "iat": now, "nbf": now, "exp": now + 600,
        "assignments": [{ "role": "network_admin", "scope": "msp:mist", "tenants": ["org:o1"] }],
    })
}

/// A temporary folder with a config file; `policy` is written as `bundle.json` when given.
pub(crate) struct Setup {
    pub(crate) dir: tempfile::TempDir,
}

impl Setup {
    pub(crate) fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap() }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        // Write then rename: a watcher never sees half a file.
        let tmp = self.path(&format!(".{name}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &p).unwrap();
        p
    }

    /// A config for an upstream; `extra` is appended (YAML).
    pub(crate) fn config(&self, upstream: SocketAddr, extra: &str) -> GatewayConfig {
        // the decision log in a file, unless `extra` configures it
        let log =
            if extra.contains("decision_log:") { "" } else { "decision_log: { sink: file, path: decisions.jsonl }\n" };
        let yaml = format!(
            "listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\nupstream: http://{upstream}\nmodule: {module}\n{log}{extra}",
            module = module::path().display(),
        );
        let path = self.write("gateway.yaml", &yaml);
        GatewayConfig::load_with_env(&path, |_| None).expect("valid config")
    }

    /// An enforcing config: the Mist bundle file, the demo JWKS; `extra` appended.
    pub(crate) fn enforcing(&self, upstream: SocketAddr, extra: &str) -> GatewayConfig {
        let (bundle, _) = mist_bundle("");
        self.write("bundle.json", &bundle);
        let jwks = keys().join("jwks.json");
        self.config(
            upstream,
            &format!(
                "policy: {{ file: bundle.json, poll_interval: 50ms }}\nidentity:\n  jwt: {{ issuer: rolescope-demo, audience: rolescope-gateway, jwks_file: {} }}\n{extra}",
                jwks.display()
            ),
        )
    }
}

/// The engine module, compiled once per test process (gateways share it).
pub(crate) fn engine() -> &'static rolescope_gateway::WasmEngine {
    static ENGINE: std::sync::OnceLock<rolescope_gateway::WasmEngine> = std::sync::OnceLock::new();
    ENGINE.get_or_init(|| {
        let wasm = std::fs::read(module::path()).unwrap();
        rolescope_gateway::WasmEngine::new(&wasm, rolescope_gateway::Config::default()).unwrap()
    })
}

pub(crate) async fn start(config: GatewayConfig) -> Gateway {
    if !config.enforce() {
        return Gateway::start(config).await.expect("gateway starts");
    }
    let engine = tokio::task::spawn_blocking(engine).await.unwrap();
    Gateway::start_with_engine(config, engine).await.expect("gateway starts")
}

/// A response, simplified.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Answer {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The `reason` of an error body.
    pub(crate) fn reason(&self) -> String {
        self.json()["reason"].as_str().unwrap_or_default().to_owned()
    }
}

/// One request over a fresh connection, written by hand (so malformed requests can be sent);
/// the answer read until the connection closes (`Connection: close` is added unless present).
pub(crate) async fn raw(addr: SocketAddr, request: &str) -> Option<Answer> {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "no answer within 10 s");
    parse(&buf)
}

fn parse(buf: &[u8]) -> Option<Answer> {
    let text = String::from_utf8_lossy(buf);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some(Answer { status, headers, body: body.to_owned() })
}

/// `METHOD target` with extra header lines, `Connection: close`.
pub(crate) async fn request(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)]) -> Answer {
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    raw(addr, &req).await.expect("an HTTP answer")
}

/// `GET target` with a bearer token.
pub(crate) async fn get_as(addr: SocketAddr, target: &str, token: &str) -> Answer {
    request(addr, "GET", target, &[("Authorization", &format!("Bearer {token}"))]).await
}

/// Wait until `f` holds (at most `limit`).
pub(crate) async fn eventually(limit: Duration, mut f: impl AsyncFnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// The decision log lines written so far.
pub(crate) fn decisions(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("decisions.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
