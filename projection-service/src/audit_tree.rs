//! [`LogTree`]: the event log as a Merkle tree (RFC 9162; the math is in
//! [`crate::merkle`]), kept by a follower of the log ([`LogTree::follow`])
//! in a store of its own beside the read models. It is not a projection:
//! `iga rebuild` neither replays nor drops it (as a projection it cost a
//! rebuild two thirds of its speed, BENCHMARKS.md), and it is written in
//! large batches, hashing only.
//!
//! Leaf `i` is the `i`-th event in log order (0-based, whatever the
//! backend's positions are); its bytes are the event's envelope as stored
//! (the protobuf encoding, payload included, before any upcasting), so
//! anyone holding the log can recompute every hash.
//!
//! Only perfect subtrees are stored: each is final once its last leaf is
//! in, so the store grows by about two hashes per event and answers for the
//! tree at any past size as well as the current one. The right edge of the
//! tree (one subtree per set bit of the size) is kept in memory to add the
//! next leaf without reading.
//!
//! Keys (tree `audit_tree`): `n/<level: 1 byte><chunk BE>` -> the
//! hashes of up to 64 nodes of a level, node `i` of the level (the hash of
//! the `2^level` leaves from `i << level`) in chunk `i / 64`; `q/<position
//! BE>` -> leaf index and `r/<index BE>` -> position, where a run of
//! contiguous positions starts (on the embedded log, once);
//! `c/<tree size BE><position BE>` -> a checkpoint found in the log ([`CheckpointRecord`],
//! JSON); `k/<key id>` -> a signing key seen ([`KeyRecord`], JSON);
//! `status` -> [`TreeStatus`].
//!
//! Checkpoints (`AuditCheckpointSigned` events) are checked as they are
//! added: the signature, and the root against the tree's own at that size.
//! A checkpoint that fails either is kept, marked, logged as an error and
//! counted (`iga_audit_checkpoints_failed_total`): it means the log or the
//! tree was changed, or a forger appended it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use iga_eventlog::{EventStore, Position, RecordedEvent};
use iga_schemas::v1::AuditCheckpointSigned;
use iga_schemas::DomainEvent;
use prost::Message;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::merkle::{self, leaf_hash, node_hash, Hash, Nodes};
use crate::{ProjectionError, Result};

/// The tree the store lives in.
pub const NAME: &str = "audit_tree";
/// Most events hashed per stored batch.
const MAX_BATCH: usize = 8192;

const STATUS: &[u8] = b"status";
const SIGNED: &str = "iga.v1.AuditCheckpointSigned";
const REQUESTED: &str = "iga.v1.AuditCheckpointRequested";

/// Nodes are stored [`CHUNK`] to a key: one write per 64 hashes, not
/// one per hash (measured: a write per node held the follower to 16-20k
/// events/s).
const CHUNK: u64 = 64;

fn chunk_key(level: u32, chunk: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(11);
    k.extend_from_slice(b"n/");
    k.push(level as u8);
    k.extend_from_slice(&chunk.to_be_bytes());
    k
}

fn u64_key(prefix: &[u8], n: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + 8);
    k.extend_from_slice(prefix);
    k.extend_from_slice(&n.to_be_bytes());
    k
}

fn be(bytes: &[u8]) -> Result<u64> {
    bytes
        .try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| ProjectionError::Corrupt("audit tree: not a u64".into()))
}

/// The bytes of an event's leaf: its envelope as stored, protobuf-encoded.
pub fn leaf_bytes(event: &RecordedEvent) -> Vec<u8> {
    event.envelope.encode_to_vec()
}

/// Where the tree stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TreeStatus {
    /// Leaves in the tree.
    pub size: u64,
    /// The log position of the last leaf (0: none).
    pub position: Position,
    /// Leaves up to the last event that is not a checkpoint.
    pub content_size: u64,
    /// Leaves up to the last checkpoint request (0: none).
    pub requested_size: u64,
    /// The largest tree size a verified checkpoint in the log signs.
    pub signed_size: u64,
    /// When that checkpoint was signed (micros; 0: none).
    pub signed_at_micros: i64,
}

impl TreeStatus {
    fn encode(&self) -> Vec<u8> {
        [
            self.size,
            self.position,
            self.content_size,
            self.requested_size,
            self.signed_size,
            self.signed_at_micros as u64,
        ]
        .iter()
        .flat_map(|n| n.to_be_bytes())
        .collect()
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != 48 {
            return Err(ProjectionError::Corrupt("audit tree status".into()));
        }
        let n = |i: usize| be(&bytes[i * 8..i * 8 + 8]);
        Ok(TreeStatus {
            size: n(0)?,
            position: n(1)?,
            content_size: n(2)?,
            requested_size: n(3)?,
            signed_size: n(4)?,
            signed_at_micros: n(5)? as i64,
        })
    }
}

/// A checkpoint found in the log, and what checking it found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointRecord {
    pub head: AuditCheckpointSigned,
    /// The log position of the checkpoint event.
    pub position: Position,
    /// `None` when its signature and root hold; else what failed.
    pub problem: Option<String>,
}

/// A signing key seen in the log's checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyRecord {
    pub key_id: String,
    pub origin: String,
    pub public_key: Vec<u8>,
    /// When it first signed a checkpoint (micros), and up to what size.
    pub first_signed_at_micros: i64,
    pub first_tree_size: u64,
    pub last_signed_at_micros: i64,
}

/// The stored nodes, with a batch's not yet stored over them.
struct Overlay<'a> {
    tree: &'a crate::store::Tree,
    pending: &'a HashMap<(u32, u64), Hash>,
}

impl Nodes for Overlay<'_> {
    type Error = ProjectionError;

    fn node(&self, level: u32, index: u64) -> Result<Hash> {
        if let Some(h) = self.pending.get(&(level, index)) {
            return Ok(*h);
        }
        stored_node(self.tree, level, index)
    }
}

fn stored_node(tree: &crate::store::Tree, level: u32, index: u64) -> Result<Hash> {
    let missing =
        || ProjectionError::Corrupt(format!("audit tree node {level}/{index} is missing"));
    let bytes = tree
        .get(chunk_key(level, index / CHUNK))?
        .ok_or_else(missing)?;
    let at = (index % CHUNK) as usize * 32;
    bytes
        .get(at..at + 32)
        .ok_or_else(missing)?
        .try_into()
        .map_err(|_| missing())
}

struct Stored<'a>(&'a crate::store::Tree);

impl Nodes for Stored<'_> {
    type Error = ProjectionError;
    fn node(&self, level: u32, index: u64) -> Result<Hash> {
        stored_node(self.0, level, index)
    }
}

/// The log's Merkle tree, its checkpoints and their keys.
pub struct LogTree {
    tree: crate::store::Tree,
    /// The right edge: `edge[level]` is the last perfect subtree of
    /// `2^level` leaves when bit `level` of the size is set. Only the
    /// follower touches it.
    edge: Mutex<Vec<Hash>>,
    status: watch::Sender<TreeStatus>,
}

impl LogTree {
    pub(crate) fn open(tree: crate::store::Tree) -> Result<Self> {
        let status = match tree.get(STATUS)? {
            Some(b) => TreeStatus::decode(&b)?,
            None => TreeStatus::default(),
        };
        let mut edge = vec![[0u8; 32]; 64];
        for (level, slot) in edge.iter_mut().enumerate() {
            if status.size >> level & 1 == 1 {
                *slot = stored_node(&tree, level as u32, (status.size >> level) - 1)?;
            }
        }
        Ok(LogTree {
            tree,
            edge: Mutex::new(edge),
            status: watch::channel(status).0,
        })
    }

    pub fn status(&self) -> TreeStatus {
        *self.status.borrow()
    }

    /// Changes whenever a batch is added.
    pub fn watch(&self) -> watch::Receiver<TreeStatus> {
        self.status.subscribe()
    }

    /// Waits (at most `timeout`) until the tree holds the event at log
    /// `position`; answers whether it does.
    pub async fn wait_for(&self, position: Position, timeout: Duration) -> bool {
        let mut rx = self.status.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|s| s.position >= position))
            .await
            .map(|r| r.is_ok())
            .unwrap_or(false)
    }

    /// Adds the events after the tree's last leaf, in one atomic batch.
    pub fn append(&self, events: &[RecordedEvent]) -> Result<()> {
        let mut status = self.status();
        let mut edge = self.edge.lock().expect("audit tree edge lock");
        let mut pending: HashMap<(u32, u64), Hash> = HashMap::new();
        let mut batch = self.tree.batch();
        let mut changed = false;
        for event in events {
            if event.position <= status.position {
                continue; // hashed already (a replay after a restart)
            }
            changed = true;
            let index = status.size;
            let mut hash = leaf_hash(&leaf_bytes(event));
            pending.insert((0, index), hash);
            let (mut level, mut i) = (0u32, index);
            while i & 1 == 1 {
                hash = node_hash(&edge[level as usize], &hash);
                level += 1;
                i >>= 1;
                pending.insert((level, i), hash);
            }
            edge[level as usize] = hash;
            let previous = status.position;
            status.size = index + 1;
            status.position = event.position;
            // Positions in runs: a run starts wherever the log's positions
            // are not contiguous (on the embedded log, only at leaf 0).
            if index == 0 || event.position != previous + 1 {
                batch.insert(u64_key(b"q/", event.position), index.to_be_bytes());
                batch.insert(u64_key(b"r/", index), event.position.to_be_bytes());
            }
            match event.envelope.event_type.as_str() {
                SIGNED => {
                    let record = self.check_checkpoint(event, index, &pending)?;
                    if record.problem.is_none() && record.head.tree_size > status.signed_size {
                        status.signed_size = record.head.tree_size;
                        status.signed_at_micros = record.head.signed_at_micros;
                    }
                    if record.problem.is_none() {
                        self.note_key(&record.head, &mut batch)?;
                    }
                    let mut key = u64_key(b"c/", record.head.tree_size);
                    key.extend_from_slice(&event.position.to_be_bytes());
                    batch.insert(
                        key,
                        serde_json::to_vec(&record).expect("a record serializes"),
                    );
                }
                other => {
                    status.content_size = status.size;
                    if other == REQUESTED {
                        status.requested_size = status.size;
                    }
                }
            }
        }
        if !changed {
            return Ok(());
        }
        // Each level's new nodes follow its stored ones: extend the chunks.
        let mut pending: Vec<((u32, u64), Hash)> = pending.into_iter().collect();
        pending.sort_unstable_by_key(|(k, _)| *k);
        let mut i = 0;
        while i < pending.len() {
            let ((level, first), _) = pending[i];
            let chunk = first / CHUNK;
            let mut bytes = self
                .tree
                .get(chunk_key(level, chunk))?
                .map(|b| b.to_vec())
                .unwrap_or_default();
            if bytes.len() as u64 != (first % CHUNK) * 32 {
                return Err(ProjectionError::Corrupt(format!(
                    "audit tree chunk {level}/{chunk} holds {} bytes",
                    bytes.len()
                )));
            }
            while i < pending.len() && pending[i].0 .0 == level && pending[i].0 .1 / CHUNK == chunk
            {
                bytes.extend_from_slice(&pending[i].1);
                i += 1;
            }
            batch.insert(chunk_key(level, chunk), bytes);
        }
        batch.insert(STATUS, status.encode());
        batch.commit()?;
        drop(edge);
        metrics::gauge!("iga_audit_tree_size").set(status.size as f64);
        self.status.send_replace(status);
        Ok(())
    }

    /// Checks a checkpoint event at leaf `index` against the tree before it.
    fn check_checkpoint(
        &self,
        event: &RecordedEvent,
        index: u64,
        pending: &HashMap<(u32, u64), Hash>,
    ) -> Result<CheckpointRecord> {
        let head = match event.envelope.decode_event() {
            Ok(DomainEvent::AuditCheckpointSigned(h)) => h,
            _ => {
                return Err(ProjectionError::Corrupt(format!(
                    "checkpoint at position {} cannot be decoded",
                    event.position
                )))
            }
        };
        let problem = if let Err(e) = crate::tree_head::verify(&head) {
            Some(e.to_string())
        } else if head.tree_size > index {
            Some(format!(
                "it signs {} leaves, more than the {index} before it",
                head.tree_size
            ))
        } else {
            let nodes = Overlay {
                tree: &self.tree,
                pending,
            };
            let ours = merkle::root(&nodes, head.tree_size)?;
            (ours.as_slice() != head.root_hash.as_slice()).then(|| {
                format!(
                    "its root is not the tree's at size {} (the log or the tree was changed)",
                    head.tree_size
                )
            })
        };
        if let Some(p) = &problem {
            tracing::error!(position = event.position, tree_size = head.tree_size, problem = %p, "audit checkpoint does not hold");
            metrics::counter!("iga_audit_checkpoints_failed_total").increment(1);
        }
        Ok(CheckpointRecord {
            head,
            position: event.position,
            problem,
        })
    }

    fn note_key(
        &self,
        head: &AuditCheckpointSigned,
        batch: &mut crate::store::TreeBatch,
    ) -> Result<()> {
        let key = format!("k/{}", head.key_id).into_bytes();
        let record = match self.tree.get(&key)? {
            Some(b) => {
                let mut r: KeyRecord = serde_json::from_slice(&b)
                    .map_err(|e| ProjectionError::Corrupt(format!("audit key: {e}")))?;
                r.last_signed_at_micros = r.last_signed_at_micros.max(head.signed_at_micros);
                r
            }
            None => KeyRecord {
                key_id: head.key_id.clone(),
                origin: head.origin.clone(),
                public_key: head.public_key.clone(),
                first_signed_at_micros: head.signed_at_micros,
                first_tree_size: head.tree_size,
                last_signed_at_micros: head.signed_at_micros,
            },
        };
        batch.insert(
            key,
            serde_json::to_vec(&record).expect("a record serializes"),
        );
        Ok(())
    }

    /// Follows the log from the tree's last leaf until `shutdown`, hashing
    /// whatever has arrived in batches of up to [`MAX_BATCH`]. A backlog is
    /// read with plain reads, the next batch read while the last is hashed;
    /// then the live log through a subscription.
    pub async fn follow(
        self: Arc<Self>,
        store: Arc<dyn EventStore>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<()> {
        let mut after = self.status().position;
        tracing::info!(position = after, "audit tree following the log");
        let mut hashing: Option<tokio::task::JoinHandle<Result<()>>> = None;
        loop {
            let batch = tokio::select! {
                b = store.read_all(after, MAX_BATCH) => b?,
                _ = shutdown.wait_for(|s| *s) => return Ok(()),
            };
            if let Some(previous) = hashing.take() {
                previous.await.expect("audit tree batch panicked")?;
            }
            let Some(last) = batch.last() else { break };
            after = last.position;
            let full = batch.len() == MAX_BATCH;
            let tree = self.clone();
            hashing = Some(tokio::task::spawn_blocking(move || tree.append(&batch)));
            if !full {
                break;
            }
        }
        if let Some(previous) = hashing.take() {
            previous.await.expect("audit tree batch panicked")?;
        }
        let mut sub = store.subscribe(after).await?;
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
            while batch.len() < MAX_BATCH {
                match sub.next().now_or_never() {
                    Some(Some(ev)) => batch.push(ev?),
                    _ => break,
                }
            }
            let events = std::mem::take(&mut batch);
            if events.len() <= crate::runner::INLINE_BATCH {
                // As the projection runner does: a few hashes and one fjall
                // batch cost less than a thread hand-off.
                self.append(&events)?;
            } else {
                let tree = self.clone();
                tokio::task::spawn_blocking(move || tree.append(&events))
                    .await
                    .expect("audit tree batch panicked")?;
            }
        }
    }

    /// The root of the tree of the first `size` leaves; `None` when the
    /// tree is not that large (yet).
    pub fn root(&self, size: u64) -> Result<Option<Hash>> {
        if size > self.status().size {
            return Ok(None);
        }
        merkle::root(&Stored(&self.tree), size).map(Some)
    }

    /// The leaf index of the event at log `position`.
    pub fn index_of(&self, position: Position) -> Result<Option<u64>> {
        let run = self
            .tree
            .range(u64_key(b"q/", 0)..=u64_key(b"q/", position))
            .next_back();
        let Some(run) = run else { return Ok(None) };
        let (k, v) = run?;
        let index = be(&v)? + (position - be(&k[2..])?);
        // Inside the run only if no later run starts at or before it.
        Ok((self.position_of(index)? == Some(position)).then_some(index))
    }

    /// The log position of leaf `index`.
    pub fn position_of(&self, index: u64) -> Result<Option<Position>> {
        if index >= self.status().size {
            return Ok(None);
        }
        let run = self
            .tree
            .range(u64_key(b"r/", 0)..=u64_key(b"r/", index))
            .next_back();
        let Some(run) = run else { return Ok(None) };
        let (k, v) = run?;
        Ok(Some(be(&v)? + (index - be(&k[2..])?)))
    }

    /// The stored hash of leaf `index`, if the tree has it.
    pub fn leaf(&self, index: u64) -> Result<Option<Hash>> {
        if index >= self.status().size {
            return Ok(None);
        }
        stored_node(&self.tree, 0, index).map(Some)
    }

    /// The inclusion proof of leaf `index` in the tree of the first `size`
    /// leaves; `None` unless `index` < `size` <= the tree's size.
    pub fn inclusion(&self, index: u64, size: u64) -> Result<Option<Vec<Hash>>> {
        if index >= size || size > self.status().size {
            return Ok(None);
        }
        merkle::inclusion_proof(&Stored(&self.tree), index, size).map(Some)
    }

    /// The consistency proof between the trees of the first `from` and
    /// `to` leaves; `None` unless 0 < `from` <= `to` <= the tree's size.
    pub fn consistency(&self, from: u64, to: u64) -> Result<Option<Vec<Hash>>> {
        if from == 0 || from > to || to > self.status().size {
            return Ok(None);
        }
        merkle::consistency_proof(&Stored(&self.tree), from, to).map(Some)
    }

    /// Up to `limit` checkpoints found in the log signing more than `after`
    /// leaves, smallest first.
    pub fn checkpoints(&self, after: u64, limit: usize) -> Result<Vec<CheckpointRecord>> {
        self.tree
            .range(u64_key(b"c/", after.saturating_add(1))..u64_key(b"c/", u64::MAX))
            .take(limit)
            .map(|kv| {
                let (_, v) = kv?;
                serde_json::from_slice(&v)
                    .map_err(|e| ProjectionError::Corrupt(format!("audit checkpoint: {e}")))
            })
            .collect()
    }

    /// The latest checkpoint found in the log.
    pub fn latest_checkpoint(&self) -> Result<Option<CheckpointRecord>> {
        match self.tree.scan_prefix(b"c/").next_back() {
            Some(kv) => {
                let (_, v) = kv?;
                serde_json::from_slice(&v)
                    .map(Some)
                    .map_err(|e| ProjectionError::Corrupt(format!("audit checkpoint: {e}")))
            }
            None => Ok(None),
        }
    }

    /// The latest checkpoint found in the log whose signature and root hold.
    pub fn latest_verified(&self) -> Result<Option<CheckpointRecord>> {
        for kv in self.tree.scan_prefix(b"c/").rev() {
            let (_, v) = kv?;
            let record: CheckpointRecord = serde_json::from_slice(&v)
                .map_err(|e| ProjectionError::Corrupt(format!("audit checkpoint: {e}")))?;
            if record.problem.is_none() {
                return Ok(Some(record));
            }
        }
        Ok(None)
    }

    /// Every key that signed a valid checkpoint.
    pub fn keys(&self) -> Result<Vec<KeyRecord>> {
        self.tree
            .scan_prefix(b"k/")
            .map(|kv| {
                let (_, v) = kv?;
                serde_json::from_slice(&v)
                    .map_err(|e| ProjectionError::Corrupt(format!("audit key: {e}")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iga_schemas::EventEnvelope;

    fn event(position: u64) -> RecordedEvent {
        RecordedEvent {
            position,
            envelope: EventEnvelope {
                event_id: format!("e{position}"),
                event_type: "iga.v1.UserCreated".into(),
                ..Default::default()
            },
        }
    }

    #[test]
    fn positions_with_gaps_map_to_leaves_and_back_and_chunks_span_batches() {
        let db = crate::store::Db::temporary().unwrap();
        let tree = LogTree::open(db.open_tree(NAME).unwrap()).unwrap();
        // Gaps as a log with holes in its positions (JetStream) would have;
        // batches of odd sizes so chunks and subtrees span them.
        let positions: Vec<u64> = (1..=70).chain(75..=150).chain([400, 401, 900]).collect();
        for batch in positions.chunks(37) {
            let events: Vec<RecordedEvent> = batch.iter().map(|p| event(*p)).collect();
            tree.append(&events).unwrap();
        }
        // Seen again (a replay after a restart): nothing changes.
        tree.append(&[event(75), event(76)]).unwrap();
        assert_eq!(tree.status().size, positions.len() as u64);
        for (i, p) in positions.iter().enumerate() {
            assert_eq!(tree.index_of(*p).unwrap(), Some(i as u64), "position {p}");
            assert_eq!(tree.position_of(i as u64).unwrap(), Some(*p));
        }
        for missing in [0, 71, 74, 151, 399, 402, 901] {
            assert_eq!(tree.index_of(missing).unwrap(), None, "position {missing}");
        }
        assert_eq!(tree.position_of(positions.len() as u64).unwrap(), None);
        // Reopened, it goes on from the same right edge.
        let size = tree.status().size;
        let root = tree.root(size).unwrap().unwrap();
        drop(tree);
        let tree = LogTree::open(db.open_tree(NAME).unwrap()).unwrap();
        assert_eq!(tree.root(size).unwrap(), Some(root));
        tree.append(&[event(1000)]).unwrap();
        let leaves: Vec<Hash> = positions
            .iter()
            .chain([1000].iter())
            .map(|p| leaf_hash(&leaf_bytes(&event(*p))))
            .collect();
        struct Mem(Vec<Hash>);
        impl Nodes for Mem {
            type Error = ();
            fn node(&self, level: u32, index: u64) -> std::result::Result<Hash, ()> {
                let lo = (index << level) as usize;
                let hi = lo + (1 << level);
                fn mth(l: &[Hash]) -> Hash {
                    if l.len() == 1 {
                        return l[0];
                    }
                    let k = l.len() / 2;
                    node_hash(&mth(&l[..k]), &mth(&l[k..]))
                }
                Ok(mth(&self.0[lo..hi]))
            }
        }
        let n = leaves.len() as u64;
        assert_eq!(
            tree.root(n).unwrap().unwrap(),
            merkle::root(&Mem(leaves), n).unwrap()
        );
    }
}
