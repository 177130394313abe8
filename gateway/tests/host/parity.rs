//! Decisions through wasmtime equal the native engine's, on every check case of every suite
//! and on 10,000 generated requests over the seed policies (the parity corpus), through both
//! the compact path (`rs_principal` + `rs_decide`) and `rs_check_json`.

use std::collections::BTreeMap;

use rolescope_engine::PrincipalRef;
use rolescope_gateway::{Config, Query};

use crate::{module, support};

#[test]
fn every_suite_case_and_10k_generated_requests_decide_as_natively() {
    let (_, cases) = rolescope_parity::corpus(&module::workspace(), 2_500).expect("parity corpus");
    let generated = cases.iter().filter(|c| c.name.starts_with("generated #")).count();
    assert!(generated >= 10_000, "{generated} generated requests");

    let mut by_policy: BTreeMap<&str, Vec<&rolescope_parity::Case>> = BTreeMap::new();
    for c in &cases {
        by_policy.entry(c.policy.as_str()).or_default().push(c);
    }
    let (mut compact, mut json, mut by_id) = (0usize, 0usize, 0usize);
    let mut differences = Vec::new();
    for (dir, cases) in by_policy {
        let engine = support::loaded(dir, Config::default());
        let revision = support::folder(dir).policy.revision();
        let mut host = engine.host();
        for c in cases {
            let want = (c.expected.allowed, c.expected.reason);
            // rs_check_json: the whole request as JSON, the report back.
            let report = host.check_json(&c.request).unwrap_or_else(|e| panic!("{dir} {}: {e}", c.name));
            json += 1;
            assert_eq!(report.revision, revision);
            if (report.allowed, report.reason) != want {
                differences.push(format!(
                    "{dir} {} (json): {:?} vs native {want:?}",
                    c.name,
                    (report.allowed, report.reason)
                ));
            }
            // The compact path needs the principal's data (filed principals are only by id).
            let PrincipalRef::Inline(p) = &c.request.principal else {
                by_id += 1;
                continue;
            };
            let handle = host.principal(p).unwrap_or_else(|e| panic!("{dir} {}: {e}", c.name));
            assert_eq!(handle.revision().as_str(), revision);
            let d = host.decide(&handle, &Query::of(&c.request)).unwrap_or_else(|e| panic!("{dir} {}: {e}", c.name));
            host.release(handle);
            compact += 1;
            if (d.allowed(), d.reason()) != want {
                differences.push(format!(
                    "{dir} {} (compact): {:?} vs native {want:?}",
                    c.name,
                    (d.allowed(), d.reason())
                ));
            }
        }
        // no failure replaced an instance: one probe, one validation load, one host instance
        assert_eq!(engine.instances_started(), 3, "{dir}");
    }
    eprintln!(
        "parity: {json} requests via rs_check_json, {compact} via rs_decide ({by_id} by filed principal id: json only)"
    );
    assert!(differences.is_empty(), "{} differences:\n{}", differences.len(), differences.join("\n"));
}
