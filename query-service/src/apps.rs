//! Reads of apps: one app, the list, and an app's versions.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use iga_api::{App, AppVersion};
use iga_http::page::{Page, PageParams};
use iga_http::{object_response, rfc3339, Problem};
use projection_service::apps::AppView;

use crate::page::internal;
use serde::Deserialize;

use crate::QueryState;

fn render(v: AppView) -> App {
    v.render()
}

pub(crate) fn existing(state: &QueryState, id: &str) -> Result<AppView, Problem> {
    state
        .models
        .apps()
        .and_then(|apps| apps.get(id))
        .map_err(internal)?
        .ok_or_else(|| Problem::not_found(format!("app {id} not found")))
}

/// The app, unless it is deleted and the caller did not ask for deleted ones:
/// a deleted app, and what is under it, answers 404 by default.
pub(crate) fn live(
    state: &QueryState,
    id: &str,
    show: &iga_http::page::ShowDeleted,
) -> Result<AppView, Problem> {
    let app = existing(state, id)?;
    if app.deleted_at_micros.is_some() && !show.include_deleted {
        return Err(Problem::not_found(format!(
            "app {id} is deleted (?includeDeleted=true shows it)"
        )));
    }
    Ok(app)
}

/// One app, now or as it was at `?at=`; a deleted one (with `deletedAt`)
/// only with `includeDeleted=true`.
#[utoipa::path(get, path = "/apps/{appId}", tag = "catalog", params(("appId" = String, Path, description = "App id"), iga_http::page::ShowDeleted, crate::history::AsOf),
    responses((status = 200, description = "The app", body = App), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn get_app(
    State(state): State<QueryState>,
    Path(id): Path<String>,
    Query(show): Query<iga_http::page::ShowDeleted>,
    Query(as_of): Query<crate::history::AsOf>,
) -> Result<Response, Problem> {
    let app = match as_of.micros()? {
        None => live(&state, &id, &show)?,
        Some(at) => {
            let events = crate::history::events_until(&state, &[format!("app-{id}")], at).await?;
            let app = state
                .models
                .app_after(&id, &events)
                .map_err(internal)?
                .ok_or_else(|| crate::history::not_yet(&format!("app {id}"), &as_of))?;
            if app.deleted_at_micros.is_some() && !show.include_deleted {
                return Err(Problem::not_found(format!(
                    "app {id} was deleted then (?includeDeleted=true shows it)"
                )));
            }
            app
        }
    };
    Ok(object_response(
        StatusCode::OK,
        app.version,
        None,
        &render(app),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AppQuery {
    /// Case-insensitive text found in the name or description.
    pub query: Option<String>,
    /// Include deleted apps (default false).
    #[serde(default)]
    pub include_deleted: bool,
}

/// Apps in id order, optionally filtered.
#[utoipa::path(get, path = "/apps", tag = "catalog", params(AppQuery, PageParams),
    responses((status = 200, description = "A page of apps", body = Page<App>), (status = 400, body = Problem)), security(("bearer" = [])))]
pub async fn list_apps(
    State(state): State<QueryState>,
    Query(filter): Query<AppQuery>,
    Query(page): Query<PageParams>,
) -> Result<Response, Problem> {
    let needle = filter.query.unwrap_or_default().to_lowercase();
    let page = crate::page::list(
        &page,
        |window| {
            state.models.apps()?.page(window, |v: &AppView| {
                (filter.include_deleted || v.deleted_at_micros.is_none())
                    && (needle.is_empty()
                        || v.fields.display_name.to_lowercase().contains(&needle)
                        || v.fields.description.to_lowercase().contains(&needle))
            })
        },
        render,
    )?;
    Ok(Json(page).into_response())
}

/// Every version of an app, oldest first.
#[utoipa::path(get, path = "/apps/{appId}/versions", tag = "catalog", params(("appId" = String, Path, description = "App id"), PageParams, iga_http::page::ShowDeleted),
    responses((status = 200, description = "A page of versions", body = Page<AppVersion>), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn list_app_versions(
    State(state): State<QueryState>,
    Path(id): Path<String>,
    Query(page): Query<PageParams>,
    Query(show): Query<iga_http::page::ShowDeleted>,
) -> Result<Response, Problem> {
    live(&state, &id, &show)?;
    let page = crate::page::list(
        &page,
        |window| state.models.apps()?.versions(&id, window),
        |v| AppVersion {
            version: v.version,
            changed_at: rfc3339(v.changed_at_micros),
            actor_id: v.actor_id,
            app: render(v.app),
        },
    )?;
    Ok(Json(page).into_response())
}

/// The users owning an app.
#[utoipa::path(get, path = "/apps/{appId}/owners", tag = "catalog", params(("appId" = String, Path, description = "App id"), iga_http::page::ShowDeleted),
    responses((status = 200, description = "The owners", body = Page<iga_api::User>), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn list_app_owners(
    State(state): State<QueryState>,
    Path(id): Path<String>,
    Query(show): Query<iga_http::page::ShowDeleted>,
) -> Result<Response, Problem> {
    let app = live(&state, &id, &show)?;
    Ok(Json(crate::users::users_named(&state, &app.fields.owner_ids)?).into_response())
}
