//! [`ReactorRunner`]: feeds a [`Reactor`] every event after its checkpoint,
//! in log order, and stores the checkpoint (in the read models' database,
//! through projection-service's typed [`ReactorCheckpoint`]) once events are
//! handled: at most [`CHECKPOINT_EVERY`] after an event, and on every stop.
//! Delivery is therefore at least once: after a crash the events of that
//! last moment may be seen again, so a reactor's actions must be idempotent;
//! the commands it issues are, so the effect is exactly once.
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
use iga_eventlog::{EventStore, Position, RecordedEvent, WorkSharing};
use iga_schemas::DomainEvent;
use projection_service::{ReactorCheckpoint, ReadModels};
use tokio::sync::watch;

use crate::{ReactorError, Result};

/// How long a handled event's position may wait before it is written as the
/// reactor's checkpoint. Writing it after every event cost 6 % of the
/// server's CPU at 16 clients (a journal write each, for each reactor);
/// a checkpoint that lags only means the events of the last 100 ms are seen
/// again after a crash, which at-least-once delivery allows.
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// The reactor's checkpoint, written at most every [`CHECKPOINT_EVERY`]
/// (and by [`LaggingCheckpoint::save`] before the runner returns).
struct LaggingCheckpoint {
    stored: ReactorCheckpoint,
    unsaved: Option<Position>,
    due: tokio::time::Instant,
}

impl LaggingCheckpoint {
    fn new(stored: ReactorCheckpoint) -> Self {
        LaggingCheckpoint {
            stored,
            unsaved: None,
            due: tokio::time::Instant::now(),
        }
    }

    /// Every event up to `position` is handled.
    fn handled(&mut self, position: Position) {
        if self.unsaved.is_none() {
            self.due = tokio::time::Instant::now() + CHECKPOINT_EVERY;
        }
        self.unsaved = Some(position);
    }

    /// Whether a handled position waits to be written.
    fn waiting(&self) -> bool {
        self.unsaved.is_some()
    }

    /// Resolves when the waiting position is due to be written.
    async fn due(&self) {
        tokio::time::sleep_until(self.due).await
    }

    fn save(&mut self) -> Result<()> {
        if let Some(position) = self.unsaved.take() {
            self.stored.set(position)?;
        }
        Ok(())
    }
}

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
    /// Every exit, an error's too, saves the checkpoint of what was handled.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<()> {
        let stored = self.models.reactor_checkpoint(self.reactor.name())?;
        let start = stored.get()?;
        let mut checkpoint = LaggingCheckpoint::new(stored);
        let result = match self.shared.clone() {
            Some((log, sharing)) => {
                self.follow_shared(log, sharing, start, &mut checkpoint, &mut shutdown)
                    .await
            }
            None => self.follow_alone(start, &mut checkpoint, shutdown).await,
        };
        checkpoint.save()?;
        result
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
    async fn follow_shared(
        &self,
        log: Arc<dyn WorkSharing>,
        sharing: Sharing,
        start: Position,
        checkpoint: &mut LaggingCheckpoint,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<()> {
        let name = self.reactor.name();
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
                _ = checkpoint.due(), if checkpoint.waiting() => {
                    checkpoint.save()?;
                    continue;
                }
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
                .react_until_done(&delivery.event, shutdown, || delivery.in_progress())
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
                checkpoint.handled(furthest);
                metrics::gauge!("iga_reactor_position", "reactor" => name).set(furthest as f64);
            }
        }
    }

    async fn follow_alone(
        &self,
        start: Position,
        checkpoint: &mut LaggingCheckpoint,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<()> {
        let name = self.reactor.name();
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
                    let this = self;
                    in_hand.push_back(async move {
                        let done = this.react_until_done(&event, &mut stop, || async {}).await;
                        (event.position, done)
                    });
                }
                Some((position, done)) = in_hand.next(), if !in_hand.is_empty() => {
                    if !done? {
                        return Ok(());
                    }
                    checkpoint.handled(position);
                    metrics::gauge!("iga_reactor_position", "reactor" => name).set(position as f64);
                }
                _ = checkpoint.due(), if checkpoint.waiting() => checkpoint.save()?,
                _ = shutdown.wait_for(|s| *s) => return Ok(()),
            }
            if ended && in_hand.is_empty() {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iga_eventlog::{contract, ExpectedVersion, Limits};
    use std::sync::Mutex;
    use tokio::sync::mpsc;

    /// Records the positions it is given and reports each one.
    struct Recorder {
        seen: Mutex<Vec<Position>>,
        handled: mpsc::UnboundedSender<Position>,
    }

    #[async_trait::async_trait]
    impl Reactor for Recorder {
        fn name(&self) -> &'static str {
            "recorder"
        }
        async fn react(&self, event: &RecordedEvent, _: &DomainEvent) -> Result<(), String> {
            self.seen.lock().unwrap().push(event.position);
            let _ = self.handled.send(event.position);
            Ok(())
        }
    }

    async fn append_users(log: &dyn EventStore, n: usize) -> Position {
        let mut head = 0;
        for _ in 0..n {
            let stream = format!("user-{}", uuid_like());
            let event = contract::event("iga.v1.UserCreated", 0);
            head = log
                .append(&stream, ExpectedVersion::NoStream, vec![event])
                .await
                .unwrap()
                .position;
        }
        head
    }

    fn uuid_like() -> String {
        contract::event("x", 0).event_id.replace('-', "")
    }

    fn start(
        models: &Arc<ReadModels>,
        log: &Arc<dyn EventStore>,
    ) -> (
        Arc<Recorder>,
        mpsc::UnboundedReceiver<Position>,
        watch::Sender<bool>,
        tokio::task::JoinHandle<Result<()>>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        let reactor = Arc::new(Recorder {
            seen: Mutex::new(Vec::new()),
            handled: tx,
        });
        let (stop, stopped) = watch::channel(false);
        let runner = ReactorRunner::new(models.clone(), log.clone(), reactor.clone());
        (reactor, rx, stop, tokio::spawn(runner.run(stopped)))
    }

    async fn handled_up_to(rx: &mut mpsc::UnboundedReceiver<Position>, head: Position) {
        while rx.recv().await.expect("reactor running") < head {}
    }

    #[tokio::test]
    async fn a_lagging_checkpoint_is_written_once_events_stop_coming_and_on_stop() {
        let log = iga_eventlog::temporary_log(Limits::default()).unwrap();
        let models = Arc::new(ReadModels::open_temporary(Vec::new()).unwrap());
        let checkpoint = models.reactor_checkpoint("recorder").unwrap();

        // Given a reactor that handled three events and then saw no more,
        let (_, mut handled, stop, running) = start(&models, &log);
        let head = append_users(log.as_ref(), 3).await;
        handled_up_to(&mut handled, head).await;
        // then its checkpoint reaches them without a fourth event.
        let waited = tokio::time::timeout(Duration::from_secs(10), async {
            while checkpoint.get().unwrap() < head {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "checkpoint stayed at {}",
            checkpoint.get().unwrap()
        );

        // Given two more events, handled, and a stop right after them,
        let head = append_users(log.as_ref(), 2).await;
        handled_up_to(&mut handled, head).await;
        stop.send(true).unwrap();
        running.await.unwrap().unwrap();
        // then the stop wrote the checkpoint (not left for the timer),
        assert_eq!(checkpoint.get().unwrap(), head);

        // and a new runner starts after it: nothing is seen twice.
        let (reactor, mut handled, stop, running) = start(&models, &log);
        let next = append_users(log.as_ref(), 1).await;
        handled_up_to(&mut handled, next).await;
        stop.send(true).unwrap();
        running.await.unwrap().unwrap();
        assert_eq!(*reactor.seen.lock().unwrap(), vec![next]);
    }
}
