//! The embedded event log: one key-value database on this machine, one
//! writer thread doing group commit. The database is an [`Engine`]: sled
//! (the default, `sled_store`) or fjall (`fjall_store`), each implementing it;
//! everything else (layout, group commit, reads, verification) is here, once.
//!
//! Layout (one keyspace, so a group of appends is one atomic batch):
//!
//! | key | value |
//! | --- | --- |
//! | `e` + position (u64 BE) | encoded [`EventEnvelope`] |
//! | `s` + stream + `0x00` + version (u64 BE) | position |
//! | `h` + stream | stream version (u64 BE) |
//! | `i` + event id (16 bytes) | position |
//!
//! **Group commit.** Appends are sent to a single writer thread. It takes every
//! append waiting (up to a bound), checks each against the stream heads
//! (including earlier appends of the same group), writes the whole group in one
//! batch, flushes once, then acknowledges every append of the group. An append
//! is acknowledged only after its batch is flushed. An append to several
//! streams (`append_streams`) is one request: every part is checked before
//! any is added to the batch, so it is stored whole or not at all.
//!
//! **Durable head.** Readers never see past the last flushed position, so a
//! projection can never get ahead of what survives a crash. How durable a
//! flush is depends on the engine: sled 0.34 flushes with `sync_file_range`
//! (a process crash loses nothing acknowledged, a power loss may); fjall with
//! `fdatasync` (a power loss loses nothing acknowledged either). Deployments
//! that need replicated durability use JetStream or KurrentDB.
//!
//! **The tail.** The writer keeps the events it last committed in memory
//! ([`Tail`]), decoded. A follower at the head (each subscription: the
//! projection runner, the Merkle tree, every reactor) is handed copies from
//! there instead of reading the database and decoding each event again;
//! one further behind reads the database as before.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use prost::Message;
use tokio::sync::{mpsc, oneshot, watch};

use crate::{
    validate_append, validate_append_streams, AppendResult, EventEnvelope, EventLogError,
    EventStore, ExpectedVersion, Limits, Position, RecordedEvent, Result, StreamAppend,
    Subscription,
};

/// Most appends the writer folds into one group commit.
const MAX_GROUP: usize = 2048;
/// Events a subscription reads from the log per round trip.
const SUBSCRIPTION_BATCH: usize = 1024;

/// Most events, and most bytes of encoded events, the [`Tail`] keeps.
const TAIL_EVENTS: usize = 8192;
const TAIL_BYTES: usize = 16 * 1024 * 1024;

/// The events of the last group commits, decoded, at contiguous positions
/// up to the durable head: what the log's followers read next.
#[derive(Default)]
struct Tail {
    events: std::collections::VecDeque<(RecordedEvent, usize)>,
    bytes: usize,
}

impl Tail {
    /// Adds a committed group's events (contiguous after the last ones).
    fn extend(&mut self, committed: Vec<(Position, EventEnvelope)>) {
        for (position, envelope) in committed {
            let size = envelope.encoded_len();
            self.bytes += size;
            self.events
                .push_back((RecordedEvent { position, envelope }, size));
        }
        while self.events.len() > TAIL_EVENTS || self.bytes > TAIL_BYTES {
            let Some((_, size)) = self.events.pop_front() else {
                break;
            };
            self.bytes -= size;
        }
    }

    /// Up to `max` events after `after` and up to `durable`, if the tail
    /// holds every one of them (`None`: read the database).
    fn read(&self, after: Position, durable: Position, max: usize) -> Option<Vec<RecordedEvent>> {
        let first = self.events.front()?.0.position;
        if after + 1 < first {
            return None;
        }
        let skip = ((after + 1 - first) as usize).min(self.events.len());
        Some(
            self.events
                .range(skip..)
                .take_while(|(e, _)| e.position <= durable)
                .take(max)
                .map(|(e, _)| e.clone())
                .collect(),
        )
    }
}

/// One append: a single stream's, or several streams' stored as one.
struct AppendRequest {
    parts: Vec<StreamAppend>,
    reply: oneshot::Sender<Result<Vec<AppendResult>>>,
}

/// The key-value database under an [`EmbeddedLog`]: a keyspace with point
/// reads, ordered ranges and atomic, durable batches.
pub trait Engine: Clone + Send + Sync + 'static {
    /// Bytes as the engine hands them out.
    type Bytes: AsRef<[u8]>;
    /// Writes applied together by [`Engine::commit`].
    type Batch;
    /// The engine's name, for `describe` and errors.
    const NAME: &'static str;

    fn get(&self, key: &[u8]) -> Result<Option<Self::Bytes>>;
    /// Keys from `from` to `to`, both included, in order.
    fn range(&self, from: &[u8], to: &[u8]) -> Entries<'_, Self::Bytes>;
    /// Keys starting with `prefix`, in order.
    fn scan_prefix(&self, prefix: &[u8]) -> Entries<'_, Self::Bytes>;
    /// The greatest key starting with `prefix`.
    fn last_key(&self, prefix: &[u8]) -> Result<Option<Self::Bytes>>;
    fn batch(&self) -> Self::Batch;
    fn insert(&self, batch: &mut Self::Batch, key: &[u8], value: &[u8]);
    /// Applies `batch` atomically and makes it durable before returning.
    fn commit(&self, batch: Self::Batch) -> Result<()>;
    /// Makes everything written durable (on close).
    fn flush(&self) -> Result<()>;
}

/// Key-value pairs an [`Engine`] reads.
pub type Entries<'a, B> = Box<dyn Iterator<Item = Result<(B, B)>> + 'a>;

/// The embedded [`EventStore`] on engine `E`.
pub struct EmbeddedLog<E: Engine> {
    inner: Arc<Inner<E>>,
}

impl<E: Engine> Clone for EmbeddedLog<E> {
    fn clone(&self) -> Self {
        EmbeddedLog {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<E: Engine> {
    db: E,
    path: PathBuf,
    limits: Limits,
    /// `None` only while dropping, so the writer sees the channel close.
    appends: Option<mpsc::Sender<AppendRequest>>,
    writer: Option<std::thread::JoinHandle<()>>,
    /// The last flushed position; readers stop here.
    durable_head: watch::Receiver<Position>,
    tail: Arc<std::sync::RwLock<Tail>>,
}

impl<E: Engine> EmbeddedLog<E> {
    /// Starts the log on an opened engine; `path` is where it lives.
    pub(crate) fn start(db: E, path: PathBuf, limits: Limits) -> Result<Self> {
        let head = last_position(&db)?;
        let (head_tx, head_rx) = watch::channel(head);
        let (tx, rx) = mpsc::channel(8192);
        let tail = Arc::new(std::sync::RwLock::new(Tail::default()));
        let writer = Writer {
            db: db.clone(),
            head,
            durable_head: head_tx,
            tail: tail.clone(),
            failed: None,
        };
        let writer = std::thread::Builder::new()
            .name("iga-eventlog-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| EventLogError::Storage(format!("cannot start writer thread: {e}")))?;
        Ok(EmbeddedLog {
            inner: Arc::new(Inner {
                db,
                path,
                limits,
                appends: Some(tx),
                writer: Some(writer),
                durable_head: head_rx,
                tail,
            }),
        })
    }

    fn durable_head(&self) -> Position {
        *self.inner.durable_head.borrow()
    }

    /// Hands `parts` to the writer and waits for their group commit.
    async fn submit(&self, parts: Vec<StreamAppend>) -> Result<Vec<AppendResult>> {
        let stopped = || EventLogError::Unavailable("the event log writer has stopped".into());
        let (reply, rx) = oneshot::channel();
        let appends = self.inner.appends.as_ref().expect("open while in use");
        appends
            .send(AppendRequest { parts, reply })
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// The engine under the log, for [`crate::migrate`], which copies one
    /// log's keys into another's before either serves an append.
    #[cfg(all(feature = "sled", feature = "fjall"))]
    pub(crate) fn engine(&self) -> &E {
        &self.inner.db
    }

    fn read_all_sync(&self, after: Position, max: usize) -> Result<Vec<RecordedEvent>> {
        let durable = self.durable_head();
        let from_tail = self
            .inner
            .tail
            .read()
            .expect("tail lock")
            .read(after, durable, max);
        match from_tail {
            Some(events) => Ok(events),
            None => read_range(&self.inner.db, after, durable, max),
        }
    }

    /// Checks the whole log: positions contiguous from 1, every envelope
    /// decodes and agrees with the stream and id indexes, stream versions
    /// contiguous from 1. Returns the number of events checked.
    pub fn verify(&self) -> Result<u64> {
        let db = &self.inner.db;
        let mut expected_pos = 1u64;
        let mut versions: HashMap<String, u64> = HashMap::new();
        for kv in db.scan_prefix(b"e") {
            let (k, v) = kv?;
            let (k, v) = (k.as_ref(), v.as_ref());
            let pos = be_u64(&k[1..])?;
            if pos != expected_pos {
                return Err(EventLogError::Corrupt(format!(
                    "position {expected_pos} is missing (next stored is {pos})"
                )));
            }
            expected_pos += 1;
            let env = EventEnvelope::decode(v)
                .map_err(|e| EventLogError::Corrupt(format!("position {pos}: {e}")))?;
            let v_expected = versions.entry(env.stream_id.clone()).or_insert(0);
            *v_expected += 1;
            if env.stream_version != *v_expected {
                return Err(EventLogError::Corrupt(format!(
                    "stream {} has version {} at position {pos}, expected {}",
                    env.stream_id, env.stream_version, v_expected
                )));
            }
            let idx = db.get(&stream_key(&env.stream_id, env.stream_version))?;
            let id = db.get(&id_key(&env.event_id))?;
            if idx.as_ref().map(|v| be_u64(v.as_ref())).transpose()? != Some(pos)
                || id.as_ref().map(|v| be_u64(v.as_ref())).transpose()? != Some(pos)
            {
                return Err(EventLogError::Corrupt(format!(
                    "indexes disagree with the event at position {pos}"
                )));
            }
        }
        for (stream, version) in &versions {
            let head = db.get(&head_key(stream))?;
            if head.as_ref().map(|v| be_u64(v.as_ref())).transpose()? != Some(*version) {
                return Err(EventLogError::Corrupt(format!(
                    "stream {stream} head disagrees with its {version} events"
                )));
            }
        }
        Ok(expected_pos - 1)
    }
}

impl<E: Engine> Drop for Inner<E> {
    /// Closing is synchronous: the writer finishes its last group and flushes,
    /// and the database's file lock is released before the drop returns.
    fn drop(&mut self) {
        self.appends.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

#[async_trait::async_trait]
impl<E: Engine> EventStore for EmbeddedLog<E> {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<EventEnvelope>,
    ) -> Result<AppendResult> {
        validate_append(stream, &events, &self.inner.limits)?;
        let part = StreamAppend {
            stream: stream.to_string(),
            expected,
            events,
        };
        let mut results = self.submit(vec![part]).await?;
        Ok(results.remove(0))
    }

    fn appends_streams_atomically(&self) -> bool {
        true
    }

    /// The parts go to the writer as one request, so they land in one group
    /// commit (one batch): all of them or none.
    async fn append_streams(&self, parts: Vec<StreamAppend>) -> Result<Vec<AppendResult>> {
        validate_append_streams(&parts, &self.inner.limits)?;
        self.submit(parts).await
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>> {
        let db = &self.inner.db;
        let durable = self.durable_head();
        let from_version = from_version.max(1);
        // A point read of the stream's head first: most reads (a command's,
        // past the fold it has cached) find nothing new, and a range scan
        // costs several times a point read to set up.
        let head = db
            .get(&head_key(stream))?
            .map(|v| be_u64(v.as_ref()))
            .transpose()?
            .unwrap_or(0);
        if head < from_version || max == 0 {
            return Ok(Vec::new());
        }
        let start = stream_key(stream, from_version);
        let end = stream_key(stream, head);
        let mut out = Vec::new();
        for kv in db.range(&start, &end).take(max) {
            let (_, pos) = kv?;
            let pos = be_u64(pos.as_ref())?;
            if pos > durable {
                break;
            }
            let bytes = db.get(&event_key(pos))?.ok_or_else(|| {
                EventLogError::Corrupt(format!("position {pos} is indexed but missing"))
            })?;
            out.push(decode_recorded(pos, bytes.as_ref())?);
        }
        Ok(out)
    }

    async fn read_all(&self, after: Position, max: usize) -> Result<Vec<RecordedEvent>> {
        self.read_all_sync(after, max)
    }

    async fn subscribe(&self, after: Position) -> Result<Subscription> {
        let (tx, rx) = mpsc::channel::<Result<RecordedEvent>>(SUBSCRIPTION_BATCH);
        let store = self.clone();
        let mut head = self.inner.durable_head.clone();
        tokio::spawn(async move {
            let mut after = after;
            loop {
                // Always read from the log itself, so the switch from backlog
                // to live can neither skip nor repeat an event.
                let batch = match store.read_all_sync(after, SUBSCRIPTION_BATCH) {
                    Ok(b) => b,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                let caught_up = batch.len() < SUBSCRIPTION_BATCH;
                for ev in batch {
                    after = ev.position;
                    if tx.send(Ok(ev)).await.is_err() {
                        return; // the subscriber went away
                    }
                }
                if caught_up {
                    tokio::select! {
                        changed = head.wait_for(|h| *h > after) => {
                            if changed.is_err() { return; } // log closed
                        }
                        _ = tx.closed() => return,
                    }
                }
            }
        });
        Ok(Box::pin(tokio_stream_from(rx)))
    }

    async fn head(&self) -> Result<Position> {
        Ok(self.durable_head())
    }

    fn describe(&self) -> String {
        format!("{}:{}", E::NAME, self.inner.path.display())
    }
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// The single writer. Runs on its own thread because a flush blocks.
struct Writer<E: Engine> {
    db: E,
    head: Position,
    durable_head: watch::Sender<Position>,
    tail: Arc<std::sync::RwLock<Tail>>,
    /// Set when a group commit failed; the writer refuses appends from then on.
    failed: Option<String>,
}

/// What an append in the current group will do, before the batch is flushed.
enum Planned {
    Write(Vec<AppendResult>),
    Done(Result<Vec<AppendResult>>),
}

impl<E: Engine> Writer<E> {
    fn run(mut self, mut rx: mpsc::Receiver<AppendRequest>) {
        let mut group = Vec::with_capacity(MAX_GROUP);
        while let Some(first) = rx.blocking_recv() {
            group.push(first);
            while group.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(req) => group.push(req),
                    Err(_) => break,
                }
            }
            self.commit_group(&mut group);
        }
        let _ = self.db.flush();
    }

    fn commit_group(&mut self, group: &mut Vec<AppendRequest>) {
        if let Some(why) = &self.failed {
            for req in group.drain(..) {
                let _ = req.reply.send(Err(EventLogError::Unavailable(format!(
                    "an earlier write failed ({why}); restart to recover"
                ))));
            }
            return;
        }
        let started = Instant::now();
        let mut batch = self.db.batch();
        // Stream heads and event ids written earlier in this same group.
        let mut heads: HashMap<String, u64> = HashMap::new();
        let mut ids: HashMap<String, Position> = HashMap::new();
        let mut pending_events: Vec<(Position, EventEnvelope)> = Vec::new();
        let head_before = self.head;
        let mut plans = Vec::with_capacity(group.len());
        for req in group.iter() {
            let plan = match self.plan(req, &mut heads, &mut ids, &mut pending_events, &mut batch) {
                Ok(p) => p,
                Err(e) => Planned::Done(Err(e)),
            };
            plans.push(plan);
        }
        let wrote = self.head > head_before;
        let outcome = if wrote { self.db.commit(batch) } else { Ok(()) };
        let n_events = self.head - head_before;
        match &outcome {
            Ok(()) => {
                if wrote {
                    // Into the tail first: a reader that sees the new head
                    // finds its events there.
                    self.tail
                        .write()
                        .expect("tail lock")
                        .extend(std::mem::take(&mut pending_events));
                    self.durable_head.send_replace(self.head);
                }
            }
            Err(e) => {
                // Whether the batch reached the disk is unknown, so this writer
                // must not hand out positions again: refuse every later append.
                tracing::error!(error = %e, "event log group commit failed; refusing further appends");
                self.failed = Some(e.to_string());
            }
        }
        metrics::counter!("iga_eventlog_appended_events_total").increment(n_events);
        metrics::histogram!("iga_eventlog_group_commit_appends").record(group.len() as f64);
        metrics::histogram!("iga_eventlog_group_commit_seconds")
            .record(started.elapsed().as_secs_f64());
        for (req, plan) in group.drain(..).zip(plans) {
            let answer = match plan {
                Planned::Done(r) => r,
                Planned::Write(r) => match &outcome {
                    Ok(()) => Ok(r),
                    Err(e) => Err(EventLogError::Storage(e.to_string())),
                },
            };
            let _ = req.reply.send(answer);
        }
    }

    /// Checks every part of `req` against the log and the group so far,
    /// then, only if all pass, adds their writes to `batch`: a request is
    /// stored whole or not at all.
    fn plan(
        &mut self,
        req: &AppendRequest,
        heads: &mut HashMap<String, u64>,
        ids: &mut HashMap<String, Position>,
        pending: &mut Vec<(Position, EventEnvelope)>,
        batch: &mut E::Batch,
    ) -> Result<Planned> {
        // Idempotent retry: the ids are stored already (or earlier in this group).
        let mut stored = Vec::with_capacity(req.parts.len());
        for part in &req.parts {
            let mut positions = Vec::with_capacity(part.events.len());
            for e in &part.events {
                let pos = match ids.get(&e.event_id) {
                    Some(p) => Some(*p),
                    None => self
                        .db
                        .get(&id_key(&e.event_id))?
                        .map(|v| be_u64(v.as_ref()))
                        .transpose()?,
                };
                positions.push(pos);
            }
            stored.push(positions);
        }
        if stored.iter().flatten().any(Option::is_some) {
            let results = req
                .parts
                .iter()
                .zip(&stored)
                .map(|(part, positions)| self.original_result(part, positions, pending))
                .collect();
            return Ok(Planned::Done(results));
        }

        // The stream versions this request's earlier parts lead to.
        let mut ahead: HashMap<&str, u64> = HashMap::new();
        let mut currents = Vec::with_capacity(req.parts.len());
        for part in &req.parts {
            let known = ahead
                .get(part.stream.as_str())
                .or_else(|| heads.get(&part.stream));
            let current = match known {
                Some(v) => *v,
                None => self
                    .db
                    .get(&head_key(&part.stream))?
                    .map(|v| be_u64(v.as_ref()))
                    .transpose()?
                    .unwrap_or(0),
            };
            if !part.expected.admits(current) {
                return Ok(Planned::Done(Err(EventLogError::Conflict {
                    stream: part.stream.clone(),
                    expected: part.expected,
                    actual: current,
                })));
            }
            currents.push(current);
            ahead.insert(&part.stream, current + part.events.len() as u64);
        }

        let mut results = Vec::with_capacity(req.parts.len());
        for (part, current) in req.parts.iter().zip(currents) {
            let mut version = current;
            for e in &part.events {
                version += 1;
                self.head += 1;
                let mut env = e.clone();
                env.stream_id = part.stream.clone();
                env.stream_version = version;
                let position = self.head.to_be_bytes();
                self.db
                    .insert(batch, &event_key(self.head), &env.encode_to_vec());
                self.db
                    .insert(batch, &stream_key(&part.stream, version), &position);
                self.db.insert(batch, &id_key(&env.event_id), &position);
                ids.insert(env.event_id.clone(), self.head);
                pending.push((self.head, env));
            }
            self.db
                .insert(batch, &head_key(&part.stream), &version.to_be_bytes());
            heads.insert(part.stream.clone(), version);
            results.push(AppendResult {
                first_version: current + 1,
                last_version: version,
                position: self.head,
            });
        }
        Ok(Planned::Write(results))
    }

    /// The result the original append of these (already stored) events had.
    fn original_result(
        &self,
        part: &StreamAppend,
        stored: &[Option<Position>],
        pending: &[(Position, EventEnvelope)],
    ) -> Result<AppendResult> {
        let mismatch = || EventLogError::IdempotencyMismatch {
            event_id: part.events[0].event_id.clone(),
        };
        let mut found = Vec::with_capacity(stored.len());
        for (e, pos) in part.events.iter().zip(stored) {
            let pos = pos.ok_or_else(mismatch)?;
            let env = match pending.iter().find(|(p, _)| *p == pos) {
                Some((_, env)) => env.clone(),
                None => {
                    let bytes = self.db.get(&event_key(pos))?.ok_or_else(|| {
                        EventLogError::Corrupt(format!(
                            "event {} indexed at missing position {pos}",
                            e.event_id
                        ))
                    })?;
                    EventEnvelope::decode(bytes.as_ref())
                        .map_err(|e| EventLogError::Corrupt(e.to_string()))?
                }
            };
            if env.stream_id != part.stream || env.event_type != e.event_type {
                return Err(mismatch());
            }
            found.push((pos, env.stream_version));
        }
        let contiguous = found.windows(2).all(|w| w[1].1 == w[0].1 + 1);
        if !contiguous {
            return Err(mismatch());
        }
        Ok(AppendResult {
            first_version: found[0].1,
            last_version: found[found.len() - 1].1,
            position: found[found.len() - 1].0,
        })
    }
}

fn read_range<E: Engine>(
    db: &E,
    after: Position,
    durable: Position,
    max: usize,
) -> Result<Vec<RecordedEvent>> {
    if after >= durable || max == 0 {
        return Ok(Vec::new());
    }
    let n = ((durable - after) as usize).min(max);
    let mut out = Vec::with_capacity(n);
    for kv in db.range(&event_key(after + 1), &event_key(durable)).take(n) {
        let (k, v) = kv?;
        out.push(decode_recorded(be_u64(&k.as_ref()[1..])?, v.as_ref())?);
    }
    Ok(out)
}

fn decode_recorded(position: Position, bytes: &[u8]) -> Result<RecordedEvent> {
    let envelope = EventEnvelope::decode(bytes)
        .map_err(|e| EventLogError::Corrupt(format!("position {position}: {e}")))?;
    Ok(RecordedEvent { position, envelope })
}

pub(crate) fn last_position<E: Engine>(db: &E) -> Result<Position> {
    match db.last_key(b"e")? {
        Some(k) => be_u64(&k.as_ref()[1..]),
        None => Ok(0),
    }
}

fn event_key(pos: Position) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = b'e';
    k[1..].copy_from_slice(&pos.to_be_bytes());
    k
}

fn stream_key(stream: &str, version: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(stream.len() + 10);
    k.push(b's');
    k.extend_from_slice(stream.as_bytes());
    k.push(0);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

fn head_key(stream: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(stream.len() + 1);
    k.push(b'h');
    k.extend_from_slice(stream.as_bytes());
    k
}

/// `i` + the id's 16 bytes (ids are validated as UUIDs before they get here).
fn id_key(event_id: &str) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[0] = b'i';
    if let Ok(id) = uuid::Uuid::parse_str(event_id) {
        k[1..].copy_from_slice(id.as_bytes());
    }
    k
}

pub(crate) fn be_u64(bytes: &[u8]) -> Result<u64> {
    let arr: [u8; 8] = bytes
        .try_into()
        .map_err(|_| EventLogError::Corrupt(format!("expected 8 bytes, found {}", bytes.len())))?;
    Ok(u64::from_be_bytes(arr))
}

/// An engine's error, as the log reports it.
pub(crate) fn storage(e: impl std::fmt::Display) -> EventLogError {
    EventLogError::Storage(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed(
        positions: std::ops::RangeInclusive<Position>,
        payload: usize,
    ) -> Vec<(Position, EventEnvelope)> {
        positions
            .map(|p| {
                let mut e = crate::contract::event("test.E", payload);
                e.stream_version = p;
                (p, e)
            })
            .collect()
    }

    fn positions(events: Option<Vec<RecordedEvent>>) -> Option<Vec<Position>> {
        events.map(|es| es.iter().map(|e| e.position).collect())
    }

    #[test]
    fn the_tail_answers_only_reads_it_holds_whole() {
        let mut tail = Tail::default();
        // Given a log whose tail holds positions 11..=20,
        tail.extend(committed(11..=20, 8));
        // a read from 10 on is answered from it, up to the durable head and `max`;
        assert_eq!(positions(tail.read(10, 20, 3)), Some(vec![11, 12, 13]));
        assert_eq!(positions(tail.read(17, 18, 100)), Some(vec![18]));
        assert_eq!(positions(tail.read(20, 20, 100)), Some(vec![]));
        // a read that starts before it is not (the database answers it).
        assert_eq!(positions(tail.read(9, 20, 100)), None);
        assert_eq!(positions(Tail::default().read(0, 20, 100)), None);
    }

    #[test]
    fn the_tail_keeps_the_newest_events_within_its_limits() {
        let mut tail = Tail::default();
        tail.extend(committed(1..=(TAIL_EVENTS as u64 + 5), 8));
        assert_eq!(tail.events.len(), TAIL_EVENTS);
        assert_eq!(tail.events.front().unwrap().0.position, 6);
        assert_eq!(positions(tail.read(5, 10, 100)), Some(vec![6, 7, 8, 9, 10]));
        assert_eq!(tail.read(4, 10, 100).map(|e| e.len()), None);
        // Large events: the byte limit holds, whatever the count.
        let mut tail = Tail::default();
        tail.extend(committed(1..=40, 1024 * 1024));
        assert!(tail.bytes <= TAIL_BYTES, "{} bytes kept", tail.bytes);
        assert!(tail.events.len() < 16);
        assert_eq!(tail.events.back().unwrap().0.position, 40);
    }
}
