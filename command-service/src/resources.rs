//! Writes of resource types and resources inside an app.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use iga_api::{self as model, ObjectMeta};
use iga_domain::resource::{CreateResource, CreateResourceType, Resource, ResourceType};
use iga_http::{object_response, ApiJson, Principal, Problem};
use iga_schemas::v1;
use serde::Deserialize;

use crate::state::{meta, new_id, CommandState};
use crate::{CommandError, Outcome};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateResourceTypeBody {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff\\u001c-\\u001f]"
    )]
    pub display_name: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateResourceBody {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff\\u001c-\\u001f]"
    )]
    pub display_name: String,
    #[serde(default)]
    #[schema(max_length = 4096)]
    pub description: String,
    /// Another resource of the same app.
    #[serde(default)]
    pub parent_app_resource_id: Option<String>,
}

pub fn object_meta(outcome: &Outcome) -> ObjectMeta {
    ObjectMeta {
        created_at_micros: outcome.created_at_unix_micros,
        updated_at_micros: outcome.updated_at_unix_micros,
        deleted_at_micros: None,
        version: outcome.version,
    }
}

/// Maps "app" / "resource type" not-found errors to 404s that name the ids.
fn named(e: CommandError, app_id: &str) -> Problem {
    e.for_aggregate("app", app_id)
}

/// Creates a resource type in an app (admin, app owner).
#[utoipa::path(post, path = "/apps/{appId}/resource_types", tag = "catalog", request_body = CreateResourceTypeBody,
    params(("appId" = String, Path, description = "App id")),
    responses((status = 201, description = "Created", body = model::ResourceType), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_resource_type(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path(app_id): Path<String>,
    headers: HeaderMap,
    ApiJson(body, _): ApiJson<CreateResourceTypeBody>,
) -> Result<Response, Problem> {
    let meta = meta(&principal, &headers)?;
    let (app, _, _) = crate::refs::app_facts(&state, &app_id).await?;
    let id = new_id(&meta, "resource_type");
    let command = CreateResourceType {
        created: v1::AppResourceTypeCreated {
            app_id: app_id.clone(),
            resource_type_id: id.clone(),
            display_name: body.display_name,
        },
        app,
    };
    let (rt, outcome) = state
        .handler
        .execute::<ResourceType>(&id, &command, &meta)
        .await
        .map_err(|e| named(e, &app_id))?;
    Ok(object_response(
        StatusCode::CREATED,
        outcome.version,
        Some(outcome.position),
        &model::ResourceType::render(&rt.fields, object_meta(&outcome)),
    ))
}

/// Creates a resource of a resource type (admin, app owner).
#[utoipa::path(post, path = "/apps/{appId}/resource_types/{typeId}/resources", tag = "catalog", request_body = CreateResourceBody,
    params(("appId" = String, Path, description = "App id"), ("typeId" = String, Path, description = "Resource type id")),
    responses((status = 201, description = "Created", body = model::Resource), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_resource(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path((app_id, type_id)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(body, _): ApiJson<CreateResourceBody>,
) -> Result<Response, Problem> {
    let meta = meta(&principal, &headers)?;
    let (app, _, _) = crate::refs::app_facts(&state, &app_id).await?;
    let (resource_type, _) = state.handler.load::<ResourceType>(&type_id).await?;
    let parent_id = body.parent_app_resource_id.unwrap_or_default();
    let parent = if parent_id.is_empty() {
        None
    } else {
        Some(state.handler.load::<Resource>(&parent_id).await?.0)
    };
    let id = new_id(&meta, "resource");
    let command = CreateResource {
        created: v1::AppResourceCreated {
            app_id: app_id.clone(),
            resource_type_id: type_id,
            resource_id: id.clone(),
            display_name: body.display_name,
            description: body.description,
            parent_app_resource_id: parent_id,
        },
        app,
        resource_type,
        parent,
    };
    let (r, outcome) = state
        .handler
        .execute::<Resource>(&id, &command, &meta)
        .await
        .map_err(|e| named(e, &app_id))?;
    Ok(object_response(
        StatusCode::CREATED,
        outcome.version,
        Some(outcome.position),
        &model::Resource::render(&r.fields, object_meta(&outcome)),
    ))
}
