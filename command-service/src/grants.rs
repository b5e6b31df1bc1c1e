//! Direct grants by an admin or an owner of the app: grant, revoke, change
//! or remove a grant's duration (DOMAIN.md rule 8).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use iga_api::Grant;
use iga_domain::access::{pair_key, AccessCommand, AccessPair};
use iga_domain::entitlement::Entitlement;
use iga_http::{object_response, ApiJson, Principal, Problem};
use iga_schemas::v1;
use serde::Deserialize;

use crate::state::{meta, CommandState};
use crate::{CommandError, CommandMeta};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddManualUser {
    pub user_id: String,
    /// RFC 3339; the grant ends then. Absent: it does not end by itself.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub deprovision_at: Option<String>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Revoke {
    #[serde(default)]
    #[schema(max_length = 4096)]
    pub reason: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrantDuration {
    #[schema(format = DateTime)]
    pub deprovision_at: String,
}

/// The entitlement named in the path, checked to be of the app.
async fn entitlement(state: &CommandState, app_id: &str, id: &str) -> Result<Entitlement, Problem> {
    let (_, app, _) = crate::refs::app_facts(state, app_id).await?;
    let (mut ent, _) = state.handler.load::<Entitlement>(id).await?;
    if !ent.exists() && app.fields.access_entitlement_id == id {
        ent = Entitlement {
            fields: iga_domain::entitlement::builtin_access(&app.fields),
            deleted: false,
        };
    }
    if !ent.exists() || ent.fields.app_id != app_id {
        return Err(Problem::not_found(format!(
            "entitlement {id} of app {app_id} not found"
        )));
    }
    Ok(ent)
}

/// Runs a pair command and answers the grant it touched.
async fn run(
    state: &CommandState,
    meta: &CommandMeta,
    user_id: &str,
    entitlement_id: &str,
    command: AccessCommand,
    status: StatusCode,
) -> Result<Response, Problem> {
    let pair = pair_key(user_id, entitlement_id);
    let (before, _) = state.handler.load::<AccessPair>(&pair).await?;
    let (after, out) = state
        .handler
        .execute::<AccessPair>(&pair, &command, meta)
        .await
        .map_err(|e| match e {
            CommandError::Domain(iga_domain::DomainError::NotFound(what)) if what == "grant" => {
                Problem::not_found(format!(
                    "user {user_id} holds no grant of entitlement {entitlement_id}"
                ))
            }
            other => other.into(),
        })?;
    // The grant as it now stands, or as it stood when this command ended it.
    let grant = match (&after.grant, &before.grant, &after.last_ended) {
        (Some(g), _, _) => Grant::from_events(g, None),
        (None, Some(held), Some((g, ended))) if held.grant_id == g.grant_id => {
            Grant::from_events(g, Some(ended))
        }
        (None, Some(g), _) => Grant::from_events(g, None),
        (None, None, _) => return Err(Problem::not_found("no grant")),
    };
    Ok(object_response(
        status,
        out.version,
        Some(out.position),
        &grant,
    ))
}

/// Grants the entitlement directly (admin, app owner): grantType `admin`.
#[utoipa::path(post, path = "/apps/{appId}/entitlements/{entitlementId}/add-manual-user", tag = "grants", request_body = AddManualUser,
    params(("appId" = String, Path, description = "App id"), ("entitlementId" = String, Path, description = "Entitlement id")),
    responses((status = 201, description = "The grant", body = Grant), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn add_manual_user(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path((app_id, id)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(body, _): ApiJson<AddManualUser>,
) -> Result<Response, Problem> {
    let meta = meta(&principal, &headers)?;
    let ent = entitlement(&state, &app_id, &id).await?;
    crate::refs::users_exist(&state, std::slice::from_ref(&body.user_id), "userId").await?;
    let deprovision = match body.deprovision_at.as_deref() {
        Some(t) => iga_http::parse_rfc3339_micros("deprovisionAt", t)?,
        None => 0,
    };
    let (facts, _, _) = crate::refs::app_facts(&state, &app_id).await?;
    // Checked when granted: the user enabled, the entitlement and app live.
    let (grantable, plan) = crate::fulfilment::grant_facts(
        &state.handler,
        &body.user_id,
        &ent.fields.entitlement_id,
        &app_id,
    )
    .await?;
    let grant = v1::GrantIssued {
        grant_id: crate::state::new_id(&meta, "grant"),
        user_id: body.user_id.clone(),
        app_id: app_id.clone(),
        entitlement_id: ent.fields.entitlement_id.clone(),
        grant_type: "admin".into(),
        request_id: String::new(),
        starts_at_micros: meta.ctx.now_unix_micros,
        deprovision_at_micros: deprovision,
        provisioning: plan,
    };
    run(
        &state,
        &meta,
        &body.user_id,
        &id,
        AccessCommand::Grant {
            grant,
            app: facts,
            facts: grantable,
        },
        StatusCode::CREATED,
    )
    .await
}

/// Revokes the user's grant (admin, app owner).
#[utoipa::path(post, path = "/apps/{appId}/entitlements/{entitlementId}/users/{userId}/revoke", tag = "grants", request_body = Revoke,
    params(("appId" = String, Path, description = "App id"), ("entitlementId" = String, Path, description = "Entitlement id"), ("userId" = String, Path, description = "User id")),
    responses((status = 200, description = "The grant, with deletedAt", body = Grant), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn revoke(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path((app_id, id, user_id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, Problem> {
    let meta = meta(&principal, &headers)?;
    let reason = iga_http::json::optional_json::<Revoke>(&body)?.reason;
    entitlement(&state, &app_id, &id).await?;
    let (facts, _, _) = crate::refs::app_facts(&state, &app_id).await?;
    run(
        &state,
        &meta,
        &user_id,
        &id,
        AccessCommand::Revoke { reason, app: facts },
        StatusCode::OK,
    )
    .await
}

/// Sets when the user's grant ends (admin, app owner).
#[utoipa::path(post, path = "/apps/{appId}/entitlements/{entitlementId}/users/{userId}/update-grant-duration", tag = "grants", request_body = GrantDuration,
    params(("appId" = String, Path, description = "App id"), ("entitlementId" = String, Path, description = "Entitlement id"), ("userId" = String, Path, description = "User id")),
    responses((status = 200, description = "The grant", body = Grant), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn update_grant_duration(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path((app_id, id, user_id)): Path<(String, String, String)>,
    headers: HeaderMap,
    ApiJson(body, _): ApiJson<GrantDuration>,
) -> Result<Response, Problem> {
    let meta = meta(&principal, &headers)?;
    let at = iga_http::parse_rfc3339_micros("deprovisionAt", &body.deprovision_at)?;
    entitlement(&state, &app_id, &id).await?;
    let (facts, _, _) = crate::refs::app_facts(&state, &app_id).await?;
    let command = AccessCommand::ChangeDuration {
        deprovision_at_micros: at,
        app: facts,
    };
    run(&state, &meta, &user_id, &id, command, StatusCode::OK).await
}

/// Removes the end of the user's grant (admin, app owner).
#[utoipa::path(post, path = "/apps/{appId}/entitlements/{entitlementId}/users/{userId}/remove-grant-duration", tag = "grants",
    params(("appId" = String, Path, description = "App id"), ("entitlementId" = String, Path, description = "Entitlement id"), ("userId" = String, Path, description = "User id")),
    responses((status = 200, description = "The grant", body = Grant), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn remove_grant_duration(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path((app_id, id, user_id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let meta = meta(&principal, &headers)?;
    entitlement(&state, &app_id, &id).await?;
    let (facts, _, _) = crate::refs::app_facts(&state, &app_id).await?;
    let command = AccessCommand::ChangeDuration {
        deprovision_at_micros: 0,
        app: facts,
    };
    run(&state, &meta, &user_id, &id, command, StatusCode::OK).await
}
