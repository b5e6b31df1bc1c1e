//! Checks that the ids a command names exist (users, policies, an app and
//! what is inside it) before it runs, so a dangling reference is a 422 (a
//! body that names nothing) or a 404 (a path that does) naming the field,
//! never a silent write.

use axum::http::StatusCode;
use iga_domain::app::{App, AppFacts};
use iga_domain::policy::Policy;
use iga_domain::user::User;
use iga_http::Problem;

use crate::state::CommandState;
use crate::Outcome;

/// Most users one list in a command names.
pub const MAX_USER_IDS: usize = 100;

/// A well-formed body that names something that does not exist: 422.
pub fn names_nothing(detail: String, field: &str, message: String) -> Problem {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, detail).with_field(field, message)
}

/// Refuses ids that name no user (and lists longer than [`MAX_USER_IDS`],
/// before anything is loaded for them).
pub async fn users_exist(state: &CommandState, ids: &[String], field: &str) -> Result<(), Problem> {
    if ids.len() > MAX_USER_IDS {
        return Err(
            Problem::bad_request(format!("{field} names at most {MAX_USER_IDS} users"))
                .with_field(field, "too many"),
        );
    }
    for id in ids {
        let (user, _) = state.handler.load::<User>(id).await?;
        if !user.exists() {
            return Err(names_nothing(
                format!("user {id} does not exist"),
                field,
                format!("unknown user {id}"),
            ));
        }
    }
    Ok(())
}

/// Refuses a policy id that names no live policy (empty means none).
pub async fn policy_exists(state: &CommandState, id: &str, field: &str) -> Result<(), Problem> {
    if id.is_empty() {
        return Ok(());
    }
    let (policy, _) = state.handler.load::<Policy>(id).await?;
    if !policy.exists() || policy.deleted {
        return Err(names_nothing(
            format!("policy {id} does not exist"),
            field,
            format!("unknown policy {id}"),
        ));
    }
    Ok(())
}

/// Refuses a provisioning setting that names a webhook that is not live or
/// assignees who are not users (the setting's own shape is the domain's:
/// `iga_domain::provisioning::validate_setting`).
pub async fn provisioning_refs(
    state: &CommandState,
    setting: Option<&iga_schemas::v1::Provisioning>,
) -> Result<(), Problem> {
    let Some(p) = setting else {
        return Ok(());
    };
    users_exist(state, &p.assignee_ids, "provisioning.assigneeIds").await?;
    if p.mode == "webhook" && !p.webhook_id.is_empty() {
        let (hook, _) = state
            .handler
            .load::<iga_domain::webhook::Webhook>(&p.webhook_id)
            .await?;
        if !hook.exists() || hook.deleted {
            return Err(names_nothing(
                format!("webhook {} does not exist", p.webhook_id),
                "provisioning.webhookId",
                format!("unknown webhook {}", p.webhook_id),
            ));
        }
    }
    Ok(())
}

/// The app named in a path, as commands on what is inside it see it, with
/// its state (for its access entitlement) and its times.
pub async fn app_facts(
    state: &CommandState,
    app_id: &str,
) -> Result<(AppFacts, App, Outcome), Problem> {
    let (app, outcome) = state.handler.snapshot::<App>(app_id).await?;
    if !app.exists() {
        return Err(Problem::not_found(format!("app {app_id} not found")));
    }
    Ok((AppFacts::of(&app), app, outcome))
}
