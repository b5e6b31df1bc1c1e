//! The write API's plumbing: state, routes, and turning a request's
//! principal and headers into [`CommandMeta`].

use axum::http::HeaderMap;
use iga_domain::Context;
use iga_http::{Principal, Problem, IDEMPOTENCY_KEY};
use utoipa_axum::router::OpenApiRouter;

use crate::{now_unix_micros, CommandHandler, CommandMeta};

#[derive(Clone)]
pub struct CommandState {
    pub handler: CommandHandler,
}

/// The write routes (under `/api/v1`); the caller adds authentication.
pub fn routes(state: CommandState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(utoipa_axum::routes!(crate::users::create_user))
        .routes(utoipa_axum::routes!(crate::users::issue_token))
        .routes(utoipa_axum::routes!(crate::users::update_user))
        .with_state(state)
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
        idempotency_key: header(IDEMPOTENCY_KEY).filter(|k| !k.is_empty()),
    })
}
