//! `rolescope test`.

use quick_xml::events::Event;

use crate::{FAILING_SUITE, POLICY, SUITE, fixture, run};

fn passing() -> tempfile::TempDir {
    fixture(&[("demo/roles.yaml", POLICY), ("demo/basics_test.yaml", SUITE)])
}

fn failing() -> tempfile::TempDir {
    fixture(&[
        ("demo/roles.yaml", POLICY),
        ("demo/basics_test.yaml", SUITE),
        ("demo/mistakes_test.yaml", FAILING_SUITE),
    ])
}

#[test]
fn passing_suites_end_with_the_summary_line() {
    let dir = passing();
    let r = run(dir.path(), &["test"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    insta::assert_snapshot!(r.stdout, @r"
    ok   demo/basics_test.yaml (demo basics): 6 cases
    6 passed, 0 failed
    ");
}

#[test]
fn failing_cases_get_one_line_each_with_the_explanation() {
    let dir = failing();
    let r = run(dir.path(), &["test", "demo"]);
    assert_eq!(r.code, 4, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.stdout.lines().last(), Some("7 passed, 2 failed"));
    let fail = r.stdout.lines().find(|l| l.contains("someone else's device")).unwrap();
    for needle in [
        "principal tom",
        "action update",
        "resource theirs",
        "expected allow",
        "got deny (condition_false)",
        "condition does not hold",
    ] {
        assert!(fail.contains(needle), "missing {needle} in {fail}");
    }
    insta::assert_snapshot!("failing_human", r.stdout);
}

#[test]
fn the_filter_selects_cases_by_name() {
    let dir = failing();
    let r = run(dir.path(), &["test", "--filter", "technician matrix"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(r.stdout.lines().last(), Some("4 passed, 0 failed"));
    let none = run(dir.path(), &["test", "--filter", "no such case"]);
    assert_eq!(none.code, 0);
    assert!(none.stdout.contains("no case name contains `no such case`"), "{}", none.stdout);
}

#[test]
fn suite_files_given_alone_run_against_their_folder() {
    let dir = failing();
    let r = run(dir.path(), &["test", "demo/basics_test.yaml"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.stdout.lines().last(), Some("6 passed, 0 failed"));
}

#[test]
fn junit_output_is_valid_xml_with_one_testsuite_per_file() {
    let dir = failing();
    let r = run(dir.path(), &["test", "--format", "junit"]);
    assert_eq!(r.code, 4);
    let mut reader = quick_xml::Reader::from_str(&r.stdout);
    reader.config_mut().check_end_names = true;
    let (mut suites, mut cases, mut failures, mut depth) = (Vec::new(), 0, Vec::new(), 0usize);
    let attr = |e: &quick_xml::events::BytesStart<'_>, name: &str| -> Option<String> {
        e.try_get_attribute(name)
            .unwrap()
            .map(|a| a.normalized_value(quick_xml::XmlVersion::Explicit1_0).unwrap().into_owned())
    };
    loop {
        match reader
            .read_event()
            .unwrap_or_else(|e| panic!("invalid XML at {}: {e}\n{}", reader.error_position(), r.stdout))
        {
            Event::Eof => break,
            Event::Start(e) if e.name().as_ref() == "testsuite" => {
                suites.push(attr(&e, "name").expect("testsuite has a name"));
                depth += 1;
            }
            Event::End(e) if e.name().as_ref() == "testsuite" => depth -= 1,
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == "testcase" => {
                cases += 1;
                assert!(attr(&e, "classname").is_some());
                assert!(depth > 0, "testcase outside a testsuite");
            }
            Event::Start(e) if e.name().as_ref() == "failure" => {
                failures.push(attr(&e, "message").expect("failure has a message"))
            }
            _ => {}
        }
    }
    assert_eq!(suites, ["demo basics", "demo mistakes"]);
    assert_eq!(cases, 9);
    assert_eq!(
        failures,
        ["expected allow, got deny (condition_false)", "expected deny (no_matching_grant), got deny (explicit_deny)"]
    );
    assert!(r.stdout.contains("technician deletes &lt;over the &quot;api&quot;&gt; &amp; more"), "names are escaped");
    assert!(r.stdout.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"rolescope\" tests=\"9\" failures=\"2\" errors=\"0\">"));
}

#[test]
fn tap_output_is_version_13_with_a_plan() {
    let dir = failing();
    let r = run(dir.path(), &["test", "--format", "tap"]);
    assert_eq!(r.code, 4);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"TAP version 13"));
    assert_eq!(lines.get(1), Some(&"1..9"));
    let points: Vec<&&str> = lines.iter().filter(|l| l.starts_with("ok ") || l.starts_with("not ok ")).collect();
    assert_eq!(points.len(), 9);
    for (i, l) in points.iter().enumerate() {
        let n = l.trim_start_matches("not ").trim_start_matches("ok ");
        assert!(n.starts_with(&format!("{} - ", i + 1)), "points are numbered in order: {l}");
    }
    assert_eq!(points.iter().filter(|l| l.starts_with("not ok")).count(), 2);
    insta::assert_snapshot!("failing_tap", r.stdout);
}

#[test]
fn json_output_carries_every_case() {
    let dir = failing();
    let r = run(dir.path(), &["test", "--format", "json", "--coverage"]);
    assert_eq!(r.code, 4);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["passed"], 7);
    assert_eq!(v["failed"], 2);
    let suites = v["policies"][0]["suites"].as_array().unwrap();
    assert_eq!(suites.len(), 2);
    assert_eq!(suites[1]["cases"].as_array().unwrap().len(), 3);
    assert_eq!(suites[1]["cases"][1]["reason"], "condition_false");
    assert!(v["policies"][0]["coverage"]["percent"].is_number());
}

#[test]
fn coverage_lists_what_no_case_exercised() {
    let dir = passing();
    let r = run(dir.path(), &["test", "--coverage"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("coverage of `demo` (demo): "), "{}", r.stdout);
    assert!(r.stdout.contains("%"), "{}", r.stdout);
    // Nobody holds `auditor` in the suite, and no case tries a delete over the API.
    assert!(r.stdout.contains("demo/roles.yaml:31:3  role `auditor`"), "{}", r.stdout);
    assert!(r.stdout.contains("demo/roles.yaml:28:9  deny of `technician` on device"), "{}", r.stdout);
    assert_eq!(r.stdout.lines().last(), Some("6 passed, 0 failed"));
}

#[test]
fn a_policy_that_does_not_compile_exits_3() {
    let dir = fixture(&[
        ("demo/roles.yaml", &POLICY.replace("held_at: [msp]", "held_at: [mps]")),
        ("demo/basics_test.yaml", SUITE),
    ]);
    let r = run(dir.path(), &["test"]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("RS011"), "{}", r.stderr);
    assert!(r.stdout.contains("FAIL demo: the policy does not compile ("), "{}", r.stdout);
    let junit = run(dir.path(), &["test", "--format", "junit"]);
    assert!(junit.stdout.contains("<error message=\"the policy in demo does not compile: "), "{}", junit.stdout);
}

#[test]
fn a_malformed_suite_fails_with_its_diagnostics() {
    let suite = SUITE.replace("[tom, elsewhere, deny, deny]", "[bob, elsewhere, deny, deny]");
    let dir = fixture(&[("demo/roles.yaml", POLICY), ("demo/basics_test.yaml", &suite)]);
    let r = run(dir.path(), &["test"]);
    assert_eq!(r.code, 4, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("unknown principal fixture `bob`"), "{}", r.stderr);
    assert!(r.stderr.contains("demo/basics_test.yaml:27:"), "{}", r.stderr);
    assert!(r.stdout.contains("1 error in test suites"), "{}", r.stdout);
    let junit = run(dir.path(), &["test", "--format", "junit"]);
    assert!(
        junit.stdout.contains("<testsuites name=\"rolescope\" tests=\"5\" failures=\"0\" errors=\"1\">"),
        "the malformed suite counts as one erroring testcase:\n{}",
        junit.stdout
    );
    assert!(
        junit.stdout.contains("<error message=\"1 problem(s) in the suite\" type=\"invalid_suite\">"),
        "{}",
        junit.stdout
    );
    let tap = run(dir.path(), &["test", "--format", "tap"]);
    assert!(tap.stdout.contains("not ok 5 - suite demo/basics_test.yaml is well-formed"), "{}", tap.stdout);
}

#[test]
fn a_policy_without_suites_is_reported() {
    let dir = fixture(&[("demo/roles.yaml", POLICY)]);
    let r = run(dir.path(), &["test"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("policy `demo` has no *_test.yaml suite"), "{}", r.stdout);
    assert_eq!(r.stdout.lines().last(), Some("0 passed, 0 failed"));
}

#[test]
fn min_coverage_fails_below_the_share_and_coverage_is_in_json_and_junit() {
    let dir = passing();
    let json = run(dir.path(), &["test", "--format", "json", "demo"]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    let percent = v["policies"][0]["coverage"]["percent"].as_f64().expect("coverage in the JSON output");
    assert!(percent > 0.0 && percent < 100.0, "{percent}");
    let junit = run(dir.path(), &["test", "--format", "junit", "demo"]);
    assert!(
        junit.stdout.contains(&format!("<property name=\"coverage.percent\" value=\"{percent:.1}\"/>")),
        "{}",
        junit.stdout
    );
    let below = run(dir.path(), &["test", "--min-coverage", "100", "demo"]);
    assert_eq!(below.code, 4, "{}{}", below.stdout, below.stderr);
    assert!(below.stderr.contains("below --min-coverage 100%"), "{}", below.stderr);
    let above = run(dir.path(), &["test", "--min-coverage", &format!("{}", percent.floor()), "demo"]);
    assert_eq!(above.code, 0, "{}{}", above.stdout, above.stderr);
    assert_eq!(run(dir.path(), &["test", "--min-coverage", "120", "demo"]).code, 2);
}
