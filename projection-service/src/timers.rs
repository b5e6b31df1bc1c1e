//! `TimerIndex`: what is due when. Access reviews close at their due date;
//! grants end at their `deprovisionAt`;
//! requests are cancelled at their `expiryDate`; approved requests with a
//! future `startDate` are granted then. The index is a read model
//! like any other (rebuilt from the log, so timers survive restarts); the
//! timer driver reads the earliest entries and issues the commands, whose
//! events then remove them.
//!
//! Keys: `d/<due BE>/<kind>/<id>` -> [`Timer`]; `k/<kind>/<id>` -> the `d/` key;
//! `sd/<requestId>` -> the start date (BE) of a grant request still open,
//! which becomes a timer when the request is approved; `pd/<deliveryId>`
//! marks a pending delivery that timers make: a provisioning task's, or one
//! an admin retried (event deliveries are otherwise made by their webhook's
//! follower); `rv/<reviewId>` -> the due date (BE) of an access review,
//! which becomes a timer when it is launched.

use iga_eventlog::RecordedEvent;
use iga_schemas::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::{Projection, Result, Staged};

pub const NAME: &str = "timers";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Timer {
    /// End grant `grant_id` of the pair.
    GrantExpiry {
        grant_id: String,
        user_id: String,
        entitlement_id: String,
    },
    /// Cancel request `request_id` (it expired before completion).
    RequestExpiry { request_id: String },
    /// Grant approved request `request_id`: its start date came.
    RequestStart { request_id: String },
    /// Make the next attempt of provisioning delivery `delivery_id`: due
    /// when requested, then at each retry's time.
    Delivery { delivery_id: String },
    /// Close access review `review_id`: its due date came.
    ReviewDue { review_id: String },
}

pub struct TimerIndex;

fn due_key(due: i64, kind: &str, id: &str) -> Vec<u8> {
    let mut k = b"d/".to_vec();
    k.extend_from_slice(&due.max(0).to_be_bytes());
    k.extend_from_slice(format!("/{kind}/{id}").as_bytes());
    k
}

fn start_key(request_id: &str) -> Vec<u8> {
    format!("sd/{request_id}").into_bytes()
}

fn pending_delivery_key(delivery_id: &str) -> Vec<u8> {
    format!("pd/{delivery_id}").into_bytes()
}

fn review_due_key(review_id: &str) -> Vec<u8> {
    format!("rv/{review_id}").into_bytes()
}

fn back_key(kind: &str, id: &str) -> Vec<u8> {
    format!("k/{kind}/{id}").into_bytes()
}

fn set(tx: &mut Staged<'_>, kind: &str, id: &str, due: i64, timer: &Timer) {
    clear(tx, kind, id);
    if due > 0 {
        let k = due_key(due, kind, id);
        tx.put_value(k.clone(), timer);
        tx.put(back_key(kind, id), k);
    }
}

fn clear(tx: &mut Staged<'_>, kind: &str, id: &str) {
    if let Ok(Some(k)) = tx.get(&back_key(kind, id)) {
        tx.delete(k);
        tx.delete(back_key(kind, id));
    }
}

impl Projection for TimerIndex {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply(
        &self,
        event: &RecordedEvent,
        decoded: &DomainEvent,
        tx: &mut Staged<'_>,
    ) -> Result<()> {
        match decoded {
            DomainEvent::GrantIssued(e) => {
                let timer = Timer::GrantExpiry {
                    grant_id: e.grant_id.clone(),
                    user_id: e.user_id.clone(),
                    entitlement_id: e.entitlement_id.clone(),
                };
                set(tx, "g", &e.grant_id, e.deprovision_at_micros, &timer);
            }
            DomainEvent::GrantDurationChanged(e) => {
                let timer = Timer::GrantExpiry {
                    grant_id: e.grant_id.clone(),
                    user_id: e.user_id.clone(),
                    entitlement_id: e.entitlement_id.clone(),
                };
                set(tx, "g", &e.grant_id, e.deprovision_at_micros, &timer);
            }
            DomainEvent::GrantEnded(e) => clear(tx, "g", &e.grant_id),
            DomainEvent::AccessRequestCreated(e) => {
                let timer = Timer::RequestExpiry {
                    request_id: e.request_id.clone(),
                };
                set(tx, "r", &e.request_id, e.expiry_date_micros, &timer);
                if e.start_date_micros > 0 && !e.request_type.ends_with("Remove") {
                    tx.put(start_key(&e.request_id), e.start_date_micros.to_be_bytes());
                }
            }
            DomainEvent::RequestApproved(e) => {
                clear(tx, "r", &e.request_id);
                if let Some(start) = tx.get(&start_key(&e.request_id))? {
                    let start = i64::from_be_bytes(start.try_into().unwrap_or_default());
                    let timer = Timer::RequestStart {
                        request_id: e.request_id.clone(),
                    };
                    set(tx, "s", &e.request_id, start, &timer);
                }
            }
            DomainEvent::RequestRejected(e) => {
                clear(tx, "r", &e.request_id);
                tx.delete(start_key(&e.request_id));
            }
            DomainEvent::RequestCancelled(e) => {
                clear(tx, "r", &e.request_id);
                clear(tx, "s", &e.request_id);
                tx.delete(start_key(&e.request_id));
            }
            DomainEvent::RequestFulfilled(e) => {
                clear(tx, "s", &e.request_id);
                tx.delete(start_key(&e.request_id));
            }
            DomainEvent::DeliveryRequested(e) if e.kind == "provisioning" => {
                tx.put(pending_delivery_key(&e.delivery_id), Vec::new());
                let timer = Timer::Delivery {
                    delivery_id: e.delivery_id.clone(),
                };
                let at = event.envelope.occurred_at_unix_micros;
                set(tx, "dl", &e.delivery_id, at, &timer);
            }
            DomainEvent::DeliveryAttempted(e)
                if tx.get(&pending_delivery_key(&e.delivery_id))?.is_some() =>
            {
                let timer = Timer::Delivery {
                    delivery_id: e.delivery_id.clone(),
                };
                set(tx, "dl", &e.delivery_id, e.next_attempt_at_micros, &timer);
            }
            DomainEvent::DeliveryRetried(e) => {
                // An admin's retry is made by timers, whatever its kind.
                tx.put(pending_delivery_key(&e.delivery_id), Vec::new());
                let timer = Timer::Delivery {
                    delivery_id: e.delivery_id.clone(),
                };
                let at = event.envelope.occurred_at_unix_micros;
                set(tx, "dl", &e.delivery_id, at, &timer);
            }
            // A campaign is due once launched (a draft is never closed).
            DomainEvent::ReviewCreated(e) => {
                tx.put(review_due_key(&e.review_id), e.due_at_micros.to_be_bytes());
            }
            DomainEvent::ReviewLaunched(e) => {
                if let Some(due) = tx.get(&review_due_key(&e.review_id))? {
                    let due = i64::from_be_bytes(due.try_into().unwrap_or_default());
                    let timer = Timer::ReviewDue {
                        review_id: e.review_id.clone(),
                    };
                    set(tx, "rv", &e.review_id, due, &timer);
                }
            }
            DomainEvent::ReviewClosed(e) => {
                clear(tx, "rv", &e.review_id);
                tx.delete(review_due_key(&e.review_id));
            }
            DomainEvent::DeliverySucceeded(e) => {
                clear(tx, "dl", &e.delivery_id);
                tx.delete(pending_delivery_key(&e.delivery_id));
            }
            DomainEvent::DeliveryFailed(e) => {
                clear(tx, "dl", &e.delivery_id);
                tx.delete(pending_delivery_key(&e.delivery_id));
            }
            _ => {}
        }
        Ok(())
    }
}

/// What [`TimerIndex::due`] answers.
#[derive(Debug, Default)]
pub struct Due {
    /// Due timers, earliest first, with their due times.
    pub timers: Vec<(i64, Timer)>,
    /// When the next timer is due, if after the scan's `now`.
    pub next: Option<i64>,
}

impl TimerIndex {
    /// The timers due at `now` or before, earliest first, at most `max`; and
    /// when the next timer is due, if after `now`. Only due timers are
    /// decoded: the scan runs after every batch the read models apply, and
    /// the index holds a timer for every grant with an end.
    pub(crate) fn due(tree: &crate::store::Tree, now: i64, max: usize) -> Result<Due> {
        let mut timers = Vec::new();
        for kv in tree.scan_prefix(b"d/") {
            let (k, v) = kv?;
            let due = i64::from_be_bytes(k[2..10].try_into().expect("8 bytes"));
            if due > now || timers.len() == max {
                let next = (due > now).then_some(due);
                return Ok(Due { timers, next });
            }
            let timer = crate::staged::decode_value(&v)
                .map_err(|e| crate::ProjectionError::Corrupt(format!("timer: {e}")))?;
            timers.push((due, timer));
        }
        Ok(Due { timers, next: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_answers_what_is_due_and_when_the_next_one_is() {
        let db = crate::store::Db::temporary().unwrap();
        let tree = db.open_tree("timers").unwrap();
        let mut tx = Staged::new(&tree);
        for (id, due) in [("a", 10), ("b", 20), ("c", 30), ("d", 40)] {
            let timer = Timer::RequestExpiry {
                request_id: id.into(),
            };
            set(&mut tx, "r", id, due, &timer);
        }
        tree.apply(&tx.into_writes().unwrap()).unwrap();
        let ids = |d: &Due| {
            d.timers
                .iter()
                .map(|(at, t)| match t {
                    Timer::RequestExpiry { request_id } => (*at, request_id.clone()),
                    _ => unreachable!(),
                })
                .collect::<Vec<_>>()
        };

        let d = TimerIndex::due(&tree, 25, 64).unwrap();
        assert_eq!(ids(&d), [(10, "a".to_string()), (20, "b".into())]);
        assert_eq!(d.next, Some(30));
        // More due than `max`: no next time, look again at once.
        let d = TimerIndex::due(&tree, 100, 1).unwrap();
        assert_eq!((ids(&d).len(), d.next), (1, None));
        let d = TimerIndex::due(&tree, 5, 64).unwrap();
        assert_eq!((d.timers.len(), d.next), (0, Some(10)));
        let d = TimerIndex::due(&tree, 100, 64).unwrap();
        assert_eq!((d.timers.len(), d.next), (4, None));
    }
}
