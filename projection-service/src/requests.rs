//! `RequestDirectory`: access requests as the API shows them, and the task
//! inboxes.
//!
//! It stores [`RequestView`], the API's request object (`iga-api`), folded
//! with [`RequestView::apply`], the fold the command service answers writes
//! with, so a write and a later read answer the same bytes.
//!
//! Keys: `r/<requestId>` -> [`RequestView`]; `t/<userId>/<a|i>/<newest-first
//! created BE>/<requestId>` -> `""`: the user's active (`a`) and inactive
//! (`i`) tasks; `q/<requesterId>/<created BE>/<requestId>` and
//! `b/<beneficiaryId>/<created BE>/<requestId>` -> `""`: the requests a user
//! made and those made for them, oldest first; `u/<userId>` -> [`Member`]
//! (roles, to expand ROLE phases).

use std::collections::BTreeSet;

use iga_api::{parse_rfc3339, RequestView};
use iga_eventlog::RecordedEvent;
use iga_schemas::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::{Projection, Result, Staged};

pub const NAME: &str = "requests";

/// Whether the user `user_id` holding `roles` may see `view`: the domain's
/// rule ([`iga_domain::request::may_see`]) over what the view knows of who
/// is involved.
pub fn visible_to(view: &RequestView, user_id: &str, roles: &[String]) -> bool {
    let viewer = iga_domain::Context {
        actor_id: user_id.to_string(),
        actor_roles: roles.to_vec(),
        now_unix_micros: 0,
    };
    let people = view
        .decision
        .phases
        .iter()
        .flat_map(|p| {
            p.approver_ids
                .iter()
                .chain(p.approvals.iter().map(|a| &a.user_id))
        })
        .chain(view.decision.actors.inactive.iter().map(|a| &a.id))
        .map(String::as_str);
    let roles = view
        .decision
        .phases
        .iter()
        .filter_map(|p| p.approver_role.as_deref());
    iga_domain::request::may_see(&viewer, &view.requester.id, &view.user.id, people, roles)
}

/// What the projection remembers of a user: roles, to expand ROLE phases.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Member {
    pub roles: Vec<String>,
}

pub(crate) fn request_key(id: &str) -> Vec<u8> {
    format!("r/{id}").into_bytes()
}

/// The instant an RFC 3339 timestamp written by [`rfc3339`] stands for, in
/// microseconds (0 if it is not one).
fn micros_of(timestamp: &str) -> i64 {
    parse_rfc3339(timestamp).map_or(0, |t| (t.unix_timestamp_nanos() / 1000) as i64)
}

/// How a user takes part in a request, for the `q/` and `b/` indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    Requester,
    Beneficiary,
}

fn party_prefix(party: Party, user_id: &str) -> Vec<u8> {
    let kind = match party {
        Party::Requester => 'q',
        Party::Beneficiary => 'b',
    };
    format!("{kind}/{user_id}/").into_bytes()
}

fn party_key(party: Party, user_id: &str, created: i64, id: &str) -> Vec<u8> {
    let mut k = party_prefix(party, user_id);
    k.extend_from_slice(&created.to_be_bytes());
    k.extend_from_slice(id.as_bytes());
    k
}

fn member_key(id: &str) -> Vec<u8> {
    format!("u/{id}").into_bytes()
}

/// The prefix of a user's active (`active`) or inactive tasks, newest first.
pub(crate) fn task_prefix(user_id: &str, active: bool) -> Vec<u8> {
    format!("t/{user_id}/{}/", if active { 'a' } else { 'i' }).into_bytes()
}

fn task_key(user_id: &str, active: bool, created: i64, id: &str) -> Vec<u8> {
    let mut k = task_prefix(user_id, active);
    k.extend_from_slice(&(i64::MAX - created).to_be_bytes());
    k.extend_from_slice(id.as_bytes());
    k
}

/// The id of the request a request event belongs to.
pub fn request_id_of(event: &DomainEvent) -> Option<&str> {
    Some(match event {
        DomainEvent::AccessRequestCreated(e) => &e.request_id,
        DomainEvent::RequestApprovalRecorded(e) => &e.request_id,
        DomainEvent::RequestPhaseCompleted(e) => &e.request_id,
        DomainEvent::RequestApproved(e) => &e.request_id,
        DomainEvent::RequestRejected(e) => &e.request_id,
        DomainEvent::RequestCommented(e) => &e.request_id,
        DomainEvent::RequestReassigned(e) => &e.request_id,
        DomainEvent::RequestModified(e) => &e.request_id,
        DomainEvent::RequestCancelled(e) => &e.request_id,
        DomainEvent::RequestFulfilled(e) => &e.request_id,
        DomainEvent::ProvisioningTaskCompleted(e) if !e.request_id.is_empty() => &e.request_id,
        _ => return None,
    })
}

pub struct RequestDirectory;

impl Projection for RequestDirectory {
    fn name(&self) -> &'static str {
        NAME
    }

    /// 2: no `c/<requestId>` creation-time keys; inboxes read it off the view.
    /// 3: phases say whether admins fall back (`adminFallback`).
    /// 4: the requests of each requester (`q/`) and beneficiary (`b/`).
    fn layout(&self) -> u32 {
        4
    }

    fn apply(
        &self,
        event: &RecordedEvent,
        decoded: &DomainEvent,
        tx: &mut Staged<'_>,
    ) -> Result<()> {
        let env = &event.envelope;
        match decoded {
            DomainEvent::UserCreated(e) => {
                tx.put_value(
                    member_key(&e.user_id),
                    &Member {
                        roles: e.roles.clone(),
                    },
                );
                return Ok(());
            }
            DomainEvent::UserUpdated(e) => {
                if let Some(roles) = &e.roles {
                    tx.put_value(
                        member_key(&e.user_id),
                        &Member {
                            roles: roles.values.clone(),
                        },
                    );
                }
                return Ok(());
            }
            _ => {}
        }
        let Some(id) = request_id_of(decoded) else {
            return Ok(());
        };
        let key = request_key(id);
        // Taken, not copied: it is put back below (and a view is never
        // stored without an id, so the early return only leaves a request
        // this model never had).
        let before: Option<RequestView> = tx.take_value(&key)?;
        let new = before.is_none();
        let old_tasks = match &before {
            Some(b) => tasks(tx, b)?,
            None => BTreeSet::new(),
        };
        let mut view = before.unwrap_or_default();
        view.apply(decoded, env.occurred_at_unix_micros, env.stream_version);
        if view.id.is_empty() {
            return Ok(()); // events of a request whose creation this model never saw
        }
        let new_tasks = tasks(tx, &view)?;
        // Inboxes are newest first by creation; read off the view rather than
        // stored beside it (a key per request is an insert per request).
        let created = if old_tasks == new_tasks {
            0
        } else {
            micros_of(&view.metadata.created_date)
        };
        for (user, active) in old_tasks.difference(&new_tasks) {
            tx.delete(task_key(user, *active, created, id));
        }
        for (user, active) in new_tasks.difference(&old_tasks) {
            tx.put(task_key(user, *active, created, id), Vec::new());
        }
        if new {
            let created = micros_of(&view.metadata.created_date);
            tx.put(
                party_key(Party::Requester, &view.requester.id, created, id),
                Vec::new(),
            );
            tx.put(
                party_key(Party::Beneficiary, &view.user.id, created, id),
                Vec::new(),
            );
        }
        tx.put_owned(key, view);
        Ok(())
    }
}

/// Whose inbox the request is in: `(user, active)`. ROLE phases in progress
/// are in the inbox of every holder of the role (save the parties, unless
/// the policy allows self-approval, and those who approved already).
fn tasks(tx: &Staged<'_>, view: &RequestView) -> Result<BTreeSet<(String, bool)>> {
    let mut out: BTreeSet<(String, bool)> = BTreeSet::new();
    for a in &view.decision.actors.active {
        out.insert((a.id.clone(), true));
    }
    for a in &view.decision.actors.inactive {
        if !out.contains(&(a.id.clone(), true)) {
            out.insert((a.id.clone(), false));
        }
    }
    let open = view.decision.status == "in-progress" && view.decision.decision.is_none();
    if let Some(role) = view
        .decision
        .phases
        .iter()
        .find(|p| open && p.status == "in-progress")
        .and_then(|p| p.approver_role.clone())
    {
        let approved: BTreeSet<&str> = view
            .decision
            .phases
            .iter()
            .flat_map(|p| p.approvals.iter().map(|a| a.user_id.as_str()))
            .collect();
        for key in tx.keys_with_prefix(b"u/")? {
            let user = String::from_utf8_lossy(&key[2..]).into_owned();
            let parties = user == view.requester.id || user == view.user.id;
            if (parties && !view.decision.allow_self_approval) || approved.contains(user.as_str()) {
                continue;
            }
            let member: Member = tx.get_value(&key)?.unwrap_or_default();
            if member.roles.contains(&role) {
                out.remove(&(user.clone(), false));
                out.insert((user, true));
            }
        }
    }
    Ok(out)
}

impl RequestDirectory {
    pub(crate) fn get(tree: &crate::store::Tree, id: &str) -> Result<Option<RequestView>> {
        Staged::new(tree).get_value(&request_key(id))
    }

    /// The requests `user_id` made or that were made for them (`party`):
    /// `(created, id)`, oldest first.
    pub(crate) fn of_party(
        tree: &crate::store::Tree,
        party: Party,
        user_id: &str,
    ) -> Result<Vec<(i64, String)>> {
        let prefix = party_prefix(party, user_id);
        let mut out = Vec::new();
        for kv in tree.scan_prefix(&prefix) {
            let (k, _) = kv?;
            let rest = &k[prefix.len()..];
            if rest.len() < 8 {
                continue;
            }
            let created = i64::from_be_bytes(rest[..8].try_into().expect("8 bytes"));
            out.push((created, String::from_utf8_lossy(&rest[8..]).into_owned()));
        }
        Ok(out)
    }

    /// Every request `user_id` takes part in (made, is the beneficiary of,
    /// acts or acted on): `(created, id)`, oldest first, each once. What it
    /// reads is that user's share of the requests, not all of them.
    pub(crate) fn involving(
        tree: &crate::store::Tree,
        user_id: &str,
    ) -> Result<Vec<(i64, String)>> {
        let mut all: BTreeSet<(i64, String)> = BTreeSet::new();
        all.extend(Self::of_party(tree, Party::Requester, user_id)?);
        all.extend(Self::of_party(tree, Party::Beneficiary, user_id)?);
        for active in [true, false] {
            let prefix = task_prefix(user_id, active);
            for kv in tree.scan_prefix(&prefix) {
                let (k, _) = kv?;
                let rest = &k[prefix.len()..];
                if rest.len() < 8 {
                    continue;
                }
                let newest_first = i64::from_be_bytes(rest[..8].try_into().expect("8 bytes"));
                all.insert((
                    i64::MAX - newest_first,
                    String::from_utf8_lossy(&rest[8..]).into_owned(),
                ));
            }
        }
        Ok(all.into_iter().collect())
    }
}
