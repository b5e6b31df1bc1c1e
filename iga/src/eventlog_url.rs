//! `--event-log URL`: which event log to use.

use std::path::Path;
use std::sync::Arc;

use iga_eventlog::sled_store::SledEventStore;
use iga_eventlog::{EventStore, Limits};

use crate::cli::anyhow_like::Result;

/// Opens the event log named by `url` (absent or `sled:` for the embedded one
/// under `data_dir`).
pub fn open(url: Option<&str>, data_dir: &Path, limits: Limits) -> Result<Arc<SledEventStore>> {
    match url.map(str::trim) {
        None | Some("") | Some("sled:") | Some("sled") => {
            let path = data_dir.join("eventlog");
            let store = SledEventStore::open(&path, limits).map_err(|e| {
                format!("event log {}: {e} (is another iga process using this data dir?)", path.display())
            })?;
            Ok(Arc::new(store))
        }
        Some(other) if other.starts_with("nats://") || other.starts_with("kurrentdb://") || other.starts_with("esdb://") => Err(format!(
            "event log {other}: this build runs on the embedded sled log only; NATS JetStream and KurrentDB backends are not built yet"
        )
        .into()),
        Some(other) => Err(format!(
            "event log {other:?}: unknown scheme; use sled:, nats://HOST:PORT, kurrentdb://... or esdb://..."
        )
        .into()),
    }
}

/// As a trait object for the services.
pub fn as_dyn(store: &Arc<SledEventStore>) -> Arc<dyn EventStore> {
    store.clone()
}
