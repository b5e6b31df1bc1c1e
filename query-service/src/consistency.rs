//! Read-your-writes: a read carrying `X-Consistency-Token: <position>` is
//! answered only once the read models include that position, or 503 with
//! `Retry-After` after the configured wait.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use iga_http::{Problem, CONSISTENCY_TOKEN};

use crate::QueryState;

pub async fn wait_for_token(State(state): State<QueryState>, req: Request, next: Next) -> Response {
    if let Some(raw) = req.headers().get(CONSISTENCY_TOKEN) {
        let Some(position) = raw.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()) else {
            return Problem::bad_request(
                "X-Consistency-Token must be the decimal position a write answered",
            )
            .with_field(CONSISTENCY_TOKEN, "not a position")
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
    }
    next.run(req).await
}
