//! The read side's engine: the projection runner and the read models it
//! builds in fjall ([`store`]), reached from outside only through typed
//! queries (key layouts, encodings and the store stay in this crate).
//!
//! A [`Projection`] turns events into key/value writes on its own tree.
//! The [`runner::ProjectionRunner`] feeds it events in batches from a log
//! subscription and commits each batch's writes *and* the projections'
//! checkpoints in one atomic batch, so after any crash a read model is
//! exactly the fold of the events up to its checkpoint. Read models are
//! disposable: [`runner::rebuild`] replays the log from position 0 into fresh
//! trees and switches to them.

pub mod apps;
pub mod audit_tree;
pub mod catalog;
pub mod entitlements;
pub mod grants;
pub mod history;
pub mod merkle;
pub mod policies;
pub mod provisioning;
pub mod queries;
pub mod requests;
pub mod reviews;
pub mod runner;
pub mod staged;
pub mod store;
pub mod timers;
pub mod tree_head;
pub mod users;
pub mod webhooks;

pub use runner::{ProjectionRunner, ReactorCheckpoint, ReadModels};
pub use staged::Staged;

use iga_eventlog::RecordedEvent;
use iga_schemas::DomainEvent;

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("read model storage: {0}")]
    Storage(#[from] fjall::Error),
    #[error("read model storage: {0}")]
    Io(#[source] std::io::Error),
    #[error("event log: {0}")]
    EventLog(#[from] iga_eventlog::EventLogError),
    #[error("event at position {position} cannot be decoded: {source}")]
    Decode {
        position: u64,
        #[source]
        source: iga_schemas::DecodeError,
    },
    #[error("read model value is corrupt: {0}")]
    Corrupt(String),
}

pub type Result<T, E = ProjectionError> = std::result::Result<T, E>;

pub use iga_api::ObjectMeta;

/// A batch's writes to one tree, in key order: `(key, Some(value))` to put,
/// `(key, None)` to remove.
pub type Writes = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// A read model built from events.
pub trait Projection: Send + Sync + 'static {
    /// Stable name; also names its tree and its checkpoint.
    fn name(&self) -> &'static str;

    /// Stage the writes `event` causes. Must be deterministic: the same events
    /// must always produce the same writes (rebuilds depend on it).
    fn apply(
        &self,
        event: &RecordedEvent,
        decoded: &DomainEvent,
        tx: &mut Staged<'_>,
    ) -> Result<()>;

    /// The version of the projection's key layout. A read model stored with
    /// another layout is replaced by a fresh one, filled from position 0 as
    /// the runner catches up (the other read models keep their checkpoints).
    /// Raise it when what `apply` stores changes so that queries would
    /// misread a read model built by an older version.
    fn layout(&self) -> u32 {
        1
    }

    /// Called once the live tree is opened, to load whatever the projection
    /// keeps in memory beside it (the catalog search index).
    fn opened(&self, _tree: &crate::store::Tree) -> Result<()> {
        Ok(())
    }

    /// Called with each batch's writes to the live tree once they are
    /// committed, in commit order and before the read models announce the
    /// batch's position, so in-memory state follows the tree exactly.
    /// Rebuilds into fresh trees do not call it.
    fn committed(&self, _writes: &Writes) {}
}
