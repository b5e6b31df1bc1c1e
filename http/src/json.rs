//! `ApiJson<T>`: a JSON body extractor whose every rejection is a problem
//! (400 for malformed JSON, wrong types, unknown enum values and missing
//! required fields, naming the field; 413 over the size limit; 415 without a
//! JSON content type). Never a 500 for a client mistake.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::Problem;

pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(problem_for(rejection)),
        }
    }
}

fn problem_for(rejection: JsonRejection) -> Problem {
    match rejection {
        JsonRejection::JsonDataError(e) => {
            // serde's message names the field path ("users[0]: invalid type ...").
            let detail = std::error::Error::source(&e)
                .map(|s| s.to_string())
                .unwrap_or_else(|| e.body_text());
            let field = field_of(&detail);
            Problem::bad_request(format!("invalid request body: {detail}"))
                .with_field(field, detail)
        }
        JsonRejection::JsonSyntaxError(e) => {
            Problem::bad_request(format!("malformed JSON: {}", e.body_text()))
        }
        JsonRejection::MissingJsonContentType(_) => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as JSON with 'Content-Type: application/json'",
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body is over the configured limit",
            )
        }
        other => Problem::bad_request(other.body_text()),
    }
}

/// The field a serde error is about: `missing field `x``, or the path before
/// the first `:` ("users[0].id: invalid type ...").
fn field_of(detail: &str) -> String {
    if let Some(rest) = detail.strip_prefix("missing field `") {
        return rest.split('`').next().unwrap_or("").to_string();
    }
    match detail.split_once(": ") {
        Some((path, _)) if !path.contains(' ') => path.to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_the_field() {
        assert_eq!(
            super::field_of("missing field `username` at line 1 column 2"),
            "username"
        );
        assert_eq!(super::field_of("roles: invalid type: integer `5`"), "roles");
        assert_eq!(super::field_of("users[0]: invalid type"), "users[0]");
        assert_eq!(super::field_of("expected value at line 1"), "");
    }
}
