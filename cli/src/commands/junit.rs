//! JUnit XML for CI test reports: one `<testsuite>` per suite file (and one for each policy
//! that does not compile), one `<testcase>` per case, `<failure>` for failed cases and
//! `<error>` for problems in the suite itself.

use std::fmt::Write as _;

use crate::commands::test::{PolicyRun, Totals, outcome, subject};

/// Escape text for XML attributes and content; characters XML 1.0 cannot carry become U+FFFD.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(ch),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The line of a `file:line:col` location.
fn line_of(source: &str) -> Option<u32> {
    let mut parts = source.rsplitn(3, ':');
    let _col = parts.next()?;
    parts.next()?.parse().ok()
}

/// Render the whole run.
pub(crate) fn render(runs: &[PolicyRun], t: Totals) -> String {
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    // Every malformed suite and every policy that does not compile is one erroring testcase.
    let bad_suites = runs.iter().flat_map(|r| &r.suites).filter(|s| s.errors().next().is_some()).count();
    let errors = bad_suites + t.invalid;
    let tests = t.passed + t.failed + errors;
    let _ =
        writeln!(x, "<testsuites name=\"rolescope\" tests=\"{tests}\" failures=\"{}\" errors=\"{errors}\">", t.failed);
    for r in runs {
        let classname = escape(r.name.as_deref().unwrap_or(&r.label));
        if !r.compiled() {
            let messages: Vec<String> =
                r.diagnostics.iter().filter(|d| d.is_error()).map(ToString::to_string).collect();
            let _ = writeln!(x, "  <testsuite name=\"{}\" tests=\"1\" failures=\"0\" errors=\"1\">", escape(&r.label));
            let _ = writeln!(x, "    <testcase name=\"policy compiles\" classname=\"{classname}\">");
            let _ = writeln!(
                x,
                "      <error message=\"{}\" type=\"invalid_policy\">{}</error>",
                escape(&format!("the policy in {} does not compile: {} error(s)", r.label, messages.len())),
                escape(&messages.join("\n"))
            );
            let _ = writeln!(x, "    </testcase>");
            let _ = writeln!(x, "  </testsuite>");
            continue;
        }
        for s in &r.suites {
            let failed = s.report.cases.iter().filter(|c| !c.passed).count();
            let errors: Vec<String> = s.errors().map(ToString::to_string).collect();
            let tests = s.report.cases.len() + usize::from(!errors.is_empty());
            let _ = writeln!(
                x,
                "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failed}\" errors=\"{}\" file=\"{}\">",
                escape(&s.report.suite),
                usize::from(!errors.is_empty()),
                escape(&s.report.file)
            );
            if let Some(cov) = &r.coverage {
                // the policy's coverage over all its suites, as properties CI tools show
                x.push_str("    <properties>\n");
                for (name, value) in [
                    ("coverage.percent", format!("{:.1}", cov.percent)),
                    ("coverage.roles", format!("{}/{}", cov.roles_covered, cov.roles_total)),
                    ("coverage.rules", format!("{}/{}", cov.rules_covered, cov.rules_total)),
                    ("coverage.conditions_both_ways", format!("{}/{}", cov.conditions_both_ways, cov.conditions_total)),
                ] {
                    let _ = writeln!(x, "      <property name=\"{name}\" value=\"{value}\"/>");
                }
                x.push_str("    </properties>\n");
            }
            for c in &s.report.cases {
                let _ = write!(
                    x,
                    "    <testcase name=\"{}\" classname=\"{classname}\" file=\"{}\"",
                    escape(&c.name),
                    escape(&s.report.file)
                );
                if let Some(line) = line_of(&c.source) {
                    let _ = write!(x, " line=\"{line}\"");
                }
                if c.passed {
                    x.push_str("/>\n");
                    continue;
                }
                x.push_str(">\n");
                let body = format!("{}\n{}\n{}\nat {}", subject(c), outcome(c), c.explanation, c.source);
                let _ = writeln!(
                    x,
                    "      <failure message=\"{}\" type=\"{}\">{}</failure>",
                    escape(&outcome(c)),
                    escape(&c.kind),
                    escape(&body)
                );
                x.push_str("    </testcase>\n");
            }
            if !errors.is_empty() {
                let _ = writeln!(
                    x,
                    "    <testcase name=\"suite is well-formed\" classname=\"{classname}\" file=\"{}\">",
                    escape(&s.report.file)
                );
                let _ = writeln!(
                    x,
                    "      <error message=\"{}\" type=\"invalid_suite\">{}</error>",
                    escape(&format!("{} problem(s) in the suite", errors.len())),
                    escape(&errors.join("\n"))
                );
                x.push_str("    </testcase>\n");
            }
            x.push_str("  </testsuite>\n");
        }
    }
    x.push_str("</testsuites>\n");
    x
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup_and_control_characters() {
        assert_eq!(super::escape("a<b & \"c\" 'd'>\u{1}"), "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;\u{FFFD}");
    }
}
