//! The AccessPair aggregate: one user × one entitlement. It holds the open
//! grant and removal requests (so a second identical request is a
//! `DUPLICATE`, even under concurrency) and the grant, if any (so a grant
//! request for held access is `ALREADY_GRANTED` and fulfilment issues at most
//! one grant per request). Its stream is `access-<userId>_<entitlementId>`.

use iga_schemas::v1;

use crate::app::AppFacts;
use crate::{Aggregate, Context, DomainError, DomainEvent};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccessPair {
    pub user_id: String,
    pub entitlement_id: String,
    pub open_grant_request: Option<String>,
    pub open_remove_request: Option<String>,
    /// The grant held now.
    pub grant: Option<v1::GrantIssued>,
    /// The last grant that ended, and how: what a revocation answers.
    pub last_ended: Option<(v1::GrantIssued, v1::GrantEnded)>,
    /// Requests whose fulfilment was recorded here (grants issued or ended).
    pub fulfilled_requests: Vec<String>,
}

/// Why a request for a pair is refused: the API's per-pair error codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairRefusal {
    /// An open request of the same kind: its id.
    Duplicate(String),
    AlreadyGranted,
    NotGranted,
}

impl PairRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            PairRefusal::Duplicate(_) => "DUPLICATE",
            PairRefusal::AlreadyGranted => "ALREADY_GRANTED",
            PairRefusal::NotGranted => "NOT_GRANTED",
        }
    }
}

/// The stream key of the pair.
pub fn pair_key(user_id: &str, entitlement_id: &str) -> String {
    format!("{user_id}_{entitlement_id}")
}

impl AccessPair {
    /// Whether a new request of this kind (`remove` or not) may be opened.
    pub fn refusal(&self, remove: bool) -> Option<PairRefusal> {
        let open = if remove {
            &self.open_remove_request
        } else {
            &self.open_grant_request
        };
        if let Some(id) = open {
            return Some(PairRefusal::Duplicate(id.clone()));
        }
        match (remove, self.grant.is_some()) {
            (false, true) => Some(PairRefusal::AlreadyGranted),
            (true, false) => Some(PairRefusal::NotGranted),
            _ => None,
        }
    }
}

/// What must hold of the user, the entitlement and its app for access to be
/// granted, on every path that grants (a fulfilled request, a direct grant),
/// checked when the grant is made, not when it was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantFacts {
    pub user_enabled: bool,
    /// The entitlement exists and is not deleted.
    pub entitlement_live: bool,
    /// The app exists, is not deleted and is active.
    pub app_active: bool,
}

impl GrantFacts {
    /// Facts under which anything may be granted (for tests and callers
    /// that checked already).
    pub const ALL_GOOD: GrantFacts = GrantFacts {
        user_enabled: true,
        entitlement_live: true,
        app_active: true,
    };
}

/// Whether access may be granted under `facts`; why not, otherwise.
pub fn grantable(facts: &GrantFacts) -> Result<(), DomainError> {
    if !facts.user_enabled {
        return Err(DomainError::InvalidTransition(
            "the user is disabled or does not exist".into(),
        ));
    }
    if !facts.entitlement_live {
        return Err(DomainError::InvalidTransition(
            "the entitlement is deleted or does not exist".into(),
        ));
    }
    if !facts.app_active {
        return Err(DomainError::InvalidTransition(
            "the app is inactive, deleted or does not exist".into(),
        ));
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub enum AccessCommand {
    /// Opens a request. `holder_gone` says the open request of this kind
    /// never got written (its writer died): it may be replaced.
    Open {
        user_id: String,
        entitlement_id: String,
        request_id: String,
        remove: bool,
        holder_gone: bool,
    },
    /// Closes a request that ended without fulfilment (rejected, cancelled, expired).
    Close {
        request_id: String,
    },
    /// Fulfils an approved grant request: issues the grant (if `facts` allow
    /// it still; otherwise nothing is granted), closes the request.
    IssueForRequest {
        grant: v1::GrantIssued,
        facts: GrantFacts,
    },
    /// Fulfils an approved removal request: ends the grant, closes the request.
    EndForRequest {
        request_id: String,
    },
    /// A direct grant by an admin or an owner of the app.
    Grant {
        grant: v1::GrantIssued,
        app: AppFacts,
        facts: GrantFacts,
    },
    Revoke {
        reason: String,
        app: AppFacts,
    },
    ChangeDuration {
        deprovision_at_micros: i64,
        app: AppFacts,
    },
    /// The grant's `deprovisionAt` passed (issued by the timer).
    Expire {
        grant_id: String,
    },
    /// An access review's item `item_id` was decided `revoke` (issued by the
    /// service): grant `grant_id` ends, if it is still the pair's grant.
    EndForReview {
        grant_id: String,
        item_id: String,
    },
}

impl Aggregate for AccessPair {
    type Command = AccessCommand;
    const TYPE: &'static str = "access";

    fn decide(&self, c: &AccessCommand, ctx: &Context) -> Result<Vec<DomainEvent>, DomainError> {
        use AccessCommand as C;
        let ended =
            |grant: &v1::GrantIssued, at: i64, reason: &str, request_id: &str| -> DomainEvent {
                v1::GrantEnded {
                    grant_id: grant.grant_id.clone(),
                    user_id: grant.user_id.clone(),
                    entitlement_id: grant.entitlement_id.clone(),
                    ended_at_micros: at,
                    reason: reason.into(),
                    request_id: request_id.into(),
                    comment: String::new(),
                    // Taken away by the system that was given it.
                    provisioning: grant.provisioning.clone(),
                    app_id: grant.app_id.clone(),
                }
                .into()
            };
        let closed = |request_id: &str| -> DomainEvent {
            v1::AccessRequestClosed {
                user_id: self.user_id.clone(),
                entitlement_id: self.entitlement_id.clone(),
                request_id: request_id.into(),
            }
            .into()
        };
        let admin_or_owner = |app: &AppFacts| {
            if app.admin_or_owner(ctx) {
                Ok(())
            } else {
                Err(DomainError::Forbidden(
                    "only an admin or an owner of the app grants and revokes directly".into(),
                ))
            }
        };
        match c {
            C::Open {
                user_id,
                entitlement_id,
                request_id,
                remove,
                holder_gone,
            } => {
                let open = if *remove {
                    &self.open_remove_request
                } else {
                    &self.open_grant_request
                };
                if open.as_ref() == Some(request_id) {
                    return Ok(vec![]); // a retry
                }
                match self.refusal(*remove) {
                    Some(PairRefusal::Duplicate(_)) if *holder_gone => {}
                    Some(r) => {
                        return Err(DomainError::AlreadyExists(match r {
                            PairRefusal::Duplicate(id) => format!("open request {id}"),
                            PairRefusal::AlreadyGranted => "grant".into(),
                            PairRefusal::NotGranted => "no grant".into(),
                        }))
                    }
                    None => {}
                }
                Ok(vec![v1::AccessRequestOpened {
                    user_id: user_id.clone(),
                    entitlement_id: entitlement_id.clone(),
                    request_id: request_id.clone(),
                    kind: if *remove { "remove" } else { "grant" }.into(),
                }
                .into()])
            }
            C::Close { request_id } => Ok(
                if self.open_grant_request.as_ref() == Some(request_id)
                    || self.open_remove_request.as_ref() == Some(request_id)
                {
                    vec![closed(request_id)]
                } else {
                    vec![]
                },
            ),
            C::IssueForRequest { grant, facts } => {
                if self.fulfilled_requests.contains(&grant.request_id) {
                    return Ok(vec![]);
                }
                let mut events = Vec::new();
                // Held already (granted directly meanwhile): the request is
                // fulfilled by that grant, nothing new is issued. No longer
                // grantable (the user disabled, the entitlement deleted, the
                // app deactivated since the approval): nothing is issued and
                // the request records why.
                if self.grant.is_none() && grantable(facts).is_ok() {
                    events.push(grant.clone().into());
                }
                if self.open_grant_request.as_ref() == Some(&grant.request_id) {
                    events.push(closed(&grant.request_id));
                }
                Ok(events)
            }
            C::EndForRequest { request_id } => {
                if self.fulfilled_requests.contains(request_id) {
                    return Ok(vec![]);
                }
                let mut events = Vec::new();
                if let Some(g) = &self.grant {
                    events.push(ended(g, ctx.now_unix_micros, "removal request", request_id));
                }
                if self.open_remove_request.as_ref() == Some(request_id) {
                    events.push(closed(request_id));
                }
                Ok(events)
            }
            C::Grant { grant, app, facts } => {
                admin_or_owner(app)?;
                app.require_live()?;
                grantable(facts)?;
                if self.grant.is_some() {
                    return Err(DomainError::InvalidTransition(format!(
                        "user {} already holds entitlement {}",
                        grant.user_id, grant.entitlement_id
                    )));
                }
                if grant.deprovision_at_micros != 0
                    && grant.deprovision_at_micros <= ctx.now_unix_micros
                {
                    return Err(DomainError::unsatisfiable(
                        "deprovisionAt",
                        "must be in the future",
                    ));
                }
                Ok(vec![grant.clone().into()])
            }
            C::Revoke { reason, app } => {
                admin_or_owner(app)?;
                let Some(g) = &self.grant else {
                    return Err(DomainError::NotFound("grant".into()));
                };
                let mut event = ended(g, ctx.now_unix_micros, "revoked", "");
                if let DomainEvent::GrantEnded(e) = &mut event {
                    e.comment.clone_from(reason);
                }
                Ok(vec![event])
            }
            C::ChangeDuration {
                deprovision_at_micros,
                app,
            } => {
                admin_or_owner(app)?;
                let Some(g) = &self.grant else {
                    return Err(DomainError::NotFound("grant".into()));
                };
                if *deprovision_at_micros != 0 && *deprovision_at_micros <= ctx.now_unix_micros {
                    return Err(DomainError::unsatisfiable(
                        "deprovisionAt",
                        "must be in the future",
                    ));
                }
                if g.deprovision_at_micros == *deprovision_at_micros {
                    return Ok(vec![]);
                }
                Ok(vec![v1::GrantDurationChanged {
                    grant_id: g.grant_id.clone(),
                    user_id: g.user_id.clone(),
                    entitlement_id: g.entitlement_id.clone(),
                    deprovision_at_micros: *deprovision_at_micros,
                }
                .into()])
            }
            C::EndForReview { grant_id, item_id } => {
                if ctx.actor_id != crate::provisioning::SYSTEM {
                    return Err(DomainError::Forbidden(
                        "only the service ends a grant for a review".into(),
                    ));
                }
                Ok(match &self.grant {
                    Some(g) if &g.grant_id == grant_id => {
                        let mut event = ended(g, ctx.now_unix_micros, "review", "");
                        if let DomainEvent::GrantEnded(e) = &mut event {
                            e.comment = format!("revoked by access review item {item_id}");
                        }
                        vec![event]
                    }
                    // Ended already (or another grant since): nothing to do.
                    _ => vec![],
                })
            }
            C::Expire { grant_id } => Ok(match &self.grant {
                Some(g)
                    if &g.grant_id == grant_id
                        && g.deprovision_at_micros != 0
                        && g.deprovision_at_micros <= ctx.now_unix_micros =>
                {
                    vec![ended(g, g.deprovision_at_micros, "expired", "")]
                }
                _ => vec![],
            }),
        }
    }

    fn evolve(mut self, event: &DomainEvent) -> Self {
        match event {
            DomainEvent::AccessRequestOpened(e) => {
                self.user_id.clone_from(&e.user_id);
                self.entitlement_id.clone_from(&e.entitlement_id);
                if e.kind == "remove" {
                    self.open_remove_request = Some(e.request_id.clone());
                } else {
                    self.open_grant_request = Some(e.request_id.clone());
                }
            }
            DomainEvent::AccessRequestClosed(e) => {
                if self.open_grant_request.as_ref() == Some(&e.request_id) {
                    self.open_grant_request = None;
                }
                if self.open_remove_request.as_ref() == Some(&e.request_id) {
                    self.open_remove_request = None;
                }
            }
            DomainEvent::GrantIssued(e) => {
                self.user_id.clone_from(&e.user_id);
                self.entitlement_id.clone_from(&e.entitlement_id);
                if !e.request_id.is_empty() {
                    self.fulfilled_requests.push(e.request_id.clone());
                }
                self.grant = Some(e.clone());
            }
            DomainEvent::GrantDurationChanged(e) => {
                if let Some(g) = &mut self.grant {
                    g.deprovision_at_micros = e.deprovision_at_micros;
                }
            }
            DomainEvent::GrantEnded(e) => {
                if !e.request_id.is_empty() {
                    self.fulfilled_requests.push(e.request_id.clone());
                }
                if let Some(g) = self.grant.take() {
                    self.last_ended = Some((g, e.clone()));
                }
            }
            _ => {}
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ctx, given};

    fn open(request: &str, remove: bool) -> AccessCommand {
        AccessCommand::Open {
            user_id: "u1".into(),
            entitlement_id: "e1".into(),
            request_id: request.into(),
            remove,
            holder_gone: false,
        }
    }

    fn opened(request: &str) -> DomainEvent {
        v1::AccessRequestOpened {
            user_id: "u1".into(),
            entitlement_id: "e1".into(),
            request_id: request.into(),
            kind: "grant".into(),
        }
        .into()
    }

    fn issued(request: &str) -> v1::GrantIssued {
        v1::GrantIssued {
            grant_id: "g1".into(),
            user_id: "u1".into(),
            app_id: "a1".into(),
            entitlement_id: "e1".into(),
            grant_type: "request".into(),
            request_id: request.into(),
            starts_at_micros: 1,
            deprovision_at_micros: 0,
            provisioning: None,
        }
    }

    fn system() -> Context {
        ctx("system", &[])
    }

    #[test]
    fn one_open_request_per_kind_and_none_for_held_access() {
        given::<AccessPair>(&[])
            .when(&open("r1", false), &system())
            .then(&[opened("r1")]);
        given::<AccessPair>(&[opened("r1")])
            .when(&open("r1", false), &system())
            .then(&[]);
        given::<AccessPair>(&[opened("r1")])
            .when(&open("r2", false), &system())
            .then_error(DomainError::AlreadyExists("open request r1".into()));
        given::<AccessPair>(&[issued("r0").into()])
            .when(&open("r2", false), &system())
            .then_error(DomainError::AlreadyExists("grant".into()));
        given::<AccessPair>(&[])
            .when(&open("r3", true), &system())
            .then_error(DomainError::AlreadyExists("no grant".into()));
    }

    #[test]
    fn fulfilment_issues_one_grant_however_often_it_runs() {
        let closed: DomainEvent = v1::AccessRequestClosed {
            user_id: "u1".into(),
            entitlement_id: "e1".into(),
            request_id: "r1".into(),
        }
        .into();
        given::<AccessPair>(&[opened("r1")])
            .when(&issue("r1", GrantFacts::ALL_GOOD), &system())
            .then(&[issued("r1").into(), closed.clone()]);
        given::<AccessPair>(&[opened("r1"), issued("r1").into(), closed])
            .when(&issue("r1", GrantFacts::ALL_GOOD), &system())
            .then(&[]);
    }

    fn issue(request: &str, facts: GrantFacts) -> AccessCommand {
        AccessCommand::IssueForRequest {
            grant: issued(request),
            facts,
        }
    }

    fn broken() -> [(GrantFacts, &'static str); 3] {
        let ok = GrantFacts::ALL_GOOD;
        [
            (
                GrantFacts {
                    user_enabled: false,
                    ..ok
                },
                "the user is disabled or does not exist",
            ),
            (
                GrantFacts {
                    entitlement_live: false,
                    ..ok
                },
                "the entitlement is deleted or does not exist",
            ),
            (
                GrantFacts {
                    app_active: false,
                    ..ok
                },
                "the app is inactive, deleted or does not exist",
            ),
        ]
    }

    #[test]
    fn given_an_approved_request_when_the_grant_is_no_longer_allowed_then_nothing_is_granted() {
        let closed: DomainEvent = v1::AccessRequestClosed {
            user_id: "u1".into(),
            entitlement_id: "e1".into(),
            request_id: "r1".into(),
        }
        .into();
        for (facts, _) in broken() {
            given::<AccessPair>(&[opened("r1")])
                .when(&issue("r1", facts), &system())
                .then(std::slice::from_ref(&closed));
        }
    }

    #[test]
    fn given_a_direct_grant_when_the_user_or_entitlement_or_app_is_not_live_then_it_is_refused() {
        let app = AppFacts {
            app_id: "a1".into(),
            exists: true,
            deleted: false,
            owner_ids: vec![],
        };
        let mut g = issued("");
        g.grant_type = "admin".into();
        for (facts, why) in broken() {
            given::<AccessPair>(&[])
                .when(
                    &AccessCommand::Grant {
                        grant: g.clone(),
                        app: app.clone(),
                        facts,
                    },
                    &ctx("boss", &["admin"]),
                )
                .then_error(DomainError::InvalidTransition(why.into()));
        }
    }

    #[test]
    fn grants_expire_at_their_time_only() {
        let mut g = issued("");
        g.grant_type = "admin".into();
        g.deprovision_at_micros = ctx("x", &[]).now_unix_micros - 5;
        given::<AccessPair>(&[g.clone().into()])
            .when(
                &AccessCommand::Expire {
                    grant_id: "g1".into(),
                },
                &system(),
            )
            .then(&[v1::GrantEnded {
                grant_id: "g1".into(),
                user_id: "u1".into(),
                entitlement_id: "e1".into(),
                ended_at_micros: g.deprovision_at_micros,
                reason: "expired".into(),
                request_id: String::new(),
                comment: String::new(),
                provisioning: None,
                app_id: "a1".into(),
            }
            .into()]);
        g.deprovision_at_micros += 1_000_000;
        given::<AccessPair>(&[g.into()])
            .when(
                &AccessCommand::Expire {
                    grant_id: "g1".into(),
                },
                &system(),
            )
            .then(&[]);
    }

    #[test]
    fn a_review_ends_the_grant_it_looked_at_once_and_only_through_the_service() {
        let mut g = issued("");
        g.grant_type = "admin".into();
        let end = AccessCommand::EndForReview {
            grant_id: "g1".into(),
            item_id: "i1".into(),
        };
        let ended: DomainEvent = v1::GrantEnded {
            grant_id: "g1".into(),
            user_id: "u1".into(),
            entitlement_id: "e1".into(),
            ended_at_micros: system().now_unix_micros,
            reason: "review".into(),
            request_id: String::new(),
            comment: "revoked by access review item i1".into(),
            provisioning: None,
            app_id: "a1".into(),
        }
        .into();
        given::<AccessPair>(&[g.clone().into()])
            .when(&end, &ctx("o1", &["admin"]))
            .then_error(DomainError::Forbidden(
                "only the service ends a grant for a review".into(),
            ));
        given::<AccessPair>(&[g.clone().into()])
            .when(&end, &system())
            .then(std::slice::from_ref(&ended));
        // Seen again (or the grant ended some other way first): nothing.
        given::<AccessPair>(&[g.into(), ended])
            .when(&end, &system())
            .then(&[]);
    }

    #[test]
    fn direct_grants_need_an_admin_or_an_app_owner() {
        let app = AppFacts {
            app_id: "a1".into(),
            exists: true,
            deleted: false,
            owner_ids: vec!["owner".into()],
        };
        let mut g = issued("");
        g.grant_type = "admin".into();
        given::<AccessPair>(&[])
            .when(
                &AccessCommand::Grant {
                    grant: g.clone(),
                    app: app.clone(),
                    facts: GrantFacts::ALL_GOOD,
                },
                &ctx("owner", &[]),
            )
            .then(&[g.clone().into()]);
        given::<AccessPair>(&[])
            .when(
                &AccessCommand::Grant {
                    grant: g,
                    app: app.clone(),
                    facts: GrantFacts::ALL_GOOD,
                },
                &ctx("someone", &[]),
            )
            .then_error(DomainError::Forbidden(
                "only an admin or an owner of the app grants and revokes directly".into(),
            ));
        given::<AccessPair>(&[])
            .when(
                &AccessCommand::Revoke {
                    reason: String::new(),
                    app,
                },
                &ctx("owner", &[]),
            )
            .then_error(DomainError::NotFound("grant".into()));
    }
}
