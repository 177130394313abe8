//! Policy bundles: one policy, compiled, in one JSON document, with a content hash as revision.
//! The wasm hosts and the gateway load bundles; `rolescope build` writes them.
//!
//! ```text
//! {"format":"rolescope-bundle/1","policy":"<name>","revision":"sha256:<hex>",
//!  "files":[{"name":..,"text":..}, ..],     the role files as written (for people and tools)
//!  "compiled":"<base64>"}                    the compiled policy: `Policy` (serde) in postcard
//! ```
//!
//! Loading reads `compiled` only: a bundle is decided on without the compiler (no YAML, no
//! validation rules), so the WebAssembly module every host shares stays small. The compiled
//! form is postcard (a compact, non-self-describing serde format) rather than JSON: reading it
//! takes a fraction of the code serde_json's derived readers take (the module's size budget)
//! and of the time (a gateway reloads bundles while it serves). The revision is
//! the SHA-256 of the exact bytes of `files` and `compiled` (length-prefixed), so editing either
//! (or re-formatting the document) is refused as tampering. The compiled form is then checked
//! structurally ([`check`]): every id in range, every action set within its kind, every value
//! of its declared type, so that a bundle that hashes right but was not written by the compiler
//! is refused rather than mis-evaluated. Indexes are rebuilt, never read.

use rustc_hash::FxHashMap;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::diag::{CompileError, Diagnostic, SourceLocation, codes};
use crate::expr::{Expr, Var};
use crate::policy::{
    ActionSet, Combine, Delegation, Effect, Entry, Invariant, Kind, KindId, KindRules, Level, LevelId, Policy,
    PreparedContext, Role, RoleId, Rule, RuleTable, TenantAccess, bit,
};
use crate::route::RouteTable;
use crate::value::{Type, Value};
use crate::wire::Reader;

/// The bundle format identifier.
pub const BUNDLE_FORMAT: &str = "rolescope-bundle/1";

/// The bundle document. Read by the wire types' object reader (`request::read`): a derived
/// reader would be one more of serde's per-type readers in the WebAssembly module.
struct BundleDoc<'a> {
    format: String,
    policy: String,
    revision: String,
    files: &'a RawValue,
    compiled: &'a RawValue,
}

impl<'a> BundleDoc<'a> {
    fn read(json: &'a str) -> Result<BundleDoc<'a>, serde_json::Error> {
        use crate::request::read::{member, object, raw};
        let [format, policy, revision, files, compiled] =
            object(json.as_bytes(), ["format", "policy", "revision", "files", "compiled"])?;
        Ok(BundleDoc {
            format: member(format, "format")?,
            policy: member(policy, "policy")?,
            revision: member(revision, "revision")?,
            files: raw(files, "files")?,
            compiled: raw(compiled, "compiled")?,
        })
    }
}

fn refuse(msg: String) -> CompileError {
    CompileError::new(vec![Diagnostic::error(codes::SYNTAX, SourceLocation::new("<bundle>", 0, 0), msg)])
}

/// `sha256:<hex>` of the two members, and the stamp (its first 8 bytes).
fn revision_of(files: &str, compiled: &str) -> (String, u64) {
    let mut hasher = Sha256::new();
    for part in [files, compiled] {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut revision = String::with_capacity(7 + 64);
    revision.push_str("sha256:");
    for b in digest.iter() {
        for nibble in [b >> 4, b & 15] {
            revision.push(char::from(HEX.get(usize::from(nibble)).copied().unwrap_or(b'0')));
        }
    }
    let mut stamp = [0u8; 8];
    for (dst, src) in stamp.iter_mut().zip(digest.iter()) {
        *dst = *src;
    }
    (revision, u64::from_le_bytes(stamp))
}

/// Standard base64 (RFC 4648, with padding).
const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

#[cfg(feature = "compiler")]
fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            let c =
                if i <= chunk.len() { B64.get(((n >> shift) & 63) as usize).copied().unwrap_or(b'=') } else { b'=' };
            out.push(char::from(c));
        }
    }
    out
}

fn unbase64(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (k, quad) in bytes.chunks(4).enumerate() {
        let last = (k + 1) * 4 == bytes.len();
        let mut n: u32 = 0;
        let mut pad = 0;
        for &c in quad {
            let v = match c {
                b'=' if last => {
                    pad += 1;
                    0
                }
                _ if pad > 0 => return None,
                _ => B64.iter().position(|&x| x == c)? as u32,
            };
            n = n << 6 | v;
        }
        if pad > 2 {
            return None;
        }
        let three = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(three.get(..3 - pad)?);
    }
    Some(out)
}

/// A value kept as JSON text inside the compiled form: the principals filed with a policy carry
/// free-form JSON attributes, which postcard cannot describe.
pub(crate) mod json_text {
    use serde::de::{DeserializeOwned, Error as _};
    use serde::ser::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(crate) fn serialize<T: Serialize, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        serde_json::to_string(v).map_err(S::Error::custom)?.serialize(s)
    }

    pub(crate) fn deserialize<'de, T: DeserializeOwned, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        serde_json::from_slice(String::deserialize(d)?.as_bytes()).map_err(D::Error::custom)
    }
}

fn set_revision(policy: &mut Policy, revision: String, stamp: u64) {
    policy.revision = revision;
    policy.stamp = stamp;
    policy.empty_context = PreparedContext { stamp, attrs: policy.context_defaults.clone() };
    for p in policy.principals.values_mut() {
        p.stamp = stamp;
    }
}

#[cfg(feature = "compiler")]
mod write {
    use serde::Serialize;

    use super::{BUNDLE_FORMAT, base64, refuse, revision_of, set_revision};
    use crate::compile::Source;
    use crate::diag::CompileError;
    use crate::policy::Policy;

    #[derive(Serialize)]
    struct BundleFile<'a> {
        name: &'a str,
        text: &'a str,
    }

    /// The `files` and `compiled` members, as written into the bundle.
    fn members(policy: &Policy, sources: &[Source]) -> Result<(String, String), CompileError> {
        let files: Vec<BundleFile<'_>> =
            sources.iter().map(|s| BundleFile { name: s.name(), text: s.text() }).collect();
        let fail = |e: &dyn std::fmt::Display| refuse(format!("cannot serialize bundle: {e}"));
        let files = serde_json::to_string(&files).map_err(|e| fail(&e))?;
        let compiled = postcard::to_allocvec(policy).map_err(|e| fail(&e))?;
        Ok((files, format!("\"{}\"", base64(&compiled))))
    }

    /// Give a freshly compiled policy its revision (the hash of the bundle it makes).
    pub(crate) fn seal(policy: &mut Policy, sources: &[Source]) -> Result<(), CompileError> {
        let (files, compiled) = members(policy, sources)?;
        let (revision, stamp) = revision_of(&files, &compiled);
        set_revision(policy, revision, stamp);
        Ok(())
    }

    impl Policy {
        /// Compile `sources` and write the bundle (JSON) that [`Policy::from_bundle`] loads:
        /// the sources as given and the compiled policy, under the policy's revision.
        pub fn bundle(sources: &[Source]) -> Result<(Policy, String), CompileError> {
            let policy = Policy::compile(sources)?;
            let (files, compiled) = members(&policy, sources)?;
            let head = serde_json::json!({
                "format": BUNDLE_FORMAT,
                "policy": policy.name(),
                "revision": policy.revision(),
            })
            .to_string();
            // `{"format":..,"policy":..,"revision":..}` + the members, byte for byte as hashed.
            let head = head.strip_suffix('}').unwrap_or(&head);
            let json = format!("{head},\"files\":{files},\"compiled\":{compiled}}}");
            Ok((policy, json))
        }
    }
}

#[cfg(feature = "compiler")]
pub(crate) use write::seal;

impl Policy {
    /// Load a bundle written by [`Policy::bundle`] (`rolescope build`): check its format and
    /// revision, read and check the compiled policy. A tampered, corrupt or foreign bundle is
    /// refused with a diagnostic (code `RS001`).
    pub fn from_bundle(json: &str) -> Result<Policy, CompileError> {
        let doc = BundleDoc::read(json).map_err(|e| refuse(format!("invalid bundle: {e}")))?;
        if doc.format != BUNDLE_FORMAT {
            return Err(refuse(format!("unsupported bundle format `{}` (expected `{BUNDLE_FORMAT}`)", doc.format)));
        }
        let (revision, stamp) = revision_of(doc.files.get(), doc.compiled.get());
        if revision != doc.revision {
            return Err(refuse(format!(
                "bundle revision `{}` does not match its content (`{revision}`)",
                doc.revision
            )));
        }
        let invalid = |e: &dyn std::fmt::Display| refuse(format!("invalid compiled policy: {e}"));
        let text: String = serde_json::from_slice(doc.compiled.get().as_bytes()).map_err(|e| invalid(&e))?;
        let bytes = unbase64(&text).ok_or_else(|| invalid(&"not base64"))?;
        let mut r = Reader::new(&bytes);
        let mut policy = read_policy(&mut r)
            .filter(|_| r.at_end())
            .ok_or_else(|| invalid(&format_args!("malformed at byte {}", r.position())))?;
        if policy.name != doc.policy {
            return Err(refuse(format!("bundle names policy `{}` but holds `{}`", doc.policy, policy.name)));
        }
        check(&policy).map_err(|e| invalid(&e))?;
        index(&mut policy).map_err(|e| invalid(&e))?;
        set_revision(&mut policy, revision, stamp);
        file_principals(&mut policy).map_err(|e| invalid(&e))?;
        Ok(policy)
    }
}

/// The compiled form, as postcard writes the serde derives of [`Policy`] (`wire.rs`); the
/// indexes (`serde(skip)`) are left empty for [`index`].
fn read_policy(r: &mut Reader<'_>) -> Option<Policy> {
    fn names(r: &mut Reader<'_>) -> Option<Vec<String>> {
        r.seq(Reader::string)
    }
    fn text(r: &mut Reader<'_>) -> Option<Option<String>> {
        r.opt(Reader::string)
    }
    fn attrs(r: &mut Reader<'_>) -> Option<Vec<(String, Type)>> {
        r.seq(|r| Some((r.string()?, Type::read(r)?)))
    }
    fn defaults(r: &mut Reader<'_>) -> Option<Box<[Option<Value>]>> {
        r.seq(|r| r.opt(Value::read)).map(Vec::into_boxed_slice)
    }
    /// A map written as pairs sorted by key (`policy.rs`, `sorted`): each key once.
    fn map<K: Eq + std::hash::Hash, V>(
        r: &mut Reader<'_>,
        mut pair: impl FnMut(&mut Reader<'_>) -> Option<(K, V)>,
    ) -> Option<FxHashMap<K, V>> {
        let pairs = r.seq(&mut pair)?;
        let n = pairs.len();
        let map: FxHashMap<K, V> = pairs.into_iter().collect();
        (map.len() == n).then_some(map)
    }
    fn table(r: &mut Reader<'_>) -> Option<RuleTable> {
        let entries =
            |r: &mut Reader<'_>| r.seq(|r| Some(Entry { actions: r.u128()?, rule: r.u32()?, conditional: r.bool()? }));
        let by_kind = r.seq(|r| {
            Some(KindRules {
                kind: r.u32()?,
                allow: r.u128()?,
                deny: r.u128()?,
                grants: entries(r)?,
                denies: entries(r)?,
            })
        })?;
        Some(RuleTable { by_kind })
    }
    let name = r.string()?;
    let description = text(r)?;
    let combine = if r.tag(2)? == 0 { Combine::Union } else { Combine::HighestRank };
    let levels = r.seq(|r| Some(Level { name: r.string()?, parent: r.opt(Reader::byte)?, tenant: r.bool()? }))?;
    let kinds = r.seq(|r| {
        Some(Kind {
            name: r.string()?,
            actions: names(r)?,
            action_index: FxHashMap::default(),
            vocab: map(r, |r| Some((r.string()?, r.u128()?)))?,
            attrs: map(r, |r| Some((r.u16()?, Type::read(r)?)))?,
            attr_names: FxHashMap::default(),
            defaults: r.seq(|r| Some((r.u16()?, Value::read(r)?)))?,
            levels: r.u64()?,
        })
    })?;
    let resource_attr_names = names(r)?;
    let principal_attrs = attrs(r)?;
    let principal_defaults = defaults(r)?;
    let context_attrs = attrs(r)?;
    let context_defaults = defaults(r)?;
    let roles = r.seq(|r| {
        Some(Role {
            name: r.string()?,
            title: text(r)?,
            description: text(r)?,
            rank: r.i64()?,
            assignable: r.bool()?,
            tenant_access: match r.tag(3)? {
                0 => TenantAccess::AsAssigned,
                1 => TenantAccess::All,
                _ => TenantAccess::Listed,
            },
            held_at: r.u64()?,
            includes: r.seq(Reader::u32)?,
            location: crate::diag::wire_location::read(r)?,
            table: table(r)?,
        })
    })?;
    let global = table(r)?;
    let rules = r.seq(|r| {
        Some(Rule {
            effect: if r.tag(2)? == 0 { Effect::Grant } else { Effect::Deny },
            role: r.opt(Reader::u32)?,
            cond: r.opt(Expr::read)?,
            cond_text: text(r)?,
            description: text(r)?,
            location: crate::diag::wire_location::read(r)?,
            targets: r.seq(|r| Some((r.u32()?, r.u128()?)))?,
        })
    })?;
    let delegation = r.opt(|r| Some(Delegation { kind: r.u32()?, action: r.byte()?, strictly_below: r.bool()? }))?;
    let invariants = r.seq(|r| {
        Some(Invariant {
            name: r.string()?,
            description: text(r)?,
            roles: r.seq(Reader::u32)?,
            level: r.byte()?,
            at_least: r.u32()?,
        })
    })?;
    // read as the module reads every principal (`Principal::from_json`), with `from_slice` as
    // every JSON reader in the module (`from_str` is a second copy of serde_json's parser)
    let filed = serde_json::from_slice::<Vec<&serde_json::value::RawValue>>(r.str()?.as_bytes()).ok()?;
    let filed =
        filed.iter().map(|p| crate::request::Principal::from_json(p.get().as_bytes()).ok()).collect::<Option<_>>()?;
    let routes = r.opt(|r| RouteTable::read(r).map(Box::new))?;
    Some(Policy {
        name,
        description,
        combine,
        levels,
        tenant_level: None,
        kinds,
        kind_index: FxHashMap::default(),
        resource_attr_names,
        principal_attrs,
        principal_defaults,
        principal_attr_index: FxHashMap::default(),
        context_attrs,
        context_defaults,
        context_attr_index: FxHashMap::default(),
        roles,
        role_index: FxHashMap::default(),
        global,
        rules,
        delegation,
        invariants,
        filed,
        principals: FxHashMap::default(),
        principal_order: Vec::new(),
        warnings: Vec::new(),
        revision: String::new(),
        stamp: 0,
        empty_context: PreparedContext::default(),
        routes,
    })
}

/// Rebuild the indexes (`serde(skip)` fields) from the serialized vectors.
fn index(p: &mut Policy) -> Result<(), String> {
    fn positions<'a, T: TryFrom<usize>>(
        what: &str,
        names: impl Iterator<Item = &'a String>,
    ) -> Result<FxHashMap<String, T>, String> {
        let mut map = FxHashMap::default();
        for (i, n) in names.enumerate() {
            let id = T::try_from(i).map_err(|_| format!("too many {what}s"))?;
            if map.insert(n.clone(), id).is_some() {
                return Err(format!("{what} `{n}` appears twice"));
            }
        }
        Ok(map)
    }
    p.kind_index = positions("resource kind", p.kinds.iter().map(|k| &k.name))?;
    p.role_index = positions("role", p.roles.iter().map(|r| &r.name))?;
    p.principal_attr_index = positions("principal attribute", p.principal_attrs.iter().map(|(n, _)| n))?;
    p.context_attr_index = positions("context attribute", p.context_attrs.iter().map(|(n, _)| n))?;
    positions::<u16>("resource attribute", p.resource_attr_names.iter())?;
    positions::<u8>("scope level", p.levels.iter().map(|l| &l.name))?;
    let names = &p.resource_attr_names;
    for k in &mut p.kinds {
        k.action_index = positions("action", k.actions.iter())?;
        k.attr_names = k
            .attrs
            .keys()
            .map(|id| names.get(usize::from(*id)).map(|n| (n.clone(), *id)).ok_or("resource attribute out of range"))
            .collect::<Result<_, _>>()?;
    }
    let mut tenants = p.levels.iter().enumerate().filter(|(_, l)| l.tenant).map(|(i, _)| i);
    p.tenant_level = tenants.next().and_then(|i| LevelId::try_from(i).ok());
    if tenants.next().is_some() {
        return Err("more than one tenant level".into());
    }
    Ok(())
}

/// Prepare the principals filed with the policy, as the compiler did.
fn file_principals(p: &mut Policy) -> Result<(), String> {
    let filed = std::mem::take(&mut p.filed);
    for principal in &filed {
        let prepared =
            p.prepare_principal(principal).map_err(|e| format!("principal `{}`: {}", principal.id, e.message()))?;
        if let Some((_, why)) = prepared.ignored_assignments().next() {
            return Err(format!("principal `{}`: {why}", principal.id));
        }
        if p.principals.insert(principal.id.clone(), prepared).is_some() {
            return Err(format!("principal `{}` is filed twice", principal.id));
        }
        p.principal_order.push(principal.id.clone());
    }
    p.filed = filed;
    Ok(())
}

fn type_of(v: &Value) -> Type {
    match v {
        Value::Bool(_) => Type::Bool,
        Value::Str(_) => Type::String,
        Value::Num(_) => Type::Number,
        Value::Time(_) => Type::Time,
        Value::Set(_) => Type::StringSet,
    }
}

fn ensure(ok: bool, what: &str) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what.to_owned()) }
}

/// Structural checks of a deserialized policy: what the compiler guarantees by construction
/// and the evaluator relies on.
fn check(p: &Policy) -> Result<(), String> {
    let n_levels = p.levels.len();
    ensure(n_levels > 0 && n_levels <= 64, "scope levels: between 1 and 64")?;
    for l in &p.levels {
        // Every chain of parents ends at a top level: the level tree has no cycle.
        let mut cur = l.parent;
        for _ in 0..=n_levels {
            cur = match cur {
                Some(q) => p.levels.get(usize::from(q)).ok_or("unknown parent level")?.parent,
                None => break,
            };
        }
        ensure(cur.is_none(), "the scope levels form a cycle")?;
    }
    let levels_mask = if n_levels >= 64 { u64::MAX } else { (1u64 << n_levels) - 1 };
    let attr_ok = |defaults: &[Option<Value>], decl: &[(String, Type)]| {
        defaults.len() == decl.len()
            && u16::try_from(decl.len()).is_ok()
            && defaults.iter().zip(decl).all(|(d, (_, t))| d.as_ref().is_none_or(|v| type_of(v) == *t))
    };
    ensure(attr_ok(&p.principal_defaults, &p.principal_attrs), "principal attributes")?;
    ensure(attr_ok(&p.context_defaults, &p.context_attrs), "context attributes")?;
    ensure(u16::try_from(p.resource_attr_names.len()).is_ok(), "resource attributes")?;
    ensure(KindId::try_from(p.kinds.len()).is_ok() && RoleId::try_from(p.roles.len()).is_ok(), "too many ids")?;
    let kind_actions = |k: KindId| -> Option<ActionSet> {
        let n = p.kinds.get(k as usize)?.actions.len();
        Some(if n >= 128 { ActionSet::MAX } else { bit(u8::try_from(n).ok()?) - 1 })
    };
    for k in &p.kinds {
        ensure(!k.actions.is_empty() && k.actions.len() <= 128, "a kind has no or too many actions")?;
        let all = if k.actions.len() >= 128 { ActionSet::MAX } else { (1u128 << k.actions.len()) - 1 };
        ensure(k.vocab.values().all(|s| s & !all == 0), "a permission names actions the kind lacks")?;
        ensure(k.levels == u64::MAX || k.levels & !levels_mask == 0, "a kind lives at unknown levels")?;
        ensure(k.attrs.keys().all(|id| usize::from(*id) < p.resource_attr_names.len()), "resource attribute")?;
        for (id, v) in &k.defaults {
            ensure(k.attrs.get(id) == Some(&type_of(v)), "a default does not fit its attribute")?;
        }
    }
    let table_ok = |t: &RuleTable| -> Result<(), String> {
        let mut last: Option<KindId> = None;
        for kr in &t.by_kind {
            ensure(last.is_none_or(|l| l < kr.kind), "rule table not sorted")?;
            last = Some(kr.kind);
            let all = kind_actions(kr.kind).ok_or("rule table: unknown kind")?;
            ensure((kr.allow | kr.deny) & !all == 0, "rule table: actions outside the kind")?;
            for (entries, effect) in
                [(&kr.grants, crate::policy::Effect::Grant), (&kr.denies, crate::policy::Effect::Deny)]
            {
                for e in entries {
                    let rule = p.rules.get(e.rule as usize).ok_or("rule table: unknown rule")?;
                    ensure(rule.effect == effect && e.conditional == rule.cond.is_some(), "rule table: wrong rule")?;
                    ensure(e.actions & !all == 0, "rule table: actions outside the kind")?;
                }
            }
        }
        Ok(())
    };
    table_ok(&p.global)?;
    for r in &p.roles {
        ensure(r.held_at & !levels_mask == 0, "a role is held at unknown levels")?;
        ensure(r.includes.iter().all(|i| (*i as usize) < p.roles.len()), "a role includes an unknown role")?;
        table_ok(&r.table)?;
    }
    for r in &p.rules {
        ensure(r.role.is_none_or(|i| (i as usize) < p.roles.len()), "a rule of an unknown role")?;
        for (k, set) in &r.targets {
            ensure(kind_actions(*k).is_some_and(|all| set & !all == 0), "a rule targets unknown actions")?;
        }
        ensure(r.cond.is_some() == r.cond_text.is_some(), "a condition without its text")?;
        ensure(r.cond.as_ref().is_none_or(|c| expr_ok(p, c)), "a condition reads an unknown attribute")?;
    }
    if let Some(d) = &p.delegation {
        ensure(p.kinds.get(d.kind as usize).is_some_and(|k| usize::from(d.action) < k.actions.len()), "delegation")?;
    }
    for (kind, action) in p.routes.iter().flat_map(|t| t.questions()) {
        let known = p.kinds.iter().any(|k| k.name == kind && k.actions.iter().any(|a| a == action));
        ensure(known, "a route asks about an unknown kind or action")?;
    }
    for inv in &p.invariants {
        ensure(inv.roles.iter().all(|i| (*i as usize) < p.roles.len()), "an invariant names an unknown role")?;
        ensure(usize::from(inv.level) < n_levels, "an invariant names an unknown level")?;
    }
    Ok(())
}

fn expr_ok(p: &Policy, e: &Expr) -> bool {
    let var_ok = |v: &Var| match v {
        Var::PrincipalAttr(i) => usize::from(*i) < p.principal_attrs.len(),
        Var::ResourceAttr(i) => usize::from(*i) < p.resource_attr_names.len(),
        Var::ContextAttr(i) => usize::from(*i) < p.context_attrs.len(),
        Var::PrincipalId | Var::ResourceId | Var::ResourceKind | Var::ResourceScope => true,
    };
    e.walk(|e| match e {
        Expr::Var(v) | Expr::Has(v) => var_ok(v),
        _ => true,
    })
}

#[cfg(all(test, feature = "compiler"))]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]

    use std::path::Path;

    use super::*;
    use crate::compile::Source;

    /// Every policy folder of the corpus (`policies/*`, `tests/corpus/*`) as sources.
    fn corpus() -> Vec<(String, Vec<Source>)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut out = Vec::new();
        for base in ["policies", "tests/corpus"] {
            let mut dirs: Vec<_> = std::fs::read_dir(root.join(base)).unwrap().map(|e| e.unwrap().path()).collect();
            dirs.sort();
            for dir in dirs.into_iter().filter(|d| d.is_dir()) {
                let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
                files.sort();
                let sources: Vec<Source> = files
                    .iter()
                    .filter_map(|f| {
                        let name = f.file_name()?.to_str()?;
                        let role = (name.ends_with(".yaml") || name.ends_with(".yml"))
                            && !name.ends_with("_test.yaml")
                            && !name.ends_with("_test.yml");
                        role.then(|| Source::new(name, std::fs::read_to_string(f).unwrap()))
                    })
                    .collect();
                if !sources.is_empty() {
                    out.push((dir.display().to_string(), sources));
                }
            }
        }
        assert!(out.len() >= 6, "corpus not found");
        out
    }

    fn compiled_bytes(json: &str) -> Vec<u8> {
        let doc = BundleDoc::read(json).unwrap();
        unbase64(&serde_json::from_str::<String>(doc.compiled.get()).unwrap()).unwrap()
    }

    /// A bundle whose compiled policy was changed by `edit` and which is sealed again (the
    /// revision matches): only the structural check stands between it and the evaluator.
    fn resealed(json: &str, edit: impl FnOnce(&mut Policy)) -> String {
        let doc = BundleDoc::read(json).unwrap();
        let mut p: Policy = postcard::from_bytes(&compiled_bytes(json)).unwrap();
        edit(&mut p);
        let compiled = format!("\"{}\"", base64(&postcard::to_allocvec(&p).unwrap()));
        let (revision, _) = revision_of(doc.files.get(), &compiled);
        format!(
            "{{\"format\":\"{BUNDLE_FORMAT}\",\"policy\":\"{}\",\"revision\":\"{revision}\",\"files\":{},\"compiled\":{compiled}}}",
            doc.policy,
            doc.files.get()
        )
    }

    #[test]
    fn base64_round_trips_and_refuses_what_is_not_base64() {
        for n in 0..20u8 {
            let bytes: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37).wrapping_add(n)).collect();
            assert_eq!(unbase64(&base64(&bytes)).as_deref(), Some(bytes.as_slice()));
        }
        assert_eq!(base64(b"rolescope"), "cm9sZXNjb3Bl");
        assert_eq!(base64(b"ro"), "cm8=");
        for bad in ["cm8", "c=8=", "cm8=cm8=", "====", "cm8*", "cm9sZXNjb3Bl="] {
            assert_eq!(unbase64(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_corpus_policy_round_trips_through_its_bundle() {
        for (dir, sources) in corpus() {
            let (policy, json) = Policy::bundle(&sources).expect(&dir);
            let loaded = Policy::from_bundle(&json).expect(&dir);
            assert_eq!(loaded.revision(), policy.revision(), "{dir}");
            assert_eq!(loaded.stamp, policy.stamp, "{dir}");
            // Lossless: the loaded policy writes the very bytes it was read from.
            assert_eq!(postcard::to_allocvec(&loaded).unwrap(), compiled_bytes(&json), "{dir}");
            // The rebuilt indexes and filed principals are the compiler's.
            assert_eq!(loaded.kind_index, policy.kind_index, "{dir}");
            assert_eq!(loaded.role_index, policy.role_index, "{dir}");
            assert_eq!(loaded.tenant_level, policy.tenant_level, "{dir}");
            assert_eq!(loaded.principal_order, policy.principal_order, "{dir}");
            for (a, b) in loaded.kinds.iter().zip(&policy.kinds) {
                assert_eq!((&a.action_index, &a.attr_names), (&b.action_index, &b.attr_names), "{dir}");
            }
            assert_eq!(format!("{:?}", loaded.roles()), format!("{:?}", policy.roles()), "{dir}");
            // The same sources always make the same bundle.
            assert_eq!(Policy::bundle(&sources).unwrap().1, json, "{dir}");
        }
    }

    /// The hand-written reader (`wire.rs`) on damaged compiled forms: every prefix is refused,
    /// and a changed byte is refused or read as postcard reads it; never a panic.
    #[test]
    fn the_reader_refuses_damaged_compiled_forms() {
        for (dir, sources) in corpus() {
            let (_, json) = Policy::bundle(&sources).unwrap();
            let bytes = compiled_bytes(&json);
            // (about 1,000 positions per policy: the test command runs this unoptimized)
            let step = (bytes.len() / 1000).max(1);
            for n in (0..bytes.len()).step_by(step) {
                let mut r = Reader::new(&bytes[..n]);
                assert!(read_policy(&mut r).filter(|_| r.at_end()).is_none(), "{dir}: prefix {n}");
            }
            let mut longer = bytes.clone();
            longer.push(0);
            let mut r = Reader::new(&longer);
            assert!(read_policy(&mut r).filter(|_| r.at_end()).is_none(), "{dir}: trailing byte");
            for i in (0..bytes.len()).step_by(step) {
                for v in [0u8, 1, 2, 0x7f, 0x80, 0xff, bytes[i].wrapping_add(1)] {
                    let mut changed = bytes.clone();
                    changed[i] = v;
                    let mut r = Reader::new(&changed);
                    if let Some(p) = read_policy(&mut r).filter(|_| r.at_end()) {
                        let theirs: Policy = postcard::from_bytes(&changed).expect("postcard reads it too");
                        assert_eq!(
                            postcard::to_allocvec(&p).unwrap(),
                            postcard::to_allocvec(&theirs).unwrap(),
                            "{dir}: byte {i} = {v}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn an_edited_bundle_is_refused() {
        let (_, sources) = corpus().into_iter().next().unwrap();
        let (_, json) = Policy::bundle(&sources).unwrap();
        assert!(Policy::from_bundle(&resealed(&json, |_| {})).is_ok(), "resealing alone changes nothing");
        let refused = |edited: &str| {
            let e = Policy::from_bundle(edited).expect_err("refused");
            assert_eq!(e.diagnostics()[0].code(), codes::SYNTAX);
            e.diagnostics()[0].message().to_owned()
        };
        // Tampering: content changed, revision kept.
        let at = json.find("\"compiled\":\"").unwrap() + 12;
        let flipped = if &json[at..=at] == "A" { "B" } else { "A" };
        assert!(refused(&format!("{}{flipped}{}", &json[..at], &json[at + 1..])).contains("does not match"));
        assert!(refused(&json.replacen("\"files\":[{", "\"files\":[ {", 1)).contains("does not match"));
        // Well sealed but not what the compiler writes: the structural check.
        type Edit = Box<dyn FnOnce(&mut Policy)>;
        let broken: [(&str, Edit); 6] = [
            ("rule table", Box::new(|p| p.rules.clear())),
            ("actions", Box::new(|p| p.kinds[0].actions.clear())),
            ("levels", Box::new(|p| p.levels[0].parent = Some(0))),
            ("roles", Box::new(|p| p.roles[0].includes.push(u32::MAX))),
            (
                "duplicate",
                Box::new(|p| {
                    let k = p.kinds[0].clone();
                    p.kinds.push(k);
                }),
            ),
            ("attributes", Box::new(|p| p.principal_defaults = vec![None; p.principal_attrs.len() + 1].into())),
        ];
        for (what, edit) in broken {
            let msg = refused(&resealed(&json, edit));
            assert!(msg.starts_with("invalid compiled policy"), "{what}: {msg}");
        }
        for corrupt in ["", "{", "[]", "{\"format\":\"rolescope-bundle/1\"}", &json[..json.len() / 2]] {
            refused(corrupt);
        }
    }
}
