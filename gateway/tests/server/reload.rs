//! Hot reload: a changed bundle file is picked up; an invalid one is refused, counted, and the
//! old one keeps serving; URL polling uses ETags; readiness follows the policy.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};

use super::support::{Setup, Upstream, eventually, get_as, mist_bundle, request, start, token};

async fn admin(gw: &rolescope_gateway::Gateway, path: &str) -> super::support::Answer {
    request(gw.admin_addr(), "GET", path, &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_changes_reload_and_invalid_bundles_keep_the_old_one() {
    let upstream = Upstream::start().await;
    let s = Setup::new();
    let gw = start(s.enforcing(upstream.addr, "")).await;
    let (_, first) = mist_bundle("");
    assert_eq!(gw.revision().as_deref(), Some(first.as_str()));
    assert_eq!(admin(&gw, "/readyz").await.status, 200);
    assert_eq!(admin(&gw, "/livez").await.status, 200);
    let tok = token("na_o1");

    // an invalid bundle: refused, counted, the old revision keeps serving
    s.write(
        "bundle.json",
        "{\"format\": \"rolescope-bundle/1\", \"policy\": \"x\", \"revision\": \"x\", \"files\": []}",
    );
    let refused = eventually(Duration::from_secs(5), async || {
        gw.metrics_text().contains("rolescope_bundle_reloads_total{result=\"refused\"} 1")
    })
    .await;
    assert!(refused, "{}", gw.metrics_text());
    assert_eq!(gw.revision().as_deref(), Some(first.as_str()));
    let a = get_as(gw.local_addr(), "/api/v1/orgs/o1/devices", &tok).await;
    assert_eq!((a.status, a.header("x-rolescope-revision")), (200, Some(first.as_str())));

    // a valid new bundle: swapped in
    let (next_json, next) = mist_bundle("\n# revision two\n");
    assert_ne!(next, first);
    s.write("bundle.json", &next_json);
    let swapped = eventually(Duration::from_secs(5), async || gw.revision().as_deref() == Some(next.as_str())).await;
    assert!(swapped, "revision still {:?}", gw.revision());
    let a = get_as(gw.local_addr(), "/api/v1/orgs/o1/devices", &tok).await;
    assert_eq!((a.status, a.header("x-rolescope-revision")), (200, Some(next.as_str())), "{a:?}");
    let metrics = admin(&gw, "/metrics").await.body;
    assert!(metrics.contains(&format!("rolescope_bundle_info{{revision=\"{next}\"}} 1")), "{metrics}");
    assert!(metrics.contains("rolescope_bundle_reloads_total{result=\"ok\"} 2"), "{metrics}");

    // the API load refuses garbage the same way
    assert!(gw.load_bundle("not json").await.is_err());
    assert_eq!(gw.revision().as_deref(), Some(next.as_str()));
    gw.shutdown().await;
}

/// A bundle server on 127.0.0.1: 404 until a bundle is published, then the bundle with its ETag
/// (and 304 to a poll that sends that ETag back).
struct BundleServer {
    addr: std::net::SocketAddr,
    published: Arc<Mutex<Option<(String, String)>>>,
    not_modified: Arc<AtomicUsize>,
}

#[expect(clippy::unwrap_used, reason = "a test server fails loudly")]
impl BundleServer {
    async fn start() -> Self {
        let published: Arc<Mutex<Option<(String, String)>>> = Arc::default();
        let not_modified = Arc::new(AtomicUsize::new(0));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (p, nm) = (Arc::clone(&published), Arc::clone(&not_modified));
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let (p, nm) = (Arc::clone(&p), Arc::clone(&nm));
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let current = p.lock().unwrap().clone();
                    let nm = Arc::clone(&nm);
                    async move {
                        let res = match current {
                            None => Response::builder().status(404).body(Full::new(Bytes::new())),
                            Some((etag, _))
                                if req.headers().get("if-none-match").is_some_and(|v| v == etag.as_str()) =>
                            {
                                nm.fetch_add(1, Ordering::Relaxed);
                                Response::builder().status(304).body(Full::new(Bytes::new()))
                            }
                            Some((etag, body)) => {
                                Response::builder().header("etag", etag).body(Full::new(Bytes::from(body)))
                            }
                        };
                        Ok::<_, Infallible>(res.unwrap())
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(tcp), svc),
                );
            }
        });
        Self { addr, published, not_modified }
    }

    /// Serves `body` from now on, under the ETag `"etag"`.
    fn publish(&self, etag: &str, body: &str) {
        *self.published.lock().unwrap() = Some((format!("\"{etag}\""), body.to_owned()));
    }

    fn url(&self) -> String {
        format!("http://{}/bundle.json", self.addr)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_policy_means_503_and_not_ready_until_one_arrives_by_url_with_etags() {
    let upstream = Upstream::start().await;
    let server = BundleServer::start().await;
    let s = Setup::new();
    let jwks = super::support::keys().join("jwks.json");
    let config = s.config(
        upstream.addr,
        &format!(
            "policy: {{ url: \"{}\", poll_interval: 50ms }}\n\
             identity: {{ jwt: {{ issuer: rolescope-demo, audience: rolescope-gateway, jwks_file: {} }} }}\n",
            server.url(),
            jwks.display()
        ),
    );
    let gw = start(config).await;
    let tok = token("na_o1");
    assert_eq!(gw.revision(), None);
    let a = get_as(gw.local_addr(), "/api/v1/orgs/o1/devices", &tok).await;
    assert_eq!((a.status, a.reason().as_str(), a.json()["error"].as_str()), (503, "no_policy", Some("unavailable")));
    let ready = admin(&gw, "/readyz").await;
    assert_eq!(ready.status, 503, "{ready:?}");
    assert!(upstream.seen().is_empty());

    let (bundle, revision) = mist_bundle("");
    server.publish("r1", &bundle);
    let loaded = eventually(Duration::from_secs(5), async || gw.revision().as_deref() == Some(revision.as_str())).await;
    assert!(loaded);
    assert_eq!(admin(&gw, "/readyz").await.status, 200);
    assert_eq!(get_as(gw.local_addr(), "/api/v1/orgs/o1/devices", &tok).await.status, 200);
    // later polls are conditional and answered 304
    let conditional =
        eventually(Duration::from_secs(5), async || server.not_modified.load(Ordering::Relaxed) >= 2).await;
    assert!(conditional, "no If-None-Match polls");
    assert!(gw.metrics_text().contains("rolescope_bundle_reloads_total{result=\"ok\"} 1"), "{}", gw.metrics_text());
    gw.shutdown().await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_an_unwatched_file() {
    let upstream = Upstream::start().await;
    let s = Setup::new();
    // the enforcing setup, without watching the file
    s.enforcing(upstream.addr, "");
    let yaml = std::fs::read_to_string(s.path("gateway.yaml"))
        .unwrap()
        .replace("poll_interval: 50ms", "poll_interval: 50ms, watch: false");
    s.write("gateway.yaml", &yaml);
    let config = rolescope_gateway::GatewayConfig::load_with_env(&s.path("gateway.yaml"), |_| None).unwrap();
    let gw = start(config).await;
    let (_, first) = mist_bundle("");
    assert_eq!(gw.revision().as_deref(), Some(first.as_str()));
    let (next_json, next) = mist_bundle("\n# after SIGHUP\n");
    s.write("bundle.json", &next_json);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(gw.revision().as_deref(), Some(first.as_str()), "an unwatched file changed the revision");
    let status = std::process::Command::new("kill").args(["-HUP", &std::process::id().to_string()]).status().unwrap();
    assert!(status.success());
    let swapped = eventually(Duration::from_secs(5), async || gw.revision().as_deref() == Some(next.as_str())).await;
    assert!(swapped, "SIGHUP did not reload: {:?}", gw.revision());
    gw.shutdown().await;
}

/// Where the gateway reads its bundle from in [`signature_requirement`].
enum Source {
    File,
    Url(BundleServer),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_requirement_refuses_unsigned_tampered_and_foreign_bundles() {
    signature_requirement(Source::File).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_requirement_holds_while_polling_a_url() {
    signature_requirement(Source::Url(BundleServer::start().await)).await;
}

/// A gateway that requires a trusted signature refuses unsigned, foreign-signed and tampered
/// bundles (counted; the previous bundle keeps serving) and swaps in a trusted one.
#[expect(clippy::unwrap_used, reason = "a test fails loudly")]
async fn signature_requirement(source: Source) {
    let upstream = Upstream::start().await;
    let s = Setup::new();
    let trusted = rolescope_sign::generate().unwrap();
    let foreign = rolescope_sign::generate().unwrap();
    s.write("trusted.pub.pem", &rolescope_sign::public_key_to_pem(&trusted.verifying_key()).unwrap());
    let mut published = 0usize;
    let mut publish = |text: &str| {
        published += 1;
        match &source {
            Source::File => {
                s.write("bundle.json", text);
            }
            Source::Url(server) => server.publish(&format!("v{published}"), text),
        }
    };
    let (first_json, first) = mist_bundle("");
    publish(&rolescope_sign::sign(&first_json, &[&trusted]).unwrap());
    let from = match &source {
        Source::File => "file: bundle.json".to_owned(),
        Source::Url(server) => format!("url: \"{}\"", server.url()),
    };
    let jwks = super::support::keys().join("jwks.json");
    let config = s.config(
        upstream.addr,
        &format!(
            "policy: {{ {from}, poll_interval: 50ms, require_signature: {{ public_keys: [trusted.pub.pem] }} }}\n\
             identity:\n  jwt: {{ issuer: rolescope-demo, audience: rolescope-gateway, jwks_file: {} }}\n",
            jwks.display()
        ),
    );
    let gw = start(config).await;
    let loaded = eventually(Duration::from_secs(5), async || gw.revision().as_deref() == Some(first.as_str())).await;
    assert!(loaded, "a bundle signed by a trusted key loads: {:?}", gw.revision());

    let (next_json, next) = mist_bundle("\n# revision two\n");
    let refused = |n: usize| format!("rolescope_bundle_reloads_total{{result=\"refused\"}} {n}");
    // unsigned, signed by another key, tampered: each refused and counted; the first keeps serving
    let signed = rolescope_sign::sign(&next_json, &[&trusted]).unwrap();
    let tampered = signed.replacen("revision two", "revision 2wo", 1);
    assert_ne!(tampered, signed);
    for (n, text) in
        [next_json.clone(), rolescope_sign::sign(&next_json, &[&foreign]).unwrap(), tampered].into_iter().enumerate()
    {
        publish(&text);
        let counted = eventually(Duration::from_secs(5), async || gw.metrics_text().contains(&refused(n + 1))).await;
        assert!(counted, "case {n}: {}", gw.metrics_text());
        assert_eq!(gw.revision().as_deref(), Some(first.as_str()), "case {n}");
        let a = get_as(gw.local_addr(), "/api/v1/orgs/o1/devices", &token("na_o1")).await;
        assert_eq!((a.status, a.header("x-rolescope-revision")), (200, Some(first.as_str())), "case {n}");
    }
    // the same content, signed by the trusted key: swapped in
    publish(&signed);
    let swapped = eventually(Duration::from_secs(5), async || gw.revision().as_deref() == Some(next.as_str())).await;
    assert!(swapped, "revision still {:?}", gw.revision());
    gw.shutdown().await;
}

/// The principal directory behind a URL: not ready (503 `no_directory`) until one is served,
/// then polled with `If-None-Match`; a suspension served there denies within a poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_url_is_polled_with_etags_and_a_suspension_applies() {
    let upstream = Upstream::start().await;
    let server = BundleServer::start().await;
    let s = Setup::new();
    let extra = format!("  directory: {{ url: \"{}\", poll_interval: 50ms }}\n", server.url());
    let gw = start(s.enforcing(upstream.addr, &extra)).await;
    let tok = token("na_o1");
    let target = "/api/v1/orgs/o1/devices";
    let a = get_as(gw.local_addr(), target, &tok).await;
    assert_eq!((a.status, a.reason().as_str()), (503, "no_directory"));
    assert_eq!(admin(&gw, "/readyz").await.status, 503);

    let directory = |status: &str| {
        serde_json::json!({ "format": "rolescope-directory/1", "principals": [{
            "id": "na_o1", "status": status,
            "assignments": [{ "role": "network_admin", "scope": "msp:mist", "tenants": ["org:o1"] }],
        }] })
        .to_string()
    };
    server.publish("d1", &directory("active"));
    let allowed =
        eventually(Duration::from_secs(5), async || get_as(gw.local_addr(), target, &tok).await.status == 200).await;
    assert!(allowed, "the directory's principal is allowed");
    assert_eq!(admin(&gw, "/readyz").await.status, 200);
    let conditional =
        eventually(Duration::from_secs(5), async || server.not_modified.load(Ordering::Relaxed) >= 2).await;
    assert!(conditional, "no If-None-Match polls");

    server.publish("d2", &directory("suspended"));
    let denied = eventually(Duration::from_secs(5), async || {
        let a = get_as(gw.local_addr(), target, &tok).await;
        (a.status, a.reason().as_str()) == (403, "principal_inactive")
    })
    .await;
    assert!(denied, "the suspension served by URL applies");
    upstream.clear();
    let a = get_as(gw.local_addr(), target, &tok).await;
    assert_eq!((a.status, a.reason().as_str()), (403, "principal_inactive"));
    assert!(upstream.seen().is_empty(), "a suspended principal's request reached the upstream");
    gw.shutdown().await;
}
