//! Soak: many requests through the gateway while the bundle is swapped every 100 ms between two
//! revisions with known different answers. Every response is checked against the revision
//! that served it (`x-rolescope-revision`): zero wrong decisions, zero unexpected 5xx, the
//! upstream saw exactly the allowed requests, and the gateway's resident memory stays flat.
//!
//! `ROLESCOPE_SOAK_REQUESTS` sets the number of requests (default 50,000, the CI run);
//! `scripts/soak.sh` runs the long version (1,000,000) against a release build.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::reload::{SEED, TARGET, observer, variant};
use crate::support::{self, Stack};

/// Concurrent clients (each on a kept-alive connection from one pool).
const CLIENTS: usize = 16;

/// Resident memory of a process, in KiB (`/proc/<pid>/status`).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[derive(Default)]
struct Tally {
    old_allowed: AtomicUsize,
    new_denied: AtomicUsize,
    wrong: std::sync::Mutex<Vec<String>>,
    wrong_count: AtomicUsize,
}

#[test]
fn swapping_bundles_every_100ms_never_gives_a_wrong_answer() {
    let total: usize = std::env::var("ROLESCOPE_SOAK_REQUESTS").ok().and_then(|v| v.parse().ok()).unwrap_or(50_000);
    let s = Stack::start(SEED);
    let old = support::policy(SEED).revision().to_owned();
    let (new_policy, new_bundle) = variant();
    let new = new_policy.revision().to_owned();
    let old_bundle = support::folder(SEED).bundle.clone();
    let auth = observer();
    let url: hyper::Uri = format!("http://{}{TARGET}", s.gateway.addr).parse().unwrap();
    let pid = s.gateway.pid();

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let tally = Arc::new(Tally::default());
    let next = Arc::new(AtomicUsize::new(0));
    let run = |count: usize| {
        next.store(0, Ordering::Relaxed);
        rt.block_on(async {
            let mut tasks = Vec::new();
            for _ in 0..CLIENTS {
                let (client, url, auth, tally, next) =
                    (client.clone(), url.clone(), auth.clone(), Arc::clone(&tally), Arc::clone(&next));
                let (old, new) = (old.clone(), new.clone());
                tasks.push(tokio::spawn(async move {
                    while next.fetch_add(1, Ordering::Relaxed) < count {
                        let req = hyper::Request::get(url.clone())
                            .header("authorization", auth.as_str())
                            .body(Empty::<Bytes>::new())
                            .unwrap();
                        let verdict = match client.request(req).await {
                            Err(e) => Err(format!("transport error: {e}")),
                            Ok(r) => {
                                let status = r.status().as_u16();
                                let rev = r
                                    .headers()
                                    .get("x-rolescope-revision")
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or("")
                                    .to_owned();
                                let body = r.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                                let reason = serde_json::from_slice::<serde_json::Value>(&body)
                                    .ok()
                                    .and_then(|v| v.get("reason").and_then(|r| r.as_str()).map(str::to_owned))
                                    .unwrap_or_default();
                                match (status, reason.as_str()) {
                                    (200, _) if rev == old => Ok(true),
                                    (403, "no_matching_grant") if rev == new => Ok(false),
                                    _ => Err(format!("{status} {reason} under revision `{rev}`")),
                                }
                            }
                        };
                        match verdict {
                            Ok(true) => tally.old_allowed.fetch_add(1, Ordering::Relaxed),
                            Ok(false) => tally.new_denied.fetch_add(1, Ordering::Relaxed),
                            Err(e) => {
                                if let Ok(mut w) = tally.wrong.lock()
                                    && w.len() < 20
                                {
                                    w.push(e);
                                }
                                tally.wrong_count.fetch_add(1, Ordering::Relaxed)
                            }
                        };
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        });
    };

    // warm up (connections, caches, the prepared principal), then take the memory baseline
    run(2_000.min(total));
    let baseline = rss_kib(pid);

    // swap every 100 ms: publish the other bundle and signal the gateway to reload it
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, path) = (Arc::clone(&stop), s.bundle_path.clone());
        let child = pid;
        std::thread::spawn(move || {
            let mut swaps = 0u32;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                let bundle = if swaps.is_multiple_of(2) { &new_bundle } else { &old_bundle };
                support::publish(&path, bundle);
                // SIGHUP: reload now (the file watcher would also see it, later)
                let _ = std::process::Command::new("kill").arg("-HUP").arg(child.to_string()).status();
                swaps += 1;
            }
            swaps
        })
    };
    let started = Instant::now();
    run(total);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    let end = rss_kib(pid);

    let (old_allowed, new_denied) =
        (tally.old_allowed.load(Ordering::Relaxed), tally.new_denied.load(Ordering::Relaxed));
    let wrong = tally.wrong_count.load(Ordering::Relaxed);
    eprintln!(
        "soak: {total} requests in {:.1} s ({:.0}/s), {swaps} swaps; old revision allowed {old_allowed}, \
         new revision denied {new_denied}; gateway RSS {} -> {} MiB",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        baseline / 1024,
        end / 1024
    );
    assert_eq!(
        wrong,
        0,
        "{wrong} wrong answers, e.g.:\n{}\n{}",
        tally.wrong.lock().map(|w| w.join("\n")).unwrap_or_default(),
        s.gateway.warnings()
    );
    assert!(
        swaps >= 2 && new_denied > 0,
        "the bundle was swapped ({swaps} swaps, {new_denied} answers by the variant)"
    );
    // the upstream saw exactly the allowed requests, warm-up included (its log keeps 1,000,000)
    if old_allowed < 1_000_000 {
        let forwarded = s.upstream.log().len();
        assert_eq!(forwarded, old_allowed, "the upstream saw exactly the allowed requests");
    }
    // memory flat: bounded growth over the run (caches are bounded; nothing per request stays)
    assert!(end <= baseline + 32 * 1024, "gateway RSS grew from {} MiB to {} MiB", baseline / 1024, end / 1024);
}
