//! `?at=`: an object as it was at an instant, from its own events in the
//! log folded by its read model's projection
//! (`projection_service::history`), so it agrees with the read model as it
//! stood then.

use iga_eventlog::RecordedEvent;
use iga_http::Problem;
use serde::Deserialize;

use crate::QueryState;

/// Most events of one stream an `?at=` read folds.
const MAX_STREAM_EVENTS: usize = 100_000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AsOf {
    /// RFC 3339: the object as it was at that instant (404 if it did not
    /// exist yet; a deleted one only with `includeDeleted=true`).
    #[param(format = DateTime)]
    pub at: Option<String>,
}

impl AsOf {
    /// The instant asked for, in micros, if any.
    pub fn micros(&self) -> Result<Option<i64>, Problem> {
        self.at
            .as_deref()
            .map(|t| iga_http::parse_rfc3339_micros("at", t))
            .transpose()
    }
}

/// The events of `streams` that happened at or before `at`, in log order.
pub async fn events_until(
    state: &QueryState,
    streams: &[String],
    at: i64,
) -> Result<Vec<RecordedEvent>, Problem> {
    let mut events = Vec::new();
    for stream in streams {
        let mut found = state
            .store
            .read_stream(stream, 1, MAX_STREAM_EVENTS)
            .await
            .map_err(|e| Problem::unavailable(e.to_string(), 1))?;
        events.append(&mut found);
    }
    Ok(projection_service::history::until(events, at))
}

/// 404 for an object that did not exist at `at`.
pub fn not_yet(what: &str, at: &AsOf) -> Problem {
    Problem::not_found(format!(
        "{what} did not exist at {}",
        at.at.as_deref().unwrap_or_default()
    ))
}
