//! Writes of users: create, update, and API tokens (issue, revoke). Every
//! change that makes a user an enabled admin or stops them being one goes
//! through the admin roster ([`iga_domain::roster`]) in the same commit, so
//! the last enabled admin is never lost.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use iga_api as model;
use iga_domain::claim::{may_take_over, Holder};
use iga_domain::user::{User, UserCommand};
use iga_domain::username::{ClaimUsername, Username};
use iga_domain::Aggregate;
use iga_http::{object_response, rfc3339, ApiJson, Principal, Problem};
use iga_schemas::v1;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::state::{derived_id, meta, CommandState};
use crate::{CommandError, Outcome};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateUser {
    /// Unique; 1 to 64 characters of lowercase letters, digits, `.`, `_`, `-`, `@`.
    #[schema(pattern = "^[a-z0-9._@-]{1,64}$")]
    pub username: String,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub display_name: String,
    #[serde(default)]
    #[schema(max_length = 254, pattern = "^$|@")]
    pub email: String,
    #[serde(default)]
    #[schema(max_items = 100)]
    pub manager_ids: Vec<String>,
    #[serde(default)]
    pub delegated_user_id: Option<String>,
    /// `admin`, `auditor`.
    #[serde(default)]
    #[schema(value_type = Vec<model::RoleName>, max_items = 2)]
    pub roles: Vec<String>,
}

/// Creates a user (admin only).
#[utoipa::path(
    post,
    path = "/users",
    tag = "identities",
    request_body = CreateUser,
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key answers the first outcome")),
    responses(
        (status = 201, description = "Created", body = model::User),
        (status = 400, description = "Invalid body", body = Problem),
        (status = 403, description = "Not an admin", body = Problem),
        (status = 409, description = "Username taken", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn create_user(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    ApiJson(body, _): ApiJson<CreateUser>,
) -> Result<Response, Problem> {
    if !principal.is_admin() {
        return Err(Problem::forbidden("only an admin creates users"));
    }
    let meta = meta(&principal, &headers)?;
    crate::refs::users_exist(&state, &body.manager_ids, "managerIds").await?;
    if let Some(delegate) = body.delegated_user_id.as_deref().filter(|d| !d.is_empty()) {
        crate::refs::users_exist(&state, &[delegate.to_string()], "delegatedUserId").await?;
    }
    // A retry with the same Idempotency-Key must address the same user.
    let user_id = match &meta.idempotency_key {
        Some(key) => derived_id("user", key),
        None => uuid::Uuid::now_v7().to_string(),
    };
    let created = v1::UserCreated {
        user_id: user_id.clone(),
        username: body.username.trim().to_string(),
        display_name: body.display_name,
        email: body.email,
        manager_ids: body.manager_ids,
        delegated_user_id: body.delegated_user_id.unwrap_or_default(),
        roles: body.roles,
    };
    let command = UserCommand::Create(created.clone());
    // Check the user's own rules before claiming the username, so an invalid
    // request leaves no claim behind.
    User::default()
        .decide(&command, &meta.ctx)
        .map_err(CommandError::from)?;
    let key = username_key(&created.username);
    let (current, at) = state.handler.snapshot::<Username>(&key).await?;
    let holder_gone = match &current.owner {
        Some(owner) if *owner != user_id => {
            // Users are never deleted: a claim's user is live, or was never
            // written (its creator died after claiming the name).
            let (holder, _) = state.handler.load::<User>(owner).await?;
            let found = if holder.exists() {
                Holder::Live
            } else {
                Holder::Missing
            };
            may_take_over(found, at.updated_at_unix_micros, meta.ctx.now_unix_micros)
        }
        _ => false,
    };
    let claim = ClaimUsername {
        username: created.username.clone(),
        user_id: user_id.clone(),
        holder_gone,
    };
    state
        .handler
        .execute::<Username>(&key, &claim, &meta)
        .await
        .map_err(|e| match e {
            CommandError::Domain(iga_domain::DomainError::AlreadyExists(_)) => {
                Problem::conflict(format!("username {:?} is taken", created.username))
                    .with_field("username", "taken")
            }
            other => other.into(),
        })?;
    let (user, outcome) = execute_with_roster(&state.handler, &user_id, &command, &meta).await?;
    Ok(object_response(
        StatusCode::CREATED,
        outcome.version,
        Some(outcome.position),
        &render(&user, &outcome),
    ))
}

/// The user as the API shows it, right after a write.
pub fn render(user: &User, outcome: &Outcome) -> model::User {
    model::User {
        id: user.id.clone(),
        username: user.username.clone(),
        display_name: user.display_name.clone(),
        email: user.email.clone(),
        manager_ids: user.manager_ids.clone(),
        delegated_user_id: Some(user.delegated_user_id.clone()).filter(|d| !d.is_empty()),
        roles: user.roles.clone(),
        status: if user.enabled { "ENABLED" } else { "DISABLED" }.into(),
        created_at: rfc3339(outcome.created_at_unix_micros),
        updated_at: rfc3339(outcome.updated_at_unix_micros),
        version: outcome.version,
    }
}

/// Stream key of a username claim: a digest, since usernames may hold
/// characters a stream id may not.
pub fn username_key(username: &str) -> String {
    hex::encode(&Sha256::digest(username.as_bytes())[..16])
}

/// A freshly issued API token; `token` is shown only in this answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuedToken {
    pub id: String,
    pub token: String,
    pub description: String,
    pub created_at: String,
    /// Null: never expires.
    pub expires_at: Option<String>,
}

/// What a new token is for and until when; both optional.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IssueTokenBody {
    /// At most 200 characters.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub description: String,
    /// RFC 3339, in the future; absent: never expires.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
}

/// Issues an API token to a user (admin, or the user themselves).
///
/// `Idempotency-Key` is refused here with 422: replaying the first answer
/// would mean storing the token itself, and only its hash is ever stored.
#[utoipa::path(
    post,
    path = "/users/{id}/tokens",
    tag = "identities",
    params(("id" = String, Path, description = "User id")),
    request_body(content = Option<IssueTokenBody>, description = "Optional: description and expiry"),
    responses(
        (status = 201, description = "Issued; the token is shown only here", body = IssuedToken),
        (status = 400, description = "Invalid body", body = Problem),
        (status = 404, description = "No such user, or not the caller's", body = Problem),
        (status = 409, description = "The user is disabled, or holds too many tokens", body = Problem),
        (status = 422, description = "Idempotency-Key sent", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn issue_token(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    axum::extract::Path(user_id): axum::extract::Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, Problem> {
    let body = iga_http::json::optional_json::<IssueTokenBody>(&body)?;
    let meta = meta(&principal, &headers)?;
    if meta.idempotency_key.is_some() {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Idempotency-Key is not accepted when issuing a token: the token is shown once and never stored",
        )
        .with_field("Idempotency-Key", "not accepted here"));
    }
    if principal.user_id != user_id && !principal.is_admin() {
        // Another user's tokens are not the caller's to know of.
        return Err(Problem::not_found(format!("user {user_id} not found")));
    }
    let expires_at_micros = match body.expires_at.as_deref() {
        Some(t) => iga_http::parse_rfc3339_micros("expiresAt", t)?,
        None => 0,
    };
    let token = format!("iga_{}", hex::encode(rand::random::<[u8; 32]>()));
    let token_id = uuid::Uuid::now_v7().to_string();
    let command = UserCommand::IssueToken {
        token_id: token_id.clone(),
        token_sha256_hex: iga_http::auth::token_sha256_hex(&token),
        description: body.description.clone(),
        expires_at_micros,
        bootstrap: false,
    };
    let (_, outcome) = state
        .handler
        .execute::<User>(&user_id, &command, &meta)
        .await
        .map_err(|e| e.for_aggregate("user", &user_id))?;
    let body = IssuedToken {
        id: token_id,
        token,
        description: body.description,
        created_at: rfc3339(outcome.updated_at_unix_micros),
        expires_at: (expires_at_micros != 0).then(|| rfc3339(expires_at_micros)),
    };
    let mut resp = (StatusCode::CREATED, axum::Json(body)).into_response();
    resp.headers_mut()
        .insert(iga_http::CONSISTENCY_TOKEN, outcome.position.into());
    Ok(resp)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateUser {
    #[schema(max_length = 200)]
    pub display_name: Option<String>,
    #[schema(max_length = 254, pattern = "^$|@")]
    pub email: Option<String>,
    #[schema(max_items = 100)]
    pub manager_ids: Option<Vec<String>>,
    /// `""` removes the delegate.
    pub delegated_user_id: Option<String>,
    #[schema(value_type = Option<Vec<model::RoleName>>, max_items = 2)]
    pub roles: Option<Vec<String>>,
    /// `ENABLED` or `DISABLED`; a disabled user's tokens stop working.
    #[schema(pattern = "^(ENABLED|DISABLED)$")]
    pub status: Option<String>,
}

/// Updates a user (admin only): only the fields present change.
#[utoipa::path(
    post,
    path = "/users/{id}",
    tag = "identities",
    request_body = UpdateUser,
    params(
        ("id" = String, Path, description = "User id"),
        ("If-Match" = Option<String>, Header, description = "Apply only if the user is at this ETag"),
    ),
    responses(
        (status = 200, description = "Updated", body = model::User),
        (status = 400, description = "Invalid body", body = Problem),
        (status = 403, description = "Not an admin", body = Problem),
        (status = 404, description = "No such user", body = Problem),
        (status = 412, description = "If-Match does not match", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn update_user(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    axum::extract::Path(user_id): axum::extract::Path<String>,
    headers: HeaderMap,
    ApiJson(body, _): ApiJson<UpdateUser>,
) -> Result<Response, Problem> {
    if !principal.is_admin() {
        return Err(Problem::forbidden("only an admin updates users"));
    }
    let meta = meta(&principal, &headers)?;
    if let Some(managers) = &body.manager_ids {
        crate::refs::users_exist(&state, managers, "managerIds").await?;
    }
    if let Some(delegate) = body.delegated_user_id.as_deref().filter(|d| !d.is_empty()) {
        crate::refs::users_exist(&state, &[delegate.to_string()], "delegatedUserId").await?;
    }
    let list = |v: Option<Vec<String>>| v.map(|values| v1::StringList { values });
    let command = UserCommand::Update(v1::UserUpdated {
        user_id: user_id.clone(),
        display_name: body.display_name,
        email: body.email,
        manager_ids: list(body.manager_ids),
        delegated_user_id: body.delegated_user_id,
        roles: list(body.roles),
        status: body.status,
    });
    let (user, outcome) = execute_with_roster(&state.handler, &user_id, &command, &meta)
        .await
        .map_err(|e| e.for_aggregate("user", &user_id))?;
    Ok(object_response(
        StatusCode::OK,
        outcome.version,
        Some(outcome.position),
        &render(&user, &outcome),
    ))
}

/// Revokes one of a user's tokens (admin, or the user themselves): it
/// answers 401 from then on, on every instance.
#[utoipa::path(
    delete,
    path = "/users/{id}/tokens/{tokenId}",
    tag = "identities",
    params(
        ("id" = String, Path, description = "User id"),
        ("tokenId" = String, Path, description = "Token id"),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such user or live token, or not the caller's", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn revoke_token(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    axum::extract::Path((user_id, token_id)): axum::extract::Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    if principal.user_id != user_id && !principal.is_admin() {
        return Err(Problem::not_found(format!("user {user_id} not found")));
    }
    let meta = meta(&principal, &headers)?;
    let command = UserCommand::RevokeToken { token_id };
    let (_, outcome) = state
        .handler
        .execute::<User>(&user_id, &command, &meta)
        .await
        .map_err(|e| e.for_aggregate("user", &user_id))?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .insert(iga_http::CONSISTENCY_TOKEN, outcome.position.into());
    Ok(resp)
}

/// Runs `command` on user `user_id` with the admin roster's change it
/// implies, as one commit.
pub(crate) async fn execute_with_roster(
    handler: &crate::CommandHandler,
    user_id: &str,
    command: &UserCommand,
    meta: &crate::CommandMeta,
) -> Result<(User, Outcome), CommandError> {
    use iga_domain::roster::{AdminRoster, SetAdmin, ROSTER_ID};
    let user_stream = User::stream_id(user_id);
    let roster_stream = AdminRoster::stream_id(ROSTER_ID);
    let _serialised = handler.lock_streams(&[&user_stream, &roster_stream]).await;
    for attempt in 0..crate::MAX_ATTEMPTS {
        crate::back_off(attempt).await;
        let (before, _) = handler.load::<User>(user_id).await?;
        let user = handler.decide::<User>(user_id, command, meta).await?;
        if let Some(done) = user.retried.clone() {
            return Ok((user.state, done));
        }
        let mut roster = handler.begin::<AdminRoster>(ROSTER_ID).await?;
        let set = SetAdmin {
            user_id: user_id.into(),
            enabled_admin: user.state.is_enabled_admin(),
        };
        if !user.is_empty() {
            handler.decide_more(&mut roster, &set, &meta.for_side_stream())?;
        }
        // One commit. Where the log appends one by one, a change that
        // removes an admin goes to the roster first and one that adds goes
        // to it last, so a refusal or a crash between the two leaves the
        // roster knowing fewer admins (refusing more), never more.
        let demotes = before.is_enabled_admin() && !set.enabled_admin;
        let decided: [&dyn crate::Decided; 2] = if demotes {
            [&roster, &user]
        } else {
            [&user, &roster]
        };
        let user_slot = if demotes { 1 } else { 0 };
        match handler.commit(&decided).await {
            // The roster went first and the user was refused: decide again.
            Ok(committed) if !committed.whole && demotes => continue,
            Ok(committed) => {
                let outcome = handler
                    .outcome_of(&user, committed.results[user_slot].as_ref(), &committed)
                    .await?;
                if !committed.whole && user_slot == 0 {
                    // The user changed, the roster did not: tell it now.
                    handler
                        .execute::<AdminRoster>(ROSTER_ID, &set, &meta.for_side_stream())
                        .await?;
                }
                return Ok((user.state, outcome));
            }
            Err(CommandError::EventLog(iga_eventlog::EventLogError::Conflict { .. })) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(CommandError::TooMuchContention {
        stream: user_stream,
    })
}

/// The users `owner_ids` name, answered as a list after an owners command.
pub async fn owners_answer(
    state: &CommandState,
    owner_ids: &[String],
    outcome: &Outcome,
) -> Result<Response, Problem> {
    let mut list = Vec::with_capacity(owner_ids.len());
    for id in owner_ids {
        let (user, at) = state.handler.snapshot::<User>(id).await?;
        if user.exists() {
            list.push(render(&user, &at));
        }
    }
    let page = iga_http::page::Page {
        list,
        next_page_token: None,
    };
    Ok(object_response(
        StatusCode::OK,
        outcome.version,
        Some(outcome.position),
        &page,
    ))
}
