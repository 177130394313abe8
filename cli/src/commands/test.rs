//! `rolescope test`: run the suites of each policy.

use rolescope_engine::{CaseResult, Coverage, CoverageTracker, Diagnostic, Policy, SuiteReport};
use serde_json::json;

use crate::args::{TestArgs, TestFormat};
use crate::commands::{junit, plural, tap};
use crate::discover::{discover, read_sources};
use crate::error::{CliError, Exit};
use crate::render::{SourceMap, render_all};
use crate::style::{Paint, Style};
use crate::{emit, emit_err};

/// One policy's run: compile diagnostics, or its suites' results.
pub(crate) struct PolicyRun {
    /// Folder (for display).
    pub(crate) label: String,
    /// Policy name, when it compiled.
    pub(crate) name: Option<String>,
    /// Compile errors (and warnings, when it failed).
    pub(crate) diagnostics: Vec<Diagnostic>,
    pub(crate) suites: Vec<SuiteRun>,
    pub(crate) coverage: Option<Coverage>,
    pub(crate) sources: SourceMap,
}

impl PolicyRun {
    pub(crate) fn compiled(&self) -> bool {
        self.name.is_some()
    }
}

/// One suite file's run.
pub(crate) struct SuiteRun {
    /// The report, with only the cases that pass `--filter`.
    pub(crate) report: SuiteReport,
    /// Problems in the suite itself (unknown fixture, malformed case).
    pub(crate) diagnostics: Vec<Diagnostic>,
}

impl SuiteRun {
    pub(crate) fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }
}

/// Totals over a run.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Totals {
    pub(crate) passed: usize,
    pub(crate) failed: usize,
    /// Suite problems (malformed suites).
    pub(crate) suite_errors: usize,
    /// Policies that do not compile.
    pub(crate) invalid: usize,
}

pub(crate) fn totals(runs: &[PolicyRun]) -> Totals {
    let mut t = Totals::default();
    for r in runs {
        if !r.compiled() {
            t.invalid += 1;
        }
        for s in &r.suites {
            t.suite_errors += s.errors().count();
            for c in &s.report.cases {
                if c.passed {
                    t.passed += 1;
                } else {
                    t.failed += 1;
                }
            }
        }
    }
    t
}

pub(crate) fn run(args: &TestArgs, style: &Style) -> Result<Exit, CliError> {
    let inputs = discover(&args.paths)?;
    let mut runs = Vec::new();
    for input in &inputs {
        let sources = read_sources(&input.roles)?;
        let suites = read_sources(&input.suites)?;
        let mut map = SourceMap::new();
        map.add(&sources);
        map.add(&suites);
        let policy = match Policy::compile(&sources) {
            Ok(p) => p,
            Err(e) => {
                runs.push(PolicyRun {
                    label: input.label.clone(),
                    name: None,
                    diagnostics: e.diagnostics().to_vec(),
                    suites: Vec::new(),
                    coverage: None,
                    sources: map,
                });
                continue;
            }
        };
        let mut tracker = CoverageTracker::new();
        let mut suite_runs = Vec::new();
        for s in &suites {
            let (mut report, diagnostics) = policy.run_suite(s, &mut tracker);
            if let Some(f) = &args.filter {
                report.cases.retain(|c| c.name.contains(f.as_str()));
            }
            suite_runs.push(SuiteRun { report, diagnostics });
        }
        // JSON and JUnit always carry it; text only when asked for
        let wanted =
            args.coverage || args.min_coverage.is_some() || matches!(args.format, TestFormat::Json | TestFormat::Junit);
        let coverage = (wanted && !suites.is_empty()).then(|| tracker.report(&policy));
        runs.push(PolicyRun {
            label: input.label.clone(),
            name: Some(policy.name().to_owned()),
            diagnostics: Vec::new(),
            suites: suite_runs,
            coverage,
            sources: map,
        });
    }

    let t = totals(&runs);
    if args.format != TestFormat::Json {
        for r in &runs {
            emit_err(&render_all(style, &r.diagnostics, &r.sources));
            for s in &r.suites {
                emit_err(&render_all(style, &s.diagnostics, &r.sources));
            }
        }
    }
    match args.format {
        TestFormat::Human => emit(&human(&runs, t, style, args))?,
        TestFormat::Json => emit(&format!("{}\n", serde_json::to_string_pretty(&as_json(&runs, t))?))?,
        TestFormat::Junit => emit(&junit::render(&runs, t))?,
        TestFormat::Tap => emit(&tap::render(&runs))?,
    }
    if args.coverage && matches!(args.format, TestFormat::Junit | TestFormat::Tap) {
        emit_err(
            &runs
                .iter()
                .filter_map(|r| r.coverage.as_ref().map(|c| coverage_text(&r.label, c, style)))
                .collect::<String>(),
        );
    }
    let mut below = 0;
    if let Some(min) = args.min_coverage {
        for r in &runs {
            if let Some(c) = r.coverage.as_ref().filter(|c| c.percent < min) {
                below += 1;
                emit_err(&format!(
                    "coverage of `{}` ({}) is {:.1}%, below --min-coverage {min}%\n",
                    c.policy, r.label, c.percent
                ));
            }
        }
    }
    Ok(if t.invalid > 0 {
        Exit::InvalidPolicy
    } else if t.failed > 0 || t.suite_errors > 0 || below > 0 {
        Exit::TestFailures
    } else {
        Exit::Ok
    })
}

/// `expected deny (explicit_deny), got allow (allowed)`.
pub(crate) fn outcome(c: &CaseResult) -> String {
    let want = match &c.expected_reason {
        Some(r) => format!("{} ({r})", c.expected),
        None => c.expected.clone(),
    };
    let got = if c.reason.is_empty() { c.got.clone() } else { format!("{} ({})", c.got, c.reason) };
    if c.kind == "invariants" {
        format!("expected violations {want}, got {got}")
    } else {
        format!("expected {want}, got {got}")
    }
}

/// `principal ana, action view, resource dev1` (or the assign / invariants equivalent).
pub(crate) fn subject(c: &CaseResult) -> String {
    match c.kind.as_str() {
        "assign" => format!("principal {}, assign role {} at {}", c.principal, c.action, c.resource),
        "invariants" => format!("principals [{}]", c.principal),
        _ => format!("principal {}, action {}, resource {}", c.principal, c.action, c.resource),
    }
}

fn human(runs: &[PolicyRun], t: Totals, style: &Style, args: &TestArgs) -> String {
    let mut out = String::new();
    for r in runs {
        let Some(name) = &r.name else {
            out.push_str(&format!(
                "{} {}: the policy does not compile ({})\n",
                style.out(Paint::Red, "FAIL"),
                r.label,
                plural(r.diagnostics.iter().filter(|d| d.is_error()).count(), "error")
            ));
            continue;
        };
        if r.suites.is_empty() {
            out.push_str(&format!(
                "{} {}: policy `{name}` has no *_test.yaml suite\n",
                style.out(Paint::Yellow, "none"),
                r.label
            ));
            continue;
        }
        for s in &r.suites {
            let failed = s.report.cases.iter().filter(|c| !c.passed).count();
            let errors = s.errors().count();
            let total = s.report.cases.len();
            let problems =
                if errors > 0 { format!(", {} in the suite", plural(errors, "error")) } else { String::new() };
            if failed == 0 && errors == 0 {
                out.push_str(&format!(
                    "{} {} ({}): {}\n",
                    style.out(Paint::Green, "ok  "),
                    s.report.file,
                    s.report.suite,
                    plural(total, "case")
                ));
            } else {
                out.push_str(&format!(
                    "{} {} ({}): {failed} of {} failed{problems}\n",
                    style.out(Paint::Red, "FAIL"),
                    s.report.file,
                    s.report.suite,
                    plural(total, "case")
                ));
            }
            for c in s.report.cases.iter().filter(|c| !c.passed) {
                out.push_str(&format!(
                    "  {} {} {}: {}: {}: {}\n",
                    style.out(Paint::Red, "FAIL"),
                    c.source,
                    style.out(Paint::Bold, &format!("`{}`", c.name)),
                    subject(c),
                    outcome(c),
                    c.explanation
                ));
            }
        }
        if let Some(cov) = &r.coverage {
            out.push_str(&coverage_text(&r.label, cov, style));
        }
    }
    if let Some(f) = &args.filter
        && t.passed + t.failed == 0
    {
        out.push_str(&format!("no case name contains `{f}`\n"));
    }
    if t.suite_errors > 0 {
        out.push_str(&format!("{} in test suites (see above)\n", plural(t.suite_errors, "error")));
    }
    if t.invalid > 0 {
        out.push_str(&format!(
            "{} not compile (see above)\n",
            if t.invalid == 1 { "1 policy does".to_owned() } else { format!("{} policies do", t.invalid) }
        ));
    }
    out.push_str(&format!("{} passed, {} failed\n", t.passed, t.failed));
    out
}

/// The coverage of one policy as text.
pub(crate) fn coverage_text(label: &str, c: &Coverage, style: &Style) -> String {
    let mut out = format!(
        "coverage of `{}` ({label}): {:.1}% (roles {}/{}, rules {}/{}, conditions seen both ways {}/{})\n",
        c.policy,
        c.percent,
        c.roles_covered,
        c.roles_total,
        c.rules_covered,
        c.rules_total,
        c.conditions_both_ways,
        c.conditions_total
    );
    if !c.uncovered.is_empty() {
        out.push_str("  never exercised:\n");
        for u in &c.uncovered {
            let what = match u.what.as_str() {
                "role" => format!("role `{}`", u.name),
                "condition" => format!("condition of {}", u.name),
                _ => u.name.clone(),
            };
            out.push_str(&format!("    {}  {}\n", style.out(Paint::Dim, &u.source), what));
        }
    }
    out
}

fn as_json(runs: &[PolicyRun], t: Totals) -> serde_json::Value {
    let policies: Vec<_> = runs
        .iter()
        .map(|r| {
            json!({
                "path": r.label,
                "policy": r.name,
                "compiled": r.compiled(),
                "diagnostics": r.diagnostics,
                "suites": r.suites.iter().map(|s| json!({
                    "suite": s.report.suite,
                    "file": s.report.file,
                    "passed": s.report.cases.iter().filter(|c| c.passed).count(),
                    "failed": s.report.cases.iter().filter(|c| !c.passed).count(),
                    "cases": s.report.cases,
                    "diagnostics": s.diagnostics,
                })).collect::<Vec<_>>(),
                "coverage": r.coverage,
            })
        })
        .collect();
    json!({
        "policies": policies,
        "passed": t.passed,
        "failed": t.failed,
        "suite_errors": t.suite_errors,
        "invalid_policies": t.invalid,
    })
}
