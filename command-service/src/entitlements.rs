//! Writes of entitlements: create, update, delete, owners. Aliases are
//! claimed before the entitlement that holds them is written (and released
//! after it lets go), so two entitlements of an app never share one.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use iga_api::{self as model, parse_duration_seconds, ObjectMeta};
use iga_domain::app::{App, AppFacts};
use iga_domain::claim::{may_take_over, Holder};
use iga_domain::entitlement::{
    alias_key, builtin_access, AliasClaim, AliasCommand, Entitlement, EntitlementCommand,
    PURPOSE_ASSIGNMENT, PURPOSE_PERMISSION,
};
use iga_domain::resource::{Resource, ResourceType};
use iga_domain::{Aggregate, DomainError};
use iga_http::{object_response, ApiJson, Principal, Problem};
use iga_schemas::v1;
use serde::Deserialize;

use crate::state::{meta, new_id, CommandState};
use crate::{CommandError, CommandMeta, Outcome};

#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
pub enum Purpose {
    #[serde(rename = "APP_ENTITLEMENT_PURPOSE_VALUE_ASSIGNMENT")]
    Assignment,
    #[serde(rename = "APP_ENTITLEMENT_PURPOSE_VALUE_PERMISSION")]
    Permission,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Assignment => PURPOSE_ASSIGNMENT,
            Purpose::Permission => PURPOSE_PERMISSION,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateEntitlement {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff\\u001c-\\u001f]"
    )]
    pub display_name: String,
    #[serde(default)]
    #[schema(max_length = 4096)]
    pub description: String,
    /// Unique within the app, case-insensitively.
    #[serde(default)]
    #[schema(pattern = "^([A-Za-z0-9][A-Za-z0-9._-]{0,63})?$")]
    pub alias: String,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub slug: String,
    /// `APP_ENTITLEMENT_PURPOSE_VALUE_ASSIGNMENT` when absent.
    #[serde(default)]
    pub purpose: Option<Purpose>,
    #[serde(default)]
    #[schema(max_length = 128)]
    pub risk_level_value_id: Option<String>,
    #[serde(default)]
    #[schema(max_items = 32, value_type = Vec<model::ValueId>)]
    pub compliance_framework_value_ids: Vec<String>,
    /// Maximum grant duration, whole seconds: `"86400s"`. Absent: no maximum.
    #[serde(default)]
    #[schema(pattern = "^[0-9]{1,12}s$")]
    pub duration_grant: Option<String>,
    /// True when absent.
    #[serde(default)]
    pub requestable: Option<bool>,
    #[serde(default)]
    pub emergency_grant_enabled: bool,
    #[serde(default)]
    pub grant_policy_id: Option<String>,
    #[serde(default)]
    pub revoke_policy_id: Option<String>,
    #[serde(default)]
    pub app_resource_type_id: Option<String>,
    #[serde(default)]
    pub app_resource_id: Option<String>,
    #[serde(default)]
    #[schema(max_items = 100)]
    pub owner_ids: Vec<String>,
    /// Overrides its app's setting; absent: as its app.
    #[serde(default)]
    pub provisioning: Option<model::ProvisioningSetting>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateEntitlement {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff\\u001c-\\u001f]"
    )]
    pub display_name: Option<String>,
    #[schema(max_length = 4096)]
    pub description: Option<String>,
    #[schema(pattern = "^([A-Za-z0-9][A-Za-z0-9._-]{0,63})?$")]
    pub alias: Option<String>,
    #[schema(max_length = 200)]
    pub slug: Option<String>,
    pub purpose: Option<Purpose>,
    #[schema(max_length = 128)]
    pub risk_level_value_id: Option<String>,
    #[schema(max_items = 32, value_type = Option<Vec<model::ValueId>>)]
    pub compliance_framework_value_ids: Option<Vec<String>>,
    /// `"0s"` removes the maximum.
    #[schema(pattern = "^[0-9]{1,12}s$")]
    pub duration_grant: Option<String>,
    pub requestable: Option<bool>,
    pub emergency_grant_enabled: Option<bool>,
    pub grant_policy_id: Option<String>,
    pub revoke_policy_id: Option<String>,
    /// Replaces the override (mode `""`: as its app again).
    pub provisioning: Option<model::ProvisioningSetting>,
}

fn duration(text: Option<&str>) -> Result<Option<i64>, Problem> {
    text.map(|t| {
        parse_duration_seconds(t).ok_or_else(|| {
            Problem::bad_request(format!("durationGrant {t:?} is not a duration"))
                .with_field("durationGrant", "whole seconds, e.g. \"3600s\"")
        })
    })
    .transpose()
}

/// Maps missing-app / missing-entitlement errors to 404s naming the ids.
fn named(e: CommandError, app_id: &str, id: &str) -> Problem {
    match e {
        CommandError::Domain(DomainError::NotFound(what)) if what == "entitlement" => {
            Problem::not_found(format!("entitlement {id} of app {app_id} not found"))
        }
        other => other.for_aggregate("app", app_id),
    }
}

/// The entitlement as the API shows it after a write. The built-in one
/// counts as created with its app.
fn render(ent: &Entitlement, outcome: &Outcome, app_outcome: &Outcome) -> model::Entitlement {
    let created = if ent.fields.system_builtin {
        app_outcome.created_at_unix_micros
    } else {
        outcome.created_at_unix_micros
    };
    model::Entitlement::render(
        &ent.fields,
        ObjectMeta {
            created_at_micros: created,
            updated_at_micros: outcome.updated_at_unix_micros,
            deleted_at_micros: ent.deleted.then_some(outcome.updated_at_unix_micros),
            version: outcome.version,
        },
        0,
    )
}

/// Checks `command` against the entitlement as it stands (the app's built-in
/// one is implied until written), then, if it is allowed and the built-in one
/// is not in its stream yet, writes it there so the command finds it.
/// Answers the state the command was checked against.
async fn prepare(
    state: &CommandState,
    meta: &CommandMeta,
    app: &App,
    id: &str,
    command: &EntitlementCommand,
) -> Result<Entitlement, Problem> {
    let (mut current, _) = state.handler.load::<Entitlement>(id).await?;
    let builtin = !current.exists() && app.fields.access_entitlement_id == id;
    if builtin {
        current = Entitlement {
            fields: builtin_access(&app.fields),
            deleted: false,
        };
    }
    current
        .decide(command, &meta.ctx)
        .map_err(|e| named(e.into(), &app.fields.app_id, id))?;
    if builtin {
        let quiet = CommandMeta {
            idempotency_key: None,
            ..meta.for_side_stream()
        };
        let write = EntitlementCommand::MaterializeBuiltin(current.fields.clone());
        state
            .handler
            .execute::<Entitlement>(id, &write, &quiet)
            .await?;
    }
    Ok(current)
}

/// Writes the app's built-in entitlement to its stream (a no-op once there).
pub async fn write_builtin(
    state: &CommandState,
    meta: &CommandMeta,
    app: &App,
) -> Result<(), Problem> {
    let quiet = meta.for_side_stream();
    let write = EntitlementCommand::MaterializeBuiltin(builtin_access(&app.fields));
    state
        .handler
        .execute::<Entitlement>(&app.fields.access_entitlement_id, &write, &quiet)
        .await?;
    Ok(())
}

async fn claim_alias(
    state: &CommandState,
    meta: &CommandMeta,
    app_id: &str,
    alias: &str,
    entitlement_id: &str,
) -> Result<(), Problem> {
    let key = alias_key(app_id, alias);
    let (claim, at) = state.handler.snapshot::<AliasClaim>(&key).await?;
    let holder_gone = match &claim.holder {
        Some(h) if h != entitlement_id => {
            let (holder, _) = state.handler.load::<Entitlement>(h).await?;
            let found = if !holder.exists() {
                Holder::Missing
            } else if holder.deleted || !holder.fields.alias.eq_ignore_ascii_case(alias) {
                Holder::Gone
            } else {
                Holder::Live
            };
            may_take_over(found, at.updated_at_unix_micros, meta.ctx.now_unix_micros)
        }
        _ => false,
    };
    let command = AliasCommand::Claim {
        app_id: app_id.into(),
        alias: alias.into(),
        entitlement_id: entitlement_id.into(),
        holder_gone,
    };
    state
        .handler
        .execute::<AliasClaim>(&key, &command, &meta.for_side_stream())
        .await
        .map_err(|e| match e {
            CommandError::Domain(DomainError::AlreadyExists(what)) => {
                Problem::conflict(format!("{what} is taken")).with_field("alias", "taken")
            }
            other => other.into(),
        })?;
    Ok(())
}

async fn release_alias(
    state: &CommandState,
    meta: &CommandMeta,
    app_id: &str,
    alias: &str,
    entitlement_id: &str,
) -> Result<(), Problem> {
    if alias.is_empty() {
        return Ok(());
    }
    let command = AliasCommand::Release {
        app_id: app_id.into(),
        alias: alias.into(),
        entitlement_id: entitlement_id.into(),
    };
    state
        .handler
        .execute::<AliasClaim>(&alias_key(app_id, alias), &command, &meta.for_side_stream())
        .await?;
    Ok(())
}

/// Checks the resource type and resource an entitlement hangs off; answers
/// the resource type id (taken from the resource when only it is named).
async fn resource_refs(
    state: &CommandState,
    app_id: &str,
    type_id: &str,
    resource_id: &str,
) -> Result<String, Problem> {
    let mut type_id = type_id.to_string();
    if !resource_id.is_empty() {
        let (r, _) = state.handler.load::<Resource>(resource_id).await?;
        if !r.exists() || r.fields.app_id != app_id {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("resource {resource_id} is not in app {app_id}"),
            )
            .with_field("appResourceId", "no such resource in this app"));
        }
        if type_id.is_empty() {
            type_id = r.fields.resource_type_id.clone();
        } else if type_id != r.fields.resource_type_id {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "the resource is of another resource type",
            )
            .with_field("appResourceId", "not of appResourceTypeId"));
        }
    }
    if !type_id.is_empty() {
        let (t, _) = state.handler.load::<ResourceType>(&type_id).await?;
        if !t.exists() || t.fields.app_id != app_id {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("resource type {type_id} is not in app {app_id}"),
            )
            .with_field("appResourceTypeId", "no such resource type in this app"));
        }
    }
    Ok(type_id)
}

/// Creates an entitlement (admin, app owner).
#[utoipa::path(post, path = "/apps/{appId}/entitlements", tag = "catalog", request_body = CreateEntitlement,
    params(("appId" = String, Path, description = "App id")),
    responses((status = 201, description = "Created", body = model::Entitlement), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, description = "Alias taken", body = Problem)),
    security(("bearer" = [])))]
pub async fn create_entitlement(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path(app_id): Path<String>,
    headers: HeaderMap,
    ApiJson(body, _): ApiJson<CreateEntitlement>,
) -> Result<Response, Problem> {
    let meta = meta(&principal, &headers)?;
    let (facts, _, app_outcome) = crate::refs::app_facts(&state, &app_id).await?;
    let id = new_id(&meta, "entitlement");
    let fields = v1::AppEntitlementCreated {
        app_id: app_id.clone(),
        entitlement_id: id.clone(),
        display_name: body.display_name,
        description: body.description,
        alias: body.alias.trim().to_string(),
        slug: body.slug,
        purpose: body.purpose.unwrap_or(Purpose::Assignment).as_str().into(),
        risk_level_value_id: body.risk_level_value_id.unwrap_or_default(),
        compliance_framework_value_ids: body.compliance_framework_value_ids,
        duration_grant_seconds: duration(body.duration_grant.as_deref())?.unwrap_or(0),
        requestable: body.requestable.unwrap_or(true),
        emergency_grant_enabled: body.emergency_grant_enabled,
        grant_policy_id: body.grant_policy_id.unwrap_or_default(),
        revoke_policy_id: body.revoke_policy_id.unwrap_or_default(),
        app_resource_type_id: body.app_resource_type_id.unwrap_or_default(),
        app_resource_id: body.app_resource_id.unwrap_or_default(),
        owner_ids: iga_domain::app::dedup(body.owner_ids),
        system_builtin: false,
        provisioning: body.provisioning.as_ref().map(|p| p.to_event()),
    };
    let mut command = EntitlementCommand::Create {
        fields,
        app: facts.clone(),
    };
    // The aggregate's own checks first (who may, which fields), so a refused
    // request claims no alias and looks nothing up on the caller's behalf.
    Entitlement::default()
        .decide(&command, &meta.ctx)
        .map_err(|e| named(e.into(), &app_id, &id))?;
    let EntitlementCommand::Create { fields, .. } = &mut command else {
        unreachable!()
    };
    crate::refs::users_exist(&state, &fields.owner_ids, "ownerIds").await?;
    crate::refs::policy_exists(&state, &fields.grant_policy_id, "grantPolicyId").await?;
    crate::refs::policy_exists(&state, &fields.revoke_policy_id, "revokePolicyId").await?;
    crate::refs::provisioning_refs(&state, fields.provisioning.as_ref()).await?;
    fields.app_resource_type_id = resource_refs(
        &state,
        &app_id,
        &fields.app_resource_type_id,
        &fields.app_resource_id,
    )
    .await?;
    if !fields.alias.is_empty() {
        claim_alias(&state, &meta, &app_id, &fields.alias, &id).await?;
    }
    let (ent, outcome) = state
        .handler
        .execute::<Entitlement>(&id, &command, &meta)
        .await
        .map_err(|e| named(e, &app_id, &id))?;
    Ok(object_response(
        StatusCode::CREATED,
        outcome.version,
        Some(outcome.position),
        &render(&ent, &outcome, &app_outcome),
    ))
}

/// Updates an entitlement (admin, app owner, entitlement owner): only the fields present change.
#[utoipa::path(post, path = "/apps/{appId}/entitlements/{entitlementId}", tag = "catalog", request_body = UpdateEntitlement,
    params(("appId" = String, Path, description = "App id"), ("entitlementId" = String, Path, description = "Entitlement id"), ("If-Match" = Option<String>, Header, description = "Apply only at this ETag")),
    responses((status = 200, description = "Updated", body = model::Entitlement), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 412, body = Problem)),
    security(("bearer" = [])))]
pub async fn update_entitlement(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path((app_id, id)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(body, _): ApiJson<UpdateEntitlement>,
) -> Result<Response, Problem> {
    let meta = meta(&principal, &headers)?;
    let (facts, app, app_outcome) = crate::refs::app_facts(&state, &app_id).await?;
    let update = v1::AppEntitlementUpdated {
        app_id: app_id.clone(),
        entitlement_id: id.clone(),
        display_name: body.display_name,
        description: body.description,
        alias: body.alias.map(|a| a.trim().to_string()),
        slug: body.slug,
        purpose: body.purpose.map(|p| p.as_str().to_string()),
        risk_level_value_id: body.risk_level_value_id,
        compliance_framework_value_ids: body
            .compliance_framework_value_ids
            .map(|values| v1::StringList { values }),
        duration_grant_seconds: duration(body.duration_grant.as_deref())?,
        requestable: body.requestable,
        emergency_grant_enabled: body.emergency_grant_enabled,
        grant_policy_id: body.grant_policy_id,
        revoke_policy_id: body.revoke_policy_id,
        provisioning: body.provisioning.as_ref().map(|p| p.to_event()),
    };
    let command = EntitlementCommand::Update {
        update: update.clone(),
        app: facts,
    };
    let before = prepare(&state, &meta, &app, &id, &command).await?;
    crate::refs::policy_exists(
        &state,
        update.grant_policy_id.as_deref().unwrap_or(""),
        "grantPolicyId",
    )
    .await?;
    crate::refs::policy_exists(
        &state,
        update.revoke_policy_id.as_deref().unwrap_or(""),
        "revokePolicyId",
    )
    .await?;
    crate::refs::provisioning_refs(&state, update.provisioning.as_ref()).await?;
    let old_alias = before.fields.alias.clone();
    let new_alias = update.alias.clone().unwrap_or_else(|| old_alias.clone());
    let alias_changes = !new_alias.eq_ignore_ascii_case(&old_alias);
    if alias_changes && !new_alias.is_empty() {
        claim_alias(&state, &meta, &app_id, &new_alias, &id).await?;
    }
    let (ent, outcome) = state
        .handler
        .execute::<Entitlement>(&id, &command, &meta)
        .await
        .map_err(|e| named(e, &app_id, &id))?;
    if alias_changes && !ent.fields.alias.eq_ignore_ascii_case(&old_alias) {
        release_alias(&state, &meta, &app_id, &old_alias, &id).await?;
    }
    Ok(object_response(
        StatusCode::OK,
        outcome.version,
        Some(outcome.position),
        &render(&ent, &outcome, &app_outcome),
    ))
}

/// Deletes an entitlement (admin, app owner); its alias becomes free. History is kept.
#[utoipa::path(delete, path = "/apps/{appId}/entitlements/{entitlementId}", tag = "catalog",
    params(("appId" = String, Path, description = "App id"), ("entitlementId" = String, Path, description = "Entitlement id")),
    responses((status = 200, description = "Deleted, with deletedAt", body = model::Entitlement), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn delete_entitlement(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path((app_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let meta = meta(&principal, &headers)?;
    let (facts, app, app_outcome) = crate::refs::app_facts(&state, &app_id).await?;
    let command = EntitlementCommand::Delete { app: facts };
    prepare(&state, &meta, &app, &id, &command).await?;
    let (ent, outcome) = state
        .handler
        .execute::<Entitlement>(&id, &command, &meta)
        .await
        .map_err(|e| named(e, &app_id, &id))?;
    release_alias(&state, &meta, &app_id, &ent.fields.alias, &id).await?;
    Ok(object_response(
        StatusCode::OK,
        outcome.version,
        Some(outcome.position),
        &render(&ent, &outcome, &app_outcome),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetEntitlementOwners {
    #[schema(max_items = 100)]
    pub user_ids: Vec<String>,
}

async fn run_owners(
    state: &CommandState,
    principal: &Principal,
    headers: &HeaderMap,
    app_id: &str,
    id: &str,
    command: impl FnOnce(AppFacts) -> EntitlementCommand,
) -> Result<Response, Problem> {
    let meta = meta(principal, headers)?;
    let (facts, app, _) = crate::refs::app_facts(state, app_id).await?;
    let command = command(facts);
    prepare(state, &meta, &app, id, &command).await?;
    let (ent, outcome) = state
        .handler
        .execute::<Entitlement>(id, &command, &meta)
        .await
        .map_err(|e| named(e, app_id, id))?;
    crate::users::owners_answer(state, &ent.fields.owner_ids, &outcome).await
}

/// Replaces an entitlement's owners (admin, app owner).
#[utoipa::path(put, path = "/apps/{appId}/entitlements/{entitlementId}/owners", tag = "catalog", request_body = SetEntitlementOwners,
    params(("appId" = String, Path, description = "App id"), ("entitlementId" = String, Path, description = "Entitlement id")),
    responses((status = 200, description = "The owners", body = iga_http::page::Page<model::User>), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn set_entitlement_owners(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path((app_id, id)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(body, _): ApiJson<SetEntitlementOwners>,
) -> Result<Response, Problem> {
    crate::refs::users_exist(&state, &body.user_ids, "userIds").await?;
    run_owners(&state, &principal, &headers, &app_id, &id, |app| {
        EntitlementCommand::SetOwners {
            owners: body.user_ids,
            app,
        }
    })
    .await
}

/// Adds an owner (admin, app owner, entitlement owner).
#[utoipa::path(post, path = "/apps/{appId}/entitlements/{entitlementId}/owners/{userId}", tag = "catalog",
    params(("appId" = String, Path, description = "App id"), ("entitlementId" = String, Path, description = "Entitlement id"), ("userId" = String, Path, description = "User id")),
    responses((status = 200, description = "The owners", body = iga_http::page::Page<model::User>), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn add_entitlement_owner(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path((app_id, id, user_id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    crate::refs::users_exist(&state, std::slice::from_ref(&user_id), "userId").await?;
    run_owners(&state, &principal, &headers, &app_id, &id, |app| {
        EntitlementCommand::AddOwner { user: user_id, app }
    })
    .await
}

/// Removes an owner (admin, app owner, entitlement owner).
#[utoipa::path(delete, path = "/apps/{appId}/entitlements/{entitlementId}/owners/{userId}", tag = "catalog",
    params(("appId" = String, Path, description = "App id"), ("entitlementId" = String, Path, description = "Entitlement id"), ("userId" = String, Path, description = "User id")),
    responses((status = 200, description = "The owners", body = iga_http::page::Page<model::User>), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn remove_entitlement_owner(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path((app_id, id, user_id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    run_owners(&state, &principal, &headers, &app_id, &id, |app| {
        EntitlementCommand::RemoveOwner { user: user_id, app }
    })
    .await
}
