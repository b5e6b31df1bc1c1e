//! Reads of access reviews: campaigns (admins and auditors, and each
//! reviewer the campaigns they have items in), their items with each grant's
//! trail joined from the grant ledger, a reviewer's inbox (`/me/reviews`),
//! and the evidence report (JSON or CSV, streamed page by page).
//!
//! A reviewer's delegate sees what the reviewer sees: they count as one.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use iga_api::{Review, ReviewItem, ReviewProgress};
use iga_http::page::{Page, PageParams};
use iga_http::{object_response, Principal, Problem};
use projection_service::queries::Window;
use projection_service::reviews::ItemScope;
use projection_service::ReadModels;
use serde::{Deserialize, Serialize};

use crate::page::internal;
use crate::QueryState;

fn sees_all(p: &Principal) -> bool {
    p.is_admin() || p.has_role("auditor")
}

/// Whether `reviewer` is `p` or someone whose delegate `p` is.
fn acts_for(
    models: &ReadModels,
    p: &Principal,
    reviewer: &str,
) -> projection_service::Result<bool> {
    if reviewer == p.user_id {
        return Ok(true);
    }
    Ok(models.users()?.get(reviewer)?.is_some_and(|u| {
        u.status == "ENABLED" && u.delegated_user_id.as_deref() == Some(&p.user_id)
    }))
}

/// Whether `p` may see `item`: an admin, an auditor, its user, one of its
/// reviewers or their delegate.
fn sees_item(
    models: &ReadModels,
    p: &Principal,
    item: &ReviewItem,
) -> projection_service::Result<bool> {
    if sees_all(p) || item.user_id == p.user_id {
        return Ok(true);
    }
    for r in &item.reviewer_ids {
        if acts_for(models, p, r)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The item with its grant (and the grant's request, approvals and policy).
fn joined(models: &ReadModels, mut item: ReviewItem) -> projection_service::Result<ReviewItem> {
    item.grant = models.grants()?.get(&item.grant_id)?;
    Ok(item)
}

/// A page of items answered with each one's grant joined.
fn joined_page(models: &ReadModels, found: Page<ReviewItem>) -> Result<Response, Problem> {
    let list = found
        .list
        .into_iter()
        .map(|i| joined(models, i))
        .collect::<Result<Vec<_>, _>>()
        .map_err(internal)?;
    Ok(Json(Page {
        list,
        next_page_token: found.next_page_token,
    })
    .into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ReviewFilter {
    /// `draft`, `active` or `closed`.
    #[param(pattern = "^(draft|active|closed)$")]
    pub status: Option<String>,
}

/// Access review campaigns, oldest first (admin, auditor).
#[utoipa::path(get, path = "/reviews", tag = "reviews", params(ReviewFilter, PageParams),
    responses((status = 200, description = "A page of campaigns", body = Page<Review>), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_reviews(
    State(state): State<QueryState>,
    Extension(principal): Extension<Principal>,
    Query(filter): Query<ReviewFilter>,
    Query(page): Query<PageParams>,
) -> Result<Response, Problem> {
    if !sees_all(&principal) {
        return Err(Problem::forbidden(
            "only admins and auditors list reviews; reviewers read GET /me/reviews",
        ));
    }
    if let Some(s) = filter.status.as_deref() {
        if !["draft", "active", "closed"].contains(&s) {
            return Err(Problem::bad_request(format!(
                "status {s:?} is not draft, active or closed"
            ))
            .with_field("status", "draft, active or closed"));
        }
    }
    let page = crate::page::list(
        &page,
        |window| {
            state.models.reviews()?.page(window, |r| {
                filter.status.as_deref().is_none_or(|s| s == r.status)
            })
        },
        |r| r,
    )?;
    Ok(Json(page).into_response())
}

/// The campaign `id` if `p` may see it: admins, auditors, and anyone who
/// reviews (or stands in for a reviewer of) one of its items.
fn visible_review(state: &QueryState, p: &Principal, id: &str) -> Result<Review, Problem> {
    let models = &state.models;
    let not_found = || Problem::not_found(format!("review {id} not found"));
    let reviews = models.reviews().map_err(internal)?;
    let review = reviews.get(id).map_err(internal)?.ok_or_else(not_found)?;
    if sees_all(p) {
        return Ok(review);
    }
    for (reviewer, _) in reviews.progress_by_reviewer(id).map_err(internal)? {
        if acts_for(models, p, &reviewer).map_err(internal)? {
            return Ok(review);
        }
    }
    Err(not_found())
}

/// One campaign with its progress (admin, auditor, its reviewers).
#[utoipa::path(get, path = "/reviews/{reviewId}", tag = "reviews",
    params(("reviewId" = String, Path, description = "Review id")),
    responses((status = 200, description = "The campaign", body = Review), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_review(
    State(state): State<QueryState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let review = visible_review(&state, &principal, &id)?;
    Ok(object_response(
        StatusCode::OK,
        review.version,
        None,
        &review,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ItemFilter {
    /// Items this user reviews (anyone but an admin or auditor: themself,
    /// or someone whose delegate they are; the default).
    pub reviewer_id: Option<String>,
    /// `pending` (undecided), `certify` or `revoke`.
    #[param(pattern = "^(pending|certify|revoke)$")]
    pub decision: Option<String>,
}

/// A campaign's items in opening order, each with its grant's trail (admin,
/// auditor; a reviewer: their own items, or those of whom they stand in for).
#[utoipa::path(get, path = "/reviews/{reviewId}/items", tag = "reviews", params(("reviewId" = String, Path, description = "Review id"), ItemFilter, PageParams),
    responses((status = 200, description = "A page of items", body = Page<ReviewItem>), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_items(
    State(state): State<QueryState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    Query(filter): Query<ItemFilter>,
    Query(page): Query<PageParams>,
) -> Result<Response, Problem> {
    let models = &state.models;
    if let Some(d) = filter.decision.as_deref() {
        if !["pending", "certify", "revoke"].contains(&d) {
            return Err(Problem::bad_request(format!(
                "decision {d:?} is not pending, certify or revoke"
            ))
            .with_field("decision", "pending, certify or revoke"));
        }
    }
    let reviewer = match (&filter.reviewer_id, sees_all(&principal)) {
        (Some(r), true) => Some(r.clone()),
        (None, true) => None,
        (r, false) => {
            let r = r.clone().unwrap_or_else(|| principal.user_id.clone());
            if !acts_for(models, &principal, &r).map_err(internal)? {
                return Err(Problem::forbidden(
                    "a reviewer reads their own items, or those of whom they are the delegate",
                ));
            }
            Some(r)
        }
    };
    let exists = models
        .reviews()
        .and_then(|r| r.get(&id))
        .map_err(internal)?;
    if exists.is_none() {
        return Err(Problem::not_found(format!("review {id} not found")));
    }
    let decision = filter.decision.clone();
    let scope = match (&reviewer, &decision) {
        (Some(r), _) => ItemScope::Reviewer {
            review_id: id.clone(),
            reviewer_id: r.clone(),
        },
        (None, Some(d)) => ItemScope::Decision {
            review_id: id.clone(),
            decision: d.clone(),
        },
        (None, None) => ItemScope::Review(id.clone()),
    };
    let matches = |i: &ReviewItem| match decision.as_deref() {
        None => true,
        Some("pending") => i.decision.is_none(),
        Some(d) => i.decision.as_deref() == Some(d),
    };
    let found = crate::page::list(
        &page,
        |window| models.reviews()?.items(&scope, window, matches),
        |i| i,
    )?;
    joined_page(models, found)
}

/// One item with its grant's trail (admin, auditor, its reviewers and
/// their delegates, its user).
#[utoipa::path(get, path = "/reviews/{reviewId}/items/{itemId}", tag = "reviews",
    params(("reviewId" = String, Path, description = "Review id"), ("itemId" = String, Path, description = "Item id")),
    responses((status = 200, description = "The item", body = ReviewItem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_item(
    State(state): State<QueryState>,
    Extension(principal): Extension<Principal>,
    Path((review_id, item_id)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let models = &state.models;
    let not_found = || Problem::not_found(format!("review item {item_id} not found"));
    let item = models
        .reviews()
        .and_then(|r| r.item(&item_id))
        .map_err(internal)?
        .filter(|i| i.review_id == review_id)
        .ok_or_else(not_found)?;
    if !sees_item(models, &principal, &item).map_err(internal)? {
        return Err(not_found());
    }
    let item = joined(models, item).map_err(internal)?;
    Ok(object_response(StatusCode::OK, item.version, None, &item))
}

/// The caller's undecided items in active campaigns, oldest first, each with
/// its grant's trail.
#[utoipa::path(get, path = "/me/reviews", tag = "reviews", params(PageParams),
    responses((status = 200, description = "A page of items to decide", body = Page<ReviewItem>), (status = 400, body = Problem)),
    security(("bearer" = [])))]
pub async fn my_reviews(
    State(state): State<QueryState>,
    Extension(principal): Extension<Principal>,
    Query(page): Query<PageParams>,
) -> Result<Response, Problem> {
    let models = &state.models;
    let reviews = models.reviews().map_err(internal)?;
    let active: std::cell::RefCell<HashMap<String, bool>> = Default::default();
    let found = crate::page::list(
        &page,
        |window| {
            reviews.items(&ItemScope::Inbox(principal.user_id.clone()), window, |i| {
                let mut active = active.borrow_mut();
                i.decision.is_none()
                    && *active.entry(i.review_id.clone()).or_insert_with(|| {
                        reviews
                            .get(&i.review_id)
                            .ok()
                            .flatten()
                            .is_some_and(|r| r.status == "active")
                    })
            })
        },
        |i| i,
    )?;
    joined_page(models, found)
}

/// Each reviewer's share of a campaign (admin, auditor), by reviewer id.
#[utoipa::path(get, path = "/reviews/{reviewId}/reviewers", tag = "reviews",
    params(("reviewId" = String, Path, description = "Review id")),
    responses((status = 200, description = "Progress per reviewer", body = Vec<ReviewerProgress>), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn reviewer_progress(
    State(state): State<QueryState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    if !sees_all(&principal) {
        return Err(Problem::forbidden(
            "only admins and auditors read every reviewer's progress",
        ));
    }
    visible_review(&state, &principal, &id)?;
    let rows: Vec<ReviewerProgress> = state
        .models
        .reviews()
        .and_then(|r| r.progress_by_reviewer(&id))
        .map_err(internal)?
        .into_iter()
        .map(|(reviewer_id, progress)| ReviewerProgress {
            reviewer_id,
            progress,
        })
        .collect();
    Ok(Json(rows).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ReportFormat {
    /// `json` (the default) or `csv`.
    #[param(pattern = "^(json|csv)$")]
    pub format: Option<String>,
}

/// One reviewer's share of a campaign.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewerProgress {
    pub reviewer_id: String,
    #[serde(flatten)]
    pub progress: ReviewProgress,
}

/// The evidence of a campaign (the JSON report's shape).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewReport {
    pub review: Review,
    pub progress_by_reviewer: Vec<ReviewerProgress>,
    /// Every item, its decisions, and its grant's trail.
    pub items: Vec<ReviewItem>,
}

/// How many items a report reads (and sends) at a time.
const REPORT_PAGE: usize = 500;

const CSV_HEADER: [&str; 21] = [
    "itemId",
    "grantId",
    "userId",
    "appId",
    "appEntitlementId",
    "reviewerIds",
    "fallback",
    "decision",
    "decidedBy",
    "onBehalfOf",
    "decidedAt",
    "justification",
    "decisionCount",
    "grantEndedAt",
    "grantType",
    "grantedBy",
    "grantCreatedAt",
    "requestId",
    "approvals",
    "policyId",
    "policyVersion",
];

fn csv_row(i: &ReviewItem) -> Vec<String> {
    let g = i.grant.as_ref();
    let opt = |s: &Option<String>| s.clone().unwrap_or_default();
    vec![
        i.id.clone(),
        i.grant_id.clone(),
        i.user_id.clone(),
        i.app_id.clone(),
        i.app_entitlement_id.clone(),
        i.reviewer_ids.join(" "),
        i.fallback.to_string(),
        opt(&i.decision),
        opt(&i.decided_by),
        opt(&i.on_behalf_of),
        opt(&i.decided_at),
        opt(&i.justification),
        i.decisions.len().to_string(),
        opt(&i.grant_ended_at),
        g.map(|g| g.grant_type.clone()).unwrap_or_default(),
        g.map(|g| g.granted_by.clone()).unwrap_or_default(),
        g.map(|g| g.created_at.clone()).unwrap_or_default(),
        g.and_then(|g| g.request_id.clone()).unwrap_or_default(),
        g.map(|g| {
            g.approvals
                .iter()
                .map(|a| format!("{}@{}", a.user_id, a.time_stamp))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default(),
        g.and_then(|g| g.policy_id.clone()).unwrap_or_default(),
        g.and_then(|g| g.policy_version)
            .map(|v| v.to_string())
            .unwrap_or_default(),
    ]
}

/// Every item of a campaign, its decision, who decided when and why, and
/// the grant's trail (admin, auditor). Streamed: a report of any size is
/// sent as it is read.
#[utoipa::path(get, path = "/reviews/{reviewId}/report", tag = "reviews",
    params(("reviewId" = String, Path, description = "Review id"), ReportFormat),
    responses((status = 200, description = "The report (JSON; with format=csv, text/csv with a header row)", content(
        (ReviewReport = "application/json"),
        (String = "text/csv"),
    )), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn review_report(
    State(state): State<QueryState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    Query(format): Query<ReportFormat>,
) -> Result<Response, Problem> {
    if !sees_all(&principal) {
        return Err(Problem::forbidden(
            "only admins and auditors read a review's report",
        ));
    }
    let csv = match format.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(
                Problem::bad_request(format!("format {other:?} is not json or csv"))
                    .with_field("format", "json or csv"),
            )
        }
    };
    let review = visible_review(&state, &principal, &id)?;
    let by_reviewer = state
        .models
        .reviews()
        .and_then(|r| r.progress_by_reviewer(&id))
        .map_err(internal)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let models = state.models.clone();
    tokio::task::spawn_blocking(move || {
        let send = |bytes: Vec<u8>| tx.blocking_send(Ok(bytes)).is_ok();
        let head = if csv {
            let mut w = csv::Writer::from_writer(Vec::new());
            let _ = w.write_record(CSV_HEADER);
            w.into_inner().unwrap_or_default()
        } else {
            let progress: Vec<ReviewerProgress> = by_reviewer
                .into_iter()
                .map(|(reviewer_id, progress)| ReviewerProgress {
                    reviewer_id,
                    progress,
                })
                .collect();
            format!(
                "{{\"review\":{},\"progressByReviewer\":{},\"items\":[",
                serde_json::to_string(&review).unwrap_or_default(),
                serde_json::to_string(&progress).unwrap_or_default()
            )
            .into_bytes()
        };
        if !send(head) {
            return;
        }
        let scope = ItemScope::Review(review.id.clone());
        let mut after: Option<Vec<u8>> = None;
        let mut first = true;
        loop {
            let page = models.reviews().and_then(|r| {
                r.items(
                    &scope,
                    Window {
                        after: after.as_deref(),
                        size: REPORT_PAGE,
                    },
                    |_| true,
                )
            });
            let page = match page {
                Ok(p) => p,
                Err(e) => {
                    // The client sees a cut-off body, never a silent end.
                    let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                    return;
                }
            };
            let mut chunk = Vec::new();
            let mut w = csv::Writer::from_writer(Vec::new());
            for item in page.items {
                let item = match joined(&models, item) {
                    Ok(i) => i,
                    Err(e) => {
                        let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                        return;
                    }
                };
                if csv {
                    let _ = w.write_record(csv_row(&item));
                } else {
                    if !first {
                        chunk.push(b',');
                    }
                    first = false;
                    chunk.extend(serde_json::to_vec(&item).unwrap_or_default());
                }
            }
            if csv {
                chunk = w.into_inner().unwrap_or_default();
            }
            if !chunk.is_empty() && !send(chunk) {
                return;
            }
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
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
