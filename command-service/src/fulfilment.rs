//! Fulfilment and time: what happens after a decision, and when a date passes.
//!
//! [`fulfil`] turns an approved request into a grant (or a revocation) and
//! records the outcome on the request; for a rejected or cancelled request it
//! closes the request on its access pair. Every command it issues is
//! idempotent (system commands keyed by the request id), so it may run any
//! number of times: the HTTP handlers run it at once after a decision (so the
//! answer's consistency token covers the grant), and [`FulfilmentReactor`]
//! runs it again from the log, which finishes the work if the process died
//! between the decision and the grant.
//!
//! [`TimerDriver`] reads the `timers` read model and ends grants at their
//! `deprovisionAt` and cancels requests at their `expiryDate`.

use std::sync::Arc;
use std::time::Duration;

use iga_domain::access::{pair_key, AccessCommand, AccessPair};
use iga_domain::entitlement::Entitlement;
use iga_domain::request::{AccessRequest, RequestCommand, Status};
use iga_domain::Context;
use iga_eventlog::jetstream::JetStreamEventStore;
use iga_eventlog::shared::DueQueue;
use iga_eventlog::{Position, RecordedEvent};
use iga_schemas::{v1, DomainEvent};
use projection_service::reactor::Reactor;
use projection_service::timers::{Timer, TimerIndex};
use projection_service::ReadModels;
use tokio::sync::watch;

use crate::{now_unix_micros, CommandError, CommandHandler, CommandMeta};

/// The principal of commands the service issues itself.
pub const SYSTEM: &str = "system";

fn system_meta(key: Option<String>, correlation: &str) -> CommandMeta {
    CommandMeta {
        ctx: Context {
            actor_id: SYSTEM.into(),
            actor_roles: vec![],
            now_unix_micros: now_unix_micros(),
        },
        correlation_id: correlation.to_string(),
        idempotency_key: key,
        expected_version: None,
    }
}

/// A stable grant id for the grant a request issues.
fn grant_id_for(request_id: &str) -> String {
    crate::users::derived_id("grant", request_id)
}

/// Finishes what a decided request calls for; answers the position of the
/// last event written (0 when there was nothing to do).
pub async fn fulfil(handler: &CommandHandler, request_id: &str) -> Result<Position, CommandError> {
    let (req, at) = handler.snapshot::<AccessRequest>(request_id).await?;
    if !req.exists() {
        return Ok(0);
    }
    let c = &req.created;
    let pair = pair_key(&c.user_id, &c.entitlement_id);
    let meta = system_meta(Some(format!("fulfil\0{request_id}")), request_id);
    let mut position = 0;
    if req.approved != Some(true) {
        if req.status != Status::InProgress {
            // Rejected, cancelled or expired: free the pair for a new request.
            let (_, out) = handler
                .execute::<AccessPair>(
                    &pair,
                    &AccessCommand::Close {
                        request_id: request_id.into(),
                    },
                    &meta,
                )
                .await?;
            position = out.position;
        }
        return Ok(position);
    }
    if req.fulfilled {
        // Done already (by the reactor, or an earlier try): the request's
        // last event, written after the grant, is the position that covers it.
        return Ok(at.position);
    }
    let grant_id = if req.is_removal() {
        let (before, _) = handler.load::<AccessPair>(&pair).await?;
        let ended = before.grant.map(|g| g.grant_id).unwrap_or_default();
        let (_, out) = handler
            .execute::<AccessPair>(
                &pair,
                &AccessCommand::EndForRequest {
                    request_id: request_id.into(),
                },
                &meta,
            )
            .await?;
        position = out.position;
        ended
    } else {
        let now = meta.ctx.now_unix_micros;
        let starts = c.start_date_micros.max(now);
        let (ent, _) = handler.load::<Entitlement>(&c.entitlement_id).await?;
        let max = ent.fields.duration_grant_seconds * 1_000_000;
        let deprovision = if req.end_date_micros > 0 {
            req.end_date_micros
        } else if max > 0 {
            starts + max
        } else {
            0
        };
        let grant = v1::GrantIssued {
            grant_id: grant_id_for(request_id),
            user_id: c.user_id.clone(),
            app_id: c.app_id.clone(),
            entitlement_id: c.entitlement_id.clone(),
            grant_type: "request".into(),
            request_id: request_id.into(),
            starts_at_micros: starts,
            deprovision_at_micros: deprovision,
        };
        let (after, out) = handler
            .execute::<AccessPair>(&pair, &AccessCommand::IssueForRequest(grant), &meta)
            .await?;
        position = out.position;
        after.grant.map(|g| g.grant_id).unwrap_or_default()
    };
    let done = RequestCommand::Fulfil {
        grant_id,
        outcome: "provisioned".into(),
        message: String::new(),
    };
    let (_, out) = handler
        .execute::<AccessRequest>(request_id, &done, &meta)
        .await?;
    Ok(position.max(out.position))
}

/// Runs [`fulfil`] for every decided request in the log.
pub struct FulfilmentReactor {
    pub handler: CommandHandler,
}

#[async_trait::async_trait]
impl Reactor for FulfilmentReactor {
    fn name(&self) -> &'static str {
        "fulfilment"
    }

    async fn react(&self, _event: &RecordedEvent, decoded: &DomainEvent) -> Result<(), String> {
        let id = match decoded {
            DomainEvent::RequestApproved(e) => &e.request_id,
            DomainEvent::RequestRejected(e) => &e.request_id,
            DomainEvent::RequestCancelled(e) => &e.request_id,
            _ => return Ok(()),
        };
        fulfil(&self.handler, id)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Fires due timers: ends grants at `deprovisionAt`, cancels requests at
/// `expiryDate`. Timers live in the `timers` read model, so they survive
/// restarts; firing is idempotent, so a timer fired twice acts once.
///
/// On a JetStream log (`shared`), every instance offers the timers it sees
/// due to a shared work queue, keyed by timer, so that the queue keeps one
/// copy of each and exactly one instance fires it.
pub struct TimerDriver {
    pub handler: CommandHandler,
    pub models: Arc<ReadModels>,
    pub shared: Option<JetStreamEventStore>,
}

/// The queue's id of a timer that is due at `due`: the same in every instance.
fn timer_id(due: i64, timer: &Timer) -> String {
    match timer {
        Timer::GrantExpiry { grant_id, .. } => format!("timer-g-{grant_id}-{due}"),
        Timer::RequestExpiry { request_id } => format!("timer-r-{request_id}-{due}"),
    }
}

/// The longest the driver sleeps before looking again.
const TIMER_POLL: Duration = Duration::from_millis(500);

impl TimerDriver {
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<(), CommandError> {
        let unavailable = |e: iga_eventlog::EventLogError| CommandError::EventLog(e);
        let queue = match &self.shared {
            None => None,
            Some(log) => {
                let offers = tokio::select! {
                    q = DueQueue::join(log, "timers") => q.map_err(unavailable)?,
                    _ = shutdown.wait_for(|s| *s) => return Ok(()),
                };
                let taker = DueQueue::join(log, "timers").await.map_err(unavailable)?;
                Some((offers, taker))
            }
        };
        let Some((offers, taker)) = queue else {
            return self.scan(shutdown, None).await;
        };
        let driver = Arc::new(self);
        let firing = {
            let driver = driver.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move { driver.fire_shared(taker, shutdown).await })
        };
        let scanned = driver.scan(shutdown.clone(), Some(offers)).await;
        let _ = shutdown.wait_for(|s| *s).await;
        let _ = firing.await;
        scanned
    }

    /// Fires the timers the shared queue hands this instance.
    async fn fire_shared(&self, mut queue: DueQueue, mut shutdown: watch::Receiver<bool>) {
        loop {
            let item = tokio::select! {
                item = queue.next() => item,
                _ = shutdown.wait_for(|s| *s) => return,
            };
            let timer: Timer = match serde_json::from_slice(&item.payload) {
                Ok(t) => t,
                Err(e) => {
                    // Not ours to understand (a newer version's timer?): leave
                    // it to the ack wait and another instance.
                    tracing::warn!(error = %e, "due timer cannot be decoded");
                    continue;
                }
            };
            match self.fire(&timer).await {
                Ok(_) => {
                    metrics::counter!("iga_timers_fired_total").increment(1);
                    if let Err(e) = item.ack().await {
                        tracing::warn!(?timer, error = %e, "timer acknowledgement failed");
                    }
                }
                // Unacknowledged, it comes back after the ack wait.
                Err(e) => tracing::warn!(?timer, error = %e, "timer failed; will retry"),
            }
        }
    }

    /// Looks for due timers: fires them (alone) or offers them (`offers`).
    async fn scan(
        &self,
        mut shutdown: watch::Receiver<bool>,
        offers: Option<DueQueue>,
    ) -> Result<(), CommandError> {
        let mut positions = self.models.watch_position();
        // What this instance offered, and when: offered again only once the
        // queue has forgotten the id (a firing that never came back).
        let mut offered: std::collections::HashMap<String, tokio::time::Instant> =
            Default::default();
        loop {
            let tree = self
                .models
                .tree(projection_service::timers::NAME)
                .expect("the timers read model is open")
                .clone();
            let now = now_unix_micros();
            let projection_service::timers::Due {
                timers: due,
                next: next_due,
            } = tokio::task::spawn_blocking(move || TimerIndex::due(&tree, now, 64))
                .await
                .expect("timer scan")
                .map_err(|e| CommandError::Decode(e.to_string()))?;
            let mut last = 0;
            for (at, timer) in due {
                let Some(queue) = &offers else {
                    match self.fire(&timer).await {
                        Ok(p) => {
                            metrics::counter!("iga_timers_fired_total").increment(1);
                            last = last.max(p)
                        }
                        Err(e) => tracing::warn!(?timer, error = %e, "timer failed; will retry"),
                    }
                    continue;
                };
                let id = timer_id(at, &timer);
                if offered.contains_key(&id) {
                    continue;
                }
                let payload = serde_json::to_vec(&timer).expect("timers serialize");
                match queue.offer(&id, payload).await {
                    Ok(()) => {
                        offered.insert(id, tokio::time::Instant::now());
                    }
                    Err(e) => {
                        tracing::warn!(?timer, error = %e, "cannot offer a due timer; will retry")
                    }
                }
            }
            if let Some(queue) = &offers {
                let window = queue.duplicate_window;
                offered.retain(|_, at| at.elapsed() < window);
            }
            if last > 0 {
                // Let the index drop what fired before looking again.
                self.models.wait_for(last, Duration::from_secs(5)).await;
                continue;
            }
            let sleep = next_due
                .map(|at| Duration::from_micros((at - now).max(0) as u64))
                .unwrap_or(TIMER_POLL)
                .min(TIMER_POLL);
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {},
                _ = positions.changed() => {},
                _ = shutdown.wait_for(|s| *s) => return Ok(()),
            }
        }
    }

    /// Fires one timer; answers the position of what it wrote (0: nothing,
    /// the timer was stale).
    async fn fire(&self, timer: &Timer) -> Result<Position, CommandError> {
        match timer {
            Timer::GrantExpiry {
                grant_id,
                user_id,
                entitlement_id,
            } => {
                let meta = system_meta(None, grant_id);
                let command = AccessCommand::Expire {
                    grant_id: grant_id.clone(),
                };
                let (_, out) = self
                    .handler
                    .execute::<AccessPair>(&pair_key(user_id, entitlement_id), &command, &meta)
                    .await?;
                Ok(if out.events_written > 0 {
                    out.position
                } else {
                    0
                })
            }
            Timer::RequestExpiry { request_id } => {
                let meta = system_meta(None, request_id);
                let (_, out) = self
                    .handler
                    .execute::<AccessRequest>(request_id, &RequestCommand::Expire, &meta)
                    .await?;
                let closed = fulfil(&self.handler, request_id).await?;
                Ok(if out.events_written > 0 {
                    out.position.max(closed)
                } else {
                    closed
                })
            }
        }
    }
}
