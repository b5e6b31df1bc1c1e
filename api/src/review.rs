//! [`Review`] and [`ReviewItem`]: an access review (certification campaign)
//! and one of its items as the API shows them, folded from their streams
//! (`review-<id>`, `review_item-<id>`); the read model adds what only many
//! streams know (a campaign's `progress`, an item's `grant` and whether the
//! grant ended before the item was decided).

use iga_schemas::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::{rfc3339, GrantView};

/// Which grants a campaign looks at: those matching every non-empty list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewScope {
    pub app_ids: Vec<String>,
    pub entitlement_ids: Vec<String>,
    pub risk_level_value_ids: Vec<String>,
    pub user_ids: Vec<String>,
}

/// Who reviews each item.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewerRule {
    /// `MANAGER`, `APP_OWNERS`, `ENTITLEMENT_OWNERS` or `USERS`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The reviewers, for `USERS`.
    pub user_ids: Vec<String>,
}

/// Which decisions must say why.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequireJustification {
    pub certify: bool,
    pub revoke: bool,
}

/// How far a campaign (or one reviewer's share of it) has come.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewProgress {
    pub total: u64,
    pub certified: u64,
    pub revoked: u64,
    pub pending: u64,
}

impl ReviewProgress {
    /// Moves one item from decision `from` (None: undecided) to `to`.
    pub fn moved(&mut self, from: Option<&str>, to: Option<&str>) {
        for (decision, add) in [(from, false), (to, true)] {
            let slot = match decision {
                Some("certify") => &mut self.certified,
                Some("revoke") => &mut self.revoked,
                _ => &mut self.pending,
            };
            *slot = if add {
                *slot + 1
            } else {
                slot.saturating_sub(1)
            };
        }
    }
}

/// An access review campaign.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    pub id: String,
    pub display_name: String,
    pub description: String,
    pub scope: ReviewScope,
    pub reviewers: ReviewerRule,
    pub fallback_reviewer_ids: Vec<String>,
    pub due_date: String,
    /// What undecided items become at closing: `nothing`, `certify`, `revoke`.
    pub on_due: String,
    pub require_justification: RequireJustification,
    /// `draft`, `active` or `closed`.
    pub status: String,
    /// The instant whose grants are its items (set at launch).
    pub as_of: Option<String>,
    /// Whether every item of the launch is open (until then the campaign
    /// cannot be closed and `progress.total` still grows).
    pub items_listed: bool,
    pub created_at: String,
    pub launched_at: Option<String>,
    pub closed_at: Option<String>,
    /// `closed` (by an admin) or `due` (by its due date).
    pub closed_reason: Option<String>,
    /// Counted from the items on reads; absent from a write's answer to
    /// a launched campaign (the items are counted as they are opened).
    pub progress: Option<ReviewProgress>,
    pub version: u64,
}

impl Review {
    /// Folds one event of the campaign's stream, recorded at `at` micros as
    /// stream version `version`.
    pub fn apply(&mut self, event: &DomainEvent, at: i64, version: u64) {
        match event {
            DomainEvent::ReviewCreated(e) => {
                let scope = e.scope.clone().unwrap_or_default();
                let rule = e.reviewers.clone().unwrap_or_default();
                *self = Review {
                    id: e.review_id.clone(),
                    display_name: e.display_name.clone(),
                    description: e.description.clone(),
                    scope: ReviewScope {
                        app_ids: scope.app_ids,
                        entitlement_ids: scope.entitlement_ids,
                        risk_level_value_ids: scope.risk_level_value_ids,
                        user_ids: scope.user_ids,
                    },
                    reviewers: ReviewerRule {
                        kind: rule.r#type,
                        user_ids: rule.user_ids,
                    },
                    fallback_reviewer_ids: e.fallback_reviewer_ids.clone(),
                    due_date: rfc3339(e.due_at_micros),
                    on_due: e.on_due.clone(),
                    require_justification: RequireJustification {
                        certify: e.require_justification_certify,
                        revoke: e.require_justification_revoke,
                    },
                    status: "draft".into(),
                    created_at: rfc3339(at),
                    progress: Some(ReviewProgress::default()),
                    ..Default::default()
                };
            }
            DomainEvent::ReviewLaunched(e) => {
                self.status = "active".into();
                self.as_of = Some(rfc3339(e.as_of_micros));
                self.launched_at = Some(rfc3339(at));
                self.progress = None;
            }
            DomainEvent::ReviewItemsListed(_) => self.items_listed = true,
            DomainEvent::ReviewClosed(e) => {
                self.status = "closed".into();
                self.closed_at = Some(rfc3339(at));
                self.closed_reason = Some(e.reason.clone());
            }
            _ => return,
        }
        self.version = version;
    }
}

/// One decision on an item, as it was made.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewDecision {
    /// `certify` or `revoke`.
    pub decision: String,
    pub justification: String,
    /// Who decided (`system`: the campaign's `onDue` at closing).
    pub decided_by: String,
    /// The reviewer a delegate decided for.
    pub on_behalf_of: Option<String>,
    pub decided_at: String,
}

/// A note on an item.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewComment {
    pub author_id: String,
    pub comment: String,
    pub created_at: String,
}

/// One grant a campaign looks at, and what its reviewers decided.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewItem {
    pub id: String,
    pub review_id: String,
    pub grant_id: String,
    pub user_id: String,
    pub app_id: String,
    pub app_entitlement_id: String,
    pub reviewer_ids: Vec<String>,
    /// The reviewers are the fallback (the rule named nobody but the user).
    pub fallback: bool,
    /// The standing decision: null, `certify` or `revoke`.
    pub decision: Option<String>,
    pub decided_by: Option<String>,
    pub on_behalf_of: Option<String>,
    pub decided_at: Option<String>,
    pub justification: Option<String>,
    /// Every decision, oldest first: each change of mind is kept.
    pub decisions: Vec<ReviewDecision>,
    pub comments: Vec<ReviewComment>,
    /// When the grant ended, if it did while the item was open (or since).
    pub grant_ended_at: Option<String>,
    /// The grant and its trail (request, approvals, policy version); on reads.
    pub grant: Option<GrantView>,
    pub created_at: String,
    pub version: u64,
}

impl ReviewItem {
    /// Folds one event of the item's stream, recorded at `at` micros as
    /// stream version `version`.
    pub fn apply(&mut self, event: &DomainEvent, at: i64, version: u64) {
        let some = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
        match event {
            DomainEvent::ReviewItemOpened(e) => {
                *self = ReviewItem {
                    id: e.item_id.clone(),
                    review_id: e.review_id.clone(),
                    grant_id: e.grant_id.clone(),
                    user_id: e.user_id.clone(),
                    app_id: e.app_id.clone(),
                    app_entitlement_id: e.entitlement_id.clone(),
                    reviewer_ids: e.reviewer_ids.clone(),
                    fallback: e.fallback,
                    created_at: rfc3339(at),
                    ..Default::default()
                };
            }
            DomainEvent::ReviewItemDecided(e) => {
                self.decision = Some(e.decision.clone());
                self.decided_by = Some(e.decided_by.clone());
                self.on_behalf_of = some(&e.on_behalf_of);
                self.decided_at = Some(rfc3339(at));
                self.justification = Some(e.justification.clone());
                self.decisions.push(ReviewDecision {
                    decision: e.decision.clone(),
                    justification: e.justification.clone(),
                    decided_by: e.decided_by.clone(),
                    on_behalf_of: some(&e.on_behalf_of),
                    decided_at: rfc3339(at),
                });
            }
            DomainEvent::ReviewItemReassigned(e) => self.reviewer_ids = e.reviewer_ids.clone(),
            DomainEvent::ReviewItemCommented(e) => self.comments.push(ReviewComment {
                author_id: e.author_id.clone(),
                comment: e.comment.clone(),
                created_at: rfc3339(at),
            }),
            _ => return,
        }
        self.version = version;
    }
}
