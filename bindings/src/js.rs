//! The JS API (wasm-bindgen). Inputs are plain JS objects shaped like the engine's wire types
//! (`Request`, `Principal`, `Resource`); results are plain objects (see `index.d.ts`).
//! Malformed input denies with a reason; only loading a policy throws (with diagnostics).
//!
//! Objects cross the boundary as JSON text (`JSON.stringify` in, `JSON.parse` out), read and
//! written by serde_json: one walk in the JS engine's native code instead of one boundary call
//! per field, the same serde code as the plain ABI (a smaller module), and the wire types'
//! rules exactly as in every other host (`deny_unknown_fields` above all).
//!
//! With the feature `compiler` (the npm package's `rolescope/compiler` module) the playground
//! API joins: `Policy.compile`, `validate`, `bundle`, `runSuite`.

use std::borrow::Cow;
use std::cell::RefCell;

use js_sys::{Array, JSON};
use rolescope_engine as engine;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use wasm_bindgen::prelude::*;

/// A value -> a plain JS object (`JSON.parse` of serde_json's text).
fn to_js<T: Serialize + ?Sized>(v: &T) -> JsValue {
    serde_json::to_string(v).ok().and_then(|text| JSON::parse(&text).ok()).unwrap_or(JsValue::NULL)
}

/// `JSON.stringify(v)`; `undefined` (and anything else JSON cannot carry at the top) is `null`.
fn json_text(v: &JsValue) -> Result<String, String> {
    match JSON::stringify(v) {
        Ok(text) => Ok(text.as_string().unwrap_or_else(|| "null".to_owned())),
        Err(_) => Err("the value cannot be written as JSON".to_owned()),
    }
}

/// A JS value -> a JSON value type, through its JSON text. (`from_slice`, as the plain ABI reads:
/// one instance of serde_json's reader in the module, not two.)
fn from_js<T: DeserializeOwned>(v: &JsValue) -> Result<T, String> {
    read_js(v, |bytes| serde_json::from_slice(bytes))
}

/// A JS value -> a wire type, through its JSON text and the wire type's `from_json` (one
/// hand-written reader for all of them, not serde's derived reader per type).
fn read_js<T>(v: &JsValue, read: fn(&[u8]) -> Result<T, serde_json::Error>) -> Result<T, String> {
    read(json_text(v)?.as_bytes()).map_err(|e| e.to_string())
}

/// A JSON string's value: borrowed when it has no escapes (a scope never needs one), read by
/// serde_json otherwise; `None` for anything but a string.
fn json_str(raw: &str) -> Option<Cow<'_, str>> {
    match raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) if !inner.contains('\\') => Some(Cow::Borrowed(inner)),
        Some(_) => serde_json::from_slice::<String>(raw.as_bytes()).ok().map(Cow::Owned),
        None => None,
    }
}

/// The JSON text of an array of strings without escapes (what `JSON.stringify` writes for a
/// list of scope paths), split by hand: serde_json, built for size in this module, reads it
/// several times slower. `None` for anything else (the caller reads it with serde_json).
fn string_array(text: &str) -> Option<Vec<Option<Cow<'_, str>>>> {
    // Without a backslash, every `"` is a delimiter: an element is `"..."` with no `"` inside,
    // and a comma inside a string leaves a piece with one quote (refused).
    let inner = text.strip_prefix('[')?.strip_suffix(']')?;
    if inner.is_empty() {
        return Some(Vec::new());
    }
    if inner.contains('\\') {
        return None;
    }
    inner
        .split(',')
        .map(|piece| {
            let value = piece.strip_prefix('"')?.strip_suffix('"')?;
            (!value.contains('"')).then_some(Some(Cow::Borrowed(value)))
        })
        .collect()
}

#[derive(Serialize)]
struct Verdict<'a> {
    allowed: bool,
    reason: engine::Reason,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
}

/// An HTTP request from JS: `{method, target, headers?}` with headers as `[name, value]`
/// pairs or a `{name: value}` object. Read from a JSON value by hand: a derived reader for the
/// two header shapes costs the module more than the rest of the HTTP path.
struct HttpInput {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl HttpInput {
    fn read(v: &JsValue) -> Result<Self, String> {
        let serde_json::Value::Object(mut m) = from_js::<serde_json::Value>(v)? else {
            return Err("an HTTP request is an object `{method, target, headers?}`".to_owned());
        };
        let mut text = |key: &str| match m.remove(key) {
            Some(serde_json::Value::String(s)) => Ok(s),
            _ => Err(format!("`{key}` must be a string")),
        };
        let (method, target) = (text("method")?, text("target")?);
        let pair = |name: String, value: serde_json::Value| match value {
            serde_json::Value::String(v) => Ok((name, v)),
            _ => Err(format!("header `{name}` must be a string")),
        };
        let headers = match m.remove("headers") {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(serde_json::Value::Object(h)) => h.into_iter().map(|(k, v)| pair(k, v)).collect::<Result<_, _>>()?,
            Some(serde_json::Value::Array(rows)) => rows
                .into_iter()
                .map(|row| match row {
                    serde_json::Value::Array(kv) if kv.len() == 2 => {
                        let mut kv = kv.into_iter();
                        match (kv.next(), kv.next()) {
                            (Some(serde_json::Value::String(k)), Some(v)) => pair(k, v),
                            _ => Err("a header is a `[name, value]` pair of strings".to_owned()),
                        }
                    }
                    _ => Err("a header is a `[name, value]` pair of strings".to_owned()),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err("`headers` is a list of `[name, value]` pairs or an object".to_owned()),
        };
        if let Some(k) = m.keys().next() {
            return Err(format!("unknown field `{k}` (an HTTP request has method, target, headers)"));
        }
        Ok(Self { method, target, headers })
    }
}

fn invalid(detail: &str) -> JsValue {
    to_js(&Verdict { allowed: false, reason: engine::Reason::InvalidRequest, detail: Some(detail) })
}

#[derive(Serialize)]
struct Validation<'a> {
    valid: bool,
    diagnostics: &'a [engine::Diagnostic],
}

fn invalid_policy(e: &engine::CompileError) -> JsValue {
    to_js(&Validation { valid: false, diagnostics: e.diagnostics() })
}

/// A principal prepared once (per token or page) for many decisions.
#[wasm_bindgen]
pub struct PreparedPrincipal {
    inner: engine::PreparedPrincipal,
}

#[wasm_bindgen]
impl PreparedPrincipal {
    /// The principal's id.
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> String {
        self.inner.id().to_owned()
    }
}

/// A resource prepared once (per row of a page) for many decisions.
#[wasm_bindgen]
pub struct PreparedResource {
    inner: engine::PreparedResource,
}

#[wasm_bindgen]
impl PreparedResource {
    /// The resource id.
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> String {
        self.inner.id().to_owned()
    }
    /// The scope path.
    #[wasm_bindgen(getter)]
    pub fn scope(&self) -> String {
        self.inner.scope().to_owned()
    }
}

/// A compiled policy.
#[wasm_bindgen]
pub struct Policy {
    inner: engine::Policy,
    /// Resources without attributes, prepared once per (kind, scope): `can`, `decide`,
    /// `allowedActions` and `allowedActionsBatch` parse and hash a scope once, not per call.
    cache: RefCell<engine::ResourceCache>,
}

impl From<engine::Policy> for Policy {
    fn from(inner: engine::Policy) -> Self {
        Policy { inner, cache: RefCell::new(engine::ResourceCache::new()) }
    }
}

#[wasm_bindgen]
impl Policy {
    /// Load a bundle written by `rolescope build`. Throws `{valid: false, diagnostics}`.
    #[wasm_bindgen(js_name = fromBundle)]
    pub fn from_bundle(json: &str) -> Result<Policy, JsValue> {
        engine::Policy::from_bundle(json).map(Policy::from).map_err(|e| invalid_policy(&e))
    }

    /// The policy's name.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.inner.name().to_owned()
    }

    /// The content hash of the sources (`sha256:...`).
    #[wasm_bindgen(getter)]
    pub fn revision(&self) -> String {
        self.inner.revision().to_owned()
    }

    /// Warnings found while compiling.
    #[wasm_bindgen(getter)]
    pub fn warnings(&self) -> JsValue {
        to_js(self.inner.warnings())
    }

    /// Roles with titles, ranks and levels (`RoleSummary[]`).
    pub fn roles(&self) -> JsValue {
        to_js(&self.inner.roles())
    }

    /// Every rule by id (`MatchedRule[]` without `assignment`): where an `HttpDecision`'s
    /// `rule` id is looked up (effect, role, `file:line:col`). Read it once per policy.
    pub fn rules(&self) -> JsValue {
        to_js(&self.inner.rule_table())
    }

    /// Decide a request: `{allowed, reason, detail?}`.
    pub fn check(&self, request: JsValue) -> JsValue {
        match read_js(&request, engine::Request::from_json) {
            Ok(req) => {
                let d = self.inner.check(&req);
                to_js(&Verdict { allowed: d.allowed(), reason: d.reason(), detail: d.detail() })
            }
            Err(e) => invalid(&e),
        }
    }

    /// Decide a request and describe it: `DecisionReport`.
    #[wasm_bindgen(js_name = checkReport)]
    pub fn check_report(&self, request: JsValue) -> JsValue {
        match read_js(&request, engine::Request::from_json) {
            Ok(req) => to_js(&self.inner.check_report(&req)),
            Err(e) => invalid(&e),
        }
    }

    /// Decide a request with every step: `Explanation`.
    pub fn explain(&self, request: JsValue) -> JsValue {
        match read_js(&request, engine::Request::from_json) {
            Ok(req) => to_js(&self.inner.explain(&req)),
            Err(e) => invalid(&e),
        }
    }

    /// Prepare a principal for many decisions. Throws a message if it is malformed.
    #[wasm_bindgen(js_name = preparePrincipal)]
    pub fn prepare_principal(&self, principal: JsValue) -> Result<PreparedPrincipal, JsValue> {
        let p = read_js(&principal, engine::Principal::from_json).map_err(|e| JsValue::from_str(&e))?;
        self.inner
            .prepare_principal(&p)
            .map(|inner| PreparedPrincipal { inner })
            .map_err(|e| JsValue::from_str(e.message()))
    }

    /// The fast path: may `principal` take `action` on a `kind` at `scope`? Any malformed
    /// part denies.
    pub fn can(&self, principal: &PreparedPrincipal, action: &str, kind: &str, scope: &str) -> bool {
        let row = engine::Resource {
            kind: kind.into(),
            id: String::new(),
            scope: scope.into(),
            attributes: serde_json::Map::new(),
        };
        self.row_to(row, |r| self.inner.decide(&principal.inner, action, r, self.inner.empty_context()).allowed())
            .unwrap_or(false)
    }

    /// Prepare a resource (`{kind, id, scope, attributes}`) for many decisions. Throws
    /// `{reason, message}` if it is malformed (unknown kind, bad scope, bad attribute).
    #[wasm_bindgen(js_name = prepareResource)]
    pub fn prepare_resource(&self, resource: JsValue) -> Result<PreparedResource, JsValue> {
        let r = read_js(&resource, engine::Resource::from_json).map_err(|e| JsValue::from_str(&e))?;
        self.inner.prepare_resource(&r).map(|inner| PreparedResource { inner }).map_err(|e| {
            #[derive(Serialize)]
            struct Err<'a> {
                reason: engine::Reason,
                message: &'a str,
            }
            to_js(&Err { reason: e.reason(), message: e.message() })
        })
    }

    /// The fastest path: prepared principal, action, prepared resource, no context (declared
    /// defaults apply). Inputs prepared by another policy deny.
    pub fn allowed(&self, principal: &PreparedPrincipal, action: &str, resource: &PreparedResource) -> bool {
        self.inner.decide(&principal.inner, action, &resource.inner, self.inner.empty_context()).allowed()
    }

    /// Decide for a prepared principal on a resource object (with attributes) and an optional
    /// context object: `{allowed, reason, detail?}`.
    pub fn decide(&self, principal: &PreparedPrincipal, action: &str, resource: JsValue, context: JsValue) -> JsValue {
        if principal.inner.status() != engine::Status::Active {
            return to_js(&Verdict { allowed: false, reason: engine::Reason::PrincipalInactive, detail: None });
        }
        let decided = self.prepared(&resource, context, |r, c| {
            let d = self.inner.decide(&principal.inner, action, r, c);
            to_js(&Verdict { allowed: d.allowed(), reason: d.reason(), detail: d.detail() })
        });
        decided.unwrap_or_else(|(reason, detail)| to_js(&Verdict { allowed: false, reason, detail: Some(&detail) }))
    }

    /// The actions `principal` may take on `resource`: `string[]` (empty when malformed).
    #[wasm_bindgen(js_name = allowedActions)]
    pub fn allowed_actions(&self, principal: &PreparedPrincipal, resource: JsValue, context: JsValue) -> JsValue {
        self.prepared(&resource, context, |r, c| to_js(&self.inner.allowed_actions(&principal.inner, r, c).allowed))
            .unwrap_or_else(|_| Array::new().into())
    }

    /// For many resources at once (one call per page render): `string[][]`, aligned with
    /// `resources`; `actions` limits the answer to those actions (all of each kind when empty).
    #[wasm_bindgen(js_name = allowedActionsBatch)]
    pub fn allowed_actions_batch(
        &self,
        principal: &PreparedPrincipal,
        resources: JsValue,
        actions: Vec<String>,
        context: JsValue,
    ) -> JsValue {
        // Rows are read one by one: a malformed row gets no actions, the others still do.
        if !Array::is_array(&resources) {
            return Array::new().into();
        }
        let Ok(text) = json_text(&resources) else { return Array::new().into() };
        let Ok(rows) = serde_json::from_slice::<Vec<&RawValue>>(text.as_bytes()) else { return Array::new().into() };
        let ctx = match self.context(context) {
            Ok(c) => c,
            Err(_) => return to_js(&vec![[(); 0]; rows.len()]),
        };
        let p = &principal.inner;
        let out: Vec<Vec<&str>> = rows
            .iter()
            .map(|raw| {
                let Ok(row) = engine::Resource::from_json(raw.get().as_bytes()) else {
                    return Vec::new();
                };
                let Some(kind) = self.inner.kind_id(&row.kind) else { return Vec::new() };
                let names = self.inner.actions_of(&row.kind).unwrap_or_default();
                // every action decided in one pass, then named
                let set = self.row_to(row, |r| self.inner.allowed_action_ids(p, r, &ctx)).unwrap_or(0);
                let has = |id: Option<u8>| id.is_some_and(|a| set >> (a & 127) & 1 == 1);
                if actions.is_empty() {
                    names.iter().zip(0u8..=127).filter(|(_, a)| has(Some(*a))).map(|(n, _)| n.as_str()).collect()
                } else {
                    actions.iter().filter(|a| has(self.inner.action_id(kind, a))).map(String::as_str).collect()
                }
            })
            .collect();
        to_js(&out)
    }

    /// The fast batch for listing pages: resources of one `kind` given by their scope paths
    /// (the kind's attribute defaults apply, as in `can`), the answer one bitmask per scope
    /// (`Uint32Array`, aligned with `scopes`): bit `i` set when `actions[i]` is allowed. At most
    /// 32 actions (more: bits for the first 32 only); an unknown kind or action, a malformed
    /// scope or context, an inactive principal: bits unset (deny). Each scope is parsed once per
    /// policy (the resource cache), each action name resolved once per call, and each resource
    /// decided for all actions in one pass (`allowed_action_ids`).
    #[wasm_bindgen(js_name = allowedMask)]
    pub fn allowed_mask(
        &self,
        principal: &PreparedPrincipal,
        kind: &str,
        scopes: JsValue,
        actions: Vec<String>,
        context: JsValue,
    ) -> Vec<u32> {
        // The scopes cross as one JSON text (one `JSON.stringify`, one copy), not one boundary
        // call per string; an element that is not a string gets no bit.
        let text = if Array::is_array(&scopes) { json_text(&scopes).unwrap_or_default() } else { String::new() };
        let rows = string_array(&text)
            .or_else(|| {
                let raw = serde_json::from_slice::<Vec<&RawValue>>(text.as_bytes()).ok()?;
                Some(raw.into_iter().map(|r| json_str(r.get())).collect())
            })
            .unwrap_or_default();
        let mut out = vec![0u32; rows.len()];
        let (Some(k), Ok(ctx)) = (self.inner.kind_id(kind), self.context(context)) else { return out };
        let ids: Vec<(u32, u8)> = (0u32..32)
            .zip(&actions)
            .filter_map(|(bit, a)| self.inner.action_id(k, a).map(|id| (1 << bit, id)))
            .collect();
        let Ok(mut cache) = self.cache.try_borrow_mut() else { return out };
        for (mask, scope) in out.iter_mut().zip(&rows) {
            let Some(scope) = scope else { continue };
            if let Ok(r) = self.inner.cached_resource(&mut cache, k, scope, "") {
                let set = self.inner.allowed_action_ids(&principal.inner, r, &ctx);
                *mask = ids.iter().filter(|(_, id)| set >> (id & 127) & 1 == 1).fold(0, |m, (bit, _)| m | bit);
            }
        }
        out
    }

    /// Map an HTTP request (`{method, target, headers?}`; `target` is the raw `path?query`,
    /// `headers` a `[name, value][]` list or a `{name: value}` object) through the policy's
    /// route table and decide it for `principal`, as the gateway does: `HttpDecision`.
    #[wasm_bindgen(js_name = authorizeHttp)]
    pub fn authorize_http(&self, principal: &PreparedPrincipal, request: JsValue) -> JsValue {
        self.http(Some(&principal.inner), &request)
    }

    /// [`Policy::authorize_http`] for an anonymous caller (no token): public routes are
    /// allowed, protected ones denied with `unauthenticated`.
    #[wasm_bindgen(js_name = authorizeHttpAnonymous)]
    pub fn authorize_http_anonymous(&self, request: JsValue) -> JsValue {
        self.http(None, &request)
    }

    /// May the principal assign `role` at `scope`? `AssignDecision`.
    #[wasm_bindgen(js_name = canAssign)]
    pub fn can_assign(&self, request: JsValue) -> JsValue {
        match read_js(&request, engine::AssignRequest::from_json) {
            Ok(req) => to_js(&self.inner.can_assign(&req)),
            Err(e) => to_js(&engine::AssignDecision {
                allowed: false,
                reason: engine::AssignReason::InvalidRequest,
                explanation: e,
            }),
        }
    }
}

impl Policy {
    fn http(&self, principal: Option<&engine::PreparedPrincipal>, request: &JsValue) -> JsValue {
        let req = match HttpInput::read(request) {
            Ok(r) => r,
            Err(e) => return invalid(&e),
        };
        let headers: Vec<(&str, &str)> = req.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let http = engine::HttpRequest { method: &req.method, target: &req.target, headers: &headers };
        to_js(&self.inner.authorize_http(principal, &http))
    }

    fn context(&self, context: JsValue) -> Result<Cow<'_, engine::PreparedContext>, (engine::Reason, String)> {
        if context.is_undefined() || context.is_null() {
            return Ok(Cow::Borrowed(self.inner.empty_context()));
        }
        let map: serde_json::Map<String, serde_json::Value> =
            from_js(&context).map_err(|e| (engine::Reason::InvalidRequest, e))?;
        self.inner.prepare_context(&map).map(Cow::Owned).map_err(|e| (e.reason(), e.message().to_owned()))
    }

    /// Run `f` on `row` prepared: from the resource cache when it has no attributes (its scope
    /// is parsed once per policy), afresh otherwise. Errors are `prepare_resource`'s.
    /// (`f` is a `dyn`: one copy of this path in the module, not one per caller.)
    fn with_row(
        &self,
        row: engine::Resource,
        f: &mut dyn FnMut(&engine::PreparedResource),
    ) -> Result<(), engine::RequestError> {
        if row.attributes.is_empty()
            && let Some(kind) = self.inner.kind_id(&row.kind)
            && let Ok(mut cache) = self.cache.try_borrow_mut()
        {
            return self.inner.cached_resource(&mut cache, kind, &row.scope, &row.id).map(f);
        }
        self.inner.prepare_resource(&row).map(|r| f(&r))
    }

    /// [`Policy::with_row`] for a closure that returns a value.
    fn row_to<R: Default>(
        &self,
        row: engine::Resource,
        f: impl FnOnce(&engine::PreparedResource) -> R,
    ) -> Result<R, engine::RequestError> {
        let mut f = Some(f);
        let mut out = None;
        self.with_row(row, &mut |r| out = f.take().map(|f| f(r)))?;
        Ok(out.unwrap_or_default())
    }

    /// Run `f` on a resource object and a context (`null`/`undefined`: none) prepared.
    fn prepared<R>(
        &self,
        resource: &JsValue,
        context: JsValue,
        f: impl FnOnce(&engine::PreparedResource, &engine::PreparedContext) -> R,
    ) -> Result<R, (engine::Reason, String)> {
        let text = json_text(resource).map_err(|e| (engine::Reason::InvalidRequest, e))?;
        let row = engine::Resource::from_json(text.as_bytes())
            .map_err(|e| (engine::Reason::InvalidRequest, e.to_string()))?;
        // The resource's problem first, then the context's (as `prepare_resource` then
        // `prepare_context`).
        let decided = self.row_to(row, |r| Some(self.context(context).map(|c| f(r, &c))));
        let decided = decided.map_err(|e| (e.reason(), e.message().to_owned()))?;
        decided.unwrap_or_else(|| Err((engine::Reason::InvalidRequest, "no resource".to_owned())))
    }
}

#[cfg(feature = "compiler")]
pub use compiler::{bundle, validate};

/// The playground API: role files as text, diagnostics as data, test suites.
#[cfg(feature = "compiler")]
mod compiler {
    use rolescope_engine as engine;
    use serde::Serialize;
    use wasm_bindgen::prelude::*;

    use super::{Policy, Validation, from_js, invalid_policy, to_js};

    #[derive(serde::Deserialize)]
    struct File {
        name: String,
        text: String,
    }

    fn sources(files: &JsValue) -> Result<Vec<engine::Source>, JsValue> {
        let files: Vec<File> = from_js(files).map_err(|e| JsValue::from_str(&format!("files: {e}")))?;
        Ok(files.into_iter().map(|f| engine::Source::new(f.name, f.text)).collect())
    }

    /// Validate role files (`[{name, text}]`) without keeping a policy: `{valid, diagnostics}`.
    #[wasm_bindgen]
    pub fn validate(files: JsValue) -> JsValue {
        let compiled = sources(&files).map(|s| engine::Policy::compile(&s));
        match compiled {
            Ok(Ok(p)) => to_js(&Validation { valid: true, diagnostics: p.warnings() }),
            Ok(Err(e)) => invalid_policy(&e),
            Err(e) => e,
        }
    }

    /// Compile role files (`[{name, text}]`) into a bundle (JSON text) for `Policy.fromBundle`
    /// of the main module. Throws `{valid: false, diagnostics}`.
    #[wasm_bindgen]
    pub fn bundle(files: JsValue) -> Result<String, JsValue> {
        engine::Policy::bundle(&sources(&files)?).map(|(_, json)| json).map_err(|e| invalid_policy(&e))
    }

    #[wasm_bindgen]
    impl Policy {
        /// Compile role files given as text (`[{name, text}]`). Throws `{valid: false, diagnostics}`.
        pub fn compile(files: JsValue) -> Result<Policy, JsValue> {
            engine::Policy::compile(&sources(&files)?).map(Policy::from).map_err(|e| invalid_policy(&e))
        }

        /// Which invariants a set of principals breaks: `InvariantViolation[]`. Throws (naming
        /// the principal) when one of them cannot be read: an invariant check fails closed.
        #[wasm_bindgen(js_name = checkInvariants)]
        pub fn check_invariants(&self, principals: JsValue) -> Result<JsValue, JsValue> {
            let ps: Vec<engine::Principal> = from_js(&principals).map_err(|e| JsValue::from_str(&e))?;
            let violations = self.inner.check_invariants(&ps).map_err(|e| JsValue::from_str(e.message()))?;
            Ok(to_js(&violations))
        }

        /// Run a test suite (YAML text) against this policy: `{report, diagnostics, coverage}`.
        #[wasm_bindgen(js_name = runSuite)]
        pub fn run_suite(&self, name: &str, text: &str) -> JsValue {
            #[derive(Serialize)]
            struct Out<'a> {
                report: &'a engine::SuiteReport,
                diagnostics: &'a [engine::Diagnostic],
                coverage: &'a engine::Coverage,
            }
            let mut cov = engine::CoverageTracker::new();
            let (report, diagnostics) = self.inner.run_suite(&engine::Source::new(name, text), &mut cov);
            to_js(&Out { report: &report, diagnostics: &diagnostics, coverage: &cov.report(&self.inner) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{json_str, string_array};

    #[test]
    fn string_arrays_split_by_hand_as_serde_json_reads_them() {
        for text in [
            r#"[]"#,
            r#"["msp:a"]"#,
            r#"["msp:a","msp:a/org:é","",""]"#,
            r#"["a\"b"]"#,
            r#"["a\\b","c"]"#,
            r#"["a,b"]"#,
            r#"["x,","y"]"#,
            r#"[","]"#,
            r#"[""]"#,
            r#"["",""]"#,
            r#"["a",1]"#,
            r#"["a",]"#,
            r#"["a""b"]"#,
            r#"["a" ,"b"]"#,
            r#"[null]"#,
            r#"["a"#,
            r#"{}"#,
            r#""#,
        ] {
            let reference: Option<Vec<Option<String>>> = serde_json::from_str::<Vec<serde_json::Value>>(text)
                .ok()
                .map(|v| v.into_iter().map(|e| e.as_str().map(str::to_owned)).collect());
            let fast = string_array(text).map(|v| v.into_iter().map(|s| s.map(|s| s.into_owned())).collect());
            // the fast path either agrees or leaves the text to serde_json
            if let Some(fast) = fast {
                assert_eq!(Some(fast), reference, "{text}");
            }
            let raw = serde_json::from_str::<Vec<&serde_json::value::RawValue>>(text)
                .ok()
                .map(|v| v.into_iter().map(|r| json_str(r.get()).map(|s| s.into_owned())).collect::<Vec<_>>());
            assert_eq!(raw, reference, "{text}");
        }
        assert!(string_array(r#"["a\"b"]"#).is_none());
        assert_eq!(string_array(r#"["x","y"]"#).map(|v| v.len()), Some(2));
    }
}
