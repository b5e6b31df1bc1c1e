//! The embedded log on fjall 2: the default (`iga serve` with no
//! `--event-log` on a new data dir, or `--event-log fjall:`). The log itself
//! is [`EmbeddedLog`] (layout, group commit, reads, `iga verify`); this is
//! the engine.
//!
//! Why it is the default: a group commit is one fjall batch made durable with
//! `fdatasync`, so a power loss loses nothing acknowledged (sled's
//! `sync_file_range` does not promise that); and fjall has no process-wide
//! lock, so the log's writes do not stop the read models' reads and writes
//! (sled's do). On the request workflow bench it did 40-54 % more commands
//! at 16 clients and 50-64 % more at 64 (BENCHMARKS.md, "The log on
//! fjall"). The read models stay on sled either way.

use std::path::Path;
use std::sync::Arc;

use fs2::FileExt;

use crate::embedded::{storage, EmbeddedLog, Engine, Entries};
use crate::{EventLogError, Limits, Result};

/// The embedded log on fjall.
pub type FjallEventStore = EmbeddedLog<Fjall>;

/// The fjall [`Engine`]: one keyspace, one partition (`log`).
#[derive(Clone)]
pub struct Fjall {
    keyspace: fjall::Keyspace,
    log: fjall::PartitionHandle,
    /// Held locked while the log is open: fjall does not stop a second
    /// process from opening the same directory, and two writers would
    /// hand out the same positions.
    _lock: Arc<std::fs::File>,
}

impl EmbeddedLog<Fjall> {
    /// Opens (or creates) the log in directory `path`.
    pub fn open(path: impl AsRef<Path>, limits: Limits) -> Result<Self> {
        Self::open_with(fjall::Config::new(path.as_ref()), path.as_ref(), limits)
    }

    /// A log in a temporary directory that is removed when the store is dropped.
    #[cfg(feature = "test-support")]
    pub fn open_temporary(limits: Limits) -> Result<Self> {
        let dir = tempfile::tempdir().map_err(storage)?;
        let path = dir.keep();
        Self::open_with(fjall::Config::new(&path).temporary(true), &path, limits)
    }

    fn open_with(config: fjall::Config, path: &Path, limits: Limits) -> Result<Self> {
        let unavailable = |e: fjall::Error| {
            EventLogError::Unavailable(format!(
                "cannot open fjall event log at {}: {e}",
                path.display()
            ))
        };
        let _lock = Arc::new(lock(path)?);
        let keyspace = config
            .cache_size(256 * 1024 * 1024)
            .open()
            .map_err(unavailable)?;
        let log = keyspace
            .open_partition("log", Default::default())
            .map_err(unavailable)?;
        Self::start(
            Fjall {
                keyspace,
                log,
                _lock,
            },
            path.to_path_buf(),
            limits,
        )
    }
}

/// Locks `<path>/iga.lock` (creating the directory), or says who holds it.
fn lock(path: &Path) -> Result<std::fs::File> {
    let unavailable = |e: std::io::Error| {
        EventLogError::Unavailable(format!(
            "cannot open fjall event log at {}: {e}",
            path.display()
        ))
    };
    std::fs::create_dir_all(path).map_err(unavailable)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path.join("iga.lock"))
        .map_err(unavailable)?;
    file.try_lock_exclusive().map_err(|_| {
        EventLogError::Unavailable(format!(
            "fjall event log at {} is in use by another process",
            path.display()
        ))
    })?;
    Ok(file)
}

impl Engine for Fjall {
    type Bytes = fjall::Slice;
    type Batch = fjall::Batch;
    const NAME: &'static str = "fjall";

    fn get(&self, key: &[u8]) -> Result<Option<fjall::Slice>> {
        self.log.get(key).map_err(storage)
    }

    fn range(&self, from: &[u8], to: &[u8]) -> Entries<'_, fjall::Slice> {
        Box::new(self.log.range(from..=to).map(|kv| kv.map_err(storage)))
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Entries<'_, fjall::Slice> {
        Box::new(self.log.prefix(prefix).map(|kv| kv.map_err(storage)))
    }

    fn last_key(&self, prefix: &[u8]) -> Result<Option<fjall::Slice>> {
        self.log
            .prefix(prefix)
            .next_back()
            .transpose()
            .map(|kv| kv.map(|(k, _)| k))
            .map_err(storage)
    }

    fn batch(&self) -> fjall::Batch {
        self.keyspace.batch()
    }

    fn insert(&self, batch: &mut fjall::Batch, key: &[u8], value: &[u8]) {
        batch.insert(&self.log, key, value);
    }

    fn commit(&self, batch: fjall::Batch) -> Result<()> {
        batch.commit().map_err(storage)?;
        self.flush()
    }

    fn flush(&self) -> Result<()> {
        self.keyspace
            .persist(fjall::PersistMode::SyncData)
            .map_err(storage)
    }
}
