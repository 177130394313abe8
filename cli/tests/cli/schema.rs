//! `rolescope schema`, and the committed schemas under `policies/schema/`.

use crate::{fixture, root, run};

#[test]
fn committed_schemas_are_up_to_date() {
    let dir = fixture(&[]);
    let r = run(dir.path(), &["schema", "-o", "out"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "wrote out/policy.schema.json\nwrote out/test.schema.json\n");
    for name in ["policy.schema.json", "test.schema.json"] {
        let fresh = std::fs::read_to_string(dir.path().join("out").join(name)).unwrap();
        let committed = std::fs::read_to_string(root().join("policies/schema").join(name)).unwrap_or_default();
        assert!(
            fresh == committed,
            "policies/schema/{name} is stale: run `cargo run -p rolescope-cli -- schema` at the workspace root and commit the result"
        );
    }
}

#[test]
fn schemas_are_draft_07() {
    let dir = fixture(&[]);
    assert_eq!(run(dir.path(), &["schema", "--output", "."]).code, 0);
    for (name, title) in [("policy.schema.json", "rolescope role file"), ("test.schema.json", "rolescope test suite")] {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(name)).unwrap()).unwrap();
        assert_eq!(v["$schema"], "http://json-schema.org/draft-07/schema#");
        assert_eq!(v["title"], title);
        assert!(v["properties"].is_object());
    }
}
