//! Reads of webhooks and their deliveries (admins and auditors): never a
//! secret, only where each delivery stands.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use iga_api::{Delivery, Webhook};
use iga_http::page::{Page, PageParams};
use iga_http::{object_response, Principal, Problem};
use projection_service::webhooks::WebhookView;
use serde::Deserialize;

use crate::page::internal;
use crate::QueryState;

fn reader(p: &Principal) -> Result<(), Problem> {
    crate::audit::admin_or_auditor(p, "webhooks")
}

fn render(v: WebhookView) -> Webhook {
    Webhook::render(&v.id, &v.url, &v.description, &v.event_types, v.meta)
}

fn existing(state: &QueryState, id: &str) -> Result<WebhookView, Problem> {
    state
        .models
        .webhooks()
        .and_then(|w| w.get(id))
        .map_err(internal)?
        .ok_or_else(|| Problem::not_found(format!("webhook {id} not found")))
}

/// Webhooks in id order (admin, auditor); deleted ones with `includeDeleted=true`.
#[utoipa::path(get, path = "/webhooks", tag = "webhooks", params(PageParams, iga_http::page::ShowDeleted),
    responses((status = 200, description = "A page of webhooks", body = Page<Webhook>), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_webhooks(
    State(state): State<QueryState>,
    Extension(principal): Extension<Principal>,
    Query(page): Query<PageParams>,
    Query(show): Query<iga_http::page::ShowDeleted>,
) -> Result<Response, Problem> {
    reader(&principal)?;
    let page = crate::page::list(
        &page,
        |window| {
            state
                .models
                .webhooks()?
                .page(window, |v| show.include_deleted || v.live())
        },
        render,
    )?;
    Ok(Json(page).into_response())
}

/// One webhook (admin, auditor).
#[utoipa::path(get, path = "/webhooks/{webhookId}", tag = "webhooks",
    params(("webhookId" = String, Path, description = "Webhook id")),
    responses((status = 200, description = "The webhook", body = Webhook), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_webhook(
    State(state): State<QueryState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    reader(&principal)?;
    let v = existing(&state, &id)?;
    Ok(object_response(
        StatusCode::OK,
        v.meta.version,
        None,
        &render(v),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryFilter {
    /// `pending`, `succeeded` or `failed`.
    #[param(pattern = "^(pending|succeeded|failed)$")]
    pub status: Option<String>,
}

/// A webhook's deliveries and where each stands (admin, auditor).
#[utoipa::path(get, path = "/webhooks/{webhookId}/deliveries", tag = "webhooks",
    params(("webhookId" = String, Path, description = "Webhook id"), DeliveryFilter, PageParams),
    responses((status = 200, description = "A page of deliveries", body = Page<Delivery>), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_deliveries(
    State(state): State<QueryState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    Query(filter): Query<DeliveryFilter>,
    Query(page): Query<PageParams>,
) -> Result<Response, Problem> {
    reader(&principal)?;
    if let Some(s) = filter.status.as_deref() {
        if !["pending", "succeeded", "failed"].contains(&s) {
            return Err(Problem::bad_request(format!(
                "status {s:?} is not pending, succeeded or failed"
            ))
            .with_field("status", "pending, succeeded or failed"));
        }
    }
    existing(&state, &id)?;
    let page = crate::page::list(
        &page,
        |window| {
            state.models.webhooks()?.deliveries(&id, window, |d| {
                filter.status.as_deref().is_none_or(|s| s == d.status)
            })
        },
        |d| d,
    )?;
    Ok(Json(page).into_response())
}
