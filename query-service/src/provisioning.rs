//! Reads of provisioning tasks: admins and auditors see every task, anyone
//! else the tasks assigned to them (their inbox of manual work).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use iga_api::ProvisioningTask;
use iga_http::page::{Page, PageParams};
use iga_http::{object_response, Principal, Problem};
use projection_service::provisioning::TaskScope;
use serde::Deserialize;

use crate::page::internal;
use crate::QueryState;

fn sees_all(p: &Principal) -> bool {
    p.is_admin() || p.has_role("auditor")
}

/// Whether `p` may see `task`: an admin, an auditor, or an assignee.
fn visible(p: &Principal, task: &ProvisioningTask) -> bool {
    sees_all(p) || task.assignee_ids.contains(&p.user_id)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct TaskFilter {
    /// `pending`, `done` or `failed`.
    #[param(pattern = "^(pending|done|failed)$")]
    pub status: Option<String>,
    /// Tasks assigned to this user (others than admins and auditors: only
    /// their own).
    pub assignee_id: Option<String>,
    /// The tasks of one grant.
    pub grant_id: Option<String>,
}

/// Provisioning tasks, oldest first (admin, auditor; anyone else: the tasks
/// assigned to them).
#[utoipa::path(get, path = "/provisioning/tasks", tag = "provisioning", params(TaskFilter, PageParams),
    responses((status = 200, description = "A page of tasks", body = Page<ProvisioningTask>), (status = 400, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_tasks(
    State(state): State<QueryState>,
    Extension(principal): Extension<Principal>,
    Query(filter): Query<TaskFilter>,
    Query(page): Query<PageParams>,
) -> Result<Response, Problem> {
    if let Some(s) = filter.status.as_deref() {
        if !["pending", "done", "failed"].contains(&s) {
            return Err(Problem::bad_request(format!(
                "status {s:?} is not pending, done or failed"
            ))
            .with_field("status", "pending, done or failed"));
        }
    }
    // The narrowest index; anyone but an admin or auditor reads their own.
    let assignee = match (&filter.assignee_id, sees_all(&principal)) {
        (_, false) => Some(principal.user_id.clone()),
        (a, true) => a.clone(),
    };
    let scope = match (&filter.grant_id, &assignee, &filter.status) {
        (Some(g), _, _) => TaskScope::Grant(g.clone()),
        (None, Some(a), _) => TaskScope::AssignedTo(a.clone()),
        (None, None, Some(s)) => TaskScope::Status(s.clone()),
        (None, None, None) => TaskScope::All,
    };
    let page = crate::page::list(
        &page,
        |window| {
            state
                .models
                .provisioning_tasks()?
                .page(&scope, window, |t| {
                    filter.status.as_deref().is_none_or(|s| s == t.status)
                        && assignee.as_ref().is_none_or(|a| t.assignee_ids.contains(a))
                        && filter.grant_id.as_ref().is_none_or(|g| *g == t.grant_id)
                        && visible(&principal, t)
                })
        },
        |t| t,
    )?;
    Ok(Json(page).into_response())
}

/// One provisioning task (admin, auditor, an assignee).
#[utoipa::path(get, path = "/provisioning/tasks/{taskId}", tag = "provisioning",
    params(("taskId" = String, Path, description = "Task id")),
    responses((status = 200, description = "The task", body = ProvisioningTask), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_task(
    State(state): State<QueryState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let task = state
        .models
        .provisioning_tasks()
        .and_then(|t| t.get(&id))
        .map_err(internal)?
        // Not yours: as if it did not exist (its ids say whose access it is).
        .filter(|t| visible(&principal, t))
        .ok_or_else(|| Problem::not_found(format!("provisioning task {id} not found")))?;
    Ok(object_response(StatusCode::OK, task.version, None, &task))
}
