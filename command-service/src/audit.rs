//! The verifiable log's writes: an admin or auditor asks for a checkpoint
//! now ([`request_checkpoint`]), and the notary (the `reactors` crate)
//! records the tree heads it signs ([`record_checkpoint`]). The rules are
//! the domain's (`iga_domain::audit`).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use iga_domain::audit::{AuditCheckpoints, CheckpointCommand, STREAM_ID};
use iga_http::{object_response, ApiJson, Principal, Problem};
use iga_schemas::v1;
use serde::{Deserialize, Serialize};

use crate::fulfilment::system_meta;
use crate::state::{meta, CommandState};
use crate::{CommandError, CommandHandler, Outcome};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckpointRequest {
    /// Why (kept in the log with the request).
    #[serde(default)]
    #[schema(max_length = 500)]
    pub reason: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointRequested {
    /// The log position of the request: the checkpoint signed for it covers
    /// it (`GET /audit/proof?position=` names its leaf index; the
    /// checkpoints after that index cover it).
    pub position: u64,
}

/// Asks the notary for a checkpoint now (admin, auditor). It is signed as
/// soon as the tree holds the request, and listed at `GET /audit/checkpoints`.
#[utoipa::path(post, path = "/audit/checkpoints", tag = "audit",
    request_body = CheckpointRequest,
    responses((status = 202, description = "Asked; the checkpoint follows", body = CheckpointRequested), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn request_checkpoint(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    ApiJson(body, _): ApiJson<CheckpointRequest>,
) -> Result<Response, Problem> {
    let meta = meta(&principal, &headers)?;
    let (_, outcome) = state
        .handler
        .execute::<AuditCheckpoints>(
            STREAM_ID,
            &CheckpointCommand::Request {
                reason: body.reason,
            },
            &meta,
        )
        .await?;
    Ok(object_response(
        StatusCode::ACCEPTED,
        outcome.version,
        Some(outcome.position),
        &CheckpointRequested {
            position: outcome.position,
        },
    ))
}

/// Records a tree head the notary signed (nothing when that size is signed
/// already, by another notary).
pub async fn record_checkpoint(
    handler: &CommandHandler,
    head: v1::AuditCheckpointSigned,
) -> Result<Outcome, CommandError> {
    let meta = system_meta(None, &format!("checkpoint-{}", head.tree_size));
    let (_, outcome) = handler
        .execute::<AuditCheckpoints>(STREAM_ID, &CheckpointCommand::Sign(Box::new(head)), &meta)
        .await?;
    Ok(outcome)
}
