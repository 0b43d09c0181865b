//! Poseidon over BN254 Fr: the one hash of statesync (leaves, Merkle nodes,
//! the market root, the state root, the batch commitment chain and the
//! epoch's hash of commitments).
//!
//! Parameters: x^5 S-box, 8 full rounds, and the partial rounds of the
//! Poseidon paper's reference for BN254 (57 for width 3, 60 for width 5).
//! Round constants and the MDS matrix come from the paper's Grain LFSR
//! generation (`poseidon-primitives`, the generator halo2-base's own spec
//! uses, first secure MDS), so they are reproducible from the parameters;
//! the known-answer tests below compare the permutation with the published
//! test vectors of the reference implementation (`poseidonperm_x5_254_3`,
//! `poseidonperm_x5_254_5`).
//!
//! The permutation is the plain one (add round constants, S-box, MDS, every
//! round), computed the same way natively, by the custom gate of
//! [`chip`] (the batch circuit) and on halo2-base's gates ([`flex`], the
//! epoch circuit).
//!
//! Hashing is a fixed-length sponge of width [`WIDTH`]: the capacity element
//! (index 0) starts as `domain · 2^64 + length`, the rate (indices
//! 1..WIDTH) absorbs [`RATE`] inputs per permutation, the last chunk padded
//! with zeros, and the digest is element 1 after the last permutation. The
//! domain separates the uses (a leaf can never be read as a node).

pub mod chip;
pub mod flex;

use std::sync::OnceLock;

use halo2_base::halo2_proofs::{arithmetic::Field, halo2curves::bn256::Fr};
use poseidon_primitives::poseidon::primitives::Spec;

/// Width of the permutation statesync hashes with.
pub const WIDTH: usize = 5;
/// Inputs absorbed per permutation, and the arity of the accounts tree.
pub const RATE: usize = WIDTH - 1;
/// Full rounds (half before, half after the partial rounds).
pub const R_F: usize = 8;

/// Round constants and MDS matrix of one width.
#[derive(Debug, Clone)]
pub struct Params<const T: usize> {
    /// Round constants, one row per round (full and partial).
    pub rc: Vec<[Fr; T]>,
    /// The MDS matrix.
    pub mds: [[Fr; T]; T],
    /// Full rounds.
    pub r_f: usize,
    /// Partial rounds.
    pub r_p: usize,
    /// The partial rounds rearranged for native speed ([`Params::hash_permute`]).
    fast: Partial<T>,
}

/// The partial rounds of the permutation, rearranged without changing it
/// (the Poseidon paper's appendix B): the round constants of elements
/// `1..T` are moved back through the linear layers (a partial round's S-box
/// does not touch them), so that all of them are added once, before the
/// first partial round, and each partial round adds one scalar after its
/// S-box; and each round's MDS matrix is factored as a sparse matrix times
/// `diag(1, Â)`, the `diag(1, Â)` moved into the round before, so that every
/// partial round but the first multiplies by a matrix of `2T - 1` non-zero
/// entries (9 multiplications instead of 25 at width 5). The circuits
/// constrain the plain rounds; the tests check both give one permutation.
#[derive(Debug, Clone)]
struct Partial<const T: usize> {
    /// Added to the state before the first partial round.
    pre: [Fr; T],
    /// Per partial round, added to element 0 after the S-box.
    post: Vec<Fr>,
    /// The first partial round's (dense) matrix.
    first: [[Fr; T]; T],
    /// Per later partial round, its sparse matrix: row 0, and column 0
    /// below the diagonal (index 0 unused); the rest is the identity.
    sparse: Vec<([Fr; T], [Fr; T])>,
}

/// The inverse of a square matrix over Fr (Gauss–Jordan); `None` if singular.
fn invert(m: &[Vec<Fr>]) -> Option<Vec<Vec<Fr>>> {
    let n = m.len();
    let mut a: Vec<Vec<Fr>> = m
        .iter()
        .enumerate()
        .map(|(i, row)| row.iter().copied().chain((0..n).map(|j| if i == j { Fr::ONE } else { Fr::ZERO })).collect())
        .collect();
    for c in 0..n {
        let p = (c..n).find(|&r| a[r][c] != Fr::ZERO)?;
        a.swap(c, p);
        let inv = a[c][c].invert().unwrap();
        a[c].iter_mut().for_each(|x| *x *= inv);
        for r in 0..n {
            if r != c && a[r][c] != Fr::ZERO {
                let f = a[r][c];
                let pivot = a[c].clone();
                a[r].iter_mut().zip(&pivot).for_each(|(x, y)| *x -= f * y);
            }
        }
    }
    Some(a.into_iter().map(|row| row[n..].to_vec()).collect())
}

impl<const T: usize> Partial<T> {
    fn new(rc: &[[Fr; T]], mds: &[[Fr; T]; T], r_f: usize, r_p: usize) -> Self {
        let rows = |m: &[[Fr; T]; T]| m.iter().map(|r| r.to_vec()).collect::<Vec<_>>();
        let mds_inv = invert(&rows(mds)).expect("an MDS matrix is invertible");
        let first_round = r_f / 2;
        // constants, from the last partial round back: what round j adds at
        // its start, `v`, is `M · u` added after round j - 1's S-box: `u[0]`
        // there, `u[1..]` with round j - 1's own constants.
        let mut post = vec![Fr::ZERO; r_p];
        let mut v = rc[first_round + r_p - 1];
        for j in (1..r_p).rev() {
            let u: Vec<Fr> = mds_inv.iter().map(|row| row.iter().zip(&v).map(|(a, b)| *a * b).sum()).collect();
            post[j - 1] = u[0];
            v = std::array::from_fn(|i| rc[first_round + j - 1][i] + if i == 0 { Fr::ZERO } else { u[i] });
        }
        // matrices, from the last partial round back: its matrix `A` is
        // `S · diag(1, Â)` with `Â = A[1..][1..]` and `S` = [[a00, a01·Â⁻¹],
        // [a10, I]]; `diag(1, Â)` commutes with the S-box of element 0, so
        // the round before multiplies by `diag(1, Â) · M`.
        let mut sparse = vec![([Fr::ZERO; T], [Fr::ZERO; T]); r_p.saturating_sub(1)];
        let mut a = *mds;
        for j in (1..r_p).rev() {
            let hat: Vec<Vec<Fr>> = a[1..].iter().map(|r| r[1..].to_vec()).collect();
            let hat_inv = invert(&hat).expect("the lower-right block stays invertible");
            let mut row = [Fr::ZERO; T];
            row[0] = a[0][0];
            for (k, w) in row[1..].iter_mut().enumerate() {
                *w = (0..T - 1).map(|i| a[0][1 + i] * hat_inv[i][k]).sum();
            }
            let col = std::array::from_fn(|i| if i == 0 { Fr::ZERO } else { a[i][0] });
            sparse[j - 1] = (row, col);
            a = std::array::from_fn(|i| {
                if i == 0 {
                    mds[0]
                } else {
                    std::array::from_fn(|c| (0..T - 1).map(|k| hat[i - 1][k] * mds[1 + k][c]).sum())
                }
            });
        }
        Partial { pre: v, post, first: a, sparse }
    }
}

/// The Grain LFSR generation of the Poseidon paper for one width.
#[derive(Debug)]
struct Grain<const T: usize, const RATE_: usize, const R_P: usize>;

impl<const T: usize, const RATE_: usize, const R_P: usize> Spec<Fr, T, RATE_> for Grain<T, RATE_, R_P> {
    fn full_rounds() -> usize {
        R_F
    }
    fn partial_rounds() -> usize {
        R_P
    }
    fn sbox(val: Fr) -> Fr {
        pow5(val)
    }
    fn secure_mds() -> usize {
        0
    }
}

impl<const T: usize> Params<T> {
    fn from_spec<S: Spec<Fr, T, R>, const R: usize>() -> Self {
        let (rc, mds, _) = S::constants();
        let (r_f, r_p) = (S::full_rounds(), S::partial_rounds());
        let fast = Partial::new(&rc, &mds, r_f, r_p);
        Params { rc, mds, r_f, r_p, fast }
    }

    /// Whether round `r` is a full round.
    pub fn is_full(&self, r: usize) -> bool {
        r < self.r_f / 2 || r >= self.r_f / 2 + self.r_p
    }

    /// The permutation.
    pub fn permute(&self, s: &mut [Fr; T]) {
        for (r, rc) in self.rc.iter().enumerate() {
            for (x, c) in s.iter_mut().zip(rc) {
                *x += c;
            }
            if self.is_full(r) {
                for x in s.iter_mut() {
                    *x = pow5(*x);
                }
            } else {
                s[0] = pow5(s[0]);
            }
            *s = self.mds_mul(s);
        }
    }

    /// The permutation, computed with the partial rounds rearranged
    /// ([`Partial`]): what [`hash`] runs.
    pub fn hash_permute(&self, s: &mut [Fr; T]) {
        let full = |s: &mut [Fr; T], rc: &[Fr; T]| {
            for (x, c) in s.iter_mut().zip(rc) {
                *x = pow5(*x + c);
            }
            *s = self.mds_mul(s);
        };
        let half = self.r_f / 2;
        self.rc[..half].iter().for_each(|rc| full(s, rc));
        let f = &self.fast;
        for (x, c) in s.iter_mut().zip(&f.pre) {
            *x += c;
        }
        for (j, post) in f.post.iter().enumerate() {
            s[0] = pow5(s[0]) + post;
            if j == 0 {
                *s = std::array::from_fn(|i| f.first[i].iter().zip(s.iter()).map(|(a, b)| *a * b).sum());
            } else {
                let (row, col) = &f.sparse[j - 1];
                let s0 = s[0];
                s[0] = row.iter().zip(s.iter()).map(|(a, b)| *a * b).sum();
                for i in 1..T {
                    s[i] += col[i] * s0;
                }
            }
        }
        self.rc[half + self.r_p..].iter().for_each(|rc| full(s, rc));
    }

    /// `mds · s`.
    pub fn mds_mul(&self, s: &[Fr; T]) -> [Fr; T] {
        std::array::from_fn(|i| self.mds[i].iter().zip(s).map(|(a, b)| *a * b).sum())
    }
}

/// Width 5 (rate 4): what statesync hashes with.
pub fn params() -> &'static Params<WIDTH> {
    static P: OnceLock<Params<5>> = OnceLock::new();
    P.get_or_init(Params::from_spec::<Grain<5, 4, 60>, 4>)
}

/// Width 3 (rate 2): measured against width 5 (README, "Poseidon"); not
/// used by the protocol.
pub fn params3() -> &'static Params<3> {
    static P: OnceLock<Params<3>> = OnceLock::new();
    P.get_or_init(Params::from_spec::<Grain<3, 2, 57>, 2>)
}

/// x^5.
pub fn pow5(x: Fr) -> Fr {
    x.square().square() * x
}

/// What a hash is of: part of the capacity element, so that no two uses
/// can produce the same digest from the same inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u64)]
pub enum Domain {
    /// An account leaf.
    Leaf = 1,
    /// A node of the accounts tree (its [`RATE`] children).
    Node = 2,
    /// The market table.
    Market = 3,
    /// The state root (accounts root, market root).
    State = 4,
    /// The start of a batch's commitment chain (chain tag, seq).
    CommitStart = 5,
    /// One link of the commitment chain (previous link, encoded transition).
    Commit = 6,
    /// An epoch's hash of its batches' commitments.
    Epoch = 7,
    /// An EdDSA challenge (R, public key, message): [`crate::eddsa`].
    Signature = 8,
    /// What an account's key signs for a transition:
    /// [`crate::transition::Encoded::signed_message`].
    Authorize = 9,
    /// A leaf of an account's orders tree (order id, filled size, fees).
    Order = 10,
    /// What an oracle's key signs for a quote:
    /// [`crate::transition::oracle_message`].
    Oracle = 11,
}

/// The initial capacity element of a hash of `len` inputs in `domain`.
pub fn capacity(domain: Domain, len: usize) -> Fr {
    Fr::from_raw([len as u64, domain as u64, 0, 0])
}

/// Permutations a hash of `len` inputs takes (at least one).
pub fn chunks(len: usize) -> usize {
    len.div_ceil(RATE).max(1)
}

/// Poseidon hash of a fixed-length input in `domain`.
pub fn hash(domain: Domain, inputs: &[Fr]) -> Fr {
    let p = params();
    let mut s = [Fr::ZERO; WIDTH];
    s[0] = capacity(domain, inputs.len());
    for c in 0..chunks(inputs.len()) {
        for i in 0..RATE {
            s[1 + i] += inputs.get(c * RATE + i).copied().unwrap_or(Fr::ZERO);
        }
        p.hash_permute(&mut s);
    }
    s[1]
}

/// A node of the accounts tree.
pub fn node(children: &[Fr; RATE]) -> Fr {
    hash(Domain::Node, children)
}

#[cfg(test)]
mod tests {
    use halo2_base::halo2_proofs::halo2curves::ff::PrimeField;

    use super::*;

    fn fr(hex: &str) -> Fr {
        let mut b: [u8; 32] = ::hex::decode(hex.trim_start_matches("0x")).unwrap().try_into().unwrap();
        b.reverse();
        Fr::from_repr(b).unwrap()
    }

    /// The reference implementation's published vectors (hadeshash
    /// `test_vectors.txt`): the permutation of [0, 1, ..., t-1].
    #[test]
    fn permutations_match_the_reference_vectors() {
        let mut s3: [Fr; 3] = std::array::from_fn(|i| Fr::from(i as u64));
        params3().permute(&mut s3);
        assert_eq!(s3[0], fr("0x115cc0f5e7d690413df64c6b9662e9cf2a3617f2743245519e19607a4417189a"));
        let mut s5: [Fr; 5] = std::array::from_fn(|i| Fr::from(i as u64));
        params().permute(&mut s5);
        let expect = [
            "0x299c867db6c1fdd79dcefa40e4510b9837e60ebb1ce0663dbaa525df65250465",
            "0x1148aaef609aa338b27dafd89bb98862d8bb2b429aceac47d86206154ffe053d",
            "0x24febb87fed7462e23f6665ff9a0111f4044c38ee1672c1ac6b0637d34f24907",
            "0x0eb08f6d809668a981c186beaf6110060707059576406b248e5d9cf6e78b3d3e",
            "0x07748bc6877c9b82c8b98666ee9d0626ec7f5be4205f79ee8528ef1c4a376fc7",
        ];
        assert_eq!(s5, expect.map(fr));
    }

    #[test]
    fn the_rearranged_partial_rounds_are_the_same_permutation() {
        fn check<const T: usize>(p: &Params<T>) {
            let mut x = Fr::from(0x5eed);
            for _ in 0..20 {
                let start: [Fr; T] = std::array::from_fn(|_| {
                    x = x.square() + Fr::from(7);
                    x
                });
                let (mut plain, mut fast) = (start, start);
                p.permute(&mut plain);
                p.hash_permute(&mut fast);
                assert_eq!(plain, fast);
            }
            assert_eq!(p.fast.post.len(), p.r_p);
            assert_eq!(p.fast.post[p.r_p - 1], Fr::ZERO);
        }
        check(params());
        check(params3());
    }

    #[test]
    fn domains_and_lengths_separate() {
        let x = [Fr::from(1), Fr::from(2)];
        assert_ne!(hash(Domain::Leaf, &x), hash(Domain::Node, &x));
        assert_ne!(hash(Domain::Leaf, &x), hash(Domain::Leaf, &[x[0], x[1], Fr::ZERO]), "zero padding is not free");
        assert_eq!(chunks(0), 1);
        assert_eq!(chunks(4), 1);
        assert_eq!(chunks(5), 2);
    }
}
