//! The compiled policy: interned ids, action bitsets and precomputed role closures.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::diag::{Diagnostic, SourceLocation};
use crate::expr::Expr;
use crate::value::{Type, Value};

pub(crate) type KindId = u32;
pub(crate) type RoleId = u32;
pub(crate) type RuleId = u32;
pub(crate) type LevelId = u8;

/// A set of actions of one resource kind (at most 128 actions per kind).
pub(crate) type ActionSet = u128;

pub(crate) fn bit(action: u8) -> ActionSet {
    1u128 << (action & 127)
}

/// How decisions combine several assignments that cover the same scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Combine {
    /// Every covering assignment contributes its grants and denies.
    Union,
    /// Only the covering assignments of the highest rank contribute ("the higher role takes
    /// precedence").
    HighestRank,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Level {
    pub(crate) name: String,
    pub(crate) parent: Option<LevelId>,
    pub(crate) tenant: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Kind {
    pub(crate) name: String,
    pub(crate) actions: Vec<String>,
    /// Rebuilt from `actions` when a bundle is loaded.
    #[serde(skip)]
    pub(crate) action_index: FxHashMap<String, u8>,
    /// Action names plus permission levels defined for this kind.
    #[serde(with = "sorted")]
    pub(crate) vocab: FxHashMap<String, ActionSet>,
    /// Global resource attribute id -> type, for attributes this kind declares.
    #[serde(with = "sorted")]
    pub(crate) attrs: FxHashMap<u16, Type>,
    /// Rebuilt from `attrs` and the policy's attribute names when a bundle is loaded.
    #[serde(skip)]
    pub(crate) attr_names: FxHashMap<String, u16>,
    /// Default values of attributes, by global resource attribute id.
    pub(crate) defaults: Vec<(u16, Value)>,
    /// Levels instances may live at (bitmask); `u64::MAX` when unrestricted.
    pub(crate) levels: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Effect {
    Grant,
    Deny,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Rule {
    pub(crate) effect: Effect,
    /// The role that declares the rule (`None` for policy-wide denies).
    pub(crate) role: Option<RoleId>,
    pub(crate) cond: Option<Expr>,
    pub(crate) cond_text: Option<String>,
    pub(crate) description: Option<String>,
    #[serde(with = "crate::diag::wire_location")]
    pub(crate) location: SourceLocation,
    pub(crate) targets: Vec<(KindId, ActionSet)>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Entry {
    pub(crate) actions: ActionSet,
    pub(crate) rule: RuleId,
    pub(crate) conditional: bool,
}

/// The rules one role (with everything it includes) has for one kind.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KindRules {
    pub(crate) kind: KindId,
    /// Actions granted without a condition.
    pub(crate) allow: ActionSet,
    /// Actions any deny mentions.
    pub(crate) deny: ActionSet,
    pub(crate) grants: Vec<Entry>,
    pub(crate) denies: Vec<Entry>,
}

/// Rules indexed by kind (sorted by kind id for binary search).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleTable {
    pub(crate) by_kind: Vec<KindRules>,
}

impl RuleTable {
    #[inline]
    pub(crate) fn get(&self, kind: KindId) -> Option<&KindRules> {
        self.by_kind.binary_search_by_key(&kind, |k| k.kind).ok().and_then(|i| self.by_kind.get(i))
    }

    #[cfg(feature = "compiler")]
    pub(crate) fn add(&mut self, kind: KindId, actions: ActionSet, rule: RuleId, effect: Effect, conditional: bool) {
        let pos = match self.by_kind.binary_search_by_key(&kind, |k| k.kind) {
            Ok(p) => p,
            Err(p) => {
                self.by_kind.insert(p, KindRules { kind, ..KindRules::default() });
                p
            }
        };
        let Some(kr) = self.by_kind.get_mut(pos) else { return };
        let e = Entry { actions, rule, conditional };
        match effect {
            Effect::Grant => {
                if !conditional {
                    kr.allow |= actions;
                }
                kr.grants.push(e);
            }
            Effect::Deny => {
                kr.deny |= actions;
                kr.denies.push(e);
            }
        }
    }
}

/// How a role held above the tenant level treats an assignment's `tenants` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum TenantAccess {
    /// As the assignment says (no list: every tenant).
    AsAssigned,
    /// Every tenant, whatever the list says.
    All,
    /// Only listed tenants; no list means none.
    Listed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Role {
    pub(crate) name: String,
    pub(crate) title: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) rank: i64,
    pub(crate) assignable: bool,
    pub(crate) tenant_access: TenantAccess,
    pub(crate) held_at: u64,
    pub(crate) includes: Vec<RoleId>,
    #[serde(with = "crate::diag::wire_location")]
    pub(crate) location: SourceLocation,
    /// Own rules plus those of every included role.
    pub(crate) table: RuleTable,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Delegation {
    pub(crate) kind: KindId,
    pub(crate) action: u8,
    pub(crate) strictly_below: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Invariant {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) roles: Vec<RoleId>,
    pub(crate) level: LevelId,
    pub(crate) at_least: u32,
}

/// Status of a principal. Anything but `Active` is denied everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// May act, subject to its roles.
    Active,
    /// Denied everything until restored.
    Suspended,
    /// Denied everything for good.
    Deleted,
}

impl Status {
    pub(crate) fn parse(s: Option<&str>) -> Option<Status> {
        match s {
            None | Some("active") => Some(Status::Active),
            Some("suspended") => Some(Status::Suspended),
            Some("deleted") => Some(Status::Deleted),
            Some(_) => None,
        }
    }
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Suspended => "suspended",
            Status::Deleted => "deleted",
        }
    }
}

/// A scope path with the hash of each of its prefixes (one per segment), so that "is this
/// node inside that subtree" is one integer compare in the common (negative) case.
#[derive(Debug, Clone)]
pub(crate) struct ScopeKey {
    pub(crate) path: Box<str>,
    /// `hashes[d]` hashes the first `d + 1` segments.
    pub(crate) hashes: Box<[u64]>,
}

impl ScopeKey {
    pub(crate) fn new(path: &str) -> Self {
        // FNV-1a over the bytes, recorded at every segment boundary.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut hashes = Vec::with_capacity(4);
        for &b in path.as_bytes() {
            if b == b'/' {
                hashes.push(h);
            }
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        hashes.push(h);
        Self { path: path.into(), hashes: hashes.into_boxed_slice() }
    }

    /// Number of segments minus one.
    pub(crate) fn depth(&self) -> usize {
        self.hashes.len().saturating_sub(1)
    }

    pub(crate) fn last_hash(&self) -> u64 {
        self.hashes.last().copied().unwrap_or(0)
    }

    /// Is `self` the node `other` or one of its descendants?
    #[inline]
    pub(crate) fn within(&self, other: &ScopeKey) -> bool {
        let d = other.depth();
        self.hashes.get(d) == Some(&other.last_hash())
            && self
                .path
                .as_bytes()
                .get(..other.path.len())
                .is_some_and(|p| crate::ids::same_bytes(p, other.path.as_bytes()))
    }
}

#[derive(Debug, Clone)]
pub(crate) struct PreparedAssignment {
    /// Position in the principal's assignment list as given.
    pub(crate) index: u16,
    pub(crate) role: RoleId,
    pub(crate) rank: i64,
    #[cfg_attr(
        not(feature = "compiler"),
        expect(dead_code, reason = "read by `check_invariants` (feature `compiler`)")
    )]
    pub(crate) level: LevelId,
    pub(crate) scope: ScopeKey,
    pub(crate) tenants: Option<Box<[ScopeKey]>>,
}

/// A principal checked against a policy: roles resolved, scopes validated, attributes typed.
/// Build it once (per token, per session) and decide many times.
#[derive(Debug, Clone)]
pub struct PreparedPrincipal {
    /// The [`Policy::stamp`] of the policy that prepared it.
    pub(crate) stamp: u64,
    pub(crate) id: Box<str>,
    pub(crate) status: Status,
    pub(crate) attrs: Box<[Option<Value>]>,
    pub(crate) assignments: Vec<PreparedAssignment>,
    /// Assignments that were dropped (unknown role, bad scope, level not allowed), with why.
    pub(crate) ignored: Vec<(u16, String)>,
    /// The assignments as given (for reports).
    pub(crate) source: Vec<crate::request::Assignment>,
}

impl PreparedPrincipal {
    /// The principal's id.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The principal's status.
    pub fn status(&self) -> Status {
        self.status
    }
    /// Assignments that cannot take effect under this policy, with the reason for each.
    pub fn ignored_assignments(&self) -> impl Iterator<Item = (usize, &str)> {
        self.ignored.iter().map(|(i, why)| (usize::from(*i), why.as_str()))
    }
}

/// A resource checked against a policy.
#[derive(Debug, Clone)]
pub struct PreparedResource {
    pub(crate) stamp: u64,
    pub(crate) kind: KindId,
    /// A `String`, not a `Box<str>`: a cached resource takes a new id without allocating
    /// (`ResourceCache`).
    pub(crate) id: String,
    pub(crate) scope: ScopeKey,
    pub(crate) attrs: Box<[Option<Value>]>,
}

impl PreparedResource {
    /// The resource id.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The scope path.
    pub fn scope(&self) -> &str {
        &self.scope.path
    }
}

/// Request context checked against a policy.
#[derive(Debug, Clone, Default)]
pub struct PreparedContext {
    pub(crate) stamp: u64,
    pub(crate) attrs: Box<[Option<Value>]>,
}

/// A role as declared: what a UI needs to list roles.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RoleSummary {
    /// Role name.
    pub name: String,
    /// Display title.
    pub title: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Rank (for precedence and delegation).
    pub rank: i64,
    /// Whether the role may be assigned.
    pub assignable: bool,
    /// Scope levels the role may be held at.
    pub held_at: Vec<String>,
    /// Where the role is declared.
    pub source: String,
}

/// A compiled policy. Cheap to share (`Send + Sync`); every decision method takes `&self`.
///
/// Serialized (serde) as the compiled part of a bundle (`bundle.rs`): the fields marked
/// `skip` are indexes and derived state, rebuilt and checked when a bundle is loaded.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) combine: Combine,
    pub(crate) levels: Vec<Level>,
    /// The level marked `tenant: true`, if any.
    #[serde(skip)]
    pub(crate) tenant_level: Option<LevelId>,
    pub(crate) kinds: Vec<Kind>,
    #[serde(skip)]
    pub(crate) kind_index: FxHashMap<String, KindId>,
    pub(crate) resource_attr_names: Vec<String>,
    pub(crate) principal_attrs: Vec<(String, Type)>,
    pub(crate) principal_defaults: Box<[Option<Value>]>,
    #[serde(skip)]
    pub(crate) principal_attr_index: FxHashMap<String, u16>,
    pub(crate) context_attrs: Vec<(String, Type)>,
    pub(crate) context_defaults: Box<[Option<Value>]>,
    #[serde(skip)]
    pub(crate) context_attr_index: FxHashMap<String, u16>,
    pub(crate) roles: Vec<Role>,
    #[serde(skip)]
    pub(crate) role_index: FxHashMap<String, RoleId>,
    pub(crate) global: RuleTable,
    pub(crate) rules: Vec<Rule>,
    pub(crate) delegation: Option<Delegation>,
    pub(crate) invariants: Vec<Invariant>,
    /// The principals filed with the policy as written, in file order; prepared again (with
    /// this policy's stamp) into `principals` when a bundle is loaded.
    #[serde(with = "crate::bundle::json_text")]
    pub(crate) filed: Vec<crate::request::Principal>,
    #[serde(skip)]
    pub(crate) principals: FxHashMap<String, PreparedPrincipal>,
    #[serde(skip)]
    pub(crate) principal_order: Vec<String>,
    #[serde(skip)]
    pub(crate) warnings: Vec<Diagnostic>,
    #[serde(skip)]
    pub(crate) revision: String,
    /// The first 8 bytes of the revision hash: prepared inputs carry it, and a decision on
    /// inputs prepared by another policy (e.g. before a reload) denies.
    #[serde(skip)]
    pub(crate) stamp: u64,
    /// A context with only the declared defaults, built once.
    #[serde(skip)]
    pub(crate) empty_context: PreparedContext,
    /// The HTTP route table (`routes:`), if the policy has one.
    pub(crate) routes: Option<Box<crate::route::RouteTable>>,
}

/// (De)serializes a hash map as a list of pairs sorted by key: the same policy always writes
/// the same bytes (its revision is their hash), and a key may appear only once.
mod sorted {
    use std::hash::Hash;

    use rustc_hash::FxHashMap;
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<K: Ord + Serialize, V: Serialize, S: Serializer>(
        map: &FxHashMap<K, V>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut pairs: Vec<(&K, &V)> = map.iter().collect();
        pairs.sort_unstable_by(|a, b| a.0.cmp(b.0));
        pairs.serialize(s)
    }

    pub(super) fn deserialize<'de, K, V, D>(d: D) -> Result<FxHashMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Eq + Hash,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        let pairs: Vec<(K, V)> = Vec::deserialize(d)?;
        let n = pairs.len();
        let map: FxHashMap<K, V> = pairs.into_iter().collect();
        if map.len() == n { Ok(map) } else { Err(D::Error::custom("duplicate key")) }
    }
}

impl Policy {
    /// The policy's name (`policy:` in its role files).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The policy's description, if any.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }
    /// How covering assignments combine.
    pub fn combine(&self) -> Combine {
        self.combine
    }
    /// Content hash of the sources the policy was compiled from (`sha256:...`).
    pub fn revision(&self) -> &str {
        &self.revision
    }
    /// An empty context (no request facts; declared defaults apply).
    pub fn empty_context(&self) -> &PreparedContext {
        &self.empty_context
    }

    /// Warnings found while compiling.
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }
    /// Role names, in declaration order.
    pub fn role_names(&self) -> impl Iterator<Item = &str> {
        self.roles.iter().map(|r| r.name.as_str())
    }
    /// The roles, in declaration order, with their titles, ranks and where they may be held.
    pub fn roles(&self) -> Vec<RoleSummary> {
        self.roles
            .iter()
            .map(|r| RoleSummary {
                name: r.name.clone(),
                title: r.title.clone(),
                description: r.description.clone(),
                rank: r.rank,
                assignable: r.assignable,
                held_at: self
                    .levels
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| r.held_at & (1u64 << i) != 0)
                    .map(|(_, l)| l.name.clone())
                    .collect(),
                source: r.location.to_string(),
            })
            .collect()
    }
    /// Resource kind names, in declaration order.
    pub fn kind_names(&self) -> impl Iterator<Item = &str> {
        self.kinds.iter().map(|k| k.name.as_str())
    }
    /// The actions of a kind, in declaration order.
    pub fn actions_of(&self, kind: &str) -> Option<&[String]> {
        let id = self.kind_index.get(kind)?;
        self.kinds.get(*id as usize).map(|k| k.actions.as_slice())
    }
    /// The ids of the principals filed with the policy, in file order.
    pub fn principal_ids(&self) -> impl Iterator<Item = &str> {
        self.principal_order.iter().map(String::as_str)
    }
    /// A principal filed with the policy.
    pub fn principal(&self, id: &str) -> Option<&PreparedPrincipal> {
        self.principals.get(id)
    }
    /// A resource kind's attribute slots with its defaults filled in.
    pub(crate) fn resource_slots(&self, kind: &Kind) -> Vec<Option<Value>> {
        let mut v = vec![None; self.resource_attr_names.len()];
        for (id, val) in &kind.defaults {
            if let Some(slot) = v.get_mut(usize::from(*id)) {
                *slot = Some(val.clone());
            }
        }
        v
    }

    /// The number of grant and deny rules after expansion of matrices.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    pub(crate) fn kind(&self, id: KindId) -> Option<&Kind> {
        self.kinds.get(id as usize)
    }
    pub(crate) fn role(&self, id: RoleId) -> Option<&Role> {
        self.roles.get(id as usize)
    }
    pub(crate) fn rule(&self, id: RuleId) -> Option<&Rule> {
        self.rules.get(id as usize)
    }
    pub(crate) fn level(&self, id: LevelId) -> Option<&Level> {
        self.levels.get(usize::from(id))
    }

    /// Is `upper` a proper ancestor level of `lower`?
    pub(crate) fn level_above(&self, upper: LevelId, lower: LevelId) -> bool {
        let mut cur = self.level(lower).and_then(|l| l.parent);
        let mut steps = 0;
        while let Some(c) = cur {
            if c == upper {
                return true;
            }
            steps += 1;
            if steps > 64 {
                break;
            }
            cur = self.level(c).and_then(|l| l.parent);
        }
        false
    }

    /// Validate a scope path (`level:id/level:id/...`) and return the level of its last node.
    pub(crate) fn scope_level(&self, path: &str) -> Result<LevelId, String> {
        if path.is_empty() {
            return Err("scope is empty".into());
        }
        let mut prev: Option<LevelId> = None;
        for seg in path.split('/') {
            let Some((lvl, id)) = seg.split_once(':') else {
                return Err(format!("scope segment `{seg}` is not of the form `level:id`"));
            };
            if id.is_empty() {
                return Err(format!("scope segment `{seg}` has an empty id"));
            }
            if id.contains(|c: char| c.is_control() || c == ':') {
                return Err(format!("scope segment `{seg}` has a forbidden character"));
            }
            let Some(pos) = self.levels.iter().position(|l| l.name == lvl) else {
                return Err(format!("unknown scope level `{lvl}`"));
            };
            let level = LevelId::try_from(pos).map_err(|_| "too many levels".to_string())?;
            let parent = self.levels.get(pos).and_then(|l| l.parent);
            if parent != prev {
                return Err(match (prev.and_then(|p| self.level(p)), parent.and_then(|p| self.level(p))) {
                    (None, Some(want)) => {
                        format!("scope must start at a top level; `{lvl}` sits under `{}`", want.name)
                    }
                    (Some(got), _) => format!("level `{lvl}` cannot sit under `{}`", got.name),
                    (None, None) => format!("level `{lvl}` cannot start a scope"),
                });
            }
            prev = Some(level);
        }
        prev.ok_or_else(|| "scope is empty".to_string())
    }
}
