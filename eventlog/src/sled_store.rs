//! The embedded log on sled 0.34: the default before fjall, still opened
//! for data dirs created on it (`--event-log sled:`, or no flag when the
//! data dir holds `eventlog/`); `iga migrate --to fjall` moves such a log.
//! The log itself is [`EmbeddedLog`]; this is the engine.
//!
//! A group commit is one `apply_batch` and one `flush`. sled flushes with
//! `sync_file_range`: a process crash loses nothing acknowledged, a power
//! loss may. sled 0.34 also takes a process-wide lock for every batch
//! (ARCHITECTURE.md, "What sled imposes").

use std::path::Path;

use crate::embedded::{storage, EmbeddedLog, Engine, Entries};
use crate::{EventLogError, Limits, Result};

/// The embedded log on sled.
pub type SledEventStore = EmbeddedLog<Sled>;

/// The sled [`Engine`]: one database, its default tree.
#[derive(Clone)]
pub struct Sled(sled::Db);

impl EmbeddedLog<Sled> {
    /// Opens (or creates) the log in directory `path`.
    pub fn open(path: impl AsRef<Path>, limits: Limits) -> Result<Self> {
        Self::open_with(sled::Config::new().path(path.as_ref()), limits)
    }

    /// A log in a temporary directory that is removed when the store is dropped.
    pub fn open_temporary(limits: Limits) -> Result<Self> {
        Self::open_with(sled::Config::new().temporary(true), limits)
    }

    fn open_with(config: sled::Config, limits: Limits) -> Result<Self> {
        let path = config.path.clone();
        let config = config.cache_capacity(256 * 1024 * 1024);
        // sled releases its file lock from its I/O threads a moment after the
        // last handle is dropped, so reopening in the same process (a restart,
        // a rebuild, a verify then serve) can find it still held. Wait for it
        // a bounded while; a lock another process holds still fails (see `open`).
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        let db = loop {
            match config.open() {
                Ok(db) => break db,
                Err(e) if is_lock_held(&e) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => {
                    return Err(EventLogError::Unavailable(format!(
                        "cannot open sled event log at {}: {e}",
                        path.display()
                    )));
                }
            }
        };
        Self::start(Sled(db), path, limits)
    }
}

/// How long opening waits for a file lock this or another process still holds.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether sled refused to open because the directory's file lock is held.
fn is_lock_held(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.to_string().starts_with("could not acquire lock"))
}

impl Engine for Sled {
    type Bytes = sled::IVec;
    type Batch = sled::Batch;
    const NAME: &'static str = "sled";

    fn get(&self, key: &[u8]) -> Result<Option<sled::IVec>> {
        self.0.get(key).map_err(storage)
    }

    fn range(&self, from: &[u8], to: &[u8]) -> Entries<'_, sled::IVec> {
        Box::new(self.0.range(from..=to).map(|kv| kv.map_err(storage)))
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Entries<'_, sled::IVec> {
        Box::new(self.0.scan_prefix(prefix).map(|kv| kv.map_err(storage)))
    }

    fn last_key(&self, prefix: &[u8]) -> Result<Option<sled::IVec>> {
        self.0
            .scan_prefix(prefix)
            .next_back()
            .transpose()
            .map(|kv| kv.map(|(k, _)| k))
            .map_err(storage)
    }

    fn batch(&self) -> sled::Batch {
        sled::Batch::default()
    }

    fn insert(&self, batch: &mut sled::Batch, key: &[u8], value: &[u8]) {
        batch.insert(key, value);
    }

    fn commit(&self, batch: sled::Batch) -> Result<()> {
        self.0.apply_batch(batch).map_err(storage)?;
        self.flush()
    }

    fn flush(&self) -> Result<()> {
        self.0.flush().map(|_| ()).map_err(storage)
    }
}
