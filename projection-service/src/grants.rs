//! `GrantLedger`: who holds what now, and every interval anyone held
//! anything, with why (the request, its approvals, its policy version).
//!
//! Keys: `g/<grantId>` -> [`GrantView`] (held or ended);
//! `cur/<userId>/<entitlementId>` -> grant id (held now);
//! `hu/<userId>/<entitlementId>/<grantId>`, `he/<entitlementId>/<grantId>`,
//! `ha/<appId>/<grantId>` -> `""` (every grant ever, per user (and per user
//! and entitlement, so a pair's history is read without the user's other
//! grants), per entitlement and per app; grant ids are UUID v7, so key order
//! is issue order);
//! `rq/<requestId>` -> [`RequestTrail`] (approvals and policy of an open
//! request, copied onto the grant it issues; removed once the request is
//! over, so a request opened and granted within one batch writes no trail).

use iga_eventlog::RecordedEvent;
use iga_schemas::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::{Projection, Result, Staged};
use iga_api::{rfc3339, Grant, GrantApproval, GrantView};
use iga_domain::provisioning::{GrantState, TaskOutcome};

pub const NAME: &str = "grants";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RequestTrail {
    pub approvals: Vec<GrantApproval>,
    pub policy_id: String,
    pub policy_version: u64,
}

pub(crate) fn grant_key(id: &str) -> Vec<u8> {
    format!("g/{id}").into_bytes()
}

pub(crate) fn current_key(user_id: &str, entitlement_id: &str) -> Vec<u8> {
    format!("cur/{user_id}/{entitlement_id}").into_bytes()
}

pub(crate) fn current_prefix(user_id: &str) -> Vec<u8> {
    format!("cur/{user_id}/").into_bytes()
}

pub(crate) fn by_user_prefix(user_id: &str) -> Vec<u8> {
    format!("hu/{user_id}/").into_bytes()
}

/// Every grant `user_id` held on `entitlement_id`.
pub(crate) fn by_pair_prefix(user_id: &str, entitlement_id: &str) -> Vec<u8> {
    format!("hu/{user_id}/{entitlement_id}/").into_bytes()
}

pub(crate) fn by_entitlement_prefix(entitlement_id: &str) -> Vec<u8> {
    format!("he/{entitlement_id}/").into_bytes()
}

pub(crate) fn by_app_prefix(app_id: &str) -> Vec<u8> {
    format!("ha/{app_id}/").into_bytes()
}

fn trail_key(request_id: &str) -> Vec<u8> {
    format!("rq/{request_id}").into_bytes()
}

/// `tk/<taskId>` -> `<grantId>\0<action>`: what a reopened task is about.
fn task_key(task_id: &str) -> Vec<u8> {
    format!("tk/{task_id}").into_bytes()
}

/// Grant `grant_id` after its `action` task closed or reopened at `at`.
fn task_changed(
    tx: &mut Staged<'_>,
    grant_id: &str,
    action: &str,
    outcome: TaskOutcome,
    at: i64,
) -> Result<()> {
    let Some(mut view) = tx.get_value::<GrantView>(&grant_key(grant_id))? else {
        return Ok(());
    };
    let before = view.grant.grant_state();
    let after = before.task(action, outcome);
    if after == before {
        return Ok(());
    }
    view.grant = view.grant.with_state(after, Some(at));
    if after == GrantState::Ended {
        let current = current_key(&view.user_id, &view.app_entitlement_id);
        if tx.get(&current)?.as_deref() == Some(grant_id.as_bytes()) {
            tx.delete(current);
        }
    }
    tx.put_value(grant_key(grant_id), &view);
    Ok(())
}

pub struct GrantLedger;

impl Projection for GrantLedger {
    fn name(&self) -> &'static str {
        NAME
    }

    /// 2: the per-user index is keyed by user and entitlement; 3: grants
    /// carry their provisioning state.
    fn layout(&self) -> u32 {
        3
    }

    fn apply(
        &self,
        event: &RecordedEvent,
        decoded: &DomainEvent,
        tx: &mut Staged<'_>,
    ) -> Result<()> {
        let env = &event.envelope;
        match decoded {
            DomainEvent::AccessRequestCreated(e) => {
                let trail = RequestTrail {
                    approvals: vec![],
                    policy_id: e.policy_id.clone(),
                    policy_version: e.policy_version,
                };
                tx.put_value(trail_key(&e.request_id), &trail);
            }
            DomainEvent::RequestApprovalRecorded(e) => {
                if let Some(mut trail) = tx.get_value::<RequestTrail>(&trail_key(&e.request_id))? {
                    trail.approvals.push(GrantApproval {
                        user_id: e.user_id.clone(),
                        phase: e.phase.clone(),
                        time_stamp: rfc3339(env.occurred_at_unix_micros),
                    });
                    tx.put_value(trail_key(&e.request_id), &trail);
                }
            }
            DomainEvent::GrantIssued(e) => {
                let trail = if e.request_id.is_empty() {
                    None
                } else {
                    tx.get_value::<RequestTrail>(&trail_key(&e.request_id))?
                };
                let view = GrantView {
                    grant: Grant::from_events(e, None),
                    approvals: trail
                        .as_ref()
                        .map(|t| t.approvals.clone())
                        .unwrap_or_default(),
                    policy_id: trail
                        .as_ref()
                        .map(|t| t.policy_id.clone())
                        .filter(|p| !p.is_empty()),
                    policy_version: trail.as_ref().map(|t| t.policy_version),
                    granted_by: env.actor_id.clone(),
                };
                tx.put_value(grant_key(&e.grant_id), &view);
                if trail.is_some() {
                    // Copied onto the grant; a request issues one grant.
                    tx.delete(trail_key(&e.request_id));
                }
                tx.put(
                    current_key(&e.user_id, &e.entitlement_id),
                    e.grant_id.as_bytes(),
                );
                for prefix in [
                    by_pair_prefix(&e.user_id, &e.entitlement_id),
                    by_entitlement_prefix(&e.entitlement_id),
                    by_app_prefix(&e.app_id),
                ] {
                    let mut k = prefix;
                    k.extend_from_slice(e.grant_id.as_bytes());
                    tx.put(k, Vec::new());
                }
            }
            // A request that is over issues no grant: its trail is not needed.
            DomainEvent::RequestRejected(e) => tx.delete(trail_key(&e.request_id)),
            DomainEvent::RequestCancelled(e) => tx.delete(trail_key(&e.request_id)),
            DomainEvent::RequestFulfilled(e) => tx.delete(trail_key(&e.request_id)),
            DomainEvent::GrantDurationChanged(e) => {
                if let Some(mut view) = tx.get_value::<GrantView>(&grant_key(&e.grant_id))? {
                    view.grant.deprovision_at =
                        (e.deprovision_at_micros > 0).then(|| rfc3339(e.deprovision_at_micros));
                    tx.put_value(grant_key(&e.grant_id), &view);
                }
            }
            DomainEvent::GrantEnded(e) => {
                let mut gone = true;
                if let Some(mut view) = tx.get_value::<GrantView>(&grant_key(&e.grant_id))? {
                    view.grant.deleted_at = Some(rfc3339(e.ended_at_micros));
                    view.grant.revoke_reason = Some(e.reason.clone());
                    view.grant.revoke_comment = Some(e.comment.clone()).filter(|c| !c.is_empty());
                    let state = view.grant.grant_state().ended(e.provisioning.as_ref());
                    view.grant = view.grant.with_state(state, None);
                    gone = !state.held();
                    tx.put_value(grant_key(&e.grant_id), &view);
                }
                // Held until its system lost it too.
                if gone {
                    tx.delete(current_key(&e.user_id, &e.entitlement_id));
                }
            }
            DomainEvent::ProvisioningTaskOpened(e) => {
                let task = format!("{}\0{}", e.grant_id, e.action);
                tx.put(task_key(&e.task_id), task.into_bytes());
            }
            DomainEvent::ProvisioningTaskCompleted(e) => {
                let outcome = if e.outcome == "done" {
                    TaskOutcome::Done
                } else {
                    TaskOutcome::Failed
                };
                task_changed(
                    tx,
                    &e.grant_id,
                    &e.action,
                    outcome,
                    env.occurred_at_unix_micros,
                )?;
            }
            DomainEvent::ProvisioningTaskRetried(e) => {
                if let Some(task) = tx.get(&task_key(&e.task_id))? {
                    let task = String::from_utf8_lossy(&task).into_owned();
                    if let Some((grant_id, action)) = task.split_once('\0') {
                        let at = env.occurred_at_unix_micros;
                        task_changed(tx, grant_id, action, TaskOutcome::Reopened, at)?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Which index a grants query reads, narrowest first: what it costs is what
/// is under it, never the whole ledger unless asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantScope {
    /// What a user holds now (on one entitlement, if given).
    HeldBy {
        user_id: String,
        entitlement_id: Option<String>,
    },
    /// Every grant a user ever held (on one entitlement, if given).
    User {
        user_id: String,
        entitlement_id: Option<String>,
    },
    /// Every grant of an entitlement.
    Entitlement(String),
    /// Every grant of an app.
    App(String),
    /// Every grant.
    All,
}

impl GrantScope {
    fn prefix(&self) -> Vec<u8> {
        match self {
            GrantScope::HeldBy {
                user_id,
                entitlement_id: Some(e),
            } => current_key(user_id, e),
            GrantScope::HeldBy { user_id, .. } => current_prefix(user_id),
            GrantScope::User {
                user_id,
                entitlement_id: Some(e),
            } => by_pair_prefix(user_id, e),
            GrantScope::User { user_id, .. } => by_user_prefix(user_id),
            GrantScope::Entitlement(e) => by_entitlement_prefix(e),
            GrantScope::App(a) => by_app_prefix(a),
            GrantScope::All => b"g/".to_vec(),
        }
    }
}

/// A page of grants and where the next one starts (a key of the index).
#[derive(Debug, Default)]
pub struct GrantPage {
    pub grants: Vec<GrantView>,
    pub next: Option<Vec<u8>>,
}

impl GrantLedger {
    /// Up to `size` grants under `scope` that pass `keep`, in the index's
    /// order (issue order, but for what a user holds now: by entitlement),
    /// starting after key `after` (a page's `next`).
    pub(crate) fn page(
        tree: &crate::store::Tree,
        scope: &GrantScope,
        after: Option<&[u8]>,
        size: usize,
        mut keep: impl FnMut(&GrantView) -> bool,
    ) -> Result<GrantPage> {
        let prefix = scope.prefix();
        let mut end = prefix.clone();
        end.push(0xff);
        let start = match after {
            Some(a) if a >= end.as_slice() => return Ok(GrantPage::default()),
            Some(a) if a >= prefix.as_slice() => std::ops::Bound::Excluded(a.to_vec()),
            _ => std::ops::Bound::Included(prefix.clone()),
        };
        let mut page = GrantPage::default();
        let mut last = None;
        for kv in tree.range((start, std::ops::Bound::Excluded(end))) {
            let (k, v) = kv?;
            if !k.starts_with(&prefix) {
                break;
            }
            let exact = matches!(
                scope,
                GrantScope::HeldBy {
                    entitlement_id: Some(_),
                    ..
                }
            );
            if exact && k.as_ref() != prefix.as_slice() {
                continue;
            }
            // `cur/` keys hold the grant id; the others end with it.
            let id = match scope {
                GrantScope::HeldBy { .. } => String::from_utf8_lossy(&v).into_owned(),
                GrantScope::All => String::from_utf8_lossy(&k[2..]).into_owned(),
                _ => {
                    let id = k.rsplit(|b| *b == b'/').next().unwrap_or_default();
                    String::from_utf8_lossy(id).into_owned()
                }
            };
            let Some(g) = Self::get(tree, &id)? else {
                continue;
            };
            if !keep(&g) {
                continue;
            }
            if page.grants.len() == size {
                page.next = last;
                return Ok(page);
            }
            last = Some(k.to_vec());
            page.grants.push(g);
        }
        Ok(page)
    }

    pub(crate) fn get(tree: &crate::store::Tree, id: &str) -> Result<Option<GrantView>> {
        Staged::new(tree).get_value(&grant_key(id))
    }
}
