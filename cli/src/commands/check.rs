//! `rolescope check`: validate role files.

use rolescope_engine::{Diagnostic, InvariantViolation, Policy, Principal};
use serde_json::json;

use crate::args::{CheckArgs, CheckFormat};
use crate::commands::plural;
use crate::discover::{discover, read_sources};
use crate::error::{CliError, Exit};
use crate::input::load_principals;
use crate::render::{SourceMap, render_all};
use crate::style::{Paint, Style};
use crate::{emit, emit_err};

struct Checked {
    label: String,
    files: Vec<String>,
    policy: Option<Policy>,
    diagnostics: Vec<Diagnostic>,
    violations: Vec<InvariantViolation>,
    sources: SourceMap,
}

pub(crate) fn run(args: &CheckArgs, style: &Style) -> Result<Exit, CliError> {
    let inputs = discover(&args.paths)?;
    if inputs.is_empty() {
        return Err(CliError::usage_with(
            format!(
                "no role files found in {}",
                args.paths.iter().map(|p| format!("`{}`", crate::discover::display(p))).collect::<Vec<_>>().join(", ")
            ),
            "role files end in .yaml, .yml or .json (suites in _test.yaml are not role files)",
        ));
    }
    let principals: Option<Vec<Principal>> = match &args.assignments {
        Some(p) if !p.exists() => return Err(CliError::NotFound(p.clone())),
        Some(p) => Some(load_principals(p)?),
        None => None,
    };

    let mut checked = Vec::new();
    for input in &inputs {
        let sources = read_sources(&input.roles)?;
        let mut map = SourceMap::new();
        map.add(&sources);
        let files = sources.iter().map(|s| s.name().to_owned()).collect();
        let (policy, diagnostics, violations) = match Policy::compile(&sources) {
            Ok(policy) => {
                let violations = match principals.as_deref().map(|ps| policy.check_invariants(ps)) {
                    None => Vec::new(),
                    Some(Ok(v)) => v,
                    Some(Err(e)) => {
                        return Err(CliError::usage_with(
                            format!("cannot check the invariants of `{}`: {}", policy.name(), e.message()),
                            "an invariant check reads every principal of the assignments file or fails",
                        ));
                    }
                };
                let mut warnings = policy.warnings().to_vec();
                // the suites next to the policy are checked too: fixtures, cases, actions
                for s in &read_sources(&input.suites)? {
                    map.add(std::slice::from_ref(s));
                    warnings.extend(policy.check_suite(s));
                }
                (Some(policy), warnings, violations)
            }
            Err(e) => (None, e.diagnostics().to_vec(), Vec::new()),
        };
        checked.push(Checked { label: input.label.clone(), files, policy, diagnostics, violations, sources: map });
    }

    let errors: usize = checked.iter().map(|c| c.diagnostics.iter().filter(|d| d.is_error()).count()).sum();
    let warnings: usize = checked.iter().map(|c| c.diagnostics.iter().filter(|d| !d.is_error()).count()).sum();
    let violations: usize = checked.iter().map(|c| c.violations.len()).sum();
    let invalid =
        checked.iter().filter(|c| c.policy.is_none() || c.diagnostics.iter().any(Diagnostic::is_error)).count();

    match args.format {
        CheckFormat::Json => {
            let policies: Vec<_> = checked
                .iter()
                .map(|c| {
                    json!({
                        "path": c.label,
                        "files": c.files,
                        "valid": c.policy.is_some(),
                        "policy": c.policy.as_ref().map(Policy::name),
                        "revision": c.policy.as_ref().map(Policy::revision),
                        "roles": c.policy.as_ref().map(|p| p.role_names().count()),
                        "rules": c.policy.as_ref().map(Policy::rule_count),
                        "diagnostics": c.diagnostics,
                        "violations": c.violations,
                    })
                })
                .collect();
            let doc = json!({ "policies": policies, "errors": errors, "warnings": warnings, "violations": violations });
            emit(&format!("{}\n", serde_json::to_string_pretty(&doc)?))?;
        }
        CheckFormat::Human => {
            let mut out = String::new();
            for c in &checked {
                emit_err(&render_all(style, &c.diagnostics, &c.sources));
                let e = c.diagnostics.iter().filter(|d| d.is_error()).count();
                let w = c.diagnostics.len() - e;
                let warn = if w > 0 { format!(", {}", plural(w, "warning")) } else { String::new() };
                match &c.policy {
                    Some(p) if e > 0 => out.push_str(&format!(
                        "{} {}: policy `{}` compiles, its suites have {}{warn}\n",
                        style.out(Paint::Red, "invalid"),
                        c.label,
                        p.name(),
                        plural(e, "error")
                    )),
                    Some(p) => out.push_str(&format!(
                        "{} {}: policy `{}`, {}, {}{warn}\n",
                        style.out(Paint::Green, "ok     "),
                        c.label,
                        p.name(),
                        plural(p.role_names().count(), "role"),
                        plural(p.rule_count(), "rule"),
                    )),
                    None => out.push_str(&format!(
                        "{} {}: {}{warn}\n",
                        style.out(Paint::Red, "invalid"),
                        c.label,
                        plural(e, "error")
                    )),
                }
                for v in &c.violations {
                    let at = v.scope.as_deref().map(|s| format!(" at `{s}`")).unwrap_or_default();
                    out.push_str(&format!(
                        "  {} invariant `{}`{at}: {} of {} required: {}\n",
                        style.out(Paint::Red, "violated"),
                        v.invariant,
                        v.found,
                        v.required,
                        v.message
                    ));
                }
            }
            let mut summary = format!(
                "{}: {} valid, {} invalid",
                plural(checked.len(), "policy").replace("policys", "policies"),
                checked.len() - invalid,
                invalid
            );
            summary.push_str(&format!("; {}, {}", plural(errors, "error"), plural(warnings, "warning")));
            if principals.is_some() {
                summary.push_str(&format!("; {}", plural(violations, "invariant violation")));
            }
            out.push_str(&summary);
            out.push('\n');
            emit(&out)?;
        }
    }
    let failing = invalid > 0 || errors > 0 || violations > 0 || (args.deny_warnings && warnings > 0);
    Ok(if failing { Exit::InvalidPolicy } else { Exit::Ok })
}
