//! Reads of apps: one app, the list, and an app's versions.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use iga_http::model::{App, AppMeta, AppVersion};
use iga_http::page::{Page, PageParams};
use iga_http::{object_response, rfc3339, Problem};
use projection_service::apps::{version_prefix, AppCatalog, AppVersionView, AppView, NAME};
use serde::Deserialize;

use crate::QueryState;

fn render(v: AppView) -> App {
    App::render(
        &v.fields,
        AppMeta {
            active: v.active,
            created_at_micros: v.created_at_micros,
            updated_at_micros: v.updated_at_micros,
            deleted_at_micros: v.deleted_at_micros,
            version: v.version,
        },
    )
}

fn tree(state: &QueryState) -> Result<&sled::Tree, Problem> {
    state
        .models
        .tree(NAME)
        .ok_or_else(|| Problem::internal("apps read model missing"))
}

pub(crate) fn existing(state: &QueryState, id: &str) -> Result<AppView, Problem> {
    AppCatalog::get(tree(state)?, id)
        .map_err(|e| Problem::internal(e.to_string()))?
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

/// One app; a deleted one (with `deletedAt`) only with `includeDeleted=true`.
#[utoipa::path(get, path = "/apps/{appId}", tag = "catalog", params(("appId" = String, Path, description = "App id"), iga_http::page::ShowDeleted),
    responses((status = 200, description = "The app", body = App), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn get_app(
    State(state): State<QueryState>,
    Path(id): Path<String>,
    Query(show): Query<iga_http::page::ShowDeleted>,
) -> Result<Response, Problem> {
    let app = live(&state, &id, &show)?;
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
    let page = crate::page::page_over(
        tree(&state)?,
        b"a/",
        &page,
        |v: &AppView| {
            (filter.include_deleted || v.deleted_at_micros.is_none())
                && (needle.is_empty()
                    || v.fields.display_name.to_lowercase().contains(&needle)
                    || v.fields.description.to_lowercase().contains(&needle))
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
    let page = crate::page::page_over(
        tree(&state)?,
        &version_prefix(&id),
        &page,
        |_: &AppVersionView| true,
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
    responses((status = 200, description = "The owners", body = Page<iga_http::model::User>), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn list_app_owners(
    State(state): State<QueryState>,
    Path(id): Path<String>,
    Query(show): Query<iga_http::page::ShowDeleted>,
) -> Result<Response, Problem> {
    let app = live(&state, &id, &show)?;
    Ok(Json(crate::users::users_named(&state, &app.fields.owner_ids)?).into_response())
}

/// Middleware: what is under an app (`/apps/{appId}/...`: its entitlements,
/// their grants and owners, resource types, resources, versions, owners), and
/// what is under an entitlement (`.../entitlements/{id}/...`), answers 404
/// once the app or entitlement is deleted, as they do, unless the read asks
/// for deleted things (`includeDeleted=true`); and 404 for one that never
/// existed.
pub async fn hide_what_is_under_deleted_apps(
    State(state): State<QueryState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let path = req.uri().path().to_string();
    let mut segments = path.split('/').skip_while(|s| *s != "apps").skip(1);
    let (Some(app_id), Some(under)) = (segments.next(), segments.next()) else {
        return next.run(req).await;
    };
    let app_id = decode(app_id);
    let show = iga_http::page::ShowDeleted {
        include_deleted: req
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|p| p == "includeDeleted=true")),
    };
    if let Err(p) = live(&state, &app_id, &show) {
        return p.into_response();
    }
    if under == "entitlements" {
        if let (Some(id), Some(_)) = (segments.next(), segments.next()) {
            let id = decode(id);
            match crate::entitlements::entitlement(&state, &app_id, &id) {
                Ok(e) if e.meta.deleted_at_micros.is_none() || show.include_deleted => {}
                Ok(_) => {
                    return Problem::not_found(format!(
                    "entitlement {id} of app {app_id} is deleted (?includeDeleted=true shows it)"
                ))
                    .into_response()
                }
                Err(p) => return p.into_response(),
            }
        }
    }
    next.run(req).await
}
