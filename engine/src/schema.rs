//! JSON Schema (draft-07) for role files and test suites, generated from the parser's own
//! types so that editors validate exactly what the compiler accepts.

use schemars::generate::SchemaSettings;

fn root<T: schemars::JsonSchema>(title: &str) -> serde_json::Value {
    let schema = SchemaSettings::draft07().into_generator().into_root_schema_for::<T>();
    let mut v = schema.to_value();
    if let Some(obj) = v.as_object_mut() {
        obj.insert("title".into(), serde_json::Value::String(title.into()));
    }
    v
}

/// The schema of a role file.
pub fn policy_schema() -> serde_json::Value {
    root::<crate::model::RawFile>("rolescope role file")
}

/// The schema of a test suite (`*_test.yaml`).
pub fn suite_schema() -> serde_json::Value {
    root::<crate::suite::RawSuite>("rolescope test suite")
}

#[cfg(test)]
mod tests {
    #[test]
    fn schemas_describe_the_top_level_sections() {
        let p = super::policy_schema();
        let props = p
            .pointer("/properties")
            .and_then(|v| v.as_object())
            .map(|o| o.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default();
        for key in
            ["policy", "scopes", "resources", "roles", "matrix", "denies", "delegation", "invariants", "principals"]
        {
            assert!(props.iter().any(|k| k == key), "missing {key} in {props:?}");
        }
        assert_eq!(p.pointer("/additionalProperties"), Some(&serde_json::Value::Bool(false)));
        assert_eq!(p.pointer("/$schema").and_then(|v| v.as_str()), Some("http://json-schema.org/draft-07/schema#"));
        let s = super::suite_schema();
        assert!(s.pointer("/properties/cases").is_some());
    }
}
