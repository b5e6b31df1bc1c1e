//! [`ReactorRunner`]: feeds a [`Reactor`] every event after its checkpoint,
//! in log order, and stores the checkpoint (in the read models' database,
//! through projection-service's typed [`ReactorCheckpoint`]) after each event
//! is handled. Delivery is therefore at least once: after a crash the last
//! events may be seen again, so a reactor's actions must be idempotent; the
//! commands it issues are, so the effect is exactly once.
//!
//! When the log shares work across instances ([`WorkSharing`], JetStream),
//! [`ReactorRunner::shared_on`] makes the instances running a reactor share
//! its events through a durable consumer instead: each event is handled by
//! one instance, and by another if that one dies before acknowledging it.
//!
//! [`ReactorCheckpoint`]: projection_service::ReactorCheckpoint

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use iga_eventlog::Sharing;
use iga_eventlog::{EventStore, RecordedEvent, WorkSharing};
use iga_schemas::DomainEvent;
use projection_service::ReadModels;
use tokio::sync::watch;

use crate::{ReactorError, Result};

#[async_trait::async_trait]
pub trait Reactor: Send + Sync + 'static {
    /// Stable name; names the checkpoint.
    fn name(&self) -> &'static str;

    /// How many events this reactor may act on at once when it runs alone
    /// (1: strictly one after the other). Its checkpoint still moves in log
    /// order, past an event only once every event before it was handled.
    /// More than 1 suits a reactor whose actions on different events are
    /// independent (each waits for its own append), never one that relays
    /// in order.
    fn concurrency(&self) -> usize {
        1
    }

    /// Acts on one event. An error is retried (with backoff) until it
    /// succeeds: the event is not skipped.
    async fn react(
        &self,
        event: &RecordedEvent,
        decoded: &DomainEvent,
    ) -> std::result::Result<(), String>;
}

pub struct ReactorRunner {
    models: Arc<ReadModels>,
    store: Arc<dyn EventStore>,
    reactor: Arc<dyn Reactor>,
    shared: Option<(Arc<dyn WorkSharing>, Sharing)>,
}

impl ReactorRunner {
    pub fn new(
        models: Arc<ReadModels>,
        store: Arc<dyn EventStore>,
        reactor: Arc<dyn Reactor>,
    ) -> Self {
        ReactorRunner {
            models,
            store,
            reactor,
            shared: None,
        }
    }

    /// Shares the work with every other instance running this reactor on
    /// the same JetStream log, through the reactor's durable consumer
    /// (see `iga_eventlog::shared`), instead of doing all of it alone.
    pub fn shared_on(mut self, log: Arc<dyn WorkSharing>, sharing: Sharing) -> Self {
        self.shared = Some((log, sharing));
        self
    }

    /// Runs until `shutdown` turns true.
    pub async fn run(self, shutdown: watch::Receiver<bool>) -> Result<()> {
        match self.shared.clone() {
            Some((log, sharing)) => self.run_shared(log, sharing, shutdown).await,
            None => self.run_alone(shutdown).await,
        }
    }

    /// Acts on `event` until the reactor succeeds (answers false if shut
    /// down first). `progress` is called while retrying.
    async fn react_until_done<F, Fut>(
        &self,
        event: &RecordedEvent,
        shutdown: &mut watch::Receiver<bool>,
        mut progress: F,
    ) -> Result<bool>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let name = self.reactor.name();
        let decoded = event
            .envelope
            .decode_event()
            .map_err(|source| ReactorError::Decode {
                position: event.position,
                source,
            })?;
        let mut delay = Duration::from_millis(50);
        loop {
            match self.reactor.react(event, &decoded).await {
                Ok(()) => {
                    metrics::counter!("iga_reactor_events_total", "reactor" => name).increment(1);
                    return Ok(true);
                }
                Err(e) => {
                    tracing::warn!(reactor = name, position = event.position, error = %e, "reactor failed; retrying");
                    progress().await;
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {},
                        _ = shutdown.wait_for(|s| *s) => return Ok(false),
                    }
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// This instance's share of the events, from the reactor's durable
    /// consumer. The local checkpoint only records the furthest event this
    /// instance handled (it places a consumer created from scratch).
    async fn run_shared(
        self,
        log: Arc<dyn WorkSharing>,
        sharing: Sharing,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<()> {
        let name = self.reactor.name();
        let checkpoint = self.models.reactor_checkpoint(name)?;
        let start = checkpoint.get()?;
        let mut feed = tokio::select! {
            feed = log.join_feed(name, sharing, start) => feed?,
            _ = shutdown.wait_for(|s| *s) => return Ok(()),
        };
        tracing::info!(
            reactor = name,
            ?sharing,
            "reactor sharing its work through a durable consumer"
        );
        let mut furthest = start;
        loop {
            let delivery = tokio::select! {
                d = feed.next() => d?,
                _ = shutdown.wait_for(|s| *s) => return Ok(()),
            };
            if delivery.attempt > 1 {
                tracing::info!(
                    reactor = name,
                    position = delivery.event.position,
                    attempt = delivery.attempt,
                    "taking over an event another instance did not finish"
                );
            }
            let done = self
                .react_until_done(&delivery.event, &mut shutdown, || delivery.in_progress())
                .await?;
            if !done {
                return Ok(());
            }
            if let Err(e) = delivery.ack().await {
                // Not lost: the event comes back (here or elsewhere) after
                // the ack wait, and acting again is idempotent.
                tracing::warn!(reactor = name, position = delivery.event.position, error = %e, "acknowledgement failed");
            }
            if delivery.event.position > furthest {
                furthest = delivery.event.position;
                checkpoint.set(furthest)?;
                metrics::gauge!("iga_reactor_position", "reactor" => name).set(furthest as f64);
            }
        }
    }

    async fn run_alone(self, mut shutdown: watch::Receiver<bool>) -> Result<()> {
        let name = self.reactor.name();
        let checkpoint = self.models.reactor_checkpoint(name)?;
        let start = checkpoint.get()?;
        let limit = self.reactor.concurrency().max(1);
        tracing::info!(reactor = name, position = start, "reactor starting");
        let mut sub = self.store.subscribe(start).await?;
        // Up to `limit` events in hand; they finish in log order, so the
        // checkpoint never passes an event still being handled.
        let mut in_hand = futures::stream::FuturesOrdered::new();
        let mut ended = false;
        let stopping = shutdown.clone();
        loop {
            tokio::select! {
                next = sub.next(), if !ended && in_hand.len() < limit => {
                    let Some(event) = next else {
                        ended = true;
                        continue;
                    };
                    let event = event?;
                    let mut stop = stopping.clone();
                    let this = &self;
                    in_hand.push_back(async move {
                        let done = this.react_until_done(&event, &mut stop, || async {}).await;
                        (event.position, done)
                    });
                }
                Some((position, done)) = in_hand.next(), if !in_hand.is_empty() => {
                    if !done? {
                        return Ok(());
                    }
                    checkpoint.set(position)?;
                    metrics::gauge!("iga_reactor_position", "reactor" => name).set(position as f64);
                }
                _ = shutdown.wait_for(|s| *s) => return Ok(()),
            }
            if ended && in_hand.is_empty() {
                return Ok(());
            }
        }
    }
}
