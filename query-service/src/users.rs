//! Reads of users.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use iga_http::{rfc3339, Principal, Problem};
use projection_service::users::{UserDirectory, UserView, NAME};
use serde::Serialize;

use crate::QueryState;

/// A user, as the API answers it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub manager_ids: Vec<String>,
    pub delegated_user_id: Option<String>,
    pub roles: Vec<String>,
    /// `ENABLED` or `DISABLED`.
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
    pub version: u64,
}

impl From<UserView> for User {
    fn from(v: UserView) -> Self {
        User {
            id: v.id,
            username: v.username,
            display_name: v.display_name,
            email: v.email,
            manager_ids: v.manager_ids,
            delegated_user_id: v.delegated_user_id,
            roles: v.roles,
            status: v.status,
            created_at: rfc3339(v.created_at_micros),
            updated_at: rfc3339(v.updated_at_micros),
            version: v.version,
        }
    }
}

/// The object with an `ETag` of its version.
pub fn with_etag<T: Serialize>(version: u64, body: T) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::ETAG,
        HeaderValue::from_str(&format!("\"{version}\"")).expect("digits"),
    );
    (headers, Json(body)).into_response()
}

/// The caller's own user.
#[utoipa::path(
    get,
    path = "/me",
    tag = "identities",
    responses(
        (status = 200, description = "The authenticated user", body = User),
        (status = 401, description = "Missing or unknown token", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn me(
    State(state): State<QueryState>,
    Extension(principal): Extension<Principal>,
) -> Result<Response, Problem> {
    let tree = state
        .models
        .tree(NAME)
        .ok_or_else(|| Problem::internal("users read model missing"))?;
    let user = UserDirectory::get(tree, &principal.user_id)
        .map_err(|e| Problem::internal(e.to_string()))?
        .ok_or_else(|| Problem::not_found(format!("user {}", principal.user_id)))?;
    Ok(with_etag(user.version, User::from(user)))
}
