//! Principals and resources as written in suites and role files, with source spans, and the
//! checks that make a mistake in them an error at its line and column instead of a request
//! the engine quietly denies (an assignment ignored, an attribute refused, a scope refused).
//!
//! The same checks serve `principals:` in role files (compile) and the fixtures and inline
//! principals and resources of suites (`rolescope check` and `rolescope test`).

use serde::Deserialize;

use crate::compile::{loc, suggest};
use crate::diag::{Diagnostic, SourceLocation, codes};
use crate::model::{OrderedMap, S};
use crate::policy::{Policy, Status, TenantAccess};
use crate::request::{Assignment, Principal, Resource, Tenants};

/// A principal as written (fixture or filed), with spans.
#[derive(Debug, Deserialize, Default, Clone)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPrincipal {
    /// Identifier (defaults to the key it is filed under).
    #[serde(default)]
    pub(crate) id: String,
    /// `active` (default), `suspended` or `deleted`.
    #[serde(default)]
    pub(crate) status: Option<S<String>>,
    /// Typed attributes, checked against the policy's `attributes.principal`.
    #[serde(default)]
    pub(crate) attributes: OrderedMap<S<String>, serde_json::Value>,
    /// Role assignments.
    #[serde(default)]
    pub(crate) assignments: Vec<S<RawAssignment>>,
    /// Suites only: the fixture is deliberately one the policy cannot read in full (to test
    /// that what cannot take effect grants nothing). Its problems are then expected, not
    /// errors; a fixture so marked that has none is an error (the mark is stale).
    #[serde(default)]
    pub(crate) invalid: Option<S<bool>>,
}

/// An assignment as written, with spans.
#[derive(Debug, Deserialize, Clone)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAssignment {
    /// Role name.
    pub(crate) role: S<String>,
    /// The scope node the role is held at.
    pub(crate) scope: S<String>,
    /// `all`, or the tenants (paths) it reaches below `scope`.
    #[serde(default)]
    pub(crate) tenants: Option<S<Tenants>>,
}

/// A resource as written (suite fixture), with spans.
#[derive(Debug, Deserialize, Clone)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct RawResource {
    /// Resource kind.
    pub(crate) kind: S<String>,
    /// Identifier.
    #[serde(default)]
    pub(crate) id: String,
    /// Scope path of the resource.
    pub(crate) scope: S<String>,
    /// Typed attributes.
    #[serde(default)]
    pub(crate) attributes: OrderedMap<S<String>, serde_json::Value>,
}

impl RawPrincipal {
    /// The wire principal (`id` defaulting to `key`).
    pub(crate) fn to_principal(&self, key: &str) -> Principal {
        Principal {
            id: if self.id.is_empty() { key.to_owned() } else { self.id.clone() },
            status: self.status.as_ref().map(|s| s.value.clone()),
            attributes: self.attributes.0.iter().map(|(k, v)| (k.value.clone(), v.clone())).collect(),
            assignments: self
                .assignments
                .iter()
                .map(|a| Assignment {
                    role: a.value.role.value.clone(),
                    scope: a.value.scope.value.clone(),
                    tenants: a.value.tenants.as_ref().map(|t| t.value.clone()),
                })
                .collect(),
        }
    }
}

impl RawResource {
    /// The wire resource.
    pub(crate) fn to_resource(&self) -> Resource {
        Resource {
            kind: self.kind.value.clone(),
            id: self.id.clone(),
            scope: self.scope.value.clone(),
            attributes: self.attributes.0.iter().map(|(k, v)| (k.value.clone(), v.clone())).collect(),
        }
    }
}

/// Check a written principal against the policy: every problem is a diagnostic at its place
/// (errors: the engine would deny or ignore; warnings: the old implicit `tenants` form).
pub(crate) fn check_principal(policy: &Policy, file: &str, key: &S<String>, p: &RawPrincipal) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let who = if p.id.is_empty() { key.value.as_str() } else { p.id.as_str() };
    if let Some(s) = &p.status
        && Status::parse(Some(&s.value)).is_none()
    {
        out.push(
            Diagnostic::error(
                codes::BAD_FIXTURE,
                loc(file, s),
                format!("principal `{who}`: unknown status `{}`", s.value),
            )
            .hint(
                suggest(&s.value, ["active", "suspended", "deleted"].into_iter())
                    .unwrap_or_else(|| "use `active`, `suspended` or `deleted`".into()),
            ),
        );
    }
    for (k, v) in &p.attributes.0 {
        let single: serde_json::Map<String, serde_json::Value> = [(k.value.clone(), v.clone())].into_iter().collect();
        let probe = Principal { id: who.to_owned(), attributes: single, ..Principal::default() };
        if let Err(e) = policy.prepare_principal(&probe) {
            let hint = if policy.principal_attr_index.contains_key(&k.value) {
                None
            } else {
                suggest(&k.value, policy.principal_attrs.iter().map(|(n, _)| n.as_str()))
                    .or_else(|| Some("declare it under `attributes: principal:` in a role file".into()))
            };
            out.push(with_hint(
                Diagnostic::error(codes::BAD_FIXTURE, loc(file, k), format!("principal `{who}`: {}", e.message())),
                hint,
            ));
        }
    }
    for (i, a) in p.assignments.iter().enumerate() {
        out.extend(check_assignment(policy, file, who, i, a));
    }
    if let Some(mark) = p.invalid.as_ref().filter(|m| m.value) {
        if out.iter().any(Diagnostic::is_error) {
            return Vec::new();
        }
        return vec![
            Diagnostic::error(
                codes::BAD_FIXTURE,
                loc(file, mark),
                format!("principal `{who}` is marked `invalid: true`, but the policy reads all of it"),
            )
            .hint("remove the mark, or make the fixture the mistake it is meant to test"),
        ];
    }
    out
}

/// "did you mean" for the first segment of a scope path whose level is not declared.
pub(crate) fn scope_hint(policy: &Policy, scope: &str) -> Option<String> {
    let names = || policy.levels.iter().map(|l| l.name.as_str());
    scope
        .split('/')
        .filter_map(|seg| seg.split_once(':').map(|(l, _)| l))
        .find(|l| !names().any(|n| n == *l))
        .and_then(|l| suggest(l, names()))
}

/// "did you mean" for a resource kind the policy does not declare, else the list of kinds.
pub(crate) fn kind_hint(policy: &Policy, kind: &str) -> String {
    suggest(kind, policy.kind_names())
        .unwrap_or_else(|| format!("the kinds are: {}", policy.kind_names().collect::<Vec<_>>().join(", ")))
}

fn with_hint(d: Diagnostic, hint: Option<String>) -> Diagnostic {
    match hint {
        Some(h) => d.hint(h),
        None => d,
    }
}

/// One assignment: an error where it cannot take effect, at the field at fault; a warning
/// (with the fix) where it is held above the tenant level without saying which tenants.
fn check_assignment(policy: &Policy, file: &str, who: &str, i: usize, a: &S<RawAssignment>) -> Option<Diagnostic> {
    let raw = &a.value;
    let role_name = raw.role.value.as_str();
    let Some(&rid) = policy.role_index.get(role_name) else {
        return Some(with_hint(
            Diagnostic::error(
                codes::BAD_ASSIGNMENT,
                loc(file, &raw.role),
                format!("principal `{who}`: unknown role `{role_name}`; the assignment would be ignored"),
            ),
            suggest(role_name, policy.role_names()),
        ));
    };
    let role = policy.role(rid)?;
    let level = match policy.scope_level(&raw.scope.value) {
        Ok(l) => l,
        Err(e) => {
            return Some(with_hint(
                Diagnostic::error(
                    codes::BAD_ASSIGNMENT,
                    loc(file, &raw.scope),
                    format!("principal `{who}`: scope `{}`: {e}; the assignment would be ignored", raw.scope.value),
                ),
                scope_hint(policy, &raw.scope.value),
            ));
        }
    };
    if role.held_at & (1u64 << level) == 0 {
        let lname = policy.level(level).map(|l| l.name.as_str()).unwrap_or("?");
        let allowed: Vec<&str> = policy
            .levels
            .iter()
            .enumerate()
            .filter(|(j, _)| role.held_at & (1u64 << j) != 0)
            .map(|(_, l)| l.name.as_str())
            .collect();
        return Some(
            Diagnostic::error(
                codes::BAD_ASSIGNMENT,
                loc(file, &raw.scope),
                format!(
                    "principal `{who}`: role `{role_name}` may not be held at level `{lname}`; the assignment would be ignored"
                ),
            )
            .hint(format!("`{role_name}` is held at: {}", allowed.join(", "))),
        );
    }
    let wire = Assignment {
        role: role_name.to_owned(),
        scope: raw.scope.value.clone(),
        tenants: raw.tenants.as_ref().map(|t| t.value.clone()),
    };
    let index = u16::try_from(i).unwrap_or(u16::MAX);
    if let Err(e) = policy.prepare_assignment(index, &wire) {
        let at = raw.tenants.as_ref().map(|t| loc(file, t)).unwrap_or_else(|| loc(file, a));
        return Some(Diagnostic::error(
            codes::BAD_ASSIGNMENT,
            at,
            format!("principal `{who}`: {e}; the assignment would be ignored"),
        ));
    }
    if raw.tenants.is_none()
        && let Some((means, fix)) = policy.implicit_tenants(&wire)
    {
        return Some(
            Diagnostic::warning(
                codes::IMPLICIT_TENANTS,
                loc(file, a),
                format!(
                    "principal `{who}`: `{role_name}` at `{}` does not say which tenants it reaches; left out, that means {means}",
                    raw.scope.value
                ),
            )
            .hint(format!("write `{fix}` (or list the tenants) to keep this meaning")),
        );
    }
    None
}

/// Check a written resource: kind, scope and attributes, each at its place.
pub(crate) fn check_resource(policy: &Policy, file: &str, name: &str, r: &RawResource) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let Some(&kid) = policy.kind_index.get(&r.kind.value) else {
        out.push(with_hint(
            Diagnostic::error(
                codes::BAD_FIXTURE,
                loc(file, &r.kind),
                format!("resource `{name}`: unknown resource kind `{}`", r.kind.value),
            ),
            Some(kind_hint(policy, &r.kind.value)),
        ));
        return out;
    };
    let empty = serde_json::Map::new();
    if let Err(e) = policy.prepare_resource_of(kid, &r.scope.value, &r.id, &empty) {
        out.push(with_hint(
            Diagnostic::error(codes::BAD_FIXTURE, loc(file, &r.scope), format!("resource `{name}`: {}", e.message())),
            scope_hint(policy, &r.scope.value),
        ));
    }
    let Some(kind) = policy.kind(kid) else { return out };
    for (k, v) in &r.attributes.0 {
        let Some(gid) = kind.attr_names.get(&k.value) else {
            out.push(with_hint(
                Diagnostic::error(
                    codes::BAD_FIXTURE,
                    loc(file, k),
                    format!("resource `{name}`: resource kind `{}` has no attribute `{}`", kind.name, k.value),
                ),
                suggest(&k.value, kind.attr_names.keys().map(String::as_str)),
            ));
            continue;
        };
        let Some(&ty) = kind.attrs.get(gid) else { continue };
        if !v.is_null()
            && let Err(m) = crate::value::Value::from_json(ty, v)
        {
            out.push(Diagnostic::error(
                codes::BAD_FIXTURE,
                loc(file, k),
                format!("resource `{name}`: attribute `{}` must be a {}: {}", k.value, m.expected, m.detail),
            ));
        }
    }
    out
}

/// Check a context against the policy's `attributes.context`.
pub(crate) fn check_context(
    policy: &Policy,
    at: &SourceLocation,
    ctx: &serde_json::Map<String, serde_json::Value>,
) -> Option<Diagnostic> {
    let e = policy.prepare_context(ctx).err()?;
    let unknown: Vec<&str> =
        ctx.keys().filter(|k| !policy.context_attr_index.contains_key(*k)).map(String::as_str).collect();
    let hint = unknown
        .first()
        .and_then(|k| suggest(k, policy.context_attrs.iter().map(|(n, _)| n.as_str())))
        .or_else(|| (!unknown.is_empty()).then(|| "declare it under `attributes: context:` in a role file".into()));
    Some(with_hint(Diagnostic::error(codes::BAD_FIXTURE, at.clone(), format!("context: {}", e.message())), hint))
}

impl Policy {
    /// For an assignment without `tenants` held above the tenant level: what leaving it out
    /// means for its role, and the explicit form that says the same.
    pub(crate) fn implicit_tenants(&self, a: &Assignment) -> Option<(&'static str, &'static str)> {
        if a.tenants.is_some() {
            return None;
        }
        let role = self.role(*self.role_index.get(&a.role)?)?;
        let level = self.scope_level(&a.scope).ok()?;
        if !self.tenant_level.is_some_and(|t| self.level_above(level, t)) {
            return None;
        }
        Some(if role.tenant_access == TenantAccess::Listed {
            ("no tenant (the role has `tenant_access: listed`)", "tenants: []")
        } else {
            ("every tenant below it", "tenants: all")
        })
    }
}
