//! `--event-log URL`: which event log to use.
//!
//! - absent, `sled:` or `sled`: the embedded log in `<data dir>/eventlog`;
//! - `fjall:` or `fjall`: the embedded log on fjall, in `<data dir>/eventlog-fjall`
//!   (see [`iga_eventlog::fjall_store`]). A data dir keeps the engine it was
//!   created with: its read models were built from that log's positions;
//! - `nats://host:port[,host:port...][?stream=..&prefix=..&replicas=..]`: NATS
//!   JetStream (options in [`iga_eventlog::jetstream::JetStreamConfig::from_url`]);
//! - `kurrentdb://`, `esdb://`, `kdb://` (and `+discover`): KurrentDB
//!   (options in [`iga_eventlog::kurrent::KurrentConfig::from_url`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use iga_eventlog::fjall_store::FjallEventStore;
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
    Fjall(Arc<FjallEventStore>),
}

impl EventLog {
    /// As a trait object for the services.
    pub fn store(&self) -> Arc<dyn EventStore> {
        match self {
            EventLog::Sled(s) => s.clone(),
            EventLog::JetStream(s) => s.clone(),
            EventLog::Kurrent(s) => s.clone(),
            EventLog::Fjall(s) => s.clone(),
        }
    }
    /// The JetStream log, through which instances share reactor work.
    pub fn jetstream(&self) -> Option<JetStreamEventStore> {
        match self {
            EventLog::Sled(_) | EventLog::Kurrent(_) | EventLog::Fjall(_) => None,
            EventLog::JetStream(s) => Some(s.as_ref().clone()),
        }
    }
}

/// Opens the event log named by `url`.
pub async fn open(url: Option<&str>, data_dir: &Path, limits: Limits) -> Result<EventLog> {
    match url.map(str::trim) {
        None | Some("") | Some("sled:") | Some("sled") => {
            let path = embedded_path(data_dir, SLED_DIR, (FJALL_DIR, "fjall:"))?;
            let store = SledEventStore::open(&path, limits).map_err(|e| busy(&path, e))?;
            Ok(EventLog::Sled(Arc::new(store)))
        }
        Some("fjall:") | Some("fjall") => {
            let path = embedded_path(data_dir, FJALL_DIR, (SLED_DIR, "sled:"))?;
            let store = FjallEventStore::open(&path, limits).map_err(|e| busy(&path, e))?;
            Ok(EventLog::Fjall(Arc::new(store)))
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
            "event log {other:?}: unknown scheme; use sled:, fjall:, nats://HOST:PORT, kurrentdb://... or esdb://..."
        )
        .into()),
    }
}

/// Where each embedded engine keeps the log in a data dir.
const SLED_DIR: &str = "eventlog";
const FJALL_DIR: &str = "eventlog-fjall";

/// Where an embedded log on one engine lives in `data_dir` (`own_dir`).
/// Refuses a data dir whose embedded log is on the other engine (`other`:
/// its dir and URL): its read models hold positions of that log, not of a
/// new empty one.
fn embedded_path(data_dir: &Path, own_dir: &str, other: (&str, &str)) -> Result<PathBuf> {
    let (other_dir, other_url) = other;
    let other = data_dir.join(other_dir);
    if other.exists() {
        return Err(format!(
            "the data dir {} holds its event log in {}; open it with --event-log {other_url} \
             (a data dir keeps the engine it was created with)",
            data_dir.display(),
            other.display()
        )
        .into());
    }
    Ok(data_dir.join(own_dir))
}

/// An embedded log that would not open: most often another process has it.
fn busy(path: &Path, e: iga_eventlog::EventLogError) -> String {
    format!(
        "event log {}: {e} (is another iga process using this data dir?)",
        path.display()
    )
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
