//! Property tests (proptest) through the public API, next to the ones in `api.rs`:
//!
//! - delegation never lets anyone assign a role ranked above their own (generated policies
//!   with a delegation rule, generated principals);
//! - rule and file order never matter for `authorize_http` (the seed policies, split into
//!   files and shuffled);
//! - hostile HTTP targets (a grammar of `..`, `%2e`, `%2F`, `//`, `;`, `\`, `%25`, case
//!   changes, overlong UTF-8) never panic, and an accepted one reaches exactly the scope (and
//!   so the tenant) its literal path names;
//! - an anonymous caller is only ever allowed on public routes.

#![expect(clippy::expect_used, clippy::indexing_slicing, reason = "test helpers fail loudly")]

use std::sync::OnceLock;

use proptest::prelude::*;
use rolescope_engine::{
    AssignReason, AssignRequest, Assignment, HttpDecision, HttpRequest, Policy, Principal, PrincipalRef, Reason, Source,
};
use serde_json::Value;

// ---------------------------------------------------------------- delegation

const LEVELS: [&str; 3] = ["msp", "org", "site"];

/// A generated role: rank, assignable, may it delegate (holds the delegation action).
#[derive(Clone, Debug)]
struct GenRole {
    rank: u8,
    assignable: bool,
    delegates: bool,
    held_at: Vec<usize>,
}

fn arb_roles() -> impl Strategy<Value = Vec<GenRole>> {
    proptest::collection::vec(
        (
            0..6u8,
            prop::bool::weighted(0.8),
            prop::bool::weighted(0.7),
            proptest::sample::subsequence(vec![0, 1, 2], 1..=3),
        )
            .prop_map(|(rank, assignable, delegates, held_at)| GenRole {
                rank,
                assignable,
                delegates,
                held_at,
            }),
        1..6,
    )
}

fn delegation_policy(roles: &[GenRole], below_own: bool) -> String {
    let mut y = String::from(
        "policy: gen\nscopes:\n  msp: {}\n  org: { parent: msp, tenant: true }\n  site: { parent: org }\nresources:\n  admin: { actions: [assign_role, view] }\nroles:\n",
    );
    for (i, r) in roles.iter().enumerate() {
        let held: Vec<&str> = r.held_at.iter().filter_map(|l| LEVELS.get(*l).copied()).collect();
        let actions = if r.delegates { "[assign_role, view]" } else { "[view]" };
        y.push_str(&format!(
            "  r{i}:\n    rank: {}\n    assignable: {}\n    held_at: [{}]\n    grants: [{{ resources: [admin], actions: {actions} }}]\n",
            r.rank,
            r.assignable,
            held.join(", ")
        ));
    }
    y.push_str(&format!(
        "delegation: {{ resource: admin, action: assign_role, rank: {} }}\n",
        if below_own { "below_own" } else { "at_most_own" }
    ));
    y
}

/// A scope path of 1 to 3 levels over two ids per level.
fn arb_scope() -> impl Strategy<Value = String> {
    (0..2usize, proptest::option::of((0..2usize, proptest::option::of(0..2usize)))).prop_map(|(m, rest)| {
        let mut s = format!("msp:m{m}");
        if let Some((o, site)) = rest {
            s.push_str(&format!("/org:o{o}"));
            if let Some(x) = site {
                s.push_str(&format!("/site:s{x}"));
            }
        }
        s
    })
}

/// Whether an assignment held at `held` covers `scope` (ancestor or self).
fn covers(held: &str, scope: &str) -> bool {
    scope == held || scope.strip_prefix(held).is_some_and(|rest| rest.starts_with('/'))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn delegation_never_assigns_above_own_rank(
        roles in arb_roles(),
        below_own in any::<bool>(),
        held in proptest::collection::vec((0..6usize, arb_scope()), 0..4),
        asks in proptest::collection::vec((0..6usize, arb_scope()), 1..8),
    ) {
        let text = delegation_policy(&roles, below_own);
        let policy = Policy::compile(&[Source::new("gen.yaml", text.as_str())]).expect("generated policy compiles");
        let rank = |i: usize| roles.get(i).map(|r| r.rank);
        let assignments: Vec<Assignment> = held
            .iter()
            .filter(|(r, _)| *r < roles.len())
            .map(|(r, s)| Assignment { role: format!("r{r}"), scope: s.clone(), tenants: None })
            .collect();
        let principal = Principal { id: "p".into(), assignments: assignments.clone(), ..Principal::default() };
        for (role, scope) in &asks {
            let d = policy.can_assign(&AssignRequest {
                principal: PrincipalRef::Inline(principal.clone()),
                role: format!("r{role}"),
                scope: scope.clone(),
                context: Default::default(),
            });
            if d.reason != AssignReason::Allowed {
                continue;
            }
            let own = assignments
                .iter()
                .filter(|a| covers(&a.scope, scope))
                .filter_map(|a| a.role.strip_prefix('r').and_then(|n| n.parse().ok()).and_then(rank))
                .max();
            let wanted = rank(*role).expect("an allowed role exists");
            let Some(own) = own else {
                return Err(TestCaseError::fail(format!("r{role} at {scope} allowed to someone holding nothing there\n{text}")));
            };
            prop_assert!(
                if below_own { wanted < own } else { wanted <= own },
                "r{} (rank {}) at {} allowed to a principal of rank {} ({})\n{}",
                role, wanted, scope, own, if below_own { "below_own" } else { "at_most_own" }, text
            );
            prop_assert!(roles.get(*role).is_some_and(|r| r.assignable), "a role that is not assignable was assigned");
        }
    }
}

// ---------------------------------------------------------------- seed policies and routes

const SEEDS: [&str; 4] = ["jumpcloud-mtp", "juniper-mist-msp", "msp-panel", "site24x7-msp"];

/// One seed policy: its files, the compiled policy, and its route table as data.
struct Seed {
    roles: String,
    routes: String,
    policy: Policy,
    base: String,
    public: Vec<String>,
    /// (label `METHOD /path`, scope template, `None` for public routes)
    table: Vec<(String, Option<String>)>,
}

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn seeds() -> &'static [Seed] {
    static SEEDS_CELL: OnceLock<Vec<Seed>> = OnceLock::new();
    SEEDS_CELL.get_or_init(|| {
        SEEDS
            .iter()
            .map(|name| {
                let dir = root().join("policies").join(name);
                let roles = std::fs::read_to_string(dir.join("roles.yaml")).expect("roles.yaml");
                let routes = std::fs::read_to_string(dir.join("routes.yaml")).expect("routes.yaml");
                let policy = Policy::compile(&[
                    Source::new("roles.yaml", roles.as_str()),
                    Source::new("routes.yaml", routes.as_str()),
                ])
                .expect("seed compiles");
                let v: Value = serde_saphyr::from_str(&routes).expect("routes.yaml as data");
                let r = &v["routes"];
                let base = r["base"].as_str().unwrap_or("").to_owned();
                let public: Vec<String> = r["public"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p.as_str().map(str::to_owned))
                    .collect();
                let mut table: Vec<(String, Option<String>)> = public.iter().map(|p| (p.clone(), None)).collect();
                for row in r["table"].as_array().into_iter().flatten() {
                    let label = row["route"].as_str().expect("route").to_owned();
                    table.push((label, Some(row["scope"].as_str().unwrap_or("").to_owned())));
                }
                Seed { roles, routes, policy, base, public, table }
            })
            .collect()
    })
}

/// The path of a route label with each `{param}` replaced by `value(param index)`.
fn fill(label: &str, mut value: impl FnMut(usize) -> String) -> (String, String) {
    let (method, path) = label.split_once(' ').expect("METHOD /path");
    let mut n = 0;
    let filled: Vec<String> = path
        .split('/')
        .map(|seg| {
            if seg.starts_with('{') {
                n += 1;
                value(n - 1)
            } else {
                seg.to_owned()
            }
        })
        .collect();
    (method.to_owned(), filled.join("/"))
}

/// Independent percent-decoding (only for accepted targets, which are well-formed).
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%'
            && let Some(x) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(x);
            i += 3;
            continue;
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The scope an accepted request reaches, worked out from the literal target and the route
/// the engine says it matched: bind the template's parameters to the decoded segments and
/// render the route's scope template under the base.
fn literal_scope(seed: &Seed, target: &str, d: &HttpDecision) -> Option<String> {
    let label = d.route()?;
    let (_, scope_tpl) = seed.table.iter().find(|(l, _)| l == label)?;
    let scope_tpl = scope_tpl.as_ref()?;
    let (_, tpl_path) = label.split_once(' ')?;
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    let tpl: Vec<&str> = tpl_path.split('/').collect();
    let got: Vec<String> = path.split('/').map(decode).collect();
    assert_eq!(tpl.len(), got.len(), "`{target}` matched `{label}` with another number of segments");
    let mut params = Vec::new();
    for (t, g) in tpl.iter().zip(&got) {
        match t.strip_prefix('{').and_then(|x| x.strip_suffix('}')) {
            Some(name) => params.push((name.to_owned(), g.clone())),
            None => assert_eq!(t, g, "`{target}` matched `{label}` though a literal segment differs"),
        }
    }
    let mut rel = scope_tpl.clone();
    for (name, value) in &params {
        rel = rel.replace(&format!("{{{name}}}"), value);
    }
    Some(match (seed.base.is_empty(), rel.is_empty()) {
        (true, _) => rel,
        (false, true) => seed.base.clone(),
        (false, false) => format!("{}/{rel}", seed.base),
    })
}

// ---------------------------------------------------------------- order

/// The seed split into three files (declarations, roles and denies, routes), with every
/// list of rules and the route table shuffled by `perm`, in the file order `order`.
fn reordered(seed: &Seed, perm: &[usize], order: &[usize]) -> Vec<Source> {
    let mut v: Value = serde_saphyr::from_str(&seed.roles).expect("roles.yaml as data");
    let mut routes: Value = serde_saphyr::from_str(&seed.routes).expect("routes.yaml as data");
    let shuffle = |list: &mut Value| {
        if let Some(a) = list.as_array_mut() {
            let n = a.len();
            if n > 1 {
                for (i, p) in perm.iter().enumerate().take(n) {
                    a.swap(i % n, p % n);
                }
            }
        }
    };
    if let Some(roles) = v.get_mut("roles").and_then(Value::as_object_mut) {
        for role in roles.values_mut() {
            for key in ["grants", "denies"] {
                if let Some(list) = role.get_mut(key) {
                    shuffle(list);
                }
            }
        }
    }
    if let Some(list) = v.get_mut("denies") {
        shuffle(list);
    }
    if let Some(list) = routes.pointer_mut("/routes/table") {
        shuffle(list);
    }
    let obj = v.as_object().expect("a mapping");
    let mut decls = serde_json::Map::new();
    let mut rules = serde_json::Map::new();
    for (k, val) in obj {
        if k == "roles" || k == "denies" {
            rules.insert(k.clone(), val.clone());
        } else {
            decls.insert(k.clone(), val.clone());
        }
    }
    let files = [
        Source::new("decls.json", Value::Object(decls).to_string()),
        Source::new("rules.json", Value::Object(rules).to_string()),
        Source::new("routes.json", routes.to_string()),
    ];
    order.iter().filter_map(|i| files.get(*i).cloned()).collect()
}

const VALUES: [&str; 4] = ["o1", "o2", "x", "o1"];

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn rule_and_file_order_never_matter_for_authorize_http(
        which in 0..SEEDS.len(),
        perm in proptest::collection::vec(0..64usize, 64),
        order in Just(vec![0usize, 1, 2]).prop_shuffle(),
        requests in proptest::collection::vec((0..200usize, proptest::collection::vec(0..VALUES.len(), 4)), 1..12),
        held in proptest::collection::vec((0..50usize, 0..12usize, 0..3usize), 0..4),
    ) {
        let seed = &seeds()[which];
        let sources = reordered(seed, &perm, &order);
        let shuffled = Policy::compile(&sources).expect("the reordered seed compiles");
        let roles: Vec<String> = seed.policy.role_names().map(str::to_owned).collect();
        let targets: Vec<(String, String)> = requests
            .iter()
            .map(|(r, vals)| {
                let (label, _) = &seed.table[r % seed.table.len()];
                fill(label, |i| VALUES[vals[i % vals.len()]].to_owned())
            })
            .collect();
        // assignments at a prefix of the scope some request reaches (so that some allow)
        let scopes: Vec<String> = targets
            .iter()
            .filter_map(|(m, t)| seed.policy.authorize_http(None, &HttpRequest { method: m, target: t, headers: &[] }).scope().map(str::to_owned))
            .collect();
        let assignments: Vec<Assignment> = held
            .iter()
            .filter_map(|(r, s, depth)| {
                let scope = scopes.get(s % scopes.len().max(1))?;
                let cut: Vec<&str> = scope.split('/').collect();
                let scope = cut[..cut.len().min(depth + 1)].join("/");
                Some(Assignment { role: roles[r % roles.len()].clone(), scope, tenants: None })
            })
            .collect();
        let principal = Principal { id: "p".into(), assignments, ..Principal::default() };
        let (a, b) = (seed.policy.prepare_principal(&principal), shuffled.prepare_principal(&principal));
        prop_assert_eq!(a.is_ok(), b.is_ok());
        let (Ok(a), Ok(b)) = (a, b) else { return Ok(()) };
        for (method, target) in &targets {
            let req = HttpRequest { method, target, headers: &[] };
            let x = seed.policy.authorize_http(Some(&a), &req);
            let y = shuffled.authorize_http(Some(&b), &req);
            let key = |d: &HttpDecision| {
                (d.allowed(), d.reason(), d.public(), d.route().map(str::to_owned), d.action().map(str::to_owned), d.scope().map(str::to_owned), d.tenant().map(str::to_owned))
            };
            prop_assert_eq!(key(&x), key(&y), "{} {}", method, target);
        }
    }
}

// ---------------------------------------------------------------- hostile targets

/// Pieces of hostile segments.
const HOSTILE: [&str; 30] = [
    "..",
    ".",
    "%2e",
    "%2E",
    "%2e%2e",
    "%2E%2e",
    ".%2e",
    "%2F",
    "%2f",
    "/",
    "//",
    ";",
    ";x=1",
    "\\",
    "%5C",
    "%5c",
    "%25",
    "%252e",
    "%252F",
    "%c0%ae",
    "%c0%af",
    "%e0%80%ae",
    "%C0%AE",
    "%00",
    "%3B",
    "%3b",
    "?",
    "#",
    "%23",
    "%3F",
];

fn arb_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(HOSTILE.to_vec()).prop_map(str::to_owned),
        3 => prop::sample::select(vec!["o1", "o2", "O1", "api", "API", "v1", "orgs", "clients", "status", "x"]).prop_map(str::to_owned),
        1 => "[a-zA-Z0-9%./;\\\\-]{0,4}",
    ]
}

/// A segment: one to three pieces, sometimes upper-cased.
fn arb_segment() -> impl Strategy<Value = String> {
    (proptest::collection::vec(arb_piece(), 1..4), any::<bool>())
        .prop_map(|(p, upper)| if upper { p.concat().to_uppercase() } else { p.concat() })
}

/// A target built from a real route with hostile parameter values, hostile segments spliced
/// in, and a hostile query or suffix.
fn arb_target() -> impl Strategy<Value = (usize, usize, Vec<String>, Vec<(usize, String)>, String)> {
    (
        0..SEEDS.len(),
        0..200usize,
        proptest::collection::vec(arb_segment(), 4),
        proptest::collection::vec((0..8usize, arb_segment()), 0..3),
        prop::sample::select(vec!["", "/", "?org=o2", "?org=o1&org=o2", "#x", "/.", "/..", "%2F..", ";a", "?a=%zz"]),
    )
        .prop_map(|(s, r, params, splices, suffix)| (s, r, params, splices, suffix.to_owned()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn hostile_targets_reach_exactly_what_the_literal_path_names(
        (which, route, params, splices, suffix) in arb_target(),
        method in prop::sample::select(vec!["GET", "HEAD", "POST", "PUT", "DELETE", "get", "PATCH"]),
        superuser in any::<bool>(),
    ) {
        let seed = &seeds()[which];
        let (label, _) = &seed.table[route % seed.table.len()];
        let (_, path) = fill(label, |i| params[i % params.len()].clone());
        let mut segments: Vec<String> = path.split('/').map(str::to_owned).collect();
        for (at, seg) in &splices {
            let at = 1 + at % segments.len();
            segments.insert(at.min(segments.len()), seg.clone());
        }
        let target = format!("{}{suffix}", segments.join("/"));
        // the principal holds every role at the policy's base (the whole MSP) or nothing
        let assignments = if superuser {
            seed.policy.role_names().map(|r| Assignment { role: r.to_owned(), scope: seed.base.clone(), tenants: None }).collect()
        } else {
            Vec::new()
        };
        let principal = Principal { id: "p".into(), assignments, ..Principal::default() };
        let prepared = seed.policy.prepare_principal(&principal).ok();
        let req = HttpRequest { method, target: &target, headers: &[] };
        let d = seed.policy.authorize_http(prepared.as_ref(), &req);
        let anonymous = seed.policy.authorize_http(None, &req);
        prop_assert!(!anonymous.allowed() || anonymous.public(), "anonymous allowed on a protected route: {target} {anonymous:?}");
        if matches!(d.reason(), Reason::InvalidPath | Reason::NoRoute | Reason::InvalidRequest) && d.route().is_none() {
            prop_assert!(!d.allowed());
            return Ok(());
        }
        if d.public() {
            prop_assert!(seed.public.iter().any(|p| Some(p.as_str()) == d.route()));
            return Ok(());
        }
        // accepted: the scope decided on is the one the literal path names
        let expected = literal_scope(seed, &target, &d).expect("a protected route has a scope template");
        prop_assert_eq!(d.scope(), Some(expected.as_str()), "{} {}", method, target);
        if let Some(tenant) = d.tenant() {
            prop_assert!(expected.split('/').any(|s| s == tenant), "tenant {} not in {}", tenant, expected);
        }
    }

    #[test]
    fn anonymous_callers_are_allowed_only_on_public_routes(
        which in 0..SEEDS.len(),
        route in 0..200usize,
        value in arb_segment(),
        method in prop::sample::select(vec!["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"]),
        raw in "/[ -~]{0,40}",
        use_raw in any::<bool>(),
    ) {
        let seed = &seeds()[which];
        let (label, _) = &seed.table[route % seed.table.len()];
        let target = if use_raw { raw } else { fill(label, |_| value.clone()).1 };
        let d = seed.policy.authorize_http(None, &HttpRequest { method, target: &target, headers: &[("authorization", "Bearer x")] });
        if d.allowed() {
            prop_assert!(d.public());
            let route = d.route().expect("an allowed request matched a route");
            prop_assert!(seed.public.iter().any(|p| p == route), "{} is not public", route);
            prop_assert!(d.action().is_none() && d.scope().is_none());
        } else if !d.public() && d.route().is_some() {
            prop_assert_eq!(d.reason(), Reason::Unauthenticated);
        }
    }
}
