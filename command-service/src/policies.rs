//! Writes of approval policies: create, update (a new version), delete.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use iga_api::{self as model, ObjectMeta};
use iga_domain::policy::{Policy, PolicyCommand, PolicyPatch};
use iga_http::{object_response, ApiJson, Principal, Problem};
use iga_schemas::v1;
use serde::Deserialize;

use crate::state::{meta, new_id, CommandState};
use crate::{CommandMeta, Outcome};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreatePolicy {
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
    pub allow_self_approval: bool,
    #[serde(default)]
    pub auto_approve: bool,
    /// In order; may be empty only when `autoApprove` is true.
    #[schema(max_items = 10)]
    pub steps: Vec<model::PolicyStep>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdatePolicy {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff\\u001c-\\u001f]"
    )]
    pub display_name: Option<String>,
    #[schema(max_length = 4096)]
    pub description: Option<String>,
    pub allow_self_approval: Option<bool>,
    pub auto_approve: Option<bool>,
    /// Replaces every step.
    #[schema(max_items = 10)]
    pub steps: Option<Vec<model::PolicyStep>>,
}

fn render(policy: &Policy, outcome: &Outcome) -> model::Policy {
    model::Policy::render(
        &policy.id,
        &policy.definition,
        ObjectMeta {
            created_at_micros: outcome.created_at_unix_micros,
            updated_at_micros: outcome.updated_at_unix_micros,
            deleted_at_micros: policy.deleted.then_some(outcome.updated_at_unix_micros),
            version: outcome.version,
        },
    )
}

/// Refuses `USERS` approvers that name no user.
async fn approvers_exist(state: &CommandState, steps: &[model::PolicyStep]) -> Result<(), Problem> {
    for (i, step) in steps.iter().enumerate() {
        let field = format!("steps[{i}].approvers.userIds");
        crate::refs::users_exist(state, &step.approvers.user_ids, &field).await?;
    }
    Ok(())
}

async fn run(
    state: &CommandState,
    meta: &CommandMeta,
    id: &str,
    command: PolicyCommand,
    status: StatusCode,
) -> Result<Response, Problem> {
    let (policy, outcome) = state
        .handler
        .execute::<Policy>(id, &command, meta)
        .await
        .map_err(|e| e.for_aggregate("policy", id))?;
    Ok(object_response(
        status,
        outcome.version,
        Some(outcome.position),
        &render(&policy, &outcome),
    ))
}

/// Creates an approval policy (admin).
#[utoipa::path(post, path = "/policies", tag = "policies", request_body = CreatePolicy,
    responses((status = 201, description = "Created", body = model::Policy), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_policy(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    ApiJson(body, _): ApiJson<CreatePolicy>,
) -> Result<Response, Problem> {
    if !principal.is_admin() {
        return Err(Problem::forbidden("only an admin creates policies"));
    }
    let meta = meta(&principal, &headers)?;
    approvers_exist(&state, &body.steps).await?;
    let id = new_id(&meta, "policy");
    let definition = v1::PolicyDefinition {
        display_name: body.display_name,
        description: body.description,
        allow_self_approval: body.allow_self_approval,
        auto_approve: body.auto_approve,
        steps: body.steps.iter().map(model::PolicyStep::to_proto).collect(),
    };
    let command = PolicyCommand::Create {
        policy_id: id.clone(),
        definition,
    };
    run(&state, &meta, &id, command, StatusCode::CREATED).await
}

/// Updates a policy (admin): the whole result is its next version.
#[utoipa::path(post, path = "/policies/{id}", tag = "policies", request_body = UpdatePolicy,
    params(("id" = String, Path, description = "Policy id"), ("If-Match" = Option<String>, Header, description = "Apply only at this ETag")),
    responses((status = 200, description = "Updated", body = model::Policy), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 412, body = Problem)),
    security(("bearer" = [])))]
pub async fn update_policy(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body, _): ApiJson<UpdatePolicy>,
) -> Result<Response, Problem> {
    if !principal.is_admin() {
        return Err(Problem::forbidden("only an admin changes policies"));
    }
    let meta = meta(&principal, &headers)?;
    if let Some(steps) = &body.steps {
        approvers_exist(&state, steps).await?;
    }
    let patch = PolicyPatch {
        display_name: body.display_name,
        description: body.description,
        allow_self_approval: body.allow_self_approval,
        auto_approve: body.auto_approve,
        steps: body
            .steps
            .map(|s| s.iter().map(model::PolicyStep::to_proto).collect()),
    };
    run(
        &state,
        &meta,
        &id,
        PolicyCommand::Update(patch),
        StatusCode::OK,
    )
    .await
}

/// Deletes a policy (admin). Requests created under it keep their snapshot.
#[utoipa::path(delete, path = "/policies/{id}", tag = "policies",
    params(("id" = String, Path, description = "Policy id")),
    responses((status = 200, description = "Deleted, with deletedAt", body = model::Policy), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn delete_policy(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let meta = meta(&principal, &headers)?;
    run(&state, &meta, &id, PolicyCommand::Delete, StatusCode::OK).await
}
