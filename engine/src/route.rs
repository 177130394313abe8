//! HTTP route tables: how an HTTP request (method, raw target, headers) becomes an
//! authorization question, with path normalization. Every host (the gateway through wasmtime,
//! the edge worker and the browser through the npm package) maps requests here, so all of
//! them enforce the identical table.
//!
//! Normalization refuses, rather than repairs, every ambiguous target: what the engine decides
//! on is exactly what the upstream will read. Refused: anything but origin-form (`/...`),
//! fragments, `..` and `.` segments (raw or percent-encoded), empty segments (`//`, a leading
//! `//`), `;` parameters, `\`, raw bytes outside printable ASCII, bad or double percent-encoding
//! (a `%` after decoding), and decoded `/`, `\`, `;` or control characters inside a segment.
//! Paths are case-sensitive and a trailing slash is part of the path.

use serde::{Deserialize, Serialize};

use crate::decision::Reason;
use crate::eval::RequestError;
use crate::policy::{Policy, PreparedPrincipal};
use crate::request::Resource;
use crate::value::Type;

/// Longest request target accepted, in bytes.
const MAX_TARGET: usize = 8192;

/// An HTTP request as a gateway or an edge worker received it.
#[derive(Clone, Copy, Debug)]
pub struct HttpRequest<'a> {
    /// The method, case-sensitive (`GET`, `POST`, ...). `HEAD` falls back to `GET` routes.
    pub method: &'a str,
    /// The raw request target in origin form (`/path?query`), exactly as received: not decoded.
    pub target: &'a str,
    /// Header name/value pairs; names compare case-insensitively. Only headers a route reads
    /// are looked at, and a header a route reads must not be repeated.
    pub headers: &'a [(&'a str, &'a str)],
}

/// What a route maps a request to.
#[derive(Clone, Debug, PartialEq)]
pub struct RoutedRequest {
    route: String,
    question: Option<(String, Resource, serde_json::Map<String, serde_json::Value>)>,
}

impl RoutedRequest {
    /// The matched route, e.g. `GET /api/v1/orgs/{org}`.
    pub fn route(&self) -> &str {
        &self.route
    }
    /// Whether the route is public (anyone may call it; no question to ask).
    pub fn is_public(&self) -> bool {
        self.question.is_none()
    }
    /// The action asked (`None` for a public route).
    pub fn action(&self) -> Option<&str> {
        self.question.as_ref().map(|q| q.0.as_str())
    }
    /// The resource acted on (`None` for a public route).
    pub fn resource(&self) -> Option<&Resource> {
        self.question.as_ref().map(|q| &q.1)
    }
    /// Context attributes taken from the request.
    pub fn context(&self) -> Option<&serde_json::Map<String, serde_json::Value>> {
        self.question.as_ref().map(|q| &q.2)
    }
}

/// The decision on one HTTP request: the verdict plus what the request was mapped to (for
/// decision logs and error bodies).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpDecision {
    allowed: bool,
    reason: Reason,
    public: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    route: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    assignment: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    nearest: Vec<String>,
}

impl HttpDecision {
    pub(crate) fn refused(reason: Reason, detail: String) -> Self {
        Self {
            allowed: false,
            reason,
            public: false,
            route: None,
            action: None,
            kind: None,
            scope: None,
            tenant: None,
            resource_id: None,
            detail: Some(detail),
            rule: None,
            assignment: None,
            nearest: Vec::new(),
        }
    }
    /// Whether the request may pass.
    pub fn allowed(&self) -> bool {
        self.allowed
    }
    /// The reason code (`allowed` for public routes).
    pub fn reason(&self) -> Reason {
        self.reason
    }
    /// Whether a public route matched.
    pub fn public(&self) -> bool {
        self.public
    }
    /// The matched route template, e.g. `GET /api/v1/orgs/{org}`.
    pub fn route(&self) -> Option<&str> {
        self.route.as_deref()
    }
    /// The action asked.
    pub fn action(&self) -> Option<&str> {
        self.action.as_deref()
    }
    /// The resource kind.
    pub fn kind(&self) -> Option<&str> {
        self.kind.as_deref()
    }
    /// The resource's scope path.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }
    /// The tenant segment of the scope (e.g. `org:o1`), when the scope reaches the tenant level.
    pub fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }
    /// The resource id (may be empty, e.g. for a collection).
    pub fn resource_id(&self) -> Option<&str> {
        self.resource_id.as_deref()
    }
    /// For refused or malformed requests: what exactly was wrong.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }
    /// The rule that decided: for an allow the grant, for an `explicit_deny` the deny. Its id
    /// in [`Policy::rule_table`] (effect, role, `file:line:col`).
    pub fn rule(&self) -> Option<u32> {
        self.rule
    }
    /// The assignment the deciding rule came through, `role@scope` (absent for a policy-wide
    /// deny).
    pub fn assignment(&self) -> Option<&str> {
        self.assignment.as_deref()
    }
    /// For a default deny (`no_matching_grant`, `out_of_scope`, `condition_false`): the
    /// principal's assignments nearest to the question's scope (at most 3, the nearest first,
    /// as `role@scope`); empty otherwise.
    pub fn nearest(&self) -> &[String] {
        &self.nearest
    }
}

// ---------------------------------------------------------------- compiled form

/// A piece of a template: literal text or a path parameter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Piece {
    Lit(String),
    Param(String),
}

/// Where an attribute value comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum ValueSource {
    Text(Vec<Piece>),
    Query(String),
    /// Lowercase header name.
    Header(String),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Target {
    action: String,
    kind: String,
    scope: Vec<Piece>,
    id: Vec<Piece>,
    attributes: Vec<(String, ValueSource, Type)>,
    context: Vec<(String, ValueSource, Type)>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Route {
    label: String,
    /// `None`: a public route.
    target: Option<Target>,
}

/// One segment of a route's path: a literal, or a parameter (by name).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seg {
    Lit(String),
    Param(String),
}

/// A policy's compiled route table. In a bundle: `base` and `routes`; the patterns are built
/// again from the routes' labels (`METHOD /path`) when it is loaded.
///
/// Matching: a route matches a path with as many segments whose literals are equal and whose
/// parameters are not empty; of several, the one with a literal where the others have a
/// parameter at the first segment they differ in (a literal wins over a parameter, as in a
/// radix router that tries static children first and backtracks). Two routes of one method
/// with the same literals and parameters at the same places conflict (refused when compiled).
/// A route table is tens of routes: a scan is as fast as a tree and far smaller in the
/// WebAssembly module. (A unit test checks it against the `matchit` router.)
#[derive(Clone, Debug, Default)]
pub(crate) struct RouteTable {
    base: String,
    routes: Vec<Route>,
    /// Per route (same index): its method and path segments.
    patterns: Vec<(String, Vec<Seg>)>,
}

impl RouteTable {
    /// Every attribute a route takes from a request header: (route, kind, action, the
    /// attribute it fills, header name). For the lint on grants that read them.
    #[cfg(feature = "compiler")]
    pub(crate) fn header_attributes(
        &self,
        policy: &Policy,
    ) -> Vec<(String, crate::policy::KindId, String, crate::expr::Var, String)> {
        let mut out = Vec::new();
        for r in &self.routes {
            let Some(t) = &r.target else { continue };
            let Some(&kind) = policy.kind_index.get(&t.kind) else { continue };
            let resource = t.attributes.iter().filter_map(|(name, src, _)| {
                let ValueSource::Header(h) = src else { return None };
                let id = policy.resource_attr_names.iter().position(|n| n == name)?;
                Some((crate::expr::Var::ResourceAttr(u16::try_from(id).ok()?), h))
            });
            let context = t.context.iter().filter_map(|(name, src, _)| {
                let ValueSource::Header(h) = src else { return None };
                Some((crate::expr::Var::ContextAttr(*policy.context_attr_index.get(name)?), h))
            });
            for (var, h) in resource.chain(context) {
                out.push((r.label.clone(), kind, t.action.clone(), var, h.clone()));
            }
        }
        out
    }

    /// The route matching `method` and the normalized `path` (`/...`), with its parameters.
    /// `HEAD` falls back to the `GET` routes when there is no `HEAD` route at all.
    fn find<'a, 'p>(&'a self, method: &str, path: &'p str) -> Option<(&'a Route, Vec<(&'a str, &'p str)>)> {
        let has = |m: &str| self.patterns.iter().any(|(pm, _)| pm == m);
        let method = if has(method) {
            method
        } else if method == "HEAD" && has("GET") {
            "GET"
        } else {
            return None;
        };
        let segs: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
        let matches = |pat: &[Seg]| {
            pat.len() == segs.len()
                && pat.iter().zip(&segs).all(|(p, s)| match p {
                    Seg::Lit(l) => l == s,
                    Seg::Param(_) => !s.is_empty(),
                })
        };
        let (i, pat) = self
            .patterns
            .iter()
            .enumerate()
            .filter(|(_, (m, pat))| m == method && matches(pat))
            .map(|(i, (_, pat))| (i, pat))
            .min_by(|a, b| {
                let kinds = |p: &[Seg]| p.iter().map(|s| matches!(s, Seg::Param(_))).collect::<Vec<bool>>();
                kinds(a.1).cmp(&kinds(b.1))
            })?;
        let params = pat
            .iter()
            .zip(&segs)
            .filter_map(|(p, s)| match p {
                Seg::Param(name) => Some((name.as_str(), *s)),
                Seg::Lit(_) => None,
            })
            .collect();
        Some((self.routes.get(i)?, params))
    }

    /// The number of routes (public and protected).
    pub(crate) fn len(&self) -> usize {
        self.routes.len()
    }

    /// Add `route` under `method` and `path`; `Err` (naming the other route) when a route of
    /// the same method has the same shape.
    fn add(&mut self, method: String, path: &str, route: Route) -> Result<(), String> {
        let segs: Vec<Seg> = path
            .strip_prefix('/')
            .unwrap_or(path)
            .split('/')
            .map(|s| match s.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
                Some(name) => Seg::Param(name.to_owned()),
                None => Seg::Lit(s.to_owned()),
            })
            .collect();
        let same_shape = |other: &[Seg]| {
            other.len() == segs.len()
                && other.iter().zip(&segs).all(|pair| match pair {
                    (Seg::Lit(a), Seg::Lit(b)) => a == b,
                    (Seg::Param(_), Seg::Param(_)) => true,
                    _ => false,
                })
        };
        if let Some(i) = self.patterns.iter().position(|(m, other)| *m == method && same_shape(other)) {
            let other = self.routes.get(i).map_or("", |r| r.label.as_str());
            return Err(format!("`{other}` matches the same requests"));
        }
        self.patterns.push((method, segs));
        self.routes.push(route);
        Ok(())
    }

    /// The (kind, action) each protected route asks about (for the bundle's structural check).
    pub(crate) fn questions(&self) -> impl Iterator<Item = (&str, &str)> {
        self.routes.iter().filter_map(|r| r.target.as_ref()).map(|t| (t.kind.as_str(), t.action.as_str()))
    }
}

impl Serialize for RouteTable {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (&self.base, &self.routes).serialize(s)
    }
}

impl<'de> Deserialize<'de> for RouteTable {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let (base, routes) = <(String, Vec<Route>)>::deserialize(d)?;
        let mut table = RouteTable { base, ..RouteTable::default() };
        for route in routes {
            let (method, path) = route.label.split_once(' ').ok_or_else(|| D::Error::custom("route label"))?;
            let (method, path) = (method.to_owned(), path.to_owned());
            table.add(method, &path, route).map_err(D::Error::custom)?;
        }
        Ok(table)
    }
}

impl RouteTable {
    /// Read from a bundle's compiled form (`wire.rs`), as `deserialize` does: `None` when
    /// malformed or when two routes conflict.
    pub(crate) fn read(r: &mut crate::wire::Reader<'_>) -> Option<RouteTable> {
        use crate::wire::Reader;
        fn pieces(r: &mut Reader<'_>) -> Option<Vec<Piece>> {
            r.seq(|r| Some(if r.tag(2)? == 0 { Piece::Lit(r.string()?) } else { Piece::Param(r.string()?) }))
        }
        fn values(r: &mut Reader<'_>) -> Option<Vec<(String, ValueSource, Type)>> {
            r.seq(|r| {
                let name = r.string()?;
                let source = match r.tag(3)? {
                    0 => ValueSource::Text(pieces(r)?),
                    1 => ValueSource::Query(r.string()?),
                    _ => ValueSource::Header(r.string()?),
                };
                Some((name, source, Type::read(r)?))
            })
        }
        let base = r.string()?;
        let routes = r.seq(|r| {
            let label = r.string()?;
            let target = r.opt(|r| {
                Some(Target {
                    action: r.string()?,
                    kind: r.string()?,
                    scope: pieces(r)?,
                    id: pieces(r)?,
                    attributes: values(r)?,
                    context: values(r)?,
                })
            })?;
            Some(Route { label, target })
        })?;
        let mut table = RouteTable { base, ..RouteTable::default() };
        for route in routes {
            let (method, path) = route.label.split_once(' ')?;
            let (method, path) = (method.to_owned(), path.to_owned());
            table.add(method, &path, route).ok()?;
        }
        Some(table)
    }
}

fn join_scope(base: &str, rel: &str) -> String {
    match (base.is_empty(), rel.is_empty()) {
        (true, _) => rel.to_owned(),
        (false, true) => base.to_owned(),
        (false, false) => format!("{base}/{rel}"),
    }
}

// ---------------------------------------------------------------- compiling

#[cfg(feature = "compiler")]
pub(crate) use compiling::compile_routes;

/// The `routes:` section compiled (feature `compiler`); bundles carry the result.
#[cfg(feature = "compiler")]
mod compiling {
    use super::{Piece, Route, RouteTable, Target, ValueSource, join_scope};
    use crate::compile::{Ctx, loc, valid_name};
    use crate::diag::codes;
    use crate::model::{RawFile, RawRoute, S};
    use crate::policy::Policy;

    /// Split `METHOD /path` and check both parts; returns the method, the path and its
    /// parameter names.
    pub(super) fn parse_route_line(s: &str) -> Result<(String, String, Vec<String>), String> {
        let s = s.trim();
        let Some((method, path)) = s.split_once(' ') else {
            return Err(format!("route `{s}` must be `METHOD /path`"));
        };
        let path = path.trim();
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(format!("method `{method}` must be an uppercase HTTP method such as `GET`"));
        }
        if !path.starts_with('/') {
            return Err(format!("path `{path}` must start with `/`"));
        }
        let mut params: Vec<String> = Vec::new();
        let segments: Vec<&str> = path.split('/').skip(1).collect();
        let last = segments.len().saturating_sub(1);
        for (i, seg) in segments.iter().enumerate() {
            if seg.is_empty() {
                if i == last {
                    continue; // a trailing slash (or the root path)
                }
                return Err(format!("path `{path}` has an empty segment"));
            }
            if let Some(name) = seg.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
                if !valid_name(name) || name.contains('.') {
                    return Err(format!("parameter `{{{name}}}` needs a name of letters, digits, `_` or `-`"));
                }
                if params.iter().any(|p| p == name) {
                    return Err(format!("parameter `{{{name}}}` appears twice"));
                }
                params.push(name.to_owned());
                continue;
            }
            if *seg == "." || *seg == ".." {
                return Err(format!("path `{path}` has a `{seg}` segment"));
            }
            if let Some(c) = seg.chars().find(|c| !literal_char(*c)) {
                return Err(format!(
                    "segment `{seg}` has `{c}`: a segment is a literal of unreserved characters or exactly one `{{param}}`"
                ));
            }
        }
        Ok((method.to_owned(), path.to_owned(), params))
    }

    fn literal_char(c: char) -> bool {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                '-' | '_' | '.' | '~' | ':' | '@' | '!' | '$' | '&' | '\'' | '(' | ')' | '*' | '+' | ',' | '='
            )
    }

    /// Parse a text template (`org:{org}`, `{device}`, `literal`) against the route's parameters.
    pub(super) fn parse_pieces(s: &str, params: &[String]) -> Result<Vec<Piece>, String> {
        let mut out = Vec::new();
        let mut rest = s;
        while let Some(open) = rest.find('{') {
            let (lit, after) = rest.split_at(open);
            if !lit.is_empty() {
                if lit.contains('}') {
                    return Err(format!("unbalanced `}}` in `{s}`"));
                }
                out.push(Piece::Lit(lit.to_owned()));
            }
            let after = after.get(1..).unwrap_or("");
            let Some(close) = after.find('}') else {
                return Err(format!("unclosed `{{` in `{s}`"));
            };
            let name = after.get(..close).unwrap_or("");
            if !params.iter().any(|p| p == name) {
                let known = if params.is_empty() {
                    "the route has no parameters".to_owned()
                } else {
                    format!(
                        "the route's parameters: {}",
                        params.iter().map(|p| format!("`{{{p}}}`")).collect::<Vec<_>>().join(", ")
                    )
                };
                return Err(format!("`{{{name}}}` is not a parameter of the route ({known})"));
            }
            out.push(Piece::Param(name.to_owned()));
            rest = after.get(close + 1..).unwrap_or("");
        }
        if !rest.is_empty() {
            if rest.contains('}') {
                return Err(format!("unbalanced `}}` in `{s}`"));
            }
            out.push(Piece::Lit(rest.to_owned()));
        }
        Ok(out)
    }

    fn parse_source(s: &str, params: &[String]) -> Result<ValueSource, String> {
        if let Some(q) = s.strip_prefix("query.") {
            if q.is_empty() {
                return Err("`query.` needs a parameter name".into());
            }
            return Ok(ValueSource::Query(q.to_owned()));
        }
        if let Some(h) = s.strip_prefix("header.") {
            if h.is_empty() || !h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                return Err(format!("`{s}` needs a header name of letters, digits and `-`"));
            }
            return Ok(ValueSource::Header(h.to_ascii_lowercase()));
        }
        parse_pieces(s, params).map(ValueSource::Text)
    }

    /// Compile the `routes:` sections of a policy's files (at most one). Errors go to `cx`.
    pub(crate) fn compile_routes(cx: &mut Ctx, files: &[(&str, RawFile)], policy: &Policy) -> Option<RouteTable> {
        let mut found: Option<(&str, &S<crate::model::RawRoutes>)> = None;
        for (file, f) in files {
            if let Some(r) = &f.routes {
                if let Some((first, _)) = found {
                    cx.err_hint(
                        codes::DUPLICATE,
                        loc(file, r),
                        "a second `routes:` section".into(),
                        Some(format!("the policy's route table is already declared in `{first}`")),
                    );
                    continue;
                }
                found = Some((file, r));
            }
        }
        let (file, raw) = found?;
        let mut table = RouteTable::default();
        if let Some(b) = &raw.value.base {
            match policy.scope_level(&b.value) {
                Ok(_) => table.base.clone_from(&b.value),
                Err(e) => cx.err(codes::ROUTE, loc(file, b), format!("routes base `{}`: {e}", b.value)),
            }
        }
        for p in &raw.value.public.0 {
            match parse_route_line(&p.value) {
                Ok((method, path, _)) => add_route(cx, &mut table, file, p, method, path, None),
                Err(e) => cx.err(codes::ROUTE, loc(file, p), e),
            }
        }
        for r in &raw.value.table {
            let line = &r.value.route;
            let (method, path, params) = match parse_route_line(&line.value) {
                Ok(x) => x,
                Err(e) => {
                    cx.err(codes::ROUTE, loc(file, line), e);
                    continue;
                }
            };
            if let Some(target) = compile_target(cx, file, &r.value, &params, policy, &table.base) {
                add_route(cx, &mut table, file, line, method, path, Some(target));
            }
        }
        Some(table)
    }

    fn add_route(
        cx: &mut Ctx,
        table: &mut RouteTable,
        file: &str,
        at: &S<String>,
        method: String,
        path: String,
        target: Option<Target>,
    ) {
        let label = format!("{method} {path}");
        if let Err(e) = table.add(method, &path, Route { label: label.clone(), target }) {
            cx.err_hint(
                codes::ROUTE_CONFLICT,
                loc(file, at),
                format!("route `{label}` conflicts with another route"),
                Some(e),
            );
        }
    }

    fn compile_target(
        cx: &mut Ctx,
        file: &str,
        r: &RawRoute,
        params: &[String],
        policy: &Policy,
        base: &str,
    ) -> Option<Target> {
        let errors_before = cx.diags.len();
        let kind = policy.kind_index.get(&r.resource.value).and_then(|k| policy.kind(*k));
        let Some(kind) = kind else {
            cx.err_hint(
                codes::UNKNOWN_RESOURCE,
                loc(file, &r.resource),
                format!("unknown resource kind `{}`", r.resource.value),
                crate::compile::suggest(&r.resource.value, policy.kind_names()),
            );
            return None;
        };
        if !kind.action_index.contains_key(&r.action.value) {
            cx.err_hint(
                codes::UNKNOWN_ACTION,
                loc(file, &r.action),
                format!("`{}` is not an action of `{}`", r.action.value, kind.name),
                crate::compile::suggest(&r.action.value, kind.actions.iter().map(String::as_str)),
            );
        }
        let scope = match &r.scope {
            None => Some(Vec::new()),
            Some(s) => parse_pieces(&s.value, params).map_err(|e| cx.err(codes::ROUTE_PARAM, loc(file, s), e)).ok(),
        };
        if let Some(pieces) = &scope
            && !(pieces.is_empty() && base.is_empty())
        {
            // check the scope's shape with a placeholder id for every parameter
            let sample: String = pieces
                .iter()
                .map(|p| match p {
                    Piece::Lit(l) => l.as_str(),
                    Piece::Param(_) => "x",
                })
                .collect();
            let full = join_scope(base, &sample);
            let at = r.scope.as_ref().map_or_else(|| loc(file, &r.route), |s| loc(file, s));
            match policy.scope_level(&full) {
                Ok(level) if kind.levels & (1u64 << level) == 0 => {
                    let lname = policy.level(level).map(|l| l.name.as_str()).unwrap_or("?");
                    cx.err(
                        codes::ROUTE,
                        at,
                        format!("a `{}` does not live at scope level `{lname}` (`{full}`)", kind.name),
                    );
                }
                Ok(_) => {}
                Err(e) => cx.err(codes::ROUTE, at, format!("scope `{full}`: {e}")),
            }
        }
        let scope = scope.unwrap_or_default();
        if r.scope.is_none() && base.is_empty() {
            cx.err_hint(
                codes::ROUTE,
                loc(file, &r.route),
                "the route has no scope".into(),
                Some("give the route a `scope:` or the table a `base:`".into()),
            );
        }
        let id = match &r.id {
            None => Vec::new(),
            Some(s) => parse_pieces(&s.value, params).unwrap_or_else(|e| {
                cx.err(codes::ROUTE_PARAM, loc(file, s), e);
                Vec::new()
            }),
        };
        let mut attributes = Vec::new();
        for (name, src) in &r.attributes.0 {
            let Some(ty) = kind.attr_names.get(&name.value).and_then(|g| kind.attrs.get(g)).copied() else {
                cx.err(
                    codes::ROUTE,
                    loc(file, name),
                    format!("resource kind `{}` has no attribute `{}`", kind.name, name.value),
                );
                continue;
            };
            match parse_source(&src.value, params) {
                Ok(s) => attributes.push((name.value.clone(), s, ty)),
                Err(e) => cx.err(codes::ROUTE_PARAM, loc(file, src), e),
            }
        }
        let mut context = Vec::new();
        for (name, src) in &r.context.0 {
            let Some(ty) = policy
                .context_attr_index
                .get(&name.value)
                .and_then(|i| policy.context_attrs.get(usize::from(*i)))
                .map(|x| x.1)
            else {
                cx.err(codes::ROUTE, loc(file, name), format!("unknown context attribute `{}`", name.value));
                continue;
            };
            match parse_source(&src.value, params) {
                Ok(s) => context.push((name.value.clone(), s, ty)),
                Err(e) => cx.err(codes::ROUTE_PARAM, loc(file, src), e),
            }
        }
        if cx.diags.len() > errors_before {
            return None;
        }
        Some(Target { action: r.action.value.clone(), kind: kind.name.clone(), scope, id, attributes, context })
    }
}

// ---------------------------------------------------------------- normalization

/// A request target after normalization: the decoded path and the decoded query pairs.
struct Normalized {
    path: String,
    query: Vec<(String, String)>,
}

fn bad_path(msg: String) -> RequestError {
    RequestError::new(Reason::InvalidPath, msg)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Strict percent-decoding: every `%` must start a valid escape; the result must be UTF-8.
fn percent_decode(s: &str, plus_is_space: bool) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex);
                let lo = bytes.get(i + 2).copied().and_then(hex);
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(format!("bad percent-encoding in `{s}`"));
                };
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| format!("`{s}` does not decode to UTF-8"))
}

fn normalize(target: &str) -> Result<Normalized, RequestError> {
    if target.len() > MAX_TARGET {
        return Err(bad_path(format!("the target is longer than {MAX_TARGET} bytes")));
    }
    if !target.starts_with('/') {
        return Err(bad_path("the target must be a path starting with `/` (origin form)".into()));
    }
    if let Some(c) = target.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(bad_path(format!("the target has a raw {c:?}; encode it")));
    }
    if target.contains('#') {
        return Err(bad_path("the target has a fragment (`#`)".into()));
    }
    let (raw_path, raw_query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    if raw_path.contains(';') {
        return Err(bad_path("`;` parameters are not accepted in paths".into()));
    }
    if raw_path.contains('\\') {
        return Err(bad_path("`\\` is not accepted in paths".into()));
    }
    let segments: Vec<&str> = raw_path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    let mut path = String::with_capacity(raw_path.len());
    for (i, seg) in segments.iter().enumerate() {
        path.push('/');
        if seg.is_empty() {
            if i == last {
                continue;
            }
            return Err(bad_path("the path has an empty segment (`//`)".into()));
        }
        let decoded = percent_decode(seg, false).map_err(bad_path)?;
        if decoded == "." || decoded == ".." {
            return Err(bad_path(format!("the path has a `{decoded}` segment")));
        }
        if let Some(c) = decoded.chars().find(|c| matches!(c, '/' | '\\' | ';' | '%') || c.is_control()) {
            return Err(bad_path(format!("a path segment decodes to a forbidden {c:?}")));
        }
        path.push_str(&decoded);
    }
    let mut query = Vec::new();
    for pair in raw_query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_decode(k, true).map_err(bad_path)?;
        let v = percent_decode(v, true).map_err(bad_path)?;
        if k.chars().chain(v.chars()).any(char::is_control) {
            return Err(bad_path("a query parameter decodes to a control character".into()));
        }
        query.push((k, v));
    }
    Ok(Normalized { path, query })
}

// ---------------------------------------------------------------- matching

fn render(pieces: &[Piece], params: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for p in pieces {
        match p {
            Piece::Lit(l) => out.push_str(l),
            Piece::Param(name) => {
                out.push_str(params.iter().find(|(k, _)| k == name).map(|(_, v)| *v).unwrap_or(""));
            }
        }
    }
    out
}

fn lookup(
    src: &ValueSource,
    params: &[(&str, &str)],
    query: &[(String, String)],
    headers: &[(&str, &str)],
) -> Result<Option<String>, RequestError> {
    let one = |mut it: Box<dyn Iterator<Item = String> + '_>, what: String| -> Result<Option<String>, RequestError> {
        let first = it.next();
        if first.is_some() && it.next().is_some() {
            return Err(RequestError::new(Reason::InvalidRequest, format!("{what} is given more than once")));
        }
        Ok(first)
    };
    match src {
        ValueSource::Text(pieces) => Ok(Some(render(pieces, params))),
        ValueSource::Query(name) => one(
            Box::new(query.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone())),
            format!("query parameter `{name}`"),
        ),
        ValueSource::Header(name) => one(
            Box::new(headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_owned())),
            format!("header `{name}`"),
        ),
    }
}

/// A request value (text) as JSON of the declared type; type errors surface when the engine
/// prepares the resource or context.
fn typed(ty: Type, text: String) -> serde_json::Value {
    match ty {
        Type::String | Type::Time => serde_json::Value::String(text),
        Type::Bool => match text.as_str() {
            "true" => serde_json::Value::Bool(true),
            "false" => serde_json::Value::Bool(false),
            _ => serde_json::Value::String(text),
        },
        // JSON number syntax, read by serde_json's slice reader (the one every host already carries
        // for request bodies; `str::parse::<f64>` would add a second float parser to the module,
        // `from_str` a second copy of serde_json's parser)
        Type::Number => match serde_json::from_slice::<serde_json::Number>(text.as_bytes()) {
            Ok(n) => serde_json::Value::Number(n),
            Err(_) => serde_json::Value::String(text),
        },
        Type::StringSet => serde_json::Value::Array(
            text.split(',').filter(|s| !s.is_empty()).map(|s| serde_json::Value::String(s.to_owned())).collect(),
        ),
    }
}

fn fill(
    out: &mut serde_json::Map<String, serde_json::Value>,
    fields: &[(String, ValueSource, Type)],
    params: &[(&str, &str)],
    query: &[(String, String)],
    headers: &[(&str, &str)],
) -> Result<(), RequestError> {
    for (name, src, ty) in fields {
        if let Some(text) = lookup(src, params, query, headers)? {
            out.insert(name.clone(), typed(*ty, text));
        }
    }
    Ok(())
}

impl Policy {
    /// Whether the policy has a route table (`routes:`).
    pub fn has_routes(&self) -> bool {
        self.routes.is_some()
    }

    /// The number of routes in the policy's route table (public and protected).
    pub fn route_count(&self) -> usize {
        self.routes.as_ref().map_or(0, |t| t.len())
    }

    /// The routes of the policy's route table as written (`GET /api/v1/orgs/{org}`), public
    /// ones included, in declaration order.
    pub fn route_templates(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().flat_map(|t| t.routes.iter().map(|r| r.label.as_str()))
    }

    /// The request headers the route table reads (lowercase, each once, in the order the routes
    /// name them): what a host records with a decision so that it can be decided again offline
    /// (`rolescope replay`). Empty without a route table or when no route reads a header.
    pub fn request_headers(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        let targets = self.routes.iter().flat_map(|t| t.routes.iter().filter_map(|r| r.target.as_ref()));
        for t in targets {
            for (_, src, _) in t.attributes.iter().chain(&t.context) {
                if let ValueSource::Header(h) = src
                    && !out.contains(&h.as_str())
                {
                    out.push(h);
                }
            }
        }
        out
    }

    /// Normalize an HTTP request's target and match it against the route table: the question
    /// to ask (or a public route). Errors carry `invalid_path`, `no_route` or `invalid_request`.
    pub fn route(&self, req: &HttpRequest<'_>) -> Result<RoutedRequest, RequestError> {
        let Some(table) = self.routes.as_deref() else {
            return Err(RequestError::new(Reason::NoRoute, format!("policy `{}` has no route table", self.name)));
        };
        let norm = normalize(req.target)?;
        let no_route = || RequestError::new(Reason::NoRoute, format!("no route for `{} {}`", req.method, norm.path));
        let (route, params) = table.find(req.method, &norm.path).ok_or_else(no_route)?;
        let Some(t) = &route.target else {
            return Ok(RoutedRequest { route: route.label.clone(), question: None });
        };
        let mut resource = Resource {
            kind: t.kind.clone(),
            id: render(&t.id, &params),
            scope: join_scope(&table.base, &render(&t.scope, &params)),
            attributes: serde_json::Map::new(),
        };
        fill(&mut resource.attributes, &t.attributes, &params, &norm.query, req.headers)?;
        let mut context = serde_json::Map::new();
        fill(&mut context, &t.context, &params, &norm.query, req.headers)?;
        Ok(RoutedRequest { route: route.label.clone(), question: Some((t.action.clone(), resource, context)) })
    }

    /// Decide an HTTP request: normalize, route, and decide for `principal` (`None`: an
    /// anonymous caller, who may use public routes only). Never panics; every failure denies.
    pub fn authorize_http(&self, principal: Option<&PreparedPrincipal>, req: &HttpRequest<'_>) -> HttpDecision {
        let routed = match self.route(req) {
            Ok(r) => r,
            Err(e) => return HttpDecision::refused(e.reason(), e.message().to_owned()),
        };
        let Some((action, resource, context)) = routed.question else {
            return HttpDecision {
                allowed: true,
                reason: Reason::Allowed,
                public: true,
                route: Some(routed.route),
                action: None,
                kind: None,
                scope: None,
                tenant: None,
                resource_id: None,
                detail: None,
                rule: None,
                assignment: None,
                nearest: Vec::new(),
            };
        };
        let mut out = HttpDecision {
            allowed: false,
            reason: Reason::Unauthenticated,
            public: false,
            tenant: self.tenant_of(&resource.scope),
            route: Some(routed.route),
            action: Some(action),
            kind: Some(resource.kind.clone()),
            scope: Some(resource.scope.clone()),
            resource_id: Some(resource.id.clone()),
            detail: None,
            rule: None,
            assignment: None,
            nearest: Vec::new(),
        };
        let Some(p) = principal else {
            out.detail = Some("the route needs a principal".into());
            return out;
        };
        // as in `check`: an inactive principal is denied before its request is examined
        let decision = if p.status != crate::policy::Status::Active {
            crate::decision::Decision::deny(Reason::PrincipalInactive)
        } else {
            match self.prepare_resource(&resource).and_then(|r| Ok((r, self.prepare_context(&context)?))) {
                Ok((r, c)) => {
                    let d = self.decide(p, out.action.as_deref().unwrap_or(""), &r, &c);
                    // a default deny: which assignments came nearest
                    if matches!(d.reason, Reason::NoMatchingGrant | Reason::OutOfScope | Reason::ConditionFalse) {
                        out.nearest = self.nearest_assignments(p, &r.scope);
                    }
                    d
                }
                Err(e) => e.into_decision(),
            }
        };
        out.allowed = decision.allowed();
        out.reason = decision.reason();
        out.detail = decision.detail().map(str::to_owned);
        out.rule = decision.rule;
        out.assignment = decision.assignment.and_then(|i| self.assignment_label(Some(p), i));
        out
    }

    /// The tenant-level segment of a scope path, e.g. `org:o1`.
    fn tenant_of(&self, scope: &str) -> Option<String> {
        let level = self.level(self.tenant_level?)?;
        scope.split('/').find(|seg| seg.split_once(':').is_some_and(|(l, _)| l == level.name)).map(str::to_owned)
    }
}

#[cfg(all(test, feature = "compiler"))]
mod tests {
    use super::compiling::{parse_pieces, parse_route_line};
    use super::*;

    #[test]
    fn normalization_refuses_ambiguous_targets() {
        for bad in [
            "api/x",
            "http://h/x",
            "/a/../b",
            "/a/%2e%2e/b",
            "/a/%2E/b",
            "/a/./b",
            "/a//b",
            "//a",
            "/a;x=1/b",
            "/a%2Fb",
            "/a%5cb",
            "/a\\b",
            "/a%00b",
            "/a%zz",
            "/a%2",
            "/a%252e%252e/b",
            "/a%c0%ae/b",
            "/a#frag",
            "/a b",
            "/é",
            "/a%3bb",
            "/a?x=%ff",
        ] {
            let err = normalize(bad).err();
            assert!(err.as_ref().is_some_and(|e| e.reason() == Reason::InvalidPath), "{bad} -> {err:?}");
        }
    }

    #[test]
    fn normalization_decodes_once() {
        let n = normalize("/orgs/o%201/x/?a=1&b=two+words&c=%2F").expect("valid");
        assert_eq!(n.path, "/orgs/o 1/x/");
        assert_eq!(n.query, vec![("a".into(), "1".into()), ("b".into(), "two words".into()), ("c".into(), "/".into())]);
        assert_eq!(normalize("/").expect("root").path, "/");
        assert_eq!(normalize("/%C3%A9").expect("utf-8").path, "/é");
    }

    #[test]
    fn route_lines() {
        assert!(parse_route_line("GET /a/{b}/c").is_ok());
        assert!(parse_route_line("get /a").is_err());
        assert!(parse_route_line("GET a").is_err());
        assert!(parse_route_line("GET /a//b").is_err());
        assert!(parse_route_line("GET /a/{b}/{b}").is_err());
        assert!(parse_route_line("GET /a/x{b}").is_err());
        assert!(parse_route_line("GET /a/../b").is_err());
        assert!(parse_route_line("GET /a/{*rest}").is_err());
        let params = vec!["org".to_owned()];
        assert_eq!(parse_pieces("org:{org}", &params), Ok(vec![Piece::Lit("org:".into()), Piece::Param("org".into())]));
        assert!(parse_pieces("org:{site}", &params).is_err());
        assert!(parse_pieces("org:{org", &params).is_err());
    }

    fn compile_errors(routes: &str) -> Vec<(String, String)> {
        let base = "policy: p\nscopes:\n  msp: {}\n  org: { parent: msp, tenant: true }\n\
resources:\n  doc: { actions: [view], scopes: [org] }\n\
roles:\n  r: { held_at: [msp], grants: [{ resources: [doc], actions: [view] }] }\n";
        let sources = [crate::Source::new("p.yaml", base), crate::Source::new("routes.yaml", routes)];
        match Policy::compile(&sources) {
            Ok(_) => Vec::new(),
            Err(e) => e.diagnostics().iter().map(|d| (d.code().to_owned(), d.location().to_string())).collect(),
        }
    }

    #[test]
    fn route_diagnostics_point_at_the_route() {
        let errs = compile_errors(
            &[
                "routes:",
                "  base: \"msp:m\"",
                "  table:",
                "    - { route: \"GET /a/{x}\", action: view, resource: dok, scope: \"org:{x}\" }",
                "    - { route: \"GET /b/{x}\", action: edit, resource: doc, scope: \"org:{x}\" }",
                "    - { route: \"GET /c/{x}\", action: view, resource: doc, scope: \"org:{y}\" }",
                "    - { route: \"GET /d\", action: view, resource: doc }",
                "    - { route: \"GET /e/{x}\", action: view, resource: doc, scope: \"org:{x}\" }",
                "    - { route: \"GET /e/{y}\", action: view, resource: doc, scope: \"org:{y}\" }",
                "    - { route: \"get /f\", action: view, resource: doc, scope: \"org:o\" }",
            ]
            .join("\n"),
        );
        let codes: Vec<&str> = errs.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(codes, ["RS012", "RS013", "RS062", "RS060", "RS061", "RS060"], "{errs:?}");
        assert_eq!(errs.first().map(|(_, l)| l.as_str()), Some("routes.yaml:4:54"), "{errs:?}");
        assert!(compile_errors("routes:\n  base: \"org:o\"\n").iter().any(|(c, _)| c == "RS060"));
        assert!(compile_errors("routes: {}\n").is_empty());
    }

    #[test]
    fn a_second_routes_section_is_an_error() {
        let base = "policy: p\nscopes: { msp: {} }\nresources: { doc: { actions: [view] } }\n\
roles: { r: { held_at: [msp], grants: [{ resources: [doc], actions: [view] }] } }\nroutes: {}\n";
        let sources = [crate::Source::new("p.yaml", base), crate::Source::new("more.yaml", "routes: {}\n")];
        let err = Policy::compile(&sources)
            .err()
            .map(|e| e.diagnostics().iter().map(|d| d.code().to_owned()).collect::<Vec<_>>());
        assert_eq!(err, Some(vec!["RS010".to_owned()]));
    }
}

/// The route matcher against the `matchit` router (a radix tree that tries static children
/// first and backtracks): the same route and parameters for every path tried, on the seed
/// policies' route tables and on a table made to need backtracking.
#[cfg(all(test, feature = "compiler"))]
mod matcher_tests {
    #![expect(clippy::expect_used, clippy::indexing_slicing, reason = "a test helper: a failure is a test failure")]

    use super::{Route, RouteTable};

    fn check(labels: &[&str]) {
        let mut table = RouteTable::default();
        let mut routers: Vec<(String, matchit::Router<usize>)> = Vec::new();
        for (i, label) in labels.iter().enumerate() {
            let (method, path) = label.split_once(' ').expect("label");
            table
                .add(method.to_owned(), path, Route { label: (*label).to_owned(), target: None })
                .expect("no conflict");
            match routers.iter_mut().find(|(m, _)| m == method) {
                Some((_, r)) => r.insert(path, i).expect("matchit agrees: no conflict"),
                None => {
                    let mut r = matchit::Router::new();
                    r.insert(path, i).expect("matchit");
                    routers.push((method.to_owned(), r));
                }
            }
        }
        // Paths: every route with its parameters filled in several ways, and variations.
        let fills = ["o1", "x", "orgs", "devices", "v1", "api", ""];
        let mut paths: Vec<String> = vec!["/".into(), "//".into(), "/x".into(), "/x/".into()];
        for label in labels {
            let path = label.split_once(' ').expect("label").1;
            for f in fills {
                let filled: Vec<String> =
                    path.split('/').map(|s| if s.starts_with('{') { f.to_owned() } else { s.to_owned() }).collect();
                let p = filled.join("/");
                paths.push(format!("{p}/"));
                paths.push(format!("{p}/extra"));
                paths.push(p.trim_end_matches('/').to_owned());
                paths.push(p);
            }
        }
        for method in ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"] {
            let router = routers
                .iter()
                .find(|(m, _)| m == method)
                .or_else(|| if method == "HEAD" { routers.iter().find(|(m, _)| m == "GET") } else { None })
                .map(|(_, r)| r);
            for path in &paths {
                let ours = table.find(method, path).map(|(r, params)| {
                    (
                        r.label.clone(),
                        params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<Vec<_>>(),
                    )
                });
                let theirs = router.and_then(|r| r.at(path).ok()).map(|m| {
                    let label = labels[*m.value].to_owned();
                    (label, m.params.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect::<Vec<_>>())
                });
                assert_eq!(ours, theirs, "{method} {path}");
            }
        }
    }

    #[test]
    fn matches_as_matchit_on_the_seed_route_tables() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut tables = 0;
        for dir in [
            "policies/juniper-mist-msp",
            "policies/jumpcloud-mtp",
            "policies/msp-panel",
            "policies/site24x7-msp",
            "tests/corpus/routes",
        ] {
            let mut sources = Vec::new();
            for entry in std::fs::read_dir(root.join(dir)).expect("folder") {
                let path = entry.expect("entry").path();
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
                if name.ends_with(".yaml") && !name.ends_with("_test.yaml") {
                    sources.push(crate::Source::new(name, std::fs::read_to_string(&path).expect("read")));
                }
            }
            let policy = crate::Policy::compile(&sources).expect("compiles");
            let labels: Vec<&str> = policy.route_templates().collect();
            if !labels.is_empty() {
                tables += 1;
                check(&labels);
            }
        }
        assert!(tables >= 4, "only {tables} route tables");
    }

    #[test]
    fn matches_as_matchit_where_a_literal_must_give_way() {
        check(&[
            "GET /a/b/c",
            "GET /{x}/b/d",
            "GET /a/{y}/c/",
            "GET /a/{y}",
            "GET /{x}",
            "GET /",
            "GET /a/b/{z}/{w}",
            "GET /orgs/{org}/devices/{device}",
            "GET /orgs/{org}/devices/count",
            "POST /orgs/{org}/devices",
            "HEAD /status",
        ]);
    }
}
