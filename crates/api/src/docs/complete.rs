//! What the handlers' derives cannot say, added to the generated document in one pass:
//! the refusals every input-taking route may answer with (400, 422, and 413/415 for a
//! body), a body schema for every documented error, and the envelope of a server-sent event
//! (each event's `data` is one JSON value of the documented schema). The result is what
//! the schema fuzzer checks real responses against.

use serde_json::{json, Map, Value};

/// `{"detail": "…"}`: the body of every error but a validation failure.
const ERROR: &str = "ErrorDetail";
/// `{"detail": [{type, loc, msg, input, ctx?}]}`: the body of a 422.
const VALIDATION: &str = "ValidationError";

/// Adds the error schemas and responses, and wraps event-stream schemas in the SSE
/// event envelope.
pub fn complete(doc: &mut Value) {
    add_error_schemas(doc);
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut() {
        let Some(ops) = item.as_object_mut() else {
            continue;
        };
        for op in ops.values_mut().filter_map(Value::as_object_mut) {
            add_error_responses(op);
            if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
                for response in responses.values_mut() {
                    wrap_event_streams(response);
                }
            }
        }
    }
}

fn add_error_schemas(doc: &mut Value) {
    let Some(root) = doc.as_object_mut() else {
        return;
    };
    let components = root.entry("components").or_insert_with(|| json!({}));
    let Some(components) = components.as_object_mut() else {
        return;
    };
    let schemas = components
        .entry("schemas")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    let Some(schemas) = schemas else {
        return;
    };
    schemas.insert(
        ERROR.into(),
        json!({
            "type": "object",
            "description": "Why the request failed.",
            "required": ["detail"],
            "properties": {"detail": {"type": "string"}}
        }),
    );
    schemas.insert(
        VALIDATION.into(),
        json!({
            "type": "object",
            "description": "Which fields of the request were refused, and why.",
            "required": ["detail"],
            "properties": {"detail": {"type": "array", "items": {
                "type": "object",
                "required": ["type", "loc", "msg"],
                "properties": {
                    "type": {"type": "string"},
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "msg": {"type": "string"},
                    "input": {},
                    "ctx": {"type": "object"}
                }
            }}}
        }),
    );
}

/// Every route that reads parameters may refuse them (400, 422); one that reads a body
/// may also refuse its size or type (413, 415). Error responses without a body schema
/// get the shared one.
fn add_error_responses(op: &mut Map<String, Value>) {
    let takes_params = op
        .get("parameters")
        .and_then(Value::as_array)
        .is_some_and(|p| !p.is_empty());
    let takes_body = op.contains_key("requestBody");
    let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
        return;
    };
    let mut add = |code: &str, description: &str| {
        responses
            .entry(code)
            .or_insert_with(|| json!({"description": description}));
    };
    if takes_params || takes_body {
        add("400", "A parameter or field was refused");
        add(
            "422",
            "A parameter or field is missing or of the wrong type",
        );
    }
    if takes_body {
        add("413", "The body is over `max_body_bytes`");
        add("415", "The body is not `application/json`");
    }
    for (code, response) in responses.iter_mut() {
        let is_error = code.starts_with('4') || code.starts_with('5');
        let Some(response) = response.as_object_mut() else {
            continue;
        };
        if is_error && !response.contains_key("content") {
            let schema = if code == "422" { VALIDATION } else { ERROR };
            response.insert(
                "content".into(),
                json!({"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}),
            );
        }
    }
}

/// An event stream's schema describes one event: `data` is a JSON text of the schema
/// the handler named, beside the optional `id`, `event` and `retry` fields.
fn wrap_event_streams(response: &mut Value) {
    let Some(stream) = response.pointer_mut("/content/text~1event-stream") else {
        return;
    };
    let Some(stream) = stream.as_object_mut() else {
        return;
    };
    let data = stream.remove("schema").unwrap_or_else(|| json!({}));
    stream.insert(
        "schema".into(),
        json!({
            "type": "object",
            "required": ["data"],
            "properties": {
                "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": data},
                "id": {"type": "string"},
                "event": {"type": "string"},
                "retry": {"type": "integer"}
            }
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_taking_routes_document_their_errors_and_streams_their_envelope() {
        let mut doc = json!({"paths": {
            "/a": {"get": {"responses": {"200": {"description": "ok"}}}},
            "/b": {"post": {
                "requestBody": {},
                "responses": {
                    "200": {"description": "events", "content": {"text/event-stream": {"schema": {"$ref": "#/components/schemas/E"}}}},
                    "404": {"description": "gone"}
                }
            }}
        }});
        complete(&mut doc);
        let a = &doc["paths"]["/a"]["get"]["responses"];
        assert_eq!(a.as_object().unwrap().len(), 1, "no input, no input errors");
        let b = &doc["paths"]["/b"]["post"]["responses"];
        for code in ["400", "404", "413", "415", "422"] {
            assert!(
                b[code]["content"]["application/json"]["schema"]["$ref"].is_string(),
                "{code}"
            );
        }
        assert_eq!(
            b["422"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ValidationError"
        );
        let data = &b["200"]["content"]["text/event-stream"]["schema"]["properties"]["data"];
        assert_eq!(data["contentSchema"]["$ref"], "#/components/schemas/E");
        assert!(doc["components"]["schemas"]["ErrorDetail"].is_object());
    }
}
