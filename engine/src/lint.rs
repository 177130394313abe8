//! Lints: policies that compile but say something other than their author meant. Each is a
//! warning with a stable code and a hint (`rolescope check --deny-warnings` makes them fail).
//!
//! - `RS070` a role includes a role whose unconditional deny cancels one of its own grants;
//! - `RS071` a deny reads an attribute that may be absent without testing it with `has`: when
//!   it is absent the condition cannot be evaluated and the deny applies to everyone;
//! - `RS072` a grant's condition reads an attribute a route takes from a request header, which
//!   the caller controls (`x-criticality: 1`): the caller can grant itself the action;
//! - `RS073` a grant no principal can reach: its role is held (directly or through roles that
//!   include it) only where no instance of the kinds it names can live;
//! - `RS074` a role no one can be given: the policy delegates assignments, and no role that may
//!   delegate ranks high enough (or is held high enough) to assign it.
//!
//! Runs on a compiled policy, only when it has no errors (feature `compiler`).

use crate::compile::Ctx;
use crate::diag::codes;
use crate::expr::{Expr, Var};
use crate::policy::{Effect, KindId, Policy, Role, RoleId, Rule};

/// Linear in the size of the policy (10,000 roles and 100,000 grants compile in milliseconds).
pub(crate) fn lint(policy: &Policy, cx: &mut Ctx) {
    let closures: Vec<Vec<RoleId>> = (0..policy.roles.len()).map(|i| closure(policy, i)).collect();
    let mut by_role: Vec<Vec<&Rule>> = vec![Vec::new(); policy.roles.len()];
    for r in &policy.rules {
        if let Some(slot) = r.role.and_then(|id| by_role.get_mut(id as usize)) {
            slot.push(r);
        }
    }
    included_denies(policy, &closures, &by_role, cx);
    unguarded_denies(policy, cx);
    header_conditions(policy, cx);
    unreachable_grants(policy, &closures, &by_role, cx);
    unassignable_roles(policy, cx);
}

/// The roles `i` includes, transitively (itself first).
fn closure(policy: &Policy, i: usize) -> Vec<RoleId> {
    let mut out: Vec<RoleId> = Vec::new();
    let mut work = vec![RoleId::try_from(i).unwrap_or(RoleId::MAX)];
    while let Some(r) = work.pop() {
        if out.contains(&r) {
            continue;
        }
        out.push(r);
        if let Some(role) = policy.role(r) {
            work.extend(role.includes.iter().copied());
        }
    }
    out
}

fn rules_of<'a>(by_role: &'a [Vec<&'a Rule>], role: RoleId, effect: Effect) -> impl Iterator<Item = &'a Rule> {
    by_role.get(role as usize).into_iter().flatten().copied().filter(move |r| r.effect == effect)
}

fn role_name(policy: &Policy, r: RoleId) -> &str {
    policy.role(r).map(|r| r.name.as_str()).unwrap_or("?")
}

fn kind_name(policy: &Policy, k: KindId) -> &str {
    policy.kind(k).map(|k| k.name.as_str()).unwrap_or("?")
}

fn action_names(policy: &Policy, k: KindId, set: u128) -> String {
    let names: Vec<&str> = policy
        .kind(k)
        .map(|k| {
            k.actions.iter().enumerate().filter(|(i, _)| set & (1u128 << i) != 0).map(|(_, a)| a.as_str()).collect()
        })
        .unwrap_or_default();
    names.join(", ")
}

/// RS070.
fn included_denies(policy: &Policy, closures: &[Vec<RoleId>], by_role: &[Vec<&Rule>], cx: &mut Ctx) {
    for (i, cl) in closures.iter().enumerate() {
        let me = RoleId::try_from(i).unwrap_or(RoleId::MAX);
        if cl.len() < 2 {
            continue;
        }
        for g in rules_of(by_role, me, Effect::Grant) {
            for &other in cl.iter().filter(|r| **r != me) {
                for d in rules_of(by_role, other, Effect::Deny).filter(|d| d.cond.is_none()) {
                    for (gk, gset) in &g.targets {
                        let Some(dset) = d.targets.iter().find(|(dk, _)| dk == gk).map(|(_, s)| *s) else {
                            continue;
                        };
                        let both = gset & dset;
                        if both == 0 {
                            continue;
                        }
                        cx.warn(
                            codes::LINT_INCLUDED_DENY,
                            g.location.clone(),
                            format!(
                                "this grant of `{}` on `{}` never applies: role `{}` includes `{}`, whose deny at {} denies it unconditionally",
                                action_names(policy, *gk, both),
                                kind_name(policy, *gk),
                                role_name(policy, me),
                                role_name(policy, other),
                                d.location
                            ),
                            "an included role's denies apply to every role that includes it; move the deny to a role of its own, or drop the grant",
                        );
                    }
                }
            }
        }
    }
}

/// The attributes an expression reads outside `has`, and those it tests with `has`.
fn reads(e: &Expr) -> (Vec<Var>, Vec<Var>) {
    let (mut read, mut has) = (Vec::new(), Vec::new());
    e.walk(|x| {
        match x {
            Expr::Var(v) if !read.contains(v) => read.push(*v),
            Expr::Has(v) if !has.contains(v) => has.push(*v),
            _ => {}
        }
        true
    });
    (read, has)
}

fn var_name(policy: &Policy, v: Var) -> Option<String> {
    Some(match v {
        Var::PrincipalAttr(i) => format!("principal.{}", policy.principal_attrs.get(usize::from(i))?.0),
        Var::ContextAttr(i) => format!("context.{}", policy.context_attrs.get(usize::from(i))?.0),
        Var::ResourceAttr(i) => format!("resource.{}", policy.resource_attr_names.get(usize::from(i))?),
        _ => return None,
    })
}

/// Can `v` be absent from a request to a rule on `kinds`? (declared without a default)
fn optional(policy: &Policy, v: Var, kinds: &[KindId]) -> bool {
    match v {
        Var::PrincipalAttr(i) => policy.principal_defaults.get(usize::from(i)).is_some_and(Option::is_none),
        Var::ContextAttr(i) => policy.context_defaults.get(usize::from(i)).is_some_and(Option::is_none),
        Var::ResourceAttr(i) => {
            kinds.iter().filter_map(|k| policy.kind(*k)).any(|k| !k.defaults.iter().any(|(a, _)| *a == i))
        }
        _ => false,
    }
}

/// RS071.
fn unguarded_denies(policy: &Policy, cx: &mut Ctx) {
    for d in policy.rules.iter().filter(|r| r.effect == Effect::Deny) {
        let Some(cond) = &d.cond else { continue };
        let (read, has) = reads(cond);
        let kinds: Vec<KindId> = d.targets.iter().map(|(k, _)| *k).collect();
        let absent: Vec<String> = read
            .into_iter()
            .filter(|v| !has.contains(v) && optional(policy, *v, &kinds))
            .filter_map(|v| var_name(policy, v))
            .collect();
        let Some(first) = absent.first() else { continue };
        cx.warn(
            codes::LINT_UNGUARDED_DENY,
            d.location.clone(),
            format!(
                "this deny reads `{}`, which a request may leave out (no default): then its condition cannot be evaluated and the deny applies to everyone",
                absent.join("`, `")
            ),
            &format!(
                "test it first (`has {first} and ...`) or give the attribute a default; if denying everyone without it is meant, say so with `not has {first} or ...`"
            ),
        );
    }
}

/// RS072.
fn header_conditions(policy: &Policy, cx: &mut Ctx) {
    let Some(routes) = &policy.routes else { return };
    for (label, kind, action, var, header) in routes.header_attributes(policy) {
        let Some(abit) = policy.kind(kind).and_then(|k| k.action_index.get(&action)).map(|a| 1u128 << a) else {
            continue;
        };
        for g in policy.rules.iter().filter(|r| r.effect == Effect::Grant) {
            let Some(cond) = &g.cond else { continue };
            if !g.targets.iter().any(|(k, set)| *k == kind && set & abit != 0) {
                continue;
            }
            if !reads(cond).0.contains(&var) {
                continue;
            }
            let name = var_name(policy, var).unwrap_or_default();
            cx.warn(
                codes::LINT_HEADER_GRANT,
                g.location.clone(),
                format!(
                    "this grant's condition reads `{name}`, which route `{label}` takes from the `{header}` header: the caller sets it, so the caller can grant itself `{action}`"
                ),
                "take the value from the path, the token or a lookup the gateway makes; a header may only narrow access (use it in a deny)",
            );
        }
    }
}

/// The levels at and below any level in `held`.
fn reach(policy: &Policy, held: u64) -> u64 {
    let mut out = 0u64;
    for (i, _) in policy.levels.iter().enumerate() {
        let Ok(id) = u8::try_from(i) else { continue };
        let mut cur = Some(id);
        let mut steps = 0;
        while let Some(c) = cur {
            if held & (1u64 << c) != 0 {
                out |= 1u64 << i;
                break;
            }
            steps += 1;
            if steps > 64 {
                break;
            }
            cur = policy.level(c).and_then(|l| l.parent);
        }
    }
    out
}

fn level_names(policy: &Policy, set: u64) -> String {
    let names: Vec<&str> = policy
        .levels
        .iter()
        .enumerate()
        .filter(|(i, _)| set & (1u64 << i) != 0)
        .map(|(_, l)| l.name.as_str())
        .collect();
    names.join(", ")
}

/// RS073.
fn unreachable_grants(policy: &Policy, closures: &[Vec<RoleId>], by_role: &[Vec<&Rule>], cx: &mut Ctx) {
    // where each role's rules apply: held directly, or through every role that includes it
    let mut held_via = vec![0u64; policy.roles.len()];
    for (j, cl) in closures.iter().enumerate() {
        let h = policy.roles.get(j).map(|r: &Role| r.held_at).unwrap_or(0);
        for r in cl {
            if let Some(slot) = held_via.get_mut(*r as usize) {
                *slot |= h;
            }
        }
    }
    let mut reach_of: Vec<(u64, u64)> = Vec::new();
    for (i, role) in policy.roles.iter().enumerate() {
        let me = RoleId::try_from(i).unwrap_or(RoleId::MAX);
        let held = held_via.get(i).copied().unwrap_or(0);
        let reachable = match reach_of.iter().find(|(h, _)| *h == held) {
            Some((_, r)) => *r,
            None => {
                let r = reach(policy, held);
                reach_of.push((held, r));
                r
            }
        };
        for g in rules_of(by_role, me, Effect::Grant) {
            let live = g.targets.iter().filter_map(|(k, _)| policy.kind(*k)).fold(0u64, |acc, k| acc | k.levels);
            if g.targets.is_empty() || live & reachable != 0 {
                continue;
            }
            let kinds: Vec<&str> = g.targets.iter().map(|(k, _)| kind_name(policy, *k)).collect();
            cx.warn(
                codes::LINT_UNREACHABLE_GRANT,
                g.location.clone(),
                format!(
                    "no principal can use this grant: `{}` is held at {} (and reaches what is below), but instances of `{}` live only at {}",
                    role.name,
                    level_names(policy, held),
                    kinds.join("`, `"),
                    level_names(policy, live),
                ),
                "hold the role higher (`held_at`), or grant on kinds that live where it is held",
            );
        }
    }
}

/// RS074.
fn unassignable_roles(policy: &Policy, cx: &mut Ctx) {
    let Some(del) = &policy.delegation else { return };
    let abit = 1u128 << del.action;
    // roles that may delegate, with their rank and the levels they reach
    // per set of levels a delegating role reaches, the highest rank among them
    let mut delegators: Vec<(i64, u64)> = Vec::new();
    let mut by_held: Vec<(u64, i64)> = Vec::new();
    for r in policy
        .roles
        .iter()
        .filter(|r| r.table.get(del.kind).is_some_and(|kr| kr.grants.iter().any(|e| e.actions & abit != 0)))
    {
        match by_held.iter_mut().find(|(h, _)| *h == r.held_at) {
            Some((_, rank)) => *rank = (*rank).max(r.rank),
            None => by_held.push((r.held_at, r.rank)),
        }
    }
    for (held, rank) in by_held {
        delegators.push((rank, reach(policy, held)));
    }
    for role in policy.roles.iter().filter(|r| r.assignable) {
        let ok = delegators.iter().any(|(rank, reaches)| {
            let high_enough = if del.strictly_below { role.rank < *rank } else { role.rank <= *rank };
            high_enough && reaches & role.held_at != 0
        });
        if ok {
            continue;
        }
        cx.warn(
            codes::LINT_UNASSIGNABLE_ROLE,
            role.location.clone(),
            format!(
                "no one can be given role `{}`: no role that may delegate (`{}` on `{}`) ranks high enough (rank {}) and is held where it is held ({})",
                role.name,
                policy.kind(del.kind).and_then(|k| k.actions.get(usize::from(del.action))).map(String::as_str).unwrap_or("?"),
                kind_name(policy, del.kind),
                role.rank,
                level_names(policy, role.held_at),
            ),
            "lower its rank, let a higher role delegate, or mark it `assignable: false` if it is only ever filed",
        );
    }
}
