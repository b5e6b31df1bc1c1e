//! The AdminRoster aggregate: who the enabled admins are, in one stream
//! (`roster-admins`), so that the last one can never be disabled or lose the
//! role. Every change that makes a user an enabled admin or stops them being
//! one is decided here too and appended with the user's change (atomically
//! where the log can); two concurrent changes to two admins conflict on
//! this stream instead of both passing a check on stale reads.
//!
//! A log written before the roster existed has no roster stream: the
//! bootstrap seeds it with the built-in admin, and every later change to an
//! admin adds or removes them. Until an older admin is touched the roster
//! knows fewer admins than there are, which can only refuse a change, never
//! allow one it should not.

use std::collections::BTreeSet;

use iga_schemas::v1;

use crate::{Aggregate, Context, DomainError, DomainEvent};

/// The id of the roster's one stream.
pub const ROSTER_ID: &str = "admins";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminRoster {
    pub admins: BTreeSet<String>,
}

#[derive(Debug, Clone)]
pub struct SetAdmin {
    pub user_id: String,
    /// Whether the user is an enabled admin after the change.
    pub enabled_admin: bool,
}

impl Aggregate for AdminRoster {
    type Command = SetAdmin;
    const TYPE: &'static str = "roster";

    fn decide(&self, c: &SetAdmin, _ctx: &Context) -> Result<Vec<DomainEvent>, DomainError> {
        let mut after = self.admins.clone();
        if c.enabled_admin {
            after.insert(c.user_id.clone());
        } else {
            after.remove(&c.user_id);
        }
        if after == self.admins {
            return Ok(vec![]);
        }
        if after.is_empty() {
            return Err(DomainError::InvalidTransition(format!(
                "user {} is the last enabled admin: make another user an admin first",
                c.user_id
            )));
        }
        Ok(vec![v1::AdminRosterChanged {
            admin_ids: after.into_iter().collect(),
        }
        .into()])
    }

    fn evolve(mut self, event: &DomainEvent) -> Self {
        if let DomainEvent::AdminRosterChanged(e) = event {
            self.admins = e.admin_ids.iter().cloned().collect();
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ctx, given};

    fn roster(ids: &[&str]) -> DomainEvent {
        v1::AdminRosterChanged {
            admin_ids: ids.iter().map(|s| s.to_string()).collect(),
        }
        .into()
    }

    fn set(user: &str, enabled_admin: bool) -> SetAdmin {
        SetAdmin {
            user_id: user.into(),
            enabled_admin,
        }
    }

    #[test]
    fn given_one_admin_when_they_would_stop_being_one_then_it_is_refused() {
        given::<AdminRoster>(&[roster(&["admin"])])
            .when(&set("admin", false), &ctx("admin", &["admin"]))
            .then_error(DomainError::InvalidTransition(
                "user admin is the last enabled admin: make another user an admin first".into(),
            ));
    }

    #[test]
    fn given_two_admins_when_one_stops_then_the_other_remains() {
        given::<AdminRoster>(&[roster(&["a", "b"])])
            .when(&set("a", false), &ctx("b", &["admin"]))
            .then(&[roster(&["b"])]);
    }

    #[test]
    fn given_no_roster_when_an_admin_is_added_then_the_roster_starts() {
        given::<AdminRoster>(&[])
            .when(&set("admin", true), &ctx("system", &["admin"]))
            .then(&[roster(&["admin"])]);
        // No change, no event.
        given::<AdminRoster>(&[roster(&["admin"])])
            .when(&set("admin", true), &ctx("system", &["admin"]))
            .then(&[]);
        given::<AdminRoster>(&[roster(&["admin"])])
            .when(&set("someone", false), &ctx("admin", &["admin"]))
            .then(&[]);
    }
}
