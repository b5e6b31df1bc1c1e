//! The API's grant objects: [`Grant`] (what lists and writes answer) and
//! [`GrantView`] (a grant with why it was held, what history answers).

use serde::{Deserialize, Serialize};

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
    /// Whether the grant was held at instant `at`: from `createdAt`
    /// (inclusive) to `deletedAt` (exclusive).
    pub fn active_at(&self, at: time::OffsetDateTime) -> bool {
        parse_rfc3339(&self.created_at).is_some_and(|start| start <= at)
            && self
                .deleted_at
                .as_deref()
                .and_then(parse_rfc3339)
                .is_none_or(|end| at < end)
    }
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
    /// `revoked`, `expired` or `removal request`.
    pub revoke_reason: Option<String>,
    pub revoke_comment: Option<String>,
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
        Grant {
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
        }
    }
}
