//! The log as a Merkle tree, the way Certificate Transparency builds one
//! (RFC 9162 §2.1): SHA-256, a leaf hashed as `H(0x00 || leaf)`, two
//! subtrees as `H(0x01 || left || right)`, a tree of `n` leaves split at the
//! largest power of two below `n`. Every function here reads the tree only
//! through `node(level, index)`: the hash of the perfect subtree of `2^level`
//! leaves starting at leaf `index << level`. Those never change once their
//! last leaf is in, so they can be stored as the log grows (the
//! [`crate::audit_tree`] store), and the hash of any tree size, any
//! inclusion proof and any consistency proof is computed from O(log n) of
//! them, for the tree as it was at any size.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// `H(0x00 || leaf)`.
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(leaf);
    h.finalize().into()
}

/// `H(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two smaller than `n` (`n` > 1).
fn split(n: u64) -> u64 {
    debug_assert!(n > 1);
    1 << (63 - (n - 1).leading_zeros())
}

/// How the tree's stored perfect subtrees are read.
pub trait Nodes {
    type Error;
    /// The hash of the perfect subtree of `2^level` leaves from leaf
    /// `index << level`.
    fn node(&self, level: u32, index: u64) -> Result<Hash, Self::Error>;
}

/// MTH(D[lo:hi]): the hash of leaves `lo..hi` (`lo` < `hi`).
fn range_hash<N: Nodes>(nodes: &N, lo: u64, hi: u64) -> Result<Hash, N::Error> {
    let n = hi - lo;
    if n.is_power_of_two() && lo.is_multiple_of(n) {
        return nodes.node(n.trailing_zeros(), lo >> n.trailing_zeros());
    }
    let k = split(n);
    Ok(node_hash(
        &range_hash(nodes, lo, lo + k)?,
        &range_hash(nodes, lo + k, hi)?,
    ))
}

/// The root hash of the tree of the first `size` leaves (the empty tree:
/// the hash of nothing).
pub fn root<N: Nodes>(nodes: &N, size: u64) -> Result<Hash, N::Error> {
    if size == 0 {
        return Ok(Sha256::digest([]).into());
    }
    range_hash(nodes, 0, size)
}

/// PATH(m, D[0:size]): the inclusion proof of leaf `m` in the tree of the
/// first `size` leaves (`m` < `size`), nearest the leaf first.
pub fn inclusion_proof<N: Nodes>(nodes: &N, m: u64, size: u64) -> Result<Vec<Hash>, N::Error> {
    let mut path = Vec::new();
    let (mut lo, mut hi) = (0, size);
    // Walk down from the root, keeping the sibling of each step; then
    // reverse, since the proof lists them from the leaf up.
    while hi - lo > 1 {
        let k = split(hi - lo);
        if m < lo + k {
            path.push(range_hash(nodes, lo + k, hi)?);
            hi = lo + k;
        } else {
            path.push(range_hash(nodes, lo, lo + k)?);
            lo += k;
        }
    }
    path.reverse();
    Ok(path)
}

/// PROOF(m, D[0:size]): the consistency proof between the trees of the
/// first `m` and the first `size` leaves (0 < `m` <= `size`).
pub fn consistency_proof<N: Nodes>(nodes: &N, m: u64, size: u64) -> Result<Vec<Hash>, N::Error> {
    let mut proof = Vec::new();
    if m == size {
        return Ok(proof);
    }
    subproof(nodes, m, 0, size, true, &mut proof)?;
    Ok(proof)
}

/// SUBPROOF(m, D[lo:hi], b), appending to `out`.
fn subproof<N: Nodes>(
    nodes: &N,
    m: u64,
    lo: u64,
    hi: u64,
    whole: bool,
    out: &mut Vec<Hash>,
) -> Result<(), N::Error> {
    let n = hi - lo;
    if m == n {
        if !whole {
            out.push(range_hash(nodes, lo, hi)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(nodes, m, lo, lo + k, whole, out)?;
        out.push(range_hash(nodes, lo + k, hi)?);
    } else {
        subproof(nodes, m - k, lo + k, hi, false, out)?;
        out.push(range_hash(nodes, lo, lo + k)?);
    }
    Ok(())
}

/// Whether `proof` shows the leaf hashed `leaf` at index `m` in the tree of
/// `size` leaves whose root is `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, m: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if m >= size {
        return false;
    }
    let (mut f_n, mut s_n) = (m, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && r == *root
}

/// Whether `proof` shows the tree of `size2` leaves (root `root2`) extends
/// the tree of `size1` leaves (root `root1`) (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    proof: &[Hash],
    root1: &Hash,
    root2: &Hash,
) -> bool {
    if size1 > size2 {
        return false;
    }
    if size1 == size2 {
        return proof.is_empty() && root1 == root2;
    }
    if size1 == 0 {
        return proof.is_empty();
    }
    let mut path: Vec<Hash> = proof.to_vec();
    if size1.is_power_of_two() {
        path.insert(0, *root1);
    }
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut f_n, mut s_n) = (size1 - 1, size2 - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    fr == *root1 && sr == *root2 && s_n == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every perfect subtree of some leaves, computed naively.
    struct Leaves(Vec<Vec<u8>>);

    impl Nodes for Leaves {
        type Error = ();
        fn node(&self, level: u32, index: u64) -> Result<Hash, ()> {
            let lo = (index << level) as usize;
            let hi = lo + (1usize << level);
            if hi > self.0.len() {
                return Err(());
            }
            Ok(naive(&self.0[lo..hi]))
        }
    }

    /// MTH as RFC 9162 writes it, recursively over the leaves themselves.
    fn naive(leaves: &[Vec<u8>]) -> Hash {
        match leaves.len() {
            0 => Sha256::digest([]).into(),
            1 => leaf_hash(&leaves[0]),
            n => {
                let k = split(n as u64) as usize;
                node_hash(&naive(&leaves[..k]), &naive(&leaves[k..]))
            }
        }
    }

    fn leaves(n: usize) -> Leaves {
        Leaves((0..n).map(|i| format!("event {i}").into_bytes()).collect())
    }

    /// ct-merkle (an independent implementation) over the same leaves.
    fn reference(
        l: &Leaves,
    ) -> ct_merkle::mem_backed_tree::MemoryBackedTree<sha2_011::Sha256, Vec<u8>> {
        let mut tree = ct_merkle::mem_backed_tree::MemoryBackedTree::new();
        for leaf in &l.0 {
            tree.push(leaf.clone());
        }
        tree
    }

    #[test]
    fn the_empty_tree_and_one_leaf_hash_as_rfc_9162_says() {
        assert_eq!(
            hex::encode(root(&leaves(0), 0).unwrap()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(root(&leaves(1), 1).unwrap(), leaf_hash(b"event 0"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn roots_and_proofs_match_an_independent_implementation(n in 1usize..140, pick in 0usize..1000) {
            let l = leaves(n);
            let tree = reference(&l);
            let r = root(&l, n as u64).unwrap();
            let theirs_root = tree.root();
            prop_assert_eq!(&r[..], &theirs_root.as_bytes()[..]);
            prop_assert_eq!(r, naive(&l.0));
            let m = (pick % n) as u64;
            let proof = inclusion_proof(&l, m, n as u64).unwrap();
            let theirs = tree.prove_inclusion(m as usize);
            prop_assert_eq!(proof.concat(), theirs.as_bytes().to_vec());
            prop_assert!(verify_inclusion(&leaf_hash(&l.0[m as usize]), m, n as u64, &proof, &r));
            // A proof says nothing of another leaf, index or root.
            prop_assert!(!verify_inclusion(&leaf_hash(b"forged"), m, n as u64, &proof, &r));
            if n > 1 {
                let other = (m + 1) % n as u64;
                prop_assert!(!verify_inclusion(&leaf_hash(&l.0[m as usize]), other, n as u64, &proof, &r));
            }
            // Consistency from every older size.
            let old = 1 + (pick % n) as u64;
            let proof = consistency_proof(&l, old, n as u64).unwrap();
            let theirs = tree.prove_consistency(n - old as usize);
            prop_assert_eq!(proof.concat(), theirs.as_bytes().to_vec());
            let old_root = naive(&l.0[..old as usize]);
            prop_assert!(verify_consistency(old, n as u64, &proof, &old_root, &r));
            prop_assert!(!verify_consistency(old, n as u64, &proof, &leaf_hash(b"forged"), &r));
        }

        #[test]
        fn a_past_size_is_proved_from_the_nodes_of_a_larger_tree(n in 2usize..140, pick in 0usize..1000) {
            // The stored nodes of the whole tree answer for any smaller size.
            let l = leaves(n);
            let size = 1 + (pick % (n - 1)) as u64;
            let past = Leaves(l.0[..size as usize].to_vec());
            prop_assert_eq!(root(&l, size).unwrap(), naive(&past.0));
            let m = (pick % size as usize) as u64;
            prop_assert_eq!(
                inclusion_proof(&l, m, size).unwrap(),
                inclusion_proof(&past, m, size).unwrap()
            );
        }
    }
}
