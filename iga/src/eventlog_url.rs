//! `--event-log URL`: which event log to use.
//!
//! - absent, `sled:` or `sled`: the embedded log in `<data dir>/eventlog`;
//! - `nats://host:port[,host:port...][?stream=..&prefix=..&replicas=..]`: NATS
//!   JetStream (options in [`iga_eventlog::jetstream::JetStreamConfig::from_url`]);
//! - `kurrentdb://` / `esdb://`: refused until that backend lands.

use std::path::Path;
use std::sync::Arc;

use iga_eventlog::jetstream::{JetStreamConfig, JetStreamEventStore};
use iga_eventlog::sled_store::SledEventStore;
use iga_eventlog::{EventStore, Limits};

use crate::cli::anyhow_like::Result;

/// An opened event log, whichever backend.
pub enum EventLog {
    Sled(Arc<SledEventStore>),
    JetStream(Arc<JetStreamEventStore>),
}

impl EventLog {
    /// As a trait object for the services.
    pub fn store(&self) -> Arc<dyn EventStore> {
        match self {
            EventLog::Sled(s) => s.clone(),
            EventLog::JetStream(s) => s.clone(),
        }
    }
    /// The JetStream log, through which instances share reactor work.
    pub fn jetstream(&self) -> Option<JetStreamEventStore> {
        match self {
            EventLog::Sled(_) => None,
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
        Some(other) if other.starts_with("kurrentdb://") || other.starts_with("esdb://") => Err(format!(
            "event log {other}: this build has no KurrentDB backend yet; use sled: or nats://"
        )
        .into()),
        Some(other) => Err(format!(
            "event log {other:?}: unknown scheme; use sled:, nats://HOST:PORT, kurrentdb://... or esdb://..."
        )
        .into()),
    }
}
