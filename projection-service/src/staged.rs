//! Writes of one batch of events, staged over a projection's tree so that
//! later events in the batch read what earlier ones wrote.
//!
//! Values written with [`Staged::put_value`] stay objects until the batch is
//! committed: an event that reads a view an earlier event of the batch wrote
//! gets it back without parsing, and a view changed by many events of a batch
//! is encoded once. (During a rebuild a batch is thousands of events.)

use std::any::Any;
use std::collections::BTreeMap;

use serde::{de::DeserializeOwned, Serialize};

use crate::{ProjectionError, Result};

/// A staged value.
enum Value {
    Bytes(Vec<u8>),
    Removed,
    /// A typed object and how to encode it.
    Object(Box<dyn Any + Send>, fn(&dyn Any) -> Vec<u8>),
}

fn encode<T: Serialize + 'static>(object: &dyn Any) -> Vec<u8> {
    encode_value(
        object
            .downcast_ref::<T>()
            .expect("staged object of its own type"),
    )
}

/// The version of the encoding of typed read-model values, part of every
/// read model's stored layout (0 was JSON). Changing it makes every read
/// model refill from the log on its next open.
pub const VALUE_ENCODING: u32 = 1;

/// Encodes a typed read-model value: MessagePack with structs as arrays.
/// No field names are stored, so a request view takes half its JSON size;
/// smaller values are cheaper to write, cache and read. The
/// price: adding, removing or reordering a stored type's fields changes its
/// projection's [`crate::Projection::layout`].
pub fn encode_value<T: Serialize>(value: &T) -> Vec<u8> {
    rmp_serde::to_vec(value).expect("read model values serialize")
}

/// Decodes a value written by [`encode_value`]. The error is the codec's;
/// callers say what was being read.
pub fn decode_value<T: DeserializeOwned>(bytes: &[u8]) -> std::result::Result<T, DecodeError> {
    rmp_serde::from_slice(bytes)
}

pub use rmp_serde::decode::Error as DecodeError;

impl Value {
    fn bytes(&self) -> Option<Vec<u8>> {
        match self {
            Value::Bytes(b) => Some(b.clone()),
            Value::Removed => None,
            Value::Object(o, enc) => Some(enc(o.as_ref())),
        }
    }
}

pub struct Staged<'a> {
    tree: &'a crate::store::Tree,
    writes: BTreeMap<Vec<u8>, Value>,
}

impl<'a> Staged<'a> {
    pub fn new(tree: &'a crate::store::Tree) -> Self {
        Staged {
            tree,
            writes: BTreeMap::new(),
        }
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.writes.get(key) {
            Some(v) => Ok(v.bytes()),
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
                Value::Removed => keys.remove(k),
                _ => keys.insert(k.clone()),
            };
        }
        Ok(keys.into_iter().collect())
    }

    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.writes.insert(key.into(), Value::Bytes(value.into()));
    }

    pub fn delete(&mut self, key: impl Into<Vec<u8>>) {
        self.writes.insert(key.into(), Value::Removed);
    }

    pub fn get_value<T: DeserializeOwned + Clone + 'static>(
        &self,
        key: &[u8],
    ) -> Result<Option<T>> {
        if let Some(Value::Object(o, _)) = self.writes.get(key) {
            if let Some(v) = o.downcast_ref::<T>() {
                return Ok(Some(v.clone()));
            }
        }
        self.get_value_bytes(key)
    }

    /// Moves the value at `key` out, to be changed and put back with
    /// [`Staged::put_owned`]: a view staged by an earlier event of the batch
    /// comes back without a copy (a request view is dozens of strings, and
    /// a rebuild folds every request event into one). Until it is put back,
    /// the key reads as the tree has it.
    pub fn take_value<T: DeserializeOwned + 'static>(&mut self, key: &[u8]) -> Result<Option<T>> {
        let staged_object =
            matches!(self.writes.get(key), Some(Value::Object(o, _)) if o.is::<T>());
        if staged_object {
            if let Some(Value::Object(o, _)) = self.writes.remove(key) {
                let v = o.downcast::<T>().expect("checked above");
                return Ok(Some(*v));
            }
        }
        // Staged bytes or a removal stay staged: read through them.
        self.get_value_bytes(key)
    }

    fn get_value_bytes<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>> {
        self.get(key)?
            .map(|v| decode_value(&v).map_err(|e| ProjectionError::Corrupt(e.to_string())))
            .transpose()
    }

    /// Stages `value` at `key`, like [`Staged::put_value`] without a copy.
    pub fn put_owned<T: Serialize + Send + 'static>(&mut self, key: impl Into<Vec<u8>>, value: T) {
        self.writes
            .insert(key.into(), Value::Object(Box::new(value), encode::<T>));
    }

    pub fn put_value<T: Serialize + Clone + Send + 'static>(
        &mut self,
        key: impl Into<Vec<u8>>,
        value: &T,
    ) {
        self.put_owned(key, value.clone());
    }

    /// Whether nothing is staged.
    pub(crate) fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// The staged writes, in key order (`None`: removed), objects encoded.
    /// A removal of a key the tree does not hold is left out: a key put and
    /// removed within one batch (a task opened and closed, a timer set and
    /// cleared) then costs a read instead of a write, and a rebuild's large
    /// batches are mostly such keys.
    pub(crate) fn into_writes(self) -> Result<crate::Writes> {
        let tree = self.tree;
        let mut out = Vec::with_capacity(self.writes.len());
        for (k, v) in self.writes {
            match v.bytes() {
                Some(bytes) => out.push((k, Some(bytes))),
                None if tree.contains_key(&k)? => out.push((k, None)),
                None => {}
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_value_is_the_staged_one_and_comes_back_when_put() {
        let db = crate::store::Db::temporary().unwrap();
        let tree = db.open_tree("t").unwrap();
        tree.insert(b"v", encode_value(&vec![1u32])).unwrap();
        let mut staged = Staged::new(&tree);
        staged.put_owned(b"v".to_vec(), vec![1u32, 2]);
        // The batch's own value, not the tree's.
        let mut v: Vec<u32> = staged.take_value(b"v").unwrap().unwrap();
        assert_eq!(v, vec![1, 2]);
        // Until it is put back, the key reads as the tree has it.
        assert_eq!(staged.get_value::<Vec<u32>>(b"v").unwrap(), Some(vec![1]));
        v.push(3);
        staged.put_owned(b"v".to_vec(), v);
        assert_eq!(
            staged.into_writes().unwrap(),
            vec![(b"v".to_vec(), Some(encode_value(&vec![1u32, 2, 3])))]
        );
        // Staged bytes and removals are read, and stay staged.
        let mut other = Staged::new(&tree);
        other.delete(b"v".to_vec());
        assert_eq!(other.take_value::<Vec<u32>>(b"v").unwrap(), None);
        assert_eq!(other.into_writes().unwrap(), vec![(b"v".to_vec(), None)]);
        // Not staged: decoded from the tree.
        let mut fresh = Staged::new(&tree);
        assert_eq!(fresh.take_value::<Vec<u32>>(b"v").unwrap(), Some(vec![1]));
        assert_eq!(fresh.take_value::<Vec<u32>>(b"none").unwrap(), None);
    }

    #[test]
    fn removing_what_the_tree_never_held_writes_nothing() {
        let db = crate::store::Db::temporary().unwrap();
        let tree = db.open_tree("t").unwrap();
        tree.insert(b"held", b"1").unwrap();
        let mut staged = Staged::new(&tree);
        staged.put(b"opened".to_vec(), b"x".to_vec());
        staged.delete(b"opened".to_vec()); // opened and closed in one batch
        staged.delete(b"never".to_vec());
        staged.delete(b"held".to_vec());
        staged.put(b"kept".to_vec(), b"y".to_vec());
        assert_eq!(
            staged.into_writes().unwrap(),
            vec![
                (b"held".to_vec(), None),
                (b"kept".to_vec(), Some(b"y".to_vec())),
            ]
        );
    }
}
