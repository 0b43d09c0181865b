//! Epoch proofs: snark-verifier-sdk aggregation of consecutive proofs with
//! root chaining (DESIGN.md §3, epoch circuit).
//!
//! The epoch circuit verifies N proofs (batch proofs, or epoch proofs for the
//! next level) in-circuit, keeps the KZG accumulator as its first 12 public
//! inputs, and constrains `new_root(i) == old_root(i+1)` for every pair, so a
//! gap or a reordered pair cannot be proven. Its own public inputs after the
//! accumulator: first old root, last new root, Poseidon hash of the
//! aggregated proofs' commitments, total transitions, total liquidations —
//! the same five a batch proof exposes, so epochs aggregate further.

use halo2_base::{
    gates::{circuit::CircuitBuilderStage, GateInstructions, RangeInstructions},
    poseidon::hasher::PoseidonHasher,
};
use halo2_proofs::{
    halo2curves::{
        bn256::{Bn256, Fq, Fr, G1Affine, G2Prepared},
        group::Group,
        pairing::{MillerLoopResult, MultiMillerLoop},
        CurveAffine,
    },
    plonk::VerifyingKey,
    poly::kzg::commitment::ParamsKZG,
};
use snark_verifier_sdk::{
    halo2::aggregation::{AggregationCircuit, AggregationConfigParams, VerifierUniversality},
    snark_verifier::{
        system::halo2::{compile, Config},
        util::arithmetic::fe_from_limbs,
    },
    CircuitExt, Snark, BITS, LIMBS, SHPLONK,
};
use statesync_circuits::{
    poseidon::{self, RATE, T},
    witness::PublicInputs,
};

/// Public inputs of the KZG accumulator (two G1 points, each coordinate in 3
/// limbs) at the front of an epoch proof's instances.
pub const ACCUMULATOR_LEN: usize = 12;
/// Public inputs a batch proof exposes (and an epoch proof after its accumulator).
pub const PUBLIC_LEN: usize = 5;

/// What is being aggregated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Batch proofs (no accumulator in their instances).
    Batches,
    /// Epoch proofs (an accumulator first).
    Epochs,
}

impl Level {
    fn offset(self) -> usize {
        match self {
            Level::Batches => 0,
            Level::Epochs => ACCUMULATOR_LEN,
        }
    }
}

/// A batch proof (Poseidon transcript) as a snark to aggregate.
pub fn batch_snark(
    params: &ParamsKZG<Bn256>,
    vk: &VerifyingKey<G1Affine>,
    public: &PublicInputs,
    proof: Vec<u8>,
) -> Snark {
    let protocol = compile(params, vk, Config::kzg().with_num_instance(vec![PUBLIC_LEN]));
    Snark::new(protocol, vec![public.to_fields()], proof)
}

/// An epoch proof as a snark to aggregate at the next level.
pub fn epoch_snark(
    params: &ParamsKZG<Bn256>,
    vk: &VerifyingKey<G1Affine>,
    instances: Vec<Fr>,
    proof: Vec<u8>,
) -> Snark {
    let protocol = compile(
        params,
        vk,
        Config::kzg()
            .with_num_instance(vec![ACCUMULATOR_LEN + PUBLIC_LEN])
            .with_accumulator_indices(AggregationCircuit::accumulator_indices()),
    );
    Snark::new(protocol, vec![instances], proof)
}

/// The epoch circuit over `snarks` (consecutive, in order).
pub fn epoch_circuit(
    stage: CircuitBuilderStage,
    config: AggregationConfigParams,
    params: &ParamsKZG<Bn256>,
    snarks: Vec<Snark>,
    level: Level,
) -> AggregationCircuit {
    let mut circuit = AggregationCircuit::new::<SHPLONK>(stage, config, params, snarks, VerifierUniversality::None);
    let off = level.offset();
    let prev = circuit.previous_instances().clone();
    let range = circuit.builder.range_chip();
    let ctx = circuit.builder.main(0);
    for pair in prev.windows(2) {
        ctx.constrain_equal(&pair[0][off + 1], &pair[1][off]);
    }
    let mut hasher = PoseidonHasher::<Fr, T, RATE>::new(poseidon::spec().clone());
    hasher.initialize_consts(ctx, range.gate());
    let commitments: Vec<_> = prev.iter().map(|p| p[off + 2]).collect();
    let hash = hasher.hash_fix_len_array(ctx, range.gate(), &commitments);
    let transitions = range.gate().sum(ctx, prev.iter().map(|p| p[off + 3]));
    let liquidations = range.gate().sum(ctx, prev.iter().map(|p| p[off + 4]));
    let (first, last) = (prev[0][off], prev[prev.len() - 1][off + 1]);
    circuit.builder.assigned_instances[0].extend([first, last, hash, transitions, liquidations]);
    circuit
}

/// The deferred pairing check of an epoch proof: the accumulator in its
/// first [`ACCUMULATOR_LEN`] instances must satisfy e(lhs, g2) = e(rhs, s·g2).
/// An epoch proof is valid when its own proof verifies *and* this holds.
pub fn accumulator_holds(params: &ParamsKZG<Bn256>, instances: &[Fr]) -> bool {
    if instances.len() < ACCUMULATOR_LEN {
        return false;
    }
    let coords: Vec<Fq> = instances[..ACCUMULATOR_LEN]
        .chunks(LIMBS)
        .map(|l| fe_from_limbs::<Fr, Fq, LIMBS, BITS>([l[0], l[1], l[2]]))
        .collect();
    let point = |x: Fq, y: Fq| Option::<G1Affine>::from(G1Affine::from_xy(x, y));
    let (Some(lhs), Some(rhs)) = (point(coords[0], coords[1]), point(coords[2], coords[3])) else {
        return false;
    };
    let g2 = G2Prepared::from(params.g2());
    let minus_s_g2 = G2Prepared::from(-params.s_g2());
    bool::from(Bn256::multi_miller_loop(&[(&lhs, &g2), (&rhs, &minus_s_g2)]).final_exponentiation().is_identity())
}

/// The epoch public inputs the circuit computes from the aggregated ones
/// (native, for checking and for clients).
pub fn epoch_public(previous: &[PublicInputs]) -> PublicInputs {
    PublicInputs {
        old_root: previous[0].old_root,
        new_root: previous[previous.len() - 1].new_root,
        commitment: poseidon::hash(&previous.iter().map(|p| p.commitment).collect::<Vec<_>>()),
        transitions: previous.iter().map(|p| p.transitions).sum(),
        liquidations: previous.iter().map(|p| p.liquidations).sum(),
    }
}
