//! Reads of users: `GET /me`, `GET /users/{id}`, `GET /users?query=`,
//! `GET /users/{id}/tokens`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use iga_api::User;
use iga_http::page::{Page, PageParams};
use iga_http::{object_response, rfc3339, Principal, Problem};
use projection_service::queries::Users;
use projection_service::users::UserView;
use serde::Deserialize;

use crate::page::internal;
use crate::QueryState;

pub(crate) fn render(v: UserView) -> User {
    v.render()
}

fn directory(state: &QueryState) -> Result<Users<'_>, Problem> {
    state.models.users().map_err(internal)
}

fn found(state: &QueryState, id: &str) -> Result<Response, Problem> {
    let user = directory(state)?
        .get(id)
        .map_err(internal)?
        .ok_or_else(|| Problem::not_found(format!("user {id} not found")))?;
    Ok(object_response(
        StatusCode::OK,
        user.version,
        None,
        &render(user),
    ))
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
    found(&state, &principal.user_id)
}

/// One user, now or as it was at `?at=`.
#[utoipa::path(
    get,
    path = "/users/{id}",
    tag = "identities",
    params(("id" = String, Path, description = "User id"), crate::history::AsOf),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 404, description = "No such user", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn get_user(
    State(state): State<QueryState>,
    Path(id): Path<String>,
    Query(as_of): Query<crate::history::AsOf>,
) -> Result<Response, Problem> {
    let Some(at) = as_of.micros()? else {
        return found(&state, &id);
    };
    let events = crate::history::events_until(&state, &[format!("user-{id}")], at).await?;
    let user = state
        .models
        .user_after(&id, &events)
        .map_err(internal)?
        .ok_or_else(|| crate::history::not_yet(&format!("user {id}"), &as_of))?;
    Ok(object_response(
        StatusCode::OK,
        user.version,
        None,
        &render(user),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Case-insensitive text found in the username, display name or email.
    pub query: Option<String>,
}

/// Users in id order, optionally filtered by `query`.
#[utoipa::path(
    get,
    path = "/users",
    tag = "identities",
    params(UserQuery, PageParams),
    responses(
        (status = 200, description = "A page of users", body = Page<User>),
        (status = 400, description = "Bad paging parameters", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn list_users(
    State(state): State<QueryState>,
    Query(filter): Query<UserQuery>,
    Query(page): Query<PageParams>,
) -> Result<Response, Problem> {
    let needle = filter.query.unwrap_or_default().to_lowercase();
    let page = crate::page::list(
        &page,
        |window| {
            state.models.users()?.page(window, |v: &UserView| {
                needle.is_empty()
                    || [&v.username, &v.display_name, &v.email]
                        .iter()
                        .any(|f| f.to_lowercase().contains(&needle))
            })
        },
        render,
    )?;
    Ok(Json(page).into_response())
}

/// The users `ids` name, in that order (unknown ids left out): owners lists.
pub(crate) fn users_named(state: &QueryState, ids: &[String]) -> Result<Page<User>, Problem> {
    let users = directory(state)?;
    let mut list = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(u) = users.get(id).map_err(internal)? {
            list.push(render(u));
        }
    }
    Ok(Page {
        list,
        next_page_token: None,
    })
}

/// A live API token as listed: never the token or anything derived from it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    pub id: String,
    pub description: String,
    pub created_at: String,
    /// Null: never expires.
    pub expires_at: Option<String>,
    /// When it last authenticated a request, to the hour; null: never.
    pub last_used_at: Option<String>,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TokenList {
    pub list: Vec<TokenInfo>,
}

/// The user's live tokens (admin, or the user themselves). Anyone else is
/// answered 404, as if the user did not exist.
#[utoipa::path(
    get,
    path = "/users/{id}/tokens",
    tag = "identities",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "The live tokens", body = TokenList),
        (status = 401, description = "Missing or unknown token", body = Problem),
        (status = 404, description = "No such user, or not the caller's to see", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn list_tokens(
    State(state): State<QueryState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let users = directory(&state)?;
    let exists = users.get(&id).map_err(internal)?.is_some();
    if !exists || !(principal.is_admin() || principal.user_id == id) {
        return Err(Problem::not_found(format!("user {id} not found")));
    }
    let now = iga_http::now_unix_micros();
    let list = users
        .tokens(&id)
        .map_err(internal)?
        .into_iter()
        .filter(|t| t.expires_at_micros == 0 || t.expires_at_micros > now)
        .map(|t| TokenInfo {
            id: t.id,
            description: t.description,
            created_at: rfc3339(t.created_at_micros),
            expires_at: (t.expires_at_micros != 0).then(|| rfc3339(t.expires_at_micros)),
            last_used_at: (t.last_used_at_micros != 0).then(|| rfc3339(t.last_used_at_micros)),
        })
        .collect();
    Ok(Json(TokenList { list }).into_response())
}
