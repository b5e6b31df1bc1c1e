//! The event log on NATS JetStream: for deployments that outgrow one machine.
//!
//! **Layout.** One JetStream stream (default `IGA_EVENTS`) holds every event,
//! one message per event, on subject `<prefix>.<stream id>` (default prefix
//! `iga.log`), so each aggregate stream is one subject. The message body is
//! the protobuf [`EventEnvelope`] with `stream_id` and `stream_version` filled
//! in; headers repeat what a consumer filters on without decoding:
//!
//! | header | value |
//! | --- | --- |
//! | `Nats-Msg-Id` | the event id (JetStream dedup, and downstream dedup) |
//! | `Iga-Stream` | the aggregate stream id |
//! | `Iga-Stream-Version` | the event's version in that stream |
//! | `Iga-Event-Type` | the event type |
//!
//! **Positions** are stream sequences. **Concurrency**: an append names the
//! sequence of the aggregate's last event in `Nats-Expected-Last-Subject-Sequence`
//! (0 for a new stream), so the server refuses it if anything was appended to
//! that subject since. **Atomicity**: appends of several events are JetStream
//! atomic batches (server 2.12+, `allow_atomic`), stored contiguously or not at
//! all; so is an append to several streams (`append_streams`), one batch
//! across their subjects, where the first message of each stream carries its
//! expected sequence and a stream's later parts follow inside the batch.
//! **Group commit**: the stream stores atomic batches one at a time, at a
//! fixed price each (nats-server stages an R1 file stream's batch in a file
//! store of its own, a few milliseconds of file creation and `fsync`), so a
//! process keeps one batch in flight (`batches_in_flight`) and sends the
//! appends that arrived meanwhile together, as the next batch: appends to
//! disjoint streams only, each stream's first message with its own expected
//! sequence. If the server refuses such a batch (one append's version is
//! stale, or its events are stored already), nothing of it is stored, and
//! each append is sent again on its own and answered on its own.
//! **Idempotency** has two layers: JetStream drops a message whose
//! `Nats-Msg-Id` it saw within the duplicate window, and when an append is
//! refused (stale expected version, or duplicate ids) the aggregate's own
//! events are searched for the append's ids, so a retry answers its original
//! result however long after it comes. A retry with `ExpectedVersion::Any` of
//! events appended to *another* stream is recognised within the duplicate
//! window only.
//!
//! **Reads** use JetStream direct gets (`allow_direct`), batched; the tail of
//! an aggregate is read from the stream leader, so a stale replica can make a
//! command re-decide (a conflict), never append on a wrong version.
//! **Subscriptions** read the log in batches from their position (the same
//! direct gets), and once caught up wait for the stream to announce stored
//! events: it republishes each one's headers to `<prefix>-stored.<stream id>`
//! after storing it. No server-side consumer is kept, so nothing is lost or
//! left behind when a server dies, and the switch from backlog to live has no
//! gap or duplicate by construction (positions only move forward).
//!
//! The code: this module holds the configuration, the connection and the
//! [`EventStore`] impl; `append` the publishing side (expected sequences,
//! atomic batches, retries recognised by id); `read` direct gets and
//! subscriptions; [`shared`] the [`crate::WorkSharing`] this log offers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt;
use prost::Message;

mod append;
mod read;
pub mod shared;

use append::{Submission, Tail};
use read::{stored_prefix, MAX_TAILS, READ_BATCH};

use crate::{
    AppendResult, EventEnvelope, EventLogError, EventStore, ExpectedVersion, Limits, Position,
    RecordedEvent, Result, StreamAppend, Subscription,
};

/// Where and how the JetStream log lives. Parsed from an event-log URL such as
/// `nats://host1:4222,host2:4222?stream=IGA_EVENTS&replicas=3`.
#[derive(Debug, Clone)]
pub struct JetStreamConfig {
    /// Server URLs, comma separated; credentials may be in the URL.
    pub servers: String,
    /// The JetStream stream holding the log.
    pub stream: String,
    /// Subject prefix; aggregate `x` is subject `<prefix>.x`.
    pub subject_prefix: String,
    /// Replicas of the stream when this process creates it (1, 3 or 5).
    pub replicas: usize,
    /// JetStream's duplicate window for `Nats-Msg-Id`.
    pub duplicate_window: Duration,
    /// How long connecting may take before failing.
    pub timeout: Duration,
    /// How long one request (an append, a read) waits for its answer. Short,
    /// so that a request sent to a server that just died fails fast and is
    /// retried (reads here, appends by the caller with the same event ids)
    /// once the cluster has a new leader.
    pub request_timeout: Duration,
    /// Atomic batches this process keeps in flight at once (1 to 16,
    /// default 1). The stream stores batches one after the other, so more
    /// only queue at the server, while fewer make bigger groups (see the
    /// module docs; 2 and 4 measured slower than 1 in BENCHMARKS.md).
    pub batches_in_flight: usize,
}

impl JetStreamConfig {
    /// Defaults for `servers`: stream `IGA_EVENTS`, prefix `iga.log`, R1,
    /// a two-minute duplicate window, 15 s to connect, 3 s per request.
    pub fn new(servers: impl Into<String>) -> Self {
        JetStreamConfig {
            servers: servers.into(),
            stream: "IGA_EVENTS".into(),
            subject_prefix: "iga.log".into(),
            replicas: 1,
            duplicate_window: Duration::from_secs(120),
            timeout: Duration::from_secs(15),
            request_timeout: Duration::from_secs(3),
            batches_in_flight: 1,
        }
    }

    /// Parses `nats://servers[?stream=..&prefix=..&replicas=..&duplicate_window_secs=..&timeout_secs=..&request_timeout_ms=..&batches_in_flight=..]`.
    pub fn from_url(url: &str) -> Result<Self> {
        let bad = |why: String| EventLogError::Unavailable(format!("event log URL {url:?}: {why}"));
        let rest = url
            .strip_prefix("nats://")
            .ok_or_else(|| bad("must start with nats://".into()))?;
        let (servers, query) = match rest.split_once('?') {
            Some((s, q)) => (s, q),
            None => (rest, ""),
        };
        if servers.is_empty() {
            return Err(bad("names no server".into()));
        }
        let servers = servers
            .split(',')
            .map(|s| format!("nats://{s}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut config = JetStreamConfig::new(servers);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| bad(format!("option {pair:?} has no value")))?;
            let number = || {
                value
                    .parse::<u64>()
                    .map_err(|_| bad(format!("option {key} must be a number, not {value:?}")))
            };
            match key {
                "stream" => config.stream = value.to_string(),
                "prefix" => config.subject_prefix = value.to_string(),
                "replicas" => config.replicas = number()? as usize,
                "duplicate_window_secs" => config.duplicate_window = Duration::from_secs(number()?),
                "timeout_secs" => config.timeout = Duration::from_secs(number()?),
                "request_timeout_ms" => config.request_timeout = Duration::from_millis(number()?),
                "batches_in_flight" => config.batches_in_flight = number()? as usize,
                other => {
                    return Err(bad(format!(
                        "unknown option {other:?} (known: stream, prefix, replicas, duplicate_window_secs, timeout_secs, request_timeout_ms, batches_in_flight)"
                    )))
                }
            }
        }
        if !(1..=16).contains(&config.batches_in_flight) {
            return Err(bad(format!(
                "batches_in_flight must be 1 to 16, not {}",
                config.batches_in_flight
            )));
        }
        if !matches!(config.replicas, 1 | 3 | 5) {
            return Err(bad(format!(
                "replicas must be 1, 3 or 5, not {}",
                config.replicas
            )));
        }
        Ok(config)
    }

    /// A NATS connection to the servers, made within the timeout, with the
    /// configured request timeout.
    pub async fn connect_client(&self) -> Result<async_nats::Client> {
        let unavailable = |what: &str, e: &dyn std::fmt::Display| {
            EventLogError::Unavailable(format!("{what}: {e}"))
        };
        let addresses = self
            .servers
            .split(',')
            .map(|s| s.trim().parse::<async_nats::ServerAddr>())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| unavailable("invalid server address", &e))?;
        tokio::time::timeout(
            self.timeout,
            async_nats::ConnectOptions::new()
                .connection_timeout(self.timeout)
                .request_timeout(Some(self.request_timeout))
                .connect(addresses.as_slice()),
        )
        .await
        .map_err(|e| unavailable("cannot connect", &e))?
        .map_err(|e| unavailable("cannot connect", &e))
    }

    /// The servers without credentials, and the stream: for logs and errors.
    pub fn describe(&self) -> String {
        let servers: Vec<String> = self
            .servers
            .split(',')
            .map(|s| match s.rsplit_once('@') {
                Some((_, host)) => format!("nats://{host}"),
                None => s.to_string(),
            })
            .collect();
        format!("{} (stream {})", servers.join(","), self.stream)
    }
}

/// The JetStream-backed [`EventStore`].
#[derive(Clone)]
pub struct JetStreamEventStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: async_nats::Client,
    stream: jetstream::stream::Stream,
    config: JetStreamConfig,
    limits: Limits,
    /// The last (version, sequence) seen per aggregate, so an append at the
    /// version a command just read needs no lookup first. Only ever a hint:
    /// the server checks the sequence.
    tails: Mutex<HashMap<String, Tail>>,
    /// Routes the answers of batched reads, which come as many messages.
    replies: ReplyRouter,
    /// Where appends that need an atomic batch queue to be published
    /// together (see `append::group_commits`).
    grouper: tokio::sync::mpsc::UnboundedSender<Submission>,
}

/// One wildcard inbox subscription for every batched read, its answers routed
/// by the last token of their subject. A subscription per read would cost
/// the server a subscribe and an unsubscribe (and a cache invalidation) each.
struct ReplyRouter {
    prefix: String,
    routes: Arc<Mutex<HashMap<u64, tokio::sync::mpsc::UnboundedSender<async_nats::Message>>>>,
    next: std::sync::atomic::AtomicU64,
    _task: tokio::task::JoinHandle<()>,
}

impl ReplyRouter {
    async fn start(
        client: &async_nats::Client,
    ) -> std::result::Result<Self, async_nats::SubscribeError> {
        let prefix = client.new_inbox();
        let mut subscription = client.subscribe(format!("{prefix}.*")).await?;
        let routes: Arc<Mutex<HashMap<u64, tokio::sync::mpsc::UnboundedSender<_>>>> =
            Arc::default();
        let task = {
            let routes = routes.clone();
            tokio::spawn(async move {
                while let Some(m) = subscription.next().await {
                    let token = m.subject.rsplit('.').next().and_then(|t| t.parse().ok());
                    if let Some(tx) = token.and_then(|t| routes.lock().unwrap().get(&t).cloned()) {
                        let _ = tx.send(m);
                    }
                }
            })
        };
        Ok(ReplyRouter {
            prefix,
            routes,
            next: std::sync::atomic::AtomicU64::new(1),
            _task: task,
        })
    }

    /// A reply subject and the answers sent to it, until the route is dropped.
    fn route(&self) -> Route<'_> {
        let token = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.routes.lock().unwrap().insert(token, tx);
        Route {
            router: self,
            token,
            subject: format!("{}.{token}", self.prefix),
            answers: rx,
        }
    }
}

impl Drop for ReplyRouter {
    fn drop(&mut self) {
        self._task.abort();
    }
}

struct Route<'a> {
    router: &'a ReplyRouter,
    token: u64,
    subject: String,
    answers: tokio::sync::mpsc::UnboundedReceiver<async_nats::Message>,
}

impl Drop for Route<'_> {
    fn drop(&mut self) {
        self.router.routes.lock().unwrap().remove(&self.token);
    }
}
impl JetStreamEventStore {
    /// Connects and makes sure the stream exists with what the log needs
    /// (atomic batches, direct gets, file storage). Fails within the
    /// configured timeout if the servers cannot be reached.
    pub async fn connect(config: JetStreamConfig, limits: Limits) -> Result<Self> {
        // The caller names the log in front of these.
        let unavailable = |what: &str, e: &dyn std::fmt::Display| {
            EventLogError::Unavailable(format!("{what}: {e}"))
        };
        let client = config.connect_client().await?;
        let js = jetstream::new(client.clone());
        let wanted = jetstream::stream::Config {
            name: config.stream.clone(),
            subjects: vec![format!("{}.>", config.subject_prefix)],
            storage: jetstream::stream::StorageType::File,
            num_replicas: config.replicas,
            duplicate_window: config.duplicate_window,
            allow_direct: true,
            allow_atomic_publish: true,
            // Stored events are announced (headers only) on a subject outside
            // the stream, so subscribers know when to read: see `subscribe`.
            republish: Some(jetstream::stream::Republish {
                source: format!("{}.>", config.subject_prefix),
                destination: format!("{}.>", stored_prefix(&config.subject_prefix)),
                headers_only: true,
            }),
            max_message_size: (limits.max_event_bytes + 4096) as i32,
            ..Default::default()
        };
        // A cluster that has just started may still be electing its leaders:
        // keep asking until the timeout.
        let deadline = tokio::time::Instant::now() + config.timeout;
        let mut stream = loop {
            // Requests sent before the cluster has a meta leader go unanswered;
            // ask again rather than wait out the whole timeout on one.
            let attempt_ends = deadline.min(tokio::time::Instant::now() + Duration::from_secs(5));
            let attempt =
                tokio::time::timeout_at(attempt_ends, js.get_or_create_stream(wanted.clone()))
                    .await;
            match attempt {
                Ok(Ok(stream)) => break stream,
                Ok(Err(e))
                    if tokio::time::Instant::now() + Duration::from_millis(200) < deadline =>
                {
                    tracing::debug!(error = %e, "JetStream not ready; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Ok(Err(e)) => return Err(unavailable("cannot open the stream", &e)),
                Err(_) if attempt_ends < deadline => {
                    tracing::debug!("JetStream did not answer yet; retrying");
                }
                Err(e) => return Err(unavailable("JetStream did not answer", &e)),
            }
        };
        let info = stream
            .info()
            .await
            .map_err(|e| unavailable("cannot read the stream", &e))?;
        if !info.config.allow_atomic_publish
            || !info.config.allow_direct
            || info.config.republish != wanted.republish
        {
            return Err(EventLogError::Unavailable(format!(
                "stream {} exists without what the log needs: allow_atomic, allow_direct, \
                 and republish {} to {} (headers only); remove or edit it",
                config.stream,
                wanted
                    .republish
                    .as_ref()
                    .map(|r| r.source.as_str())
                    .unwrap_or_default(),
                wanted
                    .republish
                    .as_ref()
                    .map(|r| r.destination.as_str())
                    .unwrap_or_default(),
            )));
        }
        let replies = ReplyRouter::start(&client)
            .await
            .map_err(|e| unavailable("cannot subscribe for reads", &e))?;
        Ok(JetStreamEventStore {
            // The group committer holds the log weakly: it ends when the
            // last handle is dropped (its queue closes).
            inner: Arc::new_cyclic(|inner| {
                let (grouper, queue) = tokio::sync::mpsc::unbounded_channel();
                tokio::spawn(append::group_commits(
                    inner.clone(),
                    queue,
                    config.batches_in_flight,
                ));
                Inner {
                    replies,
                    client,
                    stream,
                    config,
                    limits,
                    tails: Mutex::new(HashMap::new()),
                    grouper,
                }
            }),
        })
    }

    /// The subject of aggregate stream `stream`.
    pub fn subject(&self, stream: &str) -> String {
        format!("{}.{stream}", self.inner.config.subject_prefix)
    }

    /// The underlying NATS connection (for publishers sharing it).
    pub fn client(&self) -> &async_nats::Client {
        &self.inner.client
    }

    /// What the log was opened with.
    pub fn config(&self) -> &JetStreamConfig {
        &self.inner.config
    }

    fn unavailable(&self, what: &str, e: impl std::fmt::Display) -> EventLogError {
        EventLogError::Unavailable(format!("{}: {what}: {e}", self.describe()))
    }
}

pub(crate) fn decode(position: u64, bytes: &[u8]) -> Result<EventEnvelope> {
    EventEnvelope::decode(bytes)
        .map_err(|e| EventLogError::Corrupt(format!("event at sequence {position}: {e}")))
}

#[async_trait::async_trait]
impl EventStore for JetStreamEventStore {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<EventEnvelope>,
    ) -> Result<AppendResult> {
        self.append_to_stream(stream, expected, events).await
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>> {
        crate::validate_stream_id(stream)?;
        if max == 0 {
            return Ok(Vec::new());
        }
        self.read_aggregate(stream, from_version.max(1), max).await
    }

    async fn read_all(&self, after: Position, max: usize) -> Result<Vec<RecordedEvent>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        self.direct_batch(after + 1, "", max.min(READ_BATCH)).await
    }

    async fn subscribe(&self, after: Position) -> Result<Subscription> {
        self.subscribe_after(after).await
    }

    async fn head(&self) -> Result<Position> {
        metrics::counter!("iga_eventlog_read_requests_total", "kind" => "stream_info").increment(1);
        let info = self
            .inner
            .stream
            .get_info()
            .await
            .map_err(|e| self.unavailable("cannot read the stream", e))?;
        Ok(info.state.last_sequence)
    }

    fn describe(&self) -> String {
        self.inner.config.describe()
    }

    fn appends_streams_atomically(&self) -> bool {
        true
    }

    /// One atomic batch across the parts' subjects (see `append`).
    async fn append_streams(&self, parts: Vec<StreamAppend>) -> Result<Vec<AppendResult>> {
        self.append_batch(parts).await
    }
}

#[cfg(test)]
mod tests {
    use super::JetStreamConfig;

    #[test]
    fn batches_in_flight_defaults_to_one_and_takes_one_to_sixteen() {
        let url = |q: &str| JetStreamConfig::from_url(&format!("nats://a:4222,b:4222{q}"));
        assert_eq!(url("").unwrap().batches_in_flight, 1);
        assert_eq!(url("?batches_in_flight=2").unwrap().batches_in_flight, 2);
        assert_eq!(
            url("?replicas=3&batches_in_flight=16")
                .unwrap()
                .batches_in_flight,
            16
        );
        for bad in ["0", "17", "two", ""] {
            let err = url(&format!("?batches_in_flight={bad}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("batches_in_flight"), "{bad}: {err}");
        }
        let err = url("?batches=2").unwrap_err().to_string();
        assert!(
            err.contains("batches_in_flight"),
            "the known options are listed: {err}"
        );
    }
}
