//! The generated policy the engine's `compile` and `decide/scale` benchmarks and the CLI's
//! `compile` bench part measure (included by path: `#[path = ...] mod generated_policy;`).

use std::fmt::Write as _;

/// A generated MSP policy: `roles` roles of rising rank over 10 resource kinds, each with
/// `grants_per_role` grants, some conditional; scopes msp > org > site.
pub(crate) fn generated_policy(roles: usize, grants_per_role: usize) -> String {
    let mut y = String::with_capacity(roles * grants_per_role * 80);
    y.push_str("policy: generated\ncombine: highest_rank\n");
    y.push_str("scopes:\n  msp: {}\n  org: { parent: msp, tenant: true }\n  site: { parent: org }\n");
    y.push_str("attributes:\n  principal:\n    mfa_required: { type: bool, default: false }\n  context:\n    channel: { type: string, default: web }\n");
    y.push_str("permissions:\n  read: [view, list]\n  edit: [read, create, update, delete]\n");
    y.push_str("resources:\n");
    for k in 0..10 {
        let _ = writeln!(
            y,
            "  kind{k}:\n    actions: [view, list, create, update, delete, run_command, export, approve]\n    attributes: {{ created_by: string }}"
        );
    }
    y.push_str("roles:\n");
    let actions = ["read", "edit", "run_command", "export", "approve", "update", "delete", "view"];
    for r in 0..roles {
        let _ = writeln!(y, "  role{r}:\n    rank: {r}\n    held_at: [msp, org]\n    grants:");
        for g in 0..grants_per_role {
            let kind = (r + g) % 10;
            let action = actions.get((r * 7 + g) % actions.len()).copied().unwrap_or("view");
            if g % 5 == 4 {
                let _ = writeln!(
                    y,
                    "      - {{ resources: [kind{kind}], actions: [{action}], when: \"resource.created_by == principal.id\" }}"
                );
            } else {
                let _ = writeln!(y, "      - {{ resources: [kind{kind}], actions: [{action}] }}");
            }
        }
    }
    y.push_str("denies:\n  - resources: [\"*\"]\n    actions: [\"*\"]\n    when: principal.mfa_required\n");
    y
}
