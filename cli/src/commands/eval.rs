//! `rolescope eval` and `rolescope explain`: decide one request.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rolescope_engine::{Explanation, Policy, Request, Source};

use crate::args::{EvalArgs, ExplainArgs, ExplainFormat, RouteArgs};
use crate::commands::ask;
use crate::discover::{FileKind, display, folder, kind_of, read_sources, read_text};
use crate::error::{CliError, Exit};
use crate::input::build_request;
use crate::render::{SourceMap, render_all};
use crate::style::{Paint, Style};
use crate::{emit, emit_err};

/// Load `--policy` (repeatable): folders of role files and role files compile together (a
/// policy and its overlays), or one bundle. `Ok(None)` means the policy is invalid and its
/// diagnostics were printed.
pub(crate) fn load_policy(paths: &[PathBuf], style: &Style) -> Result<Option<Policy>, CliError> {
    let mut map = SourceMap::new();
    let mut sources: Vec<Source> = Vec::new();
    let mut bundle: Option<String> = None;
    for path in paths {
        if !path.exists() {
            return Err(CliError::NotFound(path.clone()));
        }
        if path.is_dir() {
            let input = folder(path)?;
            if input.roles.is_empty() {
                return Err(CliError::usage_with(
                    format!("`{}` holds no role files", display(path)),
                    "give the folder that directly holds the policy's .yaml files",
                ));
            }
            sources.extend(read_sources(&input.roles)?);
            continue;
        }
        let text = read_text(path)?;
        if let Some(files) = bundle_files(&text) {
            map.add(&files);
            bundle = Some(text);
            continue;
        }
        if kind_of(path) != FileKind::Role {
            return Err(CliError::usage_with(
                format!("`{}` is not a role file or a bundle", display(path)),
                "give a policy folder, a .yaml role file or a bundle from `rolescope build`",
            ));
        }
        sources.push(Source::new(display(path), text));
    }
    let result = match bundle {
        Some(_) if paths.len() > 1 => {
            return Err(CliError::usage_with(
                "a bundle is a whole policy: give it alone",
                "to add an overlay, give the policy's folders and the overlay's (`--policy base --policy overlay`)",
            ));
        }
        Some(text) => Policy::from_bundle(&text),
        None => {
            map.add(&sources);
            Policy::compile(&sources)
        }
    };
    match result {
        Ok(p) => Ok(Some(p)),
        Err(e) => {
            emit_err(&render_all(style, e.diagnostics(), &map));
            Ok(None)
        }
    }
}

/// A principal fixture of the suites next to the `--policy` folders (or files), for
/// `--principal ID` when no principal of that id is filed with the policy.
pub(crate) fn suite_principal(
    policy: &Policy,
    paths: &[PathBuf],
    id: &str,
) -> Result<Option<rolescope_engine::Principal>, CliError> {
    for path in paths {
        let dir = if path.is_dir() { path.clone() } else { path.parent().map(Path::to_owned).unwrap_or_default() };
        let Ok(input) = folder(if dir.as_os_str().is_empty() { Path::new(".") } else { &dir }) else { continue };
        for suite in read_sources(&input.suites)? {
            // a suite the policy cannot read is reported by `check`; here it only has no fixtures
            let Ok(fixtures) = policy.suite_fixtures(&suite) else { continue };
            if let Some(p) = fixtures.principals.into_iter().find(|p| p.id == id) {
                return Ok(Some(p));
            }
        }
    }
    Ok(None)
}

/// The files inside a bundle (for showing diagnostics), or `None` when `text` is no bundle.
fn bundle_files(text: &str) -> Option<Vec<Source>> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let format = v.get("format")?.as_str()?;
    if !format.starts_with("rolescope-bundle/") {
        return None;
    }
    let files = v.get("files")?.as_array()?;
    Some(files.iter().filter_map(|f| Some(Source::new(f.get("name")?.as_str()?, f.get("text")?.as_str()?))).collect())
}

fn prepare(args: &crate::args::RequestArgs, style: &Style) -> Result<Option<(Policy, Request)>, CliError> {
    // Read the request first: a usage error should not wait for a compile.
    let mut req = build_request(args)?;
    let Some(policy) = load_policy(&args.policy, style)? else { return Ok(None) };
    if let rolescope_engine::PrincipalRef::Id(id) = &req.principal
        && policy.principal(id).is_none()
    {
        match suite_principal(&policy, &args.policy, id)? {
            Some(p) => req.principal = rolescope_engine::PrincipalRef::Inline(p),
            // the engine decides: `unknown_principal` (a deny is a value); the hint goes to stderr
            None => emit_err(&style.render_error(&unknown_principal(&policy, &args.policy, id)?)),
        }
    }
    Ok(Some((policy, req)))
}

/// `--principal ID` names nothing: the error lists the closest ids (filed or suite fixtures).
pub(crate) fn unknown_principal(policy: &Policy, paths: &[PathBuf], id: &str) -> Result<CliError, CliError> {
    let mut known: Vec<String> = policy.principal_ids().map(str::to_owned).collect();
    for path in paths {
        let dir = if path.is_dir() { path.clone() } else { path.parent().map(Path::to_owned).unwrap_or_default() };
        let Ok(input) = folder(if dir.as_os_str().is_empty() { Path::new(".") } else { &dir }) else { continue };
        for suite in read_sources(&input.suites)? {
            if let Ok(f) = policy.suite_fixtures(&suite) {
                known.extend(f.principals.into_iter().map(|p| p.id));
            }
        }
    }
    let close = rolescope_engine::did_you_mean(id, known.iter().map(String::as_str));
    Ok(CliError::usage_with(
        format!("no principal `{id}` is filed with policy `{}` or in its suites", policy.name()),
        close.unwrap_or_else(|| "file it under `principals:`, declare it in a suite, or give --principal-json".into()),
    ))
}

/// `--policy` is required but for `explain --log`.
fn require_policy(policy: &[PathBuf]) -> Result<(), CliError> {
    if policy.is_empty() {
        return Err(CliError::usage("the following required arguments were not provided: --policy <PATH>"));
    }
    Ok(())
}

pub(crate) fn run_eval(args: &EvalArgs, style: &Style) -> Result<Exit, CliError> {
    let r = &args.request;
    require_policy(&r.policy)?;
    if args.batch.is_some() || r.assign.is_some() || r.invariants.is_some() {
        let Some(policy) = load_policy(&r.policy, style)? else { return Ok(Exit::InvalidPolicy) };
        if let Some(input) = &args.batch {
            return ask::batch(&policy, input);
        }
        if let Some(spec) = &r.assign {
            let a = ask::assign(&policy, r, spec)?;
            emit(&format!("{}\n", serde_json::to_string_pretty(&a.json)?))?;
            return Ok(if args.exit_code && !a.allowed { Exit::Denied } else { Exit::Ok });
        }
        if let Some(file) = &r.invariants {
            let (json, lines) = ask::invariants(&policy, file)?;
            emit(&format!("{}\n", serde_json::to_string_pretty(&json)?))?;
            return Ok(if args.exit_code && !lines.is_empty() { Exit::InvalidPolicy } else { Exit::Ok });
        }
    }
    let Some((policy, req)) = prepare(&args.request, style)? else { return Ok(Exit::InvalidPolicy) };
    let report = policy.check_report(&req);
    emit(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
    Ok(if args.exit_code && !report.allowed { Exit::Denied } else { Exit::Ok })
}

pub(crate) fn run_route(args: &RouteArgs, style: &Style) -> Result<Exit, CliError> {
    let Some((method, target)) = args.request.trim().split_once(' ') else {
        return Err(CliError::usage_with(
            format!("`{}` is not a request line", args.request),
            "give `METHOD /target`, e.g. \"GET /api/v1/orgs/o1/devices\"",
        ));
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    for h in &args.headers {
        let Some((name, value)) = h.split_once(':') else {
            return Err(CliError::usage(format!("--header `{h}` is not `NAME: VALUE`")));
        };
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let principal: Option<rolescope_engine::Principal> = match &args.principal_json {
        None => None,
        Some(json) => Some(
            serde_json::from_str(json)
                .map_err(|e| CliError::usage(format!("--principal-json is not a principal: {e}")))?,
        ),
    };
    let Some(policy) = load_policy(&args.policy, style)? else { return Ok(Exit::InvalidPolicy) };
    if !policy.has_routes() {
        return Err(CliError::usage_with(
            format!("policy `{}` has no route table", policy.name()),
            "add a `routes:` section (see policies/README.md)",
        ));
    }
    let header_refs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let req = rolescope_engine::HttpRequest { method, target: target.trim(), headers: &header_refs };
    let prepared = match (&args.principal, &principal) {
        (Some(id), _) => match policy.principal(id) {
            Some(p) => Some(std::borrow::Cow::Borrowed(p)),
            None => match suite_principal(&policy, &args.policy, id)? {
                Some(p) => match policy.prepare_principal(&p) {
                    Ok(pp) => Some(std::borrow::Cow::Owned(pp)),
                    Err(e) => return Err(CliError::usage(format!("principal `{id}` of the suites: {e}"))),
                },
                None => return Err(unknown_principal(&policy, &args.policy, id)?),
            },
        },
        (None, Some(p)) => match policy.prepare_principal(p) {
            Ok(pp) => Some(std::borrow::Cow::Owned(pp)),
            Err(e) => return Err(CliError::usage(format!("--principal-json: {e}"))),
        },
        (None, None) => None,
    };
    let decision = policy.authorize_http(prepared.as_deref(), &req);
    emit(&format!("{}\n", serde_json::to_string_pretty(&decision)?))?;
    Ok(if args.exit_code && !decision.allowed() { Exit::Denied } else { Exit::Ok })
}

pub(crate) fn run_explain(args: &ExplainArgs, style: &Style) -> Result<Exit, CliError> {
    let r = &args.request;
    if let (Some(log), Some(id)) = (&args.log, &args.id) {
        return crate::commands::replay::run_explain_log(
            log,
            id,
            args.bundles.as_deref(),
            &r.policy,
            args.format,
            style,
        );
    }
    require_policy(&r.policy)?;
    if r.assign.is_some() || r.invariants.is_some() {
        let Some(policy) = load_policy(&r.policy, style)? else { return Ok(Exit::InvalidPolicy) };
        let (json, text) = match (&r.assign, &r.invariants) {
            (Some(spec), _) => {
                let a = ask::assign(&policy, r, spec)?;
                let verdict = if a.allowed { style.out(Paint::Green, "ALLOW") } else { style.out(Paint::Red, "DENY") };
                let reason = a.json.get("reason").and_then(serde_json::Value::as_str).unwrap_or("").to_owned();
                (a.json, format!("{verdict} ({reason}): {}\n", a.text))
            }
            (None, Some(file)) => {
                let (json, lines) = ask::invariants(&policy, file)?;
                let text = if lines.is_empty() {
                    format!("{} every invariant of `{}` holds\n", style.out(Paint::Green, "ok"), policy.name())
                } else {
                    lines.iter().map(|l| format!("{}\n", style.out(Paint::Red, l))).collect()
                };
                (json, text)
            }
            (None, None) => return Err(CliError::usage("give --assign ROLE@SCOPE or --invariants FILE")),
        };
        match args.format {
            ExplainFormat::Json => emit(&format!("{}\n", serde_json::to_string_pretty(&json)?))?,
            ExplainFormat::Human => emit(&text)?,
        }
        return Ok(Exit::Ok);
    }
    let Some((policy, req)) = prepare(&args.request, style)? else { return Ok(Exit::InvalidPolicy) };
    let ex = policy.explain(&req);
    match args.format {
        ExplainFormat::Json => emit(&format!("{}\n", serde_json::to_string_pretty(&ex)?))?,
        ExplainFormat::Human => emit(&explain_text(&policy, &req, &ex, style))?,
    }
    Ok(Exit::Ok)
}

fn principal_label(req: &Request) -> String {
    match &req.principal {
        rolescope_engine::PrincipalRef::Id(id) => format!("`{id}` (filed with the policy)"),
        rolescope_engine::PrincipalRef::Inline(p) if p.id.is_empty() => "(inline, no id)".to_owned(),
        rolescope_engine::PrincipalRef::Inline(p) => format!("`{}` (inline)", p.id),
    }
}

/// The explanation as readable text: the verdict, the request, then each step with where
/// the rule or role it concerns is written.
pub(crate) fn explain_text(policy: &Policy, req: &Request, ex: &Explanation, style: &Style) -> String {
    let d = &ex.decision;
    let mut x = String::new();
    let verdict = if d.allowed { style.out(Paint::Green, "ALLOW") } else { style.out(Paint::Red, "DENY") };
    let _ = writeln!(x, "{verdict} ({}): {}", d.reason, d.explanation);
    x.push('\n');
    let r = &req.resource;
    let id = if r.id.is_empty() { String::new() } else { format!(" `{}`", r.id) };
    let _ = writeln!(x, "  policy     {}", policy.name());
    let _ = writeln!(x, "  principal  {}", principal_label(req));
    let _ = writeln!(x, "  action     {}", req.action);
    let _ = writeln!(x, "  resource   {}{id} at `{}`", r.kind, r.scope);
    if !r.attributes.is_empty() {
        let _ = writeln!(x, "             {}", serde_json::Value::Object(r.attributes.clone()));
    }
    if !req.context.is_empty() {
        let _ = writeln!(x, "  context    {}", serde_json::Value::Object(req.context.clone()));
    }
    if !d.matched.is_empty() {
        x.push_str("\ndecided by:\n");
        for m in &d.matched {
            let role =
                m.role.as_deref().map(|r| format!(" of role `{r}`")).unwrap_or_else(|| " (policy-wide)".to_owned());
            let via = m.assignment.as_deref().map(|a| format!(" via {a}")).unwrap_or_default();
            let _ = writeln!(x, "  {}{role}{via}  {}", m.effect, style.out(Paint::Dim, &m.source));
            if let Some(c) = &m.condition {
                let _ = writeln!(x, "    when {c}");
            }
            if let Some(desc) = &m.description {
                let _ = writeln!(x, "    {desc}");
            }
        }
    }
    if !ex.steps.is_empty() {
        x.push_str("\nsteps:\n");
        let width = ex.steps.iter().map(|s| s.step.len()).max().unwrap_or(0);
        for (i, s) in ex.steps.iter().enumerate() {
            let _ = write!(x, "  {:>2}. {:<width$}  {}", i + 1, s.step, s.message);
            if !s.outcome.is_empty() && !s.message.contains(&s.outcome.replace('_', " ")) {
                let _ = write!(x, " [{}]", s.outcome);
            }
            x.push('\n');
            if let Some(src) = &s.source {
                let _ = writeln!(x, "      {:<width$}  {}", "", style.out(Paint::Dim, &format!("at {src}")));
            }
        }
    }
    x
}
