//! Process managers: consumers of the log that act (issue commands, publish)
//! rather than build read models. [`fulfilment`] finishes what a decision
//! leads to, [`timers`] acts when a date passes, [`publishing`] relays every
//! event downstream, [`provisioning`] opens and closes provisioning tasks, [`reviews`] opens
//! an access review's items, applies its `onDue` and ends revoked grants,
//! [`subscriptions`] delivers events to webhooks, [`delivery`] makes
//! every webhook call, and [`notary`] signs checkpoints of the log's Merkle tree.
//! [`ReactorRunner`] feeds each one from its checkpoint, alone or sharing
//! the work with other instances through the log's [`iga_eventlog::WorkSharing`].
//!
//! Reactors reach the read models only through projection-service's typed
//! queries, and change state only through command-service's commands.

pub mod delivery;
pub mod fulfilment;
pub mod notary;
pub mod provisioning;
pub mod publishing;
pub mod reviews;
mod runner;
pub mod subscriptions;
pub mod timers;
pub mod webhooks;

pub use runner::{Reactor, ReactorRunner};

#[derive(Debug, thiserror::Error)]
pub enum ReactorError {
    #[error("read models: {0}")]
    ReadModels(#[from] projection_service::ProjectionError),
    #[error("event log: {0}")]
    EventLog(#[from] iga_eventlog::EventLogError),
    #[error("event at position {position} cannot be decoded: {source}")]
    Decode {
        position: u64,
        #[source]
        source: iga_schemas::DecodeError,
    },
}

pub type Result<T, E = ReactorError> = std::result::Result<T, E>;
