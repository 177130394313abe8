//! The questions `eval` and `explain` ask besides one request: many requests at once
//! (`eval --batch`, JSON lines in and out), delegation (`--assign ROLE@SCOPE`) and invariants
//! (`--invariants FILE`). Every answer is the engine's.

use std::io::{BufRead as _, BufReader, BufWriter, Write as _};
use std::path::Path;

use rolescope_engine::{AssignRequest, Policy, PrincipalRef, Request};
use serde_json::json;

use crate::args::RequestArgs;
use crate::commands::eval::{suite_principal, unknown_principal};
use crate::discover::display;
use crate::error::{CliError, Exit};
use crate::input::load_principals;

/// `eval --batch FILE` (`-`: standard input): one request per line (JSON), one decision
/// report per line out, in order. A line that is not a request answers `{"line": N, "error":
/// ...}` and the rest still run; any such line makes the exit code 2 at the end.
pub(crate) fn batch(policy: &Policy, input: &Path) -> Result<Exit, CliError> {
    let reader: Box<dyn std::io::Read> = if input.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        if !input.exists() {
            return Err(CliError::NotFound(input.to_owned()));
        }
        Box::new(std::fs::File::open(input).map_err(|source| CliError::Read { path: input.to_owned(), source })?)
    };
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut bad = 0usize;
    let mut line = String::new();
    let mut reader = BufReader::with_capacity(1 << 16, reader);
    let mut n = 0usize;
    loop {
        line.clear();
        let read = reader.read_line(&mut line).map_err(|source| CliError::Read { path: input.to_owned(), source })?;
        if read == 0 {
            break;
        }
        n += 1;
        if line.trim().is_empty() {
            continue;
        }
        let answer = match Request::from_json(line.trim().as_bytes()) {
            Ok(req) => serde_json::to_string(&policy.check_report(&req))?,
            Err(e) => {
                bad += 1;
                json!({ "line": n, "error": format!("not a request: {e}") }).to_string()
            }
        };
        let written = out.write_all(answer.as_bytes()).and_then(|()| out.write_all(b"\n"));
        if let Err(e) = written {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(Exit::Ok);
            }
            return Err(CliError::Output(e));
        }
    }
    match out.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(CliError::Output(e)),
        _ => {}
    }
    if bad > 0 {
        crate::emit_err(&format!(
            "{bad} line(s) of `{}` were not requests (answered with an error line)\n",
            display(input)
        ));
        return Ok(Exit::Usage);
    }
    Ok(Exit::Ok)
}

/// The principal of a delegation question: `--principal ID` (filed, or a suite fixture) or
/// `--principal-json`, or the request file's `principal`.
fn principal(policy: &Policy, args: &RequestArgs) -> Result<PrincipalRef, CliError> {
    if let Some(json) = &args.principal_json {
        let p = serde_json::from_str(json)
            .map_err(|e| CliError::usage(format!("--principal-json is not a principal: {e}")))?;
        return Ok(PrincipalRef::Inline(p));
    }
    let Some(id) = &args.principal else {
        return Err(CliError::usage_with(
            "a delegation question needs its principal",
            "give --principal ID or --principal-json JSON",
        ));
    };
    if policy.principal(id).is_some() {
        return Ok(PrincipalRef::Id(id.clone()));
    }
    match suite_principal(policy, &args.policy, id)? {
        Some(p) => Ok(PrincipalRef::Inline(p)),
        None => Err(unknown_principal(policy, &args.policy, id)?),
    }
}

/// `--assign ROLE@SCOPE`: may the principal assign that role there?
pub(crate) fn assign(policy: &Policy, args: &RequestArgs, spec: &str) -> Result<AssignAnswer, CliError> {
    let Some((role, scope)) = spec.split_once('@') else {
        return Err(CliError::usage_with(
            format!("--assign `{spec}` is not `ROLE@SCOPE`"),
            "e.g. --assign technician@msp:acme/org:o1",
        ));
    };
    let mut context = serde_json::Map::new();
    for kv in &args.context {
        let (k, v) = crate::input::parse_kv("--context", kv)?;
        context.insert(k, v);
    }
    let req =
        AssignRequest { principal: principal(policy, args)?, role: role.to_owned(), scope: scope.to_owned(), context };
    let decision = policy.can_assign(&req);
    Ok(AssignAnswer { json: serde_json::to_value(&decision)?, allowed: decision.allowed, text: decision.explanation })
}

/// The answer to a delegation question, as data and as a sentence.
pub(crate) struct AssignAnswer {
    pub(crate) json: serde_json::Value,
    pub(crate) allowed: bool,
    pub(crate) text: String,
}

/// `--invariants FILE`: which invariants the principals in FILE break (an unreadable principal
/// is an error naming it: exit 2).
pub(crate) fn invariants(policy: &Policy, file: &Path) -> Result<(serde_json::Value, Vec<String>), CliError> {
    if !file.exists() {
        return Err(CliError::NotFound(file.to_owned()));
    }
    let principals = load_principals(file)?;
    let violations = policy.check_invariants(&principals).map_err(|e| {
        CliError::usage_with(
            format!("cannot check the invariants over `{}`: {}", display(file), e.message()),
            "an invariant check reads every principal or fails",
        )
    })?;
    let lines = violations
        .iter()
        .map(|v| {
            let at = v.scope.as_deref().map(|s| format!(" at `{s}`")).unwrap_or_default();
            format!("violated invariant `{}`{at}: {} of {} required: {}", v.invariant, v.found, v.required, v.message)
        })
        .collect();
    Ok((json!({ "violations": violations, "principals": principals.len() }), lines))
}
