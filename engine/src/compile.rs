//! Parse, validate and compile role files into a [`Policy`].
//!
//! Every error in every file is collected before giving up, each with file, line, column,
//! a stable code and (where useful) a hint.

use rustc_hash::{FxHashMap, FxHashSet};

use crate::diag::{CompileError, Diagnostic, SourceLocation, codes};
use crate::expr::{self, Resolver, Var};
use crate::model::{RawFile, RawRule, S};
use crate::policy::{
    ActionSet, Combine, Delegation, Effect, Invariant, Kind, KindId, Level, LevelId, Policy, Role, RoleId, Rule,
    RuleTable, TenantAccess, bit,
};
use crate::value::Type;

/// One role file: its name (for diagnostics) and its text (YAML, or JSON).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    name: String,
    text: String,
}

impl Source {
    /// A named source text. Names ending in `.json` are parsed as JSON, others as YAML.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        Self { name: name.into(), text: text.into() }
    }
    /// The name given.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The text given.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Largest source accepted, in bytes (a guard against hostile input).
const MAX_SOURCE: usize = 16 * 1024 * 1024;

pub(crate) fn loc<T>(file: &str, s: &S<T>) -> SourceLocation {
    SourceLocation::from_saphyr(file, &s.referenced)
}

/// Parse one role file; a syntax or shape error becomes one diagnostic.
pub(crate) fn parse_file(src: &Source) -> Result<RawFile, Box<Diagnostic>> {
    parse_text(src)
}

/// Parse one YAML (or, by name, JSON) document into `T`.
pub(crate) fn parse_text<T: serde::de::DeserializeOwned + Default>(src: &Source) -> Result<T, Box<Diagnostic>> {
    if src.text.len() > MAX_SOURCE {
        return Err(Box::new(Diagnostic::error(
            codes::SYNTAX,
            SourceLocation::new(&src.name, 1, 1),
            format!("file is larger than {} MiB", MAX_SOURCE / (1024 * 1024)),
        )));
    }
    if src.name.ends_with(".json") {
        // Fast path: serde_json is several times faster than the YAML parser but knows no
        // positions. Valid files take it; any error falls through to the paths below, which
        // report JSON syntax errors with JSON's positions and shape errors with the YAML
        // parser's line and column.
        if let Ok(v) = serde_json::from_str::<T>(&src.text) {
            return Ok(v);
        }
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&src.text) {
            let line = u32::try_from(e.line()).unwrap_or(0);
            let col = u32::try_from(e.column()).unwrap_or(0);
            return Err(Box::new(Diagnostic::error(
                codes::SYNTAX,
                SourceLocation::new(&src.name, line, col),
                format!("invalid JSON: {}", strip_position(&e.to_string())),
            )));
        }
    }
    if src.text.trim().is_empty() {
        return Ok(T::default());
    }
    // Budgets bound depth, nodes and alias expansion (billion laughs); sized for policies of
    // 10,000 roles and 100,000 grants within the 16 MiB source limit.
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_events: 8_000_000,
            max_nodes: 4_000_000,
            max_depth: 64,
        },
    };
    serde_saphyr::from_str_with_options::<T>(&src.text, options)
        .map_err(|e| Box::new(indentation_hint(saphyr_diag(&src.name, &e), &src.text)))
}

/// The YAML reader's words for a line indented wrongly ("did not find expected key", "mapping
/// values are not allowed", tabs) say nothing about indentation: add a hint that does, with the
/// columns of the line and of the one before it.
fn indentation_hint(d: Diagnostic, text: &str) -> Diagnostic {
    let m = d.message();
    let structural = [
        "did not find expected",
        "mapping values are not allowed",
        "block mapping",
        "block sequence",
        "indentation",
        "tabs",
    ];
    if d.help().is_some() || !structural.iter().any(|w| m.contains(w)) {
        return d;
    }
    let line = usize::try_from(d.location().line()).unwrap_or(0);
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start_matches(' ').len();
    let here = line.checked_sub(1).and_then(|i| lines.get(i));
    let before = lines
        .get(..line.saturating_sub(1))
        .and_then(|ls| ls.iter().rev().find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')));
    let hint = match (here, before) {
        (Some(h), _) if h.starts_with('\t') || h.trim_start_matches(' ').starts_with('\t') => {
            "indent with spaces: YAML does not allow tabs for indentation".to_owned()
        }
        (Some(h), Some(b)) => format!(
            "check the indentation: this line starts at column {}, the line before at column {}; keys of one mapping line up in one column, the keys nested in one are indented further (with spaces)",
            indent(h) + 1,
            indent(b) + 1
        ),
        _ => "check the indentation: keys of one mapping line up in one column, nested ones are indented further (with spaces)".to_owned(),
    };
    d.hint(hint)
}

pub(crate) fn saphyr_diag(file: &str, e: &serde_saphyr::Error) -> Diagnostic {
    let location =
        e.location().map(|l| SourceLocation::from_saphyr(file, &l)).unwrap_or_else(|| SourceLocation::new(file, 0, 0));
    let raw = e.without_snippet().to_string();
    let msg = strip_position(raw.lines().next().unwrap_or(&raw)).to_owned();
    let (code, hint) = if msg.contains("unknown field") {
        (codes::SHAPE, Some("check the spelling; policies/README.md lists every field"))
    } else if msg.contains("invalid type") || msg.contains("missing field") || msg.contains("expected") {
        (codes::SHAPE, None)
    } else {
        (codes::SYNTAX, None)
    };
    let d = Diagnostic::error(code, location, lowercase_first(&msg));
    match hint {
        Some(h) => d.hint(h),
        None => d,
    }
}

fn strip_position(msg: &str) -> &str {
    for pat in [" at line ", " at position "] {
        if let Some(i) = msg.rfind(pat) {
            return msg.get(..i).unwrap_or(msg);
        }
    }
    msg
}

fn lowercase_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// "did you mean `X`?" for the closest of `candidates` to `name`, if one is close (the hint the
/// compiler's diagnostics give, for tools that report names of their own).
pub fn did_you_mean<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    suggest(name, candidates)
}

/// The closest of `candidates` to `name`, for "did you mean" hints.
pub(crate) fn suggest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = edit_distance(name, c);
        if d <= (name.len().max(3) / 3).max(1) + 1 && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| format!("did you mean `{c}`?"))
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let sub = prev.get(j).copied().unwrap_or(0) + usize::from(ca != *cb);
            let del = prev.get(j + 1).copied().unwrap_or(0) + 1;
            let ins = cur.get(j).copied().unwrap_or(0) + 1;
            cur.push(sub.min(del).min(ins));
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}

pub(crate) fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

pub(crate) struct Ctx {
    pub(crate) diags: Vec<Diagnostic>,
}

impl Ctx {
    pub(crate) fn err(&mut self, code: &'static str, at: SourceLocation, msg: String) {
        self.diags.push(Diagnostic::error(code, at, msg));
    }
    pub(crate) fn err_hint(&mut self, code: &'static str, at: SourceLocation, msg: String, hint: Option<String>) {
        let d = Diagnostic::error(code, at, msg);
        self.diags.push(match hint {
            Some(h) => d.hint(h),
            None => d,
        });
    }
    pub(crate) fn warn(&mut self, code: &'static str, at: SourceLocation, msg: String, hint: &str) {
        self.diags.push(Diagnostic::warning(code, at, msg).hint(hint));
    }
    /// Check a declared name; report and return false when invalid.
    fn name_ok(&mut self, what: &str, file: &str, s: &S<String>) -> bool {
        if valid_name(&s.value) {
            return true;
        }
        self.err_hint(
            codes::BAD_NAME,
            loc(file, s),
            format!("{what} name `{}` is not valid", s.value),
            Some("use letters, digits, `_`, `-` or `.` (at most 128 characters)".into()),
        );
        false
    }
}

/// Check an attribute declaration: its type and, if given, its default value.
fn attr_decl(cx: &mut Ctx, file: &str, d: &S<crate::model::AttrDecl>) -> Option<(Type, Option<crate::value::Value>)> {
    use crate::model::AttrDecl;
    let (ty_name, default) = match &d.value {
        AttrDecl::Short(t) => (t.as_str(), None),
        AttrDecl::Full { ty, default, .. } => (ty.as_str(), default.as_ref()),
    };
    let Some(ty) = Type::parse(ty_name) else {
        cx.err_hint(
            codes::BAD_TYPE,
            loc(file, d),
            format!("unknown type `{ty_name}`"),
            Some("use bool, string, number, time or set<string>".into()),
        );
        return None;
    };
    let default = match default {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => match crate::value::Value::from_json(ty, v) {
            Ok(v) => Some(v),
            Err(m) => {
                cx.err(codes::BAD_TYPE, loc(file, d), format!("default must be a {}: {}", m.expected, m.detail));
                return None;
            }
        },
    };
    Some((ty, default))
}

struct AttrResolver<'a> {
    principal: &'a FxHashMap<String, (u16, Type)>,
    context: &'a FxHashMap<String, (u16, Type)>,
    kind: Option<&'a Kind>,
    kind_name: &'a str,
}

impl Resolver for AttrResolver<'_> {
    fn resolve(&self, root: &str, name: &str) -> Result<(Var, Type), (String, Option<String>)> {
        let names = |m: &FxHashMap<String, (u16, Type)>| -> Vec<String> { m.keys().cloned().collect() };
        match root {
            "principal" => match name {
                "id" => Ok((Var::PrincipalId, Type::String)),
                _ => self.principal.get(name).map(|(i, t)| (Var::PrincipalAttr(*i), *t)).ok_or_else(|| {
                    let all = names(self.principal);
                    (
                        format!("unknown attribute `principal.{name}`"),
                        suggest(name, all.iter().map(String::as_str).chain(["id"]))
                            .or(Some("declare it under `attributes: principal:`".into())),
                    )
                }),
            },
            "context" => self.context.get(name).map(|(i, t)| (Var::ContextAttr(*i), *t)).ok_or_else(|| {
                let all = names(self.context);
                (
                    format!("unknown attribute `context.{name}`"),
                    suggest(name, all.iter().map(String::as_str))
                        .or(Some("declare it under `attributes: context:`".into())),
                )
            }),
            "resource" => match name {
                "id" => Ok((Var::ResourceId, Type::String)),
                "kind" => Ok((Var::ResourceKind, Type::String)),
                "scope" => Ok((Var::ResourceScope, Type::String)),
                _ => {
                    let found = self.kind.and_then(|k| {
                        let id = k.attr_names.get(name)?;
                        Some((Var::ResourceAttr(*id), *k.attrs.get(id)?))
                    });
                    found.ok_or_else(|| {
                        let cands: Vec<&str> =
                            self.kind.map(|k| k.attr_names.keys().map(String::as_str).collect()).unwrap_or_default();
                        (
                            format!("resource kind `{}` has no attribute `{name}`", self.kind_name),
                            suggest(name, cands.into_iter().chain(["id", "kind", "scope"]))
                                .or(Some(format!("declare it under `resources: {}: attributes:`", self.kind_name))),
                        )
                    })
                }
            },
            other => Err((
                format!("unknown root `{other}`"),
                Some("conditions read `principal.*`, `resource.*` or `context.*`".into()),
            )),
        }
    }
}

/// Where a condition string starts in the source (skipping an opening quote).
fn cond_location(file: &str, s: &S<String>, sources: &FxHashMap<&str, &str>) -> SourceLocation {
    let base = loc(file, s);
    let quoted = base
        .offset()
        .and_then(|o| sources.get(file).and_then(|t| t.as_bytes().get(o)))
        .is_some_and(|b| *b == b'"' || *b == b'\'');
    if quoted { base.shifted(1, 0) } else { base }
}

/// Compile role files into a policy. On success, warnings are available from
/// [`Policy::warnings`]; on failure every error (and warning) is in the [`CompileError`].
pub(crate) fn compile(sources: &[Source]) -> Result<Policy, CompileError> {
    let mut cx = Ctx { diags: Vec::new() };
    let mut files: Vec<(&str, RawFile)> = Vec::new();
    for s in sources {
        match parse_file(s) {
            Ok(f) => files.push((s.name.as_str(), f)),
            Err(d) => cx.diags.push(*d),
        }
    }
    let texts: FxHashMap<&str, &str> = sources.iter().map(|s| (s.name.as_str(), s.text.as_str())).collect();

    // ---- header
    let mut name: Option<(String, SourceLocation)> = None;
    let mut description = None;
    let mut combine = Combine::Union;
    for (file, f) in &files {
        if let Some(p) = &f.policy {
            match &name {
                Some((n, _)) if *n != p.value => cx.err_hint(
                    codes::DUPLICATE,
                    loc(file, p),
                    format!("policy is named `{}` here but `{n}` elsewhere", p.value),
                    Some("all files of one policy share one name".into()),
                ),
                Some(_) => {}
                None => {
                    if cx.name_ok("policy", file, p) {
                        name = Some((p.value.clone(), loc(file, p)));
                    }
                }
            }
        }
        if f.description.is_some() {
            description.clone_from(&f.description);
        }
        if let Some(c) = &f.combine {
            combine = match c.value.as_str() {
                "union" => Combine::Union,
                "highest_rank" => Combine::HighestRank,
                other => {
                    cx.err_hint(
                        codes::BAD_VALUE,
                        loc(file, c),
                        format!("unknown combining rule `{other}`"),
                        Some("use `union` or `highest_rank`".into()),
                    );
                    Combine::Union
                }
            };
        }
    }
    if name.is_none()
        && !sources.is_empty()
        && !cx.diags.iter().any(|d| d.code() == codes::SYNTAX || d.code() == codes::SHAPE)
    {
        let first = sources.first().map(|s| s.name.as_str()).unwrap_or("");
        cx.err_hint(
            codes::NO_POLICY_NAME,
            SourceLocation::new(first, 1, 1),
            "no file names the policy".into(),
            Some("add `policy: my-portal` at the top of one role file".into()),
        );
    }

    // ---- scope levels
    let mut levels: Vec<Level> = Vec::new();
    let mut level_loc: Vec<SourceLocation> = Vec::new();
    let mut level_index: FxHashMap<String, LevelId> = FxHashMap::default();
    let mut level_parents: Vec<Option<(String, SourceLocation)>> = Vec::new();
    for (file, f) in &files {
        for (k, v) in &f.scopes.0 {
            if !cx.name_ok("scope level", file, k) {
                continue;
            }
            if let Some(first) = level_index.get(&k.value) {
                let at = level_loc.get(usize::from(*first)).map(ToString::to_string).unwrap_or_default();
                cx.err(
                    codes::DUPLICATE,
                    loc(file, k),
                    format!("scope level `{}` is declared twice: here and at {at}", k.value),
                );
                continue;
            }
            let Ok(id) = LevelId::try_from(levels.len()) else {
                cx.err(codes::SCOPE_TREE, loc(file, k), "more than 64 scope levels".into());
                continue;
            };
            if levels.len() >= 64 {
                cx.err(codes::SCOPE_TREE, loc(file, k), "more than 64 scope levels".into());
                continue;
            }
            level_index.insert(k.value.clone(), id);
            if v.tenant && levels.iter().any(|l| l.tenant) {
                cx.err(
                    codes::SCOPE_TREE,
                    loc(file, k),
                    format!("`{}` is a second tenant level; mark one level `tenant: true`", k.value),
                );
            }
            levels.push(Level { name: k.value.clone(), parent: None, tenant: v.tenant });
            level_loc.push(loc(file, k));
            level_parents.push(v.parent.as_ref().map(|p| (p.value.clone(), loc(file, p))));
        }
    }
    for (i, p) in level_parents.iter().enumerate() {
        if let Some((pname, ploc)) = p {
            match level_index.get(pname) {
                Some(pid) => {
                    if let Some(l) = levels.get_mut(i) {
                        l.parent = Some(*pid);
                    }
                }
                None => cx.err_hint(
                    codes::UNKNOWN_LEVEL,
                    ploc.clone(),
                    format!("unknown parent level `{pname}`"),
                    suggest(pname, level_index.keys().map(String::as_str)),
                ),
            }
        }
    }
    // cycles in the level tree
    for start in 0..levels.len() {
        let mut seen = 0u64;
        let mut cur = Some(start);
        while let Some(c) = cur {
            if seen & (1 << c) != 0 {
                if let Some(l) = level_loc.get(start) {
                    cx.err(
                        codes::CYCLE,
                        l.clone(),
                        format!(
                            "scope level `{}` is its own ancestor",
                            levels.get(start).map(|l| l.name.as_str()).unwrap_or("")
                        ),
                    );
                }
                if let Some(l) = levels.get_mut(start) {
                    l.parent = None;
                }
                break;
            }
            seen |= 1 << c;
            cur = levels.get(c).and_then(|l| l.parent).map(usize::from);
        }
    }
    if levels.is_empty()
        && !files.is_empty()
        && cx.diags.iter().all(|d| d.code() != codes::SYNTAX && d.code() != codes::SHAPE)
    {
        let first = sources.first().map(|s| s.name.as_str()).unwrap_or("");
        cx.err_hint(
            codes::SCOPE_TREE,
            SourceLocation::new(first, 1, 1),
            "the policy declares no scope levels".into(),
            Some("add e.g. `scopes: { msp: {}, org: { parent: msp, tenant: true } }`".into()),
        );
    }

    // ---- attributes
    let mut principal_attrs: Vec<(String, Type)> = Vec::new();
    let mut context_attrs: Vec<(String, Type)> = Vec::new();
    let mut principal_defaults: Vec<Option<crate::value::Value>> = Vec::new();
    let mut context_defaults: Vec<Option<crate::value::Value>> = Vec::new();
    let mut pmap: FxHashMap<String, (u16, Type)> = FxHashMap::default();
    let mut cmap: FxHashMap<String, (u16, Type)> = FxHashMap::default();
    for (file, f) in &files {
        for (which, list, out, map, defaults) in [
            ("principal", &f.attributes.principal, &mut principal_attrs, &mut pmap, &mut principal_defaults),
            ("context", &f.attributes.context, &mut context_attrs, &mut cmap, &mut context_defaults),
        ] {
            for (k, t) in &list.0 {
                if !cx.name_ok("attribute", file, k) {
                    continue;
                }
                if map.contains_key(&k.value) || (which == "principal" && k.value == "id") {
                    cx.err(
                        codes::DUPLICATE,
                        loc(file, k),
                        format!("attribute `{which}.{}` is declared twice", k.value),
                    );
                    continue;
                }
                let Some((ty, default)) = attr_decl(&mut cx, file, t) else { continue };
                let id = u16::try_from(out.len()).unwrap_or(u16::MAX);
                map.insert(k.value.clone(), (id, ty));
                out.push((k.value.clone(), ty));
                defaults.push(default);
            }
        }
    }

    // ---- global permission levels
    let mut global_perms: Vec<(String, Vec<S<String>>, SourceLocation, &str)> = Vec::new();
    for (file, f) in &files {
        for (k, v) in &f.permissions.0 {
            if !cx.name_ok("permission", file, k) {
                continue;
            }
            if global_perms.iter().any(|(n, ..)| *n == k.value) {
                cx.err(codes::DUPLICATE, loc(file, k), format!("permission `{}` is declared twice", k.value));
                continue;
            }
            global_perms.push((k.value.clone(), v.0.clone(), loc(file, k), file));
        }
    }

    // ---- resource kinds
    let mut kinds: Vec<Kind> = Vec::new();
    let mut kind_index: FxHashMap<String, KindId> = FxHashMap::default();
    let mut kind_loc: FxHashMap<String, SourceLocation> = FxHashMap::default();
    let mut resource_attr_names: Vec<String> = Vec::new();
    let mut rattr_index: FxHashMap<String, u16> = FxHashMap::default();
    let mut used_levels: u64 = 0;
    // overlays' additions to kinds declared elsewhere (`extend: true`)
    let extensions: Vec<(&str, &S<String>, &crate::model::RawResource)> = files
        .iter()
        .flat_map(|(file, f)| f.resources.0.iter().map(move |(k, r)| (*file, k, r)))
        .filter(|(_, _, r)| r.extend.as_ref().is_some_and(|e| e.value))
        .collect();
    for (file, k, r) in &extensions {
        if let Some(sc) = &r.scopes {
            cx.err_hint(
                codes::SHAPE,
                loc(file, sc),
                format!("an extension of `{}` cannot change where it lives", k.value),
                Some("`scopes:` belongs to the kind's own declaration; an extension adds actions, permissions and attributes".into()),
            );
        }
    }
    for (file, f) in &files {
        for (k, r) in &f.resources.0 {
            if r.extend.as_ref().is_some_and(|e| e.value) {
                continue;
            }
            if !cx.name_ok("resource kind", file, k) {
                continue;
            }
            if let Some(first) = kind_loc.get(&k.value) {
                cx.err_hint(
                    codes::DUPLICATE,
                    loc(file, k),
                    format!("resource kind `{}` is declared twice: here and at {first}", k.value),
                    Some(
                        "declare a kind once; to add actions or attributes to it in an overlay, write `extend: true`"
                            .into(),
                    ),
                );
                continue;
            }
            kind_loc.insert(k.value.clone(), loc(file, k));
            // the declaration, then each extension of it, each with its own file
            let parts: Vec<(&str, &crate::model::RawResource)> = std::iter::once((*file, r))
                .chain(extensions.iter().filter(|(_, n, _)| n.value == k.value).map(|(f, _, r)| (*f, *r)))
                .collect();
            let mut actions = Vec::new();
            let mut action_index = FxHashMap::default();
            for (file, a) in parts.iter().flat_map(|(f, r)| r.actions.0.iter().map(move |a| (*f, a))) {
                if !cx.name_ok("action", file, a) {
                    continue;
                }
                if action_index.contains_key(&a.value) {
                    cx.err(
                        codes::DUPLICATE,
                        loc(file, a),
                        format!("action `{}` is listed twice for `{}`", a.value, k.value),
                    );
                    continue;
                }
                let Ok(i) = u8::try_from(actions.len()) else { continue };
                if i >= 128 {
                    cx.err(
                        codes::TOO_MANY_ACTIONS,
                        loc(file, a),
                        format!("resource kind `{}` has more than 128 actions", k.value),
                    );
                    break;
                }
                action_index.insert(a.value.clone(), i);
                actions.push(a.value.clone());
            }
            if actions.is_empty() {
                cx.err(codes::EMPTY_GRANT, loc(file, k), format!("resource kind `{}` declares no actions", k.value));
            }
            let mut vocab: FxHashMap<String, ActionSet> =
                action_index.iter().map(|(n, i)| (n.clone(), bit(*i))).collect();
            // kind-level permissions, then global ones that fit this kind
            let local: Vec<(String, Vec<S<String>>, SourceLocation, &str)> = parts
                .iter()
                .flat_map(|(f, r)| {
                    r.permissions.0.iter().map(move |(n, l)| (n.value.clone(), l.0.clone(), loc(f, n), *f))
                })
                .collect();
            for (pname, _, ploc, _) in &local {
                if vocab.contains_key(pname) {
                    cx.err(
                        codes::DUPLICATE,
                        ploc.clone(),
                        format!(
                            "permission `{pname}` of `{}` clashes with an action or permission of the same name",
                            k.value
                        ),
                    );
                }
            }
            resolve_perms(&mut cx, &k.value, &local, &global_perms, &mut vocab);
            let mut attrs = FxHashMap::default();
            let mut attr_names = FxHashMap::default();
            let mut defaults = Vec::new();
            for (file, (an, at)) in parts.iter().flat_map(|(f, r)| r.attributes.0.iter().map(move |a| (*f, a))) {
                if !cx.name_ok("attribute", file, an) {
                    continue;
                }
                if matches!(an.value.as_str(), "id" | "kind" | "scope") || attr_names.contains_key(&an.value) {
                    cx.err(
                        codes::DUPLICATE,
                        loc(file, an),
                        format!("attribute `resource.{}` is declared twice or shadows a built-in", an.value),
                    );
                    continue;
                }
                let Some((ty, default)) = attr_decl(&mut cx, file, at) else { continue };
                let gid = *rattr_index.entry(an.value.clone()).or_insert_with(|| {
                    resource_attr_names.push(an.value.clone());
                    u16::try_from(resource_attr_names.len() - 1).unwrap_or(u16::MAX)
                });
                attrs.insert(gid, ty);
                attr_names.insert(an.value.clone(), gid);
                if let Some(d) = default {
                    defaults.push((gid, d));
                }
            }
            let mut lv = u64::MAX;
            if let Some(sc) = &r.scopes {
                lv = 0;
                for l in &sc.value.0 {
                    match level_index.get(&l.value) {
                        Some(id) => lv |= 1 << id,
                        None => cx.err_hint(
                            codes::UNKNOWN_LEVEL,
                            loc(file, l),
                            format!("unknown scope level `{}`", l.value),
                            suggest(&l.value, level_index.keys().map(String::as_str)),
                        ),
                    }
                }
                used_levels |= lv;
            }
            let Ok(id) = KindId::try_from(kinds.len()) else { continue };
            kind_index.insert(k.value.clone(), id);
            kinds.push(Kind {
                name: k.value.clone(),
                actions,
                action_index,
                vocab,
                attrs,
                attr_names,
                defaults,
                levels: lv,
            });
        }
    }
    for (file, k, _) in &extensions {
        if !kind_index.contains_key(&k.value) {
            cx.err_hint(
                codes::UNKNOWN_RESOURCE,
                loc(file, k),
                format!("`extend: true`, but no resource kind `{}` is declared", k.value),
                suggest(&k.value, kind_index.keys().map(String::as_str)),
            );
        }
    }
    // global permissions must mean something somewhere
    for (pname, _, ploc, _) in &global_perms {
        if !kinds.iter().any(|k| k.vocab.contains_key(pname)) && !kinds.is_empty() {
            cx.warn(
                codes::EMPTY_GRANT,
                ploc.clone(),
                format!("permission `{pname}` fits no resource kind"),
                "every action it names must be an action of a kind for it to apply there",
            );
        }
    }

    // ---- roles
    struct PendingRole<'f> {
        file: &'f str,
        raw: &'f crate::model::RawRole,
        name_loc: SourceLocation,
    }
    let mut roles: Vec<Role> = Vec::new();
    let mut pending: Vec<PendingRole<'_>> = Vec::new();
    let mut role_index: FxHashMap<String, RoleId> = FxHashMap::default();
    let all_levels: u64 = if levels.len() >= 64 { u64::MAX } else { (1u64 << levels.len()) - 1 };
    for (file, f) in &files {
        for (k, r) in &f.roles.0 {
            if !cx.name_ok("role", file, k) {
                continue;
            }
            if let Some(first) = role_index.get(&k.value) {
                let at = roles.get(*first as usize).map(|r| r.location.to_string()).unwrap_or_default();
                cx.err_hint(
                    codes::DUPLICATE,
                    loc(file, k),
                    format!("role `{}` is declared twice: here and at {at}", k.value),
                    Some("a name declares one role; rename one, or merge them".into()),
                );
                continue;
            }
            let mut held_at = all_levels;
            if let Some(h) = &r.held_at {
                held_at = 0;
                for l in &h.value.0 {
                    match level_index.get(&l.value) {
                        Some(id) => held_at |= 1 << id,
                        None => cx.err_hint(
                            codes::UNKNOWN_LEVEL,
                            loc(file, l),
                            format!("unknown scope level `{}`", l.value),
                            suggest(&l.value, level_index.keys().map(String::as_str)),
                        ),
                    }
                }
                used_levels |= held_at;
                if h.value.0.is_empty() {
                    cx.err_hint(
                        codes::NO_LEVELS,
                        loc(file, h),
                        format!("role `{}` may be held at no scope level", k.value),
                        Some("list at least one level under `held_at`, or leave it out for every level".into()),
                    );
                }
            }
            let Ok(id) = RoleId::try_from(roles.len()) else { continue };
            role_index.insert(k.value.clone(), id);
            roles.push(Role {
                name: k.value.clone(),
                title: r.title.clone(),
                description: r.description.clone(),
                rank: r.rank.as_ref().map(|x| x.value).unwrap_or(0),
                assignable: r.assignable.unwrap_or(true),
                tenant_access: match r.tenant_access.as_ref().map(|t| t.value.as_str()) {
                    None => TenantAccess::AsAssigned,
                    Some("all") => TenantAccess::All,
                    Some("listed") => TenantAccess::Listed,
                    Some(other) => {
                        if let Some(t) = &r.tenant_access {
                            cx.err_hint(
                                codes::BAD_VALUE,
                                loc(file, t),
                                format!("unknown tenant access `{other}`"),
                                Some("use `all` or `listed`".into()),
                            );
                        }
                        TenantAccess::AsAssigned
                    }
                },
                held_at,
                includes: Vec::new(),
                location: loc(file, k),
                table: RuleTable::default(),
            });
            pending.push(PendingRole { file, raw: r, name_loc: loc(file, k) });
        }
    }
    // includes
    let mut included_by_someone = vec![false; roles.len()];
    for (i, p) in pending.iter().enumerate() {
        for inc in &p.raw.includes.0 {
            match role_index.get(&inc.value) {
                Some(&rid) => {
                    if let Some(r) = roles.get_mut(i) {
                        r.includes.push(rid);
                    }
                    if let Some(b) = included_by_someone.get_mut(rid as usize) {
                        *b = true;
                    }
                }
                None => cx.err_hint(
                    codes::UNKNOWN_ROLE,
                    loc(p.file, inc),
                    format!("unknown role `{}`", inc.value),
                    suggest(&inc.value, role_index.keys().map(String::as_str)),
                ),
            }
        }
    }
    // cycle detection (iterative DFS, colours)
    let closures = role_closures(&mut cx, &roles, &pending.iter().map(|p| p.name_loc.clone()).collect::<Vec<_>>());

    // ---- rules
    let mut rules: Vec<Rule> = Vec::new();
    let mut global = RuleTable::default();
    let mut role_has_rules = vec![false; roles.len()];
    let rc = RuleCtx { kinds: &kinds, kind_index: &kind_index, pmap: &pmap, cmap: &cmap, texts: &texts };
    for (i, p) in pending.iter().enumerate() {
        let rid = RoleId::try_from(i).unwrap_or(RoleId::MAX);
        for (effect, list) in
            [(Effect::Grant, p.raw.grants.as_deref().unwrap_or(&[])), (Effect::Deny, &p.raw.denies[..])]
        {
            for g in list {
                if let Some(rule) = rc.rule(&mut cx, p.file, g, effect, Some(rid)) {
                    rules.push(rule);
                    if let Some(b) = role_has_rules.get_mut(i) {
                        *b = true;
                    }
                }
            }
        }
    }
    for (file, f) in &files {
        for d in &f.denies {
            if let Some(rule) = rc.rule(&mut cx, file, d, Effect::Deny, None) {
                rules.push(rule);
            }
        }
        for m in &f.matrix {
            let mut cols: Vec<Option<RoleId>> = Vec::new();
            for c in &m.columns.0 {
                let r = role_index.get(&c.value).copied();
                if r.is_none() {
                    cx.err_hint(
                        codes::UNKNOWN_ROLE,
                        loc(file, c),
                        format!("unknown role `{}`", c.value),
                        suggest(&c.value, role_index.keys().map(String::as_str)),
                    );
                }
                cols.push(r);
            }
            for (row, cells) in &m.rows.0 {
                let Some(&kid) = kind_index.get(&row.value) else {
                    cx.err_hint(
                        codes::UNKNOWN_RESOURCE,
                        loc(file, row),
                        format!("unknown resource kind `{}`", row.value),
                        suggest(&row.value, kind_index.keys().map(String::as_str)),
                    );
                    continue;
                };
                if cells.0.len() != cols.len() {
                    cx.err(
                        codes::SHAPE,
                        loc(file, row),
                        format!("row `{}` has {} cells for {} columns", row.value, cells.0.len(), cols.len()),
                    );
                    continue;
                }
                let Some(kind) = kinds.get(kid as usize) else { continue };
                for (cell, col) in cells.0.iter().zip(&cols) {
                    let c = cell.value.as_str();
                    if matches!(c.to_ascii_lowercase().as_str(), "none" | "n/a" | "-" | "no_access" | "no access") {
                        continue;
                    }
                    let Some(set) =
                        kind.vocab.get(c).copied().or(if c == "*" { Some(all_actions(kind)) } else { None })
                    else {
                        cx.err_hint(
                            codes::UNKNOWN_ACTION,
                            loc(file, cell),
                            format!("`{c}` is not an action or permission of `{}`", kind.name),
                            suggest(c, kind.vocab.keys().map(String::as_str))
                                .or(Some("use a permission level, an action, or `none`".into())),
                        );
                        continue;
                    };
                    let Some(role) = *col else { continue };
                    if let Some(b) = role_has_rules.get_mut(role as usize) {
                        *b = true;
                    }
                    rules.push(Rule {
                        effect: Effect::Grant,
                        role: Some(role),
                        cond: None,
                        cond_text: None,
                        description: m.description.clone(),
                        location: loc(file, cell),
                        targets: vec![(kid, set)],
                    });
                }
            }
        }
    }
    // index rules: global denies, then each role's closure
    let mut own: Vec<Vec<u32>> = vec![Vec::new(); roles.len()];
    for (ri, rule) in rules.iter().enumerate() {
        let ri = u32::try_from(ri).unwrap_or(u32::MAX);
        match rule.role {
            None => {
                for (k, set) in &rule.targets {
                    global.add(*k, *set, ri, rule.effect, rule.cond.is_some());
                }
            }
            Some(r) => {
                if let Some(v) = own.get_mut(r as usize) {
                    v.push(ri);
                }
            }
        }
    }
    for (i, role) in roles.iter_mut().enumerate() {
        let mut table = RuleTable::default();
        for member in closures.get(i).map(Vec::as_slice).unwrap_or(&[]) {
            for ri in own.get(*member as usize).map(Vec::as_slice).unwrap_or(&[]) {
                if let Some(rule) = rules.get(*ri as usize) {
                    for (k, set) in &rule.targets {
                        table.add(*k, *set, *ri, rule.effect, rule.cond.is_some());
                    }
                }
            }
        }
        role.table = table;
    }

    // ---- unused roles and levels (warnings)
    for (i, p) in pending.iter().enumerate() {
        let grants_nothing = !role_has_rules.get(i).copied().unwrap_or(false) && p.raw.includes.0.is_empty();
        if grants_nothing && p.raw.grants.is_none() && !included_by_someone.get(i).copied().unwrap_or(false) {
            cx.warn(
                codes::UNUSED_ROLE,
                p.name_loc.clone(),
                format!("role `{}` grants nothing", roles.get(i).map(|r| r.name.as_str()).unwrap_or("")),
                "if that is intended (e.g. an alert-only contact), write `grants: []`",
            );
        }
    }
    for (i, l) in levels.iter().enumerate() {
        let has_child = levels.iter().any(|c| c.parent.map(usize::from) == Some(i));
        let referenced = used_levels & (1u64 << i) != 0;
        let any_default_role = pending.iter().any(|p| p.raw.held_at.is_none());
        let any_default_kind = files.iter().any(|(_, f)| f.resources.0.iter().any(|(_, r)| r.scopes.is_none()));
        if !has_child
            && !referenced
            && !any_default_role
            && !any_default_kind
            && !l.tenant
            && let Some(at) = level_loc.get(i)
        {
            {
                cx.warn(
                    codes::UNUSED_LEVEL,
                    at.clone(),
                    format!("scope level `{}` is used by no role or resource kind", l.name),
                    "remove it, or list it under a role's `held_at` or a kind's `scopes`",
                );
            }
        }
    }

    // ---- delegation
    let mut delegation = None;
    for (file, f) in &files {
        let Some(d) = &f.delegation else { continue };
        if delegation.is_some() {
            cx.err(codes::DUPLICATE, loc(file, d), "delegation is declared twice".into());
            continue;
        }
        let Some(&kid) = kind_index.get(&d.value.resource.value) else {
            cx.err_hint(
                codes::UNKNOWN_RESOURCE,
                loc(file, &d.value.resource),
                format!("unknown resource kind `{}`", d.value.resource.value),
                suggest(&d.value.resource.value, kind_index.keys().map(String::as_str)),
            );
            continue;
        };
        let Some(action) = kinds.get(kid as usize).and_then(|k| k.action_index.get(&d.value.action.value).copied())
        else {
            cx.err(
                codes::UNKNOWN_ACTION,
                loc(file, &d.value.action),
                format!("`{}` is not an action of `{}`", d.value.action.value, d.value.resource.value),
            );
            continue;
        };
        let strictly_below = match d.value.rank.as_ref().map(|r| r.value.as_str()) {
            None | Some("at_most_own") => false,
            Some("below_own") => true,
            Some(other) => {
                if let Some(r) = &d.value.rank {
                    cx.err_hint(
                        codes::BAD_VALUE,
                        loc(file, r),
                        format!("unknown rank rule `{other}`"),
                        Some("use `at_most_own` or `below_own`".into()),
                    );
                }
                false
            }
        };
        delegation = Some(Delegation { kind: kid, action, strictly_below });
    }

    // ---- invariants
    let mut invariants = Vec::new();
    for (file, f) in &files {
        for inv in &f.invariants {
            let v = &inv.value;
            let mut rids = Vec::new();
            for r in &v.roles.0 {
                match role_index.get(&r.value) {
                    Some(id) => rids.push(*id),
                    None => cx.err_hint(
                        codes::UNKNOWN_ROLE,
                        loc(file, r),
                        format!("unknown role `{}`", r.value),
                        suggest(&r.value, role_index.keys().map(String::as_str)),
                    ),
                }
            }
            let Some(&level) = level_index.get(&v.level.value) else {
                cx.err_hint(
                    codes::UNKNOWN_LEVEL,
                    loc(file, &v.level),
                    format!("unknown scope level `{}`", v.level.value),
                    suggest(&v.level.value, level_index.keys().map(String::as_str)),
                );
                continue;
            };
            if invariants.iter().any(|i: &Invariant| i.name == v.name.value) {
                cx.err(codes::DUPLICATE, loc(file, &v.name), format!("invariant `{}` is declared twice", v.name.value));
            }
            invariants.push(Invariant {
                name: v.name.value.clone(),
                description: v.description.clone(),
                roles: rids,
                level,
                at_least: v.at_least,
            });
        }
    }

    // The revision and stamp depend on the compiled form: `bundle::seal` sets them below.
    let (revision, stamp) = (String::new(), 0);

    let context_defaults_copy: Box<[Option<crate::value::Value>]> = context_defaults.into_boxed_slice();
    let mut policy = Policy {
        name: name.map(|(n, _)| n).unwrap_or_default(),
        description,
        combine,
        tenant_level: levels.iter().position(|l| l.tenant).and_then(|p| LevelId::try_from(p).ok()),
        levels,
        kinds,
        kind_index,
        resource_attr_names,
        principal_attr_index: principal_attrs
            .iter()
            .enumerate()
            .map(|(i, (n, _))| (n.clone(), u16::try_from(i).unwrap_or(u16::MAX)))
            .collect(),
        principal_attrs,
        principal_defaults: principal_defaults.into_boxed_slice(),
        context_attr_index: context_attrs
            .iter()
            .enumerate()
            .map(|(i, (n, _))| (n.clone(), u16::try_from(i).unwrap_or(u16::MAX)))
            .collect(),
        context_attrs,
        context_defaults: context_defaults_copy.clone(),
        roles,
        role_index,
        global,
        rules,
        delegation,
        invariants,
        filed: Vec::new(),
        principals: FxHashMap::default(),
        principal_order: Vec::new(),
        warnings: Vec::new(),
        revision,
        stamp,
        empty_context: crate::policy::PreparedContext { stamp, attrs: context_defaults_copy },
        routes: None,
    };
    policy.routes = crate::route::compile_routes(&mut cx, &files, &policy).map(Box::new);
    if !cx.diags.iter().any(Diagnostic::is_error) {
        crate::lint::lint(&policy, &mut cx);
    }

    // ---- principals filed with the policy
    for (file, f) in &files {
        for (k, p) in &f.principals.0 {
            let mut p = p.clone();
            if p.id.is_empty() {
                p.id.clone_from(&k.value);
            }
            if policy.principals.contains_key(&p.id) {
                cx.err(codes::DUPLICATE, loc(file, k), format!("principal `{}` is filed twice", p.id));
                continue;
            }
            match policy.prepare_principal(&p) {
                Ok(pp) => {
                    for (i, why) in pp.ignored_assignments() {
                        let role = p.assignments.get(i).map(|a| a.role.as_str()).unwrap_or("");
                        let hint = (!policy.role_index.contains_key(role))
                            .then(|| suggest(role, policy.role_names()))
                            .flatten();
                        cx.err_hint(codes::BAD_ASSIGNMENT, loc(file, k), format!("principal `{}`: {why}", p.id), hint);
                    }
                    for a in p.assignments.iter().filter(|a| a.tenants.is_none()) {
                        if let Some((means, fix)) = policy.implicit_tenants(a) {
                            cx.warn(
                                codes::IMPLICIT_TENANTS,
                                loc(file, k),
                                format!(
                                    "principal `{}`: `{}` at `{}` does not say which tenants it reaches; left out, that means {means}",
                                    p.id, a.role, a.scope
                                ),
                                &format!("write `{fix}` (or list the tenants) to keep this meaning"),
                            );
                        }
                    }
                    policy.principal_order.push(p.id.clone());
                    policy.principals.insert(p.id.clone(), pp);
                    policy.filed.push(p);
                }
                Err(e) => cx.err(codes::BAD_ASSIGNMENT, loc(file, k), format!("principal `{}`: {}", p.id, e.message())),
            }
        }
    }

    let (mut errors, warnings): (Vec<_>, Vec<_>) = cx.diags.into_iter().partition(Diagnostic::is_error);
    if errors.is_empty() {
        policy.warnings = warnings;
        crate::bundle::seal(&mut policy, sources)?;
        Ok(policy)
    } else {
        errors.extend(warnings);
        Err(CompileError::new(errors))
    }
}

fn all_actions(k: &Kind) -> ActionSet {
    let n = k.actions.len();
    if n >= 128 { ActionSet::MAX } else { (1u128 << n) - 1 }
}

/// Expand permission definitions into `vocab`. Local (kind-level) permissions must resolve;
/// global ones are added only where every name they use resolves for this kind.
fn resolve_perms(
    cx: &mut Ctx,
    kind: &str,
    local: &[(String, Vec<S<String>>, SourceLocation, &str)],
    global: &[(String, Vec<S<String>>, SourceLocation, &str)],
    vocab: &mut FxHashMap<String, ActionSet>,
) {
    // Kind-level definitions first (they win over shared ones of the same name, and may use
    // shared ones); only they must resolve, shared ones apply where they fit.
    let mut defs: Vec<(String, Vec<S<String>>, SourceLocation, &str)> = local.to_vec();
    defs.extend(global.iter().filter(|g| !local.iter().any(|l| l.0 == g.0)).cloned());
    let strict_below = local.len();
    let defs = &defs[..];
    let mut index: FxHashMap<&str, usize> = FxHashMap::default();
    for (i, d) in defs.iter().enumerate() {
        index.entry(d.0.as_str()).or_insert(i);
    }
    // 0 = unvisited, 1 = in progress, 2 = done (resolved or failed)
    let mut state = vec![0u8; defs.len()];
    let mut result: Vec<Option<ActionSet>> = vec![None; defs.len()];
    #[expect(clippy::too_many_arguments, reason = "a local recursive helper over the resolution state")]
    fn visit(
        i: usize,
        cx: &mut Ctx,
        kind: &str,
        defs: &[(String, Vec<S<String>>, SourceLocation, &str)],
        index: &FxHashMap<&str, usize>,
        vocab: &FxHashMap<String, ActionSet>,
        state: &mut [u8],
        result: &mut [Option<ActionSet>],
        strict_below: usize,
        depth: usize,
    ) -> Option<ActionSet> {
        let strict = i < strict_below;
        match state.get(i).copied() {
            Some(2) => return result.get(i).copied().flatten(),
            Some(1) => {
                if strict && let Some(d) = defs.get(i) {
                    cx.err(codes::CYCLE, d.2.clone(), format!("permission `{}` of `{kind}` includes itself", d.0));
                }
                return None;
            }
            _ => {}
        }
        if depth > 64 {
            return None;
        }
        if let Some(s) = state.get_mut(i) {
            *s = 1;
        }
        let mut set: ActionSet = 0;
        let mut ok = true;
        let def = defs.get(i)?;
        for item in &def.1 {
            if let Some(&b) = vocab.get(&item.value) {
                set |= b;
            } else if let Some(&j) = index.get(item.value.as_str()) {
                match visit(j, cx, kind, defs, index, vocab, state, result, strict_below, depth + 1) {
                    Some(b) => set |= b,
                    None => {
                        ok = false;
                        if strict && j >= strict_below {
                            cx.err_hint(
                                codes::UNKNOWN_ACTION,
                                loc(def.3, item),
                                format!("shared permission `{}` does not fit `{kind}`", item.value),
                                Some("every action it names must be an action of this kind".into()),
                            );
                        }
                    }
                }
            } else {
                ok = false;
                if strict {
                    cx.err_hint(
                        codes::UNKNOWN_ACTION,
                        loc(def.3, item),
                        format!("`{}` is not an action or permission of `{kind}`", item.value),
                        suggest(&item.value, vocab.keys().map(String::as_str)),
                    );
                }
            }
        }
        if let Some(s) = state.get_mut(i) {
            *s = 2;
        }
        let out = if ok && set != 0 { Some(set) } else { None };
        if let Some(r) = result.get_mut(i) {
            *r = out;
        }
        out
    }
    for i in 0..defs.len() {
        visit(i, cx, kind, defs, &index, vocab, &mut state, &mut result, strict_below, 0);
    }
    for (i, d) in defs.iter().enumerate() {
        if let Some(Some(set)) = result.get(i) {
            vocab.entry(d.0.clone()).or_insert(*set);
        }
    }
}

/// For each role, the roles it includes transitively (itself first). Reports cycles.
fn role_closures(cx: &mut Ctx, roles: &[Role], locs: &[SourceLocation]) -> Vec<Vec<RoleId>> {
    let n = roles.len();
    let mut colour = vec![0u8; n];
    let mut in_cycle = vec![false; n];
    for start in 0..n {
        if colour.get(start).copied() != Some(0) {
            continue;
        }
        // iterative DFS: stack of (node, next child index)
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        if let Some(c) = colour.get_mut(start) {
            *c = 1;
        }
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let child = roles.get(node).and_then(|r| r.includes.get(*next)).map(|c| *c as usize);
            *next += 1;
            match child {
                Some(c) => match colour.get(c).copied() {
                    Some(0) => {
                        if let Some(col) = colour.get_mut(c) {
                            *col = 1;
                        }
                        stack.push((c, 0));
                    }
                    Some(1) if !in_cycle.get(c).copied().unwrap_or(true) => {
                        if let Some(b) = in_cycle.get_mut(c) {
                            *b = true;
                        }
                        let path: Vec<&str> = stack
                            .iter()
                            .skip_while(|(s, _)| *s != c)
                            .filter_map(|(s, _)| roles.get(*s).map(|r| r.name.as_str()))
                            .collect();
                        if let Some(l) = locs.get(c) {
                            cx.diags.push(
                                Diagnostic::error(
                                    codes::CYCLE,
                                    l.clone(),
                                    format!(
                                        "role inclusion cycle: {} -> {}",
                                        path.join(" -> "),
                                        roles.get(c).map(|r| r.name.as_str()).unwrap_or("")
                                    ),
                                )
                                .hint("a role may not include itself, directly or through others"),
                            );
                        }
                    }
                    _ => {}
                },
                None => {
                    if let Some(col) = colour.get_mut(node) {
                        *col = 2;
                    }
                    stack.pop();
                }
            }
        }
    }
    (0..n)
        .map(|i| {
            let mut seen: FxHashSet<usize> = FxHashSet::default();
            let mut order = Vec::new();
            let mut work = vec![i];
            while let Some(r) = work.pop() {
                if !seen.insert(r) {
                    continue;
                }
                order.push(RoleId::try_from(r).unwrap_or(RoleId::MAX));
                if let Some(role) = roles.get(r) {
                    work.extend(role.includes.iter().map(|c| *c as usize));
                }
            }
            order
        })
        .collect()
}

struct RuleCtx<'a> {
    kinds: &'a [Kind],
    kind_index: &'a FxHashMap<String, KindId>,
    pmap: &'a FxHashMap<String, (u16, Type)>,
    cmap: &'a FxHashMap<String, (u16, Type)>,
    texts: &'a FxHashMap<&'a str, &'a str>,
}

impl RuleCtx<'_> {
    fn rule(&self, cx: &mut Ctx, file: &str, g: &S<RawRule>, effect: Effect, role: Option<RoleId>) -> Option<Rule> {
        let raw = &g.value;
        let at = loc(file, g);
        let word = if effect == Effect::Grant { "grant" } else { "deny" };
        if raw.resources.0.is_empty() {
            cx.err_hint(
                codes::SHAPE,
                at.clone(),
                format!("{word} names no resource kinds"),
                Some("add `resources: [kind, ...]` (or `[\"*\"]` for every kind)".into()),
            );
            return None;
        }
        if raw.actions.0.is_empty() {
            cx.err_hint(
                codes::SHAPE,
                at.clone(),
                format!("{word} names no actions"),
                Some("add `actions: [action or permission, ...]` (or `[\"*\"]`)".into()),
            );
            return None;
        }
        let wildcard = raw.resources.0.iter().any(|r| r.value == "*");
        let mut kind_ids: Vec<KindId> = Vec::new();
        let mut ok = true;
        if wildcard {
            kind_ids = (0..self.kinds.len()).filter_map(|i| KindId::try_from(i).ok()).collect();
        } else {
            for r in &raw.resources.0 {
                match self.kind_index.get(&r.value) {
                    Some(k) => {
                        if !kind_ids.contains(k) {
                            kind_ids.push(*k);
                        }
                    }
                    None => {
                        ok = false;
                        cx.err_hint(
                            codes::UNKNOWN_RESOURCE,
                            loc(file, r),
                            format!("unknown resource kind `{}`", r.value),
                            suggest(&r.value, self.kind_index.keys().map(String::as_str)),
                        );
                    }
                }
            }
        }
        let mut targets: Vec<(KindId, ActionSet)> = Vec::new();
        for &kid in &kind_ids {
            let Some(kind) = self.kinds.get(kid as usize) else { continue };
            let mut set: ActionSet = 0;
            for a in &raw.actions.0 {
                if a.value == "*" {
                    set |= all_actions(kind);
                } else if let Some(b) = kind.vocab.get(&a.value) {
                    set |= *b;
                } else if !wildcard {
                    ok = false;
                    let mut valid: Vec<&str> = kind.vocab.keys().map(String::as_str).collect();
                    valid.sort_unstable();
                    let list = format!("the actions and permissions of `{}` are: {}", kind.name, valid.join(", "));
                    cx.err_hint(
                        codes::UNKNOWN_ACTION,
                        loc(file, a),
                        format!("`{}` is not an action or permission of `{}`", a.value, kind.name),
                        Some(match suggest(&a.value, kind.vocab.keys().map(String::as_str)) {
                            Some(dym) => format!("{dym} {list}"),
                            None => list,
                        }),
                    );
                }
            }
            if set != 0 {
                targets.push((kid, set));
            }
        }
        if wildcard {
            for a in &raw.actions.0 {
                if a.value != "*" && !self.kinds.iter().any(|k| k.vocab.contains_key(&a.value)) {
                    ok = false;
                    let all: Vec<&str> = self.kinds.iter().flat_map(|k| k.vocab.keys().map(String::as_str)).collect();
                    cx.err_hint(
                        codes::UNKNOWN_ACTION,
                        loc(file, a),
                        format!("`{}` is an action or permission of no resource kind", a.value),
                        suggest(&a.value, all.into_iter()),
                    );
                }
            }
        }
        let mut cond = None;
        if let Some(w) = &raw.when {
            let wloc = cond_location(file, w, self.texts);
            let mut first: Option<crate::expr::Expr> = None;
            let check_kinds: Vec<Option<&Kind>> = if targets.is_empty() {
                vec![None]
            } else {
                targets.iter().map(|(k, _)| self.kinds.get(*k as usize)).collect()
            };
            let mut reported = false;
            for k in check_kinds {
                let r = AttrResolver {
                    principal: self.pmap,
                    context: self.cmap,
                    kind: k,
                    kind_name: k.map(|k| k.name.as_str()).unwrap_or("?"),
                };
                match expr::compile(&w.value, &r) {
                    Ok(e) => {
                        if first.is_none() {
                            first = Some(e);
                        }
                    }
                    Err(e) => {
                        ok = false;
                        if !reported {
                            reported = true;
                            let code = if e.is_type_error { codes::CONDITION_TYPE } else { codes::CONDITION_SYNTAX };
                            cx.err_hint(code, wloc.shifted(e.offset, e.len), e.message, e.hint);
                        }
                    }
                }
            }
            cond = first;
        }
        if !ok {
            return None;
        }
        Some(Rule {
            effect,
            role,
            cond,
            cond_text: raw.when.as_ref().map(|w| w.value.clone()),
            description: raw.description.clone(),
            location: at,
            targets,
        })
    }
}
