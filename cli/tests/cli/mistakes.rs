//! The mistakes corpus (`tests/mistakes/`): each folder is a policy with suites that hold the
//! mistakes policy and test authors make, and `expected.txt`, what `rolescope check` and
//! `rolescope test` must say about them. Every diagnostic `check --deny-warnings` reports must
//! be expected (code, file:line:col, message, hint), every expected one reported, and the same
//! for the cases `test` fails. Run through the binary, as an author runs it.
//!
//! `expected.txt`, one line each (`#` starts a comment):
//! - `error|warning CODE FILE:LINE:COL | message part | hint part` (the hint part optional);
//! - `fail FILE | case name | explanation part`.

#![expect(clippy::expect_used, clippy::indexing_slicing, reason = "a test: a failure here is a test failure")]

use std::path::Path;

use crate::{root, run};

#[derive(Debug)]
struct Expected {
    line: usize,
    head: String,
    parts: Vec<String>,
}

fn expected(dir: &Path) -> Vec<Expected> {
    let text = std::fs::read_to_string(dir.join("expected.txt")).expect("expected.txt");
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| {
            let mut parts = l.split(" | ").map(|p| p.trim().to_owned());
            let head = parts.next().unwrap_or_default();
            Expected { line: i + 1, head, parts: parts.collect() }
        })
        .collect()
}

fn base(file: &str) -> &str {
    file.rsplit('/').next().unwrap_or(file)
}

/// What was reported, as (head, texts) pairs to match expectations against.
fn reported(dir: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let c = run(&root(), &["check", "--deny-warnings", "--format", "json", dir]);
    assert_eq!(c.code, 3, "`check --deny-warnings {dir}` must fail:\n{}\n{}", c.stdout, c.stderr);
    let doc: serde_json::Value = serde_json::from_str(&c.stdout).expect("check --format json");
    for p in doc["policies"].as_array().expect("policies") {
        for d in p["diagnostics"].as_array().expect("diagnostics") {
            let l = &d["location"];
            let head = format!(
                "{} {} {}:{}:{}",
                d["severity"].as_str().unwrap_or(""),
                d["code"].as_str().unwrap_or(""),
                base(l["file"].as_str().unwrap_or("")),
                l["line"],
                l["column"]
            );
            let texts =
                vec![d["message"].as_str().unwrap_or("").to_owned(), d["hint"].as_str().unwrap_or("").to_owned()];
            out.push((head, texts));
        }
    }
    let t = run(&root(), &["test", "--format", "json", dir]);
    let doc: serde_json::Value = serde_json::from_str(&t.stdout).expect("test --format json");
    for p in doc["policies"].as_array().expect("policies") {
        for s in p["suites"].as_array().into_iter().flatten() {
            for c in s["cases"].as_array().expect("cases").iter().filter(|c| c["passed"] == false) {
                let head = format!("fail {}", base(s["file"].as_str().unwrap_or("")));
                let texts = vec![
                    c["name"].as_str().unwrap_or("").to_owned(),
                    c["explanation"].as_str().unwrap_or("").to_owned(),
                ];
                out.push((head, texts));
            }
        }
    }
    out
}

fn matches(e: &Expected, (head, texts): &(String, Vec<String>)) -> bool {
    if *head != e.head {
        return false;
    }
    if e.head.starts_with("fail ") {
        // the case name exactly, then a part of the explanation
        return e.parts.first().is_some_and(|n| texts.first() == Some(n))
            && e.parts.get(1).is_none_or(|x| texts.get(1).is_some_and(|t| t.contains(x.as_str())));
    }
    e.parts.iter().zip(texts).all(|(want, got)| got.contains(want.as_str()))
}

#[test]
fn every_mistake_is_caught_where_it_is_written() {
    let dirs: Vec<_> = std::fs::read_dir(root().join("tests/mistakes"))
        .expect("tests/mistakes")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    assert!(!dirs.is_empty());
    let mut problems = Vec::new();
    for dir in dirs {
        let rel = dir.strip_prefix(root()).expect("under the root").display().to_string();
        let want = expected(&dir);
        let mut got = reported(&rel);
        for e in &want {
            match got.iter().position(|g| matches(e, g)) {
                Some(i) => {
                    got.remove(i);
                }
                None => problems.push(format!(
                    "{rel}/expected.txt:{}: not reported: {} | {}",
                    e.line,
                    e.head,
                    e.parts.join(" | ")
                )),
            }
        }
        for (head, texts) in got {
            problems.push(format!("{rel}: reported but not expected: {head} | {}", texts.join(" | ")));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn explain_names_the_attribute_a_condition_lacked() {
    let tech = r#"{"id": "t", "assignments": [{"role": "technician", "scope": "msp:acme/org:o1"}]}"#;
    let args = ["explain", "--policy", "tests/mistakes/lints", "--principal-json", tech, "--action", "delete"];
    let r =
        run(&root(), &[&args[..], &["--kind", "device", "--scope", "msp:acme/org:o1", "--resource-id", "d1"]].concat());
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("condition error (the request has no `principal.department`)"), "{}", r.stdout);
}
