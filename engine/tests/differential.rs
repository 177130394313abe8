//! Differential test: a small reference evaluator written from the language specification
//! (`policies/README.md`), sharing no code with the engine, decides generated requests over
//! generated policies; the engine must agree on every one (allowed and reason).
//!
//! The reference works on the generator's own data structure; the engine gets the same policy
//! rendered as YAML. `ROLESCOPE_DIFF_CASES` sets the number of requests (default 100,000).

#![expect(clippy::indexing_slicing, reason = "indices come from the generator, which draws them below each length")]

use rolescope_engine::{Assignment, Policy, Principal, PrincipalRef, Request, Resource, Source, Tenants};

// ------------------------------------------------------------------ generated policies

const LEVELS: [&str; 3] = ["msp", "org", "site"];
const KINDS: [&str; 3] = ["k0", "k1", "k2"];
const ACTIONS: [&str; 4] = ["a0", "a1", "a2", "a3"];

#[derive(Clone, Debug)]
enum Cond {
    /// `resource.owner == principal.id`
    Owner,
    /// `resource.owner != principal.id`
    NotOwner,
}

#[derive(Clone, Debug)]
struct Rule {
    kinds: Option<Vec<usize>>, // None = "*"
    actions: Option<Vec<usize>>,
    cond: Option<Cond>,
}

#[derive(Clone, Debug, PartialEq)]
enum TenantAccess {
    AsAssigned,
    All,
    Listed,
}

#[derive(Clone, Debug)]
struct Role {
    rank: i64,
    held_at: Vec<usize>,
    includes: Vec<usize>,
    tenant_access: TenantAccess,
    grants: Vec<Rule>,
    denies: Vec<Rule>,
}

#[derive(Clone, Debug)]
struct Model {
    highest_rank: bool,
    roles: Vec<Role>,
    global_denies: Vec<Rule>,
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn subset(&mut self, n: usize) -> Vec<usize> {
        let v: Vec<usize> = (0..n).filter(|_| self.chance(50)).collect();
        if v.is_empty() { vec![self.below(n)] } else { v }
    }
}

fn gen_rule(rng: &mut Rng) -> Rule {
    Rule {
        kinds: if rng.chance(20) { None } else { Some(rng.subset(KINDS.len())) },
        actions: if rng.chance(15) { None } else { Some(rng.subset(ACTIONS.len())) },
        cond: match rng.below(5) {
            0 => Some(Cond::Owner),
            1 => Some(Cond::NotOwner),
            _ => None,
        },
    }
}

fn gen_model(rng: &mut Rng) -> Model {
    let n = 2 + rng.below(4);
    let roles = (0..n)
        .map(|i| Role {
            rank: rng.below(4) as i64,
            held_at: rng.subset(LEVELS.len()),
            includes: (0..i).filter(|_| rng.chance(25)).collect(),
            tenant_access: match rng.below(5) {
                0 => TenantAccess::All,
                1 => TenantAccess::Listed,
                _ => TenantAccess::AsAssigned,
            },
            grants: (0..rng.below(4)).map(|_| gen_rule(rng)).collect(),
            denies: (0..rng.below(2)).map(|_| gen_rule(rng)).collect(),
        })
        .collect();
    Model {
        highest_rank: rng.chance(50),
        roles,
        global_denies: (0..usize::from(rng.chance(20))).map(|_| gen_rule(rng)).collect(),
    }
}

fn yaml_list(items: &Option<Vec<usize>>, names: &[&str]) -> String {
    match items {
        None => "[\"*\"]".into(),
        Some(v) => format!("[{}]", v.iter().map(|i| names[*i]).collect::<Vec<_>>().join(", ")),
    }
}

fn yaml_rule(r: &Rule) -> String {
    let mut s = format!("{{ resources: {}, actions: {}", yaml_list(&r.kinds, &KINDS), yaml_list(&r.actions, &ACTIONS));
    match r.cond {
        Some(Cond::Owner) => s.push_str(", when: \"resource.owner == principal.id\""),
        Some(Cond::NotOwner) => s.push_str(", when: \"resource.owner != principal.id\""),
        None => {}
    }
    s.push_str(" }");
    s
}

fn render(m: &Model) -> String {
    let mut y = String::from("policy: diff\n");
    y.push_str(if m.highest_rank { "combine: highest_rank\n" } else { "combine: union\n" });
    y.push_str("scopes:\n  msp: {}\n  org: { parent: msp, tenant: true }\n  site: { parent: org }\n");
    y.push_str("resources:\n");
    for k in KINDS {
        y.push_str(&format!("  {k}: {{ actions: [a0, a1, a2, a3], attributes: {{ owner: string }} }}\n"));
    }
    y.push_str("roles:\n");
    for (i, r) in m.roles.iter().enumerate() {
        y.push_str(&format!("  r{i}:\n    rank: {}\n", r.rank));
        y.push_str(&format!(
            "    held_at: [{}]\n",
            r.held_at.iter().map(|l| LEVELS[*l]).collect::<Vec<_>>().join(", ")
        ));
        match r.tenant_access {
            TenantAccess::All => y.push_str("    tenant_access: all\n"),
            TenantAccess::Listed => y.push_str("    tenant_access: listed\n"),
            TenantAccess::AsAssigned => {}
        }
        if !r.includes.is_empty() {
            y.push_str(&format!(
                "    includes: [{}]\n",
                r.includes.iter().map(|j| format!("r{j}")).collect::<Vec<_>>().join(", ")
            ));
        }
        y.push_str("    grants:\n");
        if r.grants.is_empty() {
            y.push_str("      []\n");
        }
        for g in &r.grants {
            y.push_str(&format!("      - {}\n", yaml_rule(g)));
        }
        if !r.denies.is_empty() {
            y.push_str("    denies:\n");
            for d in &r.denies {
                y.push_str(&format!("      - {}\n", yaml_rule(d)));
            }
        }
    }
    if !m.global_denies.is_empty() {
        y.push_str("denies:\n");
        for d in &m.global_denies {
            y.push_str(&format!("  - {}\n", yaml_rule(d)));
        }
    }
    y
}

// ------------------------------------------------------------------ generated requests

fn gen_scope(rng: &mut Rng) -> String {
    // mostly one MSP and two orgs, so that assignments and resources overlap often
    let mut s = format!("msp:m{}", usize::from(rng.chance(10)));
    if rng.chance(75) {
        s.push_str(&format!("/org:o{}", usize::from(rng.chance(30)) + usize::from(rng.chance(10))));
        if rng.chance(40) {
            s.push_str(&format!("/site:s{}", rng.below(2)));
        }
    }
    s
}

fn gen_request(rng: &mut Rng, roles: usize) -> Request {
    let assignments = (0..1 + rng.below(3))
        .map(|_| {
            let scope = gen_scope(rng);
            let tenants = if rng.chance(35) {
                Some(Tenants::Only(
                    (0..rng.below(3))
                        .map(
                            |_| if rng.chance(85) { format!("org:o{}", rng.below(3)) } else { "org:o0/site:s0".into() },
                        )
                        .collect(),
                ))
            } else if rng.chance(30) {
                Some(Tenants::All)
            } else {
                None
            };
            let role = if rng.chance(95) { format!("r{}", rng.below(roles)) } else { "ghost".into() };
            Assignment { role, scope, tenants }
        })
        .collect();
    let status = match rng.below(12) {
        0 => Some("suspended".to_string()),
        1 => Some("deleted".to_string()),
        _ => None,
    };
    let id = if rng.chance(50) { "p" } else { "q" };
    let mut attributes = serde_json::Map::new();
    if rng.chance(70) {
        attributes.insert("owner".into(), if rng.chance(50) { "p" } else { "q" }.into());
    }
    let kind = if rng.chance(97) { KINDS[rng.below(3)].to_string() } else { "nope".into() };
    let action = if rng.chance(97) { ACTIONS[rng.below(4)].to_string() } else { "zap".into() };
    let mut scope = gen_scope(rng);
    if rng.chance(2) {
        scope.push_str("//x");
    }
    Request {
        principal: PrincipalRef::Inline(Principal {
            id: id.into(),
            status,
            attributes: Default::default(),
            assignments,
        }),
        action,
        resource: Resource { kind, id: "r".into(), scope, attributes },
        context: Default::default(),
    }
}

// ------------------------------------------------------------------ the reference evaluator

/// Level of a well-formed scope path (`msp:x[/org:y[/site:z]]`), by the spec's tree.
fn ref_level(scope: &str) -> Option<usize> {
    let segs: Vec<&str> = scope.split('/').collect();
    if segs.is_empty() || segs.len() > 3 {
        return None;
    }
    for (i, seg) in segs.iter().enumerate() {
        let (lvl, id) = seg.split_once(':')?;
        if lvl != LEVELS[i] || id.is_empty() || id.contains(':') {
            return None;
        }
    }
    Some(segs.len() - 1)
}

/// Is `path` the node `ancestor` or below it?
fn ref_within(path: &str, ancestor: &str) -> bool {
    path == ancestor || path.starts_with(&format!("{ancestor}/"))
}

struct RefAssignment {
    role: usize,
    scope: String,
    tenants: Option<Vec<String>>,
}

/// The spec's "assignment that cannot take effect is ignored", then tenant_access.
fn ref_assignment(m: &Model, a: &Assignment) -> Option<RefAssignment> {
    let role: usize = a.role.strip_prefix('r')?.parse().ok()?;
    let r = m.roles.get(role)?;
    let level = ref_level(&a.scope)?;
    if !r.held_at.contains(&level) {
        return None;
    }
    let mut tenants = None;
    let above_tenant = level == 0;
    // `all` for a role that reaches only listed tenants contradicts it: ignored
    if a.tenants == Some(Tenants::All) && above_tenant && r.tenant_access == TenantAccess::Listed {
        return None;
    }
    if let Some(Tenants::Only(list)) = &a.tenants {
        let mut out = Vec::new();
        for t in list {
            let full = if ref_within(t, &a.scope) { t.clone() } else { format!("{}/{t}", a.scope) };
            if full.len() <= a.scope.len() || ref_level(&full)? != 1 {
                return None; // tenants are whole tenants (org nodes) below the scope
            }
            out.push(full);
        }
        tenants = Some(out);
    }
    match r.tenant_access {
        TenantAccess::All => tenants = None,
        TenantAccess::Listed if above_tenant => tenants = Some(tenants.unwrap_or_default()),
        _ => {}
    }
    Some(RefAssignment { role, scope: a.scope.clone(), tenants })
}

fn ref_covers(a: &RefAssignment, scope: &str) -> bool {
    ref_within(scope, &a.scope)
        && match &a.tenants {
            None => true,
            Some(ts) => scope == a.scope || ts.iter().any(|t| ref_within(scope, t)),
        }
}

/// Every role reachable through `includes`, the role itself included.
fn ref_closure(m: &Model, role: usize) -> Vec<usize> {
    let mut seen = vec![role];
    let mut i = 0;
    while i < seen.len() {
        for inc in &m.roles[seen[i]].includes {
            if !seen.contains(inc) {
                seen.push(*inc);
            }
        }
        i += 1;
    }
    seen
}

fn ref_matches(rule: &Rule, kind: usize, action: usize) -> bool {
    rule.kinds.as_ref().is_none_or(|k| k.contains(&kind)) && rule.actions.as_ref().is_none_or(|a| a.contains(&action))
}

/// `Some(true/false)` or `None` when the condition reads an absent attribute.
fn ref_cond(c: &Option<Cond>, principal: &str, owner: Option<&str>) -> Option<bool> {
    match c {
        None => Some(true),
        Some(Cond::Owner) => owner.map(|o| o == principal),
        Some(Cond::NotOwner) => owner.map(|o| o != principal),
    }
}

fn reference(m: &Model, req: &Request) -> (bool, &'static str) {
    let PrincipalRef::Inline(p) = &req.principal else { return (false, "unknown_principal") };
    if p.status.as_deref().is_some_and(|s| s != "active") {
        return (false, "principal_inactive");
    }
    let Some(kind) = KINDS.iter().position(|k| *k == req.resource.kind) else {
        return (false, "unknown_resource_kind");
    };
    if ref_level(&req.resource.scope).is_none() {
        return (false, "invalid_scope");
    }
    let Some(action) = ACTIONS.iter().position(|a| *a == req.action) else { return (false, "unknown_action") };
    let owner = req.resource.attributes.get("owner").and_then(|v| v.as_str());
    // a deny fires when its condition is true or cannot be evaluated
    let deny_fires = |d: &Rule| ref_matches(d, kind, action) && ref_cond(&d.cond, &p.id, owner) != Some(false);
    if m.global_denies.iter().any(deny_fires) {
        return (false, "explicit_deny");
    }
    let covering: Vec<RefAssignment> = p
        .assignments
        .iter()
        .filter_map(|a| ref_assignment(m, a))
        .filter(|a| ref_covers(a, &req.resource.scope))
        .collect();
    if covering.is_empty() {
        return (false, "out_of_scope");
    }
    let top = covering.iter().map(|a| m.roles[a.role].rank).max().unwrap_or(i64::MIN);
    let contributing: Vec<&RefAssignment> =
        covering.iter().filter(|a| !m.highest_rank || m.roles[a.role].rank == top).collect();
    let rules = |a: &RefAssignment, denies: bool| -> Vec<Rule> {
        ref_closure(m, a.role)
            .into_iter()
            .flat_map(|r| if denies { m.roles[r].denies.clone() } else { m.roles[r].grants.clone() })
            .collect()
    };
    if contributing.iter().any(|a| rules(a, true).iter().any(deny_fires)) {
        return (false, "explicit_deny");
    }
    let mut saw_condition = false;
    for a in &contributing {
        for g in rules(a, false).iter().filter(|g| ref_matches(g, kind, action)) {
            match ref_cond(&g.cond, &p.id, owner) {
                Some(true) => return (true, "allowed"),
                _ => saw_condition = true,
            }
        }
    }
    (false, if saw_condition { "condition_false" } else { "no_matching_grant" })
}

// ------------------------------------------------------------------ the test

#[test]
fn engine_agrees_with_the_reference_evaluator() {
    let total: usize = std::env::var("ROLESCOPE_DIFF_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let per_policy = 100;
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut differences = Vec::new();
    let mut outcomes = std::collections::BTreeMap::<&str, usize>::new();
    let mut done = 0;
    while done < total {
        let model = gen_model(&mut rng);
        let yaml = render(&model);
        let policy = match Policy::compile(&[Source::new("diff.yaml", yaml.clone())]) {
            Ok(p) => p,
            Err(e) => panic!("generated policy does not compile: {:?}\n{yaml}", e.diagnostics()),
        };
        for _ in 0..per_policy.min(total - done) {
            let req = gen_request(&mut rng, model.roles.len());
            let want = reference(&model, &req);
            let got = policy.check(&req);
            *outcomes.entry(want.1).or_default() += 1;
            if (got.allowed(), got.reason().as_str()) != want && differences.len() < 10 {
                differences.push(format!(
                    "engine {:?}/{} vs reference {want:?}\nrequest: {}\npolicy:\n{yaml}",
                    got.allowed(),
                    got.reason(),
                    serde_json::to_string(&req).unwrap_or_default()
                ));
            }
            done += 1;
        }
    }
    println!("{done} differential cases: {outcomes:?}");
    assert!(differences.is_empty(), "{} difference(s), first:\n{}", differences.len(), differences.join("\n---\n"));
    // the generator reaches every outcome the reference knows
    for r in ["allowed", "explicit_deny", "out_of_scope", "no_matching_grant", "condition_false", "principal_inactive"]
    {
        assert!(outcomes.get(r).copied().unwrap_or(0) > 100, "too few {r}: {outcomes:?}");
    }
}
