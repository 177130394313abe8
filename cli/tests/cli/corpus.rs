//! Every committed policy suite passes through `rolescope test`.

use crate::{root, run};

#[test]
fn every_suite_under_policies_and_tests_corpus_passes() {
    let r = run(&root(), &["test", "policies", "tests/corpus"]);
    assert_eq!(r.code, 0, "rolescope test failed:\n{}\n{}", r.stdout, r.stderr);
    let last = r.stdout.lines().last().unwrap_or_default();
    let passed: usize = last
        .strip_suffix(" passed, 0 failed")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad summary line `{last}`"));
    assert!(passed > 0, "no case ran");
    assert!(r.stdout.contains("tests/corpus/core/"), "{}", r.stdout);
}

#[test]
fn every_policy_checks_and_junit_output_is_well_formed_for_the_corpus() {
    let r = run(&root(), &["check", "policies", "tests/corpus"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let j = run(&root(), &["test", "--format", "junit", "policies", "tests/corpus"]);
    assert_eq!(j.code, 0);
    let mut reader = quick_xml::Reader::from_str(&j.stdout);
    reader.config_mut().check_end_names = true;
    while !matches!(reader.read_event().expect("well-formed XML"), quick_xml::events::Event::Eof) {}
}
