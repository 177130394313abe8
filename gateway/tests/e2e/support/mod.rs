//! The harness: the demo upstream in-process, the real `rolescope-gateway` binary as a child
//! process (config in a temp dir, ephemeral loopback ports, readiness polling, killed on drop),
//! the seed policies' bundles and principals, signed tokens, and a raw HTTP client.

pub(crate) mod http;
pub(crate) mod tls;
pub(crate) mod tokens;

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rolescope_engine::{Policy, Principal};
use rolescope_parity::Folder;
use serde_json::Value;

pub(crate) use http::Response;

/// The seed policies these tests run, by folder name.
pub(crate) const SEEDS: [&str; 4] = ["juniper-mist-msp", "jumpcloud-mtp", "msp-panel", "site24x7-msp"];

/// The seed policy folders (sources, suites, native policy, bundle), built once.
pub(crate) fn folders() -> &'static [Folder] {
    static FOLDERS: OnceLock<Vec<Folder>> = OnceLock::new();
    FOLDERS.get_or_init(|| {
        let all = rolescope_parity::folders(&crate::module::workspace()).expect("policy folders compile");
        all.into_iter().filter(|f| SEEDS.iter().any(|s| f.dir == format!("policies/{s}"))).collect()
    })
}

/// The folder of seed policy `name` (e.g. `juniper-mist-msp`).
pub(crate) fn folder(name: &str) -> &'static Folder {
    let dir = format!("policies/{name}");
    folders().iter().find(|f| f.dir == dir).unwrap_or_else(|| panic!("no seed policy {name}"))
}

/// The principal fixture `key` of the seed policy's suites (its `id` filled in).
pub(crate) fn principal(policy: &str, key: &str) -> Principal {
    let f = folder(policy);
    for suite in &f.suites {
        let text: Value = serde_saphyr::from_str(suite.text()).expect("suite parses");
        if let Some(p) = text.get("principals").and_then(|ps| ps.get(key)) {
            // `invalid: true` marks a fixture `rolescope check` must not warn about; not a claim
            let mut p = p.clone();
            if let Some(o) = p.as_object_mut() {
                o.remove("invalid");
            }
            let mut p: Principal = serde_json::from_value(p).expect("principal fixture");
            if p.id.is_empty() {
                p.id = key.to_owned();
            }
            return p;
        }
    }
    panic!("{policy}: no principal fixture `{key}`")
}

/// The native policy of a seed.
pub(crate) fn policy(name: &str) -> &'static Policy {
    &folder(name).policy
}

/// A free loopback port (bound and released: the gateway binds it right after).
pub(crate) fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr")
}

/// The demo upstream, in-process, with its request log.
pub(crate) struct Upstream {
    server: rolescope_demo_upstream::Background,
}

impl Upstream {
    pub(crate) fn start() -> Self {
        let options = rolescope_demo_upstream::Options { listen: "127.0.0.1:0".parse().unwrap(), log_limit: 1_000_000 };
        Self { server: rolescope_demo_upstream::Background::start(&options).expect("demo upstream starts") }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    pub(crate) fn url(&self) -> String {
        self.server.url()
    }

    /// Every request the upstream received since the last [`Upstream::clear`].
    pub(crate) fn log(&self) -> Vec<LoggedRequest> {
        let r = http::get(self.addr(), "/__log");
        assert_eq!(r.status, 200, "upstream log: {}", r.summary());
        let entries: Vec<Value> = serde_json::from_slice(&r.body).expect("log is JSON");
        entries.iter().map(LoggedRequest::from_json).collect()
    }

    pub(crate) fn clear(&self) {
        let r = http::send(self.addr(), "DELETE", "/__log", &[]);
        assert_eq!(r.status, 200);
    }

    /// Fails the test if anything reached the upstream since the last clear.
    #[track_caller]
    pub(crate) fn assert_untouched(&self, what: &str) {
        let log = self.log();
        assert!(log.is_empty(), "{what}: the upstream received {log:#?}");
    }
}

/// One request the upstream received.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LoggedRequest {
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl LoggedRequest {
    fn from_json(v: &Value) -> Self {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
        let headers = v
            .get("headers")
            .and_then(Value::as_array)
            .map(|hs| {
                hs.iter()
                    .filter_map(|h| Some((h.get(0)?.as_str()?.to_owned(), h.get(1)?.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        Self { method: s("method"), target: s("target"), headers, body: s("body") }
    }

    /// Every value of header `name`.
    pub(crate) fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }
}

/// Where a gateway gets its bundle.
#[derive(Clone, Debug)]
pub(crate) enum Source {
    /// A file; watched for changes when the flag is set.
    File(PathBuf, bool),
    /// A URL polled every `poll`.
    Url(String, Duration),
}

/// A gateway configuration, written as YAML into the gateway's temp dir.
#[derive(Clone, Debug)]
pub(crate) struct GatewayConfig {
    pub(crate) upstream: String,
    pub(crate) source: Source,
    pub(crate) enforce: bool,
    /// Extra top-level YAML appended verbatim (e.g. `limits:`).
    pub(crate) extra: String,
    /// YAML appended right after the `identity.jwt` block (4 spaces: more `jwt` fields; 2
    /// spaces: more `identity` fields).
    pub(crate) identity_extra: String,
    /// `identity.jwt.algorithms` and `jwks_file` (RS256 and the test key set by default).
    pub(crate) algorithms: &'static str,
    pub(crate) jwks: PathBuf,
}

impl GatewayConfig {
    pub(crate) fn new(upstream: &Upstream, source: Source) -> Self {
        Self {
            upstream: upstream.url(),
            source,
            enforce: true,
            extra: String::new(),
            identity_extra: String::new(),
            algorithms: "[RS256]",
            jwks: tokens::jwks_file(),
        }
    }

    fn yaml(&self, listen: SocketAddr, admin: SocketAddr, dir: &Path) -> String {
        let mut y = String::new();
        writeln!(y, "listen: {listen}\nadmin_listen: {admin}\nupstream: {}", self.upstream).unwrap();
        writeln!(y, "module: {}", crate::module::path().display()).unwrap();
        writeln!(y, "enforce: {}", self.enforce).unwrap();
        match &self.source {
            Source::File(p, watch) => writeln!(y, "policy: {{ file: {}, watch: {watch} }}", p.display()).unwrap(),
            Source::Url(u, poll) => {
                writeln!(y, "policy: {{ url: \"{u}\", poll_interval: {}ms }}", poll.as_millis()).unwrap()
            }
        }
        writeln!(
            y,
            "identity:\n  jwt:\n    issuer: \"{}\"\n    audience: \"{}\"\n    algorithms: {}\n    jwks_file: {}\n    leeway: 0s",
            tokens::ISSUER,
            tokens::AUDIENCE,
            self.algorithms,
            self.jwks.display()
        )
        .unwrap();
        y.push_str(&self.identity_extra);
        writeln!(y, "decision_log: {{ sink: file, path: {} }}", dir.join("decisions.jsonl").display()).unwrap();
        y.push_str(&self.extra);
        y
    }
}

/// The gateway binary under test.
pub(crate) fn gateway_bin() -> &'static str {
    env!("CARGO_BIN_EXE_rolescope-gateway")
}

/// A running gateway process; killed when dropped.
pub(crate) struct Gateway {
    child: Child,
    pub(crate) addr: SocketAddr,
    pub(crate) admin: SocketAddr,
    pub(crate) dir: tempfile::TempDir,
}

impl Gateway {
    /// Start a gateway with `config` and wait until its admin address answers `/livez`.
    pub(crate) fn start(config: &GatewayConfig) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (addr, admin) = (free_addr(), free_addr());
        let path = dir.path().join("gateway.yaml");
        std::fs::write(&path, config.yaml(addr, admin, dir.path())).expect("write config");
        let child = Command::new(gateway_bin())
            .arg("serve")
            .arg("--config")
            .arg(&path)
            .env_remove("ROLESCOPE_WASM")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("stdout.log")).expect("stdout file"))
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).expect("stderr file"))
            .spawn()
            .expect("spawn rolescope-gateway");
        let mut gw = Self { child, addr, admin, dir };
        gw.wait_for(|g| http::try_status(g.admin, "/livez") == 200, "livez");
        gw
    }

    /// The gateway's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Start with `config` and wait until `/readyz` answers 200 (a policy is loaded).
    pub(crate) fn start_ready(config: &GatewayConfig) -> Self {
        let mut gw = Self::start(config);
        gw.wait_for(|g| http::try_status(g.admin, "/readyz") == 200, "readyz");
        gw
    }

    /// Poll `cond` for up to 240 s (compiling the engine module in a debug build is slow); fails the test (with the gateway's output) if the process
    /// exits or the time runs out.
    #[track_caller]
    pub(crate) fn wait_for(&mut self, mut cond: impl FnMut(&Self) -> bool, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(240);
        loop {
            if cond(self) {
                return;
            }
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!("gateway exited ({status}) while waiting for {what}:\n{}", self.output());
            }
            assert!(Instant::now() < deadline, "gateway: no {what} within 240 s:\n{}", self.output());
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// stdout and stderr so far.
    pub(crate) fn output(&self) -> String {
        let read = |n: &str| std::fs::read_to_string(self.dir.path().join(n)).unwrap_or_default();
        format!("--- stderr\n{}\n--- stdout\n{}", read("stderr.log"), read("stdout.log"))
    }

    /// The first 20 warning and error lines of its log (for failure messages).
    pub(crate) fn warnings(&self) -> String {
        let out = self.output();
        let lines: Vec<&str> = out.lines().filter(|l| l.contains("WARN") || l.contains("ERROR")).take(20).collect();
        lines.join("\n")
    }

    /// Send a well-formed request to the proxy address.
    #[track_caller]
    pub(crate) fn send(&self, method: &str, target: &str, headers: &[(&str, &str)]) -> Response {
        http::send(self.addr, method, target, headers)
    }

    /// Send SIGHUP (reload).
    pub(crate) fn sighup(&self) {
        let status = Command::new("kill").arg("-HUP").arg(self.child.id().to_string()).status().expect("run kill");
        assert!(status.success(), "kill -HUP failed");
    }

    /// The revision named by `x-rolescope-revision` on an anonymous request (every response
    /// carries it; the request itself is refused before the upstream).
    pub(crate) fn revision(&self) -> Option<String> {
        let r = http::exchange(
            self.addr,
            &http::request_bytes("GET", "/api/v1/__revision_probe", &[], None),
            Duration::from_secs(20),
        );
        match r {
            http::Outcome::Response(r) => r.header("x-rolescope-revision").map(str::to_owned),
            http::Outcome::Closed(_) => None,
        }
    }

    /// Poll until the gateway serves `revision` (at most `within`); the time it took.
    #[track_caller]
    pub(crate) fn wait_revision(&mut self, revision: &str, within: Duration) -> Duration {
        let start = Instant::now();
        while self.revision().as_deref() != Some(revision) {
            assert!(
                start.elapsed() < within,
                "gateway still serves {:?}, not {revision}, after {within:?}:\n{}",
                self.revision(),
                self.output()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        start.elapsed()
    }

    /// The Prometheus text of `/metrics`.
    pub(crate) fn metrics(&self) -> String {
        String::from_utf8_lossy(&http::get(self.admin, "/metrics").body).into_owned()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run `rolescope-gateway` with `args` to completion: (exit code, stdout + stderr).
pub(crate) fn run_gateway(args: &[&str], envs: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = Command::new(gateway_bin());
    cmd.args(args).env_remove("ROLESCOPE_WASM");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run rolescope-gateway");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code(), text)
}

/// Write `bundle` to `path` atomically (write a sibling, then rename), so a watcher never sees
/// half a file.
pub(crate) fn publish(path: &Path, bundle: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bundle).expect("write bundle");
    std::fs::rename(&tmp, path).expect("rename bundle");
}

/// A fresh upstream plus a gateway serving seed `name` from a bundle file in its own dir.
pub(crate) struct Stack {
    pub(crate) upstream: Upstream,
    pub(crate) gateway: Gateway,
    pub(crate) bundle_path: PathBuf,
    _bundle_dir: tempfile::TempDir,
}

impl Stack {
    pub(crate) fn start(name: &str) -> Self {
        Self::start_with(name, |_| {})
    }

    pub(crate) fn start_with(name: &str, tweak: impl FnOnce(&mut GatewayConfig)) -> Self {
        Self::from_bundle(&folder(name).bundle, tweak)
    }

    /// A stack serving `bundle`, its config adjusted by `tweak`.
    pub(crate) fn from_bundle(bundle: &str, tweak: impl FnOnce(&mut GatewayConfig)) -> Self {
        let upstream = Upstream::start();
        let bundle_dir = tempfile::tempdir().expect("temp dir");
        let bundle_path = bundle_dir.path().join("bundle.json");
        publish(&bundle_path, bundle);
        let mut config = GatewayConfig::new(&upstream, Source::File(bundle_path.clone(), true));
        tweak(&mut config);
        let gateway = Gateway::start_ready(&config);
        upstream.clear();
        Self { upstream, gateway, bundle_path, _bundle_dir: bundle_dir }
    }
}

/// Seed `name` with its role files edited by `edit` (e.g. a grant removed): a second revision
/// with known different answers. Returns the native policy and its bundle.
pub(crate) fn variant(name: &str, edit: impl Fn(&str, &str) -> String) -> (Policy, String) {
    let sources: Vec<rolescope_engine::Source> = folder(name)
        .sources
        .iter()
        .map(|s| rolescope_engine::Source::new(s.name().to_owned(), edit(s.name(), s.text())))
        .collect();
    let (policy, bundle) = Policy::bundle(&sources).unwrap_or_else(|e| panic!("variant of {name} compiles: {e:?}"));
    assert_ne!(policy.revision(), folder(name).policy.revision(), "the edit changed nothing");
    (policy, bundle)
}
