//! Sparse Merkle tree over Poseidon with precomputed empty-subtree hashes.
//!
//! The tree is [`ARITY`]-ary (a node is one width-5 permutation of its four
//! children): a tree for `depth` binary levels (`2^depth` leaves) has
//! `depth.div_ceil(2)` levels, and a leaf's position at level `l` is digit
//! `l` of its index in base 4 (bits `2l` and `2l + 1`).

use std::collections::BTreeMap;

use halo2_base::halo2_proofs::halo2curves::bn256::Fr;

use crate::poseidon::{node, RATE};

/// Children per node.
pub const ARITY: usize = RATE;
/// Siblings per level of a path.
pub const SIBLINGS: usize = ARITY - 1;

/// Levels of a tree holding `2^depth` leaves.
pub fn levels(depth: usize) -> usize {
    depth.div_ceil(2)
}

/// The position of leaf `index` among its siblings at `level`.
pub fn digit(index: u64, level: usize) -> usize {
    ((index >> (2 * level)) & 3) as usize
}

/// The children of a node: `h` at position `pos`, the siblings in order around it.
pub fn children(h: Fr, pos: usize, siblings: &[Fr]) -> [Fr; ARITY] {
    std::array::from_fn(|j| match j.cmp(&pos) {
        std::cmp::Ordering::Less => siblings[j],
        std::cmp::Ordering::Equal => h,
        std::cmp::Ordering::Greater => siblings[j - 1],
    })
}

/// A sparse Merkle tree of fixed depth; only non-empty nodes are stored.
///
/// Hashing is lazy: [`SparseMerkleTree::update`] sets the leaf and marks
/// the nodes above it pending, and a pending node is hashed when something
/// reads it ([`SparseMerkleTree::hash_path`], [`SparseMerkleTree::rehash`]).
/// A node that several updates pass through before anything reads it (the
/// top levels, and every level neighbouring accounts share) is hashed once,
/// not once per update. [`SparseMerkleTree::root`] and
/// [`SparseMerkleTree::path`] read pending nodes too, hashing them without
/// keeping the result.
#[derive(Debug, Clone)]
pub struct SparseMerkleTree {
    depth: usize,
    /// `empty[l]` = hash of an empty subtree of height `l` (`empty[0]` = empty leaf).
    empty: Vec<Fr>,
    /// Persistent maps: clones share them (see [`crate::state::ChainState`]).
    nodes: imbl::HashMap<(usize, u64), Fr>,
    /// Nodes whose entry in `nodes` is not their hash yet; every ancestor of
    /// a pending node is pending.
    pending: imbl::HashSet<(usize, u64)>,
}

impl SparseMerkleTree {
    /// An empty tree for `2^depth` leaves whose empty leaves hash to `empty_leaf`.
    pub fn new(depth: usize, empty_leaf: Fr) -> Self {
        let mut empty = vec![empty_leaf];
        for l in 0..levels(depth) {
            empty.push(node(&[empty[l]; ARITY]));
        }
        SparseMerkleTree { depth, empty, nodes: imbl::HashMap::new(), pending: imbl::HashSet::new() }
    }

    fn levels(&self) -> usize {
        levels(self.depth)
    }

    fn stored(&self, level: usize, index: u64) -> Fr {
        self.nodes.get(&(level, index)).copied().unwrap_or(self.empty[level])
    }

    /// A node's hash (pending ones hashed here and not kept).
    fn node(&self, level: usize, index: u64) -> Fr {
        if self.pending.contains(&(level, index)) {
            node(&std::array::from_fn(|j| self.node(level - 1, (index << 2) + j as u64)))
        } else {
            self.stored(level, index)
        }
    }

    /// A node's hash, hashing (and keeping) it and its pending descendants.
    fn hashed(&mut self, level: usize, index: u64) -> Fr {
        if self.pending.remove(&(level, index)).is_none() {
            return self.stored(level, index);
        }
        let h = node(&std::array::from_fn(|j| self.hashed(level - 1, (index << 2) + j as u64)));
        self.set(level, index, h);
        h
    }

    /// The root.
    pub fn root(&self) -> Fr {
        self.node(self.levels(), 0)
    }

    /// Siblings of leaf `index`, [`SIBLINGS`] per level in child order, leaf
    /// level first.
    pub fn path(&self, index: u64) -> Vec<Fr> {
        let mut out = Vec::with_capacity(SIBLINGS * self.levels());
        for l in 0..self.levels() {
            let idx = index >> (2 * l);
            let first = idx & !3;
            for j in 0..ARITY as u64 {
                if first + j != idx {
                    out.push(self.node(l, first + j));
                }
            }
        }
        out
    }

    /// [`SparseMerkleTree::path`], hashing and keeping the pending siblings.
    pub fn hash_path(&mut self, index: u64) -> Vec<Fr> {
        for l in 0..self.levels() {
            let idx = index >> (2 * l);
            for j in 0..ARITY as u64 {
                if (idx & !3) + j != idx {
                    self.hashed(l, (idx & !3) + j);
                }
            }
        }
        self.path(index)
    }

    /// Hashes every pending node: the root and every path are then read
    /// without hashing.
    pub fn rehash(&mut self) {
        self.hashed(self.levels(), 0);
    }

    /// Sets leaf `index` to `leaf`; the nodes above it are pending.
    pub fn update(&mut self, index: u64, leaf: Fr) {
        assert!(self.depth >= 64 || index < (1u64 << self.depth), "leaf index outside the tree");
        self.set(0, index, leaf);
        for l in 1..=self.levels() {
            if self.pending.insert((l, index >> (2 * l))).is_some() {
                break; // pending already, and so is everything above it
            }
        }
    }

    /// This tree, which must be empty, with `leaves` (index, hash) set:
    /// built level by level, each node hashed once (not once per leaf
    /// below it, as leaf-by-leaf updates do).
    pub fn with_leaves(mut self, leaves: impl IntoIterator<Item = (u64, Fr)>) -> Self {
        assert!(self.nodes.is_empty() && self.pending.is_empty(), "with_leaves builds an empty tree");
        let mut level: BTreeMap<u64, Fr> = leaves.into_iter().collect();
        if let Some(last) = level.keys().next_back() {
            assert!(self.depth >= 64 || *last < (1u64 << self.depth), "leaf index outside the tree");
        }
        for l in 0..self.levels() {
            let mut up = BTreeMap::new();
            for (&i, &h) in &level {
                self.set(l, i, h);
                up.entry(i >> 2).or_insert_with(|| {
                    let first = i & !3;
                    node(&std::array::from_fn(|j| level.get(&(first + j as u64)).copied().unwrap_or(self.empty[l])))
                });
            }
            level = up;
        }
        let root = level.get(&0).copied().unwrap_or(self.empty[self.levels()]);
        self.set(self.levels(), 0, root);
        self
    }

    fn set(&mut self, level: usize, index: u64, h: Fr) {
        if h == self.empty[level] {
            self.nodes.remove(&(level, index));
        } else {
            self.nodes.insert((level, index), h);
        }
    }
}

/// Root from a leaf, its index and its siblings ([`SparseMerkleTree::path`]).
pub fn root_from_path(leaf: Fr, index: u64, siblings: &[Fr]) -> Fr {
    siblings.chunks(SIBLINGS).enumerate().fold(leaf, |h, (l, sib)| node(&children(h, digit(index, l), sib)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_roots_and_empty_is_canonical() {
        let mut t = SparseMerkleTree::new(5, Fr::from(7));
        let empty_root = t.root();
        assert_eq!(t.path(0).len(), SIBLINGS * 3);
        t.update(3, Fr::from(11));
        t.update(17, Fr::from(12));
        t.update(2, Fr::from(13));
        for i in [0u64, 2, 3, 17, 31] {
            let leaf = match i {
                3 => Fr::from(11),
                17 => Fr::from(12),
                2 => Fr::from(13),
                _ => Fr::from(7),
            };
            assert_eq!(root_from_path(leaf, i, &t.path(i)), t.root());
        }
        // swapping two children of one level gives another root
        let mut p = t.path(3);
        p.swap(0, 2);
        assert_ne!(root_from_path(Fr::from(11), 3, &p), t.root());
        let built = SparseMerkleTree::new(5, Fr::from(7)).with_leaves([
            (17, Fr::from(12)),
            (3, Fr::from(11)),
            (2, Fr::from(13)),
        ]);
        assert!(!t.pending.is_empty());
        let mut hashed = t.clone();
        hashed.rehash();
        assert!(hashed.pending.is_empty());
        assert_eq!(built.nodes, hashed.nodes, "built level by level: the same nodes as leaf by leaf");
        assert_eq!(SparseMerkleTree::new(5, Fr::from(7)).with_leaves([]).root(), empty_root);
        for i in [3, 17, 2] {
            t.update(i, Fr::from(7));
        }
        assert_eq!(t.root(), empty_root);
        assert!(t.nodes.is_empty());
    }

    /// Lazy hashing gives what hashing every update at once gives: the same
    /// paths after every update, read with or without keeping the hashes,
    /// and the same root and nodes at the end.
    #[test]
    fn lazily_hashed_paths_and_roots_match_eager_ones() {
        fn eager_root(leaves: &BTreeMap<u64, Fr>) -> SparseMerkleTree {
            SparseMerkleTree::new(8, Fr::from(5)).with_leaves(leaves.iter().map(|(i, h)| (*i, *h)))
        }
        let mut lazy = SparseMerkleTree::new(8, Fr::from(5));
        let mut leaves = BTreeMap::new();
        let mut x = 1u64;
        for step in 0..60u64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            // neighbours and far leaves, and some leaves set back to empty
            let index = if step % 3 == 0 { step % 7 } else { (x >> 33) % 256 };
            let leaf = if step % 11 == 10 { Fr::from(5) } else { Fr::from(x >> 40) };
            lazy.update(index, leaf);
            leaves.insert(index, leaf);
            let eager = eager_root(&leaves);
            let read = (x >> 20) % 256;
            assert_eq!(lazy.path(read), eager.path(read));
            assert_eq!(lazy.root(), eager.root());
            if step % 2 == 0 {
                assert_eq!(lazy.hash_path(read), eager.path(read));
                assert_eq!(root_from_path(eager.stored(0, read), read, &lazy.path(read)), eager.root());
            }
        }
        lazy.rehash();
        let eager = eager_root(&leaves);
        assert!(lazy.pending.is_empty());
        assert_eq!(lazy.nodes, eager.nodes);
    }
}
