//! Where the read models are kept: one fjall keyspace, one partition (a
//! [`Tree`]) per read model, and atomic [`Batch`]es across them.
//!
//! Why fjall and not sled 0.34 (the read models' store until issue #20):
//! every sled atomic batch or transaction rolls sled's IO buffer twice and
//! hands each buffer to sled's IO thread pool, which wakes all seven of its
//! idle threads (`notify_all`) for every buffer; at a modest load (100
//! workflows/s, one runner batch every few milliseconds) that was a quarter
//! of the server's CPU (BENCHMARKS.md, "CPU per command"). sled also takes a
//! process-wide lock for every atomic write. A fjall batch is one journal
//! write and memtable inserts on the calling thread.
//!
//! Durability: batches are not synced one by one. The read models are
//! rebuilt from the log, and a checkpoint is written in the same atomic batch
//! as what it covers, so after a crash a read model is at some earlier batch,
//! whole, and the runner replays the log from there. [`Db::flush`] syncs
//! (at shutdown, after a rebuild).

use std::ops::RangeBounds;
use std::path::Path;
use std::sync::Arc;

use crate::Result;

/// Bytes as the store hands them out.
pub type Value = fjall::Slice;

/// A key and its value.
pub type Entry = (Value, Value);

/// The read models' database.
#[derive(Clone)]
pub struct Db {
    keyspace: fjall::Keyspace,
    /// Held while open: fjall does not stop a second process from opening
    /// the same directory.
    _lock: Option<Arc<std::fs::File>>,
    /// A temporary database's directory, removed when the last handle goes.
    _temporary: Option<Arc<tempfile::TempDir>>,
}

impl Db {
    /// Opens (or creates) the database in directory `path`; refuses one
    /// another process has open.
    ///
    /// Read models sled wrote (before issue #20) are moved aside to
    /// `<path>.sled-old`: the runner refills them from the log as it catches
    /// up. The reactors' checkpoints are carried over, so no reactor acts on
    /// the log's history again (a publisher would publish it twice).
    pub fn open(path: &Path) -> Result<Db> {
        let carried = if is_sled(path) {
            retire_sled(path)?
        } else {
            Vec::new()
        };
        let lock = lock(path)?;
        let keyspace = config(path).open()?;
        let db = Db {
            keyspace,
            _lock: Some(Arc::new(lock)),
            _temporary: None,
        };
        if !carried.is_empty() {
            let mut batch = db.batch();
            for (name, entries) in &carried {
                let tree = db.open_tree(name)?;
                for (k, v) in entries {
                    batch.insert(&tree, k, v);
                }
            }
            batch.commit()?;
            db.flush()?;
        }
        Ok(db)
    }

    /// A database in a temporary directory, removed when dropped.
    pub fn temporary() -> Result<Db> {
        let dir = tempfile::tempdir().map_err(crate::ProjectionError::Io)?;
        let keyspace = config(dir.path()).temporary(true).open()?;
        Ok(Db {
            keyspace,
            _lock: None,
            _temporary: Some(Arc::new(dir)),
        })
    }

    /// The tree `name`, created if absent.
    pub fn open_tree(&self, name: impl AsRef<str>) -> Result<Tree> {
        let name = partition_name(name.as_ref());
        let partition = self
            .keyspace
            .open_partition(&name, fjall::PartitionCreateOptions::default())?;
        Ok(Tree {
            keyspace: self.keyspace.clone(),
            partition,
        })
    }

    /// Deletes the tree `name` and everything in it, if it exists.
    pub fn drop_tree(&self, name: impl AsRef<str>) -> Result<()> {
        let name = name.as_ref();
        if self.keyspace.partition_exists(&partition_name(name)) {
            let tree = self.open_tree(name)?;
            self.keyspace.delete_partition(tree.partition)?;
        }
        Ok(())
    }

    /// The names of the trees the database holds.
    pub fn tree_names(&self) -> Vec<String> {
        self.keyspace
            .list_partitions()
            .iter()
            .map(|p| p.replace('#', "."))
            .collect()
    }

    /// An atomic batch of writes to any of this database's trees.
    pub fn batch(&self) -> Batch {
        Batch(self.keyspace.batch())
    }

    /// Makes everything written durable (at shutdown, after a rebuild).
    ///
    /// Only the journal is synced: fjall writes memtables out to segments
    /// in the background, and the next start replays what the journal
    /// still holds. (Writing every memtable out here with fjall's
    /// `rotate_memtable_and_wait` hung a rebuild for good: it waits until no
    /// flush is queued at all, and a dropped tree's queued flush never runs.)
    pub fn flush(&self) -> Result<()> {
        Ok(self.keyspace.persist(fjall::PersistMode::SyncAll)?)
    }
}

/// fjall's name for tree `name`: its names allow no `.`, tree names use it
/// (`users.3`), and `#` is never in them.
fn partition_name(name: &str) -> String {
    name.replace('.', "#")
}

/// fjall's own defaults for its background workers (one flush and one
/// compaction worker per core): with a single flush worker, a 10-million-event
/// start stalled for good on a full journal (BENCHMARKS.md, "Storage and
/// speed").
fn config(path: &Path) -> fjall::Config {
    fjall::Config::new(path).cache_size(256 * 1024 * 1024)
}

/// Whether `path` holds a sled database (its `conf` and `db` files, and not
/// fjall's `version` marker).
fn is_sled(path: &Path) -> bool {
    path.join("conf").is_file() && path.join("db").is_file() && !path.join("version").exists()
}

/// The trees sled kept whose names say they must outlive a refill.
const CARRIED_OVER: &str = "reactor.";

/// A tree's name and entries, carried from sled.
type CarriedTree = (String, Vec<(Vec<u8>, Vec<u8>)>);

/// Moves the sled database at `path` aside and answers the trees to carry
/// over (the reactors' checkpoints), read before the move.
fn retire_sled(path: &Path) -> Result<Vec<CarriedTree>> {
    let storage = |e: sled::Error| crate::ProjectionError::Io(std::io::Error::other(e));
    let mut carried = Vec::new();
    {
        let old = sled::Config::new().path(path).open().map_err(storage)?;
        for name in old.tree_names() {
            let name = String::from_utf8_lossy(&name).into_owned();
            if !name.starts_with(CARRIED_OVER) {
                continue;
            }
            let tree = old.open_tree(&name).map_err(storage)?;
            let entries = tree
                .iter()
                .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())))
                .collect::<Result<Vec<_>, _>>()
                .map_err(storage)?;
            carried.push((name, entries));
        }
    }
    let aside = path.with_extension("sled-old");
    if aside.exists() {
        std::fs::remove_dir_all(&aside).map_err(crate::ProjectionError::Io)?;
    }
    // sled lets go of its file lock a moment after the handle drops.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while let Err(e) = std::fs::rename(path, &aside) {
        if std::time::Instant::now() > deadline {
            return Err(crate::ProjectionError::Io(e));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    tracing::warn!(
        old = %aside.display(),
        "the read models were kept by sled; moved aside, they are refilled from the log \
         (`iga rebuild` does it fastest); the reactors' checkpoints were carried over; \
         delete the old directory once satisfied"
    );
    Ok(carried)
}

/// Locks `<path>/iga.lock` (creating the directory), or says it is in use.
fn lock(path: &Path) -> Result<std::fs::File> {
    use fs2::FileExt;
    std::fs::create_dir_all(path).map_err(crate::ProjectionError::Io)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path.join("iga.lock"))
        .map_err(crate::ProjectionError::Io)?;
    file.try_lock_exclusive().map_err(|_| {
        crate::ProjectionError::Io(std::io::Error::new(
            std::io::ErrorKind::WouldBlock,
            format!("{} is in use by another process", path.display()),
        ))
    })?;
    Ok(file)
}

/// One read model's keys and values, in key order.
#[derive(Clone)]
pub struct Tree {
    keyspace: fjall::Keyspace,
    partition: fjall::PartitionHandle,
}

impl Tree {
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Value>> {
        Ok(self.partition.get(key)?)
    }

    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        Ok(self.partition.contains_key(key)?)
    }

    /// Writes one key on its own (not atomic with anything else).
    pub fn insert(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        Ok(self.partition.insert(key.as_ref(), value.as_ref())?)
    }

    pub fn remove(&self, key: impl AsRef<[u8]>) -> Result<()> {
        Ok(self.partition.remove(key.as_ref())?)
    }

    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.partition.is_empty()?)
    }

    /// Every entry, in key order (a snapshot: later writes are not seen).
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = Result<Entry>> + 'static {
        self.partition.iter().map(|kv| Ok(kv?))
    }

    /// The entries whose keys fall in `range`.
    pub fn range<'a, K: AsRef<[u8]> + 'a, R: RangeBounds<K> + 'a>(
        &'a self,
        range: R,
    ) -> impl DoubleEndedIterator<Item = Result<Entry>> + 'static {
        self.partition.range(range).map(|kv| Ok(kv?))
    }

    /// The entries whose keys start with `prefix`.
    pub fn scan_prefix<'a, K: AsRef<[u8]> + 'a>(
        &'a self,
        prefix: K,
    ) -> impl DoubleEndedIterator<Item = Result<Entry>> + 'static {
        self.partition.prefix(prefix).map(|kv| Ok(kv?))
    }

    /// The entry with the greatest key.
    pub fn last(&self) -> Result<Option<Entry>> {
        Ok(self.partition.last_key_value()?)
    }

    /// Makes everything written (to any tree of the database) durable.
    pub fn flush(&self) -> Result<()> {
        Ok(self.keyspace.persist(fjall::PersistMode::SyncAll)?)
    }

    /// Writes to this tree, applied together by [`TreeBatch::commit`].
    pub fn batch(&self) -> TreeBatch {
        TreeBatch {
            batch: Batch(self.keyspace.batch()),
            tree: self.clone(),
        }
    }

    /// Applies `writes` (`None`: remove) to this tree atomically.
    pub fn apply(&self, writes: &crate::Writes) -> Result<()> {
        let mut batch = Batch(self.keyspace.batch());
        batch.write_all(self, writes);
        batch.commit()
    }
}

/// Writes to several trees, applied together by [`Batch::commit`].
pub struct Batch(fjall::Batch);

impl Batch {
    pub fn insert(&mut self, tree: &Tree, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.0.insert(&tree.partition, key.as_ref(), value.as_ref());
    }

    pub fn remove(&mut self, tree: &Tree, key: impl AsRef<[u8]>) {
        self.0.remove(&tree.partition, key.as_ref());
    }

    /// Adds `writes` (`None`: remove) to `tree`.
    pub fn write_all(&mut self, tree: &Tree, writes: &crate::Writes) {
        for (k, v) in writes {
            match v {
                Some(v) => self.insert(tree, k, v),
                None => self.remove(tree, k),
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Applies every write at once: a reader sees all of them or none.
    pub fn commit(self) -> Result<()> {
        Ok(self.0.commit()?)
    }
}

/// A [`Batch`] on one tree.
pub struct TreeBatch {
    tree: Tree,
    batch: Batch,
}

impl TreeBatch {
    pub fn insert(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.batch.insert(&self.tree, key, value);
    }

    pub fn commit(self) -> Result<()> {
        self.batch.commit()
    }
}
