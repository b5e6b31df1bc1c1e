//! [`crate::WorkSharing`] on JetStream, through durable consumers, so that
//! three projection-services do each reactor's work once between them, and a
//! killed one's work is taken over by the others.
//!
//! - [`JetStreamFeed`]: the log's events, delivered through a durable consumer
//!   named after the reactor. `Sharing::Spread` hands each event to any
//!   member (fulfilment: its action reads current state, so order does not
//!   matter); `Sharing::Ordered` keeps one event in flight at a time, so the
//!   members take turns in log order (publishing, which promises order per
//!   aggregate).
//! - [`JetStreamDueQueue`]: a work-queue stream `<stream>_DUE` of due timers;
//!   the stream's duplicate window keeps one copy of each offered id.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, consumer::AckPolicy, AckKind};
use futures::StreamExt;

use super::{decode, JetStreamEventStore};
use crate::work::{Acknowledge, Delivery, DueItem, DueQueue, SharedFeed, Sharing, WorkSharing};
use crate::{EventLogError, Position, RecordedEvent, Result};

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

/// A JetStream message as something to acknowledge.
struct Message(jetstream::Message);

#[async_trait::async_trait]
impl Acknowledge for Message {
    async fn ack(&self) -> Result<()> {
        self.0
            .double_ack()
            .await
            .map_err(|e| unavailable("cannot acknowledge", e))
    }

    async fn in_progress(&self) {
        let _ = self.0.ack_with(AckKind::Progress).await;
    }
}

#[async_trait::async_trait]
impl WorkSharing for JetStreamEventStore {
    async fn join_feed(
        &self,
        name: &str,
        sharing: Sharing,
        start_after: Position,
    ) -> Result<Box<dyn SharedFeed>> {
        Ok(Box::new(
            JetStreamFeed::join(self, name, sharing, start_after).await?,
        ))
    }

    async fn join_due_queue(&self, name: &str) -> Result<Box<dyn DueQueue>> {
        Ok(Box::new(JetStreamDueQueue::join(self, name).await?))
    }
}

/// A reactor's share of the log's events.
pub struct JetStreamFeed {
    puller: Puller,
}

impl JetStreamFeed {
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
        Ok(JetStreamFeed {
            puller: Puller {
                consumer,
                messages: None,
                describe: format!("{durable} of stream {}", config.stream),
            },
        })
    }
}

#[async_trait::async_trait]
impl SharedFeed for JetStreamFeed {
    /// Rides out server restarts and leader changes (pulls again).
    async fn next(&mut self) -> Result<Delivery> {
        let message = self.puller.next().await;
        let info = message
            .info()
            .map_err(|e| EventLogError::Corrupt(format!("delivery: {e}")))?;
        let (position, attempt) = (info.stream_sequence, info.delivered);
        let envelope = decode(position, &message.payload)?;
        Ok(Delivery {
            event: RecordedEvent { position, envelope },
            attempt,
            handle: Box::new(Message(message)),
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
pub struct JetStreamDueQueue {
    js: jetstream::Context,
    subject: String,
    puller: Puller,
    duplicate_window: Duration,
}

impl JetStreamDueQueue {
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
        Ok(JetStreamDueQueue {
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
}

#[async_trait::async_trait]
impl DueQueue for JetStreamDueQueue {
    fn duplicate_window(&self) -> Duration {
        self.duplicate_window
    }

    async fn offer(&self, id: &str, payload: Vec<u8>) -> Result<()> {
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

    async fn next(&mut self) -> DueItem {
        let message = self.puller.next().await;
        DueItem {
            payload: message.payload.to_vec(),
            handle: Box::new(Message(message)),
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
