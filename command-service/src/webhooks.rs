//! Write routes of webhooks: register (the secret is sealed before it is
//! written, and shown once), change, delete. The rules are the domain's
//! (`iga_domain::webhook`).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use iga_api::{ObjectMeta, RegisteredWebhook, Webhook as WebhookObject};
use iga_domain::webhook::{Webhook, WebhookCommand};
use iga_http::{object_response, ApiJson, Principal, Problem};
use iga_schemas::v1;
use serde::Deserialize;

use crate::secrets::{new_webhook_secret, valid_webhook_secret};
use crate::state::{meta, new_id, CommandState};
use crate::Outcome;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where to deliver: an http(s) URL with a host, without credentials.
    #[schema(min_length = 1, max_length = 2048)]
    pub url: String,
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub description: String,
    /// Event types to deliver as CloudEvents (`*`: all); none by default.
    #[serde(default)]
    #[schema(max_items = 64)]
    pub event_types: Vec<String>,
    /// `whsec_<base64 of 24 to 64 bytes>`; generated when absent.
    #[serde(default)]
    #[schema(max_length = 200, pattern = "^whsec_")]
    pub secret: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateWebhook {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 2048)]
    pub url: Option<String>,
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub description: Option<String>,
    #[serde(default)]
    #[schema(max_items = 64)]
    pub event_types: Option<Vec<String>>,
}

fn render(hook: &Webhook, outcome: &Outcome) -> WebhookObject {
    WebhookObject::render(
        &hook.id,
        &hook.url,
        &hook.description,
        &hook.event_types,
        ObjectMeta {
            deleted_at_micros: hook.deleted.then_some(outcome.updated_at_unix_micros),
            ..crate::resources::object_meta(outcome)
        },
    )
}

/// Registers a webhook (admin only); its secret is in this answer only.
#[utoipa::path(post, path = "/webhooks", tag = "webhooks", request_body = CreateWebhook,
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key answers the first outcome")),
    responses((status = 201, description = "Registered, with its secret", body = RegisteredWebhook), (status = 400, body = Problem), (status = 403, body = Problem), (status = 422, description = "A URL, event type or secret that cannot be used", body = Problem)),
    security(("bearer" = [])))]
pub async fn create_webhook(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    ApiJson(body, _): ApiJson<CreateWebhook>,
) -> Result<Response, Problem> {
    let meta = meta(&principal, &headers)?;
    let secret = match body.secret {
        Some(s) if !valid_webhook_secret(&s) => {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "secret is not a Standard Webhooks secret",
            )
            .with_field("secret", "whsec_ followed by base64 of 24 to 64 bytes"))
        }
        Some(s) => s,
        None => new_webhook_secret(),
    };
    let id = new_id(&meta, "webhook");
    let command = WebhookCommand::Register(v1::WebhookRegistered {
        webhook_id: id.clone(),
        url: body.url,
        description: body.description,
        event_types: body.event_types,
        secret_sealed: state.secrets.seal(secret.as_bytes()),
    });
    let (hook, outcome) = state
        .handler
        .execute::<Webhook>(&id, &command, &meta)
        .await?;
    // A retried keyed registration answers the secret it was given first.
    let secret = state
        .secrets
        .open(&hook.secret_sealed)
        .and_then(|s| String::from_utf8(s).ok())
        .ok_or_else(|| Problem::internal("the webhook's secret cannot be opened"))?;
    Ok(object_response(
        StatusCode::CREATED,
        outcome.version,
        Some(outcome.position),
        &RegisteredWebhook {
            webhook: render(&hook, &outcome),
            secret,
        },
    ))
}

/// Changes a webhook's URL, description or event types (admin only).
#[utoipa::path(post, path = "/webhooks/{webhookId}", tag = "webhooks", request_body = UpdateWebhook,
    params(("webhookId" = String, Path, description = "Webhook id")),
    responses((status = 200, description = "Updated", body = WebhookObject), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 412, body = Problem), (status = 422, description = "A URL or event type that cannot be used", body = Problem)),
    security(("bearer" = [])))]
pub async fn update_webhook(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body, _): ApiJson<UpdateWebhook>,
) -> Result<Response, Problem> {
    let meta = meta(&principal, &headers)?;
    let command = WebhookCommand::Update(v1::WebhookUpdated {
        webhook_id: id.clone(),
        url: body.url,
        description: body.description,
        event_types: body.event_types.map(|values| v1::StringList { values }),
    });
    let (hook, outcome) = state
        .handler
        .execute::<Webhook>(&id, &command, &meta)
        .await
        .map_err(|e| e.for_aggregate("webhook", &id))?;
    Ok(object_response(
        StatusCode::OK,
        outcome.version,
        Some(outcome.position),
        &render(&hook, &outcome),
    ))
}

/// Deletes a webhook (admin only): nothing more is delivered to it.
#[utoipa::path(delete, path = "/webhooks/{webhookId}", tag = "webhooks",
    params(("webhookId" = String, Path, description = "Webhook id")),
    responses((status = 200, description = "Deleted, with deletedAt", body = WebhookObject), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn delete_webhook(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let meta = meta(&principal, &headers)?;
    let (hook, outcome) = state
        .handler
        .execute::<Webhook>(&id, &WebhookCommand::Delete, &meta)
        .await
        .map_err(|e| e.for_aggregate("webhook", &id))?;
    Ok(object_response(
        StatusCode::OK,
        outcome.version,
        Some(outcome.position),
        &render(&hook, &outcome),
    ))
}

/// Tries a failed event delivery again (admin only): made anew from its
/// first attempt, under the same `webhook-id`, by the timer driver. A
/// provisioning task's delivery is retried through its task instead.
#[utoipa::path(post, path = "/webhooks/{webhookId}/deliveries/{deliveryId}/retry", tag = "webhooks",
    params(("webhookId" = String, Path, description = "Webhook id"), ("deliveryId" = String, Path, description = "Delivery id")),
    responses((status = 202, description = "Pending again", body = iga_api::Delivery), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, description = "Succeeded, or a provisioning task's", body = Problem)),
    security(("bearer" = [])))]
pub async fn retry_delivery(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path((webhook_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    use iga_domain::delivery::{Delivery, DeliveryCommand};
    let meta = meta(&principal, &headers)?;
    let not_found = || Problem::not_found(format!("delivery {id} not found"));
    if principal.is_admin() {
        // (Anyone else is refused by the aggregate, before any lookup.)
        let (found, _) = state.handler.load::<Delivery>(&id).await?;
        if !found.exists() || found.requested.webhook_id != webhook_id {
            return Err(not_found());
        }
    }
    let (delivery, outcome) = state
        .handler
        .execute::<Delivery>(&id, &DeliveryCommand::Retry, &meta)
        .await
        .map_err(|e| e.for_aggregate("delivery", &id))?;
    let r = &delivery.requested;
    let answer = iga_api::Delivery {
        id: r.delivery_id.clone(),
        webhook_id: r.webhook_id.clone(),
        kind: r.kind.clone(),
        subject_id: r.subject_id.clone(),
        status: "pending".into(),
        attempts: delivery.attempts,
        last_status: 0,
        last_error: delivery.last_error.clone(),
        next_attempt_at: None,
        created_at: iga_api::rfc3339(outcome.created_at_unix_micros),
        updated_at: iga_api::rfc3339(outcome.updated_at_unix_micros),
    };
    Ok(object_response(
        StatusCode::ACCEPTED,
        outcome.version,
        Some(outcome.position),
        &answer,
    ))
}
