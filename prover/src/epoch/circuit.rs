//! The epoch circuit (DESIGN.md §3): snark-verifier-sdk's aggregation
//! circuit over N proof slots, plus statesync's own constraints binding the
//! first m of them into one consecutive run of one chain ([`bind_sequence`]);
//! and the wrapper circuit, which aggregates one top-level epoch proof into
//! a proof of few columns whose EVM verifier is small ([`epoch_circuit`]
//! with a wrapper spec).
//! Epoch and wrapper keys are addressed by this file's source
//! ([`super::epoch_digest`]): what is here defines the circuits, and nothing
//! else does.

use std::fmt;

use halo2_base::{
    gates::{circuit::CircuitBuilderStage, GateInstructions, RangeInstructions},
    AssignedValue, Context,
};
use halo2_proofs::{
    halo2curves::bn256::{Bn256, Fr, G1Affine},
    plonk::VerifyingKey,
    poly::kzg::commitment::ParamsKZG,
};
use serde::{Deserialize, Serialize};
use snark_verifier_sdk::{
    halo2::{
        aggregation::{AggregationCircuit, AggregationConfigParams, VerifierUniversality},
        gen_dummy_snark_from_vk,
    },
    snark_verifier::system::halo2::{compile, Config},
    CircuitExt, Snark, LIMBS, SHPLONK,
};
use statesync_circuits::{
    poseidon::{self, Domain},
    witness::PUBLIC_LEN,
};

use crate::ProverError;

/// Public inputs of the KZG accumulator (two G1 points, each coordinate in 3
/// limbs) at the front of an epoch proof's instances.
pub const ACCUMULATOR_LEN: usize = 4 * LIMBS;
/// Public inputs an epoch proof exposes after its accumulator: a batch's
/// seven (folded) and the count of batches.
pub const EPOCH_PUBLIC_LEN: usize = PUBLIC_LEN + 1;
/// All instances of an epoch proof.
pub const EPOCH_INSTANCES: usize = ACCUMULATOR_LEN + EPOCH_PUBLIC_LEN;

/// What one epoch circuit aggregates, or which epochs a wrapper wraps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EpochSpec {
    /// 1: batch proofs; L ≥ 2: epoch proofs of level L − 1. A wrapper's
    /// level is one above the epochs it wraps.
    pub level: u32,
    /// Proof slots per epoch (≥ 2): an epoch holds 1..=n real proofs. A
    /// wrapper's `n` is that of the epochs it wraps.
    pub n: usize,
    /// `log2` of the epoch circuits' rows (a wrapper's: of the epochs it wraps).
    pub k: u32,
    /// `Some(k)`: the wrapper circuit, `log2` of its rows `k`, over one
    /// epoch proof of `(level − 1, n, k)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrap: Option<u32>,
}

impl EpochSpec {
    /// The epoch circuit of `level` with `n` slots of `k` rows.
    pub const fn epoch(level: u32, n: usize, k: u32) -> Self {
        EpochSpec { level, n, k, wrap: None }
    }

    /// The wrapper over epochs of `self` (one level up), `wrapper_k` rows.
    pub const fn wrapper(&self, wrapper_k: u32) -> Self {
        EpochSpec { level: self.level + 1, n: self.n, k: self.k, wrap: Some(wrapper_k) }
    }

    /// The epochs of the level below: what this epoch or wrapper aggregates
    /// when its level is ≥ 2.
    pub const fn below(&self) -> Self {
        EpochSpec::epoch(self.level - 1, self.n, self.k)
    }

    /// `log2` of this circuit's own rows.
    pub fn circuit_k(&self) -> u32 {
        self.wrap.unwrap_or(self.k)
    }

    /// Proofs this circuit verifies: n slots, or the wrapper's one.
    pub(super) fn slots(&self) -> usize {
        if self.wrap.is_some() {
            1
        } else {
            self.n
        }
    }

    /// Where the aggregated proofs' batch-like public inputs start in their instances.
    pub(super) fn offset(&self) -> usize {
        if self.level == 1 {
            0
        } else {
            ACCUMULATOR_LEN
        }
    }

    /// Instances of each aggregated proof.
    pub(super) fn inner_instances(&self) -> usize {
        if self.level == 1 {
            PUBLIC_LEN
        } else {
            EPOCH_INSTANCES
        }
    }
}

impl fmt::Display for EpochSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "l{}-n{}-k{}", self.level, self.n, self.k)?;
        match self.wrap {
            Some(k) => write!(f, "-wrap-k{k}"),
            None => Ok(()),
        }
    }
}

/// A proof to aggregate (a batch proof for level 1, an epoch proof of the
/// level below otherwise), Poseidon transcript.
pub fn inner_snark(
    params: &ParamsKZG<Bn256>,
    inner_vk: &VerifyingKey<G1Affine>,
    spec: &EpochSpec,
    instances: Vec<Fr>,
    proof: Vec<u8>,
) -> Snark {
    let protocol = compile(params, inner_vk, inner_config(spec));
    Snark::new(protocol, vec![instances], proof)
}

fn inner_config(spec: &EpochSpec) -> Config {
    let config = Config::kzg().with_num_instance(vec![spec.inner_instances()]);
    if spec.level == 1 {
        config
    } else {
        config.with_accumulator_indices(AggregationCircuit::accumulator_indices())
    }
}

/// The epoch circuit over `snarks` (`spec.n` slots: the first `real` are
/// consecutive and in order, the others padding), or the wrapper circuit
/// over one epoch proof when `spec` is a wrapper (`real` is then 1).
pub fn epoch_circuit(
    stage: CircuitBuilderStage,
    config: AggregationConfigParams,
    params: &ParamsKZG<Bn256>,
    snarks: Vec<Snark>,
    real: usize,
    spec: &EpochSpec,
    tag: Fr,
) -> AggregationCircuit {
    let mut circuit = AggregationCircuit::new::<SHPLONK>(stage, config, params, snarks, VerifierUniversality::None);
    let prev = circuit.previous_instances().clone();
    let public = if spec.wrap.is_some() {
        wrapper_public(&prev)
    } else {
        let range = circuit.builder.range_chip();
        let ctx = circuit.builder.main(0);
        let real = ctx.load_witness(Fr::from(real as u64));
        bind_sequence(ctx, range.gate(), &prev, real, spec, tag)
    };
    circuit.builder.assigned_instances[0].extend(public);
    circuit
}

/// The wrapper's public inputs after its accumulator: the wrapped epoch's,
/// unchanged. Nothing else needs constraining: the epoch's verifying key
/// (the chain's, its tag a constant) is a constant of the wrapper, and the
/// epoch's accumulator is folded into the wrapper's own.
fn wrapper_public(prev: &[Vec<AssignedValue<Fr>>]) -> Vec<AssignedValue<Fr>> {
    prev[0][ACCUMULATOR_LEN..].to_vec()
}

/// The epoch circuit's own constraints over the aggregated proofs' public
/// inputs `prev` (one per slot), of which the first `real` (m, 1 ≤ m ≤ n)
/// are the epoch's and the rest padding: every slot carries `tag`; for the
/// first m, roots chain and sequence numbers are consecutive; the epoch's
/// last root, commitment hash and totals are those of the first m. Padding
/// slots are verified (their proofs are aggregated like the others) but
/// contribute nothing. Returns the epoch's [`EPOCH_PUBLIC_LEN`] public cells.
pub fn bind_sequence(
    ctx: &mut Context<Fr>,
    gate: &impl GateInstructions<Fr>,
    prev: &[Vec<AssignedValue<Fr>>],
    real: AssignedValue<Fr>,
    spec: &EpochSpec,
    tag: Fr,
) -> Vec<AssignedValue<Fr>> {
    let off = spec.offset();
    let n = prev.len();
    // last[i] = (i == m - 1); all zero when m is not in 1..=n, which the
    // sum refuses. live[i] = (i < m) = last[i] + ... + last[n - 1].
    let one = ctx.load_constant(Fr::one());
    let last_index = gate.sub(ctx, real, one);
    let last = gate.idx_to_indicator(ctx, last_index, n);
    let ones = gate.sum(ctx, last.iter().copied());
    gate.assert_is_const(ctx, &ones, &Fr::one());
    let mut live = last.clone();
    for i in (0..n - 1).rev() {
        live[i] = gate.add(ctx, live[i + 1], last[i]);
    }
    let tag = ctx.load_constant(tag);
    for p in prev {
        ctx.constrain_equal(&p[off + 5], &tag);
    }
    // a batch counts one, an epoch its count
    let counts: Vec<_> =
        if spec.level == 1 { vec![one; n] } else { prev.iter().map(|p| p[off + PUBLIC_LEN]).collect() };
    // for each pair whose second is live: roots chain, seqs are consecutive
    for ((pair, count), live) in prev.windows(2).zip(&counts).zip(&live[1..]) {
        let gap = gate.sub(ctx, pair[0][off + 1], pair[1][off]);
        let gap = gate.mul(ctx, gap, *live);
        gate.assert_is_const(ctx, &gap, &Fr::zero());
        let next = gate.add(ctx, pair[0][off + 6], *count);
        let skip = gate.sub(ctx, next, pair[1][off + 6]);
        let skip = gate.mul(ctx, skip, *live);
        gate.assert_is_const(ctx, &skip, &Fr::zero());
    }
    let live_sum = |ctx: &mut Context<Fr>, values: Vec<AssignedValue<Fr>>| {
        gate.inner_product(ctx, values, live.iter().map(|l| halo2_base::QuantumCell::Existing(*l)))
    };
    let count = live_sum(ctx, counts);
    let transitions = live_sum(ctx, prev.iter().map(|p| p[off + 3]).collect());
    let liquidations = live_sum(ctx, prev.iter().map(|p| p[off + 4]).collect());
    let last_root = gate.select_by_indicator(ctx, prev.iter().map(|p| p[off + 1]), last.iter().copied());
    // the hash of the first m commitments: each prefix's hash, one selected
    let commitments: Vec<_> = prev.iter().map(|p| p[off + 2]).collect();
    let prefixes: Vec<_> =
        (1..=n).map(|len| poseidon::flex::hash(ctx, gate, Domain::Epoch, &commitments[..len])).collect();
    let hash = gate.select_by_indicator(ctx, prefixes, last.iter().copied());
    let (first, seq) = (prev[0][off], prev[0][off + 6]);
    vec![first, last_root, hash, transitions, liquidations, tag, seq, count]
}

/// The keygen circuit of `spec` for the chain `tag` over proofs of
/// `inner_vk` (placeholder proofs of the right shape, every slot real),
/// configured: an epoch at its `k` with as many columns as it needs, a
/// wrapper at its own (larger) `k` with few.
pub(super) fn keygen_circuit(
    params: &ParamsKZG<Bn256>,
    inner_params: &ParamsKZG<Bn256>,
    inner_vk: &VerifyingKey<G1Affine>,
    spec: &EpochSpec,
    tag: Fr,
) -> Result<(AggregationCircuit, AggregationConfigParams), ProverError> {
    spec.validate()?;
    let dummy = gen_dummy_snark_from_vk::<SHPLONK>(
        inner_params,
        inner_vk,
        vec![spec.inner_instances()],
        (spec.level > 1).then(AggregationCircuit::accumulator_indices).flatten(),
    );
    let k = spec.circuit_k();
    let config = AggregationConfigParams { degree: k, lookup_bits: k as usize - 1, ..Default::default() };
    let slots = spec.slots();
    let mut circuit = epoch_circuit(CircuitBuilderStage::Keygen, config, params, vec![dummy; slots], slots, spec, tag);
    let config = circuit.calculate_params(Some(20));
    Ok((circuit, config))
}
