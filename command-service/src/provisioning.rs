//! Provisioning tasks: opened when a grant with a plan starts or ends (by
//! the `reactors` crate's provisioning reactor, from the grant's events, so
//! every path that grants or ends access opens one), delivered to their
//! webhook or done by people, closed through the API or by their delivery's
//! answer. The rules are the domain's (`iga_domain::provisioning`).
//!
//! Ids are derived, so running any step again finds its work done: a task's
//! from its grant and action, a delivery's from the event that asked for it
//! (the task's opening or a retry).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use iga_api::ProvisioningTask as TaskObject;
use iga_domain::delivery::{Delivery, DeliveryCommand};
use iga_domain::provisioning::{opens_task, ProvisioningTask, TaskCommand, TaskStatus};
use iga_domain::{Aggregate, DomainError};
use iga_http::{object_response, ApiJson, Principal, Problem};
use iga_schemas::v1;
use serde::Deserialize;

use crate::fulfilment::system_meta;
use crate::state::{derived_id, meta, CommandState};
use crate::{CommandError, CommandHandler};

/// The task that gives (`provision`) or takes away (`deprovision`) grant
/// `grant_id`: one of each per grant.
pub fn task_id_for(grant_id: &str, action: &str) -> String {
    derived_id(action, grant_id)
}

/// Opens the task a grant's start or end calls for (nothing when its plan
/// is `none`); answers the task id, if any.
pub async fn open_for(
    handler: &CommandHandler,
    event: &iga_schemas::DomainEvent,
) -> Result<Option<String>, CommandError> {
    use iga_schemas::DomainEvent as E;
    let (action, grant_id, user_id, app_id, entitlement_id, request_id, plan) = match event {
        E::GrantIssued(g) => (
            "provision",
            &g.grant_id,
            &g.user_id,
            &g.app_id,
            &g.entitlement_id,
            &g.request_id,
            g.provisioning.as_ref(),
        ),
        E::GrantEnded(g) => (
            "deprovision",
            &g.grant_id,
            &g.user_id,
            &g.app_id,
            &g.entitlement_id,
            &g.request_id,
            g.provisioning.as_ref(),
        ),
        _ => return Ok(None),
    };
    let Some(plan) = plan.filter(|p| opens_task(Some(p))) else {
        return Ok(None);
    };
    let task_id = task_id_for(grant_id, action);
    let opened = v1::ProvisioningTaskOpened {
        task_id: task_id.clone(),
        action: action.into(),
        mode: plan.mode.clone(),
        grant_id: grant_id.clone(),
        request_id: request_id.clone(),
        user_id: user_id.clone(),
        app_id: app_id.clone(),
        entitlement_id: entitlement_id.clone(),
        assignee_ids: plan.assignee_ids.clone(),
        webhook_id: plan.webhook_id.clone(),
    };
    handler
        .execute::<ProvisioningTask>(
            &task_id,
            &TaskCommand::Open(Box::new(opened)),
            &system_meta(None, grant_id),
        )
        .await?;
    Ok(Some(task_id))
}

/// Asks for webhook task `task_id` to be delivered, once per `cause` (the
/// event that opened or reopened it): its delivery id derives from it.
pub async fn request_delivery(
    handler: &CommandHandler,
    task_id: &str,
    cause_event_id: &str,
) -> Result<Option<String>, CommandError> {
    let (task, _) = handler.load::<ProvisioningTask>(task_id).await?;
    if task.opened.mode != "webhook" || task.status != TaskStatus::Pending {
        return Ok(None);
    }
    let delivery_id = derived_id("delivery", cause_event_id);
    let request = DeliveryCommand::Request(v1::DeliveryRequested {
        delivery_id: delivery_id.clone(),
        webhook_id: task.opened.webhook_id.clone(),
        kind: "provisioning".into(),
        subject_id: task_id.to_string(),
        subject_position: 0,
    });
    handler
        .execute::<Delivery>(&delivery_id, &request, &system_meta(None, task_id))
        .await?;
    Ok(Some(delivery_id))
}

/// Closes the task a finished delivery was for: done on a 2xx (but 202:
/// the receiver completes it through the API), failed when the delivery
/// gave up. Nothing for a task closed already.
pub async fn close_from_delivery(
    handler: &CommandHandler,
    delivery_id: &str,
) -> Result<(), CommandError> {
    let (delivery, _) = handler.load::<Delivery>(delivery_id).await?;
    if delivery.requested.kind != "provisioning" {
        return Ok(());
    }
    use iga_domain::delivery::DeliveryStatus as S;
    let (done, message) = match delivery.status {
        S::Succeeded if delivery.accepted => return Ok(()),
        S::Succeeded => (
            true,
            format!("delivered to webhook {}", delivery.requested.webhook_id),
        ),
        S::Failed => (false, delivery.last_error.clone()),
        S::Pending => return Ok(()),
    };
    let task_id = &delivery.requested.subject_id;
    let (task, _) = handler.load::<ProvisioningTask>(task_id).await?;
    if task.status != TaskStatus::Pending {
        return Ok(());
    }
    let command = TaskCommand::Complete {
        done,
        message: iga_domain::text::truncate(&message, 4096),
    };
    let meta = system_meta(Some(format!("close\0{delivery_id}")), task_id);
    match handler
        .execute::<ProvisioningTask>(task_id, &command, &meta)
        .await
    {
        Ok(_) | Err(CommandError::Domain(DomainError::InvalidTransition(_))) => Ok(()),
        Err(e) => Err(e),
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompleteTask {
    /// `done`: the access was given (or taken away); `failed`: it could not be.
    #[schema(pattern = "^(done|failed)$")]
    pub outcome: String,
    #[serde(default)]
    #[schema(max_length = 4096)]
    pub message: String,
}

/// The task as its stream makes it.
async fn render(handler: &CommandHandler, id: &str) -> Result<TaskObject, Problem> {
    Ok(handler
        .view::<TaskObject>(&ProvisioningTask::stream_id(id))
        .await?)
}

impl crate::View for TaskObject {
    fn apply(&mut self, event: &iga_schemas::DomainEvent, recorded_at: i64, version: u64) {
        TaskObject::apply(self, event, recorded_at, version)
    }
}

async fn run(
    state: &CommandState,
    principal: &Principal,
    headers: &HeaderMap,
    id: &str,
    command: TaskCommand,
) -> Result<Response, Problem> {
    let meta = meta(principal, headers)?;
    let (_, outcome) = state
        .handler
        .execute::<ProvisioningTask>(id, &command, &meta)
        .await
        .map_err(|e| e.for_aggregate("provisioning task", id))?;
    let task = render(&state.handler, id).await?;
    Ok(object_response(
        StatusCode::OK,
        outcome.version,
        Some(outcome.position),
        &task,
    ))
}

/// Closes a task as done or failed (admin, an assignee; for a webhook task
/// that answered 202, its receiver with an admin's token).
#[utoipa::path(post, path = "/provisioning/tasks/{taskId}/complete", tag = "provisioning", request_body = CompleteTask,
    params(("taskId" = String, Path, description = "Task id")),
    responses((status = 200, description = "Closed", body = TaskObject), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, description = "Closed already", body = Problem)),
    security(("bearer" = [])))]
pub async fn complete_task(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body, _): ApiJson<CompleteTask>,
) -> Result<Response, Problem> {
    let done = match body.outcome.as_str() {
        "done" => true,
        "failed" => false,
        _ => {
            return Err(Problem::bad_request("outcome is done or failed")
                .with_field("outcome", "done or failed"))
        }
    };
    let command = TaskCommand::Complete {
        done,
        message: body.message,
    };
    run(&state, &principal, &headers, &id, command).await
}

/// Opens a failed task again (admin): a webhook task is delivered anew.
#[utoipa::path(post, path = "/provisioning/tasks/{taskId}/retry", tag = "provisioning",
    params(("taskId" = String, Path, description = "Task id")),
    responses((status = 200, description = "Pending again", body = TaskObject), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, description = "Done already", body = Problem)),
    security(("bearer" = [])))]
pub async fn retry_task(
    State(state): State<CommandState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    run(&state, &principal, &headers, &id, TaskCommand::Retry).await
}
