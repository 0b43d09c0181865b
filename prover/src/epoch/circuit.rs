//! The epoch circuit (DESIGN.md §3): snark-verifier-sdk's aggregation
//! circuit over N proofs, plus statesync's own constraints binding them into
//! one consecutive run of one chain ([`bind_sequence`]). Epoch keys are
//! addressed by this file's source ([`super::epoch_digest`]): what is here
//! defines the circuit, and nothing else is.

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

/// What one epoch circuit aggregates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EpochSpec {
    /// 1: batch proofs; L ≥ 2: epoch proofs of level L − 1.
    pub level: u32,
    /// Proofs per epoch (≥ 2).
    pub n: usize,
    /// `log2` of the circuit's rows.
    pub k: u32,
}

impl EpochSpec {
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
        write!(f, "l{}-n{}-k{}", self.level, self.n, self.k)
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

/// The epoch circuit over `snarks` (consecutive, in order).
pub fn epoch_circuit(
    stage: CircuitBuilderStage,
    config: AggregationConfigParams,
    params: &ParamsKZG<Bn256>,
    snarks: Vec<Snark>,
    spec: &EpochSpec,
    tag: Fr,
) -> AggregationCircuit {
    let mut circuit = AggregationCircuit::new::<SHPLONK>(stage, config, params, snarks, VerifierUniversality::None);
    let prev = circuit.previous_instances().clone();
    let range = circuit.builder.range_chip();
    let public = bind_sequence(circuit.builder.main(0), range.gate(), &prev, spec, tag);
    circuit.builder.assigned_instances[0].extend(public);
    circuit
}

/// The epoch circuit's own constraints over the aggregated proofs' public
/// inputs `prev`: roots chain, every proof carries `tag`, sequence numbers
/// are consecutive. Returns the epoch's [`EPOCH_PUBLIC_LEN`] public cells.
pub fn bind_sequence(
    ctx: &mut Context<Fr>,
    gate: &impl GateInstructions<Fr>,
    prev: &[Vec<AssignedValue<Fr>>],
    spec: &EpochSpec,
    tag: Fr,
) -> Vec<AssignedValue<Fr>> {
    let off = spec.offset();
    for pair in prev.windows(2) {
        ctx.constrain_equal(&pair[0][off + 1], &pair[1][off]);
    }
    let tag = ctx.load_constant(tag);
    for p in prev {
        ctx.constrain_equal(&p[off + 5], &tag);
    }
    // consecutive sequence numbers: a batch counts one, an epoch its count
    let counts: Vec<_> = if spec.level == 1 {
        let one = ctx.load_constant(Fr::one());
        vec![one; prev.len()]
    } else {
        prev.iter().map(|p| p[off + PUBLIC_LEN]).collect()
    };
    for (pair, count) in prev.windows(2).zip(&counts) {
        let next = gate.add(ctx, pair[0][off + 6], *count);
        ctx.constrain_equal(&next, &pair[1][off + 6]);
    }
    let count = gate.sum(ctx, counts);
    let commitments: Vec<_> = prev.iter().map(|p| p[off + 2]).collect();
    let hash = poseidon::flex::hash(ctx, gate, Domain::Epoch, &commitments);
    let transitions = gate.sum(ctx, prev.iter().map(|p| p[off + 3]));
    let liquidations = gate.sum(ctx, prev.iter().map(|p| p[off + 4]));
    let (first, last, seq) = (prev[0][off], prev[prev.len() - 1][off + 1], prev[0][off + 6]);
    vec![first, last, hash, transitions, liquidations, tag, seq, count]
}

/// The keygen circuit of `spec` for the chain `tag` over proofs of
/// `inner_vk` (placeholder proofs of the right shape), configured.
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
    let config = AggregationConfigParams { degree: spec.k, lookup_bits: spec.k as usize - 1, ..Default::default() };
    let mut circuit = epoch_circuit(CircuitBuilderStage::Keygen, config, params, vec![dummy; spec.n], spec, tag);
    let config = circuit.calculate_params(Some(20));
    Ok((circuit, config))
}
