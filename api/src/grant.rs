//! The API's grant objects: [`Grant`] (what lists and writes answer) and
//! [`GrantView`] (a grant with why it was held, what history answers).

use serde::{Deserialize, Serialize};

use iga_domain::provisioning::GrantState;

use crate::{parse_rfc3339, rfc3339};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrantApproval {
    pub user_id: String,
    pub phase: String,
    pub time_stamp: String,
}

/// A grant with why it was held: the interval `GET /grants/history` answers
/// (the grant's fields, then the request's approvals and policy version).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrantView {
    #[serde(flatten)]
    pub grant: Grant,
    pub approvals: Vec<GrantApproval>,
    pub policy_id: Option<String>,
    pub policy_version: Option<u64>,
    /// Who issued it (the requester's approvers issue through the system).
    pub granted_by: String,
}

impl std::ops::Deref for GrantView {
    type Target = Grant;

    fn deref(&self) -> &Grant {
        &self.grant
    }
}

impl Grant {
    /// Whether the grant was held at any moment of `[from, to)`: its held
    /// interval (as for [`Grant::active_at`]) overlaps the window.
    pub fn held_during(&self, from: time::OffsetDateTime, to: time::OffsetDateTime) -> bool {
        self.provisioned_at
            .as_deref()
            .and_then(parse_rfc3339)
            .is_some_and(|start| start < to)
            && self
                .deprovisioned_at
                .as_deref()
                .and_then(parse_rfc3339)
                .is_none_or(|end| end > from)
    }

    /// Whether the grant was held at instant `at`: from `provisionedAt`
    /// (inclusive; never while its provisioning is pending or failed) to
    /// `deprovisionedAt` (exclusive; still held while its deprovisioning is
    /// pending or failed).
    pub fn active_at(&self, at: time::OffsetDateTime) -> bool {
        self.provisioned_at
            .as_deref()
            .and_then(parse_rfc3339)
            .is_some_and(|start| start <= at)
            && self
                .deprovisioned_at
                .as_deref()
                .and_then(parse_rfc3339)
                .is_none_or(|end| at < end)
    }
}

fn active() -> String {
    "active".into()
}

/// A grant as lists and writes answer it (history adds approvals and policy).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    pub id: String,
    pub user_id: String,
    pub app_id: String,
    pub app_entitlement_id: String,
    /// `request` or `admin`.
    pub grant_type: String,
    pub request_id: Option<String>,
    pub created_at: String,
    pub deprovision_at: Option<String>,
    pub deleted_at: Option<String>,
    /// `revoked`, `expired`, `removal request` or `review`.
    pub revoke_reason: Option<String>,
    pub revoke_comment: Option<String>,
    /// Where it stands with its system: `pending` (its provision task is
    /// open), `active`, `provisionFailed`, `deprovisioning` (ended, its
    /// deprovision task open: still held), `deprovisionFailed` (still held,
    /// loudly, until someone resolves it) or `ended`.
    #[serde(default = "active")]
    pub state: String,
    /// When the access was there: its start, or when its provision task was
    /// done; null while pending or failed.
    #[serde(default)]
    pub provisioned_at: Option<String>,
    /// When the access was gone: its end, or when its deprovision task was
    /// done; null while held.
    #[serde(default)]
    pub deprovisioned_at: Option<String>,
}

impl From<GrantView> for Grant {
    fn from(v: GrantView) -> Self {
        v.grant
    }
}

impl Grant {
    /// The grant as its events make it: issued, maybe re-timed, maybe ended.
    pub fn from_events(
        issued: &iga_schemas::v1::GrantIssued,
        ended: Option<&iga_schemas::v1::GrantEnded>,
    ) -> Self {
        let grant = Grant {
            id: issued.grant_id.clone(),
            user_id: issued.user_id.clone(),
            app_id: issued.app_id.clone(),
            app_entitlement_id: issued.entitlement_id.clone(),
            grant_type: issued.grant_type.clone(),
            request_id: Some(issued.request_id.clone()).filter(|r| !r.is_empty()),
            created_at: rfc3339(issued.starts_at_micros),
            deprovision_at: (issued.deprovision_at_micros > 0)
                .then(|| rfc3339(issued.deprovision_at_micros)),
            deleted_at: ended.map(|e| rfc3339(e.ended_at_micros)),
            revoke_reason: ended.map(|e| e.reason.clone()),
            revoke_comment: ended.map(|e| e.comment.clone()).filter(|c| !c.is_empty()),
            state: String::new(),
            provisioned_at: None,
            deprovisioned_at: None,
        }
        .with_state(GrantState::issued(issued.provisioning.as_ref()), None);
        match ended {
            Some(e) => {
                let state = grant.grant_state().ended(e.provisioning.as_ref());
                grant.with_state(state, None)
            }
            None => grant,
        }
    }

    /// The grant in `state`, changed at `at` micros (`None`: its own start
    /// or end is when).
    pub fn with_state(mut self, state: GrantState, at: Option<i64>) -> Self {
        self.state = state.name().into();
        let when = |fallback: &Option<String>| at.map(rfc3339).or_else(|| fallback.clone());
        match state {
            GrantState::Active if self.provisioned_at.is_none() => {
                // Never before its start.
                let start = Some(self.created_at.clone());
                self.provisioned_at = match (when(&start), parse_rfc3339(&self.created_at)) {
                    (Some(t), Some(s)) if parse_rfc3339(&t).is_some_and(|t| t < s) => start,
                    (t, _) => t,
                };
            }
            GrantState::Ended if self.provisioned_at.is_some() => {
                self.deprovisioned_at = when(&self.deleted_at);
            }
            _ => {}
        }
        self
    }

    /// Where the grant stands, as its `state` says.
    pub fn grant_state(&self) -> GrantState {
        use GrantState::*;
        [
            Pending,
            Active,
            ProvisionFailed,
            Deprovisioning,
            DeprovisionFailed,
            Ended,
        ]
        .into_iter()
        .find(|s| s.name() == self.state)
        .unwrap_or(Active)
    }
}
