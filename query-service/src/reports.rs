//! Evidence: `GET /reports/access`, every interval any grant was held that
//! overlaps a window, with why (its request, the approvals, the policy
//! version) and how it ended, as JSON or CSV, streamed page by page from
//! the grant ledger so a report of any size is sent as it is read.

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use iga_api::GrantView;
use iga_http::page::PageParams;
use iga_http::{Principal, Problem};
use serde::{Deserialize, Serialize};

use crate::grants::{every_grant, page_of, rfc3339, window};
use crate::QueryState;

/// Grants read per page while a report streams.
const REPORT_PAGE: usize = 500;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AccessReportQuery {
    pub app_id: Option<String>,
    pub entitlement_id: Option<String>,
    pub user_id: Option<String>,
    /// RFC 3339: the window's start (default: the beginning).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// RFC 3339: the window's end, exclusive (default: now).
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// `json` (the default) or `csv`.
    #[param(pattern = "^(json|csv)$")]
    pub format: Option<String>,
}

/// The report's JSON: the window, then every interval.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessReport {
    pub from: String,
    pub to: String,
    /// Each grant held during the window: its fields (`provisionedAt` to
    /// `deprovisionedAt` is when it was held), its request, approvals,
    /// policy and version, who granted it, and how it ended.
    pub list: Vec<GrantView>,
}

const CSV_HEADER: [&str; 17] = [
    "grantId",
    "userId",
    "appId",
    "appEntitlementId",
    "grantType",
    "requestId",
    "grantedBy",
    "policyId",
    "policyVersion",
    "approvals",
    "createdAt",
    "provisionedAt",
    "deprovisionAt",
    "deletedAt",
    "deprovisionedAt",
    "revokeReason",
    "revokeComment",
];

fn csv_row(g: &GrantView) -> [String; 17] {
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    [
        g.id.clone(),
        g.user_id.clone(),
        g.app_id.clone(),
        g.app_entitlement_id.clone(),
        g.grant_type.clone(),
        o(&g.request_id),
        g.granted_by.clone(),
        o(&g.policy_id),
        g.policy_version.map(|v| v.to_string()).unwrap_or_default(),
        g.approvals
            .iter()
            .map(|a| format!("{} ({}) {}", a.user_id, a.phase, a.time_stamp))
            .collect::<Vec<_>>()
            .join("; "),
        g.created_at.clone(),
        o(&g.provisioned_at),
        o(&g.deprovision_at),
        o(&g.deleted_at),
        o(&g.deprovisioned_at),
        o(&g.revoke_reason),
        o(&g.revoke_comment),
    ]
}

/// Every grant interval overlapping `[from, to)`, with its request,
/// approvals, policy version and end (admins and auditors see every grant;
/// others their own and those of apps or entitlements they own). Streamed.
#[utoipa::path(get, path = "/reports/access", tag = "grants", params(AccessReportQuery),
    responses((status = 200, description = "The report (JSON; with format=csv, text/csv with a header row)", content(
        (AccessReport = "application/json"),
        (String = "text/csv"),
    )), (status = 400, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn access_report(
    State(state): State<QueryState>,
    Extension(principal): Extension<Principal>,
    Query(q): Query<AccessReportQuery>,
) -> Result<Response, Problem> {
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(
                Problem::bad_request(format!("format {other:?} is not json or csv"))
                    .with_field("format", "json or csv"),
            )
        }
    };
    let from = match q.from.as_deref() {
        Some(t) => iga_http::parse_rfc3339("from", t)?,
        None => time::OffsetDateTime::UNIX_EPOCH,
    };
    let to = match q.to.as_deref() {
        Some(t) => iga_http::parse_rfc3339("to", t)?,
        None => time::OffsetDateTime::now_utc(),
    };
    window(from, to)?;
    let filter = every_grant(q.user_id, q.app_id, q.entitlement_id);
    // The first page now, so that a refusal is an answer, not a cut body.
    let first = page_of(&state, &principal, &filter, false, &page(None), |g| {
        g.held_during(from, to)
    })?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let head = if csv {
        let mut w = csv::Writer::from_writer(Vec::new());
        let _ = w.write_record(CSV_HEADER);
        w.into_inner().unwrap_or_default()
    } else {
        format!(
            "{{\"from\":{},\"to\":{},\"list\":[",
            serde_json::Value::String(rfc3339(from)),
            serde_json::Value::String(rfc3339(to))
        )
        .into_bytes()
    };
    tokio::task::spawn_blocking(move || {
        let send = |bytes: Vec<u8>| tx.blocking_send(Ok(bytes)).is_ok();
        if !send(head) {
            return;
        }
        let mut found = first;
        let mut first_row = true;
        loop {
            let (grants, next) = found;
            let mut chunk = Vec::new();
            let mut w = csv::Writer::from_writer(Vec::new());
            for g in &grants {
                if csv {
                    let _ = w.write_record(csv_row(g));
                } else {
                    if !first_row {
                        chunk.push(b',');
                    }
                    chunk.extend(serde_json::to_vec(g).unwrap_or_default());
                }
                first_row = false;
            }
            if csv {
                chunk = w.into_inner().unwrap_or_default();
            }
            if !chunk.is_empty() && !send(chunk) {
                return;
            }
            let Some(token) = next else { break };
            found = match page_of(
                &state,
                &principal,
                &filter,
                false,
                &page(Some(token)),
                |g| g.held_during(from, to),
            ) {
                Ok(f) => f,
                Err(e) => {
                    // The client sees a cut-off body, never a silent end.
                    let _ = tx.blocking_send(Err(std::io::Error::other(e.detail)));
                    return;
                }
            };
        }
        if !csv {
            send(b"]}".to_vec());
        }
    });
    let body = crate::page::streamed(rx);
    let content_type = if csv {
        "text/csv; charset=utf-8"
    } else {
        "application/json"
    };
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

fn page(token: Option<String>) -> PageParams {
    PageParams {
        page_size: Some(REPORT_PAGE),
        page_token: token,
    }
}
