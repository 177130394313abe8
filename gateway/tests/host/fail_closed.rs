//! Fail closed: a trap, a timeout, an out-of-memory guest, an answer out of contract, no
//! policy, a corrupt bundle, bad input: each is a deny (an error, never an allow), and the
//! next call works again on a fresh instance.
#![expect(clippy::expect_used, reason = "test helpers: a failure here is a test failure")]

use std::time::Duration;

use rolescope_engine::{Principal, Reason};
use rolescope_gateway::{Config, Decision, Error, Host, Query};
use serde_json::{Map, Value};

use crate::support;

const JUNIPER: &str = "policies/juniper-mist-msp";

/// A Network Admin of organization o1 (Juniper Mist MSP).
fn na_o1() -> Principal {
    serde_json::from_value(serde_json::json!({
        "id": "na",
        "assignments": [{ "role": "network_admin", "scope": "msp:mist", "tenants": ["org:o1"] }],
    }))
    .expect("principal")
}

/// Rebooting an access point in o1: allowed for `na_o1`.
fn reboot() -> Query<'static> {
    Query::new("reboot", "device", "msp:mist/org:o1/site:s1").id("ap-11")
}

/// Prepare `na_o1`, decide `reboot`, release.
fn decide(host: &mut Host) -> Result<Decision, Error> {
    let h = host.principal(&na_o1())?;
    let d = host.decide(&h, &reboot());
    host.release(h);
    d
}

fn assert_allowed(host: &mut Host) {
    let d = decide(host).expect("decision");
    assert!(d.allowed() && d.reason() == Reason::Allowed, "{d:?}");
}

/// Attributes so large the guest needs a long time (and much memory) to parse them.
fn huge_attributes(elements: usize) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("x".into(), Value::Array(vec![Value::from(0); elements]));
    m
}

#[test]
fn a_trap_denies_and_the_next_call_runs_on_a_fresh_instance() {
    let engine = support::loaded(JUNIPER, Config::default());
    let mut host = engine.host();
    assert_allowed(&mut host);
    let handle = host.principal(&na_o1()).expect("principal");
    let before = engine.instances_started();
    // `__wbindgen_start` calls a JS glue import, defined as a trap.
    let e = host.call_export("__wbindgen_start", &[]).expect_err("glue import traps");
    assert!(e.is_trap() && e.is_guest_failure() && e.is_unavailable(), "{e:?}");
    assert_eq!(host.revision(), None, "instance discarded");
    // the handle died with its instance
    let e = host.decide(&handle, &reboot()).expect_err("stale");
    assert!(e.is_stale_handle(), "{e:?}");
    assert_allowed(&mut host);
    assert_eq!(engine.instances_started(), before + 1);
    // garbage lengths: an input buffer of 4 GiB cannot exist in a 32-bit guest
    let e = host.call_export("rs_input", &[-1]).expect_err("garbage length traps");
    assert!(e.is_guest_failure(), "{e:?}");
    assert_allowed(&mut host);
    assert_eq!(engine.instances_started(), before + 2);
}

#[test]
fn an_answer_out_of_contract_denies_and_replaces_the_instance() {
    let engine = support::loaded(JUNIPER, Config::default());
    let mut host = engine.host();
    let handle = host.principal(&na_o1()).expect("principal");
    // Free the guest's principal behind the host's back: rs_decide answers -1 (unknown
    // handle), a negative code, which must deny and replace the instance.
    let slots = host.call_export("rs_principal_free", &[0]).expect("free");
    assert!(slots.is_empty());
    let e = host.decide(&handle, &reboot()).expect_err("negative code");
    assert_eq!(e.kind(), rolescope_gateway::ErrorKind::Protocol, "{e:?}");
    assert!(e.is_guest_failure() && e.is_unavailable());
    assert_eq!(host.revision(), None);
    assert_allowed(&mut host);
}

#[test]
fn a_call_past_its_deadline_denies_and_the_next_call_works() {
    let config = Config::default().call_deadline(Duration::from_millis(2)).memory_limit(1 << 30);
    let engine = support::loaded(JUNIPER, config);
    let mut host = engine.host();
    let attrs = huge_attributes(2 << 20);
    let handle = host.principal(&na_o1()).expect("principal");
    let e =
        host.decide(&handle, &reboot().attributes(&attrs)).expect_err("2M-element attribute takes longer than 2 ms");
    assert!(e.is_timeout() && e.is_guest_failure() && e.is_unavailable(), "{e:?}");
    // The deadline is wall-clock time: on a loaded machine a small call may miss it too, but
    // a miss is only ever a timeout, never an allow.
    let mut outcome = decide(&mut host);
    for _ in 0..5 {
        match &outcome {
            Err(e) if e.is_timeout() => outcome = decide(&mut host),
            _ => break,
        }
    }
    let d = outcome.expect("a small decision fits in 2 ms");
    assert!(d.allowed(), "{d:?}");
}

/// The same question as a full engine request.
fn reboot_request(principal: Principal) -> rolescope_engine::Request {
    serde_json::from_value(serde_json::json!({
        "principal": principal,
        "action": "reboot",
        "resource": { "kind": "device", "id": "ap-11", "scope": "msp:mist/org:o1/site:s1" },
    }))
    .expect("request")
}

#[test]
fn a_zero_deadline_times_out_every_call_and_never_allows() {
    let engine = support::loaded(JUNIPER, Config::default().call_deadline(Duration::ZERO));
    let mut host = engine.host();
    for _ in 0..3 {
        let e = decide(&mut host).expect_err("deadline 0");
        assert!(e.is_timeout() && e.is_unavailable(), "{e:?}");
        let e = host.check_json(&reboot_request(na_o1())).expect_err("deadline 0");
        assert!(e.is_timeout(), "{e:?}");
    }
}

#[test]
fn an_out_of_memory_guest_denies_and_the_next_call_works() {
    // 4 MiB: enough for the module (about 1.1 MiB) and the Juniper policy, not for 8 MiB input.
    let engine = support::loaded(JUNIPER, Config::default().memory_limit(4 << 20));
    let mut host = engine.host();
    assert_allowed(&mut host);
    let mut attrs = Map::new();
    attrs.insert("x".into(), Value::String("a".repeat(8 << 20)));
    let handle = host.principal(&na_o1()).expect("principal");
    let e = host.decide(&handle, &reboot().attributes(&attrs)).expect_err("8 MiB input in 4 MiB");
    assert!(e.is_out_of_memory() && e.is_guest_failure() && e.is_unavailable(), "{e:?}");
    let mut request = reboot_request(na_o1());
    request.context = attrs;
    let e = host.check_json(&request).expect_err("8 MiB input in 4 MiB");
    assert!(e.is_out_of_memory(), "{e:?}");
    assert_allowed(&mut host);
}

#[test]
fn an_engine_whose_instance_cannot_fit_its_memory_limit_does_not_start() {
    let e = support::compiled().reconfigured(Config::default().memory_limit(64 << 10)).expect_err("64 KiB");
    assert!(e.is_unavailable(), "{e:?}");
}

#[test]
fn no_policy_loaded_denies() {
    let engine = support::engine(Config::default());
    assert_eq!(engine.revision(), None);
    let mut host = engine.host();
    let e = decide(&mut host).expect_err("no policy");
    assert!(e.is_no_policy() && e.is_unavailable() && !e.is_guest_failure(), "{e:?}");
    let e = host.check_json(&reboot_request(na_o1())).expect_err("no policy");
    assert!(e.is_no_policy(), "{e:?}");
    engine.load(&support::folder(JUNIPER).bundle).expect("load");
    assert_allowed(&mut host);
}

#[test]
fn a_corrupt_bundle_is_refused_and_the_previous_one_stays_in_force() {
    let engine = support::loaded(JUNIPER, Config::default());
    let revision = engine.revision().expect("loaded");
    let mut host = engine.host();
    assert_allowed(&mut host);
    let bundle = &support::folder(JUNIPER).bundle;
    let tampered = bundle.replacen("reboot", "rebooot", 1);
    let other_format = bundle.replacen("rolescope-bundle/1", "rolescope-bundle/9", 1);
    for corrupt in ["", "{", "not json", "{}", "[1,2]", &tampered, &other_format, &bundle[..bundle.len() / 2]] {
        let e = engine.load(corrupt).expect_err("corrupt bundle");
        assert!(e.is_invalid_bundle() && !e.is_unavailable() && !e.detail().is_empty(), "{e:?}");
        assert_eq!(engine.revision().as_ref(), Some(&revision));
        assert_allowed(&mut host);
    }
    // an empty engine stays empty
    let empty = support::engine(Config::default());
    assert!(empty.load("{").expect_err("corrupt").is_invalid_bundle());
    assert!(decide(&mut empty.host()).expect_err("still no policy").is_no_policy());
}

#[test]
fn input_the_abi_cannot_carry_denies_without_touching_the_instance() {
    let engine = support::loaded(JUNIPER, Config::default());
    let mut host = engine.host();
    let handle = host.principal(&na_o1()).expect("principal");
    let started = engine.instances_started();
    let long = "k".repeat(70_000);
    let e = host.decide(&handle, &Query::new("reboot", &long, "msp:mist/org:o1")).expect_err("kind > 64 KiB");
    assert!(e.is_invalid_input() && !e.is_unavailable() && !e.is_guest_failure(), "{e:?}");
    assert!(host.decide(&handle, &reboot()).expect("same instance").allowed());
    assert_eq!(engine.instances_started(), started);
}

#[test]
fn a_handle_is_only_good_on_its_own_host_and_revision() {
    let engine = support::loaded(JUNIPER, Config::default());
    let (mut a, mut b) = (engine.host(), engine.host());
    let handle = a.principal(&na_o1()).expect("principal");
    b.refresh().expect("refresh");
    assert!(b.decide(&handle, &reboot()).expect_err("another host").is_stale_handle());
    // a new bundle (even the same content) goes into a new instance
    engine.load(&support::folder(JUNIPER).bundle).expect("reload");
    a.refresh().expect("refresh");
    assert!(a.decide(&handle, &reboot()).expect_err("older bundle").is_stale_handle());
}

#[test]
fn principals_the_engine_denies_everything_deny_with_the_native_reason() {
    let engine = support::loaded(JUNIPER, Config::default());
    let native = &support::folder(JUNIPER).policy;
    let mut host = engine.host();
    let with = |f: &dyn Fn(&mut Principal)| {
        let mut p = na_o1();
        f(&mut p);
        p
    };
    let cases = [
        (with(&|p| p.status = Some("suspended".into())), Reason::PrincipalInactive),
        (with(&|p| p.status = Some("deleted".into())), Reason::PrincipalInactive),
        (with(&|p| p.status = Some("on-leave".into())), Reason::InvalidRequest),
        (with(&|p| drop(p.attributes.insert("no_such_attribute".into(), Value::from(1)))), Reason::InvalidAttribute),
    ];
    for (p, reason) in cases {
        let request = reboot_request(p.clone());
        assert_eq!(native.check(&request).reason(), reason, "native");
        let handle = host.principal(&p).expect("a handle that denies");
        assert_eq!(handle.denies_all().map(|(r, _)| r), Some(reason), "{p:?}");
        // whatever the resource, even one that does not exist
        for q in [reboot(), Query::new("reboot", "no_such_kind", "nowhere")] {
            let d = host.decide(&handle, &q).expect("decision");
            assert!(!d.allowed() && d.reason() == reason, "{d:?}");
        }
        let report = host.check_json(&request).expect("report");
        assert!(!report.allowed && report.reason == reason, "{report:?}");
    }
}
