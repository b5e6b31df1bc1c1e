//! What a decided request leads to, and how the request records it: the
//! rules command-service's `fulfil` step (and the fulfilment reactor, and the
//! start timer) follow, so each is tested here.
//!
//! - [`next`]: close the pair (rejected, cancelled, expired), end the grant
//!   (an approved removal), issue one (an approved request whose start has
//!   come), or nothing (in progress, not started, fulfilled already);
//! - [`issue`]: the grant an approved request issues, its end capped by the
//!   entitlement's maximum duration ([`GrantWindow`]);
//! - [`record`]: the request's own record of what happened: `provisioned`
//!   with the grant issued, `deprovisioned` with the grant ended, or
//!   `failed` with why (the grant was no longer allowed, [`grantable`]).

use iga_schemas::v1;

use crate::access::{grantable, AccessCommand, AccessPair, GrantFacts};
use crate::eligibility::GrantWindow;
use crate::request::{AccessRequest, RequestCommand, Status};

/// What finishing a request takes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// In progress, not started yet, or fulfilled already.
    Nothing,
    /// Rejected, cancelled or expired: free the pair for a new request.
    Close,
    /// An approved removal: end the grant.
    End,
    /// An approved request whose start has come: issue the grant from `starts`.
    Issue { starts: i64 },
}

/// What finishing `req` takes at `now`.
pub fn next(req: &AccessRequest, now: i64) -> Next {
    if req.approved != Some(true) {
        return if req.status == Status::InProgress {
            Next::Nothing
        } else {
            Next::Close
        };
    }
    if req.fulfilled {
        return Next::Nothing;
    }
    if req.is_removal() {
        return Next::End;
    }
    let start = req.created.start_date_micros;
    if start > now {
        // Not yet: the start timer runs this again at startDate.
        return Next::Nothing;
    }
    Next::Issue {
        starts: start.max(now),
    }
}

/// What issuing a grant needs besides the request: loaded by the caller.
#[derive(Debug, Clone)]
pub struct Issuing {
    /// The entitlement's cap on the grant's end.
    pub window: GrantWindow,
    /// What holds of the user, the entitlement and the app now.
    pub facts: GrantFacts,
    pub grant_id: String,
    /// How it reaches its system ([`crate::provisioning::plan`]).
    pub plan: Option<v1::Provisioning>,
}

/// The pair command for `next` (`None` for [`Next::Nothing`]). Issuing
/// needs the grant's window and what holds of its user, entitlement and app.
pub fn pair_command(
    req: &AccessRequest,
    request_id: &str,
    next: Next,
    issuing: impl FnOnce() -> Issuing,
) -> Option<AccessCommand> {
    let request_id = request_id.to_string();
    match next {
        Next::Nothing => None,
        Next::Close => Some(AccessCommand::Close { request_id }),
        Next::End => Some(AccessCommand::EndForRequest { request_id }),
        Next::Issue { starts } => Some(issue(req, &request_id, starts, issuing())),
    }
}

/// The grant approved request `req` issues from `starts`.
pub fn issue(
    req: &AccessRequest,
    request_id: &str,
    starts: i64,
    issuing: Issuing,
) -> AccessCommand {
    let Issuing {
        window,
        facts,
        grant_id,
        plan,
    } = issuing;
    let c = &req.created;
    AccessCommand::IssueForRequest {
        grant: v1::GrantIssued {
            grant_id,
            user_id: c.user_id.clone(),
            app_id: c.app_id.clone(),
            entitlement_id: c.entitlement_id.clone(),
            grant_type: "request".into(),
            request_id: request_id.to_string(),
            starts_at_micros: starts,
            deprovision_at_micros: window.deprovision_at(req.end_date_micros, starts),
            provisioning: plan,
        },
        facts,
    }
}

/// The approved request's record of its fulfilment by `command`, once the
/// pair went from `before` to `after`.
pub fn record(
    req: &AccessRequest,
    command: &AccessCommand,
    before: &AccessPair,
    after: &AccessPair,
) -> RequestCommand {
    let refused = match command {
        AccessCommand::IssueForRequest { facts, .. } if before.grant.is_none() => {
            grantable(facts).err()
        }
        _ => None,
    };
    if let Some(why) = refused {
        return RequestCommand::Fulfil {
            grant_id: String::new(),
            outcome: "failed".into(),
            message: why.to_string(),
        };
    }
    let (grant, outcome, done) = if req.is_removal() {
        (before, "deprovisioned", "ended")
    } else {
        (after, "provisioned", "issued")
    };
    let grant_id = grant
        .grant
        .as_ref()
        .map(|g| g.grant_id.clone())
        .unwrap_or_default();
    // A grant with a task to go through is not there (or gone) yet: the
    // task's outcome finishes the request's.
    let tasked = grant
        .grant
        .as_ref()
        .is_some_and(|g| crate::provisioning::opens_task(g.provisioning.as_ref()));
    let outcome = match (tasked, req.is_removal()) {
        (false, _) => outcome,
        (true, false) => "provisioning",
        (true, true) => "deprovisioning",
    };
    RequestCommand::Fulfil {
        message: if grant_id.is_empty() {
            String::new()
        } else {
            format!("grant {grant_id} {done}")
        },
        grant_id,
        outcome: outcome.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(kind: &str, approved: Option<bool>, status: Status, start: i64) -> AccessRequest {
        AccessRequest {
            created: v1::AccessRequestCreated {
                request_id: "r1".into(),
                request_type: kind.into(),
                user_id: "ben".into(),
                app_id: "a1".into(),
                entitlement_id: "e1".into(),
                start_date_micros: start,
                ..Default::default()
            },
            approved,
            status,
            ..Default::default()
        }
    }

    fn fulfilled(command: RequestCommand) -> (String, String, String) {
        match command {
            RequestCommand::Fulfil {
                grant_id,
                outcome,
                message,
            } => (grant_id, outcome, message),
            other => panic!("{other:?}"),
        }
    }

    const LIVE: GrantFacts = GrantFacts {
        user_enabled: true,
        entitlement_live: true,
        app_active: true,
    };

    #[test]
    fn what_comes_next_follows_the_decision_and_the_start() {
        let now = 100;
        let grant = "entitlementGrant";
        assert_eq!(
            next(&request(grant, None, Status::InProgress, 0), now),
            Next::Nothing
        );
        for status in [Status::Complete, Status::Cancelled] {
            assert_eq!(
                next(&request(grant, Some(false), status, 0), now),
                Next::Close
            );
        }
        assert_eq!(
            next(&request(grant, Some(true), Status::Complete, 0), now),
            Next::Issue { starts: now }
        );
        // Given a future start, when fulfilled before it, then nothing yet.
        assert_eq!(
            next(&request(grant, Some(true), Status::Complete, 500), now),
            Next::Nothing
        );
        assert_eq!(
            next(&request(grant, Some(true), Status::Complete, 500), 500),
            Next::Issue { starts: 500 }
        );
        assert_eq!(
            next(
                &request("entitlementRemove", Some(true), Status::Complete, 0),
                now
            ),
            Next::End
        );
        let mut done = request(grant, Some(true), Status::Complete, 0);
        done.fulfilled = true;
        assert_eq!(next(&done, now), Next::Nothing);
    }

    #[test]
    fn an_issued_grant_ends_at_the_request_end_or_after_the_maximum() {
        let mut req = request("entitlementGrant", Some(true), Status::Complete, 0);
        let window = GrantWindow {
            start: 0,
            max_seconds: 10,
        };
        let issuing = Issuing {
            window,
            facts: LIVE,
            grant_id: "g1".into(),
            plan: None,
        };
        let ends = |req: &AccessRequest| match issue(req, "r1", 1_000, issuing.clone()) {
            AccessCommand::IssueForRequest { grant, .. } => grant.deprovision_at_micros,
            other => panic!("{other:?}"),
        };
        assert_eq!(ends(&req), 1_000 + 10_000_000);
        req.end_date_micros = 5_000;
        assert_eq!(ends(&req), 5_000);
    }

    #[test]
    fn the_record_says_what_happened_to_the_grant() {
        let req = request("entitlementGrant", Some(true), Status::Complete, 0);
        let issue_cmd = |facts| {
            issue(
                &req,
                "r1",
                0,
                Issuing {
                    window: GrantWindow {
                        start: 0,
                        max_seconds: 0,
                    },
                    facts,
                    grant_id: "g1".into(),
                    plan: None,
                },
            )
        };
        let held = AccessPair {
            grant: Some(v1::GrantIssued {
                grant_id: "g1".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            fulfilled(record(
                &req,
                &issue_cmd(LIVE),
                &AccessPair::default(),
                &held
            )),
            ("g1".into(), "provisioned".into(), "grant g1 issued".into())
        );
        // Given a grant with a task to go through, then provisioning: the
        // task's outcome finishes the request.
        let tasked = AccessPair {
            grant: Some(v1::GrantIssued {
                grant_id: "g1".into(),
                provisioning: Some(v1::Provisioning {
                    mode: "manual".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            fulfilled(record(
                &req,
                &issue_cmd(LIVE),
                &AccessPair::default(),
                &tasked
            ))
            .1,
            "provisioning"
        );
        let removal = request("entitlementRemove", Some(true), Status::Complete, 0);
        let end = AccessCommand::EndForRequest {
            request_id: "r1".into(),
        };
        assert_eq!(
            fulfilled(record(&removal, &end, &tasked, &AccessPair::default())).1,
            "deprovisioning"
        );
        // Given a user disabled after the approval, then failed, with why.
        let disabled = GrantFacts {
            user_enabled: false,
            ..LIVE
        };
        let (grant_id, outcome, message) = fulfilled(record(
            &req,
            &issue_cmd(disabled),
            &AccessPair::default(),
            &AccessPair::default(),
        ));
        assert_eq!((grant_id.as_str(), outcome.as_str()), ("", "failed"));
        assert!(message.contains("disabled"), "{message}");
        // A removal records the grant it ended, as deprovisioned.
        let removal = request("entitlementRemove", Some(true), Status::Complete, 0);
        let end = AccessCommand::EndForRequest {
            request_id: "r1".into(),
        };
        assert_eq!(
            fulfilled(record(&removal, &end, &held, &AccessPair::default())),
            ("g1".into(), "deprovisioned".into(), "grant g1 ended".into())
        );
    }
}
