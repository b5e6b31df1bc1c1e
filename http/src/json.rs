//! `ApiJson<T>`: a JSON body extractor whose every rejection is a problem
//! (400 for malformed JSON, wrong types, unknown enum values and missing
//! required fields, naming the field; 413 over the size limit; 415 without a
//! JSON content type). Never a 500 for a client mistake. It also keeps the
//! body's SHA-256, which idempotency keys compare.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use sha2::{Digest, Sha256};

use crate::Problem;

/// The parsed body, and the SHA-256 hex digest of its bytes.
pub struct ApiJson<T>(pub T, pub BodyDigest);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyDigest(pub String);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| {
                let m = m.trim();
                m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
            });
        if !is_json {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send the body as JSON with 'Content-Type: application/json'",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "request body is over the configured limit",
                )
            } else {
                Problem::bad_request(format!("cannot read the request body: {e}"))
            }
        })?;
        let digest = BodyDigest(hex::encode(Sha256::digest(&bytes)));
        // Every body is an object (serde would read a struct from a list).
        if !bytes.trim_ascii().starts_with(b"{") {
            return Err(Problem::bad_request("the body must be a JSON object")
                .with_field(".", "not an object"));
        }
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        match serde_path_to_error::deserialize::<_, T>(de) {
            Ok(v) => Ok(ApiJson(v, digest)),
            Err(e) => Err(problem_for(e)),
        }
    }
}

/// A body that may be left out: empty (or blank) means `T::default()`;
/// otherwise it is read as JSON with the same problems as [`ApiJson`].
pub fn optional_json<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, Problem> {
    // No body, or JSON `null`: every field takes its default.
    let trimmed = bytes.trim_ascii();
    if trimmed.is_empty() || trimmed == b"null" {
        return Ok(T::default());
    }
    // An object, never a list (serde would read a struct from a list).
    if !trimmed.starts_with(b"{") {
        return Err(
            Problem::bad_request("the body must be a JSON object").with_field(".", "not an object")
        );
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize::<_, T>(de).map_err(problem_for)
}

fn problem_for(e: serde_path_to_error::Error<serde_json::Error>) -> Problem {
    let inner = e.inner();
    match inner.classify() {
        serde_json::error::Category::Data => {
            let path = e.path().to_string();
            let message = inner.to_string();
            let field = if let Some(rest) = message.strip_prefix("missing field `") {
                let missing = rest.split('`').next().unwrap_or("");
                if path == "." {
                    missing.to_string()
                } else {
                    format!("{path}.{missing}")
                }
            } else {
                path
            };
            Problem::bad_request(format!("invalid request body: {field}: {message}"))
                .with_field(field, message)
        }
        _ => Problem::bad_request(format!("malformed JSON: {inner}")),
    }
}

pub use iga_api::json::{whole, whole_opt};
