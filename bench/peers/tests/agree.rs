//! Every peer gives rolescope's answers on every benchmarked case, and rolescope's answers are
//! the scenarios' intended ones (so an agreement on a policy that denies everything cannot
//! pass).

#![expect(clippy::panic, reason = "tests fail loudly")]

use rolescope_peers::scenario::{self, Scenario};
use rolescope_peers::{Casbin, Cedar, NativeStrings, Peer, Regorus, agree, expected};

fn all_peers_agree(s: &Scenario) -> Vec<Vec<bool>> {
    let want = expected(s).unwrap_or_else(|e| panic!("rolescope on {}: {e}", s.id));
    fn check<P: Peer>(p: Result<P, rolescope_peers::Error>, s: &Scenario, want: &[Vec<bool>]) {
        let mut p = p.unwrap_or_else(|e| panic!("{} set-up on {}: {e}", P::NAME, s.id));
        agree(&mut p, s, want).unwrap_or_else(|e| panic!("{e}"));
    }
    check(NativeStrings::new(s), s, &want);
    check(Cedar::new(s), s, &want);
    check(Casbin::new(s), s, &want);
    check(Regorus::new(s), s, &want);
    want
}

#[test]
fn scenario_a() {
    assert_eq!(all_peers_agree(&scenario::scenario_a()), vec![vec![true], vec![false]]);
}

#[test]
fn scenario_b() {
    assert_eq!(all_peers_agree(&scenario::scenario_b()), vec![vec![true], vec![false]]);
}

#[test]
fn scenario_c() {
    // o50: network_admin (view, list, create, update, delete, configure, upgrade_firmware)
    let want = all_peers_agree(&scenario::scenario_c());
    assert_eq!(want, vec![vec![true, true, true, true, true, false, false, true, true, false]]);
}

#[test]
fn scenario_d() {
    let want = all_peers_agree(&scenario::scenario_d());
    let answers = want.first().expect("one case");
    assert_eq!(answers.len(), 1_000);
    // 10 orgs assigned, each allowing some actions; the 90 others nothing
    let allowed_orgs = answers.chunks(10).filter(|r| r.iter().any(|a| *a)).count();
    assert_eq!(allowed_orgs, 10);
    assert!(answers.iter().any(|a| !a));
}

#[test]
fn growth_sizes() {
    for n in [10, 100, 1_000] {
        assert_eq!(all_peers_agree(&scenario::scenario_growth(n)), vec![vec![true]], "growth {n}");
    }
}

/// A peer that answers differently is named, with the case.
#[test]
fn a_disagreement_names_the_peer_and_case() {
    let s = scenario::scenario_a();
    let mut wrong = expected(&s).expect("rolescope");
    if let Some(first) = wrong.first_mut() {
        *first = vec![false];
    }
    let mut cedar = Cedar::new(&s).expect("cedar");
    let e = agree(&mut cedar, &s, &wrong).err().expect("must disagree").to_string();
    assert!(e.contains("cedar-policy") && e.contains("`allowed`"), "{e}");
}

/// The Cedar texts in bench/scenarios (and the generated growth templates) validate against
/// their schemas (strict mode): the Node peers read the same files.
#[test]
fn cedar_texts_validate() {
    use std::str::FromStr as _;

    use cedar_policy::{PolicySet, Schema, ValidationMode, Validator};
    use scenario::{msp_texts, site24x7_texts};
    let growth = scenario::scenario_growth(10).cedar_templates.expect("growth templates");
    for (schema, policies) in [
        (msp_texts::CEDAR_SCHEMA, msp_texts::CEDAR_POLICIES),
        (site24x7_texts::CEDAR_SCHEMA, site24x7_texts::CEDAR_POLICIES),
        (msp_texts::CEDAR_SCHEMA, growth.as_str()),
    ] {
        let (schema, _) = Schema::from_cedarschema_str(schema).expect("schema");
        let set = PolicySet::from_str(policies).expect("policies");
        let result = Validator::new(schema).validate(&set, ValidationMode::Strict);
        assert!(result.validation_passed(), "{:?}", result.validation_errors().collect::<Vec<_>>());
    }
}
