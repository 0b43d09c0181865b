//! The batch circuit's gadgets over halo2-base: Poseidon hashes recorded
//! for the Poseidon chip, bounds and sign checks, one-hot flags, and the
//! accounts' and orders' Merkle paths.

use ethnum::I256;
use halo2_base::{
    gates::{GateInstructions, RangeChip, RangeInstructions},
    halo2_proofs::{
        arithmetic::Field,
        halo2curves::{bn256::Fr, ff::PrimeField},
    },
    AssignedValue, Context,
    QuantumCell::{Constant, Existing},
};

use crate::{
    eddsa::chip::SigJob,
    fixed::Bound,
    poseidon::{self, chip::HashJob, Domain},
    smt::{self, ARITY},
    state::fe,
};

/// An assigned cell.
pub(super) type V = AssignedValue<Fr>;

/// A signed 256-bit integer as a field element.
pub fn fe_i256(x: I256) -> Fr {
    let abs = x.unsigned_abs();
    let (hi, lo) = abs.into_words();
    let f = Fr::from_raw([lo as u64, (lo >> 64) as u64, hi as u64, (hi >> 64) as u64]);
    if x < 0 {
        -f
    } else {
        f
    }
}

/// The hashes of a batch circuit, recorded while halo2-base lays out its
/// cells and laid out afterwards on the Poseidon chip.
#[derive(Default)]
pub(super) struct Hashes {
    pub(super) jobs: Vec<HashJob>,
    pub(super) constants: std::collections::BTreeMap<Fr, V>,
}

impl Hashes {
    pub(super) fn constant(&mut self, ctx: &mut Context<Fr>, v: Fr) -> V {
        *self.constants.entry(v).or_insert_with(|| ctx.load_constant(v))
    }
}

pub(super) struct Chips {
    pub(super) range: RangeChip<Fr>,
    pub(super) hashes: std::cell::RefCell<Hashes>,
    /// Signature verifications, laid out on the EdDSA chip.
    pub(super) sigs: std::cell::RefCell<Vec<SigJob>>,
    /// halo2-base advice cells by part of a slot ([`ShapeReport::slot_parts`]).
    pub(super) parts: std::cell::RefCell<std::collections::BTreeMap<&'static str, usize>>,
}

impl Chips {
    pub(super) fn gate(&self) -> &impl GateInstructions<Fr> {
        self.range.gate()
    }

    /// Adds the cells assigned since `from` to `part`.
    pub(super) fn tally(&self, ctx: &Context<Fr>, part: &'static str, from: usize) {
        *self.parts.borrow_mut().entry(part).or_default() += ctx.advice.len() - from;
    }

    /// Poseidon of `inputs` in `domain`: the digest is a witness here, tied to
    /// the chip's rows by copy constraints when the circuit is synthesized.
    pub(super) fn hash(&self, ctx: &mut Context<Fr>, domain: Domain, inputs: &[V]) -> V {
        let mut hs = self.hashes.borrow_mut();
        let capacity = hs.constant(ctx, poseidon::capacity(domain, inputs.len()));
        let zero = hs.constant(ctx, Fr::zero());
        let values: Vec<Fr> = inputs.iter().map(|v| *v.value()).collect();
        let output = ctx.load_witness(poseidon::hash(domain, &values));
        let mut padded = inputs.to_vec();
        padded.resize(poseidon::chunks(inputs.len()) * poseidon::RATE, zero);
        hs.jobs.push(HashJob { domain, capacity, inputs: padded, output });
        output
    }

    /// Constrains `b.min <= v < b.max`: `v - b.min < 2^bits`, and
    /// `b.max - 1 - v < 2^bits` too when the bound is narrower than `2^bits`.
    pub(super) fn bound(&self, ctx: &mut Context<Fr>, v: V, b: Bound) {
        let shifted = self.gate().sub(ctx, v, Constant(fe(b.min)));
        self.range.range_check(ctx, shifted, b.bits);
        if b.max - b.min < 1i128 << b.bits {
            let below = self.gate().sub(ctx, Constant(fe(b.max - 1)), v);
            self.range.range_check(ctx, below, b.bits);
        }
    }

    /// 1 if `v < 0`; also constrains `-2^bits <= v < 2^bits`.
    pub(super) fn is_neg(&self, ctx: &mut Context<Fr>, v: V, bits: usize) -> V {
        let two_b = Fr::from(2).pow_vartime([bits as u64]);
        let y = self.gate().add(ctx, v, Constant(two_b));
        let repr = y.value().to_repr();
        let hi_bit = (repr.as_ref()[bits / 8] >> (bits % 8)) & 1;
        let hi = ctx.load_witness(Fr::from(hi_bit as u64));
        self.gate().assert_bit(ctx, hi);
        let lo = self.gate().sub_mul(ctx, y, hi, Constant(two_b));
        self.range.range_check(ctx, lo, bits);
        self.gate().not(ctx, hi)
    }

    pub(super) fn assert_zero(&self, ctx: &mut Context<Fr>, v: V) {
        self.gate().assert_is_const(ctx, &v, &Fr::zero());
    }

    pub(super) fn assert_one(&self, ctx: &mut Context<Fr>, v: V) {
        self.gate().assert_is_const(ctx, &v, &Fr::one());
    }

    /// One-hot position indicators of an account id per tree level (base-4
    /// digits of its `depth` bits).
    pub(super) fn positions(&self, ctx: &mut Context<Fr>, id: V, depth: usize) -> Vec<[V; ARITY]> {
        let from = ctx.advice.len();
        let out = self.positions_inner(ctx, id, depth);
        self.tally(ctx, "merkle", from);
        out
    }

    pub(super) fn positions_inner(&self, ctx: &mut Context<Fr>, id: V, depth: usize) -> Vec<[V; ARITY]> {
        let g = self.gate();
        let bits = g.num_to_bits(ctx, id, depth);
        let zero = ctx.load_zero();
        bits.chunks(2)
            .map(|b| {
                let (b0, b1) = (b[0], b.get(1).copied().unwrap_or(zero));
                let both = g.mul(ctx, b0, b1);
                let only0 = g.sub(ctx, b0, both);
                let only1 = g.sub(ctx, b1, both);
                let any = g.add(ctx, b0, b1);
                let none = g.sub(ctx, Constant(Fr::one()), any);
                let none = g.add(ctx, none, both);
                [none, only0, only1, both]
            })
            .collect()
    }

    /// Opens `leaf` against its path: per level the opened child's hash and
    /// the node's children (that hash at the indicated position, constrained),
    /// and the root.
    pub(super) fn open(
        &self,
        ctx: &mut Context<Fr>,
        leaf: V,
        pos: &[[V; ARITY]],
        path: &[Fr],
    ) -> (Vec<(V, [V; ARITY])>, V) {
        let from = ctx.advice.len();
        let g = self.gate();
        let mut h = leaf;
        let mut levels = vec![];
        for (ind, sib) in pos.iter().zip(path.chunks(smt::SIBLINGS)) {
            let at = ind.iter().position(|i| *i.value() == Fr::one()).unwrap_or(0);
            let kids = smt::children(*h.value(), at, sib).map(|v| ctx.load_witness(v));
            let here = g.inner_product(ctx, kids, ind.iter().map(|i| Existing(*i)));
            ctx.constrain_equal(&here, &h);
            levels.push((h, kids));
            h = self.hash(ctx, Domain::Node, &kids);
        }
        self.tally(ctx, "merkle", from);
        (levels, h)
    }

    /// The root after the opened leaf becomes `leaf`: the same siblings, the
    /// new hash at the same positions.
    pub(super) fn reroot(&self, ctx: &mut Context<Fr>, leaf: V, pos: &[[V; ARITY]], levels: &[(V, [V; ARITY])]) -> V {
        let from = ctx.advice.len();
        let g = self.gate();
        let mut h = leaf;
        for (ind, (old, kids)) in pos.iter().zip(levels) {
            let delta = g.sub(ctx, h, *old);
            let new: [V; ARITY] = std::array::from_fn(|j| g.mul_add(ctx, ind[j], delta, kids[j]));
            h = self.hash(ctx, Domain::Node, &new);
        }
        self.tally(ctx, "merkle", from);
        h
    }

    /// Constrains `flags` to be bits with exactly one set.
    pub(super) fn one_hot(&self, ctx: &mut Context<Fr>, flags: &[V]) {
        for f in flags {
            self.gate().assert_bit(ctx, *f);
        }
        let n = self.gate().sum(ctx, flags.iter().copied());
        self.assert_one(ctx, n);
    }
}
