//! Scale-out: three replicas poll one bundle server (ETag / If-None-Match); after a publish,
//! all three serve the new revision within two poll intervals.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{self, Gateway, GatewayConfig, Source, Upstream};

/// A tiny bundle server: `GET /bundle.json` with the revision as ETag; `If-None-Match` with
/// the current ETag answers 304.
struct BundleServer {
    addr: SocketAddr,
    current: Arc<Mutex<(String, String)>>,
    not_modified: Arc<AtomicUsize>,
    full: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl BundleServer {
    fn start(bundle: &str, revision: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let current = Arc::new(Mutex::new((bundle.to_owned(), format!("\"{revision}\""))));
        let (not_modified, full, stop) = (Arc::default(), Arc::default(), Arc::new(AtomicBool::new(false)));
        let server = Self { addr, current, not_modified, full, stop };
        let (current, nm, full, stop) = (
            Arc::clone(&server.current),
            Arc::clone(&server.not_modified),
            Arc::clone(&server.full),
            Arc::clone(&server.stop),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                        let mut buf = Vec::new();
                        let mut chunk = [0u8; 4096];
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            match stream.read(&mut chunk) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
                        let (body, etag) = current.lock().unwrap().clone();
                        let inm =
                            head.lines().find_map(|l| l.strip_prefix("if-none-match:")).map(|v| v.trim().to_owned());
                        let resp = if !head.starts_with("get /bundle.json ") {
                            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_owned()
                        } else if inm.as_deref() == Some(etag.to_ascii_lowercase().as_str()) {
                            nm.fetch_add(1, Ordering::Relaxed);
                            format!("HTTP/1.1 304 Not Modified\r\netag: {etag}\r\nconnection: close\r\n\r\n")
                        } else {
                            full.fetch_add(1, Ordering::Relaxed);
                            format!(
                                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\netag: {etag}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                                body.len()
                            )
                        };
                        let _ = stream.write_all(resp.as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        server
    }

    fn publish(&self, bundle: &str, revision: &str) {
        *self.current.lock().unwrap() = (bundle.to_owned(), format!("\"{revision}\""));
    }

    fn url(&self) -> String {
        format!("http://{}/bundle.json", self.addr)
    }
}

impl Drop for BundleServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn three_replicas_converge_within_two_poll_intervals() {
    const SEED: &str = "site24x7-msp";
    const POLL: Duration = Duration::from_millis(1000);
    let upstream = Upstream::start();
    let old = support::policy(SEED).revision().to_owned();
    let server = BundleServer::start(&support::folder(SEED).bundle, &old);
    let config = GatewayConfig::new(&upstream, Source::Url(server.url(), POLL));
    let mut replicas: Vec<Gateway> = (0..3).map(|_| Gateway::start_ready(&config)).collect();
    for g in &mut replicas {
        g.wait_revision(&old, Duration::from_secs(10));
    }
    // a few polls of an unchanged bundle: answered 304, not re-downloaded
    std::thread::sleep(POLL * 2 + Duration::from_millis(200));
    assert!(server.not_modified.load(Ordering::Relaxed) >= 3, "replicas send If-None-Match and get 304s");
    let full_before = server.full.load(Ordering::Relaxed);

    let (new_policy, new_bundle) = support::variant(SEED, |name, text| {
        if name.ends_with("roles.yaml") { format!("{text}\n# revision two\n") } else { text.to_owned() }
    });
    let new = new_policy.revision().to_owned();
    let published = Instant::now();
    server.publish(&new_bundle, &new);
    let mut done = vec![false; replicas.len()];
    while done.iter().any(|d| !d) {
        for (i, g) in replicas.iter().enumerate() {
            if !done[i] && g.revision().as_deref() == Some(new.as_str()) {
                done[i] = true;
            }
        }
        assert!(
            published.elapsed() <= POLL * 2 + Duration::from_millis(250),
            "not all replicas serve {new} within two poll intervals ({done:?} after {:?})",
            published.elapsed()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let took = published.elapsed();
    assert!(server.full.load(Ordering::Relaxed) >= full_before + 3, "each replica downloaded the new bundle");
    eprintln!("three replicas converged on {new} {took:?} after the publish (poll interval {POLL:?})");
    for g in &replicas {
        assert_eq!(g.revision().as_deref(), Some(new.as_str()));
    }
    upstream.assert_untouched("revision probes are anonymous");
}
