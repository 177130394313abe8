//! The wire types' hand-written JSON readers (`Request::from_json`, ...; what the WebAssembly
//! module reads its inputs with) against serde's derived readers: the same texts accepted, the
//! same values, and messages that say what and where.

#![expect(clippy::panic, reason = "the comparison helper fails loudly")]

use std::fmt::Debug;

use proptest::prelude::*;
use rolescope_engine::{AssignRequest, Principal, Request, Resource};
use serde::de::DeserializeOwned;

/// `from_json` and serde's derived reader agree on `text`: both refuse it, or both read the
/// same value. Returns `from_json`'s message when both refuse.
fn agree<T: DeserializeOwned + PartialEq + Debug>(
    text: &str,
    from_json: fn(&[u8]) -> Result<T, serde_json::Error>,
) -> Option<String> {
    let derived = serde_json::from_slice::<T>(text.as_bytes());
    let by_hand = from_json(text.as_bytes());
    match (derived, by_hand) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b, "{text}");
            None
        }
        (Err(_), Err(e)) => Some(e.to_string()),
        (Ok(_), Err(e)) => panic!("from_json refused what serde accepts: {text}: {e}"),
        (Err(e), Ok(_)) => panic!("from_json accepted what serde refuses: {text}: {e}"),
    }
}

fn all_agree(text: &str) {
    agree(text, Request::from_json);
    agree(text, AssignRequest::from_json);
    agree(text, Principal::from_json);
    agree(text, Resource::from_json);
}

const REQUESTS: [&str; 8] = [
    r#"{"principal":"alice","action":"view","resource":{"kind":"device","scope":"msp:acme"}}"#,
    r#"{"principal":{"id":"p","assignments":[{"role":"admin","scope":"msp:acme"}]},"action":"view",
        "resource":{"kind":"device","id":"d1","scope":"msp:acme/org:o1","attributes":{"tier":"gold","n":1.5}},
        "context":{"channel":"web","mfa":true}}"#,
    r#"{"resource":{"scope":"s","kind":"k"},"action":"a","principal":{"status":null,"attributes":{}}}"#,
    r#" { "principal" : "a\u00e9\"" , "action" : "v\\w", "resource" : ["device", "", "msp:acme"] } "#,
    r#"["alice", "view", {"kind":"device","scope":"msp:acme"}]"#,
    r#"["alice", "view", {"kind":"device","scope":"msp:acme"}, {"a": [1, {"b": null}]}]"#,
    r#"{"principal":{"assignments":[["admin","msp:acme",["org:o1"]],{"role":"r","scope":"s","tenants":null}]},
        "action":"view","resource":{"kind":"device","scope":"msp:acme"}}"#,
    r#"{"principal":"p","role":"admin","scope":"msp:acme","context":{}}"#,
];

#[test]
fn the_readers_agree_on_well_formed_inputs() {
    for text in REQUESTS {
        all_agree(text);
    }
    assert!(agree(REQUESTS[1], Request::from_json).is_none());
    assert!(agree(REQUESTS[4], Request::from_json).is_none(), "the array form of a struct");
    assert!(agree(REQUESTS[7], AssignRequest::from_json).is_none());
    let principal = r#"{"id":"p","status":"suspended","attributes":{"groups":["a"]},
        "assignments":[{"role":"admin","scope":"msp:acme","tenants":["org:o1","msp:acme/org:o2"]}]}"#;
    assert!(agree(principal, Principal::from_json).is_none());
}

#[test]
fn the_readers_agree_on_malformed_inputs_with_a_message_naming_the_place() {
    let cases = [
        ("", "EOF"),
        ("5", "expected an object"),
        ("null", "expected an object"),
        (r#"{"principal":"a","action":"view"}"#, "missing field `resource`"),
        (r#"{"principal":"a","action":"view","resource":{"kind":"k","scope":"s"},"x":1}"#, "unknown field `x`"),
        (
            r#"{"principal":"a","action":"v","action":"v","resource":{"kind":"k","scope":"s"}}"#,
            "duplicate field `action`",
        ),
        (
            r#"{"principal":"a","action":1.5,"resource":{"kind":"k","scope":"s"}}"#,
            "floating point `1.5`, expected a string at `action`",
        ),
        (
            r#"{"principal":"a","action":"v","resource":{"kind":"k","scope":7}}"#,
            "integer `7`, expected a string at `resource.scope`",
        ),
        (r#"{"principal":"a","action":"v","resource":{"kind":"k"}}"#, "missing field `scope` at `resource`"),
        (r#"{"principal":"a","action":"v","resource":{"kind":"k","scope":"s","owner":"x"}}"#, "unknown field `owner`"),
        (r#"{"principal":"a","action":"v","resource":5}"#, "expected an object at `resource`"),
        (
            r#"{"principal":5,"action":"v","resource":{"kind":"k","scope":"s"}}"#,
            "a principal id (a string) or a principal (an object) at `principal`",
        ),
        (r#"{"principal":["p"],"action":"v","resource":{"kind":"k","scope":"s"}}"#, "at `principal`"),
        (
            r#"{"principal":{"assignments":[{"role":"r","scope":"s"},{"role":"r"}]},"action":"v","resource":{"kind":"k","scope":"s"}}"#,
            "missing field `scope` at `principal.assignments[1]`",
        ),
        (
            r#"{"principal":{"assignments":[{"role":"r","scope":"s","tenants":[1]}]},"action":"v","resource":{"kind":"k","scope":"s"}}"#,
            "at `principal.assignments[0].tenants`",
        ),
        (
            r#"{"principal":{"assignments":[{"role":"r","scope":"s","extra":1}]},"action":"v","resource":{"kind":"k","scope":"s"}}"#,
            "unknown field `extra`, expected one of `role`, `scope`, `tenants` at `principal.assignments[0]`",
        ),
        (r#"{"principal":{"id":null},"action":"v","resource":{"kind":"k","scope":"s"}}"#, "at `principal.id`"),
        (
            r#"{"principal":"a","action":"v","resource":{"kind":"k","scope":"s"},"context":null}"#,
            "expected a map at `context`",
        ),
        (r#"{"principal":"a","action":"v","resource":{"kind":"k","scope":"s"},"context":7.25}"#, "7.25"),
        (r#"["a", "v"]"#, "missing field `resource`"),
        (r#"["a", "v", {"kind":"k","scope":"s"}, {}, 1]"#, "invalid length 5"),
        (r#"{"principal":"a","action":"v","resource":{"kind":"k","scope":"s"}} x"#, "trailing characters"),
        (
            r#"{"principal":"a","action":"v","resource":{"kind":"k","scope":"\ud800"}}"#,
            "hex escape at `resource.scope`",
        ),
    ];
    for (text, expected) in cases {
        all_agree(text);
        let message = agree(text, Request::from_json).expect("refused");
        assert!(message.contains(expected), "{text}: {message:?} lacks {expected:?}");
    }
}

#[test]
fn the_nesting_limit_is_serdes() {
    for depth in 120..136 {
        let value = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let text = format!(
            r#"{{"principal":{{"attributes":{{"a":{value}}}}},"action":"v","resource":{{"kind":"k","scope":"s"}}}}"#
        );
        all_agree(&text);
        // brackets inside strings do not count
        let quoted =
            format!(r#"{{"principal":"{}","action":"v","resource":{{"kind":"k","scope":"s"}}}}"#, "[{".repeat(200));
        all_agree(&quoted);
    }
}

/// JSON-ish texts built from the wire types' field names and a few values, so that most of
/// them are near misses of a valid request.
fn text() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "principal",
        "action",
        "resource",
        "context",
        "kind",
        "id",
        "scope",
        "attributes",
        "assignments",
        "role",
        "tenants",
        "status",
        "x",
    ]);
    let leaf = prop_oneof![
        Just("\"a\"".to_owned()),
        Just("\"msp:acme\"".to_owned()),
        Just("null".to_owned()),
        Just("1".to_owned()),
        Just("true".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
    ];
    leaf.prop_recursive(4, 40, 5, move |inner| {
        prop_oneof![
            prop::collection::vec((key.clone(), inner.clone()), 0..5).prop_map(|members| {
                let body: Vec<String> = members.into_iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", body.join(","))
            }),
            prop::collection::vec(inner, 0..5).prop_map(|items| format!("[{}]", items.join(","))),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]
    #[test]
    fn the_readers_agree_on_generated_texts(t in text()) {
        all_agree(&t);
    }

    #[test]
    fn the_readers_agree_on_requests_with_a_member_replaced(i in 0..REQUESTS.len(), cut in 0usize..400, t in text()) {
        // a valid request with a stretch replaced by a generated value (often malformed)
        let base = REQUESTS[i];
        let at = base.char_indices().map(|(i, _)| i).nth(cut % base.chars().count()).unwrap_or(0);
        let end = base[at..].find([',', '}', ']']).map_or(base.len(), |e| at + e);
        all_agree(&format!("{}{}{}", &base[..at], t, &base[end..]));
    }
}
