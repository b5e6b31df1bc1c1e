//! Writes of apps: create, update, lifecycle, delete, restore.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use iga_api::{self as model, ObjectMeta};
use iga_domain::app::{App, AppCommand};
use iga_http::{object_response, ApiJson, Principal, Problem};
use iga_schemas::v1;
use serde::Deserialize;

use crate::state::{meta, CommandState};
use crate::Outcome;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateApp {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff\\u001c-\\u001f]"
    )]
    pub display_name: String,
    #[serde(default)]
    #[schema(max_length = 4096)]
    pub description: String,
    #[serde(default)]
    #[schema(max_length = 2048)]
    pub icon_url: String,
    #[serde(default, deserialize_with = "iga_http::json::whole")]
    #[schema(minimum = 0)]
    pub monthly_cost_usd: i64,
    #[serde(default)]
    #[schema(max_length = 4096)]
    pub instructions: String,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub identity_matching: String,
    /// Okta `signOnMode`, e.g. `SAML_2_0`.
    #[serde(default)]
    #[schema(
        pattern = "^(|AUTO_LOGIN|BASIC_AUTH|BOOKMARK|BROWSER_PLUGIN|OPENID_CONNECT|SAML_1_1|SAML_2_0|SECURE_PASSWORD_STORE|WS_FEDERATION)$"
    )]
    pub sign_on_mode: String,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub configuration: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    pub grant_policy_id: Option<String>,
    #[serde(default)]
    pub revoke_policy_id: Option<String>,
    #[serde(default)]
    #[schema(max_items = 100)]
    pub owner_ids: Vec<String>,
    /// How its grants reach it; absent: only recorded.
    #[serde(default)]
    pub provisioning: Option<model::ProvisioningSetting>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateApp {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff\\u001c-\\u001f]"
    )]
    pub display_name: Option<String>,
    #[schema(max_length = 4096)]
    pub description: Option<String>,
    #[schema(max_length = 2048)]
    pub icon_url: Option<String>,
    #[schema(minimum = 0)]
    #[serde(default, deserialize_with = "iga_http::json::whole_opt")]
    pub monthly_cost_usd: Option<i64>,
    #[schema(max_length = 4096)]
    pub instructions: Option<String>,
    #[schema(max_length = 200)]
    pub identity_matching: Option<String>,
    #[schema(
        pattern = "^(|AUTO_LOGIN|BASIC_AUTH|BOOKMARK|BROWSER_PLUGIN|OPENID_CONNECT|SAML_1_1|SAML_2_0|SECURE_PASSWORD_STORE|WS_FEDERATION)$"
    )]
    pub sign_on_mode: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub configuration: Option<serde_json::Map<String, serde_json::Value>>,
    pub grant_policy_id: Option<String>,
    pub revoke_policy_id: Option<String>,
    /// Replaces how its grants reach it.
    pub provisioning: Option<model::ProvisioningSetting>,
}

/// Runs an app command; answers the app's new state.
async fn execute(
    state: &CommandState,
    meta: &crate::CommandMeta,
    app_id: &str,
    command: AppCommand,
) -> Result<(App, Outcome), Problem> {
    state
        .handler
        .execute::<App>(app_id, &command, meta)
        .await
        .map_err(|e| e.for_aggregate("app", app_id))
}

/// Runs an app command and answers the app as it now is.
async fn run(
    state: &CommandState,
    meta: &crate::CommandMeta,
    app_id: &str,
    command: AppCommand,
    status: StatusCode,
) -> Result<Response, Problem> {
    let (app, outcome) = execute(state, meta, app_id, command).await?;
    Ok(object_response(
        status,
        outcome.version,
        Some(outcome.position),
        &render(&app, &outcome),
    ))
}

pub fn render(app: &App, outcome: &Outcome) -> model::App {
    model::App::render(
        &app.fields,
        app.active,
        ObjectMeta {
            deleted_at_micros: app.deleted.then_some(outcome.updated_at_unix_micros),
            ..crate::resources::object_meta(outcome)
        },
    )
}

/// Creates an app (admin only), `ACTIVE`, with its built-in access entitlement.
#[utoipa::path(post, path = "/apps", tag = "catalog", request_body = CreateApp,
    responses((status = 201, description = "Created", body = model::App), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_app(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    ApiJson(body, _): ApiJson<CreateApp>,
) -> Result<Response, Problem> {
    let meta = meta(&principal, &headers)?;
    if principal.is_admin() {
        // (A non-admin is refused by the aggregate; no lookups on their behalf.)
        crate::refs::users_exist(&state, &body.owner_ids, "ownerIds").await?;
        crate::refs::policy_exists(
            &state,
            body.grant_policy_id.as_deref().unwrap_or(""),
            "grantPolicyId",
        )
        .await?;
        crate::refs::policy_exists(
            &state,
            body.revoke_policy_id.as_deref().unwrap_or(""),
            "revokePolicyId",
        )
        .await?;
    }
    let provisioning = body.provisioning.as_ref().map(|p| p.to_event());
    if principal.is_admin() {
        crate::refs::provisioning_refs(&state, provisioning.as_ref()).await?;
    }
    let (app_id, access_id) = match &meta.idempotency_key {
        Some(key) => (
            crate::state::derived_id("app", key),
            crate::state::derived_id("app-access", key),
        ),
        None => (
            uuid::Uuid::now_v7().to_string(),
            uuid::Uuid::now_v7().to_string(),
        ),
    };
    let created = v1::AppCreated {
        app_id: app_id.clone(),
        display_name: body.display_name,
        description: body.description,
        icon_url: body.icon_url,
        monthly_cost_usd: body.monthly_cost_usd,
        instructions: body.instructions,
        identity_matching: body.identity_matching,
        sign_on_mode: body.sign_on_mode,
        configuration_json: serde_json::Value::Object(body.configuration.unwrap_or_default())
            .to_string(),
        grant_policy_id: body.grant_policy_id.unwrap_or_default(),
        revoke_policy_id: body.revoke_policy_id.unwrap_or_default(),
        owner_ids: body.owner_ids,
        access_entitlement_id: access_id,
        provisioning,
    };
    let (app, outcome) = execute(&state, &meta, &app_id, AppCommand::Create(created)).await?;
    // Write the built-in access entitlement to its own stream now, so it can
    // be found by its id alone (requests name it so). Should this fail, it
    // is written on its first change instead; requests for the app still work.
    crate::entitlements::write_builtin(&state, &meta, &app).await?;
    Ok(object_response(
        StatusCode::CREATED,
        outcome.version,
        Some(outcome.position),
        &render(&app, &outcome),
    ))
}

/// Updates an app (admin, app owner): only the fields present change.
#[utoipa::path(post, path = "/apps/{appId}", tag = "catalog", request_body = UpdateApp,
    params(("appId" = String, Path, description = "App id"), ("If-Match" = Option<String>, Header, description = "Apply only at this ETag")),
    responses((status = 200, description = "Updated", body = model::App), (status = 404, body = Problem), (status = 409, body = Problem), (status = 412, body = Problem)),
    security(("bearer" = [])))]
pub async fn update_app(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body, _): ApiJson<UpdateApp>,
) -> Result<Response, Problem> {
    let meta = meta(&principal, &headers)?;
    crate::refs::policy_exists(
        &state,
        body.grant_policy_id.as_deref().unwrap_or(""),
        "grantPolicyId",
    )
    .await?;
    crate::refs::policy_exists(
        &state,
        body.revoke_policy_id.as_deref().unwrap_or(""),
        "revokePolicyId",
    )
    .await?;
    let provisioning = body.provisioning.as_ref().map(|p| p.to_event());
    crate::refs::provisioning_refs(&state, provisioning.as_ref()).await?;
    let update = v1::AppUpdated {
        app_id: id.clone(),
        display_name: body.display_name,
        description: body.description,
        icon_url: body.icon_url,
        monthly_cost_usd: body.monthly_cost_usd,
        instructions: body.instructions,
        identity_matching: body.identity_matching,
        sign_on_mode: body.sign_on_mode,
        configuration_json: body
            .configuration
            .map(|c| serde_json::Value::Object(c).to_string()),
        grant_policy_id: body.grant_policy_id,
        revoke_policy_id: body.revoke_policy_id,
        provisioning,
    };
    run(
        &state,
        &meta,
        &id,
        AppCommand::Update(update),
        StatusCode::OK,
    )
    .await
}

/// Activates an app (admin).
#[utoipa::path(post, path = "/apps/{appId}/lifecycle/activate", tag = "catalog", params(("appId" = String, Path, description = "App id")),
    responses((status = 200, description = "Active", body = model::App), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn activate_app(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    run(
        &state,
        &meta(&principal, &headers)?,
        &id,
        AppCommand::Activate,
        StatusCode::OK,
    )
    .await
}

/// Deactivates an app (admin).
#[utoipa::path(post, path = "/apps/{appId}/lifecycle/deactivate", tag = "catalog", params(("appId" = String, Path, description = "App id")),
    responses((status = 200, description = "Inactive", body = model::App), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn deactivate_app(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    run(
        &state,
        &meta(&principal, &headers)?,
        &id,
        AppCommand::Deactivate,
        StatusCode::OK,
    )
    .await
}

/// Deletes an app (admin): 409 unless it is `INACTIVE`. History is kept.
#[utoipa::path(delete, path = "/apps/{appId}", tag = "catalog", params(("appId" = String, Path, description = "App id")),
    responses((status = 200, description = "Deleted, with deletedAt", body = model::App), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn delete_app(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    run(
        &state,
        &meta(&principal, &headers)?,
        &id,
        AppCommand::Delete,
        StatusCode::OK,
    )
    .await
}

/// Restores the app's fields as they were at `version`, under a new version (admin, app owner).
#[utoipa::path(post, path = "/apps/{appId}/versions/{version}/restore", tag = "catalog",
    params(("appId" = String, Path, description = "App id"), ("version" = u64, Path, description = "Version to restore")),
    responses((status = 200, description = "Restored", body = model::App), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn restore_app(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path((id, version)): Path<(String, u64)>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    run(
        &state,
        &meta(&principal, &headers)?,
        &id,
        AppCommand::Restore { version },
        StatusCode::OK,
    )
    .await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetOwners {
    #[schema(max_items = 100)]
    pub user_ids: Vec<String>,
}

async fn run_owners(
    state: &CommandState,
    meta: &crate::CommandMeta,
    app_id: &str,
    command: AppCommand,
) -> Result<Response, Problem> {
    let (app, outcome) = execute(state, meta, app_id, command).await?;
    crate::users::owners_answer(state, &app.fields.owner_ids, &outcome).await
}

/// Replaces the app's owners (admin).
#[utoipa::path(put, path = "/apps/{appId}/owners", tag = "catalog", request_body = SetOwners,
    params(("appId" = String, Path, description = "App id")),
    responses((status = 200, description = "The owners", body = iga_http::page::Page<model::User>), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn set_app_owners(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body, _): ApiJson<SetOwners>,
) -> Result<Response, Problem> {
    let meta = meta(&principal, &headers)?;
    crate::refs::users_exist(&state, &body.user_ids, "userIds").await?;
    run_owners(&state, &meta, &id, AppCommand::SetOwners(body.user_ids)).await
}

/// Adds an owner (admin, app owner).
#[utoipa::path(post, path = "/apps/{appId}/owners/{userId}", tag = "catalog",
    params(("appId" = String, Path, description = "App id"), ("userId" = String, Path, description = "User id")),
    responses((status = 200, description = "The owners", body = iga_http::page::Page<model::User>), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn add_app_owner(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path((id, user_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let meta = meta(&principal, &headers)?;
    crate::refs::users_exist(&state, std::slice::from_ref(&user_id), "userId").await?;
    run_owners(&state, &meta, &id, AppCommand::AddOwner(user_id)).await
}

/// Removes an owner (admin, app owner).
#[utoipa::path(delete, path = "/apps/{appId}/owners/{userId}", tag = "catalog",
    params(("appId" = String, Path, description = "App id"), ("userId" = String, Path, description = "User id")),
    responses((status = 200, description = "The owners", body = iga_http::page::Page<model::User>), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn remove_app_owner(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path((id, user_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let meta = meta(&principal, &headers)?;
    run_owners(&state, &meta, &id, AppCommand::RemoveOwner(user_id)).await
}
