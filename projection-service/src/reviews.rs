//! `ReviewBoard`: access review campaigns and their items as the API shows
//! them (folded by [`iga_api::Review::apply`] and
//! [`iga_api::ReviewItem::apply`]), with what only many streams know: a
//! campaign's progress (in all and per reviewer), the reviewers' inboxes,
//! and whether an item's grant ended.
//!
//! Keys (`seq`: the log position of the item's opening, big-endian, so key
//! order is opening order):
//! - `r/<reviewId>` -> [`ReviewRecord`]; `o/<seq>/<reviewId>` -> `""` (the
//!   campaigns, oldest first; `seq` of its creation);
//! - `i/<itemId>` -> [`ItemRecord`];
//! - `ri/<reviewId>/<seq>/<itemId>`: a campaign's items;
//! - `rd/<reviewId>/<decision>/<seq>/<itemId>` (`pending`, `certify`,
//!   `revoke`): by standing decision;
//! - `rr/<reviewId>/<reviewerId>/<seq>/<itemId>`: by reviewer;
//! - `me/<reviewerId>/<seq>/<itemId>`: a reviewer's undecided items (their
//!   inbox; items of a closed campaign are skipped on reads);
//! - `p/<reviewId>/<reviewerId>` -> [`ReviewProgress`] per reviewer;
//! - `g/<grantId>/<itemId>`: the items looking at a grant.

use iga_api::{rfc3339, Review, ReviewItem, ReviewProgress};
use iga_eventlog::RecordedEvent;
use iga_schemas::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::{Projection, Result, Staged};

pub const NAME: &str = "reviews";

/// A campaign, its progress and where it sits in the list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReviewRecord {
    pub review: Review,
    pub progress: ReviewProgress,
    pub seq: u64,
}

impl ReviewRecord {
    /// The campaign as reads answer it: with its progress.
    pub fn render(self) -> Review {
        Review {
            progress: Some(self.progress),
            ..self.review
        }
    }
}

/// An item and where it sits in the indexes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ItemRecord {
    pub item: ReviewItem,
    pub seq: u64,
}

pub(crate) fn review_key(id: &str) -> Vec<u8> {
    format!("r/{id}").into_bytes()
}

pub(crate) fn item_key(id: &str) -> Vec<u8> {
    format!("i/{id}").into_bytes()
}

pub(crate) fn progress_prefix(review_id: &str) -> Vec<u8> {
    format!("p/{review_id}/").into_bytes()
}

fn progress_key(review_id: &str, reviewer: &str) -> Vec<u8> {
    format!("p/{review_id}/{reviewer}").into_bytes()
}

/// `<prefix><seq>/<id>`.
pub(crate) fn indexed(prefix: &str, seq: u64, id: &str) -> Vec<u8> {
    let mut k = prefix.as_bytes().to_vec();
    k.extend_from_slice(&seq.to_be_bytes());
    k.push(b'/');
    k.extend_from_slice(id.as_bytes());
    k
}

fn decision_slot(d: Option<&str>) -> &str {
    d.unwrap_or("pending")
}

/// Which items a list reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemScope {
    /// Every item of a campaign.
    Review(String),
    /// A campaign's items with a standing decision (`pending`: none).
    Decision { review_id: String, decision: String },
    /// A campaign's items one reviewer reviews.
    Reviewer {
        review_id: String,
        reviewer_id: String,
    },
    /// A reviewer's undecided items, every campaign.
    Inbox(String),
}

impl ItemScope {
    pub(crate) fn prefix(&self) -> String {
        match self {
            ItemScope::Review(r) => format!("ri/{r}/"),
            ItemScope::Decision {
                review_id,
                decision,
            } => format!("rd/{review_id}/{decision}/"),
            ItemScope::Reviewer {
                review_id,
                reviewer_id,
            } => format!("rr/{review_id}/{reviewer_id}/"),
            ItemScope::Inbox(r) => format!("me/{r}/"),
        }
    }
}

pub struct ReviewBoard;

/// Changes reviewer `reviewer`'s share of campaign `review_id` with `f`.
fn reviewer_progress(
    tx: &mut Staged<'_>,
    review_id: &str,
    reviewer: &str,
    f: impl FnOnce(&mut ReviewProgress),
) -> Result<()> {
    let key = progress_key(review_id, reviewer);
    let mut p = tx.get_value::<ReviewProgress>(&key)?.unwrap_or_default();
    f(&mut p);
    if p.total == 0 {
        tx.delete(key);
    } else {
        tx.put_value(key, &p);
    }
    Ok(())
}

fn campaign_progress(
    tx: &mut Staged<'_>,
    review_id: &str,
    f: impl FnOnce(&mut ReviewProgress),
) -> Result<()> {
    let key = review_key(review_id);
    if let Some(mut record) = tx.get_value::<ReviewRecord>(&key)? {
        f(&mut record.progress);
        tx.put_value(key, &record);
    }
    Ok(())
}

fn slot<'a>(p: &'a mut ReviewProgress, d: Option<&str>) -> &'a mut u64 {
    match d {
        Some("certify") => &mut p.certified,
        Some("revoke") => &mut p.revoked,
        _ => &mut p.pending,
    }
}

/// Counts one item with decision `d` in (`add`) or out of a progress.
fn count(p: &mut ReviewProgress, d: Option<&str>, add: bool) {
    if add {
        p.total += 1;
        *slot(p, d) += 1;
    } else {
        p.total = p.total.saturating_sub(1);
        let s = slot(p, d);
        *s = s.saturating_sub(1);
    }
}

/// Whose inbox, reviewer index and progress an item is in.
fn index_reviewers(tx: &mut Staged<'_>, record: &ItemRecord, add: bool) -> Result<()> {
    let item = &record.item;
    let d = item.decision.as_deref();
    for reviewer in &item.reviewer_ids {
        let rr = indexed(
            &format!("rr/{}/{reviewer}/", item.review_id),
            record.seq,
            &item.id,
        );
        let me = indexed(&format!("me/{reviewer}/"), record.seq, &item.id);
        if add {
            tx.put(rr, Vec::new());
            if d.is_none() {
                tx.put(me, Vec::new());
            }
        } else {
            tx.delete(rr);
            tx.delete(me);
        }
        reviewer_progress(tx, &item.review_id, reviewer, |p| count(p, d, add))?;
    }
    Ok(())
}

impl ReviewBoard {
    pub(crate) fn review(tree: &crate::store::Tree, id: &str) -> Result<Option<ReviewRecord>> {
        Staged::new(tree).get_value(&review_key(id))
    }

    pub(crate) fn item(tree: &crate::store::Tree, id: &str) -> Result<Option<ItemRecord>> {
        Staged::new(tree).get_value(&item_key(id))
    }
}

impl Projection for ReviewBoard {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply(
        &self,
        event: &RecordedEvent,
        decoded: &DomainEvent,
        tx: &mut Staged<'_>,
    ) -> Result<()> {
        let env = &event.envelope;
        let (at, version) = (env.occurred_at_unix_micros, env.stream_version);
        let review_changed = |tx: &mut Staged<'_>, id: &str| -> Result<()> {
            let key = review_key(id);
            if let Some(mut record) = tx.get_value::<ReviewRecord>(&key)? {
                record.review.apply(decoded, at, version);
                tx.put_value(key, &record);
            }
            Ok(())
        };
        match decoded {
            DomainEvent::ReviewCreated(e) => {
                let mut review = Review::default();
                review.apply(decoded, at, version);
                let seq = event.position;
                tx.put(indexed("o/", seq, &e.review_id), Vec::new());
                tx.put_value(
                    review_key(&e.review_id),
                    &ReviewRecord {
                        review,
                        progress: ReviewProgress::default(),
                        seq,
                    },
                );
            }
            DomainEvent::ReviewLaunched(e) => review_changed(tx, &e.review_id)?,
            DomainEvent::ReviewItemsListed(e) => review_changed(tx, &e.review_id)?,
            DomainEvent::ReviewClosed(e) => review_changed(tx, &e.review_id)?,
            DomainEvent::ReviewItemOpened(e) => {
                if tx.get(&item_key(&e.item_id))?.is_some() {
                    return Ok(());
                }
                let mut item = ReviewItem::default();
                item.apply(decoded, at, version);
                let record = ItemRecord {
                    item,
                    seq: event.position,
                };
                let (seq, id) = (record.seq, &e.item_id);
                tx.put(
                    indexed(&format!("ri/{}/", e.review_id), seq, id),
                    Vec::new(),
                );
                tx.put(
                    indexed(&format!("rd/{}/pending/", e.review_id), seq, id),
                    Vec::new(),
                );
                tx.put(format!("g/{}/{id}", e.grant_id).into_bytes(), Vec::new());
                index_reviewers(tx, &record, true)?;
                campaign_progress(tx, &e.review_id, |p| count(p, None, true))?;
                tx.put_value(item_key(id), &record);
            }
            DomainEvent::ReviewItemDecided(e) => {
                let key = item_key(&e.item_id);
                let Some(mut record) = tx.get_value::<ItemRecord>(&key)? else {
                    return Ok(());
                };
                let review_id = record.item.review_id.clone();
                let before = record.item.decision.clone();
                index_reviewers(tx, &record, false)?;
                record.item.apply(decoded, at, version);
                index_reviewers(tx, &record, true)?;
                let after = record.item.decision.clone();
                let (seq, id) = (record.seq, &e.item_id);
                tx.delete(indexed(
                    &format!("rd/{review_id}/{}/", decision_slot(before.as_deref())),
                    seq,
                    id,
                ));
                tx.put(
                    indexed(
                        &format!("rd/{review_id}/{}/", decision_slot(after.as_deref())),
                        seq,
                        id,
                    ),
                    Vec::new(),
                );
                campaign_progress(tx, &review_id, |p| {
                    count(p, before.as_deref(), false);
                    count(p, after.as_deref(), true);
                })?;
                tx.put_value(key, &record);
            }
            DomainEvent::ReviewItemReassigned(e) => {
                let key = item_key(&e.item_id);
                let Some(mut record) = tx.get_value::<ItemRecord>(&key)? else {
                    return Ok(());
                };
                index_reviewers(tx, &record, false)?;
                record.item.apply(decoded, at, version);
                index_reviewers(tx, &record, true)?;
                tx.put_value(key, &record);
            }
            DomainEvent::ReviewItemCommented(e) => {
                let key = item_key(&e.item_id);
                if let Some(mut record) = tx.get_value::<ItemRecord>(&key)? {
                    record.item.apply(decoded, at, version);
                    tx.put_value(key, &record);
                }
            }
            DomainEvent::GrantEnded(e) => {
                let prefix = format!("g/{}/", e.grant_id).into_bytes();
                for k in tx.keys_with_prefix(&prefix)? {
                    let item_id = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
                    let key = item_key(&item_id);
                    if let Some(mut record) = tx.get_value::<ItemRecord>(&key)? {
                        record.item.grant_ended_at = Some(rfc3339(e.ended_at_micros));
                        tx.put_value(key, &record);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}
