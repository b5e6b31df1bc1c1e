//! Reads of what is inside an app: resource types, resources, entitlements
//! and entitlement owners.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use iga_api::{Entitlement, Resource, ResourceType};
use iga_http::page::{Page, PageParams};
use iga_http::{object_response, Problem};
use projection_service::entitlements::{EntitlementView, ResourceTypeView, ResourceView};
use projection_service::queries::Entitlements;
use serde::Deserialize;

use crate::QueryState;

pub fn render_entitlement(v: EntitlementView) -> Entitlement {
    v.render()
}

fn render_type(v: ResourceTypeView) -> ResourceType {
    ResourceType::render(&v.fields, v.meta)
}

fn render_resource(v: ResourceView) -> Resource {
    Resource::render(&v.fields, v.meta)
}

fn catalog(state: &QueryState) -> Result<Entitlements<'_>, Problem> {
    state.models.entitlements().map_err(internal)
}

use crate::page::internal;

/// 404 unless the app exists (deleted apps still answer: history is kept).
fn app_exists(state: &QueryState, app_id: &str) -> Result<(), Problem> {
    crate::apps::existing(state, app_id).map(|_| ())
}

pub(crate) fn entitlement(
    state: &QueryState,
    app_id: &str,
    id: &str,
) -> Result<EntitlementView, Problem> {
    catalog(state)?
        .entitlement(app_id, id)
        .map_err(internal)?
        .ok_or_else(|| Problem::not_found(format!("entitlement {id} of app {app_id} not found")))
}

/// One entitlement, now or as it was at `?at=` (its `grantCount` then: the
/// grants of it held at that instant); a deleted one (with `deletedAt`) only
/// with `includeDeleted=true`.
#[utoipa::path(get, path = "/apps/{appId}/entitlements/{entitlementId}", tag = "catalog",
    params(("appId" = String, Path, description = "App id"), ("entitlementId" = String, Path, description = "Entitlement id"), iga_http::page::ShowDeleted, crate::history::AsOf),
    responses((status = 200, description = "The entitlement", body = Entitlement), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn get_entitlement(
    State(state): State<QueryState>,
    Path((app_id, id)): Path<(String, String)>,
    Query(show): Query<iga_http::page::ShowDeleted>,
    Query(as_of): Query<crate::history::AsOf>,
) -> Result<Response, Problem> {
    let v = match as_of.micros()? {
        None => entitlement(&state, &app_id, &id)?,
        Some(at) => entitlement_at(&state, &app_id, &id, at, &as_of).await?,
    };
    if v.meta.deleted_at_micros.is_some() && !show.include_deleted {
        return Err(Problem::not_found(format!(
            "entitlement {id} of app {app_id} is deleted (?includeDeleted=true shows it)"
        )));
    }
    Ok(object_response(
        StatusCode::OK,
        v.meta.version,
        None,
        &render_entitlement(v),
    ))
}

/// The entitlement as it was at `at`: its app's and its own events folded,
/// and the grants of it held then counted from the grant ledger.
async fn entitlement_at(
    state: &QueryState,
    app_id: &str,
    id: &str,
    at: i64,
    as_of: &crate::history::AsOf,
) -> Result<projection_service::entitlements::EntitlementView, Problem> {
    let streams = [format!("app-{app_id}"), format!("entitlement-{id}")];
    let events = crate::history::events_until(state, &streams, at).await?;
    let mut v = state
        .models
        .entitlement_after(app_id, id, &events)
        .map_err(internal)?
        .ok_or_else(|| {
            crate::history::not_yet(&format!("entitlement {id} of app {app_id}"), as_of)
        })?;
    let instant = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at) * 1000)
        .map_err(|e| Problem::bad_request(format!("at: {e}")))?;
    let grants = state.models.grants().map_err(internal)?;
    let scope = projection_service::grants::GrantScope::Entitlement(id.to_string());
    let mut after: Option<Vec<u8>> = None;
    let mut held = 0u64;
    loop {
        let page = grants
            .page(
                &scope,
                projection_service::queries::Window {
                    after: after.as_deref(),
                    size: 1000,
                },
                |g| g.active_at(instant),
            )
            .map_err(internal)?;
        held += page.items.len() as u64;
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    v.grant_count = held;
    Ok(v)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct EntitlementQuery {
    /// Exact alias (case-insensitive).
    pub alias: Option<String>,
    /// Include deleted entitlements (default false).
    #[serde(default)]
    pub include_deleted: bool,
}

/// The entitlements of an app, in id order (the built-in one included).
#[utoipa::path(get, path = "/apps/{appId}/entitlements", tag = "catalog",
    params(("appId" = String, Path, description = "App id"), EntitlementQuery, PageParams),
    responses((status = 200, description = "A page of entitlements", body = Page<Entitlement>), (status = 400, body = Problem), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn list_entitlements(
    State(state): State<QueryState>,
    Path(app_id): Path<String>,
    Query(filter): Query<EntitlementQuery>,
    Query(page): Query<PageParams>,
) -> Result<Response, Problem> {
    app_exists(&state, &app_id)?;
    let page = crate::page::list(
        &page,
        |window| {
            state.models.entitlements()?.page(&app_id, window, |v| {
                (filter.include_deleted || v.meta.deleted_at_micros.is_none())
                    && filter
                        .alias
                        .as_deref()
                        .is_none_or(|a| v.fields.alias.eq_ignore_ascii_case(a))
            })
        },
        render_entitlement,
    )?;
    Ok(Json(page).into_response())
}

/// The users owning an entitlement.
#[utoipa::path(get, path = "/apps/{appId}/entitlements/{entitlementId}/owners", tag = "catalog",
    params(("appId" = String, Path, description = "App id"), ("entitlementId" = String, Path, description = "Entitlement id")),
    responses((status = 200, description = "The owners", body = Page<iga_api::User>), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn list_entitlement_owners(
    State(state): State<QueryState>,
    Path((app_id, id)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let v = entitlement(&state, &app_id, &id)?;
    Ok(Json(crate::users::users_named(&state, &v.fields.owner_ids)?).into_response())
}

/// One resource type.
#[utoipa::path(get, path = "/apps/{appId}/resource_types/{typeId}", tag = "catalog",
    params(("appId" = String, Path, description = "App id"), ("typeId" = String, Path, description = "Resource type id")),
    responses((status = 200, description = "The resource type", body = ResourceType), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn get_resource_type(
    State(state): State<QueryState>,
    Path((app_id, id)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let v = catalog(&state)?
        .resource_type(&app_id, &id)
        .map_err(internal)?
        .ok_or_else(|| {
            Problem::not_found(format!("resource type {id} of app {app_id} not found"))
        })?;
    Ok(object_response(
        StatusCode::OK,
        v.meta.version,
        None,
        &render_type(v),
    ))
}

/// The resource types of an app.
#[utoipa::path(get, path = "/apps/{appId}/resource_types", tag = "catalog",
    params(("appId" = String, Path, description = "App id"), PageParams),
    responses((status = 200, description = "A page of resource types", body = Page<ResourceType>), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn list_resource_types(
    State(state): State<QueryState>,
    Path(app_id): Path<String>,
    Query(page): Query<PageParams>,
) -> Result<Response, Problem> {
    app_exists(&state, &app_id)?;
    let page = crate::page::list(
        &page,
        |window| {
            state
                .models
                .entitlements()?
                .resource_types(&app_id, window, |_| true)
        },
        render_type,
    )?;
    Ok(Json(page).into_response())
}

/// One resource.
#[utoipa::path(get, path = "/apps/{appId}/resource_types/{typeId}/resources/{resourceId}", tag = "catalog",
    params(("appId" = String, Path, description = "App id"), ("typeId" = String, Path, description = "Resource type id"), ("resourceId" = String, Path, description = "Resource id")),
    responses((status = 200, description = "The resource", body = Resource), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn get_resource(
    State(state): State<QueryState>,
    Path((app_id, type_id, id)): Path<(String, String, String)>,
) -> Result<Response, Problem> {
    let v = catalog(&state)?
        .resource(&app_id, &type_id, &id)
        .map_err(internal)?
        .ok_or_else(|| {
            Problem::not_found(format!(
                "resource {id} of resource type {type_id} not found"
            ))
        })?;
    Ok(object_response(
        StatusCode::OK,
        v.meta.version,
        None,
        &render_resource(v),
    ))
}

/// The resources of a resource type.
#[utoipa::path(get, path = "/apps/{appId}/resource_types/{typeId}/resources", tag = "catalog",
    params(("appId" = String, Path, description = "App id"), ("typeId" = String, Path, description = "Resource type id"), PageParams),
    responses((status = 200, description = "A page of resources", body = Page<Resource>), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn list_resources(
    State(state): State<QueryState>,
    Path((app_id, type_id)): Path<(String, String)>,
    Query(page): Query<PageParams>,
) -> Result<Response, Problem> {
    catalog(&state)?
        .resource_type(&app_id, &type_id)
        .map_err(internal)?
        .ok_or_else(|| {
            Problem::not_found(format!("resource type {type_id} of app {app_id} not found"))
        })?;
    let page = crate::page::list(
        &page,
        |window| {
            state
                .models
                .entitlements()?
                .resources(&app_id, &type_id, window, |_| true)
        },
        render_resource,
    )?;
    Ok(Json(page).into_response())
}
