//! TAP version 13: one test point per case, a YAML block under each failure; a policy that
//! does not compile and a malformed suite are failing points too.

use std::fmt::Write as _;

use crate::commands::test::{PolicyRun, outcome};

/// A TAP description: `#` would start a directive, and a newline would end the line.
fn description(s: &str) -> String {
    s.replace('\\', "\\\\").replace('#', "\\#").replace(['\n', '\r'], " ")
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

enum Point<'a> {
    Case(&'a PolicyRun, &'a str, &'a rolescope_engine::CaseResult),
    Invalid(&'a PolicyRun),
    BadSuite(&'a str, Vec<String>),
}

/// Render the whole run.
pub(crate) fn render(runs: &[PolicyRun]) -> String {
    let mut points = Vec::new();
    for r in runs {
        if !r.compiled() {
            points.push(Point::Invalid(r));
            continue;
        }
        for s in &r.suites {
            for c in &s.report.cases {
                points.push(Point::Case(r, &s.report.suite, c));
            }
            let errors: Vec<String> = s.errors().map(ToString::to_string).collect();
            if !errors.is_empty() {
                points.push(Point::BadSuite(&s.report.file, errors));
            }
        }
    }
    let mut x = String::from("TAP version 13\n");
    let _ = writeln!(x, "1..{}", points.len());
    for (i, p) in points.iter().enumerate() {
        let n = i + 1;
        match p {
            Point::Case(_, suite, c) if c.passed => {
                let _ = writeln!(x, "ok {n} - {}", description(&format!("{suite}: {}", c.name)));
            }
            Point::Case(r, suite, c) => {
                let _ = writeln!(x, "not ok {n} - {}", description(&format!("{suite}: {}", c.name)));
                x.push_str("  ---\n");
                let _ = writeln!(x, "  message: {}", quoted(&outcome(c)));
                x.push_str("  severity: fail\n");
                let _ = writeln!(x, "  at: {}", quoted(&c.source));
                if let Some(name) = &r.name {
                    let _ = writeln!(x, "  policy: {}", quoted(name));
                }
                let _ = writeln!(x, "  kind: {}", quoted(&c.kind));
                for (k, v) in [("principal", &c.principal), ("action", &c.action), ("resource", &c.resource)] {
                    if !v.is_empty() {
                        let _ = writeln!(x, "  {k}: {}", quoted(v));
                    }
                }
                let _ = writeln!(x, "  expected: {}", quoted(&c.expected));
                if let Some(r) = &c.expected_reason {
                    let _ = writeln!(x, "  expected_reason: {}", quoted(r));
                }
                let _ = writeln!(x, "  got: {}", quoted(&c.got));
                if !c.reason.is_empty() {
                    let _ = writeln!(x, "  reason: {}", quoted(&c.reason));
                }
                let _ = writeln!(x, "  explanation: {}", quoted(&c.explanation));
                x.push_str("  ...\n");
            }
            Point::Invalid(r) => {
                let _ = writeln!(x, "not ok {n} - {}", description(&format!("policy in {} compiles", r.label)));
                x.push_str("  ---\n");
                x.push_str("  message: \"the policy does not compile\"\n  severity: fail\n  diagnostics:\n");
                for d in r.diagnostics.iter().filter(|d| d.is_error()) {
                    let _ = writeln!(x, "    - {}", quoted(&d.to_string()));
                }
                x.push_str("  ...\n");
            }
            Point::BadSuite(file, errors) => {
                let _ = writeln!(x, "not ok {n} - {}", description(&format!("suite {file} is well-formed")));
                x.push_str("  ---\n");
                x.push_str("  message: \"the suite has errors\"\n  severity: fail\n  diagnostics:\n");
                for e in errors {
                    let _ = writeln!(x, "    - {}", quoted(e));
                }
                x.push_str("  ...\n");
            }
        }
    }
    x
}

#[cfg(test)]
mod tests {
    #[test]
    fn descriptions_escape_directives() {
        assert_eq!(super::description("a # b\nc"), "a \\# b c");
    }
}
