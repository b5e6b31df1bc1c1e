//! Reads of grants: held now or at any instant, every interval ever held
//! (with the approvals and policy version behind it), per entitlement.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use iga_http::{Principal, Problem};
use projection_service::grants::{
    by_app_prefix, by_entitlement_prefix, by_pair_prefix, by_user_prefix, Grant, GrantLedger,
    GrantView, NAME,
};
use serde::{Deserialize, Serialize};

use crate::QueryState;

fn tree(state: &QueryState) -> Result<&sled::Tree, Problem> {
    state
        .models
        .tree(NAME)
        .ok_or_else(|| Problem::internal("grants read model missing"))
}

fn internal(e: impl std::fmt::Display) -> Problem {
    Problem::internal(e.to_string())
}

/// Admins and auditors see every grant; others their own and those of apps
/// (or entitlements) they own.
fn visible(state: &QueryState, p: &Principal, g: &GrantView) -> Result<bool, Problem> {
    if p.is_admin() || p.has_role("auditor") || g.user_id == p.user_id {
        return Ok(true);
    }
    let apps = state
        .models
        .tree(projection_service::apps::NAME)
        .ok_or_else(|| Problem::internal("apps read model missing"))?;
    if let Some(app) =
        projection_service::apps::AppCatalog::get(apps, &g.app_id).map_err(internal)?
    {
        if app.fields.owner_ids.contains(&p.user_id) {
            return Ok(true);
        }
    }
    let ents = state
        .models
        .tree(projection_service::entitlements::NAME)
        .ok_or_else(|| Problem::internal("entitlements read model missing"))?;
    Ok(
        projection_service::entitlements::EntitlementCatalog::entitlement(
            ents,
            &g.app_id,
            &g.app_entitlement_id,
        )
        .map_err(internal)?
        .is_some_and(|e| e.fields.owner_ids.contains(&p.user_id)),
    )
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
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrantList {
    pub list: Vec<Grant>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrantHistory {
    /// Every interval, oldest first; `deletedAt` is null while held.
    pub list: Vec<GrantView>,
}

/// The grants matching the filter's ids, oldest first; `held_now` reads only
/// grants held now where an index allows (a user's current grants).
fn select(state: &QueryState, f: &GrantFilter, held_now: bool) -> Result<Vec<GrantView>, Problem> {
    let tree = tree(state)?;
    let mut grants = if let Some(u) = &f.user_id {
        match (&f.entitlement_id, held_now) {
            (e, true) => GrantLedger::held_by(tree, u, e.as_deref()),
            (Some(e), false) => GrantLedger::under(tree, &by_pair_prefix(u, e)),
            (None, false) => GrantLedger::under(tree, &by_user_prefix(u)),
        }
    } else if let Some(e) = &f.entitlement_id {
        GrantLedger::under(tree, &by_entitlement_prefix(e))
    } else if let Some(a) = &f.app_id {
        GrantLedger::under(tree, &by_app_prefix(a))
    } else {
        GrantLedger::under(tree, b"g/")
    }
    .map_err(internal)?;
    grants.retain(|g| {
        f.user_id.as_ref().is_none_or(|u| *u == g.user_id)
            && f.entitlement_id
                .as_ref()
                .is_none_or(|e| *e == g.app_entitlement_id)
            && f.app_id.as_ref().is_none_or(|a| *a == g.app_id)
    });
    grants.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
    Ok(grants)
}

/// Grants held now, or at instant `at` (admin, auditor, the user, owners).
#[utoipa::path(get, path = "/grants", tag = "grants", params(GrantFilter),
    responses((status = 200, description = "The grants", body = GrantList), (status = 400, body = Problem)), security(("bearer" = [])))]
pub async fn list_grants(
    State(state): State<QueryState>,
    Extension(principal): Extension<Principal>,
    Query(filter): Query<GrantFilter>,
) -> Result<Response, Problem> {
    let at = filter
        .at
        .as_deref()
        .map(|t| iga_http::parse_rfc3339("at", t))
        .transpose()?;
    let mut list = Vec::new();
    let held_now = at.is_none() && !filter.include_expired;
    let now = time::OffsetDateTime::now_utc();
    for g in select(&state, &filter, held_now)? {
        // A grant counts as held from its start, never before.
        let keep = match at {
            Some(at) => g.active_at(at),
            None => (filter.include_expired && g.deleted_at.is_some()) || g.active_at(now),
        };
        if keep && visible(&state, &principal, &g)? {
            list.push(Grant::from(g));
        }
    }
    Ok(Json(GrantList { list }).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct HistoryFilter {
    pub user_id: Option<String>,
    pub entitlement_id: Option<String>,
}

/// Every interval a grant was held, oldest first, with why (the request's
/// approvals and policy version).
#[utoipa::path(get, path = "/grants/history", tag = "grants", params(HistoryFilter),
    responses((status = 200, description = "The intervals", body = GrantHistory)), security(("bearer" = [])))]
pub async fn grant_history(
    State(state): State<QueryState>,
    Extension(principal): Extension<Principal>,
    Query(f): Query<HistoryFilter>,
) -> Result<Response, Problem> {
    let filter = GrantFilter {
        user_id: f.user_id,
        app_id: None,
        entitlement_id: f.entitlement_id,
        at: None,
        include_expired: true,
    };
    let mut list = Vec::new();
    for g in select(&state, &filter, false)? {
        if visible(&state, &principal, &g)? {
            list.push(g);
        }
    }
    Ok(Json(GrantHistory { list }).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct EntitlementGrantFilter {
    #[serde(default)]
    pub include_expired: bool,
}

/// The grants of one entitlement.
#[utoipa::path(get, path = "/apps/{appId}/entitlements/{entitlementId}/grants", tag = "grants",
    params(("appId" = String, Path, description = "App id"), ("entitlementId" = String, Path, description = "Entitlement id"), EntitlementGrantFilter),
    responses((status = 200, description = "The grants", body = GrantList)), security(("bearer" = [])))]
pub async fn entitlement_grants(
    State(state): State<QueryState>,
    Extension(principal): Extension<Principal>,
    Path((app_id, id)): Path<(String, String)>,
    Query(f): Query<EntitlementGrantFilter>,
) -> Result<Response, Problem> {
    let filter = GrantFilter {
        user_id: None,
        app_id: Some(app_id),
        entitlement_id: Some(id),
        at: None,
        include_expired: f.include_expired,
    };
    let mut list = Vec::new();
    let now = time::OffsetDateTime::now_utc();
    for g in select(&state, &filter, !f.include_expired)? {
        let keep = (f.include_expired && g.deleted_at.is_some()) || g.active_at(now);
        if keep && visible(&state, &principal, &g)? {
            list.push(Grant::from(g));
        }
    }
    Ok(Json(GrantList { list }).into_response())
}
