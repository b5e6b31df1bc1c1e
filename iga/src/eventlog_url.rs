//! `--event-log URL`: which event log to use.
//!
//! - absent, `sled:` or `sled`: the embedded log in `<data dir>/eventlog`;
//! - `nats://host:port[,host:port...][?stream=..&prefix=..&replicas=..]`: NATS
//!   JetStream (options in [`iga_eventlog::jetstream::JetStreamConfig::from_url`]);
//! - `kurrentdb://`, `esdb://`, `kdb://` (and `+discover`): KurrentDB
//!   (options in [`iga_eventlog::kurrent::KurrentConfig::from_url`]).

use std::path::Path;
use std::sync::Arc;

use iga_eventlog::jetstream::{JetStreamConfig, JetStreamEventStore};
use iga_eventlog::kurrent::{KurrentConfig, KurrentEventStore};
use iga_eventlog::sled_store::SledEventStore;
use iga_eventlog::{EventStore, Limits};

use crate::cli::anyhow_like::Result;

/// An opened event log, whichever backend.
pub enum EventLog {
    Sled(Arc<SledEventStore>),
    JetStream(Arc<JetStreamEventStore>),
    Kurrent(Arc<KurrentEventStore>),
}

impl EventLog {
    /// As a trait object for the services.
    pub fn store(&self) -> Arc<dyn EventStore> {
        match self {
            EventLog::Sled(s) => s.clone(),
            EventLog::JetStream(s) => s.clone(),
            EventLog::Kurrent(s) => s.clone(),
        }
    }
    /// The JetStream log, through which instances share reactor work.
    pub fn jetstream(&self) -> Option<JetStreamEventStore> {
        match self {
            EventLog::Sled(_) | EventLog::Kurrent(_) => None,
            EventLog::JetStream(s) => Some(s.as_ref().clone()),
        }
    }
}

/// Opens the event log named by `url`.
pub async fn open(url: Option<&str>, data_dir: &Path, limits: Limits) -> Result<EventLog> {
    match url.map(str::trim) {
        None | Some("") | Some("sled:") | Some("sled") => {
            let path = data_dir.join("eventlog");
            let store = SledEventStore::open(&path, limits).map_err(|e| {
                format!(
                    "event log {}: {e} (is another iga process using this data dir?)",
                    path.display()
                )
            })?;
            Ok(EventLog::Sled(Arc::new(store)))
        }
        Some(url) if url.starts_with("nats://") => {
            let config = JetStreamConfig::from_url(url)?;
            let name = config.describe();
            let store = JetStreamEventStore::connect(config, limits)
                .await
                .map_err(|e| format!("event log {name}: {e}"))?;
            Ok(EventLog::JetStream(Arc::new(store)))
        }
        Some(url) if is_kurrentdb(url) => {
            let config = KurrentConfig::from_url(url)?;
            let name = config.describe();
            let store = KurrentEventStore::connect(config, limits)
                .await
                .map_err(|e| format!("event log {name}: {e}"))?;
            Ok(EventLog::Kurrent(Arc::new(store)))
        }
        Some(other) => Err(format!(
            "event log {other:?}: unknown scheme; use sled:, nats://HOST:PORT, kurrentdb://... or esdb://..."
        )
        .into()),
    }
}

/// KurrentDB's connection string schemes.
fn is_kurrentdb(url: &str) -> bool {
    [
        "kurrentdb",
        "kurrentdb+discover",
        "esdb",
        "esdb+discover",
        "kdb",
        "kdb+discover",
    ]
    .iter()
    .any(|scheme| {
        url.strip_prefix(scheme)
            .is_some_and(|rest| rest.starts_with("://"))
    })
}
