//! Reads of access requests: one request, lists with visibility rules, the
//! `targetFilter` search, and task inboxes.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use iga_api::RequestView;
use iga_http::page::{page_token, PageParams};
use iga_http::{object_response, Principal, Problem};
use projection_service::queries::{RequestScope, Requests, Window};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use iga_http::target_filter::{text, values_at, TargetFilter};

use crate::QueryState;

fn requests(state: &QueryState) -> Result<Requests<'_>, Problem> {
    state.models.requests().map_err(internal)
}

use crate::page::internal;

/// Whether `p` may see the request: admins and auditors see all; others the
/// requests they made, are the beneficiary of, or act (or acted) on.
fn visible(p: &Principal, v: &RequestView) -> bool {
    projection_service::requests::visible_to(v, &p.user_id, &p.roles)
}

/// One request.
#[utoipa::path(get, path = "/requests/{id}", tag = "requests", params(("id" = String, Path, description = "Request id")),
    responses((status = 200, description = "The request", body = RequestView), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn get_request(
    State(state): State<QueryState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let v = requests(&state)?
        .get(&id)
        .map_err(internal)?
        .filter(|v| visible(&principal, v))
        .ok_or_else(|| Problem::not_found(format!("request {id} not found")))?;
    Ok(object_response(StatusCode::OK, v.version, None, &v))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestPage {
    pub list: Vec<RequestView>,
    pub next_page_token: Option<String>,
    pub total_count: u64,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct RequestFilter {
    pub requester_id: Option<String>,
    pub user_id: Option<String>,
    /// `in-progress`, `complete` or `cancelled`.
    pub status: Option<String>,
}

/// Requests the caller may see, oldest first, filtered. What it reads is
/// proportional to what the caller may see under the filter: their own
/// share of the requests (made, for them, acting on them), or one user's
/// for an admin or auditor who names the requester or beneficiary; only an
/// admin or auditor listing everyone's reads them all.
#[utoipa::path(get, path = "/requests", tag = "requests", params(RequestFilter, PageParams),
    responses((status = 200, description = "A page of requests", body = RequestPage), (status = 400, body = Problem)), security(("bearer" = [])))]
pub async fn list_requests(
    State(state): State<QueryState>,
    Extension(principal): Extension<Principal>,
    Query(filter): Query<RequestFilter>,
    Query(page): Query<PageParams>,
) -> Result<Response, Problem> {
    let size = page.size()?;
    let after = page.after()?;
    let keep = |view: &RequestView| {
        visible(&principal, view)
            && filter
                .requester_id
                .as_ref()
                .is_none_or(|r| *r == view.requester.id)
            && filter.user_id.as_ref().is_none_or(|u| *u == view.user.id)
            && filter
                .status
                .as_ref()
                .is_none_or(|s| *s == view.decision.status)
    };
    let everyone = principal.is_admin() || principal.has_role("auditor");
    let scope = if !everyone {
        RequestScope::Involving(&principal.user_id)
    } else if let Some(r) = &filter.requester_id {
        RequestScope::MadeBy(r)
    } else if let Some(u) = &filter.user_id {
        RequestScope::MadeFor(u)
    } else {
        RequestScope::All
    };
    let window = Window {
        after: after.as_deref(),
        size,
    };
    let found = requests(&state)?
        .page(scope, window, keep)
        .map_err(internal)?;
    Ok(Json(RequestPage {
        list: found.page.items,
        next_page_token: found.page.next.as_deref().map(page_token),
        total_count: found.total,
    })
    .into_response())
}

/// A node of a `targetFilter`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterNode {
    /// `AND`, `OR`, `NOT`, `EQUALS`, `CONTAINS`, `STARTS_WITH`, `GTE`, `LTE`.
    #[schema(pattern = "^(AND|OR|NOT|EQUALS|CONTAINS|STARTS_WITH|GTE|LTE)$")]
    pub operator: String,
    /// Nodes for AND/OR, a node for NOT, `{targetName, targetValue}` otherwise.
    #[schema(value_type = Object)]
    pub operand: Value,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SearchBody {
    #[serde(default)]
    pub target_filter: Option<FilterNode>,
    /// Comma-separated dotted paths, `-` for descending; default `-metadata.createdDate`.
    #[serde(default)]
    #[schema(max_length = 400)]
    pub sort_keys: Option<String>,
    #[serde(default, deserialize_with = "iga_http::json::whole_opt")]
    #[schema(minimum = 1, maximum = 1000)]
    pub page_size: Option<usize>,
    #[serde(default)]
    /// The `nextPageToken` of the previous page (an offset).
    #[schema(pattern = "^(3[0-9]){1,19}$")]
    pub page_token: Option<String>,
}

/// Most sort keys a search takes.
pub const MAX_SORT_KEYS: usize = 4;

/// Searches the requests the caller may see with a `targetFilter`.
#[utoipa::path(post, path = "/requests/search", tag = "requests", request_body = SearchBody,
    responses((status = 200, description = "A page of requests", body = RequestPage), (status = 400, body = Problem)), security(("bearer" = [])))]
pub async fn search_requests(
    State(state): State<QueryState>,
    Extension(principal): Extension<Principal>,
    iga_http::ApiJson(body, _): iga_http::ApiJson<SearchBody>,
) -> Result<Response, Problem> {
    let filter = body
        .target_filter
        .as_ref()
        .map(|f| TargetFilter::parse(&f.operator, &f.operand))
        .transpose()
        .map_err(|e| {
            let status = if e.too_large() {
                axum::http::StatusCode::UNPROCESSABLE_ENTITY
            } else {
                axum::http::StatusCode::BAD_REQUEST
            };
            Problem::new(status, format!("targetFilter: {e}")).with_field("targetFilter", e.0)
        })?;
    let page = PageParams {
        page_size: body.page_size,
        page_token: body.page_token.clone(),
    };
    let size = page.size()?;
    let offset: usize = match page.after()? {
        Some(bytes) => String::from_utf8(bytes)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                Problem::bad_request("pageToken is not one this service issued")
                    .with_field("pageToken", "invalid")
            })?,
        None => 0,
    };
    let sort_keys = body
        .sort_keys
        .clone()
        .unwrap_or_else(|| "-metadata.createdDate".into());
    let keys: Vec<(bool, Vec<String>)> = sort_keys
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| match k.strip_prefix('-') {
            Some(rest) => (true, rest.split('.').map(String::from).collect()),
            None => (
                false,
                k.trim_start_matches('+')
                    .split('.')
                    .map(String::from)
                    .collect(),
            ),
        })
        .collect();
    if keys.len() > MAX_SORT_KEYS || sort_keys.len() > 400 {
        return Err(
            Problem::bad_request(format!("at most {MAX_SORT_KEYS} sort keys"))
                .with_field("sortKeys", "too many"),
        );
    }
    let mut hits: Vec<(Vec<String>, String, Value)> = Vec::new();
    // Only an admin or auditor searches everyone's; anyone else their share.
    let scope = if principal.is_admin() || principal.has_role("auditor") {
        RequestScope::All
    } else {
        RequestScope::Involving(&principal.user_id)
    };
    for found in requests(&state)?.select(scope).map_err(internal)? {
        let (_, view) = found.map_err(internal)?;
        if !visible(&principal, &view) {
            continue;
        }
        let doc = serde_json::to_value(&view).map_err(internal)?;
        if filter.as_ref().is_some_and(|f| !f.matches(&doc)) {
            continue;
        }
        let sort: Vec<String> = keys
            .iter()
            .map(|(_, path)| {
                let path: Vec<&str> = path.iter().map(String::as_str).collect();
                let mut found = Vec::new();
                values_at(&doc, &path, &mut found);
                found.first().map(|v| text(v)).unwrap_or_default()
            })
            .collect();
        hits.push((sort, view.id.clone(), doc));
    }
    hits.sort_by(|a, b| {
        for (i, (desc, _)) in keys.iter().enumerate() {
            let o = a.0[i].cmp(&b.0[i]);
            if o != std::cmp::Ordering::Equal {
                return if *desc { o.reverse() } else { o };
            }
        }
        a.1.cmp(&b.1)
    });
    let total = hits.len();
    let list: Vec<Value> = hits
        .into_iter()
        .skip(offset)
        .take(size)
        .map(|h| h.2)
        .collect();
    let next = offset + list.len();
    Ok(Json(serde_json::json!({
        "list": list,
        "nextPageToken": (next < total).then(|| page_token(next.to_string().as_bytes())),
        "totalCount": total,
    }))
    .into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct TaskFilter {
    /// `active` (default) or `inactive`.
    #[param(pattern = "^(active|inactive)$")]
    pub actor_status: Option<String>,
}

async fn inbox(
    state: &QueryState,
    user_id: &str,
    filter: &TaskFilter,
    page: &PageParams,
) -> Result<Response, Problem> {
    let active = match filter.actor_status.as_deref().unwrap_or("active") {
        "active" => true,
        "inactive" => false,
        other => {
            return Err(Problem::bad_request(format!(
                "actorStatus {other:?} is not active or inactive"
            ))
            .with_field("actorStatus", "active or inactive"))
        }
    };
    let after = page.after()?;
    let window = Window {
        after: after.as_deref(),
        size: page.size()?,
    };
    let found = requests(state)?
        .tasks(user_id, active, window)
        .map_err(internal)?;
    Ok(Json(RequestPage {
        list: found.page.items,
        next_page_token: found.page.next.as_deref().map(page_token),
        total_count: found.total,
    })
    .into_response())
}

/// A user's task inbox, newest first (that user, their delegate, admins).
#[utoipa::path(get, path = "/users/{userId}/tasks", tag = "requests",
    params(("userId" = String, Path, description = "User id"), TaskFilter, PageParams),
    responses((status = 200, description = "A page of requests", body = RequestPage), (status = 404, description = "Not the caller's, nor their principal's", body = Problem)), security(("bearer" = [])))]
pub async fn user_tasks(
    State(state): State<QueryState>,
    Extension(principal): Extension<Principal>,
    Path(user_id): Path<String>,
    Query(filter): Query<TaskFilter>,
    Query(page): Query<PageParams>,
) -> Result<Response, Problem> {
    if principal.user_id != user_id && !principal.is_admin() {
        let user = state
            .models
            .users()
            .and_then(|users| users.get(&user_id))
            .map_err(internal)?;
        // Someone else's inbox does not exist for the caller.
        if user.and_then(|u| u.delegated_user_id) != Some(principal.user_id.clone()) {
            return Err(Problem::not_found(format!(
                "tasks of user {user_id} not found"
            )));
        }
    }
    inbox(&state, &user_id, &filter, &page).await
}

/// The caller's task inbox.
#[utoipa::path(get, path = "/me/tasks", tag = "requests", params(TaskFilter, PageParams),
    responses((status = 200, description = "A page of requests", body = RequestPage)), security(("bearer" = [])))]
pub async fn my_tasks(
    State(state): State<QueryState>,
    Extension(principal): Extension<Principal>,
    Query(filter): Query<TaskFilter>,
    Query(page): Query<PageParams>,
) -> Result<Response, Problem> {
    inbox(&state, &principal.user_id, &filter, &page).await
}
