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
//! - [`validate_setting`]: what an app or entitlement may be set to;
//! - [`plan`]: what a grant issued now is to go through (stamped on the
//!   grant's event, so its state never depends on a later lookup);
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

/// Most people a manual task names.
pub const MAX_ASSIGNEES: usize = 100;

impl Mode {
    /// The mode as the API and the events spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Mode::None => "none",
            Mode::Manual => "manual",
            Mode::Webhook { .. } => "webhook",
        }
    }
}

impl Setting {
    /// The setting an app or entitlement holds (`None`: never set). Mode
    /// "" (an entitlement's "as its app") sets nothing.
    pub fn of(p: Option<&v1::Provisioning>) -> Setting {
        let Some(p) = p else {
            return Setting::default();
        };
        let mode = match p.mode.as_str() {
            "none" => Some(Mode::None),
            "manual" => Some(Mode::Manual),
            "webhook" => Some(Mode::Webhook {
                webhook_id: p.webhook_id.clone(),
            }),
            _ => None,
        };
        Setting {
            mode,
            assignee_ids: p.assignee_ids.clone(),
        }
    }
}

/// Whether `p` is a setting an app (`on_entitlement` false) or an
/// entitlement may hold: a known mode ("" only on an entitlement: as its
/// app), a webhook in webhook mode and only then, assignees only for manual
/// tasks, at most [`MAX_ASSIGNEES`].
pub fn validate_setting(p: &v1::Provisioning, on_entitlement: bool) -> Result<(), DomainError> {
    let modes: &[&str] = if on_entitlement {
        &["", "none", "manual", "webhook"]
    } else {
        &["none", "manual", "webhook"]
    };
    if !modes.contains(&p.mode.as_str()) {
        return Err(DomainError::unsatisfiable(
            "provisioning.mode",
            if on_entitlement {
                "none, manual or webhook, or empty for the app's"
            } else {
                "none, manual or webhook"
            },
        ));
    }
    match (p.mode == "webhook", p.webhook_id.is_empty()) {
        (true, true) => {
            return Err(DomainError::unsatisfiable(
                "provisioning.webhookId",
                "required in webhook mode",
            ))
        }
        (false, false) => {
            return Err(DomainError::unsatisfiable(
                "provisioning.webhookId",
                "only in webhook mode",
            ))
        }
        _ => {}
    }
    if !p.assignee_ids.is_empty() && p.mode != "manual" {
        return Err(DomainError::unsatisfiable(
            "provisioning.assigneeIds",
            "only in manual mode",
        ));
    }
    if p.assignee_ids.len() > MAX_ASSIGNEES {
        return Err(DomainError::unsatisfiable(
            "provisioning.assigneeIds",
            format!("at most {MAX_ASSIGNEES}"),
        ));
    }
    Ok(())
}

/// What a grant of an entitlement with setting `entitlement` in an app with
/// setting `app` (owned by `app_owner_ids`) goes through, decided when it is
/// issued: `None` when it is only recorded.
pub fn plan(
    app: Option<&v1::Provisioning>,
    entitlement: Option<&v1::Provisioning>,
    app_owner_ids: &[String],
) -> Option<v1::Provisioning> {
    let (app, entitlement) = (Setting::of(app), Setting::of(entitlement));
    let mode = mode_for(&app, &entitlement);
    let assignee_ids = match mode {
        Mode::None => return None,
        Mode::Manual => assignees(&app, &entitlement, app_owner_ids),
        Mode::Webhook { .. } => vec![],
    };
    Some(v1::Provisioning {
        mode: mode.name().into(),
        webhook_id: match &mode {
            Mode::Webhook { webhook_id } => webhook_id.clone(),
            _ => String::new(),
        },
        assignee_ids,
    })
}

/// Whether a grant or grant end with this plan opens a task.
pub fn opens_task(plan: Option<&v1::Provisioning>) -> bool {
    plan.is_some_and(|p| !p.mode.is_empty() && p.mode != "none")
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

/// Whether `ctx` may close a task assigned to `assignee_ids` about the
/// access of `user_id`: an admin, or an assignee who is not that user (an
/// app owner who asked for access to their own app does not say it is
/// there).
pub fn may_complete(
    assignee_ids: &[String],
    user_id: &str,
    ctx: &Context,
) -> Result<(), DomainError> {
    if ctx.is_admin() {
        return Ok(());
    }
    if !assignee_ids.contains(&ctx.actor_id) {
        return Err(DomainError::Forbidden(
            "only an admin or an assignee of the task completes it".into(),
        ));
    }
    if ctx.actor_id == user_id {
        return Err(DomainError::Forbidden(
            "nobody but an admin completes the task of their own access".into(),
        ));
    }
    Ok(())
}

/// Where a grant stands with its system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GrantState {
    #[default]
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

    /// The state as the API spells it.
    pub fn name(self) -> &'static str {
        match self {
            GrantState::Pending => "pending",
            GrantState::Active => "active",
            GrantState::ProvisionFailed => "provisionFailed",
            GrantState::Deprovisioning => "deprovisioning",
            GrantState::DeprovisionFailed => "deprovisionFailed",
            GrantState::Ended => "ended",
        }
    }

    /// The state of a grant just issued with `plan`.
    pub fn issued(plan: Option<&v1::Provisioning>) -> GrantState {
        if opens_task(plan) {
            GrantState::Pending
        } else {
            GrantState::Active
        }
    }

    /// The state once the grant ended with `plan`: it is gone, or (a task
    /// to take it away) still held until that is done.
    pub fn ended(self, plan: Option<&v1::Provisioning>) -> GrantState {
        if opens_task(plan) {
            GrantState::Deprovisioning
        } else {
            GrantState::Ended
        }
    }

    /// The state once a task of `action` ("provision", "deprovision") closed
    /// (`done` or failed) or was reopened (`reopened`). A provision task
    /// that closes after the grant was ended changes nothing: the grant's
    /// end decides.
    pub fn task(self, action: &str, outcome: TaskOutcome) -> GrantState {
        use GrantState::*;
        match (action, self, outcome) {
            ("provision", Pending | ProvisionFailed, TaskOutcome::Done) => Active,
            ("provision", Pending | ProvisionFailed, TaskOutcome::Failed) => ProvisionFailed,
            ("provision", Pending | ProvisionFailed, TaskOutcome::Reopened) => Pending,
            ("deprovision", Deprovisioning | DeprovisionFailed, TaskOutcome::Done) => Ended,
            ("deprovision", Deprovisioning | DeprovisionFailed, TaskOutcome::Failed) => {
                DeprovisionFailed
            }
            ("deprovision", Deprovisioning | DeprovisionFailed, TaskOutcome::Reopened) => {
                Deprovisioning
            }
            (_, state, _) => state,
        }
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

/// What became of a task, as far as its grant is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskOutcome {
    Done,
    Failed,
    Reopened,
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
                    may_complete(&self.opened.assignee_ids, &self.opened.user_id, ctx)?;
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
                        grant_id: self.opened.grant_id.clone(),
                        request_id: self.opened.request_id.clone(),
                        action: self.opened.action.clone(),
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
                grant_id: "g1".into(),
                request_id: "r1".into(),
                action: "provision".into(),
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
                grant_id: "g1".into(),
                request_id: "r1".into(),
                action: "provision".into(),
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
                grant_id: "g1".into(),
                request_id: "r1".into(),
                action: "provision".into(),
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
        assert!(may_complete(&assigned, "ben", &ctx("ops", &[])).is_ok());
        assert!(may_complete(&assigned, "ben", &ctx("root", &["admin"])).is_ok());
        for (who, roles) in [("sam", vec![]), ("eve", vec!["auditor"])] {
            assert!(matches!(
                may_complete(&assigned, "ben", &ctx(who, &roles)),
                Err(DomainError::Forbidden(_))
            ));
        }
        // An assignee whose own access it is (an owner who asked for access
        // to their own app) does not close it; an admin may.
        assert!(matches!(
            may_complete(&assigned, "ops", &ctx("ops", &[])),
            Err(DomainError::Forbidden(_))
        ));
        assert!(may_complete(&assigned, "root", &ctx("root", &["admin"])).is_ok());
    }

    fn planned(mode: &str) -> v1::Provisioning {
        v1::Provisioning {
            mode: mode.into(),
            webhook_id: if mode == "webhook" {
                "w1".into()
            } else {
                String::new()
            },
            assignee_ids: vec![],
        }
    }

    #[test]
    fn settings_name_a_known_mode_and_only_what_it_uses() {
        for mode in ["none", "manual", "webhook"] {
            assert!(validate_setting(&planned(mode), false).is_ok(), "{mode}");
            assert!(validate_setting(&planned(mode), true).is_ok(), "{mode}");
        }
        // "" is an entitlement's "as its app"; an app has nothing to defer to.
        assert!(validate_setting(&planned(""), true).is_ok());
        let refused = |p: v1::Provisioning, on_ent: bool| match validate_setting(&p, on_ent) {
            Err(DomainError::Unsatisfiable { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(refused(planned(""), false), "provisioning.mode");
        assert_eq!(refused(planned("connector"), true), "provisioning.mode");
        let no_hook = v1::Provisioning {
            webhook_id: String::new(),
            ..planned("webhook")
        };
        assert_eq!(refused(no_hook, false), "provisioning.webhookId");
        let stray_hook = v1::Provisioning {
            webhook_id: "w1".into(),
            ..planned("manual")
        };
        assert_eq!(refused(stray_hook, false), "provisioning.webhookId");
        let stray_people = v1::Provisioning {
            assignee_ids: vec!["ops".into()],
            ..planned("webhook")
        };
        assert_eq!(refused(stray_people, true), "provisioning.assigneeIds");
        let crowd = v1::Provisioning {
            assignee_ids: (0..=MAX_ASSIGNEES).map(|i| i.to_string()).collect(),
            ..planned("manual")
        };
        assert_eq!(refused(crowd, false), "provisioning.assigneeIds");
    }

    #[test]
    fn the_plan_stamped_on_a_grant_resolves_mode_webhook_and_people() {
        let owners = vec!["o1".to_string()];
        assert_eq!(plan(None, None, &owners), None);
        assert_eq!(plan(Some(&planned("none")), None, &owners), None);
        // The entitlement's "" defers to the app.
        let manual = plan(Some(&planned("manual")), Some(&planned("")), &owners).unwrap();
        assert_eq!(
            (manual.mode.as_str(), manual.assignee_ids),
            ("manual", owners.clone())
        );
        // The entitlement's own mode wins, even "none" over an app's webhook.
        assert_eq!(
            plan(Some(&planned("webhook")), Some(&planned("none")), &owners),
            None
        );
        let hook = plan(Some(&planned("manual")), Some(&planned("webhook")), &owners).unwrap();
        assert_eq!(
            (hook.mode.as_str(), hook.webhook_id.as_str()),
            ("webhook", "w1")
        );
        assert!(hook.assignee_ids.is_empty());
        assert!(opens_task(Some(&hook)) && !opens_task(None));
    }

    #[test]
    fn a_grant_goes_pending_active_deprovisioning_ended_with_its_tasks() {
        use GrantState::*;
        use TaskOutcome::*;
        let hook = planned("webhook");
        // Given a grant issued with a plan, when its task is done, it is held.
        let issued = GrantState::issued(Some(&hook));
        assert_eq!(issued, Pending);
        assert_eq!(GrantState::issued(None), Active);
        assert_eq!(issued.task("provision", Failed), ProvisionFailed);
        assert_eq!(
            issued.task("provision", Failed).task("provision", Reopened),
            Pending
        );
        let active = issued.task("provision", Done);
        assert_eq!(active, Active);
        // Ending it keeps it held until it is gone from its system too.
        let ending = active.ended(Some(&hook));
        assert_eq!(ending, Deprovisioning);
        assert_eq!(active.ended(None), Ended);
        assert_eq!(ending.task("deprovision", Failed), DeprovisionFailed);
        assert!(ending.task("deprovision", Failed).held());
        assert_eq!(
            ending.task("deprovision", Failed).task("deprovision", Done),
            Ended
        );
        // A late provision answer after the grant was ended changes nothing.
        let revoked_pending = issued.ended(Some(&hook));
        assert_eq!(revoked_pending.task("provision", Done), Deprovisioning);
        // And a deprovision answer never revives an active grant.
        assert_eq!(active.task("deprovision", Done), Active);
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
