//! The parity corpus every host runs: the check cases of every suite under `policies/` and
//! `tests/corpus/`, plus generated requests over the seed policies (a fixed-seed generator, so
//! every run and every host sees the same requests), each with the native engine's decision.
//!
//! `cargo run -p rolescope-parity` writes `target/parity/requests.jsonl` (one case a line:
//! `{policy, name, request, expected: {allowed, reason}}`) and `target/parity/bundles/<policy>.json`
//! (the bundle of each policy folder), for the Node, browser and edge hosts.

use std::fs;
use std::path::{Path, PathBuf};

use rolescope_engine::{HttpDecision, HttpRequest, Policy, Principal, PrincipalRef, Reason, Request, Resource, Source};
use serde::{Deserialize, Serialize};

/// A decision as hosts compare it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    /// Allowed or not.
    pub allowed: bool,
    /// The reason code.
    pub reason: Reason,
}

/// One parity case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// The policy folder, relative to the repository root (e.g. `policies/msp-panel`).
    pub policy: String,
    /// Case name (suite case name, or `generated #n`).
    pub name: String,
    /// The request.
    pub request: Request,
    /// The native engine's decision.
    pub expected: Expected,
}

/// A policy folder: its role files, compiled, and its bundle.
pub struct Folder {
    /// Relative path, e.g. `policies/msp-panel`.
    pub dir: String,
    /// Role files (named relative to the folder).
    pub sources: Vec<Source>,
    /// Suites (named relative to the folder).
    pub suites: Vec<Source>,
    /// The compiled policy.
    pub policy: Policy,
    /// The bundle JSON (`Policy::bundle`).
    pub bundle: String,
}

/// Errors while building the corpus.
#[derive(Debug)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

fn read_sorted(dir: &Path, want: impl Fn(&str) -> bool) -> Result<Vec<Source>, Error> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map_err(|e| Error(format!("{}: {e}", dir.display())))?
        .flatten()
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|n| want(n))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let text = fs::read_to_string(dir.join(&n)).map_err(|e| Error(format!("{n}: {e}")))?;
            Ok(Source::new(n, text))
        })
        .collect()
}

fn is_suite(n: &str) -> bool {
    n.ends_with("_test.yaml") || n.ends_with("_test.yml") || n.ends_with("_test.json")
}

fn is_role_file(n: &str) -> bool {
    (n.ends_with(".yaml") || n.ends_with(".yml") || n.ends_with(".json"))
        && !is_suite(n)
        && !n.ends_with(".schema.json")
}

/// Every policy folder under `root/policies` and `root/tests/corpus`.
pub fn folders(root: &Path) -> Result<Vec<Folder>, Error> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for base in ["policies", "tests/corpus"] {
        let Ok(rd) = fs::read_dir(root.join(base)) else { continue };
        dirs.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_dir() && !p.ends_with("schema")));
    }
    dirs.sort();
    let mut out = Vec::new();
    for d in dirs {
        let sources = read_sorted(&d, is_role_file)?;
        if sources.is_empty() {
            continue;
        }
        let suites = read_sorted(&d, is_suite)?;
        let rel = d.strip_prefix(root).unwrap_or(&d).display().to_string();
        let (policy, bundle) = Policy::bundle(&sources).map_err(|e| {
            Error(format!("{rel}: {}", e.diagnostics().iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")))
        })?;
        out.push(Folder { dir: rel, sources, suites, policy, bundle });
    }
    Ok(out)
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % (n as u64)) as usize }
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        let i = self.below(items.len());
        items.get(i)
    }
}

fn expected(policy: &Policy, req: &Request) -> Expected {
    let d = policy.check(req);
    Expected { allowed: d.allowed(), reason: d.reason() }
}

/// Replace the id of the second scope segment (the tenant, in every seed policy) so the
/// request lands in another tenant.
fn other_tenant(scope: &str) -> String {
    let mut parts: Vec<String> = scope.split('/').map(str::to_owned).collect();
    if let Some(seg) = parts.get_mut(1)
        && let Some((lvl, id)) = seg.split_once(':')
    {
        *seg = format!("{lvl}:{id}-other");
    }
    parts.join("/")
}

/// Generated requests over one folder's suite fixtures.
fn generate(folder: &Folder, count: usize, seed: u64) -> Result<Vec<Case>, Error> {
    let mut principals: Vec<Principal> = Vec::new();
    let mut resources: Vec<Resource> = Vec::new();
    let mut contexts = Vec::new();
    for s in &folder.suites {
        let fx = folder.policy.suite_fixtures(s).map_err(|d| {
            Error(format!("{}: {}", s.name(), d.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")))
        })?;
        principals.extend(fx.principals);
        resources.extend(fx.resources);
        contexts.extend(fx.contexts);
    }
    if principals.is_empty() || resources.is_empty() {
        return Ok(Vec::new());
    }
    let mut rng = Rng(seed | 1);
    let mut out = Vec::with_capacity(count);
    for n in 0..count {
        let (Some(p), Some(r)) = (rng.pick(&principals), rng.pick(&resources)) else { break };
        let mut p = p.clone();
        let mut r = r.clone();
        let actions: Vec<String> = folder.policy.actions_of(&r.kind).map(<[String]>::to_vec).unwrap_or_default();
        let mut action = rng.pick(&actions).cloned().unwrap_or_else(|| "view".into());
        // mutations that hosts must agree on too
        match rng.below(20) {
            0 => p.status = Some("suspended".into()),
            1 => r.scope = other_tenant(&r.scope),
            2 => action = format!("{action}_x"),
            3 => r.scope.push('/'),
            4 => r.kind = format!("{}_x", r.kind),
            _ => {}
        }
        let context = rng.pick(&contexts).cloned().unwrap_or_default();
        let request = Request { principal: PrincipalRef::Inline(p), action, resource: r, context };
        let expected = expected(&folder.policy, &request);
        out.push(Case { policy: folder.dir.clone(), name: format!("generated #{n}"), request, expected });
    }
    Ok(out)
}

/// The whole corpus: every suite's check cases in every folder, plus `generated_per_seed`
/// generated requests for each folder under `policies/`.
pub fn corpus(root: &Path, generated_per_seed: usize) -> Result<(Vec<Folder>, Vec<Case>), Error> {
    let folders = folders(root)?;
    let mut cases = Vec::new();
    for (i, f) in folders.iter().enumerate() {
        for s in &f.suites {
            let reqs = f.policy.suite_requests(s).map_err(|d| {
                Error(format!("{}: {}", s.name(), d.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")))
            })?;
            for (name, request) in reqs {
                let expected = expected(&f.policy, &request);
                cases.push(Case { policy: f.dir.clone(), name, request, expected });
            }
        }
        if f.dir.starts_with("policies/") {
            cases.extend(generate(f, generated_per_seed, 0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1))?);
        }
    }
    Ok((folders, cases))
}

/// An HTTP decision as hosts compare it: the verdict and what the request was mapped to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpExpected {
    /// Allowed or not.
    pub allowed: bool,
    /// The reason code.
    pub reason: Reason,
    /// A public route matched.
    pub public: bool,
    /// The matched route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The action asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The resource kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The resource scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The tenant segment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The resource id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    /// The rule that decided (its id in the policy's rule table).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<u32>,
    /// The assignment the deciding rule came through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment: Option<String>,
    /// A default deny's nearest assignments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nearest: Vec<String>,
}

impl From<&HttpDecision> for HttpExpected {
    fn from(d: &HttpDecision) -> Self {
        let own = |s: Option<&str>| s.map(str::to_owned);
        Self {
            allowed: d.allowed(),
            reason: d.reason(),
            public: d.public(),
            route: own(d.route()),
            action: own(d.action()),
            kind: own(d.kind()),
            scope: own(d.scope()),
            tenant: own(d.tenant()),
            resource_id: own(d.resource_id()),
            rule: d.rule(),
            assignment: own(d.assignment()),
            nearest: d.nearest().to_vec(),
        }
    }
}

/// One HTTP parity case: a request through the policy's route table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HttpCase {
    /// The policy folder.
    pub policy: String,
    /// Case name (suite case name, or `generated http #n`).
    pub name: String,
    /// The principal (absent: anonymous).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<Principal>,
    /// Method.
    pub method: String,
    /// Raw request target.
    pub target: String,
    /// Headers.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// The native engine's decision.
    pub expected: HttpExpected,
}

impl HttpCase {
    /// A case with the native engine's decision on `policy` as its expectation.
    fn decided(
        policy: &Policy,
        folder: &str,
        name: String,
        principal: Option<Principal>,
        method: String,
        target: String,
        headers: Vec<(String, String)>,
    ) -> Self {
        let expected = http_decision(policy, principal.as_ref(), &method, &target, &headers);
        Self { policy: folder.to_owned(), name, principal, method, target, headers, expected }
    }

    /// Decide this case natively on `policy`.
    pub fn decide(&self, policy: &Policy) -> HttpExpected {
        http_decision(policy, self.principal.as_ref(), &self.method, &self.target, &self.headers)
    }
}

fn http_decision(
    policy: &Policy,
    principal: Option<&Principal>,
    method: &str,
    target: &str,
    headers: &[(String, String)],
) -> HttpExpected {
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let req = HttpRequest { method, target, headers: &headers };
    let d = match principal {
        None => policy.authorize_http(None, &req),
        Some(p) => match policy.prepare_principal(p) {
            Ok(pp) => policy.authorize_http(Some(&pp), &req),
            Err(e) => {
                return HttpExpected {
                    allowed: false,
                    reason: e.reason(),
                    ..HttpExpected::from(&policy.authorize_http(None, &req))
                };
            }
        },
    };
    HttpExpected::from(&d)
}

/// Values path parameters take in generated HTTP cases: tenants of the seed suites, other
/// tenants, letter-case variants and ids that need encoding.
const PARAM_VALUES: [&str; 16] =
    ["o1", "o2", "o3", "O1", "c1", "c2", "c3", "s1", "s3", "web", "db", "ap-10", "m1", "w1", "x%20y", "%6f1"];

/// Ways a generated target is made hostile (applied to one segment or the whole target).
fn mutate(rng: &mut Rng, target: &str) -> String {
    let segs: Vec<&str> = target.split('/').collect();
    let i = 1 + rng.below(segs.len().saturating_sub(1).max(1));
    let with_seg = |f: &dyn Fn(&str) -> String| -> String {
        segs.iter().enumerate().map(|(j, s)| if j == i { f(s) } else { (*s).to_owned() }).collect::<Vec<_>>().join("/")
    };
    match rng.below(16) {
        0 => with_seg(&|s| format!("{s}/..")),
        1 => with_seg(&|s| format!("%2e%2e/{s}")),
        2 => with_seg(&|s| format!("{s}%2Fx")),
        3 => with_seg(&|s| format!("{s}%5cx")),
        4 => with_seg(&|s| format!("/{s}")),
        5 => with_seg(&|s| format!("{s};jsessionid=1")),
        6 => with_seg(&|s| format!("%252e%252e{s}")),
        7 => with_seg(&|s| s.to_uppercase()),
        8 => format!("{target}/"),
        9 => format!("{target}#frag"),
        10 => format!("{target}?a=1&a=2"),
        11 => with_seg(&|s| format!("{s}%00")),
        12 => with_seg(&|s| format!("{s}%c0%ae")),
        13 => format!("/{target}"),
        14 => with_seg(&|s| format!("{s}%zz")),
        _ => with_seg(&|_| ".".to_owned()),
    }
}

/// Generated HTTP cases over one folder's route table and suite principals.
fn generate_http(folder: &Folder, count: usize, seed: u64) -> Result<Vec<HttpCase>, Error> {
    let templates: Vec<String> = folder.policy.route_templates().map(str::to_owned).collect();
    if templates.is_empty() {
        return Ok(Vec::new());
    }
    let mut principals: Vec<Principal> = Vec::new();
    for s in &folder.suites {
        let fx = folder.policy.suite_fixtures(s).map_err(|d| {
            Error(format!("{}: {}", s.name(), d.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")))
        })?;
        principals.extend(fx.principals);
    }
    let methods = ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "get"];
    let mut rng = Rng(seed | 1);
    let mut out = Vec::with_capacity(count);
    for n in 0..count {
        let Some(t) = rng.pick(&templates) else { break };
        let (mut method, path) = t.split_once(' ').map(|(m, p)| (m.to_owned(), p.to_owned())).unwrap_or_default();
        let mut target: String = path
            .split('/')
            .map(|seg| {
                if seg.starts_with('{') {
                    rng.pick(&PARAM_VALUES).copied().unwrap_or("x").to_owned()
                } else {
                    seg.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        if rng.below(4) == 0 {
            target = mutate(&mut rng, &target);
        }
        if rng.below(10) == 0 {
            method = rng.pick(&methods).copied().unwrap_or("GET").to_owned();
        }
        let principal = if rng.below(12) == 0 { None } else { rng.pick(&principals).cloned() };
        out.push(HttpCase::decided(
            &folder.policy,
            &folder.dir,
            format!("generated http #{n}"),
            principal,
            method,
            target,
            Vec::new(),
        ));
    }
    Ok(out)
}

/// The HTTP corpus: every suite's `http` cases in every folder, plus `generated_per_seed`
/// generated requests (many of them hostile) for each folder under `policies/` with routes.
pub fn http_corpus(folders: &[Folder], generated_per_seed: usize) -> Result<Vec<HttpCase>, Error> {
    let mut out = Vec::new();
    for (i, f) in folders.iter().enumerate() {
        for s in &f.suites {
            let cases = f.policy.suite_http_cases(s).map_err(|d| {
                Error(format!("{}: {}", s.name(), d.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")))
            })?;
            for c in cases {
                let principal = match c.principal {
                    None => None,
                    Some(PrincipalRef::Inline(p)) => Some(p),
                    // principals filed with the policy: hosts look them up the same way
                    Some(PrincipalRef::Id(id)) => Some(Principal { id, ..Principal::default() }),
                };
                out.push(HttpCase::decided(&f.policy, &f.dir, c.name, principal, c.method, c.target, c.headers));
            }
        }
        if f.dir.starts_with("policies/") {
            out.extend(generate_http(f, generated_per_seed, 0x5851_f42d_4c95_7f2d ^ (i as u64 + 1))?);
        }
    }
    Ok(out)
}

/// Write `http.jsonl` under `out`.
pub fn write_http(out: &Path, cases: &[HttpCase]) -> Result<(), Error> {
    let io = |e: std::io::Error| Error(format!("{}: {e}", out.display()));
    fs::create_dir_all(out).map_err(io)?;
    let mut lines = String::new();
    for c in cases {
        lines.push_str(&serde_json::to_string(c).map_err(|e| Error(e.to_string()))?);
        lines.push('\n');
    }
    fs::write(out.join("http.jsonl"), lines).map_err(io)
}

/// Write `requests.jsonl` and `bundles/<folder name>.json` under `out`.
pub fn write(out: &Path, folders: &[Folder], cases: &[Case]) -> Result<(), Error> {
    let io = |e: std::io::Error| Error(format!("{}: {e}", out.display()));
    fs::create_dir_all(out.join("bundles")).map_err(io)?;
    let mut lines = String::new();
    for c in cases {
        lines.push_str(&serde_json::to_string(c).map_err(|e| Error(e.to_string()))?);
        lines.push('\n');
    }
    fs::write(out.join("requests.jsonl"), lines).map_err(io)?;
    for f in folders {
        let name = f.dir.replace('/', "__");
        fs::write(out.join("bundles").join(format!("{name}.json")), &f.bundle).map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The native host itself: decisions survive the JSON round trip of the request and the
    /// bundle round trip of the policy.
    #[test]
    fn native_bundle_and_wire_format_agree() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let (folders, cases) = corpus(&root, 2_500).expect("corpus");
        assert!(cases.len() >= 10_000, "{} cases", cases.len());
        let loaded: Vec<(String, Policy)> =
            folders.iter().map(|f| (f.dir.clone(), Policy::from_bundle(&f.bundle).expect("bundle loads"))).collect();
        let mut differences = Vec::new();
        for c in &cases {
            let line = serde_json::to_string(c).expect("serialize");
            let back: Case = serde_json::from_str(&line).expect("deserialize");
            let policy = &loaded.iter().find(|(d, _)| *d == back.policy).expect("folder").1;
            let got = expected(policy, &back.request);
            if got != c.expected {
                differences.push(format!("{} {}: {:?} vs {:?}", c.policy, c.name, got, c.expected));
            }
        }
        assert!(differences.is_empty(), "{} differences:\n{}", differences.len(), differences.join("\n"));
        // HTTP cases: the JSON round trip and the bundle round trip decide alike, and the
        // generator reaches every HTTP outcome
        let http = http_corpus(&folders, 500).expect("http corpus");
        assert!(http.len() >= 2_000, "{} http cases", http.len());
        let mut http_diff = Vec::new();
        for c in &http {
            let back: HttpCase = serde_json::from_str(&serde_json::to_string(c).expect("serialize")).expect("parse");
            let policy = &loaded.iter().find(|(d, _)| *d == back.policy).expect("folder").1;
            if back.decide(policy) != c.expected {
                http_diff.push(format!("{} {} {}", c.policy, c.name, c.target));
            }
        }
        assert!(http_diff.is_empty(), "{} http differences:\n{}", http_diff.len(), http_diff.join("\n"));
        let http_reasons: std::collections::BTreeSet<&str> = http.iter().map(|c| c.expected.reason.as_str()).collect();
        for r in ["allowed", "out_of_scope", "invalid_path", "no_route", "unauthenticated", "principal_inactive"] {
            assert!(http_reasons.contains(r), "no {r} http case in {http_reasons:?}");
        }
        assert!(http.iter().any(|c| c.expected.allowed && !c.expected.public), "no allowed protected http case");
        // the generator exercises more than one outcome per seed policy
        let reasons: std::collections::BTreeSet<&str> = cases.iter().map(|c| c.expected.reason.as_str()).collect();
        for r in ["allowed", "out_of_scope", "principal_inactive", "unknown_action", "unknown_resource_kind"] {
            assert!(reasons.contains(r), "no {r} case in {reasons:?}");
        }
    }
}
