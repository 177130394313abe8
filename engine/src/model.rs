//! The role-file format as parsed from YAML or JSON, with source spans.
//!
//! These types are private to the crate: they are validated and compiled into
//! [`crate::Policy`]. The JSON Schema for editors is generated from the same shape by the CLI.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Location;

/// A value with the source location it was read from (YAML line and column).
#[derive(Debug, Clone)]
pub(crate) struct S<T> {
    pub(crate) value: T,
    pub(crate) referenced: Location,
    #[allow(dead_code, reason = "kept for alias-aware diagnostics")]
    pub(crate) defined: Location,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for S<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = serde_saphyr::Spanned::<T>::deserialize(d)?;
        Ok(S { value: s.value, referenced: s.referenced, defined: s.defined })
    }
}

#[cfg(feature = "schema")]
impl<T: schemars::JsonSchema> schemars::JsonSchema for S<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(g)
    }
    fn inline_schema() -> bool {
        T::inline_schema()
    }
}

#[cfg(feature = "schema")]
impl<K, V: schemars::JsonSchema> schemars::JsonSchema for OrderedMap<K, V> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("Map_of_{}", V::schema_name()).into()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "object", "additionalProperties": g.subschema_for::<V>() })
    }
    fn inline_schema() -> bool {
        true
    }
}

#[cfg(feature = "schema")]
impl<T: schemars::JsonSchema> schemars::JsonSchema for List<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("List_of_{}", T::schema_name()).into()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "array", "items": g.subschema_for::<T>() })
    }
    fn inline_schema() -> bool {
        true
    }
}

/// A YAML mapping kept in source order, with duplicate keys preserved for diagnostics.
#[derive(Debug, Clone)]
pub(crate) struct OrderedMap<K, V>(pub(crate) Vec<(K, V)>);

impl<K, V> Default for OrderedMap<K, V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<K, V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V2<K, V>(PhantomData<(K, V)>);
        impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Visitor<'de> for V2<K, V> {
            type Value = OrderedMap<K, V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry()? {
                    out.push((k, v));
                }
                Ok(OrderedMap(out))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(OrderedMap(Vec::new()))
            }
        }
        d.deserialize_map(V2(PhantomData))
    }
}

/// A list that may also be written as a single scalar (`actions: view` = `actions: [view]`).
#[derive(Debug, Clone)]
pub(crate) struct List<T>(pub(crate) Vec<T>);

impl<T> Default for List<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct LV<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for LV<T> {
            type Value = List<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of names")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = s.next_element()? {
                    out.push(v);
                }
                Ok(List(out))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(List(Vec::new()))
            }
        }
        d.deserialize_seq(LV(PhantomData))
    }
}

/// One role file (a policy may be split over several).
#[derive(Debug, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    #[serde(rename = "$schema", default)]
    #[allow(dead_code, reason = "accepted so that editors may point at the schema")]
    pub(crate) schema: Option<String>,
    #[serde(default)]
    pub(crate) policy: Option<S<String>>,
    #[serde(default)]
    pub(crate) description: Option<String>,
    #[serde(default)]
    pub(crate) combine: Option<S<String>>,
    #[serde(default)]
    pub(crate) scopes: OrderedMap<S<String>, RawLevel>,
    #[serde(default)]
    pub(crate) attributes: RawAttributes,
    #[serde(default)]
    pub(crate) permissions: OrderedMap<S<String>, List<S<String>>>,
    #[serde(default)]
    pub(crate) resources: OrderedMap<S<String>, RawResource>,
    #[serde(default)]
    pub(crate) roles: OrderedMap<S<String>, RawRole>,
    #[serde(default)]
    pub(crate) matrix: Vec<RawMatrix>,
    #[serde(default)]
    pub(crate) denies: Vec<S<RawRule>>,
    #[serde(default)]
    pub(crate) delegation: Option<S<RawDelegation>>,
    #[serde(default)]
    pub(crate) invariants: Vec<S<RawInvariant>>,
    #[serde(default)]
    pub(crate) principals: OrderedMap<S<String>, crate::request::Principal>,
    /// The HTTP route table (at most one file of a policy has one).
    #[serde(default)]
    pub(crate) routes: Option<S<RawRoutes>>,
}

/// `routes:`: how HTTP requests map to authorization questions.
#[derive(Debug, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoutes {
    /// Scope path every route's `scope` is appended to, e.g. `msp:acme`.
    #[serde(default)]
    pub(crate) base: Option<S<String>>,
    /// Routes anyone may call without a principal, e.g. `GET /healthz`.
    #[serde(default)]
    pub(crate) public: List<S<String>>,
    /// Protected routes.
    #[serde(default)]
    pub(crate) table: Vec<S<RawRoute>>,
}

/// One protected route.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    /// `METHOD /path/{param}/...`.
    pub(crate) route: S<String>,
    /// The action asked.
    pub(crate) action: S<String>,
    /// The resource kind acted on.
    pub(crate) resource: S<String>,
    /// Scope of the resource below `base`, e.g. `org:{org}/site:{site}` (empty: `base` itself).
    #[serde(default)]
    pub(crate) scope: Option<S<String>>,
    /// Resource id, e.g. `{device}`.
    #[serde(default)]
    pub(crate) id: Option<S<String>>,
    /// Resource attributes: `{param}`, `query.NAME`, `header.NAME` or a literal.
    #[serde(default)]
    pub(crate) attributes: OrderedMap<S<String>, S<String>>,
    /// Context attributes, with the same value sources.
    #[serde(default)]
    pub(crate) context: OrderedMap<S<String>, S<String>>,
    /// What the route is (documentation).
    #[serde(default)]
    #[allow(dead_code, reason = "documentation only")]
    pub(crate) description: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLevel {
    #[serde(default)]
    pub(crate) parent: Option<S<String>>,
    #[serde(default)]
    pub(crate) tenant: bool,
    #[serde(default)]
    #[expect(dead_code, reason = "documentation for authors")]
    pub(crate) title: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAttributes {
    #[serde(default)]
    pub(crate) principal: OrderedMap<S<String>, S<AttrDecl>>,
    #[serde(default)]
    pub(crate) context: OrderedMap<S<String>, S<AttrDecl>>,
}

#[derive(Debug, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct RawResource {
    #[serde(default)]
    #[expect(dead_code, reason = "documentation for authors")]
    pub(crate) title: Option<String>,
    #[serde(default)]
    pub(crate) actions: List<S<String>>,
    #[serde(default)]
    pub(crate) permissions: OrderedMap<S<String>, List<S<String>>>,
    #[serde(default)]
    pub(crate) attributes: OrderedMap<S<String>, S<AttrDecl>>,
    #[serde(default)]
    pub(crate) scopes: Option<S<List<S<String>>>>,
    /// An overlay's addition to a kind declared elsewhere: its actions, permissions and
    /// attributes are added; nothing is removed, and where the kind lives stays as declared.
    #[serde(default)]
    pub(crate) extend: Option<S<bool>>,
}

#[derive(Debug, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRole {
    #[serde(default)]
    pub(crate) title: Option<String>,
    #[serde(default)]
    pub(crate) description: Option<String>,
    #[serde(default)]
    pub(crate) rank: Option<S<i64>>,
    #[serde(default)]
    pub(crate) held_at: Option<S<List<S<String>>>>,
    #[serde(default)]
    pub(crate) assignable: Option<bool>,
    /// `all`: every tenant below the scope, whatever list an assignment carries;
    /// `listed`: only the tenants an assignment lists (none when it lists none).
    #[serde(default)]
    pub(crate) tenant_access: Option<S<String>>,
    #[serde(default)]
    pub(crate) includes: List<S<String>>,
    #[serde(default)]
    pub(crate) grants: Option<Vec<S<RawRule>>>,
    #[serde(default)]
    pub(crate) denies: Vec<S<RawRule>>,
}

#[derive(Debug, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    #[serde(default)]
    pub(crate) resources: List<S<String>>,
    #[serde(default)]
    pub(crate) actions: List<S<String>>,
    #[serde(default)]
    pub(crate) when: Option<S<String>>,
    #[serde(default)]
    pub(crate) description: Option<String>,
}

/// A scope x role table: `columns` are roles, each row a resource kind, each cell a permission
/// level, an action, or `none`.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMatrix {
    #[serde(default)]
    pub(crate) description: Option<String>,
    pub(crate) columns: List<S<String>>,
    pub(crate) rows: OrderedMap<S<String>, List<S<String>>>,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDelegation {
    pub(crate) resource: S<String>,
    pub(crate) action: S<String>,
    #[serde(default)]
    pub(crate) rank: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInvariant {
    pub(crate) name: S<String>,
    #[serde(default)]
    pub(crate) description: Option<String>,
    pub(crate) roles: List<S<String>>,
    pub(crate) level: S<String>,
    #[serde(default = "one")]
    pub(crate) at_least: u32,
}

fn one() -> u32 {
    1
}

/// An attribute declaration: a type name, or a type with a default value.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub(crate) enum AttrDecl {
    Short(String),
    Full {
        #[serde(rename = "type")]
        ty: String,
        #[serde(default)]
        default: Option<serde_json::Value>,
        #[serde(default)]
        #[allow(dead_code, reason = "documentation for authors")]
        description: Option<String>,
    },
}
