//! The timer driver: reads the `timers` read model and ends grants at their
//! `deprovisionAt`, cancels requests at their `expiryDate`, grants
//! approved requests at their `startDate` (never before), and closes access
//! reviews at their due date, through
//! command-service's idempotent commands.

use std::sync::Arc;
use std::time::Duration;

use command_service::fulfilment::{expire_grant, expire_request, fulfil};
use command_service::{now_unix_micros, CommandError, CommandHandler};
use iga_eventlog::work::DueQueue;
use iga_eventlog::{Position, WorkSharing};
use projection_service::timers::{Due, Timer};
use projection_service::ReadModels;

use crate::delivery::Deliverer;
use tokio::sync::watch;

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
    pub shared: Option<Arc<dyn WorkSharing>>,
    /// Makes provisioning deliveries' attempts (`Timer::Delivery`); without
    /// it they wait.
    pub deliveries: Option<Arc<Deliverer>>,
    /// Deliveries being attempted by this instance now: a slow receiver
    /// holds up only its own delivery, never the other timers.
    pub in_flight: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

/// The queue's id of a timer that is due at `due`: the same in every instance.
fn timer_id(due: i64, timer: &Timer) -> String {
    match timer {
        Timer::GrantExpiry { grant_id, .. } => format!("timer-g-{grant_id}-{due}"),
        Timer::RequestExpiry { request_id } => format!("timer-r-{request_id}-{due}"),
        Timer::RequestStart { request_id } => format!("timer-s-{request_id}-{due}"),
        Timer::Delivery { delivery_id } => format!("timer-d-{delivery_id}-{due}"),
        Timer::ReviewDue { review_id } => format!("timer-rv-{review_id}-{due}"),
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
                    q = log.join_due_queue("timers") => q.map_err(unavailable)?,
                    _ = shutdown.wait_for(|s| *s) => return Ok(()),
                };
                let taker = log.join_due_queue("timers").await.map_err(unavailable)?;
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
    async fn fire_shared(&self, mut queue: Box<dyn DueQueue>, mut shutdown: watch::Receiver<bool>) {
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
            if let Timer::Delivery { delivery_id } = &timer {
                // A call may take the outbound timeout: the others go on.
                if let Some(attempt) = self.start_delivery(delivery_id) {
                    tokio::spawn(async move {
                        // One instance at a time: held while the call lasts.
                        let made =
                            iga_eventlog::work::with_heartbeat(item.handle.as_ref(), attempt);
                        match made.await {
                            Ok(_) => {
                                if let Err(e) = item.ack().await {
                                    tracing::warn!(error = %e, "delivery acknowledgement failed");
                                }
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "delivery attempt failed; will retry")
                            }
                        }
                    });
                }
                continue;
            }
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
        offers: Option<Box<dyn DueQueue>>,
    ) -> Result<(), CommandError> {
        let mut positions = self.models.watch_position();
        // What this instance offered, and when: offered again only once the
        // queue has forgotten the id (a firing that never came back).
        let mut offered: std::collections::HashMap<String, tokio::time::Instant> =
            Default::default();
        loop {
            let models = self.models.clone();
            let now = now_unix_micros();
            let Due {
                timers: due,
                next: next_due,
            } = tokio::task::spawn_blocking(move || models.due_timers(now, 64))
                .await
                .expect("timer scan")
                .map_err(|e| CommandError::Decode(e.to_string()))?;
            let mut last = 0;
            for (at, timer) in due {
                if let (None, Timer::Delivery { delivery_id }) = (&offers, &timer) {
                    if let Some(attempt) = self.start_delivery(delivery_id) {
                        tokio::spawn(async move {
                            if let Err(e) = attempt.await {
                                tracing::warn!(error = %e, "delivery attempt failed; will retry");
                            }
                        });
                    }
                    continue;
                }
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
                let window = queue.duplicate_window();
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
    async fn fire(&self, timer: &Timer) -> Result<Position, String> {
        let handler = &self.handler;
        let fired = match timer {
            Timer::GrantExpiry {
                grant_id,
                user_id,
                entitlement_id,
            } => expire_grant(handler, grant_id, user_id, entitlement_id).await,
            Timer::RequestStart { request_id } => fulfil(handler, request_id).await,
            Timer::RequestExpiry { request_id } => expire_request(handler, request_id).await,
            Timer::ReviewDue { review_id } => {
                command_service::reviews::close_due(handler, review_id).await
            }
            Timer::Delivery { delivery_id } => {
                return match self.start_delivery(delivery_id) {
                    Some(attempt) => attempt.await,
                    None => Ok(0),
                }
            }
        };
        fired.map_err(|e| e.to_string())
    }

    /// The next attempt of provisioning delivery `id`, to run apart, unless
    /// one is in flight here already (or nothing makes deliveries). It stays
    /// in flight until the read models saw what it wrote, so a scan in
    /// between does not make it again.
    fn start_delivery(
        &self,
        id: &str,
    ) -> Option<impl std::future::Future<Output = Result<Position, String>> + Send + 'static> {
        let deliverer = self.deliveries.clone()?;
        if !self
            .in_flight
            .lock()
            .expect("in flight")
            .insert(id.to_string())
        {
            return None;
        }
        let in_flight = self.in_flight.clone();
        let models = self.models.clone();
        let id = id.to_string();
        Some(async move {
            let made = deliverer.attempt(&id).await;
            if let Ok(p) = &made {
                models.wait_for(*p, Duration::from_secs(5)).await;
            }
            in_flight.lock().expect("in flight").remove(&id);
            made
        })
    }
}
