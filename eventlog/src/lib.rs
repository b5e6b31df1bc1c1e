//! The event log: the [`EventStore`] trait every backend implements, and the
//! backends, each behind a cargo feature (all on by default): the embedded
//! log (`embedded::EmbeddedLog` on fjall, `fjall`, the default, or on sled,
//! `sled`, the engine of data dirs created before fjall; `migrate` moves a
//! log between them), NATS JetStream (`nats`, with downstream publishing and the
//! [`WorkSharing`] reactors use across instances) and KurrentDB (`kurrent`).
//! [`open`] turns an event-log URL into an [`EventLog`]; nothing outside this
//! crate names a backend type. The `test-support` feature adds the
//! `contract` suite every backend must pass and `nats_server`, which starts
//! real `nats-server` processes for tests and benchmarks.
//!
//! The trait is shaped by what all three production logs can do natively:
//!
//! - **Streams** are per aggregate (`user-<id>`, `app-<id>`), versioned from 1.
//!   An append names the version it expects ([`ExpectedVersion`]), which is
//!   KurrentDB's expected revision and JetStream's expected-last-subject-sequence.
//! - **Positions** are global, increasing and unique (embedded: a counter;
//!   JetStream: the stream sequence; KurrentDB: the `$all` commit position).
//!   They need not be contiguous. Position 0 means "before the first event".
//! - **Idempotency** is by event id: appending events whose ids are already
//!   stored returns the original [`AppendResult`] and stores nothing.
//! - **Subscriptions** start after a position, catch up, then go live, with no
//!   gap and no duplicate at the switch.
//!
//! One capability is optional: [`EventStore::append_streams`], an append to
//! several streams that is stored whole or not at all. The embedded log does
//! it in one group commit, JetStream in one atomic batch across subjects
//! (each stream's first message names the sequence it must be at). KurrentDB
//! answers `false` to [`EventStore::appends_streams_atomically`]: the
//! `kurrentdb` client does not expose its multi-stream append.

#[cfg(feature = "test-support")]
pub mod contract;
#[cfg(any(feature = "sled", feature = "fjall"))]
pub mod embedded;
#[cfg(feature = "fjall")]
pub mod fjall_store;
#[cfg(feature = "nats")]
pub mod jetstream;
#[cfg(feature = "kurrent")]
pub mod kurrent;
#[cfg(all(feature = "sled", feature = "fjall"))]
pub mod migrate;
#[cfg(all(feature = "test-support", feature = "nats"))]
pub mod nats_server;
mod open;
#[cfg(feature = "nats")]
pub mod publish;
#[cfg(feature = "sled")]
pub mod sled_store;
pub mod work;

pub use open::{open, EventLog, OpenError};

/// An embedded log in a temporary place, removed when dropped: for tests.
#[cfg(all(feature = "test-support", feature = "sled"))]
pub fn temporary_log(limits: Limits) -> Result<std::sync::Arc<dyn EventStore>> {
    Ok(std::sync::Arc::new(
        sled_store::SledEventStore::open_temporary(limits)?,
    ))
}
pub use work::{Sharing, WorkSharing};

use futures::stream::BoxStream;
pub use iga_schemas::EventEnvelope;

/// A global position in the log. 0 is before the first event.
pub type Position = u64;

/// What the appender believes the stream's current version to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Append whatever the stream holds.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last event must have exactly this version (1-based).
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream at `version` (0: no stream) is what this expects.
    pub fn admits(self, version: u64) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => version == 0,
            ExpectedVersion::Exact(v) => v == version,
        }
    }
}

impl std::fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpectedVersion::Any => write!(f, "any"),
            ExpectedVersion::NoStream => write!(f, "no stream"),
            ExpectedVersion::Exact(v) => write!(f, "version {v}"),
        }
    }
}

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    /// Stream version of the first event written.
    pub first_version: u64,
    /// Stream version of the last event written: the stream's new version.
    pub last_version: u64,
    /// Global position of the last event written: the consistency token.
    pub position: Position,
}

/// One stream's part of an append to several streams at once
/// ([`EventStore::append_streams`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamAppend {
    pub stream: String,
    pub expected: ExpectedVersion,
    pub events: Vec<EventEnvelope>,
}

/// An event as recorded in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    pub position: Position,
    pub envelope: EventEnvelope,
}

/// Limits every backend enforces before writing anything.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest encoded envelope accepted, in bytes.
    pub max_event_bytes: usize,
    /// Most events accepted in one append.
    pub max_events_per_append: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_event_bytes: 1024 * 1024,
            max_events_per_append: 1000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EventLogError {
    #[error("stream {stream} is at version {actual}, the append expected {expected}")]
    Conflict {
        stream: String,
        expected: ExpectedVersion,
        actual: u64,
    },
    #[error("event {event_id} is {size} bytes encoded, over the limit of {limit} bytes")]
    EventTooLarge {
        event_id: String,
        size: usize,
        limit: usize,
    },
    #[error("invalid append: {0}")]
    InvalidAppend(String),
    #[error("event {event_id} is already stored, but the retried append does not match the original one")]
    IdempotencyMismatch { event_id: String },
    #[error("event log unavailable: {0}")]
    Unavailable(String),
    #[error("event log storage error: {0}")]
    Storage(String),
    #[error("event log data is corrupt: {0}")]
    Corrupt(String),
}

pub type Result<T, E = EventLogError> = std::result::Result<T, E>;

/// A live stream of recorded events in position order.
pub type Subscription = BoxStream<'static, Result<RecordedEvent>>;

/// The event log. Implementations are cheap to share behind an `Arc`.
#[async_trait::async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends `events` to `stream` atomically if the stream is at `expected`.
    ///
    /// The log fills in each envelope's `stream_id` and `stream_version`.
    /// If every event id is already stored (a retry), returns the original
    /// result and stores nothing, whatever `expected` says.
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<EventEnvelope>,
    ) -> Result<AppendResult>;

    /// Up to `max` events of `stream` with version >= `from_version`, in order.
    /// A stream that does not exist is empty.
    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>>;

    /// Up to `max` events with position > `after`, in position order.
    async fn read_all(&self, after: Position, max: usize) -> Result<Vec<RecordedEvent>>;

    /// Every event with position > `after`: the backlog, then live events as
    /// they are recorded.
    async fn subscribe(&self, after: Position) -> Result<Subscription>;

    /// The position of the last recorded event (0 if the log is empty).
    async fn head(&self) -> Result<Position>;

    /// A short name for logs and errors, e.g. `sled:/var/lib/iga/eventlog`.
    fn describe(&self) -> String;

    /// Whether an append whose event ids are stored in *another* stream is
    /// refused (`IdempotencyMismatch`). KurrentDB keeps no global index of
    /// event ids, so it only checks within the stream.
    fn checks_ids_across_streams(&self) -> bool {
        true
    }

    /// Whether [`EventStore::append_streams`] is available. sled and
    /// JetStream have it; on KurrentDB a caller appends part by part (and a
    /// reactor finishes what a crash between the parts left undone).
    fn appends_streams_atomically(&self) -> bool {
        false
    }

    /// Appends to several streams as one: every part is stored, at
    /// consecutive positions in the order given, or none is. Each part is
    /// checked as [`EventStore::append`] checks it (its expected version,
    /// limits, ids), and the first part that fails fails the whole with its
    /// error. A stream may have several parts; a later one's expected
    /// version counts the earlier ones' events. If every event of every part is stored already (a retry), the
    /// original results are answered and nothing is stored. Answers one
    /// result per part, in order.
    async fn append_streams(&self, parts: Vec<StreamAppend>) -> Result<Vec<AppendResult>> {
        let _ = parts;
        Err(EventLogError::InvalidAppend(format!(
            "{} cannot append to several streams at once",
            self.describe()
        )))
    }
}

/// Checks a multi-stream append: at least one part, each part valid on its
/// own, no event id twice, at most `limits.max_events_per_append` events in
/// all.
pub fn validate_append_streams(parts: &[StreamAppend], limits: &Limits) -> Result<()> {
    if parts.is_empty() {
        return Err(EventLogError::InvalidAppend(
            "an append needs at least one stream".into(),
        ));
    }
    let mut ids = std::collections::HashSet::new();
    let mut total = 0;
    for part in parts {
        validate_append(&part.stream, &part.events, limits)?;
        for e in &part.events {
            if !ids.insert(e.event_id.as_str()) {
                return Err(EventLogError::InvalidAppend(format!(
                    "event id {} appears twice in one append",
                    e.event_id
                )));
            }
        }
        total += part.events.len();
    }
    if total > limits.max_events_per_append {
        return Err(EventLogError::InvalidAppend(format!(
            "{total} events in one append, over the limit of {}",
            limits.max_events_per_append
        )));
    }
    Ok(())
}

/// Checks a stream id: 1 to 200 bytes of ASCII letters, digits, `_` and `-`.
/// Those survive as a NATS subject token and a KurrentDB stream name alike.
pub fn validate_stream_id(stream: &str) -> Result<()> {
    let ok = !stream.is_empty()
        && stream.len() <= 200
        && stream
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(EventLogError::InvalidAppend(format!(
            "stream id {stream:?} must be 1 to 200 characters of letters, digits, '_' and '-'"
        )))
    }
}

/// Checks an append against `limits` before anything is written.
pub fn validate_append(stream: &str, events: &[EventEnvelope], limits: &Limits) -> Result<()> {
    use prost::Message;
    validate_stream_id(stream)?;
    if events.is_empty() {
        return Err(EventLogError::InvalidAppend(
            "an append needs at least one event".into(),
        ));
    }
    if events.len() > limits.max_events_per_append {
        return Err(EventLogError::InvalidAppend(format!(
            "{} events in one append, over the limit of {}",
            events.len(),
            limits.max_events_per_append
        )));
    }
    let mut seen = std::collections::HashSet::new();
    for e in events {
        if uuid::Uuid::parse_str(&e.event_id).is_err() {
            return Err(EventLogError::InvalidAppend(format!(
                "event id {:?} is not a UUID",
                e.event_id
            )));
        }
        if !seen.insert(e.event_id.as_str()) {
            return Err(EventLogError::InvalidAppend(format!(
                "event id {} appears twice in one append",
                e.event_id
            )));
        }
        // Stream id and version are filled in by the log; count them at their final size.
        let size = e.encoded_len() + stream.len() + 16;
        if size > limits.max_event_bytes {
            return Err(EventLogError::EventTooLarge {
                event_id: e.event_id.clone(),
                size,
                limit: limits.max_event_bytes,
            });
        }
    }
    Ok(())
}

/// Whether `events` (an append) are already stored among `recorded` (the
/// whole stream): the original result if all are, in order (a retry);
/// `IdempotencyMismatch` if only some are, or in another order or form;
/// `None` if none is. (The remote logs' way; the embedded log knows its ids.)
#[cfg(any(feature = "nats", feature = "kurrent"))]
pub(crate) fn retry_of(
    recorded: &[RecordedEvent],
    events: &[EventEnvelope],
) -> Result<Option<AppendResult>> {
    let mismatch = || EventLogError::IdempotencyMismatch {
        event_id: events[0].event_id.clone(),
    };
    let ids: std::collections::HashSet<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    let Some(start) = recorded
        .iter()
        .position(|r| r.envelope.event_id == events[0].event_id)
    else {
        if recorded
            .iter()
            .any(|r| ids.contains(r.envelope.event_id.as_str()))
        {
            return Err(mismatch());
        }
        return Ok(None);
    };
    let found = &recorded[start..];
    if found.len() < events.len()
        || events.iter().zip(found).any(|(e, r)| {
            e.event_id != r.envelope.event_id || e.event_type != r.envelope.event_type
        })
    {
        return Err(mismatch());
    }
    let last = &found[events.len() - 1];
    Ok(Some(AppendResult {
        first_version: found[0].envelope.stream_version,
        last_version: last.envelope.stream_version,
        position: last.position,
    }))
}
