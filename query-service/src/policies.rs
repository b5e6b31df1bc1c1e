//! Reads of approval policies.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use iga_api::Policy;
use iga_http::page::{Page, PageParams};
use iga_http::{object_response, Problem};
use projection_service::policies::PolicyView;

use crate::page::internal;
use serde::Deserialize;

use crate::QueryState;

fn render(v: PolicyView) -> Policy {
    Policy::render(&v.id, &v.definition, v.meta)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct PolicyVersion {
    /// The policy as it was at this version (default: the current one).
    pub version: Option<u64>,
    /// Show it even if deleted (default false: a deleted policy is 404,
    /// unless a version is asked for).
    #[serde(default)]
    pub include_deleted: bool,
}

/// One policy, at its current version, at `?version=`, or as it was at `?at=`.
#[utoipa::path(get, path = "/policies/{id}", tag = "policies",
    params(("id" = String, Path, description = "Policy id"), PolicyVersion, crate::history::AsOf),
    responses((status = 200, description = "The policy", body = Policy), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn get_policy(
    State(state): State<QueryState>,
    Path(id): Path<String>,
    Query(at): Query<PolicyVersion>,
    Query(as_of): Query<crate::history::AsOf>,
) -> Result<Response, Problem> {
    if let Some(instant) = as_of.micros()? {
        let events =
            crate::history::events_until(&state, &[format!("policy-{id}")], instant).await?;
        let v = state
            .models
            .policy_after(&id, &events)
            .map_err(internal)?
            .ok_or_else(|| crate::history::not_yet(&format!("policy {id}"), &as_of))?;
        if v.meta.deleted_at_micros.is_some() && !at.include_deleted {
            return Err(Problem::not_found(format!(
                "policy {id} was deleted then (?includeDeleted=true shows it)"
            )));
        }
        return Ok(object_response(
            StatusCode::OK,
            v.meta.version,
            None,
            &render(v),
        ));
    }
    let policies = state.models.policies().map_err(internal)?;
    let found = match at.version {
        None => policies.get(&id),
        Some(v) => policies.at_version(&id, v),
    }
    .map_err(internal)?;
    let v = found.ok_or_else(|| match at.version {
        None => Problem::not_found(format!("policy {id} not found")),
        Some(v) => Problem::not_found(format!("version {v} of policy {id} not found")),
    })?;
    if v.meta.deleted_at_micros.is_some() && at.version.is_none() && !at.include_deleted {
        return Err(Problem::not_found(format!(
            "policy {id} is deleted (?includeDeleted=true shows it)"
        )));
    }
    Ok(object_response(
        StatusCode::OK,
        v.meta.version,
        None,
        &render(v),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct PolicyQuery {
    /// Include deleted policies (default false).
    #[serde(default)]
    pub include_deleted: bool,
}

/// Policies in id order.
#[utoipa::path(get, path = "/policies", tag = "policies", params(PolicyQuery, PageParams),
    responses((status = 200, description = "A page of policies", body = Page<Policy>), (status = 400, body = Problem)), security(("bearer" = [])))]
pub async fn list_policies(
    State(state): State<QueryState>,
    Query(filter): Query<PolicyQuery>,
    Query(page): Query<PageParams>,
) -> Result<Response, Problem> {
    let page = crate::page::list(
        &page,
        |window| {
            state.models.policies()?.page(window, |v: &PolicyView| {
                filter.include_deleted || v.meta.deleted_at_micros.is_none()
            })
        },
        render,
    )?;
    Ok(Json(page).into_response())
}
