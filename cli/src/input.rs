//! Reading requests and principals from files and flags.

use std::io::Read as _;
use std::path::Path;

use rolescope_engine::{Principal, Request};
use serde_json::{Map, Value};

use crate::args::RequestArgs;
use crate::discover::{display, read_text};
use crate::error::CliError;

/// Parse YAML (or JSON, for names ending in `.json`) into plain data.
pub(crate) fn parse_data(name: &str, text: &str) -> Result<Value, CliError> {
    if name.ends_with(".json") {
        serde_json::from_str(text).map_err(|e| CliError::usage(format!("`{name}` is not valid JSON: {e}")))
    } else {
        serde_saphyr::from_str::<Value>(text).map_err(|e| CliError::usage(format!("`{name}` is not valid YAML: {e}")))
    }
}

/// `key=value`, the value read as JSON when it parses, else as a string.
pub(crate) fn parse_kv(flag: &str, s: &str) -> Result<(String, Value), CliError> {
    let Some((k, v)) = s.split_once('=') else {
        return Err(CliError::usage_with(
            format!("`{s}` is not of the form KEY=VALUE"),
            format!("e.g. {flag} tier=2 or {flag} channel=api"),
        ));
    };
    let k = k.trim();
    if k.is_empty() {
        return Err(CliError::usage(format!("`{s}` has an empty key")));
    }
    let value = serde_json::from_str::<Value>(v).unwrap_or_else(|_| Value::String(v.to_owned()));
    Ok((k.to_owned(), value))
}

/// A file of principals: a list of principal objects, or a mapping id -> principal (the key
/// is the id unless the principal gives one).
pub(crate) fn load_principals(path: &Path) -> Result<Vec<Principal>, CliError> {
    let name = display(path);
    let data = parse_data(&name, &read_text(path)?)?;
    let bad = |e: serde_json::Error, what: &str| {
        CliError::usage_with(
            format!("`{name}`: {what}: {e}"),
            "expected a list of principals, or a mapping id -> principal",
        )
    };
    match data {
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| serde_json::from_value(v).map_err(|e| bad(e, &format!("principal {}", i + 1))))
            .collect(),
        Value::Object(map) => map
            .into_iter()
            .map(|(id, v)| {
                let mut p: Principal = serde_json::from_value(v).map_err(|e| bad(e, &format!("principal `{id}`")))?;
                if p.id.is_empty() {
                    p.id = id;
                }
                Ok(p)
            })
            .collect(),
        Value::Null => Ok(Vec::new()),
        _ => Err(CliError::usage_with(
            format!("`{name}` holds no principals"),
            "expected a list of principals, or a mapping id -> principal",
        )),
    }
}

fn object<'a>(v: &'a mut Value, what: &str) -> Result<&'a mut Map<String, Value>, CliError> {
    if v.is_null() {
        *v = Value::Object(Map::new());
    }
    v.as_object_mut().ok_or_else(|| CliError::usage(format!("the request's `{what}` must be a mapping")))
}

/// The request of `eval`/`explain`: the request file (or stdin) if given, with the flags
/// applied on top.
pub(crate) fn build_request(args: &RequestArgs) -> Result<Request, CliError> {
    let mut req = match &args.request {
        None => Value::Object(Map::new()),
        Some(p) if p.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).map_err(|source| CliError::Read { path: p.clone(), source })?;
            let name = if text.trim_start().starts_with('{') { "<stdin>.json" } else { "<stdin>" };
            parse_data(name, &text)?
        }
        Some(p) => {
            if !p.exists() {
                return Err(CliError::NotFound(p.clone()));
            }
            parse_data(&display(p), &read_text(p)?)?
        }
    };
    let root = object(&mut req, "request")?;
    if let Some(id) = &args.principal {
        root.insert("principal".into(), Value::String(id.clone()));
    }
    if let Some(json) = &args.principal_json {
        let v: Value = serde_json::from_str(json)
            .map_err(|e| CliError::usage(format!("--principal-json is not valid JSON: {e}")))?;
        if !v.is_object() {
            return Err(CliError::usage("--principal-json must be a JSON object"));
        }
        root.insert("principal".into(), v);
    }
    if let Some(a) = &args.action {
        root.insert("action".into(), Value::String(a.clone()));
    }
    {
        let res = object(root.entry("resource").or_insert(Value::Null), "resource")?;
        for (key, val) in [("kind", &args.kind), ("scope", &args.scope), ("id", &args.resource_id)] {
            if let Some(v) = val {
                res.insert(key.into(), Value::String(v.clone()));
            }
        }
        if !args.resource_attr.is_empty() {
            let attrs = object(res.entry("attributes").or_insert(Value::Null), "resource.attributes")?;
            for kv in &args.resource_attr {
                let (k, v) = parse_kv("--resource-attr", kv)?;
                attrs.insert(k, v);
            }
        }
    }
    if !args.context.is_empty() {
        let ctx = object(root.entry("context").or_insert(Value::Null), "context")?;
        for kv in &args.context {
            let (k, v) = parse_kv("--context", kv)?;
            ctx.insert(k, v);
        }
    }
    let mut missing = Vec::new();
    for (key, flag) in [("principal", "--principal ID or --principal-json JSON"), ("action", "--action")] {
        if !root.contains_key(key) {
            missing.push(flag);
        }
    }
    if let Some(res) = root.get("resource").and_then(Value::as_object) {
        for (key, flag) in [("kind", "--kind"), ("scope", "--scope")] {
            if !res.contains_key(key) {
                missing.push(flag);
            }
        }
    }
    if !missing.is_empty() {
        return Err(CliError::usage_with(
            format!("the request is incomplete: give {}", missing.join(", ")),
            "pass a request file (YAML/JSON with principal, action, resource, context) or the flags",
        ));
    }
    serde_json::from_value(req).map_err(|e| CliError::usage(format!("invalid request: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_values_are_json_when_they_parse() {
        let kv = |s: &str| parse_kv("--context", s).map(|(_, v)| v).ok();
        assert_eq!(kv("tier=2"), Some(Value::from(2)));
        assert_eq!(kv("ok=true"), Some(Value::Bool(true)));
        assert_eq!(kv("groups=[\"a\"]"), Some(serde_json::json!(["a"])));
        assert_eq!(kv("channel=api"), Some(Value::String("api".into())));
        assert_eq!(kv("q=a=b"), Some(Value::String("a=b".into())));
        assert_eq!(kv("empty="), Some(Value::String(String::new())));
        assert!(kv("novalue").is_none());
        assert!(kv("=x").is_none());
    }
}
