//! Writes of one batch of events, staged over a projection's tree so that
//! later events in the batch read what earlier ones wrote.

use std::collections::BTreeMap;

use serde::{de::DeserializeOwned, Serialize};

use crate::{ProjectionError, Result};

pub struct Staged<'a> {
    tree: &'a sled::Tree,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl<'a> Staged<'a> {
    pub fn new(tree: &'a sled::Tree) -> Self {
        Staged {
            tree,
            writes: BTreeMap::new(),
        }
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.writes.get(key) {
            Some(v) => Ok(v.clone()),
            None => Ok(self.tree.get(key)?.map(|v| v.to_vec())),
        }
    }

    /// Keys under `prefix`, staged writes included, in key order.
    pub fn keys_with_prefix(&self, prefix: &[u8]) -> Result<Vec<Vec<u8>>> {
        let mut keys = std::collections::BTreeSet::new();
        for kv in self.tree.scan_prefix(prefix) {
            keys.insert(kv?.0.to_vec());
        }
        for (k, v) in self.writes.range(prefix.to_vec()..) {
            if !k.starts_with(prefix) {
                break;
            }
            match v {
                Some(_) => keys.insert(k.clone()),
                None => keys.remove(k),
            };
        }
        Ok(keys.into_iter().collect())
    }

    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.writes.insert(key.into(), Some(value.into()));
    }

    pub fn delete(&mut self, key: impl Into<Vec<u8>>) {
        self.writes.insert(key.into(), None);
    }

    pub fn get_json<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>> {
        self.get(key)?
            .map(|v| {
                serde_json::from_slice(&v).map_err(|e| ProjectionError::Corrupt(e.to_string()))
            })
            .transpose()
    }

    pub fn put_json<T: Serialize>(&mut self, key: impl Into<Vec<u8>>, value: &T) {
        self.put(
            key,
            serde_json::to_vec(value).expect("read model values serialize"),
        );
    }

    /// Whether nothing is staged.
    pub(crate) fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// The staged writes, in key order (`None`: removed).
    pub(crate) fn into_writes(self) -> crate::Writes {
        self.writes.into_iter().collect()
    }
}

/// One sled batch of `writes`.
pub(crate) fn batch_of(writes: &crate::Writes) -> sled::Batch {
    let mut batch = sled::Batch::default();
    for (k, v) in writes {
        match v {
            Some(v) => batch.insert(k.as_slice(), v.as_slice()),
            None => batch.remove(k.as_slice()),
        }
    }
    batch
}
