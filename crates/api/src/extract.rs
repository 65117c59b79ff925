//! Body and query extractors that turn every malformed input into the contract's 422
//! (or 413 for oversized bodies) with a message naming the problem — never a 500.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::error::ApiError;

/// A `multipart/form-data` body: one without the multipart type or its boundary is a 400
/// with a JSON `detail`, like every other refusal (axum's own answer is plain text).
pub struct ApiMultipart(pub axum::extract::Multipart);

impl<S: Send + Sync> FromRequest<S> for ApiMultipart {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        axum::extract::Multipart::from_request(req, state)
            .await
            .map(ApiMultipart)
            .map_err(|e| ApiError::BadRequest(format!("bad upload: {}", e.body_text())))
    }
}

/// A JSON body; the size limit comes from `DefaultBodyLimit` (setting `max_body_bytes`).
pub struct ApiJson<T>(pub T);

/// The limit, stored in request extensions by the router so the 413 can name it.
#[derive(Clone, Copy)]
pub struct BodyLimit(pub usize);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = read_json_bytes(req, state).await?;
        parse_json_body(&bytes).map(ApiJson)
    }
}

/// Reads a request body meant as JSON: refuses other content types (415), a body sent
/// with no type (415) and bodies over the limit (413).
async fn read_json_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    // Exactly `application/json` (parameters allowed): the types a browser may send
    // cross-site without a preflight (`text/plain`, forms, none) are refused, however
    // they are dressed (`text/plain; charset=json`).
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    // A missing type is fine only for an empty body (a POST that sends nothing).
    let untyped = ct.is_none();
    if !untyped && !is_json_media_type(ct) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let limit = req
        .extensions()
        .get::<BodyLimit>()
        .map(|l| l.0)
        .unwrap_or(0);
    let bytes = Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(limit)
        } else {
            ApiError::BadRequest(format!(
                "Could not read the request body: {}",
                e.body_text()
            ))
        }
    })?;
    if untyped && !bytes.is_empty() {
        return Err(ApiError::UnsupportedMediaType);
    }
    Ok(bytes)
}

/// Whether a `Content-Type` is `application/json`, compared as a media type.
pub fn is_json_media_type(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        ct.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
    })
}

/// Parses a body into `T`, reporting errors the way the contract's 422 does.
pub fn parse_json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid(
            "missing",
            vec![json!("body")],
            "Field required",
            Value::Null,
            None,
        ));
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        let offset = byte_offset(bytes, e.line(), e.column());
        ApiError::invalid(
            "json_invalid",
            vec![json!("body"), json!(offset)],
            "JSON decode error",
            json!({}),
            Some(json!({"error": e.to_string()})),
        )
    })?;
    from_value_with_loc(value, "body")
}

fn byte_offset(bytes: &[u8], line: usize, column: usize) -> usize {
    let mut l = 1;
    for (i, b) in bytes.iter().enumerate() {
        if l == line {
            return (i + column.saturating_sub(1)).min(bytes.len());
        }
        if *b == b'\n' {
            l += 1;
        }
    }
    bytes.len()
}

/// Deserializes `value` into `T`, mapping serde's message to a pydantic-style item.
pub fn from_value_with_loc<T: DeserializeOwned>(value: Value, root: &str) -> Result<T, ApiError> {
    let original = value.clone();
    serde_path_to_error::deserialize::<_, T>(value).map_err(|err| {
        let mut loc = vec![json!(root)];
        let mut pointer = String::new();
        for seg in err.path().iter() {
            match seg {
                serde_path_to_error::Segment::Seq { index } => {
                    loc.push(json!(index));
                    pointer.push_str(&format!("/{index}"));
                }
                serde_path_to_error::Segment::Map { key }
                | serde_path_to_error::Segment::Enum { variant: key } => {
                    loc.push(json!(key));
                    pointer.push_str(&format!("/{}", key.replace('~', "~0").replace('/', "~1")));
                }
                serde_path_to_error::Segment::Unknown => {}
            }
        }
        let msg = err.inner().to_string();
        let input = original.pointer(&pointer).cloned().unwrap_or(Value::Null);
        describe(&msg, loc, input)
    })
}

fn describe(msg: &str, mut loc: Vec<Value>, input: Value) -> ApiError {
    if let Some(field) = msg
        .strip_prefix("missing field `")
        .and_then(|r| r.split('`').next())
    {
        loc.push(json!(field));
        return ApiError::invalid("missing", loc, "Field required", input, None);
    }
    if let Some(field) = msg
        .strip_prefix("unknown field `")
        .and_then(|r| r.split('`').next())
    {
        loc.push(json!(field));
        return ApiError::invalid(
            "extra_forbidden",
            loc,
            "Extra inputs are not permitted",
            Value::Null,
            None,
        );
    }
    let (kind, text) = if msg.contains("expected a string") {
        ("string_type", "Input should be a valid string".to_string())
    } else if msg.contains("expected a boolean") {
        ("bool_type", "Input should be a valid boolean".to_string())
    } else if msg.contains("expected i")
        || msg.contains("expected u")
        || msg.contains("invalid digit")
    {
        ("int_type", "Input should be a valid integer".to_string())
    } else if msg.contains("expected a sequence") {
        ("list_type", "Input should be a valid list".to_string())
    } else if msg.contains("expected a map") || msg.contains("expected struct") {
        (
            "dict_type",
            "Input should be a valid dictionary".to_string(),
        )
    } else {
        ("value_error", msg.to_string())
    };
    ApiError::invalid(kind, loc, text, input, None)
}

/// Query parameters parsed into `T`, with 422 on bad values.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let raw = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(raw.as_bytes()));
        serde_path_to_error::deserialize::<_, T>(de)
            .map(ApiQuery)
            .map_err(|err| {
                let field = err.path().to_string();
                let input = form_urlencoded::parse(raw.as_bytes())
                    .find(|(k, _)| *k == field)
                    .map(|(_, v)| Value::String(v.into_owned()))
                    .unwrap_or(Value::Null);
                describe(
                    &err.inner().to_string(),
                    vec![json!("query"), json!(field)],
                    input,
                )
            })
    }
}

/// A JSON body that may be absent (an empty body is `None`); malformed JSON is still 422.
pub struct OptionalJson(pub Option<Value>);

impl<S: Send + Sync> FromRequest<S> for OptionalJson {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = read_json_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(None));
        }
        parse_json_body(&bytes).map(|v| OptionalJson(Some(v)))
    }
}
