//! The read side over HTTP: serves the read models built by the projection
//! runner, and makes every read wait until the read models include the
//! write named by the caller's `X-Consistency-Token`.

pub mod apps;
pub mod audit;
pub mod audit_proofs;
pub mod catalog;
pub mod consistency;
pub mod deleted;
pub mod entitlements;
pub mod grants;
pub mod history;
pub mod ocsf;
mod page;
pub mod policies;
pub mod provisioning;
pub mod reports;
pub mod requests;
pub mod reviews;
pub mod users;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use iga_http::{Authenticator, Principal, Problem};
use projection_service::ReadModels;
use utoipa_axum::router::OpenApiRouter;

/// What every read handler needs.
#[derive(Clone)]
pub struct QueryState {
    pub models: Arc<ReadModels>,
    /// How long a read waits for its consistency token before answering 503.
    pub consistency_wait: Duration,
    /// The catalog search index (follows the `catalog` read model).
    pub search: Arc<projection_service::catalog::SearchIndex>,
    /// The event log, for the audit API.
    pub store: Arc<dyn iga_eventlog::EventStore>,
    /// Reads without `X-Consistency-Token` see every write acknowledged
    /// before they arrived (they wait for the log's head, within
    /// `consistency_wait`). On where one process writes and reads (`iga
    /// serve`); a read replica answers from where it is.
    pub read_your_writes: bool,
}

/// The read routes (under `/api/v1`), with their OpenAPI descriptions.
/// Authentication and the consistency wait are applied by the caller's layers.
pub fn routes(state: QueryState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(utoipa_axum::routes!(users::me))
        .routes(utoipa_axum::routes!(users::get_user))
        .routes(utoipa_axum::routes!(users::list_tokens))
        .routes(utoipa_axum::routes!(users::list_users))
        .routes(utoipa_axum::routes!(apps::get_app))
        .routes(utoipa_axum::routes!(apps::list_apps))
        .routes(utoipa_axum::routes!(apps::list_app_versions))
        .routes(utoipa_axum::routes!(apps::list_app_owners))
        .routes(utoipa_axum::routes!(entitlements::get_entitlement))
        .routes(utoipa_axum::routes!(entitlements::list_entitlements))
        .routes(utoipa_axum::routes!(entitlements::list_entitlement_owners))
        .routes(utoipa_axum::routes!(entitlements::get_resource_type))
        .routes(utoipa_axum::routes!(entitlements::list_resource_types))
        .routes(utoipa_axum::routes!(entitlements::get_resource))
        .routes(utoipa_axum::routes!(entitlements::list_resources))
        .routes(utoipa_axum::routes!(policies::get_policy))
        .routes(utoipa_axum::routes!(policies::list_policies))
        .routes(utoipa_axum::routes!(catalog::search_catalog))
        .routes(utoipa_axum::routes!(requests::get_request))
        .routes(utoipa_axum::routes!(requests::list_requests))
        .routes(utoipa_axum::routes!(requests::search_requests))
        .routes(utoipa_axum::routes!(requests::user_tasks))
        .routes(utoipa_axum::routes!(requests::my_tasks))
        .routes(utoipa_axum::routes!(grants::list_grants))
        .routes(utoipa_axum::routes!(grants::grant_history))
        .routes(utoipa_axum::routes!(grants::grant_diff))
        .routes(utoipa_axum::routes!(reports::access_report))
        .routes(utoipa_axum::routes!(grants::entitlement_grants))
        .routes(utoipa_axum::routes!(audit::list_events))
        .routes(utoipa_axum::routes!(audit::stream_events))
        .routes(utoipa_axum::routes!(audit_proofs::list_checkpoints))
        .routes(utoipa_axum::routes!(audit_proofs::inclusion_proof))
        .routes(utoipa_axum::routes!(audit_proofs::consistency_proof))
        .routes(utoipa_axum::routes!(audit_proofs::signing_keys))
        .routes(utoipa_axum::routes!(webhooks::list_webhooks))
        .routes(utoipa_axum::routes!(webhooks::get_webhook))
        .routes(utoipa_axum::routes!(webhooks::list_deliveries))
        .routes(utoipa_axum::routes!(provisioning::list_tasks))
        .routes(utoipa_axum::routes!(provisioning::get_task))
        .routes(utoipa_axum::routes!(reviews::list_reviews))
        .routes(utoipa_axum::routes!(reviews::get_review))
        .routes(utoipa_axum::routes!(reviews::list_items))
        .routes(utoipa_axum::routes!(reviews::get_item))
        .routes(utoipa_axum::routes!(reviews::my_reviews))
        .routes(utoipa_axum::routes!(reviews::review_report))
        .routes(utoipa_axum::routes!(reviews::reviewer_progress))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            deleted::hide_what_is_under_deleted_apps,
        ))
        .with_state(state)
}

/// Authenticates bearer tokens against the `users` read model.
pub struct ReadModelAuthenticator(pub Arc<ReadModels>);

impl Authenticator for ReadModelAuthenticator {
    fn principal_for_token_sha256(&self, sha256_hex: &str) -> Result<Option<Principal>, Problem> {
        let found = self
            .0
            .users()
            .and_then(|users| users.token_holder(sha256_hex, iga_http::now_unix_micros()))
            .map_err(|e| Problem::internal(e.to_string()))?;
        Ok(found
            .filter(|(_, u)| u.status == "ENABLED")
            .map(|(token, u)| Principal {
                user_id: u.id,
                username: u.username,
                roles: u.roles,
                token_sha256_hex: sha256_hex.to_string(),
                token_id: token.token_id,
            }))
    }
}
