//! A bundle swap while other threads decide: they keep deciding, without an error, and every
//! call that starts after the swap returned sees the new revision.

use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rolescope_engine::Principal;
use rolescope_gateway::{Config, Host, Query};

use crate::support;

const THREADS: usize = 4;

#[test]
fn a_bundle_swap_never_stops_decisions_and_every_later_call_sees_it() {
    let (a, b) = (support::folder("policies/juniper-mist-msp"), support::folder("policies/msp-panel"));
    let engine = support::loaded(&a.dir, Config::default());
    let principal: Principal = serde_json::from_value(serde_json::json!({
        "id": "na",
        "assignments": [{ "role": "network_admin", "scope": "msp:mist", "tenants": ["org:o1"] }],
    }))
    .expect("principal");
    let request = serde_json::from_value(serde_json::json!({
        "principal": principal,
        "action": "reboot",
        "resource": { "kind": "device", "id": "ap-11", "scope": "msp:mist/org:o1/site:s1" },
    }))
    .expect("request");
    // The same question under each bundle, natively: allowed by Juniper, an unknown kind to
    // the MSP panel.
    let (under_a, under_b) = (a.policy.check(&request), b.policy.check(&request));
    assert!(under_a.allowed());
    assert!(!under_b.allowed());
    let query = Query::of(&request);

    let swapped = AtomicBool::new(false);
    let stop = AtomicBool::new(false);
    let (before, after) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let start = Barrier::new(THREADS + 1);
    let one = |host: &mut Host| {
        let was_swapped = swapped.load(Ordering::SeqCst);
        let handle = host.principal(&principal).expect("no error during a swap");
        let d = host.decide(&handle, &query).expect("no error during a swap");
        let revision = handle.revision().as_str().to_owned();
        host.release(handle);
        if revision == a.policy.revision() {
            assert!(!was_swapped, "a call that started after the swap returned ran the old bundle");
            assert_eq!((d.allowed(), d.reason()), (under_a.allowed(), under_a.reason()));
            before.fetch_add(1, Ordering::Relaxed);
        } else {
            assert_eq!(revision, b.policy.revision());
            assert_eq!((d.allowed(), d.reason()), (under_b.allowed(), under_b.reason()));
            after.fetch_add(1, Ordering::Relaxed);
        }
    };
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (engine, one, start, stop) = (&engine, &one, &start, &stop);
            s.spawn(move || {
                start.wait();
                // half the threads keep their own host, half use the engine's per-thread one
                let mut own = engine.host();
                while !stop.load(Ordering::SeqCst) {
                    if t % 2 == 0 { one(&mut own) } else { engine.with_host(one) }
                }
            });
        }
        start.wait();
        let wait_for = |counter: &AtomicUsize, n: usize| {
            let deadline = Instant::now() + Duration::from_secs(60);
            while counter.load(Ordering::Relaxed) < n && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
        };
        wait_for(&before, 200);
        let decided = before.load(Ordering::Relaxed);
        let revision = engine.load(&b.bundle).expect("swap");
        swapped.store(true, Ordering::SeqCst);
        assert_eq!(revision.as_str(), b.policy.revision());
        wait_for(&after, 200);
        stop.store(true, Ordering::SeqCst);
        assert!(before.load(Ordering::Relaxed) >= decided, "decisions went on");
    });
    let (before, after) = (before.into_inner(), after.into_inner());
    eprintln!("swap: {before} decisions on the old bundle, {after} on the new one, over {THREADS} threads");
    assert!(before >= 200 && after >= 200, "{before} before, {after} after");
    assert_eq!(engine.revision().map(|r| r.as_str().to_owned()).as_deref(), Some(b.policy.revision()));
}
