//! HTTP plumbing shared by the command and query services, so neither copies
//! the other: bearer-token authentication ([`auth`]), RFC 9457 problem
//! details ([`problem`]), the consistency-token header, and time formatting.

pub mod auth;
pub mod json;
pub mod page;
pub mod problem;
pub mod target_filter;

pub use auth::{Authenticator, Principal};
pub use json::ApiJson;
pub use problem::Problem;

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

/// `Idempotency-Key`: a repeated POST with it answers the first outcome.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// A JSON answer with `ETag: "<version>"` and, for writes, the consistency token.
pub fn object_response<T: serde::Serialize>(
    status: axum::http::StatusCode,
    version: u64,
    consistency_token: Option<u64>,
    body: &T,
) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::ETAG,
        HeaderValue::from_str(&format!("\"{version}\"")).expect("digits"),
    );
    if let Some(p) = consistency_token {
        headers.insert(CONSISTENCY_TOKEN, HeaderValue::from(p));
    }
    (status, headers, axum::Json(body)).into_response()
}

/// The version named by `If-Match`, if present. `*` matches anything.
pub fn if_match(headers: &HeaderMap) -> Result<Option<u64>, Problem> {
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = v.to_str().unwrap_or("").trim();
    // `*` (any version) and an empty header ask for nothing.
    if text == "*" || text.is_empty() {
        return Ok(None);
    }
    // An entity tag, quoted (RFC 9110): `"3"` or `W/"3"`.
    text.strip_prefix("W/")
        .unwrap_or(text)
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .filter(|t| !t.is_empty() && t.len() <= 15 && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse().ok())
        .map(Some)
        .ok_or_else(|| {
            Problem::bad_request("If-Match must be an ETag this service answered, like \"3\"")
                .with_field("If-Match", "invalid")
        })
}

/// Answered on every write: the log position of the write's last event.
/// Sent back on a read, it makes the read wait until the read models include it.
pub const CONSISTENCY_TOKEN: &str = "x-consistency-token";

/// Parses an RFC 3339 time sent in `field`; a 400 naming the field if it is not one.
pub fn parse_rfc3339(field: &str, text: &str) -> Result<time::OffsetDateTime, Problem> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).map_err(
        |_| {
            Problem::bad_request(format!("{field} {text:?} is not an RFC 3339 time"))
                .with_field(field, "RFC 3339, e.g. 2026-01-31T12:00:00Z")
        },
    )
}

/// [`parse_rfc3339`], as microseconds since the Unix epoch.
pub fn parse_rfc3339_micros(field: &str, text: &str) -> Result<i64, Problem> {
    parse_rfc3339(field, text).map(|t| (t.unix_timestamp_nanos() / 1000) as i64)
}

/// RFC 3339 UTC text of a microsecond Unix timestamp.
pub use iga_api::rfc3339;

/// Microseconds since the Unix epoch, now.
pub fn now_unix_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_rfc3339_utc() {
        assert_eq!(
            super::rfc3339(1_700_000_000_123_456),
            "2023-11-14T22:13:20.123456Z"
        );
    }
}
