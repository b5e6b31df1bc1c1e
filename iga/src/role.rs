//! What one process does ([`Role`]) and what its `/readyz` looks at
//! ([`Health`]): shared by the start-up (`serve`) and the router (`http`).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use iga_eventlog::EventStore;
use projection_service::catalog::SearchIndex;
use projection_service::ReadModels;

/// Shared by the HTTP layer: what `/readyz` looks at.
pub struct Health {
    pub store: Arc<dyn EventStore>,
    pub models: Arc<ReadModels>,
    /// The catalog search index, kept current by the `catalog` projection.
    pub search: Arc<SearchIndex>,
    /// Set once the read models caught up with the log at start-up.
    pub caught_up: AtomicBool,
    /// Cleared if the projection runner stops.
    pub runner_alive: AtomicBool,
}

/// What one process does. `iga serve` does everything; the distributed
/// deployment runs one role per process (`command-service`, `query-service`,
/// `projection-service`), all on the same event log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    All,
    /// The write API. Its read models (tokens, references) are temporary
    /// unless it is given a data dir of its own.
    Commands,
    /// The read API over its own read replica.
    Queries,
    /// Fulfilment, timers and publishing; HTTP only for health and metrics.
    Reactors,
}

impl Role {
    pub fn serves_writes(self) -> bool {
        matches!(self, Role::All | Role::Commands)
    }
    pub fn serves_reads(self) -> bool {
        matches!(self, Role::All | Role::Queries)
    }
    pub fn runs_reactors(self) -> bool {
        matches!(self, Role::All | Role::Reactors)
    }
}
