//! Interned names and cached resources: the fast path for hosts that ask many questions
//! about few kinds, actions and scopes (the plain wasm ABI, the gateway).
//!
//! - Kinds and actions have ids: a kind's id is its position in [`Policy::kind_names`], an
//!   action's its position in [`Policy::actions_of`] for its kind. A host resolves names once
//!   per policy ([`Policy::kind_id`], [`Policy::action_id`]) and passes ids afterwards
//!   ([`Policy::decide_ids`]).
//! - A [`ResourceCache`] keeps resources without attributes prepared, by kind and scope: the
//!   scope is parsed, validated and hashed once; later questions about that scope only hash
//!   the string and compare it, and give the cached resource its new id without allocating.
//!
//! Both give exactly the decisions of [`Policy::prepare_resource`] and [`Policy::decide`].

use std::collections::hash_map::Entry;
use std::hash::Hasher;

use rustc_hash::{FxHashMap, FxHasher};

use crate::decision::{Decision, Reason};
use crate::eval::{NoTrace, RequestError};
use crate::policy::{KindId, Policy, PreparedContext, PreparedPrincipal, PreparedResource, Status};

/// Prepared resources without attributes, by kind and scope, for
/// [`Policy::cached_resource`]. Bounded ([`ResourceCache::CAPACITY`] entries; a full cache
/// starts over) and tied to one policy revision: a cache used with another policy (e.g. after
/// a reload) drops its entries first.
#[derive(Debug, Default)]
pub struct ResourceCache {
    /// The [`Policy`] stamp of the entries.
    stamp: u64,
    /// By hash of (kind, scope); the entry's own kind and scope are compared on every hit.
    entries: FxHashMap<u64, PreparedResource>,
}

impl ResourceCache {
    /// Most (kind, scope) pairs kept. An MSP portal asks about few scopes again and again; a
    /// flood of distinct scopes only empties the cache now and then.
    pub const CAPACITY: usize = 1024;

    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of cached (kind, scope) pairs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drop every entry.
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

/// Byte-slice equality, eight bytes at a time. In the wasm module `==` on slices calls the
/// compiler's `memcmp`, a loop over single bytes; scope paths are compared on every cache hit
/// and every covering assignment.
#[inline]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut a, mut b) = (a, b);
    while let (Some((x, ra)), Some((y, rb))) = (a.split_first_chunk::<8>(), b.split_first_chunk::<8>()) {
        if u64::from_ne_bytes(*x) != u64::from_ne_bytes(*y) {
            return false;
        }
        (a, b) = (ra, rb);
    }
    a.iter().zip(b).all(|(x, y)| x == y)
}

/// The cache key of a (kind, scope) pair.
#[inline]
fn key(kind: KindId, scope: &str) -> u64 {
    let mut h = FxHasher::default();
    h.write(scope.as_bytes());
    h.write_u32(kind);
    h.finish()
}

impl Policy {
    /// The id of a resource kind: its position in [`Policy::kind_names`].
    pub fn kind_id(&self, name: &str) -> Option<u32> {
        self.kind_index.get(name).copied()
    }

    /// The id of an action of the kind `kind` (an id): its position in [`Policy::actions_of`].
    pub fn action_id(&self, kind: u32, name: &str) -> Option<u8> {
        self.kind(kind)?.action_index.get(name).copied()
    }

    /// Number of actions of the kind `kind` (an id); `None` for an unknown id.
    #[inline]
    pub fn action_count(&self, kind: u32) -> Option<usize> {
        self.kind(kind).map(|k| k.actions.len())
    }

    /// [`Policy::prepare_resource`] with the kind given by id (see [`Policy::kind_id`]). An
    /// unknown id is an `invalid_request`.
    pub fn prepare_resource_id(
        &self,
        kind: u32,
        scope: &str,
        id: &str,
        attributes: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<PreparedResource, RequestError> {
        self.prepare_resource_of(kind, scope, id, attributes)
    }

    /// A resource without attributes (the kind's defaults apply), as
    /// [`Policy::prepare_resource_id`] prepares it, from `cache`: on a hit the scope is neither
    /// parsed nor hashed again, and nothing is allocated. Errors are not cached.
    pub fn cached_resource<'c>(
        &self,
        cache: &'c mut ResourceCache,
        kind: u32,
        scope: &str,
        id: &str,
    ) -> Result<&'c PreparedResource, RequestError> {
        if cache.stamp != self.stamp {
            cache.entries.clear();
            cache.stamp = self.stamp;
        }
        let k = key(kind, scope);
        if cache.entries.len() >= ResourceCache::CAPACITY && !cache.entries.contains_key(&k) {
            cache.entries.clear();
        }
        let r = match cache.entries.entry(k) {
            Entry::Occupied(o)
                if o.get().kind == kind && same_bytes(o.get().scope.path.as_bytes(), scope.as_bytes()) =>
            {
                o.into_mut()
            }
            slot => {
                let fresh = self.prepare_resource_of(kind, scope, id, &serde_json::Map::new())?;
                match slot {
                    Entry::Occupied(o) => {
                        let r = o.into_mut();
                        *r = fresh;
                        r
                    }
                    Entry::Vacant(v) => v.insert(fresh),
                }
            }
        };
        if !same_bytes(r.id.as_bytes(), id.as_bytes()) {
            r.id.clear();
            r.id.push_str(id);
        }
        Ok(r)
    }

    /// [`Policy::decide`] with the action given by id (see [`Policy::action_id`]): the same
    /// decision, without looking the action's name up. An id the resource's kind does not have
    /// denies with `unknown_action`.
    pub fn decide_ids(
        &self,
        p: &PreparedPrincipal,
        action: u8,
        r: &PreparedResource,
        ctx: &PreparedContext,
    ) -> Decision {
        if (p.stamp ^ self.stamp) | (r.stamp ^ self.stamp) | (ctx.stamp ^ self.stamp) != 0 {
            return Decision::deny_with(
                Reason::InvalidRequest,
                "inputs were prepared by another policy revision; prepare them again".into(),
            );
        }
        if p.status != Status::Active {
            return Decision::deny(Reason::PrincipalInactive);
        }
        match self.kind(r.kind) {
            Some(k) if usize::from(action) < k.actions.len() => self.decide_inner(p, action, r, ctx, &mut NoTrace),
            k => Decision::deny_with(
                Reason::UnknownAction,
                format!("action id {action} is not an action of `{}`", k.map(|k| k.name.as_str()).unwrap_or("?")),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Principal, Resource, Source};

    fn policy(name: &str) -> Policy {
        let yaml = format!(
            r#"
policy: {name}
scopes:
  msp: {{}}
  org: {{ parent: msp, tenant: true }}
  site: {{ parent: org }}
resources:
  device:
    actions: [view, reboot]
    attributes: {{ tier: {{ type: number, default: 2 }} }}
    scopes: [org, site]
  site:
    actions: [view]
    scopes: [site]
roles:
  viewer:
    grants:
      - {{ resources: [device, site], actions: [view] }}
      - resources: [device]
        actions: [reboot]
        when: resource.id == "ap-1" and resource.tier == 2
"#
        );
        Policy::compile(&[Source::new("ids.yaml", yaml)]).expect("policy")
    }

    #[test]
    fn ids_are_positions_in_the_declared_lists() {
        let p = policy("ids");
        for (i, k) in p.kind_names().enumerate() {
            let kid = u32::try_from(i).expect("id");
            assert_eq!(p.kind_id(k), Some(kid));
            let actions = p.actions_of(k).expect("kind");
            assert_eq!(p.action_count(kid), Some(actions.len()));
            for (j, a) in actions.iter().enumerate() {
                assert_eq!(p.action_id(kid, a), u8::try_from(j).ok());
            }
        }
        assert_eq!(p.kind_id("nope"), None);
        assert_eq!(p.action_id(99, "view"), None);
        assert_eq!(p.action_count(99), None);
    }

    #[test]
    fn cached_resources_decide_as_prepared_ones() {
        let p = policy("ids");
        let principal: Principal = serde_json::from_value(serde_json::json!({
            "id": "v", "assignments": [{ "role": "viewer", "scope": "msp:m/org:o1" }]
        }))
        .expect("principal");
        let pp = p.prepare_principal(&principal).expect("prepared");
        let mut cache = ResourceCache::new();
        let scopes =
            ["msp:m/org:o1/site:s1", "msp:m/org:o2", "msp:m/org:o1", "msp:m", "msp:m//x", "", "org:o1", "msp:m/site:s"];
        let mut allowed = 0;
        for round in 0..2 {
            for kind in ["device", "site"] {
                for scope in scopes {
                    for id in ["ap-1", "ap-2", ""] {
                        for action in ["view", "reboot", "delete"] {
                            let r = Resource {
                                kind: kind.into(),
                                id: id.into(),
                                scope: scope.into(),
                                ..Resource::default()
                            };
                            let native = p.prepare_resource(&r).map(|r| p.decide(&pp, action, &r, p.empty_context()));
                            let kid = p.kind_id(kind).expect("kind");
                            let fast = p.cached_resource(&mut cache, kid, scope, id).map(|r| {
                                assert_eq!((r.id(), r.scope()), (id, scope));
                                match p.action_id(kid, action) {
                                    Some(a) => p.decide_ids(&pp, a, r, p.empty_context()),
                                    None => p.decide(&pp, action, r, p.empty_context()),
                                }
                            });
                            match (native, fast) {
                                (Ok(n), Ok(f)) => {
                                    allowed += usize::from(f.allowed());
                                    assert_eq!(
                                        (n.allowed(), n.reason()),
                                        (f.allowed(), f.reason()),
                                        "{round} {kind} {scope} {id} {action}"
                                    );
                                }
                                (Err(n), Err(f)) => assert_eq!(n, f, "{kind} {scope}"),
                                (n, f) => panic!("{kind} {scope} {id}: {n:?} vs {f:?}"),
                            }
                        }
                    }
                }
            }
        }
        assert!(allowed > 0, "the grants and the condition on the id apply");
        // every action in one pass: the answer of `decide_ids` for each
        let suspended: Principal = serde_json::from_value(serde_json::json!({
            "id": "s", "status": "suspended", "assignments": [{ "role": "viewer", "scope": "msp:m" }]
        }))
        .expect("principal");
        for who in [&pp, &p.prepare_principal(&suspended).expect("prepared")] {
            for kind in ["device", "site"] {
                let kid = p.kind_id(kind).expect("kind");
                for scope in scopes {
                    for id in ["ap-1", "ap-2", ""] {
                        let Ok(r) = p.cached_resource(&mut cache, kid, scope, id) else { continue };
                        let set = p.allowed_action_ids(who, r, p.empty_context());
                        let n = p.action_count(kid).expect("count");
                        let each = (0..n).filter_map(|a| u8::try_from(a).ok()).fold(0u128, |m, a| {
                            m | u128::from(p.decide_ids(who, a, r, p.empty_context()).allowed()) << a
                        });
                        assert_eq!(set, each, "{kind} {scope} {id}");
                    }
                }
            }
        }
        // only valid (kind, scope) pairs are kept
        assert_eq!(cache.len(), 4);
        // a cache used with another policy revision starts over
        let other = policy("other");
        let kid = other.kind_id("device").expect("device");
        let r = other.cached_resource(&mut cache, kid, "msp:m/org:o1", "x").expect("resource");
        let d = other.decide_ids(&other.prepare_principal(&principal).expect("p"), 0, r, other.empty_context());
        assert!(d.allowed());
        assert_eq!(cache.len(), 1);
        // inputs of another revision deny
        let r = p.cached_resource(&mut cache, kid, "msp:m/org:o1", "x").expect("resource");
        let foreign = other.prepare_principal(&principal).expect("p");
        assert_eq!(p.decide_ids(&foreign, 0, r, p.empty_context()).reason(), Reason::InvalidRequest);
    }

    #[test]
    fn an_action_id_the_kind_lacks_denies() {
        let p = policy("ids");
        let pp = p.prepare_principal(&Principal::default()).expect("prepared");
        let mut cache = ResourceCache::new();
        let kid = p.kind_id("site").expect("site");
        let r = p.cached_resource(&mut cache, kid, "msp:m/org:o/site:s", "").expect("resource");
        assert_eq!(p.decide_ids(&pp, 1, r, p.empty_context()).reason(), Reason::UnknownAction);
        assert_eq!(p.decide_ids(&pp, 200, r, p.empty_context()).reason(), Reason::UnknownAction);
        assert_eq!(
            p.cached_resource(&mut cache, 99, "msp:m", "").expect_err("bad id").reason(),
            Reason::InvalidRequest
        );
    }

    #[test]
    fn same_bytes_is_slice_equality() {
        let words = ["", "a", "msp:m", "msp:mist/org:o1", "msp:mist/org:o1/site:s1", "msp:mist/org:o1/site:s2"];
        for a in words {
            for b in words {
                assert_eq!(same_bytes(a.as_bytes(), b.as_bytes()), a == b, "{a} {b}");
            }
        }
    }

    #[test]
    fn the_cache_is_bounded() {
        let p = policy("ids");
        let mut cache = ResourceCache::new();
        let kid = p.kind_id("device").expect("device");
        for i in 0..(ResourceCache::CAPACITY * 2 + 5) {
            let scope = format!("msp:m/org:o{i}");
            let r = p.cached_resource(&mut cache, kid, &scope, "d").expect("resource");
            assert_eq!(r.scope(), scope);
            assert!(cache.len() <= ResourceCache::CAPACITY);
        }
        assert!(!cache.is_empty());
        cache.clear();
        assert!(cache.is_empty());
    }
}
