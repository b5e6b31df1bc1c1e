//! The AccessRequest aggregate: one beneficiary × one catalog item, routed
//! through the phases its policy resolved to when it was created.
//!
//! Rules (DOMAIN.md 3–6): a phase completes when `quorum` distinct eligible
//! people approve; one rejection rejects the request; one person's approval
//! counts once across all phases; unless the policy allows self-approval,
//! neither the requester nor the beneficiary may approve or reject; only
//! actors of the current phase (or an admin) act; the requester or an admin
//! cancels; an approver may shorten the grant window, never lengthen it.
//! Fulfilment is recorded once.

use iga_schemas::v1;

use crate::{Aggregate, Context, DomainError, DomainEvent};

pub const PRIORITIES: &[&str] = &["low", "medium", "high"];
/// Most users one reassignment hands a task to.
pub const MAX_REASSIGN: usize = 25;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Status {
    #[default]
    InProgress,
    Complete,
    Cancelled,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Phase {
    pub def: v1::RequestPhase,
    /// Who approved this phase, in order.
    pub approvals: Vec<String>,
    pub complete: bool,
    /// Actors added and removed by reassignment.
    pub reassigned_to: Vec<String>,
    pub reassigned_from: Vec<String>,
}

impl Phase {
    /// The users assigned to act in this phase (role holders aside).
    pub fn assigned(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .def
            .approver_ids
            .iter()
            .chain(&self.reassigned_to)
            .filter(|id| !self.reassigned_from.contains(id))
            .cloned()
            .collect();
        let mut seen = std::collections::HashSet::new();
        ids.retain(|id| seen.insert(id.clone()));
        ids
    }

    /// The person `user` counts as in this phase: a delegate counts as the
    /// principal they stand for, anyone else as themselves.
    pub fn person_of<'a>(&'a self, user: &'a str) -> &'a str {
        self.def
            .delegates
            .iter()
            .find(|d| d.delegate_id == user)
            .map_or(user, |d| d.principal_id.as_str())
    }

    fn may_act(&self, ctx: &Context) -> bool {
        ctx.is_admin()
            || self.assigned().contains(&ctx.actor_id)
            || (!self.def.role.is_empty() && ctx.actor_roles.contains(&self.def.role))
    }
}

/// Whether `ctx` may see a request: admins and auditors see every one;
/// anyone else the ones they made or are the beneficiary of, those they act
/// or acted on (`people`: approvers, who approved, who handed a task on or
/// was handed one) and those whose phases a role of theirs may act in. The
/// one rule: the aggregate and the requests read model each say who is
/// involved.
pub fn may_see<'a>(
    ctx: &Context,
    requester_id: &str,
    beneficiary_id: &str,
    people: impl IntoIterator<Item = &'a str>,
    roles: impl IntoIterator<Item = &'a str>,
) -> bool {
    let me = ctx.actor_id.as_str();
    ctx.is_admin()
        || ctx.actor_roles.iter().any(|r| r == "auditor")
        || me == requester_id
        || me == beneficiary_id
        || people.into_iter().any(|p| p == me)
        || roles
            .into_iter()
            .any(|r| !r.is_empty() && ctx.actor_roles.iter().any(|mine| mine == r))
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccessRequest {
    pub created: v1::AccessRequestCreated,
    pub phases: Vec<Phase>,
    pub status: Status,
    /// `Some(true)` approved, `Some(false)` rejected.
    pub approved: Option<bool>,
    /// `provisioned`, `deprovisioned`, `denied`, `cancelled`, `expired` or
    /// `failed`, once known.
    pub outcome: Option<String>,
    pub end_date_micros: i64,
    pub grant_id: String,
    pub fulfilled: bool,
}

impl AccessRequest {
    pub fn exists(&self) -> bool {
        !self.created.request_id.is_empty()
    }

    /// The phase now open, if the request is still in progress.
    pub fn current_phase(&self) -> Option<&Phase> {
        self.current_phase_index().map(|i| &self.phases[i])
    }

    /// The position of the phase now open (from 0).
    pub fn current_phase_index(&self) -> Option<usize> {
        if self.status != Status::InProgress || self.approved.is_some() {
            return None;
        }
        self.phases.iter().position(|p| !p.complete)
    }

    /// Whether `user` may never act on this request: the requester, the
    /// beneficiary, or a delegate of either (unless self-approval is allowed).
    pub fn is_excluded(&self, user: &str) -> bool {
        !self.created.allow_self_approval
            && (user == self.created.requester_id
                || user == self.created.user_id
                || self.created.excluded_approver_ids.iter().any(|x| x == user))
    }

    /// Whether the request is for removing access.
    pub fn is_removal(&self) -> bool {
        self.created.request_type.ends_with("Remove")
    }

    /// The phase in which `user`, as the person they count as in phase
    /// `current`, already approved: one person counts once across phases,
    /// whether they act themselves or through their delegate.
    fn approved_anywhere(&self, current: usize, user: &str) -> Option<&str> {
        let person = self.phases[current].person_of(user);
        self.phases
            .iter()
            .find(|p| {
                p.approvals.iter().any(|a| {
                    let theirs = p.person_of(a);
                    [a.as_str(), theirs]
                        .iter()
                        .any(|x| *x == user || *x == person)
                })
            })
            .map(|p| p.def.name.as_str())
    }

    /// Whether `ctx` may see this request at all: admins and auditors, the
    /// requester, the beneficiary, and everyone who is or was an actor of a
    /// phase. To anyone else it does not exist (404, never 403).
    pub fn visible_to(&self, ctx: &Context) -> bool {
        let people = self.phases.iter().flat_map(|p| {
            p.def
                .approver_ids
                .iter()
                .chain(&p.reassigned_to)
                .chain(&p.reassigned_from)
                .chain(&p.approvals)
                .map(String::as_str)
        });
        let roles = self.phases.iter().map(|p| p.def.role.as_str());
        may_see(
            ctx,
            &self.created.requester_id,
            &self.created.user_id,
            people,
            roles,
        )
    }

    fn is_party(&self, ctx: &Context) -> bool {
        ctx.actor_id == self.created.requester_id || ctx.actor_id == self.created.user_id
    }

    /// Where a phase event lands: at its position, or (events written
    /// before phases had one) the first incomplete phase of its name.
    fn phase_at(&self, index: u32, name: &str) -> Option<usize> {
        if index > 0 {
            let i = index as usize - 1;
            return (i < self.phases.len()).then_some(i);
        }
        self.phases
            .iter()
            .position(|p| !p.complete && p.def.name == name)
            .or_else(|| self.phases.iter().position(|p| p.def.name == name))
    }
}

#[derive(Debug, Clone)]
pub enum RequestCommand {
    /// Creates the request; `auto_approve` approves it at once (an
    /// auto-approving policy, or one without steps).
    Create {
        created: Box<v1::AccessRequestCreated>,
        auto_approve: bool,
    },
    Approve {
        phase: Option<String>,
        justification: String,
        comment: String,
    },
    Reject {
        phase: Option<String>,
        justification: String,
        comment: String,
    },
    Comment {
        comment: String,
    },
    Reassign {
        phase: Option<String>,
        to_user_ids: Vec<String>,
        comment: String,
    },
    /// Shortens the grant window; `max_end_micros` is the latest end the
    /// entitlement's maximum duration allows (0: no maximum).
    Modify {
        end_date_micros: i64,
        max_end_micros: i64,
    },
    Cancel {
        comment: String,
    },
    /// The expiry date passed (issued by the timer).
    Expire,
    /// Fulfilment is done (issued by the fulfilment step).
    Fulfil {
        grant_id: String,
        outcome: String,
        message: String,
    },
}

impl Aggregate for AccessRequest {
    type Command = RequestCommand;
    const TYPE: &'static str = "request";

    fn decide(&self, c: &RequestCommand, ctx: &Context) -> Result<Vec<DomainEvent>, DomainError> {
        use RequestCommand as C;
        if let C::Create {
            created,
            auto_approve,
        } = c
        {
            return self.create(created, *auto_approve);
        }
        if !self.exists() {
            return Err(DomainError::NotFound("request".into()));
        }
        let id = self.created.request_id.clone();
        let by_caller = !matches!(c, C::Expire | C::Fulfil { .. });
        if by_caller && !self.visible_to(ctx) {
            return Err(DomainError::NotFound("request".into()));
        }
        let closed =
            || DomainError::InvalidTransition(format!("request {id} is no longer in progress"));
        match c {
            C::Create { .. } => unreachable!("handled above"),
            C::Approve {
                phase,
                justification,
                comment,
            } => self.approve(id, phase.as_deref(), justification, comment, ctx),
            C::Reject {
                phase,
                justification,
                comment,
            } => {
                let (index, current) = self.acting_phase(phase.as_deref(), ctx)?;
                if current.def.require_justification && justification.trim().is_empty() {
                    return Err(DomainError::invalid(
                        "justification",
                        "required by this phase",
                    ));
                }
                Ok(vec![v1::RequestRejected {
                    request_id: id,
                    phase: current.def.name.clone(),
                    user_id: ctx.actor_id.clone(),
                    justification: justification.clone(),
                    comment: comment.clone(),
                    phase_index: index as u32 + 1,
                }
                .into()])
            }
            C::Comment { comment } => {
                let actor = self.phases.iter().any(|p| {
                    p.assigned().contains(&ctx.actor_id)
                        || p.reassigned_from.contains(&ctx.actor_id)
                });
                if !(ctx.is_admin() || self.is_party(ctx) || actor) {
                    return Err(DomainError::Forbidden(
                        "only the requester, the beneficiary, an actor or an admin comments".into(),
                    ));
                }
                if crate::text::is_blank(comment) || crate::text::chars(comment) > 4096 {
                    return Err(DomainError::invalid("comment", "1 to 4096 characters"));
                }
                let index = self.current_phase_index();
                let phase = index
                    .map(|i| self.phases[i].def.name.clone())
                    .unwrap_or_default();
                Ok(vec![v1::RequestCommented {
                    request_id: id,
                    phase,
                    user_id: ctx.actor_id.clone(),
                    comment: comment.clone(),
                    phase_index: index.map_or(0, |i| i as u32 + 1),
                }
                .into()])
            }
            C::Reassign {
                phase,
                to_user_ids,
                comment,
            } => {
                let (index, current) = self.acting_phase(phase.as_deref(), ctx)?;
                if to_user_ids.is_empty() || to_user_ids.len() > MAX_REASSIGN {
                    return Err(DomainError::invalid(
                        "toUserIds",
                        format!("1 to {MAX_REASSIGN} users"),
                    ));
                }
                if to_user_ids.iter().any(|u| self.is_excluded(u)) {
                    return Err(DomainError::invalid(
                        "toUserIds",
                        "the requester, the beneficiary and their delegates cannot approve this request",
                    ));
                }
                let mut to = to_user_ids.clone();
                let mut seen = std::collections::HashSet::new();
                to.retain(|u| seen.insert(u.clone()));
                Ok(vec![v1::RequestReassigned {
                    request_id: id,
                    phase: current.def.name.clone(),
                    from_user_id: ctx.actor_id.clone(),
                    to_user_ids: to,
                    comment: comment.clone(),
                    phase_index: index as u32 + 1,
                }
                .into()])
            }
            C::Modify {
                end_date_micros,
                max_end_micros,
            } => {
                self.acting_phase(None, ctx)?;
                let start = self.created.start_date_micros.max(0);
                let current_end = if self.end_date_micros > 0 {
                    self.end_date_micros
                } else if *max_end_micros > 0 {
                    *max_end_micros
                } else {
                    i64::MAX
                };
                if *end_date_micros <= start.max(ctx.now_unix_micros) {
                    return Err(DomainError::unsatisfiable(
                        "endDate",
                        "must be in the future and after startDate",
                    ));
                }
                if *end_date_micros >= current_end {
                    return Err(DomainError::invalid(
                        "endDate",
                        "may only shorten the grant window",
                    ));
                }
                Ok(vec![v1::RequestModified {
                    request_id: id,
                    user_id: ctx.actor_id.clone(),
                    end_date_micros: *end_date_micros,
                }
                .into()])
            }
            C::Cancel { comment } => {
                if !(ctx.is_admin() || ctx.actor_id == self.created.requester_id) {
                    return Err(DomainError::Forbidden(
                        "only the requester or an admin cancels".into(),
                    ));
                }
                if self.status != Status::InProgress || self.approved.is_some() {
                    return Err(closed());
                }
                Ok(vec![v1::RequestCancelled {
                    request_id: id,
                    user_id: ctx.actor_id.clone(),
                    comment: comment.clone(),
                    outcome: "cancelled".into(),
                }
                .into()])
            }
            C::Expire => Ok(
                if self.status == Status::InProgress && self.approved.is_none() {
                    vec![v1::RequestCancelled {
                        request_id: id,
                        user_id: ctx.actor_id.clone(),
                        comment: "the request expired".into(),
                        outcome: "expired".into(),
                    }
                    .into()]
                } else {
                    vec![]
                },
            ),
            C::Fulfil {
                grant_id,
                outcome,
                message,
            } => Ok(if self.approved == Some(true) && !self.fulfilled {
                vec![v1::RequestFulfilled {
                    request_id: id,
                    grant_id: grant_id.clone(),
                    outcome: outcome.clone(),
                    message: message.clone(),
                }
                .into()]
            } else {
                vec![]
            }),
        }
    }

    fn evolve(mut self, event: &DomainEvent) -> Self {
        match event {
            DomainEvent::AccessRequestCreated(e) => {
                self.created = e.clone();
                self.end_date_micros = e.end_date_micros;
                self.phases = e
                    .phases
                    .iter()
                    .map(|p| Phase {
                        def: p.clone(),
                        ..Default::default()
                    })
                    .collect();
            }
            DomainEvent::RequestApprovalRecorded(e) => {
                if let Some(i) = self.phase_at(e.phase_index, &e.phase) {
                    self.phases[i].approvals.push(e.user_id.clone());
                }
            }
            DomainEvent::RequestPhaseCompleted(e) => {
                if let Some(i) = self.phase_at(e.phase_index, &e.phase) {
                    self.phases[i].complete = true;
                }
            }
            DomainEvent::RequestApproved(_) => self.approved = Some(true),
            DomainEvent::RequestRejected(_) => {
                self.approved = Some(false);
                self.status = Status::Complete;
                self.outcome = Some("denied".into());
            }
            DomainEvent::RequestReassigned(e) => {
                if let Some(i) = self.phase_at(e.phase_index, &e.phase) {
                    let p = &mut self.phases[i];
                    p.reassigned_from.push(e.from_user_id.clone());
                    for to in &e.to_user_ids {
                        p.reassigned_from.retain(|f| f != to);
                        p.reassigned_to.push(to.clone());
                    }
                }
            }
            DomainEvent::RequestModified(e) => self.end_date_micros = e.end_date_micros,
            DomainEvent::RequestCancelled(e) => {
                self.status = Status::Cancelled;
                self.outcome = Some(e.outcome.clone());
            }
            DomainEvent::RequestFulfilled(e) => {
                self.fulfilled = true;
                self.status = Status::Complete;
                self.grant_id.clone_from(&e.grant_id);
                self.outcome = Some(e.outcome.clone());
            }
            _ => {}
        }
        self
    }
}

impl AccessRequest {
    /// The current phase, if `ctx` may act in it now (approve, reject,
    /// reassign, modify).
    /// A new request: its creation, and its approval at once when its
    /// policy auto-approves or has no steps.
    fn create(
        &self,
        created: &v1::AccessRequestCreated,
        auto_approve: bool,
    ) -> Result<Vec<DomainEvent>, DomainError> {
        if self.exists() {
            return Err(DomainError::AlreadyExists(format!(
                "request {}",
                self.created.request_id
            )));
        }
        if !PRIORITIES.contains(&created.priority.as_str()) {
            return Err(DomainError::invalid("priority", "low, medium or high"));
        }
        let mut events: Vec<DomainEvent> = vec![created.clone().into()];
        if auto_approve || created.phases.is_empty() {
            events.push(
                v1::RequestApproved {
                    request_id: created.request_id.clone(),
                }
                .into(),
            );
        }
        Ok(events)
    }

    /// An approval of the current phase (or the one named): recorded, and
    /// the phase completed once a quorum of distinct people approved, and
    /// the request approved once its last phase is.
    fn approve(
        &self,
        id: String,
        phase: Option<&str>,
        justification: &str,
        comment: &str,
        ctx: &Context,
    ) -> Result<Vec<DomainEvent>, DomainError> {
        let (index, current) = self.acting_phase(phase, ctx)?;
        if let Some(earlier) = self.approved_anywhere(index, &ctx.actor_id) {
            return Err(DomainError::InvalidTransition(format!(
                "{} already approved this request (phase {earlier:?}); one person counts once",
                ctx.actor_id
            )));
        }
        if current.def.require_justification && justification.trim().is_empty() {
            return Err(DomainError::invalid(
                "justification",
                "required by this phase",
            ));
        }
        let name = current.def.name.clone();
        let phase_index = index as u32 + 1;
        let mut events: Vec<DomainEvent> = vec![v1::RequestApprovalRecorded {
            request_id: id.clone(),
            phase: name.clone(),
            user_id: ctx.actor_id.clone(),
            justification: justification.to_string(),
            comment: comment.to_string(),
            phase_index,
        }
        .into()];
        // Every approval recorded is a distinct person (refused above
        // otherwise), so the count is the number of people.
        if current.approvals.len() + 1 >= current.def.quorum.max(1) as usize {
            events.push(
                v1::RequestPhaseCompleted {
                    request_id: id.clone(),
                    phase: name.clone(),
                    phase_index,
                }
                .into(),
            );
            if index + 1 == self.phases.len() {
                events.push(v1::RequestApproved { request_id: id }.into());
            }
        }
        Ok(events)
    }

    fn acting_phase(
        &self,
        named: Option<&str>,
        ctx: &Context,
    ) -> Result<(usize, &Phase), DomainError> {
        let id = &self.created.request_id;
        let Some(index) = self.current_phase_index() else {
            return Err(DomainError::InvalidTransition(format!(
                "request {id} is no longer in progress"
            )));
        };
        let current = &self.phases[index];
        if let Some(name) = named.filter(|n| !n.is_empty()) {
            if name != current.def.name {
                return Err(DomainError::InvalidTransition(format!(
                    "phase {name:?} is not the current phase ({:?})",
                    current.def.name
                )));
            }
        }
        if self.is_excluded(&ctx.actor_id) {
            return Err(DomainError::Forbidden(
                "the requester, the beneficiary and their delegates cannot act on this request"
                    .into(),
            ));
        }
        if !current.may_act(ctx) {
            return Err(DomainError::Forbidden(format!(
                "only an actor of phase {:?} or an admin acts on it",
                current.def.name
            )));
        }
        Ok((index, current))
    }
}

#[cfg(test)]
mod tests;
