//! What every write handler shares: [`CommandState`] (the handler and the
//! settings), and turning a request's principal and headers into
//! [`CommandMeta`], ids and a recorded `Idempotency-Key`.

use axum::http::HeaderMap;
use iga_domain::idempotency::{IdempotencyKey, UseKey};
use iga_domain::Context;
use iga_http::json::BodyDigest;
use iga_http::{Principal, Problem, IDEMPOTENCY_KEY};
use sha2::{Digest, Sha256};

use crate::{now_unix_micros, CommandHandler, CommandMeta};

#[derive(Clone)]
pub struct CommandState {
    pub handler: CommandHandler,
    pub requests: RequestSettings,
    /// Seals the secrets written to the log (webhook signing secrets).
    pub secrets: crate::secrets::SecretsKey,
}

/// Request-wide settings that are not per pair.
#[derive(Debug, Clone)]
pub struct RequestSettings {
    /// Risk levels whose entitlements need a justification on create.
    pub justification_risk_levels: Vec<String>,
}

/// A stable id for the aggregate a keyed request creates.
pub fn derived_id(kind: &str, key: &str) -> String {
    let digest = Sha256::digest(format!("{kind}\0{key}").as_bytes());
    let bytes: [u8; 16] = digest[..16].try_into().expect("16 bytes");
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// The id of the aggregate a create makes: derived from the Idempotency-Key
/// (so a retry addresses the same aggregate), else a fresh UUID v7.
pub fn new_id(meta: &CommandMeta, kind: &str) -> String {
    match &meta.idempotency_key {
        Some(key) => derived_id(kind, key),
        None => uuid::Uuid::now_v7().to_string(),
    }
}

/// Who asks, when, and the request's correlation and idempotency ids.
pub fn meta(principal: &Principal, headers: &HeaderMap) -> Result<CommandMeta, Problem> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    Ok(CommandMeta {
        expected_version: iga_http::if_match(headers)?,
        ctx: Context {
            actor_id: principal.user_id.clone(),
            actor_roles: principal.roles.clone(),
            now_unix_micros: now_unix_micros(),
        },
        correlation_id: header("x-request-id").unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
        // Scoped to the principal: two clients choosing the same key never collide.
        idempotency_key: header(IDEMPOTENCY_KEY)
            .filter(|k| !k.is_empty())
            .map(|k| format!("{}\0{k}", principal.user_id)),
    })
}

/// Records the request under its Idempotency-Key (if any) before it runs:
/// a repeat of the same request goes on (and is answered as the first one),
/// another request under the same key is 422.
pub async fn use_idempotency_key(
    state: &CommandState,
    meta: &CommandMeta,
    method: &str,
    path: &str,
    body: &BodyDigest,
) -> Result<(), Problem> {
    let Some(key) = &meta.idempotency_key else {
        return Ok(());
    };
    let request = hex::encode(Sha256::digest(
        format!("{method}\0{path}\0{}", body.0).as_bytes(),
    ));
    let stream = hex::encode(&Sha256::digest(key.as_bytes())[..16]);
    // The claim itself must not be deduplicated by the key it guards.
    let claim_meta = CommandMeta {
        idempotency_key: None,
        ..meta.for_side_stream()
    };
    state
        .handler
        .execute::<IdempotencyKey>(
            &stream,
            &UseKey {
                request_sha256_hex: request,
            },
            &claim_meta,
        )
        .await?;
    Ok(())
}
