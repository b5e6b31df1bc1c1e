//! The audit log: every event in log order, filtered, as JSON pages or as
//! Server-Sent Events (resumable with `Last-Event-ID`, live after the backlog).
//! Events leave without secrets (`DomainEvent::without_secrets`). A stream
//! ends within [`RECHECK`] of its reader losing the right to it (token
//! revoked or expired, user disabled, role removed).

use std::convert::Infallible;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures::StreamExt;
use iga_eventlog::RecordedEvent;
use iga_http::{Principal, Problem};
use serde::{Deserialize, Serialize};

use crate::QueryState;

/// Most events a page may hold, and most events one page request scans.
pub const MAX_LIMIT: usize = 1000;
const MAX_SCAN: usize = 100_000;
/// How often an open audit stream checks that its reader may still read it.
pub const RECHECK: std::time::Duration = std::time::Duration::from_millis(500);

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct EventFilter {
    /// Events after this position (default 0: from the start).
    #[serde(default)]
    #[param(maximum = 9007199254740991.0)]
    pub after_position: u64,
    /// 1 to 1000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    pub stream_id: Option<String>,
    /// The stream id's prefix: `user`, `app`, `request`, `access`, ...
    pub aggregate_type: Option<String>,
    /// e.g. `iga.v1.GrantIssued`.
    pub event_type: Option<String>,
    pub actor_id: Option<String>,
    /// `json` (the default: a page), `ndjson` (every matching event up to
    /// the log's head, or `limit` of them, one JSON object per line,
    /// streamed) or `ocsf` (the same as OCSF events, one per line).
    #[param(pattern = "^(json|ndjson|ocsf)$")]
    pub format: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub position: u64,
    pub event_id: String,
    pub stream_id: String,
    pub version: u64,
    #[serde(rename = "type")]
    pub kind: String,
    pub occurred_at: String,
    pub actor_id: String,
    pub correlation_id: String,
    /// The event's payload as JSON.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditPage {
    pub list: Vec<AuditEvent>,
    /// Pass as `afterPosition` for the next page.
    pub next_position: u64,
}

fn audit_event(r: &RecordedEvent) -> AuditEvent {
    let e = &r.envelope;
    AuditEvent {
        position: r.position,
        event_id: e.event_id.clone(),
        stream_id: e.stream_id.clone(),
        version: e.stream_version,
        kind: e.event_type.clone(),
        occurred_at: iga_http::rfc3339(e.occurred_at_unix_micros),
        actor_id: e.actor_id.clone(),
        correlation_id: e.correlation_id.clone(),
        data: e
            .decode_event()
            .map(|d| d.to_json())
            .unwrap_or(serde_json::Value::Null),
    }
}

fn keep(f: &EventFilter, r: &RecordedEvent) -> bool {
    let e = &r.envelope;
    f.stream_id.as_ref().is_none_or(|s| *s == e.stream_id)
        && f.aggregate_type
            .as_ref()
            .is_none_or(|t| t == e.aggregate_type())
        && f.event_type.as_ref().is_none_or(|t| *t == e.event_type)
        && f.actor_id.as_ref().is_none_or(|a| *a == e.actor_id)
}

/// The largest position a caller may name: 2^53 - 1, what every JSON
/// reader holds exactly (a log reaches it after 285 years at a million
/// events a second).
pub const MAX_POSITION: u64 = (1 << 53) - 1;

fn position_in_range(field: &str, p: u64) -> Result<u64, Problem> {
    if p > MAX_POSITION {
        return Err(
            Problem::bad_request(format!("{field} is at most {MAX_POSITION}"))
                .with_field(field, "out of range"),
        );
    }
    Ok(p)
}

fn auditor(p: &Principal) -> Result<(), Problem> {
    admin_or_auditor(p, "the audit log")
}

/// Admins and auditors read `what`; anyone else is refused (403).
pub(crate) fn admin_or_auditor(p: &Principal, what: &str) -> Result<(), Problem> {
    if p.is_admin() || p.has_role("auditor") {
        Ok(())
    } else {
        Err(Problem::forbidden(format!(
            "only admins and auditors read {what}"
        )))
    }
}

/// Events in log order (admin, auditor): a page, or with `format=ndjson`
/// or `format=ocsf` every matching event as JSON Lines, streamed.
#[utoipa::path(get, path = "/events", tag = "audit", params(EventFilter),
    responses((status = 200, description = "A page of events (with format=ndjson or ocsf: application/x-ndjson, one event per line)", content(
        (AuditPage = "application/json"),
        (String = "application/x-ndjson"),
    )), (status = 400, body = Problem), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn list_events(
    State(state): State<QueryState>,
    Extension(principal): Extension<Principal>,
    Query(f): Query<EventFilter>,
) -> Result<Response, Problem> {
    auditor(&principal)?;
    match f.format.as_deref() {
        None | Some("json") => {}
        Some("ndjson") => return export(state, f, false).await,
        Some("ocsf") => return export(state, f, true).await,
        Some(other) => {
            return Err(Problem::bad_request(format!(
                "format {other:?} is not json, ndjson or ocsf"
            ))
            .with_field("format", "json, ndjson or ocsf"))
        }
    }
    let limit = f.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(
            Problem::bad_request(format!("limit must be between 1 and {MAX_LIMIT}"))
                .with_field("limit", "out of range"),
        );
    }
    let mut list = Vec::new();
    let mut after = position_in_range("afterPosition", f.after_position)?;
    let mut scanned = 0;
    'scan: while scanned < MAX_SCAN {
        let batch = state
            .store
            .read_all(after, 1000)
            .await
            .map_err(|e| Problem::unavailable(e.to_string(), 1))?;
        if batch.is_empty() {
            break;
        }
        for r in &batch {
            scanned += 1;
            after = r.position;
            if keep(&f, r) {
                list.push(audit_event(r));
                if list.len() == limit {
                    break 'scan;
                }
            }
        }
    }
    Ok(Json(AuditPage {
        list,
        next_position: after,
    })
    .into_response())
}

/// The events after `afterPosition` that match, up to the log's head when
/// asked (or `limit` of them), as JSON Lines or OCSF, streamed.
async fn export(state: QueryState, f: EventFilter, ocsf: bool) -> Result<Response, Problem> {
    let mut after = position_in_range("afterPosition", f.after_position)?;
    let head = state
        .store
        .head()
        .await
        .map_err(|e| Problem::unavailable(e.to_string(), 1))?;
    if f.limit.is_some_and(|l| !(1..=MAX_LIMIT).contains(&l)) {
        return Err(
            Problem::bad_request(format!("limit must be between 1 and {MAX_LIMIT}"))
                .with_field("limit", "out of range"),
        );
    }
    let limit = f.limit.unwrap_or(usize::MAX);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    tokio::spawn(async move {
        let mut sent = 0usize;
        while after < head && sent < limit {
            let batch = match state.store.read_all(after, 1000).await {
                Ok(b) => b,
                Err(e) => {
                    // A cut-off body, never a silent end.
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            };
            if batch.is_empty() {
                break;
            }
            let mut chunk = Vec::new();
            for r in &batch {
                after = r.position;
                if r.position > head || sent >= limit {
                    break;
                }
                if keep(&f, r) {
                    let line = if ocsf {
                        serde_json::to_vec(&crate::ocsf::ocsf_event(r))
                    } else {
                        serde_json::to_vec(&audit_event(r))
                    };
                    chunk.extend(line.unwrap_or_default());
                    chunk.push(b'\n');
                    sent += 1;
                }
            }
            if !chunk.is_empty() && tx.send(Ok(chunk)).await.is_err() {
                return;
            }
        }
    });
    let body = crate::page::streamed(rx);
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        body,
    )
        .into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct StreamFilter {
    /// Events after this position; `Last-Event-ID` takes precedence.
    #[serde(default)]
    #[param(maximum = 9007199254740991.0)]
    pub after_position: u64,
}

/// The events as Server-Sent Events: the backlog, then live (admin, auditor).
/// Each event's `id:` is its position, so a reconnect with `Last-Event-ID` resumes.
#[utoipa::path(get, path = "/events/stream", tag = "audit", params(StreamFilter),
    responses((status = 200, description = "text/event-stream of events"), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn stream_events(
    State(state): State<QueryState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    Query(f): Query<StreamFilter>,
) -> Result<Response, Problem> {
    auditor(&principal)?;
    let after = match headers.get("last-event-id") {
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| {
                Problem::bad_request("Last-Event-ID must be a position")
                    .with_field("Last-Event-ID", "not a position")
            })?,
        None => f.after_position,
    };
    let after = position_in_range("afterPosition", after)?;
    let sub = state
        .store
        .subscribe(after)
        .await
        .map_err(|e| Problem::unavailable(e.to_string(), 1))?;
    // Ends the stream once the reader's token no longer authenticates an
    // admin or auditor.
    let authenticator = crate::ReadModelAuthenticator(state.models.clone());
    let hash = principal.token_sha256_hex.clone();
    let lost_right = async move {
        let mut tick = tokio::time::interval(RECHECK);
        loop {
            tick.tick().await;
            use iga_http::Authenticator;
            match authenticator.principal_for_token_sha256(&hash) {
                Ok(Some(p)) if auditor(&p).is_ok() => continue,
                _ => return,
            }
        }
    };
    let events = sub.take_until(lost_right).map(|r| {
        Ok::<_, Infallible>(match r {
            Ok(r) => {
                let a = audit_event(&r);
                Event::default()
                    .id(r.position.to_string())
                    .event(a.kind.clone())
                    .json_data(&a)
                    .unwrap_or_else(|_| Event::default().comment("unencodable event"))
            }
            Err(e) => Event::default().event("error").data(e.to_string()),
        })
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}
