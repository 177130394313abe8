//! The scenarios as peer-neutral data: the policy (rolescope's role files, and the same roles
//! described once for the peers' generated data), the users and their assignments, and the
//! questions each benchmark asks. Nothing here says what an answer is: rolescope answers, and
//! every peer is checked against it.

use std::fmt::Write as _;

/// The Juniper-style MSP policy of scenarios (a), (c), (d).
pub const MSP_YAML: &str = include_str!("../../../engine/benches/msp.yaml");
/// The Site24x7 MSP seed policy of scenario (b).
pub const SITE24X7_YAML: &str = include_str!("../../../policies/site24x7-msp/roles.yaml");

/// The MSP scenario's peer texts (`bench/scenarios/msp`).
pub mod msp_texts {
    /// Cedar schema.
    pub const CEDAR_SCHEMA: &str = include_str!("../../scenarios/msp/schema.cedarschema");
    /// Cedar policy templates, one per role (`@id`).
    pub const CEDAR_POLICIES: &str = include_str!("../../scenarios/msp/policies.cedar");
    /// casbin model.
    pub const CASBIN_MODEL: &str = include_str!("../../scenarios/msp/model.conf");
    /// Rego.
    pub const REGO: &str = include_str!("../../scenarios/msp/policy.rego");
}

/// The Site24x7 scenario's peer texts (`bench/scenarios/site24x7`).
pub mod site24x7_texts {
    /// Cedar schema.
    pub const CEDAR_SCHEMA: &str = include_str!("../../scenarios/site24x7/schema.cedarschema");
    /// Cedar policy templates (`@id` names the role).
    pub const CEDAR_POLICIES: &str = include_str!("../../scenarios/site24x7/policies.cedar");
    /// casbin model.
    pub const CASBIN_MODEL: &str = include_str!("../../scenarios/site24x7/model.conf");
    /// Rego.
    pub const REGO: &str = include_str!("../../scenarios/site24x7/policy.rego");
}

/// The 10 actions of `device`, in msp.yaml's declaration order.
pub const DEVICE_ACTIONS: [&str; 10] =
    ["view", "list", "create", "update", "delete", "claim", "reboot", "configure", "upgrade_firmware", "view_logs"];

/// Which policy family a scenario uses (selects the peers' texts and request shapes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// msp > org > site, `device` (engine/benches/msp.yaml, or the growth policy).
    Msp,
    /// msp > customer > monitor_group, `maintenance_window` (policies/site24x7-msp).
    Site24x7,
}

/// A condition of a grant that the peers model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    /// `resource.created_by == principal.id and not resource.modified_by_super_admin`
    OwnUnmodified,
}

/// One grant of a role, actions expanded (no permission levels).
#[derive(Clone, Debug)]
pub struct Grant {
    /// Resource kind.
    pub kind: String,
    /// Granted actions.
    pub actions: Vec<String>,
    /// Condition, if any.
    pub when: Option<Condition>,
}

/// A role as the peers see it.
#[derive(Clone, Debug)]
pub struct RoleDef {
    /// Role name (rolescope's role id).
    pub name: String,
    /// Grants.
    pub grants: Vec<Grant>,
    /// The role is denied everything outside the default web client (Site24x7).
    pub web_client_only: bool,
}

/// One role held in one tenant.
#[derive(Clone, Debug)]
pub struct Assignment {
    /// Role name.
    pub role: String,
    /// Tenant id (an org or customer id, e.g. `o40`).
    pub tenant: String,
}

/// A user and its assignments.
#[derive(Clone, Debug)]
pub struct User {
    /// User id.
    pub id: String,
    /// Assignments.
    pub assignments: Vec<Assignment>,
}

/// A resource: kind, id, where it lives, and the attributes the scenarios use.
#[derive(Clone, Debug)]
pub struct Res {
    /// Kind.
    pub kind: String,
    /// Id.
    pub id: String,
    /// Tenant id (org or customer).
    pub tenant: String,
    /// Site (or monitor group) id below the tenant, if any.
    pub group: Option<String>,
    /// `created_by` attribute.
    pub created_by: Option<String>,
    /// `modified_by_super_admin` attribute (Site24x7).
    pub modified_by_super_admin: bool,
}

/// What one case asks.
#[derive(Clone, Debug)]
pub enum Work {
    /// One decision.
    Decide {
        /// Index into [`Scenario::users`].
        user: usize,
        /// Action.
        action: String,
        /// Resource.
        resource: Res,
    },
    /// Which of `actions` the user may take on one resource.
    Actions {
        /// Index into [`Scenario::users`].
        user: usize,
        /// Resource.
        resource: Res,
        /// Actions asked about (every action of the kind).
        actions: Vec<String>,
    },
    /// Which of `actions` the user may take on each resource (answers resource-major).
    Batch {
        /// Index into [`Scenario::users`].
        user: usize,
        /// Resources.
        resources: Vec<Res>,
        /// Actions.
        actions: Vec<String>,
    },
}

impl Work {
    /// How many answers the work has.
    pub fn answers(&self) -> usize {
        match self {
            Work::Decide { .. } => 1,
            Work::Actions { actions, .. } => actions.len(),
            Work::Batch { resources, actions, .. } => resources.len() * actions.len(),
        }
    }

    /// Every resource the work names.
    pub fn resources(&self) -> Vec<&Res> {
        match self {
            Work::Decide { resource, .. } | Work::Actions { resource, .. } => vec![resource],
            Work::Batch { resources, .. } => resources.iter().collect(),
        }
    }

    /// The user index.
    pub fn user(&self) -> usize {
        match self {
            Work::Decide { user, .. } | Work::Actions { user, .. } | Work::Batch { user, .. } => *user,
        }
    }
}

/// One benchmarked question (or set of questions).
#[derive(Clone, Debug)]
pub struct Case {
    /// Short id, used as the benchmark name (`allowed`, `denied`, ...).
    pub id: &'static str,
    /// What it asks, for the report.
    pub title: String,
    /// The question(s).
    pub work: Work,
}

/// A policy, its users and the cases asked of it.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Short id (`a`, `b`, `c`, `d`, `growth-1000`).
    pub id: String,
    /// Policy family.
    pub family: Family,
    /// rolescope role files: (name, text).
    pub sources: Vec<(String, String)>,
    /// The roles as the peers see them.
    pub roles: Vec<RoleDef>,
    /// Cedar templates for the peers that are not read from `bench/scenarios` (growth).
    pub cedar_templates: Option<String>,
    /// The MSP id (root scope).
    pub msp: String,
    /// Every user with assignments (the benchmarked principals first).
    pub users: Vec<User>,
    /// Tenant ids (every org or customer).
    pub tenants: Vec<String>,
    /// The cases.
    pub cases: Vec<Case>,
}

impl Scenario {
    /// Scope level names: (tenant level, group level).
    pub fn levels(&self) -> (&'static str, &'static str) {
        match self.family {
            Family::Msp => ("org", "site"),
            Family::Site24x7 => ("customer", "monitor_group"),
        }
    }

    /// The tenant's scope path, e.g. `msp:acme/org:o40`.
    pub fn tenant_scope(&self, tenant: &str) -> String {
        format!("msp:{}/{}:{tenant}", self.msp, self.levels().0)
    }

    /// The resource's scope path, e.g. `msp:acme/org:o40/site:s1`.
    pub fn scope(&self, r: &Res) -> String {
        let mut s = self.tenant_scope(&r.tenant);
        if let Some(g) = &r.group {
            let _ = write!(s, "/{}:{g}", self.levels().1);
        }
        s
    }

    /// The resource's scope and its ancestors, root first.
    pub fn scope_chain(&self, r: &Res) -> Vec<String> {
        let mut out = vec![format!("msp:{}", self.msp), self.tenant_scope(&r.tenant)];
        if r.group.is_some() {
            out.push(self.scope(r));
        }
        out
    }
}

fn strings(xs: &[&str]) -> Vec<String> {
    xs.iter().map(|s| (*s).to_owned()).collect()
}

fn grant(kind: &str, actions: &[&str]) -> Grant {
    Grant { kind: kind.into(), actions: strings(actions), when: None }
}

fn role(name: &str, grants: Vec<Grant>) -> RoleDef {
    RoleDef { name: name.into(), grants, web_client_only: false }
}

/// msp.yaml's roles, their grants on `device` (permission levels expanded).
fn msp_roles() -> Vec<RoleDef> {
    vec![
        role("super_user", vec![grant("device", &DEVICE_ACTIONS)]),
        role(
            "network_admin",
            vec![
                grant("device", &["view", "list", "create", "update", "delete"]),
                grant("device", &["configure", "upgrade_firmware"]),
            ],
        ),
        role("observer", vec![grant("device", &["view", "list"])]),
        role("installer", vec![grant("device", &["view", "list"]), grant("device", &["claim", "update"])]),
        role(
            "helpdesk",
            vec![grant("device", &["view", "list"]), grant("device", &["reboot"]), grant("device", &["view_logs"])],
        ),
    ]
}

/// A device of org `o<org>` at its site `s1` (id `d<org>`).
pub fn device(org: usize) -> Res {
    Res {
        kind: "device".into(),
        id: format!("d{org}"),
        tenant: format!("o{org}"),
        group: Some("s1".into()),
        created_by: None,
        modified_by_super_admin: false,
    }
}

/// Ana: 10 assignments over the 100 orgs (`o0`, `o10`, ..., `o90`), roles cycling as in
/// engine/benches/decide.rs and bench/js.
fn ana() -> User {
    const ROLES: [&str; 5] = ["network_admin", "observer", "installer", "helpdesk", "network_admin"];
    let assignments = (0..10)
        .map(|i| Assignment {
            role: ROLES.get(i % ROLES.len()).copied().unwrap_or("observer").into(),
            tenant: format!("o{}", i * 10),
        })
        .collect();
    User { id: "ana".into(), assignments }
}

fn msp(id: &str, cases: Vec<Case>) -> Scenario {
    Scenario {
        id: id.into(),
        family: Family::Msp,
        sources: vec![("msp.yaml".into(), MSP_YAML.into())],
        roles: msp_roles(),
        cedar_templates: None,
        msp: "acme".into(),
        users: vec![ana()],
        tenants: (0..100).map(|i| format!("o{i}")).collect(),
        cases,
    }
}

/// (a) MSP role on one of 100 orgs, principal with 10 assignments: `update` a device of an
/// assigned org (o50) and of an unassigned one (o61).
pub fn scenario_a() -> Scenario {
    let decide = |org| Work::Decide { user: 0, action: "update".into(), resource: device(org) };
    msp(
        "a",
        vec![
            Case { id: "allowed", title: "`update` a device of an assigned org (o50)".into(), work: decide(50) },
            Case { id: "denied", title: "`update` a device of an unassigned org (o61)".into(), work: decide(61) },
        ],
    )
}

/// (c) every action of one device (o50) in one call.
pub fn scenario_c() -> Scenario {
    let work = Work::Actions { user: 0, resource: device(50), actions: strings(&DEVICE_ACTIONS) };
    msp("c", vec![Case { id: "actions", title: "allowed actions of one device (10 actions, o50)".into(), work }])
}

/// (d) 100 devices (one per org) x the 10 actions of `device`.
pub fn scenario_d() -> Scenario {
    let work = Work::Batch { user: 0, resources: (0..100).map(device).collect(), actions: strings(&DEVICE_ACTIONS) };
    msp("d", vec![Case { id: "batch", title: "100 devices (one per org) x 10 actions".into(), work }])
}

/// (b) the Site24x7 Operator (`op`, customer account c1 of MSP zylker) updates a maintenance
/// window it created (w1) and one `hp` created (w3).
pub fn scenario_b() -> Scenario {
    let window = |id: &str, by: &str| Res {
        kind: "maintenance_window".into(),
        id: id.into(),
        tenant: "c1".into(),
        group: None,
        created_by: Some(by.into()),
        modified_by_super_admin: false,
    };
    let decide = |r| Work::Decide { user: 0, action: "update".into(), resource: r };
    let read = ["view", "list"];
    let operator = RoleDef {
        name: "operator".into(),
        grants: vec![
            grant("maintenance_window", &read),
            grant("maintenance_window", &["create"]),
            Grant {
                kind: "maintenance_window".into(),
                actions: strings(&["update", "delete"]),
                when: Some(Condition::OwnUnmodified),
            },
        ],
        web_client_only: true,
    };
    Scenario {
        id: "b".into(),
        family: Family::Site24x7,
        sources: vec![("roles.yaml".into(), SITE24X7_YAML.into())],
        roles: vec![operator],
        cedar_templates: None,
        msp: "zylker".into(),
        users: vec![User {
            id: "op".into(),
            assignments: vec![Assignment { role: "operator".into(), tenant: "c1".into() }],
        }],
        tenants: vec!["c1".into(), "c2".into(), "c3".into()],
        cases: vec![
            Case {
                id: "own",
                title: "Operator `update`s a maintenance window it created".into(),
                work: decide(window("w1", "op")),
            },
            Case {
                id: "other",
                title: "Operator `update`s a window another user (`hp`) created".into(),
                work: decide(window("w3", "hp")),
            },
        ],
    }
}

/// The growth sizes: roles, tenants and assignments together.
pub const GROWTH: [usize; 4] = [10, 100, 1_000, 10_000];

/// The actions role `r` of the growth policy grants on `device` (3 of the 10).
fn growth_actions(r: usize) -> Vec<&'static str> {
    (0..3).filter_map(|j| DEVICE_ACTIONS.get((r + j) % DEVICE_ACTIONS.len()).copied()).collect()
}

/// Growth: `n` roles (`role<r>`, rank r, 3 `device` actions each), `n` orgs, `n` assignments:
/// ana holds 10 of them (role and org `i*n/10`), the others are held by `n - 10` other users
/// (one each). The case: ana, the first action of its role at o`5n/10`, on a device there.
pub fn scenario_growth(n: usize) -> Scenario {
    let n = n.max(10);
    let mut yaml = String::with_capacity(n * 120);
    yaml.push_str("policy: growth\ncombine: highest_rank\n");
    yaml.push_str("scopes:\n  msp: {}\n  org: { parent: msp, tenant: true }\n  site: { parent: org }\n");
    let _ = writeln!(yaml, "resources:\n  device: {{ actions: [{}], scopes: [org, site] }}", DEVICE_ACTIONS.join(", "));
    yaml.push_str("roles:\n");
    let mut templates = String::with_capacity(n * 200);
    let mut roles = Vec::with_capacity(n);
    for r in 0..n {
        let actions = growth_actions(r);
        let _ = writeln!(
            yaml,
            "  role{r}:\n    rank: {r}\n    held_at: [msp, org]\n    grants: [{{ resources: [device], actions: [{}] }}]",
            actions.join(", ")
        );
        let cedar: Vec<String> = actions.iter().map(|a| format!("Msp::Action::\"{a}\"")).collect();
        let _ = writeln!(
            templates,
            "@id(\"role{r}\")\npermit (principal in ?principal, action in [{}], resource in ?resource);",
            cedar.join(", ")
        );
        roles.push(role(&format!("role{r}"), vec![grant("device", &actions)]));
    }
    let ana = User {
        id: "ana".into(),
        assignments: (0..10)
            .map(|i| Assignment { role: format!("role{}", i * n / 10), tenant: format!("o{}", i * n / 10) })
            .collect(),
    };
    let mut users = vec![ana];
    for k in 0..n.saturating_sub(10) {
        users.push(User {
            id: format!("u{k}"),
            assignments: vec![Assignment {
                role: format!("role{}", (k * 7) % n),
                tenant: format!("o{}", (k * 13) % n),
            }],
        });
    }
    let at = 5 * n / 10;
    let action = growth_actions(at).first().copied().unwrap_or("view").to_owned();
    let resource = device(at);
    Scenario {
        id: format!("growth-{n}"),
        family: Family::Msp,
        sources: vec![("growth.yaml".into(), yaml)],
        roles,
        cedar_templates: Some(templates),
        msp: "acme".into(),
        users,
        tenants: (0..n).map(|i| format!("o{i}")).collect(),
        cases: vec![Case {
            id: "decide",
            title: format!("`{action}` a device of o{at}, where ana holds role{at}"),
            work: Work::Decide { user: 0, action, resource },
        }],
    }
}
