//! `LogTree`: the event log as a Merkle tree (RFC 9162; the math is in
//! [`crate::merkle`]). Leaf `i` is the `i`-th event in log order (0-based,
//! whatever the backend's positions are), its bytes the protobuf encoding
//! of the event's envelope as stored (payload included, before any
//! upcasting), so anyone holding the log can recompute every hash.
//!
//! Only perfect subtrees are stored: each is final once its last leaf is
//! in, so the read model grows by about two hashes per event and answers
//! for the tree at any past size as well as the current one.
//!
//! Keys: `n/<level: 1 byte><index: 8 bytes BE>` -> the 32-byte hash of the
//! `2^level` leaves from `index << level`; `size` -> the number of leaves
//! (8 bytes BE); `p/<position BE>` -> the event's leaf index (BE);
//! `l/<index BE>` -> the leaf's log position (BE).

use iga_eventlog::RecordedEvent;
use iga_schemas::DomainEvent;
use prost::Message;

use crate::merkle::{leaf_hash, node_hash, Hash, Nodes};
use crate::{Projection, ProjectionError, Result, Staged};

pub const NAME: &str = "audit_tree";

const SIZE: &[u8] = b"size";

pub(crate) fn node_key(level: u32, index: u64) -> Vec<u8> {
    let mut k = b"n/".to_vec();
    k.push(level as u8);
    k.extend_from_slice(&index.to_be_bytes());
    k
}

pub(crate) fn position_key(position: u64) -> Vec<u8> {
    let mut k = b"p/".to_vec();
    k.extend_from_slice(&position.to_be_bytes());
    k
}

pub(crate) fn leaf_key(index: u64) -> Vec<u8> {
    let mut k = b"l/".to_vec();
    k.extend_from_slice(&index.to_be_bytes());
    k
}

fn be(bytes: &[u8]) -> u64 {
    u64::from_be_bytes(bytes.try_into().unwrap_or_default())
}

/// The bytes of an event's leaf: its envelope as stored, protobuf-encoded.
pub fn leaf_bytes(event: &RecordedEvent) -> Vec<u8> {
    event.envelope.encode_to_vec()
}

pub struct LogTree;

impl Projection for LogTree {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply(
        &self,
        event: &RecordedEvent,
        _decoded: &DomainEvent,
        tx: &mut Staged<'_>,
    ) -> Result<()> {
        // Seen already (a batch replayed after a crash): the tree has it.
        if tx.get(&position_key(event.position))?.is_some() {
            return Ok(());
        }
        let size = tx.get(SIZE)?.map(|b| be(&b)).unwrap_or(0);
        let mut hash = leaf_hash(&leaf_bytes(event));
        tx.put(node_key(0, size), hash.to_vec());
        // Each subtree this leaf completes: its left sibling is stored.
        let (mut level, mut index) = (0u32, size);
        while index & 1 == 1 {
            let left = tx.get(&node_key(level, index - 1))?.ok_or_else(|| {
                ProjectionError::Corrupt(format!("audit tree node {level}/{}", index - 1))
            })?;
            let left: Hash = left
                .try_into()
                .map_err(|_| ProjectionError::Corrupt("audit tree node is not 32 bytes".into()))?;
            hash = node_hash(&left, &hash);
            level += 1;
            index >>= 1;
            tx.put(node_key(level, index), hash.to_vec());
        }
        tx.put(position_key(event.position), size.to_be_bytes().to_vec());
        tx.put(leaf_key(size), event.position.to_be_bytes().to_vec());
        tx.put(SIZE.to_vec(), (size + 1).to_be_bytes().to_vec());
        Ok(())
    }
}

/// The stored tree, for [`crate::merkle`]'s functions.
pub(crate) struct StoredNodes<'a>(pub &'a sled::Tree);

impl Nodes for StoredNodes<'_> {
    type Error = ProjectionError;

    fn node(&self, level: u32, index: u64) -> Result<Hash> {
        let bytes = self.0.get(node_key(level, index))?.ok_or_else(|| {
            ProjectionError::Corrupt(format!("audit tree node {level}/{index} is missing"))
        })?;
        bytes
            .as_ref()
            .try_into()
            .map_err(|_| ProjectionError::Corrupt("audit tree node is not 32 bytes".into()))
    }
}

impl StoredNodes<'_> {
    pub(crate) fn size(&self) -> Result<u64> {
        Ok(self.0.get(SIZE)?.map(|b| be(&b)).unwrap_or(0))
    }

    pub(crate) fn index_of(&self, position: u64) -> Result<Option<u64>> {
        Ok(self.0.get(position_key(position))?.map(|b| be(&b)))
    }

    pub(crate) fn position_of(&self, index: u64) -> Result<Option<u64>> {
        Ok(self.0.get(leaf_key(index))?.map(|b| be(&b)))
    }
}
