//! The OpenAPI document as a true contract: what the handlers declare, plus
//! the error model every `/api/v1` route shares (API.md "Conventions"),
//! written into each operation so that a client (or `schemathesis`) reading
//! one operation learns every status it can answer:
//!
//! - every route: 400 (malformed parameters, headers or body), 401 (no live
//!   token), 403 (a known caller not allowed), 503 (the read models did not
//!   reach `X-Consistency-Token` in time, or the log is unavailable);
//! - routes with path parameters: 404 (not found, or not the caller's to see);
//! - writes: 404, 409 (the state does not allow it, or a lost race), 412
//!   (`If-Match`), 413 (body too large), 415 (not JSON), 422 (a well-formed
//!   body that names nothing or cannot hold now, or `Idempotency-Key` reused
//!   with another body);
//! - `If-Match` is an ETag this service answers (`"<version>"` or `*`);
//! - every error is `application/problem+json` with the `Problem` schema.

use serde_json::{json, Map, Value};

const ALL: &[(&str, &str)] = &[
    ("400", "Malformed parameters, headers or body"),
    ("401", "Missing, unknown, revoked or expired bearer token"),
    ("403", "The caller may not do this"),
    (
        "503",
        "The read models did not reach X-Consistency-Token in time, or the event log is unavailable; retry after Retry-After",
    ),
];
const WITH_PATH: &[(&str, &str)] = &[("404", "Not found, or not the caller's to see")];
const WRITES: &[(&str, &str)] = &[
    ("404", "Not found, or not the caller's to see"),
    (
        "409",
        "The current state does not allow it, or a concurrent change won",
    ),
    ("412", "If-Match does not match the current version"),
    ("413", "The body is larger than the configured limit"),
    ("415", "The body is not application/json"),
    ("422", "Idempotency-Key reused with another request"),
];

/// Keywords utoipa's attributes cannot say, added to component schemas'
/// properties: (schema, property, keywords).
const PROPERTY_KEYWORDS: &[(&str, &str, &str)] = &[
    ("CreateUser", "roles", r#"{"uniqueItems": true}"#),
    ("UpdateUser", "roles", r#"{"uniqueItems": true}"#),
];

/// `targetFilter`'s grammar, which utoipa's derive cannot say: a node is a
/// list operator over 1 to 32 nodes, NOT over one, or a comparison of a
/// dotted path (at most 8 segments) with a scalar.
fn filter_node_schema() -> Value {
    json!({
        "description": "A node of a targetFilter: AND/OR over 1 to 32 nodes, NOT over one node, or a comparison of a dotted path with a value. At most 64 nodes and 8 levels in all (422 beyond).",
        "oneOf": [
            {"type": "object", "additionalProperties": false, "required": ["operator", "operand"],
             "properties": {
                "operator": {"type": "string", "enum": ["AND", "OR"]},
                "operand": {"type": "array", "minItems": 1, "maxItems": 32,
                            "items": {"$ref": "#/components/schemas/FilterNode"}}}},
            {"type": "object", "additionalProperties": false, "required": ["operator", "operand"],
             "properties": {
                "operator": {"type": "string", "enum": ["NOT"]},
                "operand": {"$ref": "#/components/schemas/FilterNode"}}},
            {"type": "object", "additionalProperties": false, "required": ["operator", "operand"],
             "properties": {
                "operator": {"type": "string", "enum": ["EQUALS", "CONTAINS", "STARTS_WITH", "GTE", "LTE"]},
                "operand": {"type": "object", "additionalProperties": false, "required": ["targetName"],
                    "properties": {
                        "targetName": {"type": "string", "minLength": 1, "maxLength": 200,
                                       "pattern": "^[^.]*(\\.[^.]*){0,7}$"},
                        "targetValue": {"oneOf": [
                            {"type": "string", "maxLength": 1024},
                            {"type": "number"}, {"type": "boolean"}, {"type": "null"}]}}}}}
        ]
    })
}

/// Completes `doc` (the document utoipa generated) in place.
pub fn complete(doc: &mut Value) {
    if let Some(node) = doc.pointer_mut("/components/schemas/FilterNode") {
        *node = filter_node_schema();
    }
    for (schema, property, keywords) in PROPERTY_KEYWORDS {
        let keywords: Value = serde_json::from_str(keywords).expect("keywords are JSON");
        if let Some(p) = doc
            .pointer_mut(&format!(
                "/components/schemas/{schema}/properties/{property}"
            ))
            .and_then(Value::as_object_mut)
        {
            p.extend(keywords.as_object().expect("an object").clone());
        }
    }
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        if !path.starts_with("/api/v1/") {
            continue;
        }
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            let write = matches!(method.as_str(), "post" | "put" | "delete" | "patch");
            let Some(op) = op.as_object_mut() else {
                continue;
            };
            // If-Match takes an ETag this service answers: `"<version>"`.
            if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
                for p in params.iter_mut() {
                    if p["name"] == "If-Match" {
                        p["schema"] =
                            json!({"type": "string", "pattern": "^(|\\*|(W/)?\"[0-9]{1,15}\")$"});
                    }
                }
            }
            let responses = op
                .entry("responses")
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .expect("responses is an object");
            let mut add = |list: &[(&str, &str)]| {
                for (status, description) in list {
                    responses
                        .entry(status.to_string())
                        .or_insert_with(|| json!({"description": description}));
                }
            };
            add(ALL);
            if path.contains('{') {
                add(WITH_PATH);
            }
            if write {
                add(WRITES);
            }
            for (status, response) in responses.iter_mut() {
                let error = status.starts_with('4') || status.starts_with('5');
                if let (true, Some(r)) = (error, response.as_object_mut()) {
                    r.insert(
                        "content".into(),
                        json!({"application/problem+json": {
                            "schema": {"$ref": "#/components/schemas/Problem"}}}),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_learns_the_shared_error_model() {
        let mut doc = json!({"paths": {
            "/api/v1/apps/{id}": {
                "post": {"responses": {"200": {"description": "ok"},
                    "403": {"description": "x", "content": {"application/json": {}}}}},
                "get": {"responses": {"200": {"description": "ok"}}}
            },
            "/healthz": {"get": {"responses": {"200": {"description": "alive"}}}}
        }});
        complete(&mut doc);
        let post = &doc["paths"]["/api/v1/apps/{id}"]["post"]["responses"];
        for s in [
            "400", "401", "403", "404", "409", "412", "413", "422", "503",
        ] {
            assert!(post.get(s).is_some(), "{s}");
            assert!(
                post[s]["content"]["application/problem+json"].is_object(),
                "{s}"
            );
        }
        assert_eq!(post["403"]["description"], "x", "declared ones are kept");
        let get = &doc["paths"]["/api/v1/apps/{id}"]["get"]["responses"];
        assert!(get.get("404").is_some() && get.get("409").is_none());
        assert_eq!(
            doc["paths"]["/healthz"]["get"]["responses"]
                .as_object()
                .unwrap()
                .len(),
            1
        );
    }
}
