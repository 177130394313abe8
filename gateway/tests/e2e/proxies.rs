//! Real proxies in front of the demo upstream, the rolescope binary in `mode: authorize` as
//! their authorization service, all on 127.0.0.1: Debian's nginx (`auth_request`, with
//! `deploy/proxies/nginx.conf`, the configuration the README shows; ingress-nginx's `auth-url`
//! sends the same sub-request) and Debian's Caddy (`forward_auth`, `deploy/proxies/Caddyfile`).
//! Through each: the e2e matrix gives the gateway's decisions (status, error, reason; allowed
//! requests reach the upstream with rolescope's principal and decision id, refused ones never
//! do), the attack suite's path attacks stay refused, and client-sent `x-rolescope-*` headers
//! never reach the upstream. `scripts/test.sh` installs nginx and Caddy when missing; a missing proxy fails these tests.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::authz::authorize_mode;
use crate::matrix::{Via, run_via};
use crate::support::http::{self, Outcome};
use crate::support::{self, Response, Stack, free_addr, tokens};

const SEED: &str = "juniper-mist-msp";

/// Which proxy.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Nginx,
    Caddy,
}

/// A running proxy; killed when dropped.
struct Proxy {
    kind: Kind,
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

fn deploy_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/proxies").join(name)
}

fn binary(kind: Kind) -> &'static str {
    let candidates: &[&'static str] = match kind {
        Kind::Nginx => &["/usr/sbin/nginx", "/usr/bin/nginx"],
        Kind::Caddy => &["/usr/bin/caddy", "/usr/local/bin/caddy"],
    };
    candidates.iter().copied().find(|p| Path::new(p).exists()).unwrap_or_else(|| {
        panic!("{kind:?} is not installed (scripts/test.sh installs it: apt-get install -y nginx caddy)")
    })
}

impl Proxy {
    /// Start `kind` with its deploy/ configuration (edited by `edit`) in front of `upstream`,
    /// asking `rolescope`.
    fn start(kind: Kind, upstream: SocketAddr, rolescope: SocketAddr, edit: impl Fn(String) -> String) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let addr = free_addr();
        let (file, name) = match kind {
            Kind::Nginx => ("nginx.conf", "nginx.conf"),
            Kind::Caddy => ("Caddyfile", "Caddyfile"),
        };
        let text = std::fs::read_to_string(deploy_file(file)).expect("deploy/proxies file");
        let text = edit(text)
            .replace("{{DIR}}", &dir.path().display().to_string())
            .replace("{{LISTEN}}", &addr.to_string())
            .replace("{{PORT}}", &addr.port().to_string())
            .replace("{{HOST}}", "localhost")
            .replace("{{UPSTREAM}}", &upstream.to_string())
            .replace("{{ROLESCOPE}}", &rolescope.to_string());
        let conf = dir.path().join(name);
        std::fs::write(&conf, text).expect("write proxy config");
        let log = |n: &str| std::fs::File::create(dir.path().join(n)).expect("log file");
        let mut cmd = Command::new(binary(kind));
        match kind {
            Kind::Nginx => {
                // the worker (user nobody when started as root) reads and writes under the dir
                let _ = Command::new("chmod").arg("755").arg(dir.path()).status();
                cmd.arg("-e").arg(dir.path().join("error.log"));
                // one process (no master/worker pair): the drop's kill then stops all of nginx,
                // where killing a master left its worker running after the test
                cmd.arg("-c").arg(&conf).arg("-p").arg(dir.path()).arg("-g").arg("daemon off; master_process off;")
            }
            Kind::Caddy => cmd
                .arg("run")
                .arg("--config")
                .arg(&conf)
                .arg("--adapter")
                .arg("caddyfile")
                .env("HOME", dir.path())
                .env("XDG_DATA_HOME", dir.path().join("data"))
                .env("XDG_CONFIG_HOME", dir.path().join("config")),
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log("stdout.log"))
            .stderr(log("stderr.log"))
            .spawn()
            .unwrap_or_else(|e| panic!("start {kind:?}: {e}"));
        let mut p = Self { kind, child, addr, dir };
        p.wait_ready();
        p
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if http::try_status(self.addr, "/api/v1/status") != 0 {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{:?} exited ({status}):\n{}", self.kind, self.output());
            }
            assert!(Instant::now() < deadline, "{:?} did not come up:\n{}", self.kind, self.output());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn output(&self) -> String {
        let read = |n: &str| std::fs::read_to_string(self.dir.path().join(n)).unwrap_or_default();
        format!("{}{}{}", read("stderr.log"), read("stdout.log"), read("error.log"))
    }

    fn send(&self, method: &str, target: &str, headers: &[(&str, &str)]) -> Response {
        http::send(self.addr, method, target, headers)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An authorization-only rolescope for `policy`, and `kind` in front of its upstream.
fn stack(kind: Kind, policy: &str, edit: impl Fn(String) -> String) -> (Stack, Proxy) {
    let stack = Stack::start_with(policy, |c| authorize_mode(c, "127.0.0.1", None));
    let proxy = Proxy::start(kind, stack.upstream.addr(), stack.gateway.addr, edit);
    stack.upstream.clear();
    (stack, proxy)
}

fn matrix(kind: Kind) {
    for policy in support::SEEDS {
        let (stack, proxy) = stack(kind, policy, |t| t);
        let send = |m: &str, t: &str, h: &[(&str, &str)]| proxy.send(m, t, h);
        let via = Via { send: &send, upstream: &stack.upstream, forwards: true, ids_on_allow: false };
        assert!(run_via(policy, &via) >= 100, "{kind:?} {policy}");
    }
}

#[test]
fn matrix_through_nginx() {
    matrix(Kind::Nginx);
}

/// ingress-nginx's `auth-url`: its generated sub-request (as its template writes it) in the
/// documented nginx configuration. (The controller itself needs a cluster; the manifests under
/// `deploy/kubernetes/` are validated offline.)
#[test]
fn matrix_through_nginx_as_ingress_nginx_asks() {
    let (stack, proxy) = stack(Kind::Nginx, SEED, |t| {
        t.replace(
            "proxy_set_header X-Original-URI $request_uri;",
            "proxy_set_header X-Original-URL $scheme://$http_host$request_uri;\n      \
             proxy_set_header X-Sent-From \"nginx-ingress-controller\";\n      \
             proxy_set_header X-Real-IP $remote_addr;\n      \
             proxy_set_header X-Forwarded-For $remote_addr;\n      \
             proxy_set_header X-Auth-Request-Redirect $request_uri;",
        )
    });
    let send = |m: &str, t: &str, h: &[(&str, &str)]| proxy.send(m, t, h);
    let via = Via { send: &send, upstream: &stack.upstream, forwards: true, ids_on_allow: false };
    assert!(run_via(SEED, &via) >= 100);
}

#[test]
fn matrix_through_caddy() {
    matrix(Kind::Caddy);
}

/// Every path attack: refused, and nothing reaches the upstream. When rolescope answered (its
/// JSON body), the status and reason are the gateway's (an absolute-form target: any 400;
/// Caddy sends a raw `#` as `%23`, which no route matches); the rest the proxy answers itself
/// without the upstream (a 4xx of its own; Go's server answers `OPTIONS *` itself).
fn path_attacks(kind: Kind) {
    let (stack, proxy) = stack(kind, SEED, |t| t);
    let auth = tokens::bearer(&support::principal(SEED, "na_o1"));
    let mut failures = Vec::new();
    let mut by_proxy = Vec::new();
    let attacks = crate::attacks::path_attacks();
    for (name, method, target, status, reasons) in &attacks {
        let bytes = http::request_bytes(method, target, &[("authorization", &auth)], None);
        let r = match http::exchange(proxy.addr, &bytes, Duration::from_secs(20)) {
            Outcome::Response(r) => r,
            Outcome::Closed(_) => Response { status: 0, headers: Vec::new(), body: Vec::new() },
        };
        let ours = r.json().get("decision_id").is_some();
        let (status, reasons): (u16, &[&str]) = match (kind, *name) {
            _ if !target.starts_with('/') => (400, &[]),
            (Kind::Caddy, "# fragment") => (403, &["no_route"]),
            _ => (*status, reasons),
        };
        if ours {
            let reason_ok = reasons.is_empty() || reasons.contains(&r.reason().as_str());
            if r.status != status || !reason_ok {
                failures.push(format!("{name}: got {}, expected {status} {reasons:?}", r.summary()));
            }
        } else if (400..500).contains(&r.status) || r.status == 0 || (*target == "*" && r.body.is_empty()) {
            by_proxy.push(*name);
        } else {
            failures.push(format!("{name}: {kind:?} answered {} itself", r.summary()));
        }
        let log = stack.upstream.log();
        if !log.is_empty() {
            failures.push(format!("{name}: the upstream received {log:?}"));
            stack.upstream.clear();
        }
    }
    eprintln!("{kind:?}: {} path attacks, refused by the proxy itself: {by_proxy:?}", attacks.len());
    assert!(failures.is_empty(), "{kind:?}: {} of {}:\n{}", failures.len(), attacks.len(), failures.join("\n"));
    assert!(by_proxy.len() < attacks.len() / 2, "{kind:?} refused most attacks itself: rolescope was not asked");
}

#[test]
fn path_attacks_through_nginx() {
    path_attacks(Kind::Nginx);
}

#[test]
fn path_attacks_through_caddy() {
    path_attacks(Kind::Caddy);
}

/// Client-sent `x-rolescope-*` headers never reach the upstream: on a public route (no
/// principal in the answer) and on an allowed one (rolescope's principal only).
fn client_headers(kind: Kind) {
    let (stack, proxy) = stack(kind, SEED, |t| t);
    let na = support::principal(SEED, "na_o1");
    let auth = tokens::bearer(&na);
    let spoof = [("x-rolescope-principal", "su"), ("x-rolescope-decision-id", "forged")];
    let r = proxy.send("GET", "/api/v1/status", &spoof);
    assert_eq!(r.status, 200, "{}", r.summary());
    let mut with_token = spoof.to_vec();
    with_token.push(("authorization", &auth));
    let r = proxy.send("GET", "/api/v1/orgs/o1/devices/ap-11", &with_token);
    assert_eq!(r.status, 200, "{}", r.summary());
    let log = stack.upstream.log();
    assert_eq!(log.len(), 2, "{log:#?}");
    assert!(log[0].header_values("x-rolescope-principal").iter().all(|v| v.is_empty()), "{kind:?}: {:?}", log[0]);
    assert_eq!(log[1].header_values("x-rolescope-principal"), vec![na.id.as_str()], "{kind:?}");
    for l in &log {
        assert!(!l.header_values("x-rolescope-decision-id").contains(&"forged"), "{kind:?}: {l:?}");
    }
}

#[test]
fn client_headers_never_reach_the_upstream_through_nginx() {
    client_headers(Kind::Nginx);
}

#[test]
fn client_headers_never_reach_the_upstream_through_caddy() {
    client_headers(Kind::Caddy);
}
