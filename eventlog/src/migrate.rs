//! [`migrate`]: moves a data dir's embedded log from one engine to the other
//! (`iga migrate --to fjall`), without losing or changing an event.
//!
//! Both engines hold the same layout ([`crate::embedded`]), so a migration is
//! a copy of every key, then a check, then a switch:
//!
//! 1. **copy** the stopped log (its lock is held throughout, so no `iga` can
//!    append meanwhile) into `<new dir>.migrating`, in durable batches;
//! 2. **check** event by event that the copy holds the same bytes at the same
//!    positions, then run the embedded log's own check on the copy (indexes
//!    and stream heads agree with the events);
//! 3. **switch**: rename the copy to the new engine's dir, then the old log to
//!    `<old dir>.old`, which is kept until `iga migrate --remove-old`.
//!
//! Positions and bytes are kept, so the read models (checkpoints at log
//! positions) and the verifiable log's Merkle tree (leaves are the stored
//! bytes) stay valid: nothing is rebuilt.
//!
//! A crash leaves a state the next run finishes: a stale `.migrating` copy is
//! removed and made again; a crash between the two renames leaves both logs,
//! checked equal, which `iga serve` refuses to pick between and `iga migrate`
//! checks again and finishes.

use std::path::{Path, PathBuf};

use crate::embedded::{last_position, EmbeddedLog, Engine};
use crate::open::{OpenError, FJALL_DIR, SLED_DIR};
use crate::{EventLogError, Limits};

/// The two engines of the embedded log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmbeddedEngine {
    /// sled 0.34, in `<data dir>/eventlog`: the default before fjall.
    Sled,
    /// fjall, in `<data dir>/eventlog-fjall`: the default.
    Fjall,
}

impl EmbeddedEngine {
    /// The engine's name, as `--event-log` and `--to` spell it.
    pub fn name(self) -> &'static str {
        match self {
            EmbeddedEngine::Sled => "sled",
            EmbeddedEngine::Fjall => "fjall",
        }
    }

    /// Its directory in a data dir.
    pub fn dir(self) -> &'static str {
        match self {
            EmbeddedEngine::Sled => SLED_DIR,
            EmbeddedEngine::Fjall => FJALL_DIR,
        }
    }

    fn other(self) -> EmbeddedEngine {
        match self {
            EmbeddedEngine::Sled => EmbeddedEngine::Fjall,
            EmbeddedEngine::Fjall => EmbeddedEngine::Sled,
        }
    }
}

/// Which embedded log a data dir holds, if any (both only after an
/// interrupted migration).
pub fn embedded_engines(data_dir: &Path) -> Vec<EmbeddedEngine> {
    [EmbeddedEngine::Sled, EmbeddedEngine::Fjall]
        .into_iter()
        .filter(|e| data_dir.join(e.dir()).exists())
        .collect()
}

/// How far a migration is, for a progress bar.
#[derive(Clone, Copy, Debug)]
pub struct Step {
    /// What is being done: `copying events`, `copying indexes`,
    /// `checking events`, `checking indexes`.
    pub phase: &'static str,
    pub done: u64,
    /// What `done` counts up to, when known.
    pub total: Option<u64>,
}

/// What a migration did.
#[derive(Debug)]
pub struct Migrated {
    pub events: u64,
    /// Where the log now is.
    pub log: PathBuf,
    /// Where the old log was kept (`None` when there was nothing to do).
    pub kept: Option<PathBuf>,
}

/// Keys copied per durable batch.
const BATCH_KEYS: usize = 4096;

/// Moves `data_dir`'s embedded log to engine `to`; see the module docs.
/// Refuses while another process has the log open.
pub fn migrate(
    data_dir: &Path,
    to: EmbeddedEngine,
    progress: &mut dyn FnMut(Step),
) -> Result<Migrated, OpenError> {
    let from = to.other();
    let (old, new) = (data_dir.join(from.dir()), data_dir.join(to.dir()));
    let kept = old_dir(data_dir, from);
    if !old.exists() {
        if new.exists() {
            let events = count(to, &new)?;
            return Ok(Migrated {
                events,
                log: new,
                kept: None,
            });
        }
        return Err(format!(
            "{} holds no embedded event log (neither {} nor {})",
            data_dir.display(),
            old.display(),
            new.display()
        )
        .into());
    }
    if kept.exists() {
        return Err(format!(
            "{} is kept from an earlier migration; remove it first (iga migrate --remove-old)",
            kept.display()
        )
        .into());
    }
    let events = if new.exists() {
        // Interrupted between the renames: the copy was checked; check again.
        copy_and_check(from, &old, to, &new, false, progress)?
    } else {
        let staging = staging_dir(data_dir, to);
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(|e| io(&staging, e))?;
        }
        let events = copy_and_check(from, &old, to, &staging, true, progress)?;
        rename(&staging, &new)?;
        events
    };
    rename(&old, &kept)?;
    Ok(Migrated {
        events,
        log: new,
        kept: Some(kept),
    })
}

/// Removes what earlier migrations kept (`<dir>.old`) and any copy a crash
/// left; answers what it removed. Refuses while a migration is unfinished
/// (both logs present): the old one is not yet only a copy.
pub fn remove_old(data_dir: &Path) -> Result<Vec<PathBuf>, OpenError> {
    if embedded_engines(data_dir).len() > 1 {
        return Err(unfinished(data_dir));
    }
    let mut removed = Vec::new();
    for engine in [EmbeddedEngine::Sled, EmbeddedEngine::Fjall] {
        for dir in [old_dir(data_dir, engine), staging_dir(data_dir, engine)] {
            if dir.exists() {
                std::fs::remove_dir_all(&dir).map_err(|e| io(&dir, e))?;
                removed.push(dir);
            }
        }
    }
    Ok(removed)
}

/// The error for a data dir holding both logs.
pub(crate) fn unfinished(data_dir: &Path) -> OpenError {
    format!(
        "the data dir {} holds the event log twice ({} and {}): an `iga migrate` was \
         interrupted after its copy was checked; run `iga migrate --to fjall` again to finish it",
        data_dir.display(),
        data_dir.join(SLED_DIR).display(),
        data_dir.join(FJALL_DIR).display()
    )
    .into()
}

fn old_dir(data_dir: &Path, engine: EmbeddedEngine) -> PathBuf {
    data_dir.join(format!("{}.old", engine.dir()))
}

fn staging_dir(data_dir: &Path, engine: EmbeddedEngine) -> PathBuf {
    data_dir.join(format!("{}.migrating", engine.dir()))
}

/// Dispatches on the two engines.
fn copy_and_check(
    from: EmbeddedEngine,
    from_path: &Path,
    to: EmbeddedEngine,
    to_path: &Path,
    copy: bool,
    progress: &mut dyn FnMut(Step),
) -> Result<u64, OpenError> {
    match (from, to) {
        (EmbeddedEngine::Sled, EmbeddedEngine::Fjall) => {
            transfer(&open_sled(from_path)?, to_path, open_fjall, copy, progress)
        }
        (EmbeddedEngine::Fjall, EmbeddedEngine::Sled) => {
            transfer(&open_fjall(from_path)?, to_path, open_sled, copy, progress)
        }
        _ => Err(format!("the log is already on {}", to.name()).into()),
    }
}

/// Copies `source` into a new log at `to_path` (when `copy`) and checks the
/// two hold the same events; answers how many.
fn transfer<S: Engine, T: Engine>(
    source: &EmbeddedLog<S>,
    to_path: &Path,
    open_target: fn(&Path) -> Result<EmbeddedLog<T>, OpenError>,
    copy: bool,
    progress: &mut dyn FnMut(Step),
) -> Result<u64, OpenError> {
    let src = source.engine();
    let head = last_position(src).map_err(|e| failed(to_path, e))?;
    if copy {
        let target = open_target(to_path)?;
        copy_keys(src, target.engine(), head, progress).map_err(|e| failed(to_path, e))?;
        // Closing waits for the target's writer; it appended nothing.
        drop(target);
    }
    // Reopened, so its head and everything below are read from disk.
    let target = open_target(to_path)?;
    check_events(src, target.engine(), head, progress).map_err(|e| failed(to_path, e))?;
    progress(Step {
        phase: "checking indexes",
        done: 0,
        total: None,
    });
    let checked = target.verify().map_err(|e| failed(to_path, e))?;
    if checked != head {
        return Err(format!(
            "the copy at {} holds {checked} events, the log {head}",
            to_path.display()
        )
        .into());
    }
    Ok(head)
}

/// Every key of `src` into `dst`, events first, in durable batches.
fn copy_keys<S: Engine, T: Engine>(
    src: &S,
    dst: &T,
    head: u64,
    progress: &mut dyn FnMut(Step),
) -> crate::Result<()> {
    // Events (`e`), then the indexes (`h`, `i`, `s`): the keys' own order.
    for (prefix, phase, total) in [
        (b"e", "copying events", Some(head)),
        (b"h", "copying indexes", None),
        (b"i", "copying indexes", None),
        (b"s", "copying indexes", None),
    ] {
        let mut batch = dst.batch();
        let mut in_batch = 0;
        let mut done = 0u64;
        for kv in src.scan_prefix(prefix) {
            let (k, v) = kv?;
            dst.insert(&mut batch, k.as_ref(), v.as_ref());
            in_batch += 1;
            done += 1;
            if in_batch == BATCH_KEYS {
                dst.commit(std::mem::replace(&mut batch, dst.batch()))?;
                in_batch = 0;
                progress(Step { phase, done, total });
            }
        }
        dst.commit(batch)?;
        progress(Step { phase, done, total });
    }
    dst.flush()
}

/// The same bytes at every position of both logs, and nothing more in either.
fn check_events<S: Engine, T: Engine>(
    src: &S,
    dst: &T,
    head: u64,
    progress: &mut dyn FnMut(Step),
) -> crate::Result<()> {
    let step = |done| Step {
        phase: "checking events",
        done,
        total: Some(head),
    };
    let mut theirs = dst.scan_prefix(b"e");
    let mut done = 0u64;
    for ours in src.scan_prefix(b"e") {
        let (k, v) = ours?;
        let position = crate::embedded::be_u64(&k.as_ref()[1..])?;
        match theirs.next().transpose()? {
            Some((k2, v2)) if k2.as_ref() == k.as_ref() && v2.as_ref() == v.as_ref() => {}
            Some(_) | None => {
                return Err(EventLogError::Corrupt(format!(
                    "the copy differs from the log at position {position}"
                )))
            }
        }
        done += 1;
        if done.is_multiple_of(BATCH_KEYS as u64) {
            progress(step(done));
        }
    }
    if let Some(extra) = theirs.next().transpose()? {
        let position = crate::embedded::be_u64(&extra.0.as_ref()[1..])?;
        return Err(EventLogError::Corrupt(format!(
            "the copy holds position {position}, which the log does not"
        )));
    }
    progress(step(done));
    Ok(())
}

/// How many events a log holds (its last position).
fn count(engine: EmbeddedEngine, path: &Path) -> Result<u64, OpenError> {
    let head = match engine {
        EmbeddedEngine::Sled => last_position(open_sled(path)?.engine()),
        EmbeddedEngine::Fjall => last_position(open_fjall(path)?.engine()),
    };
    head.map_err(|e| failed(path, e))
}

fn open_sled(path: &Path) -> Result<EmbeddedLog<crate::sled_store::Sled>, OpenError> {
    EmbeddedLog::<crate::sled_store::Sled>::open(path, Limits::default())
        .map_err(|e| crate::open::busy(path, e).into())
}

fn open_fjall(path: &Path) -> Result<EmbeddedLog<crate::fjall_store::Fjall>, OpenError> {
    EmbeddedLog::<crate::fjall_store::Fjall>::open(path, Limits::default())
        .map_err(|e| crate::open::busy(path, e).into())
}

/// Renames `from` to `to` and makes the rename durable (the data dir's entry).
fn rename(from: &Path, to: &Path) -> Result<(), OpenError> {
    std::fs::rename(from, to).map_err(|e| io(from, e))?;
    if let Some(parent) = to.parent() {
        std::fs::File::open(parent)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| io(parent, e))?;
    }
    Ok(())
}

fn io(path: &Path, e: std::io::Error) -> OpenError {
    format!("{}: {e}", path.display()).into()
}

fn failed(path: &Path, e: EventLogError) -> OpenError {
    format!(
        "migrating to {}: {e}; the old log is untouched",
        path.display()
    )
    .into()
}
