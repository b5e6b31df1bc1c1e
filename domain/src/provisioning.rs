//! Provisioning: how a grant reaches the system it grants, and the rules
//! around its tasks, as pure functions (issue #17's foundation; the task
//! aggregate and its wiring come with the events).
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

use crate::{Context, DomainError};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ctx;

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
