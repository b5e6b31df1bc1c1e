//! Reads of grants: held now or at any instant, every interval ever held
//! (with the approvals and policy version behind it), per entitlement.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use iga_api::{Grant, GrantView};
use iga_http::page::{page_token, PageParams};
use iga_http::{Principal, Problem};
use projection_service::grants::GrantScope;
use projection_service::queries::Window;
use serde::{Deserialize, Serialize};

use crate::QueryState;

use crate::page::internal;

/// Admins and auditors see every grant; others their own and those of apps
/// (or entitlements) they own.
fn visible(state: &QueryState, p: &Principal, g: &GrantView) -> Result<bool, Problem> {
    if p.is_admin() || p.has_role("auditor") || g.user_id == p.user_id {
        return Ok(true);
    }
    owns(state, p, Some(&g.app_id), Some(&g.app_entitlement_id))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct GrantFilter {
    pub user_id: Option<String>,
    pub app_id: Option<String>,
    pub entitlement_id: Option<String>,
    /// RFC 3339: the grants held at that instant instead of now.
    #[param(format = DateTime)]
    pub at: Option<String>,
    /// Also grants that ended (ignored with `at`).
    #[serde(default)]
    pub include_expired: bool,
    /// Also grants whose provisioning is pending (not held yet; ignored
    /// with `at`).
    #[serde(default)]
    pub include_pending: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrantList {
    pub list: Vec<Grant>,
    /// Where the next page starts; null on the last page.
    pub next_page_token: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrantHistory {
    /// Every interval, in the order the grants were issued; `deletedAt` is
    /// null while held.
    pub list: Vec<GrantView>,
    /// Where the next page starts; null on the last page.
    pub next_page_token: Option<String>,
}

/// Whether `p` owns app `app_id`, or entitlement `entitlement_id` of it.
fn owns(
    state: &QueryState,
    p: &Principal,
    app_id: Option<&str>,
    entitlement_id: Option<&str>,
) -> Result<bool, Problem> {
    if let Some(app_id) = app_id {
        let app = state
            .models
            .apps()
            .and_then(|apps| apps.get(app_id))
            .map_err(internal)?;
        if let Some(app) = app {
            if app.fields.owner_ids.contains(&p.user_id) {
                return Ok(true);
            }
        }
        if let Some(e) = entitlement_id {
            return Ok(state
                .models
                .entitlements()
                .and_then(|ents| ents.entitlement(app_id, e))
                .map_err(internal)?
                .is_some_and(|v| v.fields.owner_ids.contains(&p.user_id)));
        }
    }
    Ok(false)
}

/// The narrowest index that holds every grant the caller may see under the
/// filter: a read costs what it can answer, not the size of the ledger. An
/// admin or auditor reads by the filter; anyone else their own grants, or
/// those of an app or entitlement they own, or one user's (seen grant by
/// grant).
fn scope(
    state: &QueryState,
    p: &Principal,
    f: &GrantFilter,
    held_now: bool,
) -> Result<GrantScope, Problem> {
    let by_user = |user_id: &str| {
        let user_id = user_id.to_string();
        let entitlement_id = f.entitlement_id.clone();
        if held_now {
            GrantScope::HeldBy {
                user_id,
                entitlement_id,
            }
        } else {
            GrantScope::User {
                user_id,
                entitlement_id,
            }
        }
    };
    if let Some(u) = &f.user_id {
        return Ok(by_user(u));
    }
    let everyone = p.is_admin() || p.has_role("auditor");
    if let Some(e) = &f.entitlement_id {
        let app = f
            .app_id
            .clone()
            .or_else(|| entitlement_app(state, e).ok().flatten());
        if everyone || owns(state, p, app.as_deref(), Some(e))? {
            return Ok(GrantScope::Entitlement(e.clone()));
        }
        return Ok(by_user(&p.user_id));
    }
    if let Some(a) = &f.app_id {
        if everyone || owns(state, p, Some(a), None)? {
            return Ok(GrantScope::App(a.clone()));
        }
        return Ok(by_user(&p.user_id));
    }
    Ok(if everyone {
        GrantScope::All
    } else {
        by_user(&p.user_id)
    })
}

/// The app of an entitlement, from the catalog.
fn entitlement_app(state: &QueryState, entitlement_id: &str) -> Result<Option<String>, Problem> {
    state
        .models
        .entitlements()
        .and_then(|ents| ents.app_of(entitlement_id))
        .map_err(internal)
}

/// A page of the grants under the filter the caller may see and `keep`
/// accepts.
pub(crate) fn page_of(
    state: &QueryState,
    p: &Principal,
    f: &GrantFilter,
    held_now: bool,
    page: &PageParams,
    mut keep: impl FnMut(&GrantView) -> bool,
) -> Result<(Vec<GrantView>, Option<String>), Problem> {
    let grants = state.models.grants().map_err(internal)?;
    let scope = scope(state, p, f, held_now)?;
    let size = page.size()?;
    let after = page.after()?;
    let mut failed = None;
    let window = Window {
        after: after.as_deref(),
        size,
    };
    let found = grants
        .page(&scope, window, |g| {
            let matches = f.user_id.as_ref().is_none_or(|u| *u == g.user_id)
                && f.entitlement_id
                    .as_ref()
                    .is_none_or(|e| *e == g.app_entitlement_id)
                && f.app_id.as_ref().is_none_or(|a| *a == g.app_id)
                && keep(g);
            matches
                && match visible(state, p, g) {
                    Ok(v) => v,
                    Err(e) => {
                        failed = Some(e);
                        false
                    }
                }
        })
        .map_err(internal)?;
    if let Some(e) = failed {
        return Err(e);
    }
    Ok((found.items, found.next.as_deref().map(page_token)))
}

/// Grants held now, or at instant `at` (admin, auditor, the user, owners),
/// a page at a time.
#[utoipa::path(get, path = "/grants", tag = "grants", params(GrantFilter, PageParams),
    responses((status = 200, description = "The grants", body = GrantList), (status = 400, body = Problem)), security(("bearer" = [])))]
pub async fn list_grants(
    State(state): State<QueryState>,
    Extension(principal): Extension<Principal>,
    Query(filter): Query<GrantFilter>,
    Query(page): Query<PageParams>,
) -> Result<Response, Problem> {
    let at = filter
        .at
        .as_deref()
        .map(|t| iga_http::parse_rfc3339("at", t))
        .transpose()?;
    let held_now = at.is_none() && !filter.include_expired;
    let now = time::OffsetDateTime::now_utc();
    // A grant counts as held from its start (or its provisioning), never
    // before, and until its system lost it.
    let (grants, next) = page_of(&state, &principal, &filter, held_now, &page, |g| match at {
        Some(at) => g.active_at(at),
        None => {
            (filter.include_expired && g.deleted_at.is_some())
                || (filter.include_pending && g.state == "pending")
                || g.active_at(now)
        }
    })?;
    Ok(Json(GrantList {
        list: grants.into_iter().map(Grant::from).collect(),
        next_page_token: next,
    })
    .into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct HistoryFilter {
    pub user_id: Option<String>,
    pub entitlement_id: Option<String>,
}

/// Every interval a grant was held, in the order the grants were issued,
/// with why (the request's approvals and policy version), a page at a time.
#[utoipa::path(get, path = "/grants/history", tag = "grants", params(HistoryFilter, PageParams),
    responses((status = 200, description = "The intervals", body = GrantHistory)), security(("bearer" = [])))]
pub async fn grant_history(
    State(state): State<QueryState>,
    Extension(principal): Extension<Principal>,
    Query(f): Query<HistoryFilter>,
    Query(page): Query<PageParams>,
) -> Result<Response, Problem> {
    let filter = GrantFilter {
        user_id: f.user_id,
        app_id: None,
        entitlement_id: f.entitlement_id,
        at: None,
        include_expired: true,
        include_pending: true,
    };
    let (list, next) = page_of(&state, &principal, &filter, false, &page, |_| true)?;
    Ok(Json(GrantHistory {
        list,
        next_page_token: next,
    })
    .into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct EntitlementGrantFilter {
    #[serde(default)]
    pub include_expired: bool,
}

/// The grants of one entitlement, a page at a time.
#[utoipa::path(get, path = "/apps/{appId}/entitlements/{entitlementId}/grants", tag = "grants",
    params(("appId" = String, Path, description = "App id"), ("entitlementId" = String, Path, description = "Entitlement id"), EntitlementGrantFilter, PageParams),
    responses((status = 200, description = "The grants", body = GrantList)), security(("bearer" = [])))]
pub async fn entitlement_grants(
    State(state): State<QueryState>,
    Extension(principal): Extension<Principal>,
    Path((app_id, id)): Path<(String, String)>,
    Query(f): Query<EntitlementGrantFilter>,
    Query(page): Query<PageParams>,
) -> Result<Response, Problem> {
    let filter = GrantFilter {
        user_id: None,
        app_id: Some(app_id),
        entitlement_id: Some(id),
        at: None,
        include_expired: f.include_expired,
        include_pending: false,
    };
    let now = time::OffsetDateTime::now_utc();
    let (grants, next) = page_of(&state, &principal, &filter, false, &page, |g| {
        (f.include_expired && g.deleted_at.is_some()) || g.active_at(now)
    })?;
    Ok(Json(GrantList {
        list: grants.into_iter().map(Grant::from).collect(),
        next_page_token: next,
    })
    .into_response())
}

/// Refuses a window that ends before it starts (422).
pub(crate) fn window(from: time::OffsetDateTime, to: time::OffsetDateTime) -> Result<(), Problem> {
    if from > to {
        return Err(Problem::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid from: after `to`",
        )
        .with_field("from", "after `to`"));
    }
    Ok(())
}

/// Every grant ever issued under these filters, ended and pending ones too.
pub(crate) fn every_grant(
    user_id: Option<String>,
    app_id: Option<String>,
    entitlement_id: Option<String>,
) -> GrantFilter {
    GrantFilter {
        user_id,
        app_id,
        entitlement_id,
        at: None,
        include_expired: true,
        include_pending: true,
    }
}

/// An instant as the API writes it.
pub(crate) fn rfc3339(t: time::OffsetDateTime) -> String {
    iga_http::rfc3339((t.unix_timestamp_nanos() / 1000) as i64)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct DiffFilter {
    /// RFC 3339: the earlier instant.
    #[param(format = DateTime)]
    pub from: String,
    /// RFC 3339: the later instant.
    #[param(format = DateTime)]
    pub to: String,
    pub user_id: Option<String>,
    pub app_id: Option<String>,
    pub entitlement_id: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrantDiff {
    pub from: String,
    pub to: String,
    /// Held at `to`, not at `from`.
    pub added: Vec<Grant>,
    /// Held at `from`, not at `to`.
    pub removed: Vec<Grant>,
    /// Where the next page starts (a page holds up to `pageSize` of both
    /// together); null on the last page.
    pub next_page_token: Option<String>,
}

/// What access was added and removed between two instants (by user, app or
/// entitlement), as the grant ledger answers `?at=` at each; a page at a
/// time. Admins and auditors see every grant; others their own and those
/// of apps or entitlements they own.
#[utoipa::path(get, path = "/grants/diff", tag = "grants", params(DiffFilter, PageParams),
    responses((status = 200, description = "Access added and removed", body = GrantDiff), (status = 400, body = Problem), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn grant_diff(
    State(state): State<QueryState>,
    Extension(principal): Extension<Principal>,
    Query(f): Query<DiffFilter>,
    Query(page): Query<PageParams>,
) -> Result<Response, Problem> {
    let from = iga_http::parse_rfc3339("from", &f.from)?;
    let to = iga_http::parse_rfc3339("to", &f.to)?;
    window(from, to)?;
    let filter = every_grant(f.user_id, f.app_id, f.entitlement_id);
    let (changed, next) = page_of(&state, &principal, &filter, false, &page, |g| {
        g.active_at(from) != g.active_at(to)
    })?;
    let (added, removed): (Vec<GrantView>, Vec<GrantView>) =
        changed.into_iter().partition(|g| g.active_at(to));
    Ok(Json(GrantDiff {
        from: rfc3339(from),
        to: rfc3339(to),
        added: added.into_iter().map(Grant::from).collect(),
        removed: removed.into_iter().map(Grant::from).collect(),
        next_page_token: next,
    })
    .into_response())
}
