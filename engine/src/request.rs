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
    /// For a role held above the tenant level: which tenants (sub-scopes) it reaches. Absent:
    /// every descendant of `scope`, including ones created later. A list: only those subtrees
    /// (plus `scope` itself). Entries are paths, absolute or relative to `scope`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenants: Option<Vec<String>>,
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
