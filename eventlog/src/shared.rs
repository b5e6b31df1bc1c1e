//! Work shared between service instances through JetStream durable consumers,
//! so that three projection-services do each reactor's work once between
//! them, and a killed one's work is taken over by the others.
//!
//! - [`SharedFeed`]: the log's events, delivered through a durable consumer
//!   named after the reactor. [`Sharing::Spread`] hands each event to any
//!   member (fulfilment: its action reads current state, so order does not
//!   matter); [`Sharing::Ordered`] keeps one event in flight at a time, so the
//!   members take turns in log order (publishing, which promises order per
//!   aggregate). An event is acknowledged once handled; one a member took and
//!   never acknowledged (it died) goes to another member after the ack wait.
//! - [`DueQueue`]: a work-queue stream of due timers. Every member offers the
//!   timers it sees due, under the timer's own id, so the stream's duplicate
//!   window keeps one copy; one member fires it.
//!
//! Delivery is at least once (a member may die after acting, before its
//! acknowledgement lands), so the actions stay idempotent; the shared
//! consumer only keeps the members from all doing the same work.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, consumer::AckPolicy, AckKind};
use futures::StreamExt;

use crate::jetstream::{decode, JetStreamEventStore};
use crate::{EventLogError, Position, RecordedEvent, Result};

/// How a durable consumer's events are shared by its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// Any member takes any event, many in flight.
    Spread,
    /// One event in flight at a time, in log order, whichever member takes it.
    Ordered,
}

/// How long a member has to acknowledge an event before another gets it.
/// Handlers that take longer report progress, which restarts the clock.
pub const ACK_WAIT: Duration = Duration::from_secs(10);

/// Events in flight per member of a [`Sharing::Spread`] consumer.
const SPREAD_IN_FLIGHT: i64 = 256;

fn unavailable(what: &str, e: impl std::fmt::Display) -> EventLogError {
    EventLogError::Unavailable(format!("{what}: {e}"))
}

/// The durable consumer name of work `name` (letters, digits, `_`).
pub fn consumer_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("iga_{clean}")
}

/// One event handed to this member; acknowledge it once handled.
pub struct Delivery {
    pub event: RecordedEvent,
    /// How many times it was delivered (more than 1: another member, or this
    /// one before a restart, took it and did not acknowledge it).
    pub attempt: i64,
    message: jetstream::Message,
}

impl Delivery {
    /// Marks the event handled; waits until the server has recorded it.
    pub async fn ack(&self) -> Result<()> {
        self.message
            .double_ack()
            .await
            .map_err(|e| unavailable("cannot acknowledge", e))
    }

    /// Tells the server the handler is still at work (restarts the ack wait).
    pub async fn in_progress(&self) {
        let _ = self.message.ack_with(AckKind::Progress).await;
    }
}

/// A reactor's share of the log's events.
pub struct SharedFeed {
    puller: Puller,
}

impl SharedFeed {
    /// Joins (creating if needed) the durable consumer of work `name` on the
    /// log's stream. A new consumer starts after `start_after`; an existing
    /// one goes on from where its members acknowledged.
    pub async fn join(
        log: &JetStreamEventStore,
        name: &str,
        sharing: Sharing,
        start_after: Position,
    ) -> Result<Self> {
        let js = jetstream::new(log.client().clone());
        let config = log.config();
        let stream = js
            .get_stream(&config.stream)
            .await
            .map_err(|e| unavailable("cannot open the stream", e))?;
        let durable = consumer_name(name);
        let wanted = pull::Config {
            durable_name: Some(durable.clone()),
            description: Some(format!("iga reactor {name}")),
            deliver_policy: if start_after == 0 {
                jetstream::consumer::DeliverPolicy::All
            } else {
                jetstream::consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: start_after + 1,
                }
            },
            filter_subject: format!("{}.>", config.subject_prefix),
            ack_policy: AckPolicy::Explicit,
            ack_wait: ACK_WAIT,
            max_ack_pending: match sharing {
                Sharing::Spread => SPREAD_IN_FLIGHT,
                Sharing::Ordered => 1,
            },
            num_replicas: config.replicas,
            ..Default::default()
        };
        let consumer = retry_until(config.timeout, || {
            stream.get_or_create_consumer(&durable, wanted.clone())
        })
        .await
        .map_err(|e| unavailable(&format!("cannot join consumer {durable}"), e))?;
        Ok(SharedFeed {
            puller: Puller {
                consumer,
                messages: None,
                describe: format!("{durable} of stream {}", config.stream),
            },
        })
    }

    /// The next event for this member. Waits while there is none; rides out
    /// server restarts and leader changes (pulls again), so it only ends in an
    /// error for an event that cannot be decoded.
    pub async fn next(&mut self) -> Result<Delivery> {
        let message = self.puller.next().await;
        let info = message
            .info()
            .map_err(|e| EventLogError::Corrupt(format!("delivery: {e}")))?;
        let (position, attempt) = (info.stream_sequence, info.delivered);
        let envelope = decode(position, &message.payload)?;
        Ok(Delivery {
            event: RecordedEvent { position, envelope },
            attempt,
            message,
        })
    }
}

/// Pulls from a durable consumer, pulling again after any failure.
struct Puller {
    consumer: jetstream::consumer::PullConsumer,
    messages: Option<pull::Stream>,
    /// Names the consumer in warnings.
    describe: String,
}

impl Puller {
    async fn next(&mut self) -> jetstream::Message {
        let mut delay = Duration::from_millis(100);
        loop {
            if self.messages.is_none() {
                match self
                    .consumer
                    .stream()
                    .expires(Duration::from_secs(5))
                    .heartbeat(Duration::from_secs(2))
                    .messages()
                    .await
                {
                    Ok(m) => self.messages = Some(m),
                    Err(e) => {
                        tracing::warn!(consumer = %self.describe, error = %e, "cannot pull; retrying");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(2));
                        continue;
                    }
                }
            }
            let messages = self.messages.as_mut().expect("set above");
            match messages.next().await {
                Some(Ok(message)) => return message,
                Some(Err(e)) => {
                    tracing::warn!(consumer = %self.describe, error = %e, "pull failed; pulling again");
                    self.messages = None;
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                None => self.messages = None,
            }
        }
    }
}

/// A work queue of due timers shared by the members.
pub struct DueQueue {
    js: jetstream::Context,
    subject: String,
    puller: Puller,
    /// How long the queue remembers an offered id.
    pub duplicate_window: Duration,
}

/// One due item handed to this member.
pub struct DueItem {
    pub payload: Vec<u8>,
    message: jetstream::Message,
}

impl DueItem {
    /// Marks the item done; waits until the server has recorded it.
    pub async fn ack(&self) -> Result<()> {
        self.message
            .double_ack()
            .await
            .map_err(|e| unavailable("cannot acknowledge", e))
    }
}

impl DueQueue {
    /// Opens (creating if needed) the queue `<log stream>_DUE` on subject
    /// `<prefix>-due.<name>` and joins its durable consumer.
    pub async fn join(log: &JetStreamEventStore, name: &str) -> Result<Self> {
        let js = jetstream::new(log.client().clone());
        let config = log.config();
        let stream_name = format!("{}_DUE", config.stream);
        let subject = format!("{}-due.{name}", config.subject_prefix);
        let wanted = jetstream::stream::Config {
            name: stream_name.clone(),
            subjects: vec![format!("{}-due.>", config.subject_prefix)],
            retention: jetstream::stream::RetentionPolicy::WorkQueue,
            storage: jetstream::stream::StorageType::File,
            num_replicas: config.replicas,
            duplicate_window: config.duplicate_window,
            ..Default::default()
        };
        let stream = retry_until(config.timeout, || js.get_or_create_stream(wanted.clone()))
            .await
            .map_err(|e| unavailable(&format!("cannot open stream {stream_name}"), e))?;
        let durable = consumer_name(name);
        let consumer_config = pull::Config {
            durable_name: Some(durable.clone()),
            filter_subject: subject.clone(),
            ack_policy: AckPolicy::Explicit,
            ack_wait: ACK_WAIT,
            max_ack_pending: SPREAD_IN_FLIGHT,
            num_replicas: config.replicas,
            ..Default::default()
        };
        let consumer = retry_until(config.timeout, || {
            stream.get_or_create_consumer(&durable, consumer_config.clone())
        })
        .await
        .map_err(|e| unavailable(&format!("cannot join consumer {durable}"), e))?;
        Ok(DueQueue {
            js,
            puller: Puller {
                consumer,
                messages: None,
                describe: format!("{durable} of stream {stream_name}"),
            },
            subject,
            duplicate_window: config.duplicate_window,
        })
    }

    /// Offers an item under its own `id`: offers of the same id within the
    /// duplicate window are dropped by the server.
    pub async fn offer(&self, id: &str, payload: Vec<u8>) -> Result<()> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", id);
        self.js
            .publish_with_headers(self.subject.clone(), headers, payload.into())
            .await
            .map_err(|e| unavailable("cannot offer", e))?
            .await
            .map_err(|e| unavailable("cannot offer", e))?;
        Ok(())
    }

    /// The next item for this member; waits while there is none.
    pub async fn next(&mut self) -> DueItem {
        let message = self.puller.next().await;
        DueItem {
            payload: message.payload.to_vec(),
            message,
        }
    }
}

/// Retries `attempt` (a JetStream API call) until it succeeds or `timeout`
/// passes: a cluster that has just started may still be electing leaders.
async fn retry_until<T, E, F, Fut>(timeout: Duration, mut attempt: F) -> Result<T, String>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let ends = deadline.min(tokio::time::Instant::now() + Duration::from_secs(5));
        match tokio::time::timeout_at(ends, attempt()).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) if tokio::time::Instant::now() + Duration::from_millis(200) >= deadline => {
                return Err(e.to_string())
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "JetStream not ready; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(_) if ends >= deadline => return Err("no answer".into()),
            Err(_) => {}
        }
    }
}
