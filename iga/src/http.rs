//! The HTTP surface of `iga serve`: `/healthz`, `/readyz`, `/metrics`,
//! `/api/v1/openapi.json`, and the `/api/v1` routes of the command and query
//! services behind bearer authentication, with tower-http request ids,
//! tracing, body limits and timeouts.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use command_service::CommandHandler;
use iga_http::auth::require_principal;
use iga_http::{Authenticator, Problem};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use query_service::{QueryState, ReadModelAuthenticator};
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::cli::anyhow_like::Result;
use crate::cli::ServeArgs;
use crate::role::{Health, Role};

#[derive(OpenApi)]
#[openapi(
    info(title = "iga", description = "Identity governance: catalog, access requests, grants and their history."),
    modifiers(&BearerAuth),
    tags((name = "identities"), (name = "operations"))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub fn install_metrics() -> Result<PrometheusHandle> {
    Ok(PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))?)
}

pub fn router(
    args: &ServeArgs,
    health: Arc<Health>,
    commands: CommandHandler,
    secrets: command_service::secrets::SecretsKey,
    metrics: PrometheusHandle,
    role: Role,
) -> Router {
    let query = QueryState {
        models: health.models.clone(),
        consistency_wait: Duration::from_millis(args.consistency_wait_ms),
        search: health.search.clone(),
        store: health.store.clone(),
        read_your_writes: role.serves_reads() && role.serves_writes(),
    };
    let authenticator: Arc<dyn Authenticator> = Arc::new(CatchingUpAuthenticator {
        tokens: ReadModelAuthenticator(health.models.clone()),
        health: health.clone(),
        wait: Duration::from_millis(args.consistency_wait_ms),
        uses: record_token_uses(commands.clone()),
    });
    let command_state = command_service::state::CommandState {
        handler: commands,
        requests: command_service::state::RequestSettings {
            justification_risk_levels: args.justification_risk_levels.clone(),
        },
        secrets,
    };
    // The whole API's document, whichever routes this process serves: a
    // client reaching any service (or the ingress) reads the whole contract.
    let openapi = {
        let everything = OpenApiRouter::<()>::new()
            .merge(query_service::routes(query.clone()))
            .merge(command_service::http::routes(command_state.clone()));
        let ops = OpenApiRouter::new()
            .routes(utoipa_axum::routes!(healthz))
            .routes(utoipa_axum::routes!(readyz))
            .with_state(health.clone());
        let (_, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
            .nest("/api/v1", everything)
            .merge(ops)
            .split_for_parts();
        let mut doc = serde_json::to_value(&doc).expect("the OpenAPI document serializes");
        crate::openapi::complete(&mut doc);
        Arc::new(doc)
    };
    let writes = command_service::http::routes(command_state);
    // Authentication runs first (outermost): an anonymous caller waits for
    // nothing. A token issued a moment ago through another instance still
    // works at once: an unknown token waits for the read models to reach the
    // log's head before it is refused (CatchingUpAuthenticator).
    let mut api = OpenApiRouter::new();
    if role.serves_reads() {
        api = api.merge(query_service::routes(query.clone()));
    }
    if role.serves_writes() {
        api = api.merge(writes);
    }
    let api = api
        .layer(middleware::from_fn_with_state(
            query,
            query_service::consistency::wait_for_token,
        ))
        .layer(middleware::from_fn_with_state(
            authenticator,
            require_principal,
        ));
    let ops = OpenApiRouter::new()
        .routes(utoipa_axum::routes!(healthz))
        .routes(utoipa_axum::routes!(readyz))
        .with_state(health);
    let (router, _) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", api)
        .merge(ops)
        .split_for_parts();
    router
        .route(
            "/api/v1/openapi.json",
            get(move || async move { Json(openapi.as_ref().clone()) }),
        )
        .route("/metrics", get(move || async move { metrics.render() }))
        .fallback(|| async { Problem::not_found("no such route") })
        .layer(middleware::from_fn(record_http_metrics))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(TraceLayer::new_for_http())
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(RequestBodyLimitLayer::new(args.max_body_bytes))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    Duration::from_secs(args.request_timeout_secs),
                )),
        )
        // Outermost, so errors made by the layers above become problems too.
        .layer(middleware::from_fn(problem_for_bare_errors))
}

/// Alive: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "alive")))]
async fn healthz() -> &'static str {
    "ok"
}

/// Ready: the event log answers, the projection runner runs, and the read
/// models caught up with the log at start-up.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, description = "ready"),
    (status = 503, description = "not ready, with the reason", body = Problem)))]
async fn readyz(State(health): State<Arc<Health>>) -> Response {
    let head = match health.store.head().await {
        Ok(h) => h,
        Err(e) => {
            return Problem::unavailable(format!("event log unreachable: {e}"), 1).into_response()
        }
    };
    if !health.runner_alive.load(Ordering::SeqCst) {
        return Problem::unavailable("the projection runner has stopped", 5).into_response();
    }
    if !health.caught_up.load(Ordering::SeqCst) {
        return Problem::unavailable("read models are catching up", 1).into_response();
    }
    let position = health.models.position();
    Json(serde_json::json!({"status": "ready", "logHead": head, "readModelPosition": position}))
        .into_response()
}

/// Every error is problem+json, including those produced by layers (413 from
/// the body limit, 408 from the timeout, 405 from routing).
async fn problem_for_bare_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let is_problem = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v == HeaderValue::from_static("application/problem+json"));
    if (status.is_client_error() || status.is_server_error()) && !is_problem {
        let detail = match status {
            StatusCode::PAYLOAD_TOO_LARGE => {
                "request body is over the configured limit".to_string()
            }
            StatusCode::REQUEST_TIMEOUT => "request took too long".to_string(),
            s => s.canonical_reason().unwrap_or("error").to_string(),
        };
        return Problem::new(status, detail).into_response();
    }
    resp
}

async fn record_http_metrics(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("iga_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("iga_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    resp
}

/// Tokens from the read models; an unknown one is looked up again once the
/// read models have caught up with the log's head (bounded by the
/// consistency wait), so a token created through another instance (the
/// command-service behind an ingress, say) works at once everywhere.
struct CatchingUpAuthenticator {
    tokens: ReadModelAuthenticator,
    health: Arc<Health>,
    wait: Duration,
    /// Where uses go to be recorded (`lastUsedAt`).
    uses: tokio::sync::mpsc::Sender<(String, String)>,
}

/// Records when tokens are used: at most once an hour per token and
/// process here (the TokenUse aggregate holds the same bound across
/// processes), off the request path: a full queue drops a use rather than
/// slow a request down.
fn record_token_uses(commands: CommandHandler) -> tokio::sync::mpsc::Sender<(String, String)> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(String, String)>(1024);
    tokio::spawn(async move {
        let mut recorded: std::collections::HashMap<String, Instant> = Default::default();
        let every = Duration::from_micros(iga_domain::token_use::RECORD_EVERY_MICROS as u64);
        while let Some((user_id, token_id)) = rx.recv().await {
            if recorded
                .get(&token_id)
                .is_some_and(|at| at.elapsed() < every)
            {
                continue;
            }
            if recorded.len() > 100_000 {
                recorded.retain(|_, at| at.elapsed() < every);
            }
            recorded.insert(token_id.clone(), Instant::now());
            let now = command_service::now_unix_micros();
            let meta = command_service::CommandMeta {
                ctx: iga_domain::Context {
                    actor_id: user_id.clone(),
                    actor_roles: vec![],
                    now_unix_micros: now,
                },
                correlation_id: token_id.clone(),
                idempotency_key: None,
                expected_version: None,
            };
            let record = iga_domain::token_use::RecordUse {
                user_id,
                token_id: token_id.clone(),
                at_micros: now,
            };
            if let Err(e) = commands
                .execute::<iga_domain::token_use::TokenUse>(&token_id, &record, &meta)
                .await
            {
                tracing::warn!(error = %e, "cannot record a token's use");
            }
        }
    });
    tx
}

impl Authenticator for CatchingUpAuthenticator {
    fn principal_for_token_sha256(
        &self,
        sha256_hex: &str,
    ) -> std::result::Result<Option<iga_http::Principal>, Problem> {
        self.tokens.principal_for_token_sha256(sha256_hex)
    }

    fn used(&self, principal: &iga_http::Principal) {
        let _ = self
            .uses
            .try_send((principal.user_id.clone(), principal.token_id.clone()));
    }

    fn catch_up(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        // Unknown tokens are what an anonymous caller sends: at most this many
        // wait at once, and only while the read models are behind the log.
        static CATCH_UPS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(64);
        let (health, wait) = (self.health.clone(), self.wait);
        Box::pin(async move {
            let Ok(_permit) = CATCH_UPS.try_acquire() else {
                return;
            };
            if let Ok(head) = health.store.head().await {
                health.models.wait_for(head, wait).await;
            }
        })
    }
}
