//! Hot reload: a valid bundle swapped in on file change and on SIGHUP, invalid bundles refused
//! while the old one keeps serving, and a swap under load where every answer is the old or the
//! new revision's (never a 5xx, never a mix).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rolescope_engine::Policy;

use crate::support::{self, GatewayConfig, Source, Stack, Upstream, tokens};

pub(crate) const SEED: &str = "juniper-mist-msp";
/// An Observer viewing a device: allowed by the seed, denied by [`variant`].
pub(crate) const TARGET: &str = "/api/v1/orgs/o1/devices/ap-11";

/// The seed with the Observer's device grant removed.
pub(crate) fn variant() -> (Policy, String) {
    support::variant(SEED, |name, text| {
        if name.ends_with("roles.yaml") {
            text.replace(
                "device:        [manage, operate, read, install_ap]",
                "device:        [manage, operate, none, install_ap]",
            )
        } else {
            text.to_owned()
        }
    })
}

/// The observer's bearer header.
pub(crate) fn observer() -> String {
    tokens::bearer(&support::principal(SEED, "obs_all"))
}

/// Assert the answer to the observer's request under `revision` (old: forwarded; new: 403).
#[track_caller]
fn check_answer(r: &support::Response, old: &str, new: &str) {
    let rev = r.header("x-rolescope-revision").unwrap_or("");
    if rev == old {
        assert_eq!(r.status, 200, "old revision allows: {}", r.summary());
    } else if rev == new {
        assert_eq!((r.status, r.reason().as_str()), (403, "no_matching_grant"), "new revision denies: {}", r.summary());
    } else {
        panic!("answer from an unknown revision `{rev}`: {}", r.summary());
    }
}

#[test]
fn file_change_swaps_the_bundle() {
    let mut s = Stack::start(SEED);
    let old = support::policy(SEED).revision().to_owned();
    let (new_policy, new_bundle) = variant();
    let new = new_policy.revision().to_owned();
    let auth = observer();
    let r = s.gateway.send("GET", TARGET, &[("authorization", &auth)]);
    check_answer(&r, &old, &new);
    assert_eq!(r.header("x-rolescope-revision"), Some(old.as_str()));

    support::publish(&s.bundle_path, &new_bundle);
    s.gateway.wait_revision(&new, Duration::from_secs(15));
    let r = s.gateway.send("GET", TARGET, &[("authorization", &auth)]);
    check_answer(&r, &old, &new);
    assert_eq!(r.header("x-rolescope-revision"), Some(new.as_str()));
    let log = s.upstream.log();
    assert_eq!(log.len(), 1, "only the request allowed by the old revision arrived: {log:#?}");
    assert!(s.gateway.metrics().contains(&format!("revision=\"{new}\"")), "metrics name the new revision");
}

#[test]
fn sighup_swaps_the_bundle() {
    let upstream = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bundle.json");
    support::publish(&path, &support::folder(SEED).bundle);
    // not watched: only the signal reloads
    let mut gw = support::Gateway::start_ready(&GatewayConfig::new(&upstream, Source::File(path.clone(), false)));
    let old = support::policy(SEED).revision().to_owned();
    let (new_policy, new_bundle) = variant();
    let new = new_policy.revision().to_owned();
    support::publish(&path, &new_bundle);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(gw.revision().as_deref(), Some(old.as_str()), "no reload without the signal (watch is off)");
    gw.sighup();
    gw.wait_revision(&new, Duration::from_secs(15));
    let r = gw.send("GET", TARGET, &[("authorization", &observer())]);
    check_answer(&r, &old, &new);
    assert_eq!(r.status, 403);
    upstream.assert_untouched("the new revision denies");
}

#[test]
fn invalid_bundles_are_refused_and_the_old_keeps_serving() {
    let s = Stack::start(SEED);
    let old = support::policy(SEED).revision().to_owned();
    let auth = observer();
    let good = support::folder(SEED).bundle.clone();
    let bad_policy = {
        // a bundle whose role file does not compile
        let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
        v["files"][0]["text"] = serde_json::json!("policy: broken\nroles: [this is not a map\n");
        v.to_string()
    };
    let tampered = {
        let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
        let text = v["files"][0]["text"].as_str().unwrap().replace("rank: 40", "rank: 41");
        v["files"][0]["text"] = serde_json::json!(text);
        v.to_string()
    };
    let cases = [
        ("not JSON", "{ this is not a bundle".to_owned()),
        ("empty file", String::new()),
        ("wrong format", good.replace("rolescope-bundle/1", "rolescope-bundle/99")),
        ("sources that do not compile", bad_policy),
        ("revision does not match the content", tampered),
    ];
    let refused_before = refused_reloads(&s.gateway.metrics());
    for (i, (what, bundle)) in cases.iter().enumerate() {
        support::publish(&s.bundle_path, bundle);
        s.gateway.sighup();
        // wait until the gateway counted the refusal (file change and signal may each count one)
        let start = Instant::now();
        while refused_reloads(&s.gateway.metrics()) < refused_before + i as u64 + 1 {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "{what}: no refused reload counted:\n{}",
                s.gateway.metrics()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let r = s.gateway.send("GET", TARGET, &[("authorization", &auth)]);
        assert_eq!(r.status, 200, "{what}: the old bundle keeps serving: {}", r.summary());
        assert_eq!(r.header("x-rolescope-revision"), Some(old.as_str()), "{what}");
        assert_eq!(crate::support::http::get(s.gateway.admin, "/readyz").status, 200, "{what}: still ready");
    }
    assert_eq!(s.upstream.log().len(), cases.len(), "exactly the allowed requests arrived");
}

/// `rolescope_bundle_reloads_total{result="refused"}` from the metrics text.
fn refused_reloads(metrics: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with("rolescope_bundle_reloads_total") && l.contains("result=\"refused\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

#[test]
fn reload_under_load_answers_old_or_new_only() {
    let mut s = Stack::start(SEED);
    let old = support::policy(SEED).revision().to_owned();
    let (new_policy, new_bundle) = variant();
    let new = new_policy.revision().to_owned();
    let old_bundle = support::folder(SEED).bundle.clone();
    let auth = observer();
    let stop = Arc::new(AtomicBool::new(false));
    let addr = s.gateway.addr;
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (stop, auth, old, new) = (Arc::clone(&stop), auth.clone(), old.clone(), new.clone());
            std::thread::spawn(move || {
                let (mut seen_old, mut seen_new, mut wrong) = (0u32, 0u32, Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    let r = support::http::send(addr, "GET", TARGET, &[("authorization", &auth)]);
                    let rev = r.header("x-rolescope-revision").unwrap_or("");
                    match (r.status, r.reason().as_str()) {
                        (200, _) if rev == old => seen_old += 1,
                        (403, "no_matching_grant") if rev == new => seen_new += 1,
                        _ => wrong.push(format!("revision `{rev}`: {}", r.summary())),
                    }
                }
                (seen_old, seen_new, wrong)
            })
        })
        .collect();
    // flip revisions; each flip waits until the gateway serves it (a watcher that samples the
    // file periodically must not be able to miss every other revision)
    for i in 0..6 {
        std::thread::sleep(Duration::from_millis(150));
        let (bundle, rev) = if i % 2 == 0 { (&new_bundle, &new) } else { (&old_bundle, &old) };
        support::publish(&s.bundle_path, bundle);
        s.gateway.wait_revision(rev, Duration::from_secs(15));
    }
    std::thread::sleep(Duration::from_millis(150));
    stop.store(true, Ordering::Relaxed);
    let (mut total_old, mut total_new, mut wrong) = (0, 0, Vec::new());
    for c in clients {
        let (o, n, w) = c.join().expect("client thread");
        total_old += o;
        total_new += n;
        wrong.extend(w);
    }
    assert!(
        wrong.is_empty(),
        "{} answers were neither the old nor the new revision's (old {total_old}, new {total_new}):\n{}\n{}",
        wrong.len(),
        wrong.iter().take(10).cloned().collect::<Vec<_>>().join("\n"),
        s.gateway.warnings()
    );
    assert!(total_old > 0 && total_new > 0, "both revisions answered (old {total_old}, new {total_new})");
    // nothing denied arrived: the upstream saw exactly the old revision's answers
    assert_eq!(s.upstream.log().len() as u32, total_old, "the upstream saw exactly the allowed requests");
}
