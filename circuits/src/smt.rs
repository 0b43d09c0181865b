//! Sparse Merkle tree over Poseidon with precomputed empty-subtree hashes.

use std::collections::HashMap;

use halo2_base::halo2_proofs::halo2curves::bn256::Fr;

use crate::poseidon::hash2;

/// A sparse Merkle tree of fixed depth; only non-empty nodes are stored.
#[derive(Debug, Clone)]
pub struct SparseMerkleTree {
    depth: usize,
    /// `empty[l]` = hash of an empty subtree of height `l` (`empty[0]` = empty leaf).
    empty: Vec<Fr>,
    nodes: HashMap<(usize, u64), Fr>,
}

impl SparseMerkleTree {
    /// An empty tree whose empty leaves hash to `empty_leaf`.
    pub fn new(depth: usize, empty_leaf: Fr) -> Self {
        let mut empty = vec![empty_leaf];
        for l in 0..depth {
            empty.push(hash2(empty[l], empty[l]));
        }
        SparseMerkleTree { depth, empty, nodes: HashMap::new() }
    }

    fn node(&self, level: usize, index: u64) -> Fr {
        self.nodes.get(&(level, index)).copied().unwrap_or(self.empty[level])
    }

    /// The root.
    pub fn root(&self) -> Fr {
        self.node(self.depth, 0)
    }

    /// Siblings of leaf `index`, leaf level first.
    pub fn path(&self, index: u64) -> Vec<Fr> {
        (0..self.depth).map(|l| self.node(l, (index >> l) ^ 1)).collect()
    }

    /// Sets leaf `index` to `leaf` and rehashes its path.
    pub fn update(&mut self, index: u64, leaf: Fr) {
        assert!(self.depth >= 64 || index < (1u64 << self.depth), "leaf index outside the tree");
        let mut h = leaf;
        let mut idx = index;
        for l in 0..self.depth {
            self.set(l, idx, h);
            let sib = self.node(l, idx ^ 1);
            h = if idx & 1 == 0 { hash2(h, sib) } else { hash2(sib, h) };
            idx >>= 1;
        }
        self.set(self.depth, 0, h);
    }

    fn set(&mut self, level: usize, index: u64, h: Fr) {
        if h == self.empty[level] {
            self.nodes.remove(&(level, index));
        } else {
            self.nodes.insert((level, index), h);
        }
    }
}

/// Root from a leaf, its index and its siblings (leaf level first).
pub fn root_from_path(leaf: Fr, index: u64, siblings: &[Fr]) -> Fr {
    siblings.iter().enumerate().fold(
        leaf,
        |h, (l, sib)| {
            if (index >> l) & 1 == 0 {
                hash2(h, *sib)
            } else {
                hash2(*sib, h)
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_roots_and_empty_is_canonical() {
        let mut t = SparseMerkleTree::new(5, Fr::from(7));
        let empty_root = t.root();
        t.update(3, Fr::from(11));
        t.update(17, Fr::from(12));
        for i in [0u64, 3, 17, 31] {
            let leaf = if i == 3 {
                Fr::from(11)
            } else if i == 17 {
                Fr::from(12)
            } else {
                Fr::from(7)
            };
            assert_eq!(root_from_path(leaf, i, &t.path(i)), t.root());
        }
        t.update(3, Fr::from(7));
        t.update(17, Fr::from(7));
        assert_eq!(t.root(), empty_root);
        assert!(t.nodes.is_empty());
    }
}
