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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::header::HeaderMap;
use async_nats::jetstream;
use futures::{FutureExt, StreamExt};
use prost::Message;
use serde::Deserialize;

use crate::{
    validate_append, validate_append_streams, AppendResult, EventEnvelope, EventLogError,
    EventStore, ExpectedVersion, Limits, Position, RecordedEvent, Result, StreamAppend,
    Subscription,
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
        }
    }

    /// Parses `nats://servers[?stream=..&prefix=..&replicas=..&duplicate_window_secs=..&timeout_secs=..&request_timeout_ms=..]`.
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
                other => {
                    return Err(bad(format!(
                        "unknown option {other:?} (known: stream, prefix, replicas, duplicate_window_secs, timeout_secs, request_timeout_ms)"
                    )))
                }
            }
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
    /// Atomic batches this process may have in flight at once.
    batches: tokio::sync::Semaphore,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tail {
    version: u64,
    sequence: u64,
}

/// Events to publish after an aggregate's `tail`.
struct Outgoing<'a> {
    stream: &'a str,
    tail: Tail,
    events: &'a [EventEnvelope],
}

/// Counts an append of `n` events that took since `started`.
fn count_appended(n: u64, started: std::time::Instant) {
    metrics::counter!("iga_eventlog_appended_events_total").increment(n);
    metrics::histogram!("iga_eventlog_append_seconds").record(started.elapsed().as_secs_f64());
}

/// The subjects stored events are announced on: `<prefix>-stored.<stream id>`.
fn stored_prefix(prefix: &str) -> String {
    format!("{prefix}-stored")
}

/// How often a caught-up subscription looks for new events even without an
/// announcement (one lost while reconnecting).
const SUBSCRIPTION_POLL: Duration = Duration::from_secs(1);

/// Most aggregates whose tail is remembered; the map is cleared beyond it.
const MAX_TAILS: usize = 100_000;
/// Events asked for per direct-get batch.
const READ_BATCH: usize = 1000;

/// What the server answered to a publish.
enum Published {
    Stored {
        last_sequence: u64,
    },
    /// A single message whose id JetStream had already stored, at this sequence.
    Duplicate {
        sequence: u64,
    },
    /// The aggregate moved on; the server's last sequence for it, if it said.
    WrongLastSequence,
    /// An atomic batch held ids JetStream had already stored.
    DuplicateInBatch,
    /// The server had too many atomic batches in flight and stored nothing.
    Busy,
}

#[derive(Deserialize)]
struct PubAckReply {
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    duplicate: bool,
    #[serde(default)]
    error: Option<ApiError>,
}

#[derive(Deserialize, Debug)]
struct ApiError {
    #[serde(default)]
    err_code: u64,
    #[serde(default)]
    description: String,
}

/// JetStream's error codes for a failed expected-last-sequence check.
const ERR_WRONG_LAST_SEQUENCE: [u64; 2] = [10071, 10164];
/// "atomic publish batch contains duplicate message id".
const ERR_BATCH_DUPLICATE_ID: u64 = 10201;
/// "atomic publish too many inflight": the server's limit on batches being
/// staged at once (per stream); the batch was refused whole.
const ERR_BATCH_TOO_MANY_INFLIGHT: u64 = 10210;
/// Atomic batches one process sends at once, under the server's limit (50 per
/// stream by default) so that a few instances together rarely reach it.
const MAX_BATCHES_IN_FLIGHT: usize = 16;

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
            inner: Arc::new(Inner {
                replies,
                client,
                stream,
                config,
                limits,
                tails: Mutex::new(HashMap::new()),
                batches: tokio::sync::Semaphore::new(MAX_BATCHES_IN_FLIGHT),
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

    fn remember(&self, stream: &str, tail: Tail) {
        let mut tails = self.inner.tails.lock().unwrap();
        if tails.len() >= MAX_TAILS {
            tails.clear();
        }
        let entry = tails.entry(stream.to_string()).or_insert(tail);
        if tail.sequence >= entry.sequence {
            *entry = tail;
        }
    }

    fn remembered(&self, stream: &str) -> Option<Tail> {
        self.inner.tails.lock().unwrap().get(stream).copied()
    }

    /// The tail an append expecting `expected` goes after: none for a new
    /// stream, the remembered one if it is at the expected version, else
    /// the stream leader's.
    async fn expected_tail(&self, stream: &str, expected: ExpectedVersion) -> Result<Tail> {
        match expected {
            ExpectedVersion::NoStream => Ok(Tail {
                version: 0,
                sequence: 0,
            }),
            ExpectedVersion::Exact(v) => match self.remembered(stream) {
                Some(t) if t.version == v => Ok(t),
                _ => self.tail(stream).await,
            },
            ExpectedVersion::Any => self.tail(stream).await,
        }
    }

    /// The result of `n` events stored after `tail`, the last of them at
    /// `position`; remembered as the aggregate's new tail.
    fn stored(&self, stream: &str, tail: Tail, n: u64, position: Position) -> AppendResult {
        let result = AppendResult {
            first_version: tail.version + 1,
            last_version: tail.version + n,
            position,
        };
        self.remember(
            stream,
            Tail {
                version: result.last_version,
                sequence: position,
            },
        );
        result
    }

    /// The original results of a multi-stream append whose events are all
    /// stored already (a retry); `None` if none of them is;
    /// `IdempotencyMismatch` if only some are.
    async fn retry_of_parts(&self, parts: &[StreamAppend]) -> Result<Option<Vec<AppendResult>>> {
        let mut found = Vec::with_capacity(parts.len());
        for part in parts {
            found.push(self.find_retry(&part.stream, &part.events).await?);
        }
        if found.iter().all(Option::is_none) {
            return Ok(None);
        }
        found
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| EventLogError::IdempotencyMismatch {
                event_id: parts[0].events[0].event_id.clone(),
            })
    }

    /// The aggregate's last event, read from the stream leader.
    async fn tail(&self, stream: &str) -> Result<Tail> {
        use async_nats::jetstream::stream::LastRawMessageErrorKind;
        match self
            .inner
            .stream
            .get_last_raw_message_by_subject(&self.subject(stream))
            .await
        {
            Ok(m) => {
                let env = decode(m.sequence, &m.payload)?;
                let tail = Tail {
                    version: env.stream_version,
                    sequence: m.sequence,
                };
                self.remember(stream, tail);
                Ok(tail)
            }
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(Tail {
                version: 0,
                sequence: 0,
            }),
            Err(e) => Err(self.unavailable("cannot read a stream's last event", e)),
        }
    }

    /// Runs `read` (a direct get) until it succeeds or fails for a reason
    /// other than the log being unavailable, for up to the connect timeout:
    /// a cluster failing over answers nothing for a few seconds.
    async fn retried<T, F, Fut>(&self, mut read: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let deadline = tokio::time::Instant::now() + self.inner.config.timeout;
        loop {
            match read().await {
                Err(EventLogError::Unavailable(why)) if tokio::time::Instant::now() < deadline => {
                    tracing::debug!(%why, "read failed; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                other => return other,
            }
        }
    }

    /// Up to `max` messages from sequence `from`, of `subject` (`""`: all).
    /// Retried while the cluster fails over, for up to the connect timeout.
    async fn direct_batch(
        &self,
        from: u64,
        subject: &str,
        max: usize,
    ) -> Result<Vec<RecordedEvent>> {
        // The stream holds only the log's subjects, so a read of everything
        // names no subject: a wildcard filter costs the server a scan
        // (measured: 3 ms per read at 32k events, against 0.2 ms).
        let request = if subject.is_empty() {
            serde_json::json!({ "seq": from.max(1), "batch": max })
        } else {
            serde_json::json!({ "seq": from.max(1), "batch": max, "next_by_subj": subject })
        };
        let found = self.retried(|| self.direct_get(&request, max)).await?;
        found
            .into_iter()
            .map(|(sequence, payload)| {
                Ok(RecordedEvent {
                    position: sequence,
                    envelope: decode(sequence, &payload)?,
                })
            })
            .collect()
    }

    /// The sequence of `subject`'s last message, by a direct get (any
    /// replica answers); `None` if the subject has none.
    async fn direct_last_sequence(&self, subject: &str) -> Result<Option<u64>> {
        let request = serde_json::json!({ "last_by_subj": subject });
        let found = self.retried(|| self.direct_get(&request, 1)).await?;
        Ok(found.first().map(|(sequence, _)| *sequence))
    }

    /// Sends one direct-get `request` and gathers its answers, up to `max`:
    /// (sequence, payload) of each message, in order.
    async fn direct_get(
        &self,
        request: &serde_json::Value,
        max: usize,
    ) -> Result<Vec<(u64, bytes::Bytes)>> {
        let mut route = self.inner.replies.route();
        self.inner
            .client
            .publish_with_reply(
                format!("$JS.API.DIRECT.GET.{}", self.inner.config.stream),
                route.subject.clone(),
                request.to_string().into(),
            )
            .await
            .map_err(|e| self.unavailable("cannot request a read", e))?;
        let mut out = Vec::new();
        while out.len() < max {
            let reply =
                tokio::time::timeout(self.inner.config.request_timeout, route.answers.recv())
                    .await
                    .map_err(|_| self.unavailable("read", "no answer in time"))?
                    .ok_or_else(|| self.unavailable("read", "connection closed"))?;
            if let Some(status) = reply.status {
                // 204 ends a batch; 404 means nothing (more) to answer.
                match status.as_u16() {
                    204 | 404 => break,
                    503 => return Err(self.unavailable("read", "no responders")),
                    _ => {
                        return Err(self.unavailable(
                            "read",
                            format!("status {status} {:?}", reply.description),
                        ))
                    }
                }
            }
            let sequence = reply
                .headers
                .as_ref()
                .and_then(|h| h.get("Nats-Sequence"))
                .and_then(|v| v.as_str().parse::<u64>().ok())
                .ok_or_else(|| EventLogError::Corrupt("direct get without Nats-Sequence".into()))?;
            out.push((sequence, reply.payload));
        }
        // Anything still in flight is dropped with the route.
        drop(route);
        Ok(out)
    }

    /// Every event of aggregate `stream` from `from_version`, up to `max`.
    async fn read_aggregate(
        &self,
        stream: &str,
        from_version: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>> {
        let subject = self.subject(stream);
        // Start right after the remembered tail when the caller asks for what
        // follows it (a command refreshing its folded state), else at the start.
        let mut from = match self.remembered(stream) {
            Some(t) if from_version == t.version + 1 => t.sequence + 1,
            _ => 1,
        };
        // A batch filtered by subject makes the server count what is pending
        // for the subject from `from` on, loading blocks of the stream: a cost
        // that grows with the log (measured: more than half of nats-server's
        // time at 27k events). The aggregate's last sequence is an index
        // lookup; most reads (a command refreshing a stream it has folded, a
        // new aggregate) find nothing after `from` and need no batch.
        match self.direct_last_sequence(&subject).await? {
            None => return Ok(Vec::new()),
            Some(last) if last < from => return Ok(Vec::new()),
            Some(_) => {}
        }
        let mut out = Vec::new();
        while out.len() < max {
            let batch = self.direct_batch(from, &subject, READ_BATCH).await?;
            let Some(last) = batch.last() else { break };
            from = last.position + 1;
            let more = batch.len() == READ_BATCH;
            out.extend(
                batch
                    .into_iter()
                    .filter(|e| e.envelope.stream_version >= from_version),
            );
            if !more {
                break;
            }
        }
        out.truncate(max);
        if let Some(last) = out.last() {
            self.remember(
                stream,
                Tail {
                    version: last.envelope.stream_version,
                    sequence: last.position,
                },
            );
        }
        Ok(out)
    }

    /// Publishes `events` after `tail`: one message, or one atomic batch. A
    /// batch the server refuses for having too many in flight (it stored
    /// none of it) is sent again after a short pause, until the timeout.
    async fn publish(
        &self,
        stream: &str,
        tail: Tail,
        events: &[EventEnvelope],
    ) -> Result<Published> {
        let part = Outgoing {
            stream,
            tail,
            events,
        };
        self.publish_parts(&[part]).await
    }

    /// Publishes every part, in order, as one message or one atomic batch
    /// (see [`JetStreamEventStore::publish`]).
    async fn publish_parts(&self, parts: &[Outgoing<'_>]) -> Result<Published> {
        let n: usize = parts.iter().map(|p| p.events.len()).sum();
        let _permit = if n > 1 {
            Some(self.inner.batches.acquire().await.expect("never closed"))
        } else {
            None
        };
        let deadline = tokio::time::Instant::now() + self.inner.config.timeout;
        let mut pause = Duration::from_millis(2);
        loop {
            match self.publish_once(parts).await? {
                Published::Busy if tokio::time::Instant::now() + pause < deadline => {
                    tracing::debug!("server busy with other atomic batches; sending again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                Published::Busy => {
                    return Err(self.unavailable(
                        "append refused",
                        "the server kept refusing the batch: too many atomic batches in flight",
                    ))
                }
                other => return Ok(other),
            }
        }
    }

    async fn publish_once(&self, parts: &[Outgoing<'_>]) -> Result<Published> {
        let client = &self.inner.client;
        let batch_id = uuid::Uuid::now_v7().simple().to_string();
        // Each event with its stream, its version, and, on the first event
        // of a stream in this publish, the sequence that stream must be at
        // (later parts of the same stream follow inside the atomic batch).
        let mut messages = Vec::new();
        let mut versions: HashMap<&str, u64> = HashMap::new();
        for part in parts {
            let expect = (!versions.contains_key(part.stream)).then_some(part.tail.sequence);
            let version = versions.entry(part.stream).or_insert(part.tail.version);
            for (i, e) in part.events.iter().enumerate() {
                *version += 1;
                messages.push((part.stream, *version, if i == 0 { expect } else { None }, e));
            }
        }
        let n = messages.len();
        let mut reply = None;
        for (i, (stream, version, expect, e)) in messages.into_iter().enumerate() {
            let subject = self.subject(stream);
            let mut env = e.clone();
            env.stream_id = stream.to_string();
            env.stream_version = version;
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", env.event_id.as_str());
            headers.insert("Iga-Stream", stream);
            headers.insert(
                "Iga-Stream-Version",
                env.stream_version.to_string().as_str(),
            );
            headers.insert("Iga-Event-Type", env.event_type.as_str());
            if let Some(sequence) = expect {
                headers.insert(
                    "Nats-Expected-Last-Subject-Sequence",
                    sequence.to_string().as_str(),
                );
            }
            if n > 1 {
                headers.insert("Nats-Batch-Id", batch_id.as_str());
                headers.insert("Nats-Batch-Sequence", (i + 1).to_string().as_str());
                if i + 1 == n {
                    headers.insert("Nats-Batch-Commit", "1");
                }
            }
            let payload = env.encode_to_vec().into();
            if i + 1 == n || i == 0 {
                // The first message of a batch is acknowledged (empty) so a
                // refused batch stops early; the last one answers the ack.
                let answer = client
                    .request_with_headers(subject.clone(), headers, payload)
                    .await
                    .map_err(|e| self.unavailable("append", e))?;
                if i + 1 == n || !answer.payload.is_empty() {
                    reply = Some(answer.payload);
                    break;
                }
            } else {
                client
                    .publish_with_headers(subject.clone(), headers, payload)
                    .await
                    .map_err(|e| self.unavailable("append", e))?;
            }
        }
        let reply = reply.expect("the last message is a request");
        let ack: PubAckReply = serde_json::from_slice(&reply)
            .map_err(|e| self.unavailable("append: unreadable acknowledgement", e))?;
        match ack.error {
            None if ack.duplicate => Ok(Published::Duplicate { sequence: ack.seq }),
            None => Ok(Published::Stored {
                last_sequence: ack.seq,
            }),
            Some(e) if ERR_WRONG_LAST_SEQUENCE.contains(&e.err_code) => {
                Ok(Published::WrongLastSequence)
            }
            Some(e) if e.err_code == ERR_BATCH_DUPLICATE_ID => Ok(Published::DuplicateInBatch),
            Some(e) if e.err_code == ERR_BATCH_TOO_MANY_INFLIGHT => Ok(Published::Busy),
            Some(e) => Err(self.unavailable(
                "append refused",
                format!("{} (code {})", e.description, e.err_code),
            )),
        }
    }

    /// Where `events` already are in aggregate `stream`, if they all are, in
    /// order: the original result of a retried append. `Err(mismatch)` if
    /// some of them are there but not as this append.
    async fn find_retry(
        &self,
        stream: &str,
        events: &[EventEnvelope],
    ) -> Result<Option<AppendResult>> {
        // Read up to the leader's tail: a replica answering direct gets may
        // trail it by a moment.
        let tail = self.tail(stream).await?;
        let mut recorded = Vec::new();
        for _ in 0..100 {
            recorded = self.read_aggregate(stream, 1, usize::MAX).await?;
            if recorded.last().map(|e| e.position).unwrap_or(0) >= tail.sequence {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        crate::retry_of(&recorded, events)
    }

    /// A single message JetStream recognised as a duplicate of the one at
    /// `sequence`: the original result if it is this append's event.
    async fn duplicate_at(
        &self,
        stream: &str,
        sequence: u64,
        events: &[EventEnvelope],
    ) -> Result<AppendResult> {
        let original = self
            .inner
            .stream
            .get_raw_message(sequence)
            .await
            .map_err(|e| self.unavailable("cannot read a duplicate's original", e))?;
        let env = decode(sequence, &original.payload)?;
        if env.stream_id != stream || env.event_type != events[0].event_type {
            return Err(EventLogError::IdempotencyMismatch {
                event_id: events[0].event_id.clone(),
            });
        }
        Ok(AppendResult {
            first_version: env.stream_version,
            last_version: env.stream_version,
            position: sequence,
        })
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
        validate_append(stream, &events, &self.inner.limits)?;
        let n = events.len() as u64;
        let started = std::time::Instant::now();
        loop {
            let tail = self.expected_tail(stream, expected).await?;
            let outcome = match expected {
                ExpectedVersion::Exact(v) if tail.version != v => Published::WrongLastSequence,
                _ => self.publish(stream, tail, &events).await?,
            };
            match outcome {
                Published::Busy => unreachable!("publish retries a busy server itself"),
                Published::Stored { last_sequence } => {
                    let result = self.stored(stream, tail, n, last_sequence);
                    count_appended(n, started);
                    return Ok(result);
                }
                Published::Duplicate { sequence } => {
                    return self.duplicate_at(stream, sequence, &events).await
                }
                Published::DuplicateInBatch => {
                    return match self.find_retry(stream, &events).await? {
                        Some(original) => Ok(original),
                        // Stored, but not in this stream.
                        None => Err(EventLogError::IdempotencyMismatch {
                            event_id: events[0].event_id.clone(),
                        }),
                    };
                }
                Published::WrongLastSequence => {
                    if let Some(original) = self.find_retry(stream, &events).await? {
                        return Ok(original);
                    }
                    if expected == ExpectedVersion::Any {
                        continue; // someone appended meanwhile: append after them
                    }
                    let actual = self.tail(stream).await?.version;
                    return Err(EventLogError::Conflict {
                        stream: stream.to_string(),
                        expected,
                        actual,
                    });
                }
            }
        }
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
        // Subscribe to the announcements before the first read, so nothing
        // stored after that read goes unannounced.
        let announcements = self
            .inner
            .client
            .subscribe(format!(
                "{}.>",
                stored_prefix(&self.inner.config.subject_prefix)
            ))
            .await
            .map_err(|e| self.unavailable("cannot subscribe", e))?;
        let state = Tailing {
            store: self.clone(),
            announcements,
            position: after,
            ready: std::collections::VecDeque::new(),
            failures: 0,
            announced: 0,
        };
        Ok(futures::stream::unfold(state, |mut t| async move {
            let next = t.next().await;
            Some((next, t))
        })
        .boxed())
    }

    async fn head(&self) -> Result<Position> {
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

    /// One atomic batch across the parts' subjects. The first event of each
    /// stream names the sequence that stream must be at; its later parts
    /// follow inside the batch, which nothing can interleave.
    async fn append_streams(&self, parts: Vec<StreamAppend>) -> Result<Vec<AppendResult>> {
        validate_append_streams(&parts, &self.inner.limits)?;
        let started = std::time::Instant::now();
        loop {
            let mut tails = Vec::with_capacity(parts.len());
            // The version each stream is at after the parts before.
            let mut after: HashMap<&str, u64> = HashMap::new();
            let mut stale = false;
            for part in &parts {
                let tail = match after.get(part.stream.as_str()) {
                    Some(&version) => {
                        if !part.expected.admits(version) {
                            return Err(EventLogError::Conflict {
                                stream: part.stream.clone(),
                                expected: part.expected,
                                actual: version,
                            });
                        }
                        Tail {
                            version,
                            sequence: 0, // not sent: the batch orders it
                        }
                    }
                    None => {
                        let tail = self.expected_tail(&part.stream, part.expected).await?;
                        stale |= !part.expected.admits(tail.version);
                        tail
                    }
                };
                after.insert(&part.stream, tail.version + part.events.len() as u64);
                tails.push(tail);
            }
            let outcome = if stale {
                Published::WrongLastSequence
            } else {
                let outgoing: Vec<Outgoing<'_>> = parts
                    .iter()
                    .zip(&tails)
                    .map(|(p, t)| Outgoing {
                        stream: &p.stream,
                        tail: *t,
                        events: &p.events,
                    })
                    .collect();
                self.publish_parts(&outgoing).await?
            };
            match outcome {
                Published::Busy => unreachable!("publish retries a busy server itself"),
                Published::Stored { last_sequence } => {
                    let total: u64 = parts.iter().map(|p| p.events.len() as u64).sum();
                    let mut sequence = last_sequence + 1 - total;
                    let mut results = Vec::with_capacity(parts.len());
                    for (part, tail) in parts.iter().zip(&tails) {
                        let n = part.events.len() as u64;
                        sequence += n;
                        results.push(self.stored(&part.stream, *tail, n, sequence - 1));
                    }
                    count_appended(total, started);
                    return Ok(results);
                }
                Published::Duplicate { .. } | Published::DuplicateInBatch => {
                    return self.retry_of_parts(&parts).await?.ok_or_else(|| {
                        EventLogError::IdempotencyMismatch {
                            event_id: parts[0].events[0].event_id.clone(),
                        }
                    });
                }
                Published::WrongLastSequence => {
                    if let Some(original) = self.retry_of_parts(&parts).await? {
                        return Ok(original);
                    }
                    let mut seen = std::collections::HashSet::new();
                    for part in &parts {
                        if !seen.insert(part.stream.as_str())
                            || part.expected == ExpectedVersion::Any
                        {
                            continue;
                        }
                        let actual = self.tail(&part.stream).await?.version;
                        if !part.expected.admits(actual) {
                            return Err(EventLogError::Conflict {
                                stream: part.stream.clone(),
                                expected: part.expected,
                                actual,
                            });
                        }
                    }
                    // Only `Any` parts moved (or a remembered tail was
                    // behind): append after the new tails.
                }
            }
        }
    }
}

/// A subscription: reads the log in batches after `position`; once caught
/// up, waits for an announcement of stored events (or the poll interval).
/// A failing read is retried, with a growing pause, rather than ending the
/// subscription: a cluster failing over comes back.
struct Tailing {
    store: JetStreamEventStore,
    announcements: async_nats::Subscriber,
    position: Position,
    ready: std::collections::VecDeque<RecordedEvent>,
    failures: u32,
    /// The highest sequence announced as stored.
    announced: Position,
}

impl Tailing {
    fn note(&mut self, announcement: &async_nats::Message) {
        let sequence = announcement
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Sequence"))
            .and_then(|v| v.as_str().parse::<u64>().ok())
            .unwrap_or(0);
        self.announced = self.announced.max(sequence);
    }

    async fn next(&mut self) -> Result<RecordedEvent> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                self.position = event.position;
                return Ok(event);
            }
            match self.store.read_all(self.position, READ_BATCH).await {
                Ok(batch) if !batch.is_empty() => {
                    self.failures = 0;
                    self.ready.extend(batch);
                }
                Ok(_) => {
                    self.failures = 0;
                    if self.announced > self.position {
                        // Announced by the leader but not yet readable on the
                        // replica that answered: ask again in a moment.
                        tokio::time::sleep(Duration::from_millis(2)).await;
                        continue;
                    }
                    // Caught up: wait for news, then take every announcement
                    // already waiting, since one read covers them all.
                    if let Ok(Some(m)) =
                        tokio::time::timeout(SUBSCRIPTION_POLL, self.announcements.next()).await
                    {
                        self.note(&m);
                    }
                    while let Some(Some(m)) = self.announcements.next().now_or_never() {
                        self.note(&m);
                    }
                }
                Err(e @ EventLogError::Corrupt(_)) => return Err(e),
                Err(e) => {
                    self.failures += 1;
                    tracing::warn!(error = %e, position = self.position, "event log subscription cannot read; retrying");
                    tokio::time::sleep(Duration::from_millis(
                        (50u64 << self.failures.min(5)).min(2000),
                    ))
                    .await;
                }
            }
        }
    }
}
