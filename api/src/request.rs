//! The API's request object, [`RequestView`], and [`RequestView::apply`], the
//! fold of a request's events into it. The requests read model stores it and
//! the command service folds the same events the same way to answer a write,
//! so a write and a later read answer the same bytes.

use std::collections::BTreeSet;

use iga_schemas::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::rfc3339;

fn time(micros: i64) -> Option<String> {
    (micros > 0).then(|| rfc3339(micros))
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    pub id: String,
    pub username: String,
    pub display_name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CatalogRef {
    /// `entitlement` or `application`.
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub app_id: String,
    /// The app's built-in entitlement for `application` items.
    pub entitlement_id: String,
    pub display_name: String,
    pub app_display_name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommonFields {
    pub justification: String,
    pub priority: String,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub expiry_date: Option<String>,
    pub external_request_id: Option<String>,
    pub is_draft: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestBody {
    pub common: CommonFields,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    pub user_id: String,
    pub time_stamp: String,
    pub justification: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhaseView {
    pub name: String,
    /// `pending`, `in-progress`, `complete`, `rejected`, `cancelled`.
    pub status: String,
    /// `approved` or `rejected`, once decided.
    pub decision: Option<String>,
    pub quorum: u32,
    pub require_justification: bool,
    /// Users holding this role may act too (ROLE steps, admin fallback).
    pub approver_role: Option<String>,
    pub approvals: Vec<Approval>,
    pub completed_by: Vec<String>,
    pub completion_date: Option<String>,
    /// The users assigned to act: resolved approvers, their delegates, and
    /// reassignments.
    pub approver_ids: Vec<String>,
    /// The step resolved to fewer eligible people than its quorum, so
    /// admins may act too; the quorum was not lowered.
    #[serde(default)]
    pub admin_fallback: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Permissions {
    pub approve: bool,
    pub reject: bool,
    pub comment: bool,
    pub reassign: bool,
    pub modify: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Actor {
    pub id: String,
    pub phase: String,
    pub permissions: Permissions,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Actors {
    pub active: Vec<Actor>,
    pub inactive: Vec<Actor>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Comment {
    pub user: String,
    pub comment: String,
    /// `comment`, `approve`, `reject`, `reassign`, `modify`, `cancel`.
    pub action: String,
    pub time_stamp: String,
    pub phase: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// `in-progress`, `complete`, `cancelled`.
    pub status: String,
    /// `approved` or `rejected`.
    pub decision: Option<String>,
    /// `provisioning` (a grant issued, its provision task open),
    /// `provisioned` (the access is there), `deprovisioning` /
    /// `deprovisioned` (a removal), `denied`, `cancelled`, `expired`,
    /// `failed` (why: `outcomeReason`).
    pub outcome: Option<String>,
    /// Why it failed: the grant was no longer allowed, or what its
    /// provisioning task's closer said.
    #[serde(default)]
    pub outcome_reason: Option<String>,
    pub start_date: String,
    pub completion_date: Option<String>,
    /// Empty: the built-in default policy.
    pub policy_id: Option<String>,
    pub policy_version: u64,
    pub allow_self_approval: bool,
    pub phases: Vec<PhaseView>,
    pub actors: Actors,
    pub comments: Vec<Comment>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub created_date: String,
    pub modified_date: String,
}

/// An access request, as the API answers it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestView {
    pub id: String,
    /// `entitlementGrant`, `entitlementRemove`, `applicationGrant`, `applicationRemove`.
    pub request_type: String,
    pub requester: Person,
    pub user: Person,
    pub catalog: CatalogRef,
    pub request: RequestBody,
    pub decision: Decision,
    pub grant_id: Option<String>,
    pub metadata: Metadata,
    pub version: u64,
}

const ALL: Permissions = Permissions {
    approve: true,
    reject: true,
    comment: true,
    reassign: true,
    modify: true,
};
const COMMENT_ONLY: Permissions = Permissions {
    approve: false,
    reject: false,
    comment: true,
    reassign: false,
    modify: false,
};

impl RequestView {
    /// Folds one of the request's events (recorded at `at` micros, as stream
    /// version `version`) into the view. Other events leave it unchanged.
    pub fn apply(&mut self, event: &DomainEvent, at: i64, version: u64) {
        let stamp = rfc3339(at);
        match event {
            DomainEvent::AccessRequestCreated(e) => {
                *self = RequestView {
                    id: e.request_id.clone(),
                    request_type: e.request_type.clone(),
                    requester: Person {
                        id: e.requester_id.clone(),
                        username: e.requester_username.clone(),
                        display_name: e.requester_display_name.clone(),
                    },
                    user: Person {
                        id: e.user_id.clone(),
                        username: e.user_username.clone(),
                        display_name: e.user_display_name.clone(),
                    },
                    catalog: CatalogRef {
                        kind: e.catalog_type.clone(),
                        id: if e.catalog_type == "application" {
                            e.app_id.clone()
                        } else {
                            e.entitlement_id.clone()
                        },
                        app_id: e.app_id.clone(),
                        entitlement_id: e.entitlement_id.clone(),
                        display_name: e.catalog_display_name.clone(),
                        app_display_name: e.app_display_name.clone(),
                    },
                    request: RequestBody {
                        common: CommonFields {
                            justification: e.justification.clone(),
                            priority: e.priority.clone(),
                            start_date: time(e.start_date_micros),
                            end_date: time(e.end_date_micros),
                            expiry_date: time(e.expiry_date_micros),
                            external_request_id: Some(e.external_request_id.clone())
                                .filter(|s| !s.is_empty()),
                            is_draft: false,
                        },
                    },
                    decision: Decision {
                        status: "in-progress".into(),
                        start_date: stamp.clone(),
                        policy_id: Some(e.policy_id.clone()).filter(|s| !s.is_empty()),
                        policy_version: e.policy_version,
                        allow_self_approval: e.allow_self_approval,
                        phases: e
                            .phases
                            .iter()
                            .enumerate()
                            .map(|(i, p)| PhaseView {
                                name: p.name.clone(),
                                status: if i == 0 { "in-progress" } else { "pending" }.into(),
                                quorum: p.quorum,
                                require_justification: p.require_justification,
                                approver_role: Some(p.role.clone()).filter(|r| !r.is_empty()),
                                approver_ids: p.approver_ids.clone(),
                                admin_fallback: p.admin_fallback,
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    },
                    metadata: Metadata {
                        created_date: stamp.clone(),
                        modified_date: String::new(),
                    },
                    ..Default::default()
                };
            }
            DomainEvent::RequestApprovalRecorded(e) => {
                if let Some(p) = self.phase_mut(e.phase_index, &e.phase) {
                    p.approvals.push(Approval {
                        user_id: e.user_id.clone(),
                        time_stamp: stamp.clone(),
                        justification: e.justification.clone(),
                    });
                }
                self.comment(&e.user_id, &e.comment, "approve", &stamp, &e.phase);
            }
            DomainEvent::RequestPhaseCompleted(e) => {
                if let Some(i) = self.phase_index(e.phase_index, &e.phase) {
                    let p = &mut self.decision.phases[i];
                    p.status = "complete".into();
                    p.decision = Some("approved".into());
                    p.completed_by = p.approvals.iter().map(|a| a.user_id.clone()).collect();
                    p.completion_date = Some(stamp.clone());
                    if let Some(next) = self.decision.phases.get_mut(i + 1) {
                        next.status = "in-progress".into();
                    }
                }
            }
            DomainEvent::RequestApproved(_) => {
                self.decision.decision = Some("approved".into());
            }
            DomainEvent::RequestRejected(e) => {
                let at = self.phase_index(e.phase_index, &e.phase);
                for (i, p) in self.decision.phases.iter_mut().enumerate() {
                    if Some(i) == at {
                        p.status = "rejected".into();
                        p.decision = Some("rejected".into());
                        p.completed_by = vec![e.user_id.clone()];
                        p.completion_date = Some(stamp.clone());
                    } else if p.status == "pending" {
                        p.status = "cancelled".into();
                    }
                }
                self.decision.status = "complete".into();
                self.decision.decision = Some("rejected".into());
                self.decision.outcome = Some("denied".into());
                self.decision.completion_date = Some(stamp.clone());
                self.comment(&e.user_id, &e.comment, "reject", &stamp, &e.phase);
            }
            DomainEvent::RequestCommented(e) => {
                self.comment(&e.user_id, &e.comment, "comment", &stamp, &e.phase);
            }
            DomainEvent::RequestReassigned(e) => {
                if let Some(p) = self.phase_mut(e.phase_index, &e.phase) {
                    p.approver_ids.retain(|a| a != &e.from_user_id);
                    for to in &e.to_user_ids {
                        if !p.approver_ids.contains(to) {
                            p.approver_ids.push(to.clone());
                        }
                    }
                }
                let text = if e.comment.is_empty() {
                    format!("reassigned to {}", e.to_user_ids.join(", "))
                } else {
                    e.comment.clone()
                };
                self.comment(&e.from_user_id, &text, "reassign", &stamp, &e.phase);
            }
            DomainEvent::RequestModified(e) => {
                self.request.common.end_date = time(e.end_date_micros);
                let phase = self.current_phase_name();
                self.comment(
                    &e.user_id,
                    &format!("endDate set to {}", rfc3339(e.end_date_micros)),
                    "modify",
                    &stamp,
                    &phase,
                );
            }
            DomainEvent::RequestCancelled(e) => {
                for p in &mut self.decision.phases {
                    if p.status == "pending" || p.status == "in-progress" {
                        p.status = "cancelled".into();
                    }
                }
                self.decision.status = "cancelled".into();
                self.decision.outcome = Some(e.outcome.clone());
                self.decision.completion_date = Some(stamp.clone());
                let phase = self.current_phase_name();
                self.comment(&e.user_id, &e.comment, "cancel", &stamp, &phase);
            }
            DomainEvent::RequestFulfilled(e) => {
                self.decision.status = "complete".into();
                self.decision.outcome = Some(e.outcome.clone());
                self.decision.completion_date = Some(stamp.clone());
                self.grant_id = Some(e.grant_id.clone()).filter(|g| !g.is_empty());
                if e.outcome == "failed" {
                    self.decision.outcome_reason =
                        Some(e.message.clone()).filter(|m| !m.is_empty());
                }
            }
            DomainEvent::ProvisioningTaskCompleted(e) => {
                // The grant's task finishes the request's outcome. Not an
                // event of the request's stream: its version stays.
                if self.grant_id.as_deref() == Some(e.grant_id.as_str()) {
                    let done = e.outcome == "done";
                    self.decision.outcome = Some(
                        match (e.action.as_str(), done) {
                            ("provision", true) => "provisioned",
                            ("deprovision", true) => "deprovisioned",
                            _ => "failed",
                        }
                        .into(),
                    );
                    self.decision.outcome_reason =
                        (!done).then(|| e.message.clone()).filter(|m| !m.is_empty());
                    self.metadata.modified_date = stamp;
                }
                return;
            }
            _ => return,
        }
        self.metadata.modified_date = stamp;
        self.version = version;
        self.decision.actors = self.actors();
    }

    /// Where a phase event lands: at its position, or (events written before
    /// phases had one) the first open phase of its name.
    fn phase_index(&self, index: u32, name: &str) -> Option<usize> {
        let phases = &self.decision.phases;
        if index > 0 {
            return ((index as usize) <= phases.len()).then(|| index as usize - 1);
        }
        phases
            .iter()
            .position(|p| p.name == name && p.status == "in-progress")
            .or_else(|| phases.iter().position(|p| p.name == name))
    }

    fn phase_mut(&mut self, index: u32, name: &str) -> Option<&mut PhaseView> {
        let i = self.phase_index(index, name)?;
        self.decision.phases.get_mut(i)
    }

    fn current_phase_name(&self) -> String {
        self.decision
            .phases
            .iter()
            .find(|p| p.status == "in-progress")
            .map(|p| p.name.clone())
            .unwrap_or_default()
    }

    fn comment(&mut self, user: &str, text: &str, action: &str, stamp: &str, phase: &str) {
        if text.is_empty() {
            return;
        }
        self.decision.comments.push(Comment {
            user: user.to_string(),
            comment: text.to_string(),
            action: action.to_string(),
            time_stamp: stamp.to_string(),
            phase: phase.to_string(),
        });
    }

    /// Active: assigned actors of the phase in progress who have not acted.
    /// Inactive: everyone else who was assigned or acted.
    fn actors(&self) -> Actors {
        let open = self.decision.status == "in-progress" && self.decision.decision.is_none();
        let mut active = Vec::new();
        let mut inactive = Vec::new();
        let mut seen = BTreeSet::new();
        for p in &self.decision.phases {
            let acted: Vec<&String> = p
                .approvals
                .iter()
                .map(|a| &a.user_id)
                .chain(&p.completed_by)
                .collect();
            let current = open && p.status == "in-progress";
            for id in &p.approver_ids {
                if current && !acted.contains(&id) {
                    if seen.insert((id.clone(), true)) {
                        active.push(Actor {
                            id: id.clone(),
                            phase: p.name.clone(),
                            permissions: ALL,
                        });
                    }
                } else if p.status != "pending" && seen.insert((id.clone(), false)) {
                    inactive.push(Actor {
                        id: id.clone(),
                        phase: p.name.clone(),
                        permissions: COMMENT_ONLY,
                    });
                }
            }
            for id in acted {
                if seen.insert((id.clone(), false)) {
                    inactive.push(Actor {
                        id: id.clone(),
                        phase: p.name.clone(),
                        permissions: COMMENT_ONLY,
                    });
                }
            }
        }
        // Those who handed their task on.
        for c in self
            .decision
            .comments
            .iter()
            .filter(|c| c.action == "reassign")
        {
            if seen.insert((c.user.clone(), false)) {
                inactive.push(Actor {
                    id: c.user.clone(),
                    phase: c.phase.clone(),
                    permissions: COMMENT_ONLY,
                });
            }
        }
        Actors { active, inactive }
    }
}
