//! The generic in-memory REST store: every item lives at a path; a collection is the set of
//! items whose parent path it is. The store never decides who may do what: that is the
//! gateway's job, and this API answers whatever reaches it.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

/// The answer of one store operation: HTTP status and JSON body.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Value,
}

impl Reply {
    fn ok(status: u16, body: Value) -> Self {
        Self { status, body }
    }

    pub(crate) fn error(status: u16, error: &str, detail: impl Into<String>) -> Self {
        Self { status, body: serde_json::json!({ "error": error, "detail": detail.into() }) }
    }
}

/// Items keyed by path (`/api/v1/orgs/o1/devices/ap-11`) and the known collections.
#[derive(Debug, Default)]
pub(crate) struct Store {
    items: BTreeMap<String, Value>,
    collections: BTreeSet<String>,
    next_id: u64,
}

/// The parent path and the last segment of `path` (`/a/b/c` -> (`/a/b`, `c`)).
fn split_last(path: &str) -> Option<(&str, &str)> {
    let (parent, last) = path.rsplit_once('/')?;
    (!parent.is_empty() && !last.is_empty()).then_some((parent, last))
}

impl Store {
    /// A store holding `seed`: a JSON object mapping item paths to JSON objects. Every
    /// ancestor of an item path (below `/api`) becomes a known collection.
    pub(crate) fn seeded(seed: &Value) -> Result<Self, crate::Error> {
        let entries = seed.as_object().ok_or_else(|| crate::Error::Seed("the seed is not a JSON object".into()))?;
        let mut store = Self::default();
        for (path, item) in entries {
            if !path.starts_with("/api/") || path.ends_with('/') {
                return Err(crate::Error::Seed(format!("`{path}` is not an item path under /api/")));
            }
            let mut item =
                item.as_object().cloned().ok_or_else(|| crate::Error::Seed(format!("`{path}` is not an object")))?;
            if let Some((_, id)) = split_last(path) {
                item.entry("id").or_insert_with(|| Value::String(id.to_owned()));
            }
            store.insert(path.clone(), Value::Object(item));
        }
        Ok(store)
    }

    fn insert(&mut self, path: String, item: Value) {
        let mut parent = path.as_str();
        while let Some((p, _)) = split_last(parent) {
            if p == "/api" {
                break;
            }
            self.collections.insert(p.to_owned());
            parent = p;
        }
        self.items.insert(path, item);
    }

    /// Items directly below `path`, in path order, filtered by `filter` (field = value).
    fn children(&self, path: &str, filter: &[(String, String)]) -> Vec<Value> {
        let prefix = format!("{path}/");
        self.items
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(k, _)| k.get(prefix.len()..).is_some_and(|rest| !rest.contains('/')))
            .map(|(_, v)| v)
            .filter(|v| {
                filter.iter().all(|(field, want)| match v.get(field) {
                    Some(Value::String(s)) => s == want,
                    Some(other) => serde_json::from_str::<Value>(want).ok().as_ref() == Some(other),
                    None => false,
                })
            })
            .cloned()
            .collect()
    }

    /// `GET`: the item at `path`, or the collection at `path` (filtered by query fields).
    pub(crate) fn get(&self, path: &str, filter: &[(String, String)]) -> Reply {
        if let Some(item) = self.items.get(path) {
            return Reply::ok(200, item.clone());
        }
        if self.collections.contains(path) {
            return Reply::ok(200, Value::Array(self.children(path, filter)));
        }
        Reply::error(404, "not_found", format!("nothing at `{path}`"))
    }

    /// `POST`: create an item in the collection at `path` with a generated id.
    pub(crate) fn create(&mut self, path: &str, body: Option<Value>) -> Reply {
        if self.items.contains_key(path) {
            return Reply::error(405, "method_not_allowed", format!("`{path}` is an item, not a collection"));
        }
        let mut item = match body {
            None => Map::new(),
            Some(Value::Object(m)) => m,
            Some(_) => return Reply::error(400, "bad_body", "the body must be a JSON object"),
        };
        self.next_id += 1;
        let id = format!("new-{}", self.next_id);
        item.insert("id".into(), Value::String(id.clone()));
        let item = Value::Object(item);
        self.insert(format!("{path}/{id}"), item.clone());
        Reply::ok(201, item)
    }

    /// `PUT` / `PATCH`: merge the body's fields into the item at `path` (the id stays).
    pub(crate) fn update(&mut self, path: &str, body: Option<Value>) -> Reply {
        let patch = match body {
            None => Map::new(),
            Some(Value::Object(m)) => m,
            Some(_) => return Reply::error(400, "bad_body", "the body must be a JSON object"),
        };
        let Some(Value::Object(item)) = self.items.get_mut(path) else {
            return Reply::error(404, "not_found", format!("no item at `{path}`"));
        };
        for (k, v) in patch {
            if k != "id" {
                item.insert(k, v);
            }
        }
        Reply::ok(200, Value::Object(item.clone()))
    }

    /// `DELETE`: remove the item at `path` and everything below it.
    pub(crate) fn delete(&mut self, path: &str) -> Reply {
        if self.items.remove(path).is_none() {
            return Reply::error(404, "not_found", format!("no item at `{path}`"));
        }
        let prefix = format!("{path}/");
        self.items.retain(|k, _| !k.starts_with(&prefix));
        self.collections.retain(|k| !k.starts_with(&prefix));
        Reply::ok(200, serde_json::json!({ "deleted": path }))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn store() -> Store {
        Store::seeded(&json!({
            "/api/v1/orgs/o1": { "name": "One" },
            "/api/v1/orgs/o1/devices/ap-1": { "kind": "ap", "site": "s1" },
            "/api/v1/orgs/o1/devices/ap-2": { "kind": "switch", "site": "s2" },
        }))
        .unwrap()
    }

    #[test]
    fn rest_semantics() {
        let mut s = store();
        assert_eq!(s.get("/api/v1/orgs/o1/devices/ap-1", &[]).body["id"], "ap-1");
        assert_eq!(s.get("/api/v1/orgs/o1/devices", &[]).body.as_array().unwrap().len(), 2);
        let filtered = s.get("/api/v1/orgs/o1/devices", &[("site".into(), "s2".into())]);
        assert_eq!(filtered.body, json!([{ "id": "ap-2", "kind": "switch", "site": "s2" }]));
        assert_eq!(s.get("/api/v1/orgs", &[]).body.as_array().unwrap().len(), 1);
        assert_eq!(s.get("/api/v1/orgs/o9", &[]).status, 404);
        let created = s.create("/api/v1/orgs/o1/devices", Some(json!({ "kind": "gw" })));
        assert_eq!(created.status, 201);
        let id = created.body["id"].as_str().unwrap().to_owned();
        assert_eq!(s.get(&format!("/api/v1/orgs/o1/devices/{id}"), &[]).body["kind"], "gw");
        let updated = s.update("/api/v1/orgs/o1/devices/ap-1", Some(json!({ "site": "s9", "id": "x" })));
        assert_eq!(updated.body, json!({ "id": "ap-1", "kind": "ap", "site": "s9" }));
        assert_eq!(s.update("/api/v1/orgs/o1/devices/nope", None).status, 404);
        assert_eq!(s.create("/api/v1/orgs/o1/devices", Some(json!([1]))).status, 400);
        assert_eq!(s.delete("/api/v1/orgs/o1").status, 200);
        assert_eq!(s.get("/api/v1/orgs/o1/devices/ap-2", &[]).status, 404);
        assert_eq!(s.delete("/api/v1/orgs/o1").status, 404);
    }

    #[test]
    fn bad_seeds_are_refused() {
        assert!(Store::seeded(&json!([])).is_err());
        assert!(Store::seeded(&json!({ "/other/x": {} })).is_err());
        assert!(Store::seeded(&json!({ "/api/x": 1 })).is_err());
    }
}
