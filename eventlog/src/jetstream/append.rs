//! Appends: the expected sequence of each aggregate (remembered from the last
//! read or append, else asked of the leader), one message or one atomic
//! batch, and a refusal turned into a retry's original answer, a conflict or
//! an idempotency mismatch by searching the aggregate for the append's ids.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::header::HeaderMap;
use prost::Message;
use serde::Deserialize;

use super::{decode, JetStreamEventStore, MAX_TAILS};
use crate::{
    validate_append, validate_append_streams, AppendResult, EventEnvelope, EventLogError,
    ExpectedVersion, Position, Result, StreamAppend,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tail {
    pub(super) version: u64,
    pub(super) sequence: u64,
}

/// Events to publish after an aggregate's `tail`.
pub(super) struct Outgoing<'a> {
    pub(super) stream: &'a str,
    pub(super) tail: Tail,
    pub(super) events: &'a [EventEnvelope],
}

/// Counts an append of `n` events that took since `started`.
pub(super) fn count_appended(n: u64, started: std::time::Instant) {
    metrics::counter!("iga_eventlog_appended_events_total").increment(n);
    metrics::histogram!("iga_eventlog_append_seconds").record(started.elapsed().as_secs_f64());
}
/// What the server answered to a publish.
pub(super) enum Published {
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
    /// The server refused it for another reason and stored nothing (only
    /// inside this module: a group refused so is sent again append by
    /// append; callers get `Unavailable`).
    Refused {
        why: String,
    },
}

#[derive(Deserialize)]
pub(super) struct PubAckReply {
    #[serde(default)]
    pub(super) seq: u64,
    #[serde(default)]
    pub(super) duplicate: bool,
    #[serde(default)]
    pub(super) error: Option<ApiError>,
}

#[derive(Deserialize, Debug)]
pub(super) struct ApiError {
    #[serde(default)]
    pub(super) err_code: u64,
    #[serde(default)]
    pub(super) description: String,
}

/// JetStream's error codes for a failed expected-last-sequence check.
pub(super) const ERR_WRONG_LAST_SEQUENCE: [u64; 2] = [10071, 10164];
/// "atomic publish batch contains duplicate message id".
pub(super) const ERR_BATCH_DUPLICATE_ID: u64 = 10201;
/// "atomic publish too many inflight": the server's limit on batches being
/// staged at once (per stream); the batch was refused whole.
pub(super) const ERR_BATCH_TOO_MANY_INFLIGHT: u64 = 10210;
/// Most messages one group puts in a batch (the server accepts 1,000); an
/// append larger than this goes alone.
pub(super) const MAX_GROUP_MESSAGES: usize = 256;

/// Largest encoded event an append may hold and still be grouped with
/// others. A larger one goes alone: a message over the connection's payload
/// limit fails in the client, and it must fail only its own append.
pub(super) const MAX_GROUPED_EVENT_BYTES: usize = 64 * 1024;

/// Appends of a refused group sent again at once, each on its own.
const RESENT_AT_ONCE: usize = 8;

/// An append waiting for its group: its parts, owned, and where to answer.
pub(super) struct Submission {
    parts: Vec<OwnedPart>,
    answer: tokio::sync::oneshot::Sender<Result<Published>>,
}

struct OwnedPart {
    stream: String,
    tail: Tail,
    events: Vec<EventEnvelope>,
}

impl Submission {
    fn messages(&self) -> usize {
        self.parts.iter().map(|p| p.events.len()).sum()
    }

    /// Whether it may share a batch with others (see [`MAX_GROUPED_EVENT_BYTES`]).
    fn groups(&self) -> bool {
        self.parts
            .iter()
            .flat_map(|p| &p.events)
            .all(|e| e.encoded_len() <= MAX_GROUPED_EVENT_BYTES)
    }

    fn outgoing(&self) -> impl Iterator<Item = Outgoing<'_>> {
        self.parts.iter().map(|p| Outgoing {
            stream: &p.stream,
            tail: p.tail,
            events: &p.events,
        })
    }
}

/// The group committer of one log handle: takes the queued appends that
/// need an atomic batch, puts those on disjoint streams together (up to
/// [`MAX_GROUP_MESSAGES`]), and keeps at most `in_flight` batches in flight
/// (`batches_in_flight`, far under the server's limit of 50 per stream).
/// Appends on a stream already in the group wait for the next one: a batch
/// names each stream's expected sequence once. Ends when the log is dropped.
pub(super) async fn group_commits(
    inner: std::sync::Weak<super::Inner>,
    mut queue: tokio::sync::mpsc::UnboundedReceiver<Submission>,
    in_flight: usize,
) {
    let in_flight = std::sync::Arc::new(tokio::sync::Semaphore::new(in_flight));
    let mut waiting: std::collections::VecDeque<Submission> = Default::default();
    loop {
        // A free slot first: appends pile up while the batches are out.
        let slot = in_flight
            .clone()
            .acquire_owned()
            .await
            .expect("never closed");
        if waiting.is_empty() {
            match queue.recv().await {
                Some(s) => waiting.push_back(s),
                None => return,
            }
        }
        while let Ok(s) = queue.try_recv() {
            waiting.push_back(s);
        }
        let group = take_group(&mut waiting);
        let Some(inner) = inner.upgrade() else { return };
        let log = JetStreamEventStore { inner };
        tokio::spawn(async move {
            log.publish_group(group).await;
            drop(slot);
        });
    }
}

/// The first waiting append and every later one on streams none before it
/// in the group touches, while the group stays within
/// [`MAX_GROUP_MESSAGES`]; an append with a large event goes alone. The
/// rest keep their order.
fn take_group(waiting: &mut std::collections::VecDeque<Submission>) -> Vec<Submission> {
    let mut group = Vec::new();
    let mut streams = std::collections::HashSet::new();
    let mut messages = 0;
    let mut rest = std::collections::VecDeque::with_capacity(waiting.len());
    for s in waiting.drain(..) {
        let n = s.messages();
        let disjoint = s.parts.iter().all(|p| !streams.contains(&p.stream));
        let alone = group.first().is_some_and(|f: &Submission| !f.groups()) || !s.groups();
        if group.is_empty() || (disjoint && !alone && messages + n <= MAX_GROUP_MESSAGES) {
            streams.extend(s.parts.iter().map(|p| p.stream.clone()));
            messages += n;
            group.push(s);
        } else {
            rest.push_back(s);
        }
    }
    *waiting = rest;
    group
}

impl JetStreamEventStore {
    pub(super) fn remember(&self, stream: &str, tail: Tail) {
        let mut tails = self.inner.tails.lock().unwrap();
        if tails.len() >= MAX_TAILS {
            tails.clear();
        }
        let entry = tails.entry(stream.to_string()).or_insert(tail);
        if tail.sequence >= entry.sequence {
            *entry = tail;
        }
    }

    pub(super) fn remembered(&self, stream: &str) -> Option<Tail> {
        self.inner.tails.lock().unwrap().get(stream).copied()
    }

    /// The tail an append expecting `expected` goes after: none for a new
    /// stream, the remembered one if it is at the expected version, else
    /// the stream leader's.
    pub(super) async fn expected_tail(
        &self,
        stream: &str,
        expected: ExpectedVersion,
    ) -> Result<Tail> {
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
    pub(super) fn stored(
        &self,
        stream: &str,
        tail: Tail,
        n: u64,
        position: Position,
    ) -> AppendResult {
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
    pub(super) async fn retry_of_parts(
        &self,
        parts: &[StreamAppend],
    ) -> Result<Option<Vec<AppendResult>>> {
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
    pub(super) async fn tail(&self, stream: &str) -> Result<Tail> {
        use async_nats::jetstream::stream::LastRawMessageErrorKind;
        metrics::counter!("iga_eventlog_read_requests_total", "kind" => "last_by_subject")
            .increment(1);
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

    /// Publishes `events` after `tail`: one message, or one atomic batch. A
    /// batch the server refuses for having too many in flight (it stored
    /// none of it) is sent again after a short pause, until the timeout.
    pub(super) async fn publish(
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

    /// Publishes every part, in order, as one message or, through the group
    /// committer, in one atomic batch (with other appends, if some are
    /// waiting; see [`group_commits`]).
    pub(super) async fn publish_parts(&self, parts: &[Outgoing<'_>]) -> Result<Published> {
        let published = self.publish_parts_refusing(parts).await;
        match published {
            Ok(Published::Refused { why }) => Err(self.unavailable("append refused", why)),
            other => other,
        }
    }

    async fn publish_parts_refusing(&self, parts: &[Outgoing<'_>]) -> Result<Published> {
        let n: usize = parts.iter().map(|p| p.events.len()).sum();
        if n == 1 {
            return self.publish_alone(parts).await;
        }
        let (answer, answered) = tokio::sync::oneshot::channel();
        let submission = Submission {
            parts: parts
                .iter()
                .map(|p| OwnedPart {
                    stream: p.stream.to_string(),
                    tail: p.tail,
                    events: p.events.to_vec(),
                })
                .collect(),
            answer,
        };
        self.inner
            .grouper
            .send(submission)
            .map_err(|_| self.unavailable("append", "the log is closing"))?;
        answered
            .await
            .map_err(|_| self.unavailable("append", "the log is closing"))?
    }

    /// Publishes a group of appends as one atomic batch and answers each
    /// with where its own events landed. If the server refuses the batch
    /// (some append's expected sequence is stale, some event is stored
    /// already, or anything else), nothing of it is stored: each append is
    /// sent again on its own, so only the ones at fault are refused. If the
    /// batch's answer never came, each append gets that error (and a retry
    /// with its ids finds out whether it was stored).
    async fn publish_group(&self, group: Vec<Submission>) {
        metrics::histogram!("iga_eventlog_group_commit_appends").record(group.len() as f64);
        if group.len() > 1 {
            let together: Vec<Outgoing<'_>> = group.iter().flat_map(Submission::outgoing).collect();
            match self.publish_alone(&together).await {
                Ok(Published::Stored { last_sequence }) => {
                    let total: usize = group.iter().map(Submission::messages).sum();
                    let mut last = last_sequence - total as u64;
                    for s in group {
                        last += s.messages() as u64;
                        let _ = s.answer.send(Ok(Published::Stored {
                            last_sequence: last,
                        }));
                    }
                    return;
                }
                Ok(_) => metrics::counter!("iga_eventlog_group_commits_split_total").increment(1),
                Err(e) => {
                    // All or nothing was stored: each append learns the same
                    // (and a retry with its ids finds out which).
                    let why = match &e {
                        EventLogError::Unavailable(why) => why.clone(),
                        other => other.to_string(),
                    };
                    for s in group {
                        let _ = s.answer.send(Err(EventLogError::Unavailable(why.clone())));
                    }
                    return;
                }
            }
        }
        // A few at once, well under the server's limit on batches in flight.
        use futures::StreamExt;
        futures::stream::iter(group)
            .map(|s| async move {
                let outgoing: Vec<Outgoing<'_>> = s.outgoing().collect();
                let published = self.publish_alone(&outgoing).await;
                let _ = s.answer.send(published);
            })
            .buffer_unordered(RESENT_AT_ONCE)
            .collect::<()>()
            .await;
    }

    /// Publishes `parts` as one message or one atomic batch, sending a batch
    /// the server refused for having too many in flight (it stored none of
    /// it) again after a short pause, until the timeout.
    async fn publish_alone(&self, parts: &[Outgoing<'_>]) -> Result<Published> {
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

    pub(super) async fn publish_once(&self, parts: &[Outgoing<'_>]) -> Result<Published> {
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
            Some(e) => Ok(Published::Refused {
                why: format!("{} (code {})", e.description, e.err_code),
            }),
        }
    }

    /// Where `events` already are in aggregate `stream`, if they all are, in
    /// order: the original result of a retried append. `Err(mismatch)` if
    /// some of them are there but not as this append.
    pub(super) async fn find_retry(
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
    pub(super) async fn duplicate_at(
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
    /// An append to one stream: one message, or one atomic batch.
    pub(super) async fn append_to_stream(
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
                Published::Refused { .. } => unreachable!("publish answers a refusal as an error"),
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

    /// One atomic batch across the parts' subjects. The first event of each
    /// stream names the sequence that stream must be at; its later parts
    /// follow inside the batch, which nothing can interleave.
    pub(super) async fn append_batch(&self, parts: Vec<StreamAppend>) -> Result<Vec<AppendResult>> {
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
                Published::Refused { .. } => unreachable!("publish answers a refusal as an error"),
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
