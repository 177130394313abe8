//! Attribute types and values.

use std::fmt;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The declared type of an attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Type {
    Bool,
    String,
    Number,
    Time,
    StringSet,
}

impl Type {
    pub(crate) fn parse(s: &str) -> Option<Type> {
        match s.trim() {
            "bool" | "boolean" => Some(Type::Bool),
            "string" => Some(Type::String),
            "number" => Some(Type::Number),
            "time" | "datetime" => Some(Type::Time),
            "set<string>" | "[string]" => Some(Type::StringSet),
            _ => None,
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Type::Bool => "bool",
            Type::String => "string",
            Type::Number => "number",
            Type::Time => "time",
            Type::StringSet => "set<string>",
        })
    }
}

/// A typed attribute value, as held by a prepared principal, resource or context.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Bool(bool),
    Str(Box<str>),
    Num(f64),
    /// Unix time in nanoseconds.
    Time(i128),
    /// Sorted, deduplicated.
    Set(Box<[Box<str>]>),
}

/// Why a JSON value could not become an attribute value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TypeMismatch {
    pub(crate) expected: Type,
    pub(crate) detail: String,
}

pub(crate) fn parse_time(s: &str) -> Option<i128> {
    OffsetDateTime::parse(s, &Rfc3339).ok().map(OffsetDateTime::unix_timestamp_nanos)
}

impl Value {
    /// Convert a JSON value to the declared type. `null` is treated as absent by callers.
    pub(crate) fn from_json(ty: Type, v: &serde_json::Value) -> Result<Value, TypeMismatch> {
        let bad = |detail: String| TypeMismatch { expected: ty, detail };
        match (ty, v) {
            (Type::Bool, serde_json::Value::Bool(b)) => Ok(Value::Bool(*b)),
            (Type::String, serde_json::Value::String(s)) => Ok(Value::Str(s.as_str().into())),
            (Type::Number, serde_json::Value::Number(n)) => {
                n.as_f64().map(Value::Num).ok_or_else(|| bad(format!("`{n}` is out of range")))
            }
            (Type::Time, serde_json::Value::String(s)) => {
                parse_time(s).map(Value::Time).ok_or_else(|| bad(format!("`{s}` is not an RFC 3339 time")))
            }
            (Type::StringSet, serde_json::Value::Array(items)) => {
                let mut out: Vec<Box<str>> = Vec::with_capacity(items.len());
                for it in items {
                    match it {
                        serde_json::Value::String(s) => out.push(s.as_str().into()),
                        other => return Err(bad(format!("set element `{other}` is not a string"))),
                    }
                }
                out.sort_unstable();
                out.dedup();
                Ok(Value::Set(out.into_boxed_slice()))
            }
            (_, other) => Err(bad(format!("got {}", json_kind(other)))),
        }
    }
}

pub(crate) fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}
