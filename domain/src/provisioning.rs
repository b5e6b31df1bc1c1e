//! Provisioning: how a grant reaches the system it grants, and the rules
//! around its tasks. [`ProvisioningTask`] is the aggregate (stream
//! `provisioning-<taskId>`): opened when access starts or ends, closed
//! `done` or `failed` by an assignee, an admin, or (webhook mode) the
//! delivery engine; an admin reopens a failed one.
//!
//! - [`mode_for`]: an entitlement's setting wins over its app's; neither set
//!   is `none` (the grant is only recorded);
//! - [`assignees`]: who does a manual task: the named assignees, else the
//!   app's owners;
//! - [`may_complete`]: who may close a task: an admin or one of its
//!   assignees (a webhook task is closed by its delivery, or through the API
//!   after a 202);
//! - [`GrantState`]: a grant counts as held only while active; a failed
//!   deprovision keeps it held, loudly, until someone resolves it.

use iga_schemas::v1;

use crate::DomainError;
use crate::{Aggregate, Context, DomainEvent};

/// How a grant reaches its system.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Mode {
    /// Only recorded: nothing is told.
    #[default]
    None,
    /// A task for people.
    Manual,
    /// A signed delivery to the registered webhook.
    Webhook { webhook_id: String },
}

/// A provisioning setting as an app or an entitlement holds it; `None`:
/// not set here.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Setting {
    pub mode: Option<Mode>,
    pub assignee_ids: Vec<String>,
}

/// The mode of a grant of `entitlement` in `app`: the entitlement's setting
/// wins; then the app's; else [`Mode::None`].
pub fn mode_for(app: &Setting, entitlement: &Setting) -> Mode {
    entitlement
        .mode
        .clone()
        .or_else(|| app.mode.clone())
        .unwrap_or_default()
}

/// Who does a manual task: the assignees the deciding setting names (the
/// entitlement's if it sets a mode, else the app's), else the app's owners.
pub fn assignees(app: &Setting, entitlement: &Setting, app_owner_ids: &[String]) -> Vec<String> {
    let named = if entitlement.mode.is_some() {
        &entitlement.assignee_ids
    } else {
        &app.assignee_ids
    };
    if named.is_empty() {
        app_owner_ids.to_vec()
    } else {
        named.clone()
    }
}

/// Whether `ctx` may close a task assigned to `assignee_ids`.
pub fn may_complete(assignee_ids: &[String], ctx: &Context) -> Result<(), DomainError> {
    if ctx.is_admin() || assignee_ids.contains(&ctx.actor_id) {
        Ok(())
    } else {
        Err(DomainError::Forbidden(
            "only an admin or an assignee of the task completes it".into(),
        ))
    }
}

/// Where a grant stands with its system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantState {
    /// Recorded; its provision task is not done yet.
    Pending,
    /// Provisioned (or mode `none`).
    Active,
    /// Its provisioning failed: the access was never given.
    ProvisionFailed,
    /// Ending; its deprovision task is not done yet.
    Deprovisioning,
    /// Its deprovisioning failed: the access may still be there.
    DeprovisionFailed,
    /// Ended in its system too.
    Ended,
}

impl GrantState {
    /// Whether the grant counts as held (lists, `at=` queries, history):
    /// while active, and, because the access may still be there, while it
    /// is being or failed to be removed.
    pub fn held(self) -> bool {
        matches!(
            self,
            GrantState::Active | GrantState::Deprovisioning | GrantState::DeprovisionFailed
        )
    }

    /// The request's outcome while its grant is in this state.
    pub fn request_outcome(self) -> &'static str {
        match self {
            GrantState::Pending => "provisioning",
            GrantState::ProvisionFailed => "failed",
            _ => "provisioned",
        }
    }
}

/// The principal of what the service does itself (the delivery engine).
pub const SYSTEM: &str = "system";

/// Where a task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TaskStatus {
    #[default]
    Pending,
    Done,
    Failed,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProvisioningTask {
    pub opened: v1::ProvisioningTaskOpened,
    pub status: TaskStatus,
    pub message: String,
}

#[derive(Debug, Clone)]
pub enum TaskCommand {
    Open(Box<v1::ProvisioningTaskOpened>),
    /// Close it: `done` (true) or failed, with a message.
    Complete {
        done: bool,
        message: String,
    },
    /// An admin reopens a failed task.
    Retry,
}

impl ProvisioningTask {
    pub fn exists(&self) -> bool {
        !self.opened.task_id.is_empty()
    }
}

impl Aggregate for ProvisioningTask {
    type Command = TaskCommand;
    const TYPE: &'static str = "provisioning";

    fn decide(&self, c: &TaskCommand, ctx: &Context) -> Result<Vec<DomainEvent>, DomainError> {
        match c {
            TaskCommand::Open(o) => {
                if self.exists() {
                    return Ok(vec![]); // opened already: the fulfil step ran again
                }
                if o.action != "provision" && o.action != "deprovision" {
                    return Err(DomainError::invalid("action", "provision or deprovision"));
                }
                if !["none", "manual", "webhook"].contains(&o.mode.as_str()) {
                    return Err(DomainError::invalid("mode", "none, manual or webhook"));
                }
                if o.mode == "webhook" && o.webhook_id.is_empty() {
                    return Err(DomainError::invalid(
                        "webhookId",
                        "required in webhook mode",
                    ));
                }
                Ok(vec![(**o).clone().into()])
            }
            _ if !self.exists() => Err(DomainError::NotFound("provisioning task".into())),
            TaskCommand::Complete { done, message } => {
                // The delivery engine closes webhook tasks; people close theirs.
                if ctx.actor_id != SYSTEM {
                    may_complete(&self.opened.assignee_ids, ctx)?;
                }
                if crate::text::chars(message) > 4096 {
                    return Err(DomainError::invalid("message", "at most 4096 characters"));
                }
                match self.status {
                    TaskStatus::Pending => Ok(vec![v1::ProvisioningTaskCompleted {
                        task_id: self.opened.task_id.clone(),
                        outcome: if *done { "done" } else { "failed" }.into(),
                        message: message.clone(),
                        completed_by: ctx.actor_id.clone(),
                    }
                    .into()]),
                    _ => Err(DomainError::InvalidTransition(format!(
                        "task {} is closed already",
                        self.opened.task_id
                    ))),
                }
            }
            TaskCommand::Retry => {
                if !ctx.is_admin() {
                    return Err(DomainError::Forbidden(
                        "only an admin retries a task".into(),
                    ));
                }
                match self.status {
                    TaskStatus::Failed => Ok(vec![v1::ProvisioningTaskRetried {
                        task_id: self.opened.task_id.clone(),
                    }
                    .into()]),
                    TaskStatus::Pending => Ok(vec![]),
                    TaskStatus::Done => Err(DomainError::InvalidTransition(format!(
                        "task {} is done; there is nothing to retry",
                        self.opened.task_id
                    ))),
                }
            }
        }
    }

    fn evolve(mut self, event: &DomainEvent) -> Self {
        match event {
            DomainEvent::ProvisioningTaskOpened(e) => self.opened = e.clone(),
            DomainEvent::ProvisioningTaskCompleted(e) => {
                self.status = if e.outcome == "done" {
                    TaskStatus::Done
                } else {
                    TaskStatus::Failed
                };
                self.message = e.message.clone();
            }
            DomainEvent::ProvisioningTaskRetried(_) => self.status = TaskStatus::Pending,
            _ => {}
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ctx, given};

    fn opened(mode: &str) -> v1::ProvisioningTaskOpened {
        v1::ProvisioningTaskOpened {
            task_id: "t1".into(),
            action: "provision".into(),
            mode: mode.into(),
            grant_id: "g1".into(),
            request_id: "r1".into(),
            user_id: "ben".into(),
            app_id: "a1".into(),
            entitlement_id: "e1".into(),
            assignee_ids: vec!["ops".into()],
            webhook_id: if mode == "webhook" {
                "w1".into()
            } else {
                String::new()
            },
        }
    }

    fn complete(done: bool) -> TaskCommand {
        TaskCommand::Complete {
            done,
            message: "account created".into(),
        }
    }

    #[test]
    fn a_manual_task_is_closed_by_its_assignee_and_refused_to_a_stranger() {
        let task: &[DomainEvent] = &[opened("manual").into()];
        given::<ProvisioningTask>(task)
            .when(&complete(true), &ctx("ops", &[]))
            .then(&[v1::ProvisioningTaskCompleted {
                task_id: "t1".into(),
                outcome: "done".into(),
                message: "account created".into(),
                completed_by: "ops".into(),
            }
            .into()]);
        // The beneficiary is no assignee: they cannot say their access exists.
        for (who, roles) in [("ben", vec![]), ("eve", vec!["auditor"])] {
            given::<ProvisioningTask>(task)
                .when(&complete(true), &ctx(who, &roles))
                .then_error(DomainError::Forbidden(
                    "only an admin or an assignee of the task completes it".into(),
                ));
        }
        // The engine closes a webhook task; a closed task stays closed.
        let done = given::<ProvisioningTask>(&[opened("webhook").into()])
            .when(&complete(false), &ctx(SYSTEM, &[]))
            .then(&[v1::ProvisioningTaskCompleted {
                task_id: "t1".into(),
                outcome: "failed".into(),
                message: "account created".into(),
                completed_by: SYSTEM.into(),
            }
            .into()]);
        assert_eq!(done.status, TaskStatus::Failed);
        assert!(matches!(
            done.decide(&complete(true), &ctx("root", &["admin"])),
            Err(DomainError::InvalidTransition(_))
        ));
    }

    #[test]
    fn an_admin_reopens_a_failed_task_and_opening_twice_is_one_task() {
        let failed: Vec<DomainEvent> = vec![
            opened("manual").into(),
            v1::ProvisioningTaskCompleted {
                task_id: "t1".into(),
                outcome: "failed".into(),
                message: "no such account".into(),
                completed_by: "ops".into(),
            }
            .into(),
        ];
        given::<ProvisioningTask>(&failed)
            .when(&TaskCommand::Retry, &ctx("ops", &[]))
            .then_error(DomainError::Forbidden(
                "only an admin retries a task".into(),
            ));
        let again = given::<ProvisioningTask>(&failed)
            .when(&TaskCommand::Retry, &ctx("root", &["admin"]))
            .then(&[v1::ProvisioningTaskRetried {
                task_id: "t1".into(),
            }
            .into()]);
        assert_eq!(again.status, TaskStatus::Pending);
        given::<ProvisioningTask>(&failed[..1])
            .when(
                &TaskCommand::Open(Box::new(opened("manual"))),
                &ctx(SYSTEM, &[]),
            )
            .then(&[]);
        given::<ProvisioningTask>(&[])
            .when(
                &TaskCommand::Open(Box::new(v1::ProvisioningTaskOpened {
                    webhook_id: String::new(),
                    ..opened("webhook")
                })),
                &ctx(SYSTEM, &[]),
            )
            .then_error(DomainError::invalid(
                "webhookId",
                "required in webhook mode",
            ));
    }

    fn setting(mode: Option<Mode>, assignees: &[&str]) -> Setting {
        Setting {
            mode,
            assignee_ids: assignees.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn the_entitlement_setting_wins_then_the_app_then_none() {
        let hook = Mode::Webhook {
            webhook_id: "w1".into(),
        };
        let app = setting(Some(Mode::Manual), &[]);
        let ent = setting(Some(hook.clone()), &[]);
        assert_eq!(mode_for(&app, &ent), hook);
        assert_eq!(mode_for(&app, &Setting::default()), Mode::Manual);
        assert_eq!(
            mode_for(&Setting::default(), &Setting::default()),
            Mode::None
        );
    }

    #[test]
    fn manual_tasks_go_to_the_named_assignees_else_the_app_owners() {
        let owners = vec!["o1".to_string(), "o2".to_string()];
        let app = setting(Some(Mode::Manual), &["ops"]);
        assert_eq!(assignees(&app, &Setting::default(), &owners), ["ops"]);
        // The entitlement decides the mode, so its (empty) list decides too.
        let ent = setting(Some(Mode::Manual), &[]);
        assert_eq!(assignees(&app, &ent, &owners), owners);
        let ent = setting(Some(Mode::Manual), &["dba"]);
        assert_eq!(assignees(&app, &ent, &owners), ["dba"]);
    }

    #[test]
    fn an_assignee_or_an_admin_closes_a_task_and_a_stranger_does_not() {
        let assigned = vec!["ops".to_string()];
        assert!(may_complete(&assigned, &ctx("ops", &[])).is_ok());
        assert!(may_complete(&assigned, &ctx("root", &["admin"])).is_ok());
        for (who, roles) in [("sam", vec![]), ("eve", vec!["auditor"])] {
            assert!(matches!(
                may_complete(&assigned, &ctx(who, &roles)),
                Err(DomainError::Forbidden(_))
            ));
        }
    }

    #[test]
    fn a_grant_is_held_only_while_its_access_may_be_there() {
        use GrantState::*;
        assert!(!Pending.held() && !ProvisionFailed.held() && !Ended.held());
        assert!(Active.held() && Deprovisioning.held() && DeprovisionFailed.held());
        assert_eq!(Pending.request_outcome(), "provisioning");
        assert_eq!(Active.request_outcome(), "provisioned");
        assert_eq!(ProvisionFailed.request_outcome(), "failed");
    }
}
