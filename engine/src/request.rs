//! Decision inputs as plain data (what arrives from JSON, a token or a test fixture).
//!
//! These are the wire types: every field is public and (de)serializable. A [`crate::Policy`]
//! turns them into prepared forms ([`crate::PreparedPrincipal`], [`crate::PreparedResource`],
//! [`crate::PreparedContext`]) that decisions run on.

use serde::{Deserialize, Serialize};

/// A role held at a scope.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    /// Role name.
    pub role: String,
    /// The scope node the role is held at, e.g. `msp:acme` or `msp:acme/org:o1`.
    pub scope: String,
    /// For a role held above the tenant level: which tenants (sub-scopes) it reaches.
    /// [`Tenants::All`] (`tenants: all`): every descendant of `scope`, including ones created
    /// later. A list: only those subtrees (plus `scope` itself); entries are paths, absolute or
    /// relative to `scope`. Absent (the old form, a warning in `rolescope check`): every
    /// tenant, except for roles with `tenant_access: listed`, which then reach none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenants: Option<Tenants>,
}

/// Which tenants an assignment held above the tenant level reaches: `all`, or a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tenants {
    /// Every tenant below the assignment's scope, including ones created later (`all`).
    All,
    /// Only these tenants (paths, absolute or relative to the assignment's scope).
    Only(Vec<String>),
}

impl From<Vec<String>> for Tenants {
    fn from(list: Vec<String>) -> Self {
        Tenants::Only(list)
    }
}

impl Serialize for Tenants {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Tenants::All => s.serialize_str("all"),
            Tenants::Only(list) => list.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Tenants {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Tenants;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("`all` or a list of tenant paths")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Tenants, E> {
                if v == "all" { Ok(Tenants::All) } else { Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)) }
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Tenants, A::Error> {
                let mut out = Vec::new();
                while let Some(t) = seq.next_element::<String>()? {
                    out.push(t);
                }
                Ok(Tenants::Only(out))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for Tenants {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Tenants".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "`all` (every tenant below the scope), or a list of tenant paths",
            "anyOf": [{ "const": "all" }, { "type": "array", "items": { "type": "string" } }]
        })
    }
}

/// A principal: who asks.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Principal {
    /// Identifier (subject). In principal files it defaults to the key it is filed under.
    #[serde(default)]
    pub id: String,
    /// `active` (default), `suspended` or `deleted`; anything but `active` is denied everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Typed attributes, checked against the policy's `attributes.principal`.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// Role assignments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assignments: Vec<Assignment>,
}

/// A resource: what is acted on.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// Resource kind, declared under `resources:`.
    pub kind: String,
    /// Identifier (may be empty, e.g. for "create" on a collection).
    #[serde(default)]
    pub id: String,
    /// Scope path of the resource, e.g. `msp:acme/org:o1/site:s2`.
    pub scope: String,
    /// Typed attributes, checked against the kind's declared attributes.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// Who is asking: a principal given inline, or the id of a principal filed with the policy.
///
/// Read as a string (an id) or an object (a principal), by hand rather than with
/// `#[serde(untagged)]`: the same answers without serde's buffering of the whole value (a
/// sizeable part of the WebAssembly module), and the principal's own error when it is malformed.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum PrincipalRef {
    /// The id of a principal from the policy's `principals:`.
    Id(String),
    /// A principal given in full (e.g. built from a verified token).
    Inline(Principal),
}

impl<'de> Deserialize<'de> for PrincipalRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = PrincipalRef;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a principal id (a string) or a principal (an object)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<PrincipalRef, E> {
                Ok(PrincipalRef::Id(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<PrincipalRef, E> {
                Ok(PrincipalRef::Id(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<PrincipalRef, A::Error> {
                Principal::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(PrincipalRef::Inline)
            }
        }
        d.deserialize_any(V)
    }
}

/// One authorization question: may `principal` take `action` on `resource` in `context`?
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// Who.
    pub principal: PrincipalRef,
    /// Action name, declared for the resource's kind.
    pub action: String,
    /// On what.
    pub resource: Resource,
    /// Request facts (channel, time, ...), checked against `attributes.context`.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub context: serde_json::Map<String, serde_json::Value>,
}

/// A delegation question: may `principal` assign `role` at `scope` (to anyone, itself included)?
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AssignRequest {
    /// Who wants to assign.
    pub principal: PrincipalRef,
    /// The role to be assigned.
    pub role: String,
    /// Where it would be held.
    pub scope: String,
    /// Request facts, as for [`Request::context`].
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub context: serde_json::Map<String, serde_json::Value>,
}

impl Principal {
    /// Reads a principal from JSON text: exactly what serde_json's reader of the derived
    /// `Deserialize` accepts, with serde's messages plus the path of the member at fault
    /// (``missing field `scope` at `assignments[1]` ``). One hand-written reader serves every
    /// wire type (see the `from_json` of [`Request`], [`Resource`], [`AssignRequest`]): serde's
    /// per-type readers are a sizeable part of the WebAssembly module, which reads its inputs
    /// this way.
    pub fn from_json(json: &[u8]) -> Result<Principal, serde_json::Error> {
        read::top(json, read::principal)
    }
}

impl Resource {
    /// Reads a resource from JSON text, as [`Principal::from_json`].
    pub fn from_json(json: &[u8]) -> Result<Resource, serde_json::Error> {
        read::top(json, read::resource)
    }
}

impl Request {
    /// Reads a request from JSON text, as [`Principal::from_json`].
    pub fn from_json(json: &[u8]) -> Result<Request, serde_json::Error> {
        read::top(json, read::request)
    }
}

impl AssignRequest {
    /// Reads a delegation question from JSON text, as [`Principal::from_json`].
    pub fn from_json(json: &[u8]) -> Result<AssignRequest, serde_json::Error> {
        read::top(json, read::assign_request)
    }
}

/// JSON text -> wire types by hand: one object reader (fields as raw JSON, then each field read
/// as its type) instead of serde's derived readers, one per type. The WebAssembly module reads
/// every input this way; it is a sizeable part of the module otherwise. The rules are the
/// derived `Deserialize`'s: unknown, duplicate and missing fields are errors, `null` is `None`
/// for optional fields only, the principal is an id (a string) or a principal (an object).
/// Messages are serde's, with where the problem is (`` at `principal.assignments[0].role` ``).
pub(crate) mod read {
    use std::fmt;

    use serde::de::{DeserializeOwned, Error as _, MapAccess, SeqAccess, Visitor};
    use serde::{Deserialize, Deserializer};
    use serde_json::value::RawValue;

    use super::{AssignRequest, Assignment, Principal, PrincipalRef, Request, Resource};

    /// A struct as JSON, values unread: an object's members in order, or (as serde's derived
    /// readers also take) an array of the fields' values in declaration order.
    enum Object<'a> {
        Members(Vec<(String, &'a RawValue)>),
        Elements(Vec<&'a RawValue>),
    }

    impl<'de> Deserialize<'de> for Object<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Object<'de>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Object<'de>, A::Error> {
                    let mut members = Vec::new();
                    while let Some(key) = map.next_key::<String>()? {
                        members.push((key, map.next_value::<&'de RawValue>()?));
                    }
                    Ok(Object::Members(members))
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Object<'de>, A::Error> {
                    let mut elements = Vec::new();
                    while let Some(value) = seq.next_element::<&'de RawValue>()? {
                        elements.push(value);
                    }
                    Ok(Object::Elements(elements))
                }
            }
            d.deserialize_struct("", &[], V)
        }
    }

    /// Why a text is not the wire type: serde_json's error for the text as a whole, or a
    /// message and the path of the member it is about.
    pub(super) enum Problem {
        Json(serde_json::Error),
        At(String, String),
    }

    impl Problem {
        /// The problem as seen from the object that holds it as member `name` (or `[i]`).
        fn within(self, name: &str) -> Problem {
            match self {
                // a member's own position is within the member's text: only the path tells
                Problem::Json(e) => {
                    let text = e.to_string();
                    let suffix = format!(" at line {} column {}", e.line(), e.column());
                    let msg = text.strip_suffix(&suffix).map_or_else(|| text.clone(), str::to_owned);
                    Problem::At(name.to_owned(), msg)
                }
                Problem::At(path, msg) if path.is_empty() => Problem::At(name.to_owned(), msg),
                Problem::At(path, msg) if path.starts_with('[') => Problem::At(format!("{name}{path}"), msg),
                Problem::At(path, msg) => Problem::At(format!("{name}.{path}"), msg),
            }
        }

        pub(super) fn into_error(self) -> serde_json::Error {
            match self {
                Problem::Json(e) => e,
                Problem::At(path, msg) if path.is_empty() => serde_json::Error::custom(msg),
                Problem::At(path, msg) => serde_json::Error::custom(format_args!("{msg} at `{path}`")),
            }
        }
    }

    /// serde_json refuses a text nested as deep as its recursion limit (128); the members are read
    /// one by one here, each from its own text, so the depth of the whole text is checked first.
    fn shallow(json: &[u8]) -> bool {
        let (mut depth, mut in_string, mut escaped) = (0u32, false, false);
        for &b in json {
            if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                }
            } else {
                match b {
                    b'"' => in_string = true,
                    b'[' | b'{' => {
                        depth += 1;
                        if depth >= 128 {
                            return false;
                        }
                    }
                    b']' | b'}' => depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
        }
        true
    }

    /// A wire type read from the whole text `json` by `read`.
    pub(super) fn top<T>(json: &[u8], read: fn(&[u8]) -> Result<T, Problem>) -> Result<T, serde_json::Error> {
        if !shallow(json) {
            return Err(serde_json::Error::custom("recursion limit exceeded"));
        }
        read(json).map_err(Problem::into_error)
    }

    /// The members of the object `json` for the field names `names`, aligned with them.
    fn members<'a, const N: usize>(json: &'a [u8], names: [&str; N]) -> Result<[Option<&'a RawValue>; N], Problem> {
        let mut out = [None; N];
        match serde_json::from_slice(json).map_err(Problem::Json)? {
            Object::Members(members) => {
                for (key, value) in members {
                    let Some(slot) = names.iter().position(|n| *n == key).and_then(|i| out.get_mut(i)) else {
                        let expected = names.map(|n| format!("`{n}`")).join(", ");
                        return Err(problem(format!("unknown field `{key}`, expected one of {expected}")));
                    };
                    if slot.replace(value).is_some() {
                        return Err(problem(format!("duplicate field `{key}`")));
                    }
                }
            }
            Object::Elements(elements) if elements.len() > N => {
                return Err(problem(format!("invalid length {}, expected at most {N} fields", elements.len())));
            }
            Object::Elements(elements) => out.iter_mut().zip(elements).for_each(|(slot, value)| *slot = Some(value)),
        }
        Ok(out)
    }

    /// The members of another JSON object of the crate (the bundle document), as the wire
    /// types': unknown and duplicate members are errors.
    pub(crate) fn object<'a, const N: usize>(
        json: &'a [u8],
        names: [&str; N],
    ) -> Result<[Option<&'a RawValue>; N], serde_json::Error> {
        members(json, names).map_err(Problem::into_error)
    }

    /// Member `name` of such an object, which must be there, read as a `T`.
    pub(crate) fn member<T: DeserializeOwned>(raw: Option<&RawValue>, name: &str) -> Result<T, serde_json::Error> {
        required(raw, name).map_err(Problem::into_error)
    }

    /// Member `name` of such an object, which must be there, unread.
    pub(crate) fn raw<'a>(raw: Option<&'a RawValue>, name: &str) -> Result<&'a RawValue, serde_json::Error> {
        raw.ok_or_else(|| serde_json::Error::custom(format_args!("missing field `{name}`")))
    }

    /// A problem with the value at hand (the callers add where it is).
    fn problem(msg: String) -> Problem {
        Problem::At(String::new(), msg)
    }

    /// Member `name` read as a `T`; absent: `None`.
    fn field<T: DeserializeOwned>(raw: Option<&RawValue>, name: &str) -> Result<Option<T>, Problem> {
        raw.map(|r| serde_json::from_slice(r.get().as_bytes()).map_err(|e| Problem::Json(e).within(name))).transpose()
    }

    /// Member `name`, which must be there.
    fn required<T: DeserializeOwned>(raw: Option<&RawValue>, name: &str) -> Result<T, Problem> {
        field(raw, name)?.ok_or_else(|| problem(format!("missing field `{name}`")))
    }

    /// Member `name`, its type's default when absent.
    fn optional<T: DeserializeOwned + Default>(raw: Option<&RawValue>, name: &str) -> Result<T, Problem> {
        Ok(field(raw, name)?.unwrap_or_default())
    }

    /// Member `name` read by `read` (an object of a wire type), which must be there.
    fn nested<T>(
        raw: Option<&RawValue>,
        name: &str,
        read: impl FnOnce(&[u8]) -> Result<T, Problem>,
    ) -> Result<T, Problem> {
        let raw = raw.ok_or_else(|| problem(format!("missing field `{name}`")))?;
        read(raw.get().as_bytes()).map_err(|e| e.within(name))
    }

    pub(super) fn assignment(json: &[u8]) -> Result<Assignment, Problem> {
        let [role, scope, tenants] = members(json, ["role", "scope", "tenants"])?;
        Ok(Assignment {
            role: required(role, "role")?,
            scope: required(scope, "scope")?,
            tenants: optional(tenants, "tenants")?,
        })
    }

    pub(super) fn principal(json: &[u8]) -> Result<Principal, Problem> {
        let [id, status, attributes, assignments] = members(json, ["id", "status", "attributes", "assignments"])?;
        let rows: Vec<&RawValue> = match assignments {
            Some(r) => {
                serde_json::from_slice(r.get().as_bytes()).map_err(|e| Problem::Json(e).within("assignments"))?
            }
            None => Vec::new(),
        };
        let assignments = rows
            .iter()
            .enumerate()
            .map(|(i, r)| assignment(r.get().as_bytes()).map_err(|e| e.within(&format!("[{i}]")).within("assignments")))
            .collect::<Result<_, _>>()?;
        Ok(Principal {
            id: optional(id, "id")?,
            status: optional(status, "status")?,
            attributes: optional(attributes, "attributes")?,
            assignments,
        })
    }

    pub(super) fn resource(json: &[u8]) -> Result<Resource, Problem> {
        let [kind, id, scope, attributes] = members(json, ["kind", "id", "scope", "attributes"])?;
        Ok(Resource {
            kind: required(kind, "kind")?,
            id: optional(id, "id")?,
            scope: required(scope, "scope")?,
            attributes: optional(attributes, "attributes")?,
        })
    }

    /// A principal id (a string) or a principal (an object).
    fn principal_ref(json: &[u8]) -> Result<PrincipalRef, Problem> {
        match json.first() {
            Some(b'"') => serde_json::from_slice(json).map(PrincipalRef::Id).map_err(Problem::Json),
            Some(b'{') => principal(json).map(PrincipalRef::Inline),
            _ => Err(problem("invalid type: expected a principal id (a string) or a principal (an object)".to_owned())),
        }
    }

    pub(super) fn request(json: &[u8]) -> Result<Request, Problem> {
        let [principal, action, resource_, context] = members(json, ["principal", "action", "resource", "context"])?;
        Ok(Request {
            principal: nested(principal, "principal", principal_ref)?,
            action: required(action, "action")?,
            resource: nested(resource_, "resource", resource)?,
            context: optional(context, "context")?,
        })
    }

    pub(super) fn assign_request(json: &[u8]) -> Result<AssignRequest, Problem> {
        let [principal, role, scope, context] = members(json, ["principal", "role", "scope", "context"])?;
        Ok(AssignRequest {
            principal: nested(principal, "principal", principal_ref)?,
            role: required(role, "role")?,
            scope: required(scope, "scope")?,
            context: optional(context, "context")?,
        })
    }
}
