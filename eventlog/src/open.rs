//! [`open`]: the event log a URL names (`--event-log URL`), whichever
//! backend, as an [`EventLog`]: the [`EventStore`] the services use, the
//! [`WorkSharing`] reactors use when the log has it, and the embedded log's
//! own check. Nothing outside this crate names a backend type.
//!
//! - absent: the embedded log, on the engine the data dir already holds, or
//!   on fjall for a new data dir;
//! - `fjall:` or `fjall`: the embedded log on fjall, in `<data dir>/eventlog-fjall`
//!   (see [`crate::fjall_store`]);
//! - `sled:` or `sled`: the embedded log on sled, in `<data dir>/eventlog`
//!   (the default before fjall). A data dir keeps the engine it was created
//!   with (its read models were built from that log's positions) until
//!   `iga migrate` ([`crate::migrate`]) moves it;
//! - `nats://host:port[,host:port...][?stream=..&prefix=..&replicas=..]`: NATS
//!   JetStream (options in [`crate::jetstream::JetStreamConfig::from_url`]);
//! - `kurrentdb://`, `esdb://`, `kdb://` (and `+discover`): KurrentDB
//!   (options in [`crate::kurrent::KurrentConfig::from_url`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::{EventStore, Limits, WorkSharing};

/// Why a log would not open, in words for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OpenError(String);

impl From<String> for OpenError {
    fn from(s: String) -> Self {
        OpenError(s)
    }
}

type Result<T> = std::result::Result<T, OpenError>;

/// An opened event log, whichever backend.
pub struct EventLog {
    store: Arc<dyn EventStore>,
    sharing: Option<Arc<dyn WorkSharing>>,
    /// The embedded log's own check (`iga verify`).
    verify: Option<Box<dyn Fn() -> crate::Result<u64> + Send + Sync>>,
}

impl EventLog {
    /// As a trait object for the services.
    pub fn store(&self) -> Arc<dyn EventStore> {
        self.store.clone()
    }

    /// How instances share reactor work through this log, if it can.
    pub fn work_sharing(&self) -> Option<Arc<dyn WorkSharing>> {
        self.sharing.clone()
    }

    /// Checks an embedded log (positions contiguous, indexes consistent) and
    /// answers how many events it holds; `None` for a log checked by its own
    /// servers.
    pub fn verify(&self) -> Option<crate::Result<u64>> {
        self.verify.as_ref().map(|check| check())
    }
}

/// Opens the event log named by `url`.
pub async fn open(url: Option<&str>, data_dir: &Path, limits: Limits) -> Result<EventLog> {
    match url.map(str::trim) {
        None | Some("") => match (
            data_dir.join(SLED_DIR).exists(),
            data_dir.join(FJALL_DIR).exists(),
        ) {
            (true, false) => open_sled(data_dir, limits),
            _ if cfg!(feature = "fjall") => open_fjall(data_dir, limits),
            // A build without fjall (cargo features) keeps the older default.
            _ => open_sled(data_dir, limits),
        },
        Some("sled:") | Some("sled") => open_sled(data_dir, limits),
        Some("fjall:") | Some("fjall") => open_fjall(data_dir, limits),
        Some(url) if url.starts_with("nats://") => open_nats(url, limits).await,
        Some(url) if is_kurrentdb(url) => open_kurrent(url, limits).await,
        Some(other) => Err(format!(
            "event log {other:?}: unknown scheme; use sled:, fjall:, nats://HOST:PORT, kurrentdb://... or esdb://..."
        )
        .into()),
    }
}

#[cfg(feature = "sled")]
fn open_sled(data_dir: &Path, limits: Limits) -> Result<EventLog> {
    let path = embedded_path(data_dir, SLED_DIR, (FJALL_DIR, "fjall:"))?;
    let store = Arc::new(
        crate::sled_store::SledEventStore::open(&path, limits).map_err(|e| busy(&path, e))?,
    );
    let check = store.clone();
    Ok(EventLog {
        store,
        sharing: None,
        verify: Some(Box::new(move || check.verify())),
    })
}

#[cfg(not(feature = "sled"))]
fn open_sled(_: &Path, _: Limits) -> Result<EventLog> {
    Err(not_built("sled:", "sled"))
}

#[cfg(feature = "fjall")]
fn open_fjall(data_dir: &Path, limits: Limits) -> Result<EventLog> {
    let path = embedded_path(data_dir, FJALL_DIR, (SLED_DIR, "sled:"))?;
    let store = Arc::new(
        crate::fjall_store::FjallEventStore::open(&path, limits).map_err(|e| busy(&path, e))?,
    );
    let check = store.clone();
    Ok(EventLog {
        store,
        sharing: None,
        verify: Some(Box::new(move || check.verify())),
    })
}

#[cfg(not(feature = "fjall"))]
fn open_fjall(_: &Path, _: Limits) -> Result<EventLog> {
    Err(not_built("fjall:", "fjall"))
}

#[cfg(feature = "nats")]
async fn open_nats(url: &str, limits: Limits) -> Result<EventLog> {
    use crate::jetstream::{JetStreamConfig, JetStreamEventStore};
    let config = JetStreamConfig::from_url(url).map_err(|e| OpenError(e.to_string()))?;
    let name = config.describe();
    let store = Arc::new(
        JetStreamEventStore::connect(config, limits)
            .await
            .map_err(|e| format!("event log {name}: {e}"))?,
    );
    Ok(EventLog {
        store: store.clone(),
        sharing: Some(store),
        verify: None,
    })
}

#[cfg(not(feature = "nats"))]
async fn open_nats(_: &str, _: Limits) -> Result<EventLog> {
    Err(not_built("nats://", "nats"))
}

#[cfg(feature = "kurrent")]
async fn open_kurrent(url: &str, limits: Limits) -> Result<EventLog> {
    use crate::kurrent::{KurrentConfig, KurrentEventStore};
    let config = KurrentConfig::from_url(url).map_err(|e| OpenError(e.to_string()))?;
    let name = config.describe();
    let store = KurrentEventStore::connect(config, limits)
        .await
        .map_err(|e| format!("event log {name}: {e}"))?;
    Ok(EventLog {
        store: Arc::new(store),
        sharing: None,
        verify: None,
    })
}

#[cfg(not(feature = "kurrent"))]
async fn open_kurrent(_: &str, _: Limits) -> Result<EventLog> {
    Err(not_built("kurrentdb://", "kurrent"))
}

/// A backend this build left out.
#[allow(dead_code)]
fn not_built(scheme: &str, feature: &str) -> OpenError {
    OpenError(format!(
        "event log {scheme}: this build of iga-eventlog leaves it out (cargo feature `{feature}`)"
    ))
}

/// Where each embedded engine keeps the log in a data dir.
pub(crate) const SLED_DIR: &str = "eventlog";
pub(crate) const FJALL_DIR: &str = "eventlog-fjall";

/// Where an embedded log on one engine lives in `data_dir` (`own_dir`).
/// Refuses a data dir whose embedded log is on the other engine (`other`:
/// its dir and URL): its read models hold positions of that log, not of a
/// new empty one. Refuses one holding both (an interrupted migration).
#[allow(dead_code)]
fn embedded_path(data_dir: &Path, own_dir: &str, other: (&str, &str)) -> Result<PathBuf> {
    let (other_dir, other_url) = other;
    let other = data_dir.join(other_dir);
    if other.exists() {
        #[cfg(all(feature = "sled", feature = "fjall"))]
        if data_dir.join(own_dir).exists() {
            return Err(crate::migrate::unfinished(data_dir));
        }
        let own = own_dir.strip_prefix("eventlog-").unwrap_or("sled");
        return Err(format!(
            "the data dir {} holds its event log in {}; open it with --event-log {other_url} \
             (a data dir keeps the engine it was created with), or move it with \
             `iga migrate --to {own}`",
            data_dir.display(),
            other.display()
        )
        .into());
    }
    Ok(data_dir.join(own_dir))
}

/// An embedded log that would not open: most often another process has it.
#[allow(dead_code)]
pub(crate) fn busy(path: &Path, e: crate::EventLogError) -> String {
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
