//! Reactors: consumers of the log that act (issue commands) rather than
//! build read models: fulfilment of approved requests, publishing.
//!
//! A [`Reactor`] sees every event after its checkpoint, in log order; the
//! [`ReactorRunner`] stores the checkpoint (in the read models' database,
//! tree `reactor.<name>`) after each event is handled. Delivery is therefore
//! at least once: after a crash the last events may be seen again, so a
//! reactor's actions must be idempotent; the commands it issues are, so the
//! effect is exactly once.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use iga_eventlog::{EventStore, Position, RecordedEvent};
use iga_schemas::DomainEvent;
use tokio::sync::watch;

use crate::{ProjectionError, ReadModels, Result};

#[async_trait::async_trait]
pub trait Reactor: Send + Sync + 'static {
    /// Stable name; names the checkpoint.
    fn name(&self) -> &'static str;

    /// Acts on one event. An error is retried (with backoff) until it
    /// succeeds: the event is not skipped.
    async fn react(
        &self,
        event: &RecordedEvent,
        decoded: &DomainEvent,
    ) -> std::result::Result<(), String>;
}

const CHECKPOINT: &[u8] = b"checkpoint";

pub struct ReactorRunner {
    models: Arc<ReadModels>,
    store: Arc<dyn EventStore>,
    reactor: Arc<dyn Reactor>,
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
        }
    }

    /// The position up to which the reactor has acted.
    pub fn checkpoint(models: &ReadModels, name: &str) -> Result<Position> {
        let tree = models.reactor_tree(name)?;
        Ok(match tree.get(CHECKPOINT)? {
            Some(v) => u64::from_be_bytes(
                v.as_ref()
                    .try_into()
                    .map_err(|_| ProjectionError::Corrupt("reactor checkpoint".into()))?,
            ),
            None => 0,
        })
    }

    /// Runs until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<()> {
        let name = self.reactor.name();
        let tree = self.models.reactor_tree(name)?;
        let start = Self::checkpoint(&self.models, name)?;
        tracing::info!(reactor = name, position = start, "reactor starting");
        let mut sub = self.store.subscribe(start).await?;
        loop {
            let next = tokio::select! {
                next = sub.next() => next,
                _ = shutdown.wait_for(|s| *s) => return Ok(()),
            };
            let Some(event) = next else { return Ok(()) };
            let event = event?;
            let decoded =
                event
                    .envelope
                    .decode_event()
                    .map_err(|source| ProjectionError::Decode {
                        position: event.position,
                        source,
                    })?;
            let mut delay = Duration::from_millis(50);
            loop {
                match self.reactor.react(&event, &decoded).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::warn!(reactor = name, position = event.position, error = %e, "reactor failed; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => {},
                            _ = shutdown.wait_for(|s| *s) => return Ok(()),
                        }
                        delay = (delay * 2).min(Duration::from_secs(5));
                    }
                }
            }
            tree.insert(CHECKPOINT, &event.position.to_be_bytes())?;
            metrics::gauge!("iga_reactor_position", "reactor" => name).set(event.position as f64);
        }
    }
}
