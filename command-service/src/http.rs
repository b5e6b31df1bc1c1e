//! The write routes, and the `Idempotency-Key` middleware every one of them
//! runs behind. The state they share is in [`crate::state`].

use iga_http::json::BodyDigest;
use iga_http::{Principal, Problem, IDEMPOTENCY_KEY};
use sha2::{Digest, Sha256};
use utoipa_axum::router::OpenApiRouter;

use crate::state::{meta, use_idempotency_key, CommandState};

/// The write routes (under `/api/v1`); the caller adds authentication.
pub fn routes(state: CommandState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(utoipa_axum::routes!(crate::users::create_user))
        .routes(utoipa_axum::routes!(crate::users::issue_token))
        .routes(utoipa_axum::routes!(crate::users::revoke_token))
        .routes(utoipa_axum::routes!(crate::users::update_user))
        .routes(utoipa_axum::routes!(crate::apps::create_app))
        .routes(utoipa_axum::routes!(
            crate::apps::update_app,
            crate::apps::delete_app
        ))
        .routes(utoipa_axum::routes!(crate::apps::activate_app))
        .routes(utoipa_axum::routes!(crate::apps::deactivate_app))
        .routes(utoipa_axum::routes!(crate::apps::restore_app))
        .routes(utoipa_axum::routes!(crate::apps::set_app_owners))
        .routes(utoipa_axum::routes!(
            crate::apps::add_app_owner,
            crate::apps::remove_app_owner
        ))
        .routes(utoipa_axum::routes!(crate::resources::create_resource_type))
        .routes(utoipa_axum::routes!(crate::resources::create_resource))
        .routes(utoipa_axum::routes!(
            crate::entitlements::create_entitlement
        ))
        .routes(utoipa_axum::routes!(
            crate::entitlements::update_entitlement,
            crate::entitlements::delete_entitlement
        ))
        .routes(utoipa_axum::routes!(
            crate::entitlements::set_entitlement_owners
        ))
        .routes(utoipa_axum::routes!(
            crate::entitlements::add_entitlement_owner,
            crate::entitlements::remove_entitlement_owner
        ))
        .routes(utoipa_axum::routes!(crate::policies::create_policy))
        .routes(utoipa_axum::routes!(
            crate::policies::update_policy,
            crate::policies::delete_policy
        ))
        .routes(utoipa_axum::routes!(crate::requests::create_requests))
        .routes(utoipa_axum::routes!(crate::requests::validate_requests))
        .routes(utoipa_axum::routes!(crate::requests::approve))
        .routes(utoipa_axum::routes!(crate::requests::reject))
        .routes(utoipa_axum::routes!(crate::requests::comment))
        .routes(utoipa_axum::routes!(crate::requests::reassign))
        .routes(utoipa_axum::routes!(crate::requests::modify))
        .routes(utoipa_axum::routes!(crate::requests::cancel))
        .routes(utoipa_axum::routes!(crate::webhooks::create_webhook))
        .routes(utoipa_axum::routes!(crate::webhooks::retry_delivery))
        .routes(utoipa_axum::routes!(crate::provisioning::complete_task))
        .routes(utoipa_axum::routes!(crate::provisioning::retry_task))
        .routes(utoipa_axum::routes!(
            crate::webhooks::update_webhook,
            crate::webhooks::delete_webhook
        ))
        .routes(utoipa_axum::routes!(crate::audit::request_checkpoint))
        .routes(utoipa_axum::routes!(crate::reviews::create_review))
        .routes(utoipa_axum::routes!(crate::reviews::launch_review))
        .routes(utoipa_axum::routes!(crate::reviews::close_review))
        .routes(utoipa_axum::routes!(crate::reviews::decide_item))
        .routes(utoipa_axum::routes!(crate::reviews::decide_items))
        .routes(utoipa_axum::routes!(crate::reviews::reassign_item))
        .routes(utoipa_axum::routes!(crate::reviews::comment_item))
        .routes(utoipa_axum::routes!(crate::grants::add_manual_user))
        .routes(utoipa_axum::routes!(crate::grants::revoke))
        .routes(utoipa_axum::routes!(crate::grants::update_grant_duration))
        .routes(utoipa_axum::routes!(crate::grants::remove_grant_duration))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            record_idempotency_key,
        ))
        .route_layer(axum::middleware::from_fn(one_command))
        .with_state(state)
}

/// Each write call is one command for the handler's reads (see
/// [`crate::CommandHandler::scoped`]): a stream it loads twice is asked after once.
async fn one_command(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    crate::CommandHandler::scoped(next.run(req)).await
}

/// Most bytes of a keyed request's body that are read to digest it.
const MAX_KEYED_BODY: usize = 16 * 1024 * 1024;

/// The `Idempotency-Key` convention, for every write route: a keyed POST is
/// recorded (method, path and body digest) before its handler runs, so the
/// same key with another request answers 422 whatever the route, and the
/// same request again is answered as the first time (the handler's event
/// ids are derived from the key).
async fn record_idempotency_key(
    axum::extract::State(state): axum::extract::State<CommandState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    // Token issuance refuses keys itself (the token cannot be replayed).
    if req.method() != axum::http::Method::POST
        || !req.headers().contains_key(IDEMPOTENCY_KEY)
        || req.uri().path().ends_with("/tokens")
    {
        return next.run(req).await;
    }
    let Some(principal) = req.extensions().get::<Principal>().cloned() else {
        return next.run(req).await; // authentication answers first
    };
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_KEYED_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return Problem::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large",
            )
            .into_response()
        }
    };
    let meta = match meta(&principal, &parts.headers) {
        Ok(m) => m,
        Err(p) => return p.into_response(),
    };
    let digest = BodyDigest(hex::encode(Sha256::digest(&bytes)));
    if let Err(p) = use_idempotency_key(
        &state,
        &meta,
        parts.method.as_str(),
        parts.uri.path(),
        &digest,
    )
    .await
    {
        return p.into_response();
    }
    next.run(axum::extract::Request::from_parts(
        parts,
        axum::body::Body::from(bytes),
    ))
    .await
}
