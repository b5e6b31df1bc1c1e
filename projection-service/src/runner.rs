//! Runs projections over the event log, in batches, with exactly-once effect.
//!
//! Each projection owns a tree named `<name>.<generation>`; its
//! checkpoint is a key inside that same tree, and one atomic batch over
//! the trees writes every projection's changes and checkpoint for a batch
//! together. Events at or below a projection's checkpoint are skipped. The
//! current generation of each projection is recorded in the `meta` tree; a
//! rebuild fills generation `n + 1` from position 0 and then switches to it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use iga_eventlog::{EventStore, Position, RecordedEvent};
use iga_schemas::DomainEvent;
use tokio::sync::watch;

use crate::{Projection, ProjectionError, Result, Staged};

/// The reserved key holding a projection's checkpoint inside its tree.
/// Projection keys never start with 0xff.
pub const CHECKPOINT_KEY: &[u8] = b"\xff__checkpoint";
/// How far a projection's stored checkpoint may fall behind while events
/// change nothing in it.
const CHECKPOINT_EVERY: Position = 4096;
/// Most events applied per committed batch.
const MAX_BATCH: usize = 1000;
/// Batches of at most this many events are applied on the async worker
/// that read them; larger ones on a blocking thread.
pub(crate) const INLINE_BATCH: usize = 16;

/// The read models of one replica: a database with one tree per projection.
pub struct ReadModels {
    db: crate::store::Db,
    log_tree: std::sync::OnceLock<Arc<crate::audit_tree::LogTree>>,
    projections: Vec<(Arc<dyn Projection>, crate::store::Tree)>,
    position: watch::Sender<Position>,
}

impl ReadModels {
    /// Opens the read models in `path` for these projections.
    pub fn open(
        path: impl AsRef<std::path::Path>,
        projections: Vec<Arc<dyn Projection>>,
    ) -> Result<Self> {
        Self::with_db(Self::db(path.as_ref())?, projections, true)
    }

    /// Opens them to rebuild them only: what projections keep in memory
    /// (the search index) is not loaded, since nothing will read it.
    pub fn open_for_rebuild(
        path: impl AsRef<std::path::Path>,
        projections: Vec<Arc<dyn Projection>>,
    ) -> Result<Self> {
        Self::with_db(Self::db(path.as_ref())?, projections, false)
    }

    /// Opens the database at `path`.
    fn db(path: &std::path::Path) -> Result<crate::store::Db> {
        crate::store::Db::open(path)
    }

    /// Read models in a temporary directory, removed on drop.
    pub fn open_temporary(projections: Vec<Arc<dyn Projection>>) -> Result<Self> {
        Self::with_db(crate::store::Db::temporary()?, projections, true)
    }

    fn with_db(
        db: crate::store::Db,
        projections: Vec<Arc<dyn Projection>>,
        load_memory: bool,
    ) -> Result<Self> {
        let meta = db.open_tree("meta")?;
        let mut opened = Vec::new();
        for p in projections {
            let mut gen = generation(&meta, p.name())?;
            let mut tree = db.open_tree(tree_name(p.name(), gen))?;
            let layout = stored_layout(p.as_ref());
            let stored = stored_u64(&meta, &layout_key(p.name()), "layout")?;
            let stored_layout = match stored {
                Some(l) => l,
                // A new read model: whatever this version writes.
                None if tree.is_empty()? => layout,
                // Written before layouts were recorded.
                None => 1,
            };
            if stored_layout != layout {
                // Start this one afresh in the next generation; the runner
                // replays the log into it from position 0.
                tracing::warn!(
                    projection = p.name(),
                    from = stored_layout,
                    to = layout,
                    "read model layout changed; rebuilding it from the log"
                );
                drop(tree);
                db.drop_tree(tree_name(p.name(), gen))?;
                gen = next_generation(&db, p.name(), gen);
                meta.insert(gen_key(p.name()), gen.to_be_bytes())?;
                tree = db.open_tree(tree_name(p.name(), gen))?;
            }
            if stored != Some(layout) {
                meta.insert(layout_key(p.name()), layout.to_be_bytes())?;
                meta.flush()?;
            }
            if load_memory {
                p.opened(&tree)?;
            }
            opened.push((p, tree));
        }
        let models = ReadModels {
            db,
            log_tree: Default::default(),
            projections: opened,
            position: watch::channel(0).0,
        };
        models.position.send_replace(models.checkpoint()?);
        Ok(models)
    }

    /// The tree of projection `name`, for the typed queries (`queries`).
    pub(crate) fn tree(&self, name: &str) -> Option<&crate::store::Tree> {
        self.projections
            .iter()
            .find(|(p, _)| p.name() == name)
            .map(|(_, t)| t)
    }

    /// The lowest stored checkpoint: where a restart resumes from.
    pub fn checkpoint(&self) -> Result<Position> {
        let mut min = Position::MAX;
        for (_, tree) in &self.projections {
            min = min.min(read_checkpoint(tree)?);
        }
        Ok(if min == Position::MAX { 0 } else { min })
    }

    /// Watches the position every projection has applied, as the runner
    /// advances it (stored checkpoints may trail it; see `CHECKPOINT_EVERY`).
    pub fn watch_position(&self) -> watch::Receiver<Position> {
        self.position.subscribe()
    }

    /// The position every projection has applied.
    pub fn position(&self) -> Position {
        *self.position.borrow()
    }

    /// Waits until the read models include `position`; false on timeout.
    pub async fn wait_for(&self, position: Position, timeout: Duration) -> bool {
        let mut rx = self.position.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|p| *p >= position))
            .await
            .map(|r| r.is_ok())
            .unwrap_or(false)
    }

    /// Applies `events` to every projection that has not seen them, all of
    /// them in one atomic batch, then publishes the new position: a reader
    /// sees all read models at the same batch, and one journal write serves
    /// them all.
    pub fn apply(&self, events: &[RecordedEvent]) -> Result<()> {
        let Some(last) = events.last() else {
            return Ok(());
        };
        let decoded = decode_all(events)?;
        let mut changed = Vec::new();
        for (projection, tree) in &self.projections {
            if let Some(writes) = stage(projection.as_ref(), tree, events, &decoded)? {
                changed.push((projection, tree, writes));
            }
        }
        if !changed.is_empty() {
            commit(&self.db, &changed)?;
            for (projection, _, writes) in &changed {
                projection.committed(writes);
            }
        }
        self.position.send_replace(last.position);
        metrics::gauge!("iga_projection_position").set(last.position as f64);
        Ok(())
    }

    /// Replays the whole log into fresh trees (the next generation) without
    /// touching the current ones. `progress(done, total)` is called per batch.
    ///
    /// Faster than the live runner, for three reasons: the next batch is read
    /// and decoded while the current one is applied; projections are applied
    /// on as many threads as there are cores (each to its own tree); and each
    /// tree's writes for a batch are one batch of its own, not one across all
    /// trees. Nothing reads the fresh trees until `switch`, and a rebuild cut
    /// short leaves a generation that the next one drops, so the trees need
    /// not be written together.
    pub async fn rebuild(
        &self,
        store: &dyn EventStore,
        mut progress: impl FnMut(Position, Position),
    ) -> Result<Rebuilt<'_>> {
        let meta = self.db.open_tree("meta")?;
        let mut fresh = Vec::new();
        for (p, _) in &self.projections {
            let gen = next_generation(&self.db, p.name(), generation(&meta, p.name())?);
            fresh.push((p.clone(), self.db.open_tree(tree_name(p.name(), gen))?, gen));
        }
        let targets: Arc<Vec<(Arc<dyn Projection>, crate::store::Tree)>> = Arc::new(
            fresh
                .iter()
                .map(|(p, t, _)| (p.clone(), t.clone()))
                .collect(),
        );
        let head = store.head().await?;
        let mut after = 0;
        let mut applying: Option<tokio::task::JoinHandle<Result<()>>> = None;
        // The first batch is small: nothing is applied until it is read, so a
        // full-size one would keep the appliers idle for its whole read.
        let mut batch = REBUILD_BATCH / 16;
        loop {
            let events = store.read_all(after, batch).await?;
            batch = REBUILD_BATCH;
            let decoded = decode_all(&events)?;
            // The previous batch must be in before this one goes in.
            if let Some(previous) = applying.take() {
                previous.await.expect("rebuild batch panicked")?;
                progress(after, head.max(after));
            }
            let Some(last) = events.last() else { break };
            after = last.position;
            let targets = targets.clone();
            applying = Some(tokio::task::spawn_blocking(move || {
                apply_in_parallel(&targets, &events, &decoded)
            }));
        }
        for (_, tree, _) in &fresh {
            store_checkpoint(tree, after)?;
        }
        Ok(Rebuilt {
            models: self,
            fresh,
        })
    }
}

/// Events read per rebuild batch.
const REBUILD_BATCH: usize = 20000;

/// Applies a batch to every projection, spread over one thread per core;
/// each projection's writes go to its own tree in a batch of its own.
fn apply_in_parallel(
    targets: &[(Arc<dyn Projection>, crate::store::Tree)],
    events: &[RecordedEvent],
    decoded: &[DomainEvent],
) -> Result<()> {
    use rayon::prelude::*;
    targets.par_iter().try_for_each(|(projection, tree)| {
        let mut staged = Staged::new(tree);
        for (event, domain) in events.iter().zip(decoded) {
            projection.apply(event, domain, &mut staged)?;
        }
        // One batch per tree: one journal write, not one per key.
        tree.apply(&staged.into_writes()?)
    })
}

/// Trees filled by [`ReadModels::rebuild`], not yet in use.
pub struct Rebuilt<'a> {
    models: &'a ReadModels,
    fresh: Vec<(Arc<dyn Projection>, crate::store::Tree, u64)>,
}

impl Rebuilt<'_> {
    /// Every key and value of rebuilt read model `name` (empty if there is
    /// no such model), to compare a rebuild with what it replaces.
    pub fn dump(&self, name: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        match self.fresh.iter().find(|(p, _, _)| p.name() == name) {
            Some((_, tree, _)) => dump(tree),
            None => Ok(Vec::new()),
        }
    }

    /// Makes the rebuilt trees current and drops the old ones. Takes effect
    /// for [`ReadModels`] opened afterwards.
    pub fn switch(self) -> Result<()> {
        let meta = self.models.db.open_tree("meta")?;
        for (p, _, gen) in &self.fresh {
            meta.insert(gen_key(p.name()), gen.to_be_bytes())?;
            meta.insert(
                layout_key(p.name()),
                stored_layout(p.as_ref()).to_be_bytes(),
            )?;
        }
        meta.flush()?;
        // Every other generation: the one replaced, and any a rebuild cut
        // short left.
        for (p, _, gen) in &self.fresh {
            for old in generations(&self.models.db, p.name()) {
                if old != *gen {
                    self.models.db.drop_tree(tree_name(p.name(), old))?;
                }
            }
        }
        self.models.db.flush()?;
        Ok(())
    }
}

/// Keeps read models current: subscribes to the log from their checkpoint and
/// applies events in batches until shut down.
pub struct ProjectionRunner {
    models: Arc<ReadModels>,
    store: Arc<dyn EventStore>,
}

impl ProjectionRunner {
    pub fn new(models: Arc<ReadModels>, store: Arc<dyn EventStore>) -> Self {
        ProjectionRunner { models, store }
    }

    /// Runs until `shutdown` turns true, or fails on a storage or decode error.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<()> {
        let start = self.models.checkpoint()?;
        tracing::info!(position = start, "projection runner starting");
        let mut sub = self.store.subscribe(start).await?;
        let mut batch = Vec::with_capacity(MAX_BATCH);
        loop {
            let first = tokio::select! {
                next = sub.next() => next,
                _ = shutdown.wait_for(|s| *s) => return Ok(()),
            };
            match first {
                None => return Ok(()),
                Some(ev) => batch.push(ev?),
            }
            // Take whatever else is already waiting, without waiting for more.
            while batch.len() < MAX_BATCH {
                match sub.next().now_or_never() {
                    Some(Some(ev)) => batch.push(ev?),
                    _ => break,
                }
            }
            let started = Instant::now();
            let events = std::mem::take(&mut batch);
            if events.len() <= INLINE_BATCH {
                // A few events apply in tens of microseconds (a fjall batch
                // does not wait on the disk): handing them to a blocking
                // thread would cost more in wake-ups than it spares.
                self.models.apply(&events)?;
            } else {
                let models = self.models.clone();
                tokio::task::spawn_blocking(move || models.apply(&events))
                    .await
                    .expect("projection batch panicked")?;
            }
            metrics::histogram!("iga_projection_batch_seconds")
                .record(started.elapsed().as_secs_f64());
        }
    }
}

fn decode_all(events: &[RecordedEvent]) -> Result<Vec<DomainEvent>> {
    events
        .iter()
        .map(|e| {
            e.envelope
                .decode_event()
                .map_err(|source| ProjectionError::Decode {
                    position: e.position,
                    source,
                })
        })
        .collect()
}

/// Stages the events past the tree's checkpoint; answers the writes to
/// commit (the checkpoint among them), or `None` when there is nothing to
/// write.
fn stage(
    projection: &dyn Projection,
    tree: &crate::store::Tree,
    events: &[RecordedEvent],
    decoded: &[DomainEvent],
) -> Result<Option<crate::Writes>> {
    let checkpoint = read_checkpoint(tree)?;
    let mut staged = Staged::new(tree);
    let mut last = checkpoint;
    for (event, domain) in events.iter().zip(decoded) {
        if event.position <= checkpoint {
            continue; // applied before: exactly-once effect
        }
        projection.apply(event, domain, &mut staged)?;
        last = event.position;
    }
    // A batch that changes nothing here only moves the checkpoint; that is
    // written now and then (and at shutdown), not for every batch: replaying
    // events that change nothing is harmless, and it spares a write per
    // projection per runner batch.
    if last == checkpoint || (staged.is_empty() && last - checkpoint < CHECKPOINT_EVERY) {
        return Ok(None);
    }
    staged.put(CHECKPOINT_KEY, last.to_be_bytes().to_vec());
    Ok(Some(staged.into_writes()?))
}

/// Writes every changed projection's writes in one atomic batch.
fn commit(
    db: &crate::store::Db,
    changed: &[(&Arc<dyn Projection>, &crate::store::Tree, crate::Writes)],
) -> Result<()> {
    let mut batch = db.batch();
    for (_, tree, writes) in changed {
        batch.write_all(tree, writes);
    }
    batch.commit()
}

/// Moves a tree's checkpoint forward to `position` (never back).
fn store_checkpoint(tree: &crate::store::Tree, position: Position) -> Result<()> {
    if read_checkpoint(tree)? < position {
        tree.insert(CHECKPOINT_KEY, position.to_be_bytes())?;
    }
    Ok(())
}

fn read_checkpoint(tree: &crate::store::Tree) -> Result<Position> {
    Ok(stored_u64(tree, CHECKPOINT_KEY, "checkpoint")?.unwrap_or(0))
}

/// A big-endian `u64` stored under `key`; `what` names it if corrupt.
fn stored_u64(tree: &crate::store::Tree, key: &[u8], what: &str) -> Result<Option<u64>> {
    tree.get(key)?
        .map(|v| {
            v.as_ref()
                .try_into()
                .map(u64::from_be_bytes)
                .map_err(|_| ProjectionError::Corrupt(what.into()))
        })
        .transpose()
}

fn gen_key(name: &str) -> Vec<u8> {
    format!("gen/{name}").into_bytes()
}

/// What is recorded of a read model's layout: the value encoding shared by
/// every projection in the high half, the projection's own layout in the low
/// half (so an encoding change refills every read model, a projection's
/// layout change only its own).
fn stored_layout(projection: &dyn Projection) -> u64 {
    (u64::from(crate::staged::VALUE_ENCODING) << 32) | u64::from(projection.layout())
}

fn layout_key(name: &str) -> Vec<u8> {
    format!("layout/{name}").into_bytes()
}

fn generation(meta: &crate::store::Tree, name: &str) -> Result<u64> {
    Ok(stored_u64(meta, &gen_key(name), "generation")?.unwrap_or(1))
}

fn tree_name(name: &str, gen: u64) -> String {
    format!("{name}.{gen}")
}

/// The generations of projection `name` the database holds trees for.
fn generations(db: &crate::store::Db, name: &str) -> Vec<u64> {
    let prefix = tree_name(name, 0);
    let prefix = prefix.trim_end_matches('0');
    db.tree_names()
        .iter()
        .filter_map(|t| t.strip_prefix(prefix)?.parse().ok())
        .collect()
}

/// A generation above `current` and above every one the database holds:
/// a dropped tree's name is never used again (its files go when its last
/// handle does, which may be after a new tree of that name is made).
fn next_generation(db: &crate::store::Db, name: &str, current: u64) -> u64 {
    generations(db, name).into_iter().fold(current, u64::max) + 1
}

/// Every key/value of a tree, for comparing read models.
fn dump(tree: &crate::store::Tree) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    tree.iter()
        .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())))
        .collect()
}

impl ReadModels {
    /// Every key and value of read model `name` (empty if there is no such
    /// model), in key order: to compare read models, as a rebuild test does.
    pub fn dump(&self, name: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        match self.tree(name) {
            Some(tree) => dump(tree),
            None => Ok(Vec::new()),
        }
    }

    /// The log's Merkle tree, kept beside the read models (not one of
    /// them: rebuilds leave it alone). Opened on first use.
    pub fn log_tree(&self) -> Result<Arc<crate::audit_tree::LogTree>> {
        if let Some(t) = self.log_tree.get() {
            return Ok(t.clone());
        }
        let opened = Arc::new(crate::audit_tree::LogTree::open(
            self.db.open_tree(crate::audit_tree::NAME)?,
        )?);
        Ok(self.log_tree.get_or_init(|| opened).clone())
    }

    /// A tree nothing ever writes: under a scratch fold (`history`).
    pub(crate) fn scratch(&self) -> Result<crate::store::Tree> {
        self.db.open_tree("scratch.empty")
    }

    /// Where reactor `name` keeps its checkpoint (tree `reactor.<name>`).
    pub fn reactor_checkpoint(&self, name: &str) -> Result<ReactorCheckpoint> {
        Ok(ReactorCheckpoint(
            self.db.open_tree(format!("reactor.{name}"))?,
        ))
    }

    /// Up to `max` timers due at `now` (micros), and when the next one is.
    pub fn due_timers(&self, now: i64, max: usize) -> Result<crate::timers::Due> {
        let tree = self
            .tree(crate::timers::NAME)
            .ok_or_else(|| ProjectionError::Corrupt("the timers read model is not open".into()))?;
        crate::timers::TimerIndex::due(tree, now, max)
    }

    /// Stores every projection's checkpoint at the position applied, and
    /// flushes the read models to disk (on shutdown).
    pub fn flush(&self) -> Result<()> {
        let position = *self.position.borrow();
        for (_, tree) in &self.projections {
            store_checkpoint(tree, position)?;
        }
        self.db.flush()?;
        Ok(())
    }
}

/// The position up to which a reactor has acted, kept with the read models.
pub struct ReactorCheckpoint(crate::store::Tree);

impl ReactorCheckpoint {
    const KEY: &'static [u8] = b"checkpoint";

    pub fn get(&self) -> Result<Position> {
        Ok(match self.0.get(Self::KEY)? {
            Some(v) => u64::from_be_bytes(
                v.as_ref()
                    .try_into()
                    .map_err(|_| ProjectionError::Corrupt("reactor checkpoint".into()))?,
            ),
            None => 0,
        })
    }

    pub fn set(&self, position: Position) -> Result<()> {
        self.0.insert(Self::KEY, position.to_be_bytes())?;
        Ok(())
    }
}
