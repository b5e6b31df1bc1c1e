//! Read-your-writes: a read carrying `X-Consistency-Token: <position>` is
//! answered only once the read models include that position, or 503 with
//! `Retry-After` after the configured wait.
//!
//! In `iga serve` (one process writing and reading), a read without a token
//! sees every write acknowledged before it arrived: it waits for the log's
//! head as of its arrival, within the same bound, and answers from where the
//! read models are if that does not come (never 503: it asked for nothing).
//!
//! The wait runs after authentication (an anonymous caller holds nothing
//! open), only for positions the log has reached (a forged position beyond
//! the head is refused at once), and at most [`MAX_CONCURRENT_WAITS`] at a
//! time (past that, 503 at once).

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use iga_http::{Problem, CONSISTENCY_TOKEN};

use crate::QueryState;

/// Most reads waiting for their consistency token at once, per process.
pub const MAX_CONCURRENT_WAITS: usize = 256;

static WAITS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_CONCURRENT_WAITS);

/// The caller as the read models know them now: authentication ran before
/// the wait, so a write the wait made visible (a token revoked, a user
/// disabled, a role removed) must count for this request too.
fn authenticate_again(state: &QueryState, req: &mut Request) -> Result<(), Box<Response>> {
    let Some(before) = req.extensions().get::<iga_http::Principal>() else {
        return Ok(());
    };
    let authenticator = crate::ReadModelAuthenticator(state.models.clone());
    use iga_http::Authenticator;
    match authenticator.principal_for_token_sha256(&before.token_sha256_hex) {
        Ok(Some(now)) => {
            req.extensions_mut().insert(now);
            Ok(())
        }
        Ok(None) => Err(Box::new(
            Problem::unauthorized("unknown or revoked token").into_response(),
        )),
        Err(p) => Err(Box::new(p.into_response())),
    }
}

pub async fn wait_for_token(
    State(state): State<QueryState>,
    mut req: Request,
    next: Next,
) -> Response {
    let read = matches!(*req.method(), Method::GET | Method::HEAD);
    if req.headers().get(CONSISTENCY_TOKEN).is_none() && state.read_your_writes && read {
        // No token: a read sees what was acknowledged before it arrived, if
        // that comes within the wait; otherwise it answers from where we are.
        // (Writes never wait here: they decide on the log, not the models.)
        if let Ok(head) = state.store.head().await {
            if state.models.position() < head {
                if let Ok(_permit) = WAITS.try_acquire() {
                    state.models.wait_for(head, state.consistency_wait).await;
                }
                if let Err(refused) = authenticate_again(&state, &mut req) {
                    return *refused;
                }
            }
        }
        return next.run(req).await;
    }
    if let Some(raw) = req.headers().get(CONSISTENCY_TOKEN) {
        let Some(position) = raw.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()) else {
            return Problem::bad_request(
                "X-Consistency-Token must be the decimal position a write answered",
            )
            .with_field(CONSISTENCY_TOKEN, "not a position")
            .into_response();
        };
        if state.models.position() < position {
            match state.store.head().await {
                Ok(head) if position > head => {
                    return Problem::bad_request(format!(
                        "X-Consistency-Token {position} is beyond the log's head ({head})"
                    ))
                    .with_field(CONSISTENCY_TOKEN, "not a position this log has reached")
                    .into_response();
                }
                _ => {}
            }
        }
        let Ok(_permit) = WAITS.try_acquire() else {
            return Problem::unavailable("too many reads are waiting for their writes; retry", 1)
                .into_response();
        };
        if !state
            .models
            .wait_for(position, state.consistency_wait)
            .await
        {
            return Problem::unavailable(
                format!(
                    "the read models have not reached position {position} within {:?}; retry",
                    state.consistency_wait
                ),
                1,
            )
            .into_response();
        }
        if let Err(refused) = authenticate_again(&state, &mut req) {
            return *refused;
        }
    }
    next.run(req).await
}
