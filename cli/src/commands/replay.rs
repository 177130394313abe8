//! `rolescope explain --log` and `rolescope replay`: decision records (`rolescope-decision/1`,
//! written by the gateway and the edge worker, gateway/README.md) decided again offline.
//!
//! A record's `input` holds what its request was decided on (the principal as decided, the
//! request headers the route table reads); with the recorded method and raw target, the
//! engine's `authorize_http` decides it again under any policy.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};

use rolescope_engine::{
    HttpDecision, HttpRequest, Policy, PreparedPrincipal, Principal, PrincipalRef, Reason, Request,
};
use serde::Deserialize;

use crate::args::{ExplainFormat, ReplayArgs};
use crate::commands::eval::{explain_text, load_policy};
use crate::discover::display;
use crate::error::{CliError, Exit};
use crate::style::{Paint, Style};
use crate::{emit, emit_err};

const SCHEMA: &str = "rolescope-decision/1";

/// One record, as much of it as explaining and replaying read (other members are ignored).
#[derive(Debug, Deserialize)]
pub(crate) struct Record {
    schema: String,
    decision_id: String,
    #[serde(default)]
    time: Option<String>,
    request: RecordRequest,
    route: Option<String>,
    route_miss: Option<String>,
    principal: Option<String>,
    allowed: bool,
    reason: String,
    #[serde(default)]
    cause: Option<String>,
    #[serde(default)]
    detail: Option<String>,
    revision: Option<String>,
    #[serde(default)]
    input: Option<Input>,
}

#[derive(Debug, Deserialize)]
struct RecordRequest {
    method: String,
    target: String,
}

#[derive(Debug, Deserialize)]
struct Input {
    principal: Option<Box<serde_json::value::RawValue>>,
    #[serde(default)]
    headers: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    erased: Vec<String>,
    #[serde(default)]
    masked: Vec<String>,
}

/// Read one line as a record; the error says what is wrong with it.
fn parse(line: &str) -> Result<Record, String> {
    let r: Record = serde_json::from_str(line).map_err(|e| format!("not a decision record: {e}"))?;
    if r.schema != SCHEMA {
        return Err(format!("schema `{}` (this rolescope reads `{SCHEMA}`)", r.schema));
    }
    Ok(r)
}

/// Why a record cannot be decided again, or `None` when it can.
fn unreplayable(r: &Record) -> Option<String> {
    if r.route_miss.as_deref() == Some("not_reached") {
        // refused before the route table: a token, the directory, no policy, an engine fault
        return Some(format!("not_reached: {}", r.cause.as_deref().unwrap_or(&r.reason)));
    }
    let input = r.input.as_ref()?;
    let principal_masked = input
        .erased
        .iter()
        .chain(&input.masked)
        .any(|p| p.starts_with("/input/principal") && !p.starts_with("/input/principal/attributes"));
    principal_masked.then(|| "masked: the principal's id, status or assignments".to_owned())
}

/// The recorded headers, as the engine reads them (a repeated header was recorded as a list).
fn headers(input: &Input) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    for (k, v) in &input.headers {
        match v {
            serde_json::Value::String(s) => out.push((k.as_str(), s.as_str())),
            serde_json::Value::Array(list) => {
                out.extend(list.iter().filter_map(serde_json::Value::as_str).map(|s| (k.as_str(), s)));
            }
            _ => {}
        }
    }
    out
}

/// The principal of a record's input (`Ok(None)`: none was given to the engine).
fn principal_of(input: &Input) -> Result<Option<Principal>, String> {
    match &input.principal {
        None => Ok(None),
        Some(raw) if raw.get() == "null" => Ok(None),
        Some(raw) => serde_json::from_str(raw.get()).map(Some).map_err(|e| format!("input.principal: {e}")),
    }
}

/// Prepared principals by their recorded JSON (a log holds few principals, many requests).
#[derive(Default)]
struct Principals {
    prepared: HashMap<String, Result<PreparedPrincipal, Reason>>,
}

/// Decide a replayable record under `policy`, as the gateway did: the engine's route table and
/// decision (`reason_of` names the reason as the record would).
fn redecide(policy: &Policy, r: &Record, cache: &mut Principals) -> Result<HttpDecision, String> {
    let input = r.input.as_ref().ok_or("no input recorded")?;
    let hs = headers(input);
    let req = HttpRequest { method: &r.request.method, target: &r.request.target, headers: &hs };
    let prepared = match &input.principal {
        Some(raw) if raw.get() != "null" => {
            let key = raw.get();
            if !cache.prepared.contains_key(key) {
                let p: Principal = serde_json::from_str(key).map_err(|e| format!("input.principal: {e}"))?;
                cache.prepared.insert(key.to_owned(), policy.prepare_principal(&p).map_err(|e| e.reason()));
            }
            match cache.prepared.get(key) {
                Some(Ok(p)) => Some(p),
                // refused by the engine: routed anonymously, denied for the principal (as every
                // host does; `reason_of` names the principal's reason)
                Some(Err(_)) | None => None,
            }
        }
        _ => None,
    };
    Ok(policy.authorize_http(prepared, &req))
}

/// The reason code of a replayed decision, as the record would say it: a principal the engine
/// refuses is denied with its reason, a subject decided anonymously (not filed) is
/// `unknown_principal`, an anonymous caller on a protected route `missing_token`.
fn reason_of(d: &HttpDecision, r: &Record, cache: &Principals) -> String {
    let input = r.input.as_ref();
    if !d.allowed() && d.reason() == Reason::Unauthenticated {
        let refused = input
            .and_then(|i| i.principal.as_ref())
            .and_then(|raw| cache.prepared.get(raw.get()))
            .and_then(|p| p.as_ref().err().copied());
        if let Some(reason) = refused {
            return reason.as_str().to_owned();
        }
        if r.principal.is_some() && input.is_some_and(|i| i.principal.as_ref().is_none_or(|p| p.get() == "null")) {
            return Reason::UnknownPrincipal.as_str().to_owned();
        }
        return "missing_token".to_owned();
    }
    d.reason().as_str().to_owned()
}

// ---------------------------------------------------------------- replay

/// One group of flips: route, role, reason.
#[derive(Debug, Default, serde::Serialize)]
struct Group {
    route: String,
    role: String,
    reason: String,
    count: u64,
    examples: Vec<String>,
}

#[derive(Debug, Default, serde::Serialize)]
struct Report {
    log: String,
    policy: String,
    revision: String,
    records: u64,
    replayed: u64,
    unchanged: u64,
    allow_to_deny: u64,
    deny_to_allow: u64,
    /// Still denied, for another reason.
    reason_changed: u64,
    not_replayable: BTreeMap<String, u64>,
    malformed: Vec<Malformed>,
    allow_to_deny_by: Vec<Group>,
    deny_to_allow_by: Vec<Group>,
    reason_changed_by: Vec<Group>,
}

#[derive(Debug, serde::Serialize)]
struct Malformed {
    line: u64,
    error: String,
}

const EXAMPLES: usize = 3;

fn add(groups: &mut BTreeMap<(String, String, String), Group>, key: (String, String, String), id: &str) {
    let g = groups.entry(key.clone()).or_insert_with(|| Group {
        route: key.0,
        role: key.1,
        reason: key.2,
        ..Group::default()
    });
    g.count += 1;
    if g.examples.len() < EXAMPLES {
        g.examples.push(id.to_owned());
    }
}

/// The role that decided under the candidate (a grant for an allow, a deny rule for a deny),
/// else the roles the principal holds.
fn role_of(policy: &Policy, r: &Record, allowed: bool) -> String {
    let Some(input) = &r.input else { return "-".into() };
    let Ok(Some(p)) = principal_of(input) else { return "(anonymous)".into() };
    let hs = headers(input);
    let req = HttpRequest { method: &r.request.method, target: &r.request.target, headers: &hs };
    let held = || {
        let mut roles: Vec<&str> = p.assignments.iter().map(|a| a.role.as_str()).collect();
        roles.sort_unstable();
        roles.dedup();
        if roles.is_empty() { "(no roles)".to_owned() } else { roles.join("+") }
    };
    let Ok(routed) = policy.route(&req) else { return held() };
    let (Some(action), Some(resource)) = (routed.action(), routed.resource()) else { return held() };
    let question = Request {
        principal: PrincipalRef::Inline(p.clone()),
        action: action.to_owned(),
        resource: resource.clone(),
        context: routed.context().cloned().unwrap_or_default(),
    };
    let report = policy.check_report(&question);
    let effect = if allowed { "grant" } else { "deny" };
    report.matched.iter().find(|m| m.effect == effect).and_then(|m| m.role.clone()).unwrap_or_else(held)
}

pub(crate) fn run_replay(args: &ReplayArgs, style: &Style) -> Result<Exit, CliError> {
    let Some(policy) = load_policy(&args.policy, style)? else { return Ok(Exit::InvalidPolicy) };
    let file = std::fs::File::open(&args.log).map_err(|source| CliError::Read { path: args.log.clone(), source })?;
    let mut report = Report {
        log: display(&args.log),
        policy: policy.name().to_owned(),
        revision: policy.revision().to_owned(),
        ..Report::default()
    };
    let mut cache = Principals::default();
    let (mut a2d, mut d2a, mut changed) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    for (i, line) in std::io::BufReader::with_capacity(1 << 20, file).lines().enumerate() {
        let n = i as u64 + 1;
        let line = line.map_err(|source| CliError::Read { path: args.log.clone(), source })?;
        if line.trim().is_empty() {
            continue;
        }
        let r = match parse(&line) {
            Ok(r) => r,
            Err(error) => {
                report.malformed.push(Malformed { line: n, error });
                continue;
            }
        };
        report.records += 1;
        if r.input.is_none() {
            *report.not_replayable.entry("no input recorded".into()).or_default() += 1;
            continue;
        }
        if let Some(why) = unreplayable(&r) {
            *report.not_replayable.entry(why).or_default() += 1;
            continue;
        }
        let d = match redecide(&policy, &r, &mut cache) {
            Ok(d) => d,
            Err(error) => {
                report.malformed.push(Malformed { line: n, error });
                report.records -= 1;
                continue;
            }
        };
        report.replayed += 1;
        let reason = reason_of(&d, &r, &cache);
        let route = d.route().or(r.route.as_deref()).unwrap_or("(no route)").to_owned();
        match (r.allowed, d.allowed()) {
            (true, false) => {
                report.allow_to_deny += 1;
                add(&mut a2d, (route, role_of(&policy, &r, false), reason), &r.decision_id);
            }
            (false, true) => {
                report.deny_to_allow += 1;
                add(&mut d2a, (route, role_of(&policy, &r, true), r.reason.clone()), &r.decision_id);
            }
            (false, false) if reason != r.reason => {
                report.reason_changed += 1;
                add(
                    &mut changed,
                    (route, role_of(&policy, &r, false), format!("{} -> {reason}", r.reason)),
                    &r.decision_id,
                );
            }
            _ => report.unchanged += 1,
        }
    }
    let sorted = |m: BTreeMap<_, Group>| {
        let mut v: Vec<Group> = m.into_values().collect();
        v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.route.cmp(&b.route)));
        v
    };
    report.allow_to_deny_by = sorted(a2d);
    report.deny_to_allow_by = sorted(d2a);
    report.reason_changed_by = sorted(changed);
    for m in &report.malformed {
        emit_err(&format!("{}:{}: {}\n", display(&args.log), m.line, m.error));
    }
    match args.format {
        ExplainFormat::Json => emit(&format!("{}\n", serde_json::to_string_pretty(&report)?))?,
        ExplainFormat::Human => emit(&replay_text(&report, style))?,
    }
    let flips = report.allow_to_deny + report.deny_to_allow + report.reason_changed;
    Ok(if !report.malformed.is_empty() {
        Exit::Usage
    } else if args.fail_on_change && flips > 0 {
        Exit::Denied
    } else {
        Exit::Ok
    })
}

fn replay_text(r: &Report, style: &Style) -> String {
    let mut x = String::new();
    let _ = writeln!(
        x,
        "replayed {} of {} records of {} under `{}` ({})",
        r.replayed,
        r.records,
        r.log,
        r.policy,
        short(&r.revision)
    );
    let verdict = if r.allow_to_deny + r.deny_to_allow + r.reason_changed == 0 {
        style.out(Paint::Green, "no decision changes")
    } else {
        style.out(Paint::Red, "decisions change")
    };
    let _ = writeln!(
        x,
        "{verdict}: {} allow -> deny, {} deny -> allow, {} deny reason changed, {} unchanged",
        r.allow_to_deny, r.deny_to_allow, r.reason_changed, r.unchanged
    );
    for (title, groups) in [
        ("allow -> deny", &r.allow_to_deny_by),
        ("deny -> allow", &r.deny_to_allow_by),
        ("deny reason changed", &r.reason_changed_by),
    ] {
        if groups.is_empty() {
            continue;
        }
        let _ = writeln!(x, "\n{title}:");
        for g in groups {
            let _ = writeln!(x, "  {:>6}  {}  role {}  reason {}", g.count, g.route, g.role, g.reason);
            let _ = writeln!(x, "          e.g. {}", g.examples.join(", "));
        }
    }
    if !r.not_replayable.is_empty() {
        let total: u64 = r.not_replayable.values().sum();
        let _ = writeln!(x, "\nnot replayable: {total}");
        for (why, n) in &r.not_replayable {
            let _ = writeln!(x, "  {n:>6}  {why}");
        }
    }
    if !r.malformed.is_empty() {
        let _ = writeln!(x, "\nmalformed lines: {} (listed on stderr)", r.malformed.len());
    }
    x
}

/// A revision for people: `sha256:` and the first 12 hex digits.
fn short(revision: &str) -> String {
    let (prefix, hex) = revision.split_once(':').unwrap_or(("", revision));
    let hex: String = hex.chars().take(12).collect();
    if prefix.is_empty() { hex } else { format!("{prefix}:{hex}") }
}

// ---------------------------------------------------------------- explain --log

/// Find decision `id` in `log`; malformed lines are counted, not fatal.
fn find(log: &Path, id: &str) -> Result<Record, CliError> {
    let file = std::fs::File::open(log).map_err(|source| CliError::Read { path: log.to_owned(), source })?;
    let mut malformed = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| CliError::Read { path: log.to_owned(), source })?;
        if !line.contains(id) {
            if !line.trim().is_empty() && parse(&line).is_err() {
                malformed.push(i + 1);
            }
            continue;
        }
        match parse(&line) {
            Ok(r) if r.decision_id == id => return Ok(r),
            Ok(_) => {}
            Err(e) => emit_err(&format!("{}:{}: {e}\n", display(log), i + 1)),
        }
    }
    let also = if malformed.is_empty() {
        String::new()
    } else {
        format!(" ({} malformed lines, e.g. line {})", malformed.len(), malformed.first().copied().unwrap_or(0))
    };
    Err(CliError::usage_with(
        format!("no decision `{id}` in `{}`{also}", display(log)),
        "the id is the `decision_id` of a record, also the response header `X-Rolescope-Decision-Id`",
    ))
}

/// The bundle of `revision` in `dir` (each `*.json` that is a bundle is read).
fn bundle_by_revision(dir: &Path, revision: &str) -> Result<Policy, CliError> {
    let rd = std::fs::read_dir(dir).map_err(|source| CliError::Read { path: dir.to_owned(), source })?;
    let mut paths: Vec<PathBuf> =
        rd.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "json")).collect();
    paths.sort();
    let mut seen = Vec::new();
    for path in paths {
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        if !text.contains(revision) && !text.contains("rolescope-bundle/") {
            continue;
        }
        if let Ok(p) = Policy::from_bundle(&text) {
            if p.revision() == revision {
                return Ok(p);
            }
            seen.push(format!("{} ({})", display(&path), short(p.revision())));
        }
    }
    Err(CliError::usage_with(
        format!("no bundle of revision `{revision}` in `{}`", display(dir)),
        if seen.is_empty() {
            "put the bundles you deploy there (`rolescope build -o DIR/NAME.json`), or give --policy".to_owned()
        } else {
            format!("bundles there: {}; or give --policy", seen.join(", "))
        },
    ))
}

pub(crate) fn run_explain_log(
    log: &Path,
    id: &str,
    bundles: Option<&Path>,
    policy: &[PathBuf],
    format: ExplainFormat,
    style: &Style,
) -> Result<Exit, CliError> {
    let r = find(log, id)?;
    let mut x = String::new();
    let verdict = if r.allowed { style.out(Paint::Green, "ALLOW") } else { style.out(Paint::Red, "DENY") };
    let _ = writeln!(
        x,
        "{verdict} ({}) decision {}{}",
        r.reason,
        r.decision_id,
        r.time.as_deref().map(|t| format!(" at {t}")).unwrap_or_default()
    );
    let _ = writeln!(x, "  request    {} {}", r.request.method, r.request.target);
    let _ =
        writeln!(x, "  route      {}", r.route.as_deref().unwrap_or_else(|| r.route_miss.as_deref().unwrap_or("-")));
    let _ = writeln!(x, "  principal  {}", r.principal.as_deref().unwrap_or("(none)"));
    let _ = writeln!(x, "  revision   {}", r.revision.as_deref().unwrap_or("(no bundle was in force)"));
    let mut json = serde_json::Map::new();
    json.insert("decision_id".into(), r.decision_id.clone().into());
    json.insert("allowed".into(), r.allowed.into());
    json.insert("reason".into(), r.reason.clone().into());
    json.insert("question_asked".into(), false.into());
    let no_question = |why: String, x: &mut String, json: &mut serde_json::Map<String, serde_json::Value>| {
        let _ = writeln!(x, "\nNo policy question was asked: {why}");
        json.insert("why".into(), why.into());
    };
    match r.route_miss.as_deref() {
        Some("not_reached") => {
            let why = match r.cause.as_deref() {
                Some(cause) => format!(
                    "the request was refused before the route table, by its token ({}, cause `{cause}`)",
                    r.reason
                ),
                None => format!("the request was refused before the route table (`{}`)", r.reason),
            };
            no_question(why, &mut x, &mut json);
            return finish(format, &x, &json);
        }
        Some("no_route") => {
            let why = format!(
                "no route of the policy matches `{} {}`{}",
                r.request.method,
                r.request.target,
                r.detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default()
            );
            no_question(why, &mut x, &mut json);
            return finish(format, &x, &json);
        }
        Some("invalid_path") => {
            let why = format!(
                "the target is refused by path normalization: {}",
                r.detail.as_deref().unwrap_or("an ambiguous path")
            );
            no_question(why, &mut x, &mut json);
            return finish(format, &x, &json);
        }
        _ => {}
    }
    let Some(input) = &r.input else {
        return Err(CliError::usage_with(
            format!("decision `{id}` has no input recorded (`decision_log.input.record` was off)"),
            "without the principal as decided it cannot be explained offline",
        ));
    };
    let policy = match (policy.is_empty(), bundles, r.revision.as_deref()) {
        (false, _, _) => match load_policy(policy, style)? {
            Some(p) => p,
            None => return Ok(Exit::InvalidPolicy),
        },
        (true, Some(dir), Some(rev)) => bundle_by_revision(dir, rev)?,
        (true, Some(_), None) => return Err(CliError::usage("the record names no revision: give --policy")),
        (true, None, _) => return Err(CliError::usage("give --bundles DIR (bundles by revision) or --policy")),
    };
    let Some(p) = principal_of(input).map_err(CliError::usage)? else {
        let why = if r.principal.is_some() {
            format!(
                "`{}` is not a principal of the policy (not filed in the bundle), so the route's question was not asked for anyone ({})",
                r.principal.as_deref().unwrap_or_default(),
                r.reason
            )
        } else {
            format!("the caller sent no token and the route needs a principal ({})", r.reason)
        };
        no_question(why, &mut x, &mut json);
        return finish(format, &x, &json);
    };
    let hs = headers(input);
    let req = HttpRequest { method: &r.request.method, target: &r.request.target, headers: &hs };
    let routed = policy.route(&req).map_err(|e| {
        CliError::usage(format!("policy `{}` routes this request differently now: {}", policy.name(), e.message()))
    })?;
    let (Some(action), Some(resource)) = (routed.action(), routed.resource()) else {
        no_question(format!("`{}` is a public route", routed.route()), &mut x, &mut json);
        return finish(format, &x, &json);
    };
    let question = Request {
        principal: PrincipalRef::Inline(p),
        action: action.to_owned(),
        resource: resource.clone(),
        context: routed.context().cloned().unwrap_or_default(),
    };
    let ex = policy.explain(&question);
    if ex.decision.allowed != r.allowed || ex.decision.reason.as_str() != r.reason {
        let _ = writeln!(
            x,
            "\n{} policy `{}` ({}) decides this {} ({}) now; the log says {} ({})",
            style.out(Paint::Red, "note:"),
            policy.name(),
            short(policy.revision()),
            if ex.decision.allowed { "allow" } else { "deny" },
            ex.decision.reason,
            if r.allowed { "allow" } else { "deny" },
            r.reason
        );
    }
    x.push('\n');
    x.push_str(&explain_text(&policy, &question, &ex, style));
    json.insert("question_asked".into(), true.into());
    json.insert("route".into(), routed.route().into());
    json.insert("explanation".into(), serde_json::to_value(&ex)?);
    finish(format, &x, &json)
}

fn finish(
    format: ExplainFormat,
    text: &str,
    json: &serde_json::Map<String, serde_json::Value>,
) -> Result<Exit, CliError> {
    match format {
        ExplainFormat::Json => emit(&format!("{}\n", serde_json::to_string_pretty(json)?))?,
        ExplainFormat::Human => emit(text)?,
    }
    Ok(Exit::Ok)
}
