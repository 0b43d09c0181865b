//! Epoch proofs: snark-verifier-sdk aggregation of consecutive proofs with
//! root chaining (DESIGN.md §3, epoch circuit).
//!
//! An epoch circuit of level 1 verifies N batch proofs in-circuit; one of
//! level L ≥ 2 verifies N epoch proofs of level L − 1, so an epoch of
//! N^L batches finalizes with one proof. Every level keeps the KZG
//! accumulator as its first 12 public inputs and constrains
//! `new_root(i) == old_root(i+1)` for every pair, so a gap or a reordered
//! pair cannot be proven; every aggregated proof carries the circuit's chain
//! tag, and their sequence numbers are consecutive (`seq(i+1) == seq(i) + 1`
//! for batches, `+ count(i)` for epochs), so a reordered, repeated or foreign
//! proof cannot be proven even where roots repeat. Its public inputs after
//! the accumulator: first old root, last new root, Poseidon hash of the
//! aggregated proofs' commitments, total transitions, total liquidations,
//! the chain tag, the first seq, and the count of batches.
//!
//! The chain tag is a constant of the circuit (a hash of the chain's config),
//! so each chain has its own epoch verifying key and its own EVM verifier:
//! an epoch proof of one chain never verifies as another chain's.
//!
//! An epoch has N slots and holds 1..=N proofs (a count m): the slots past
//! m carry padding proofs (copies of the last), verified but contributing
//! nothing, so one key serves every m. The wrapper circuit
//! ([`EpochSpec::wrapper`]) aggregates one top-level epoch proof into a
//! proof with the same public inputs and few columns (k = [`WRAPPER_K`]),
//! whose EVM verifier deploys under EIP-170.

mod circuit;

use halo2_base::gates::{circuit::CircuitBuilderStage, flex_gate::MultiPhaseThreadBreakPoints};
use halo2_proofs::{
    halo2curves::{
        bn256::{Bn256, Fq, Fr, G1Affine, G2Prepared},
        ff::PrimeField,
        group::Group,
        pairing::{MillerLoopResult, MultiMillerLoop},
        CurveAffine,
    },
    plonk::{keygen_pk, keygen_vk, ProvingKey, VerifyingKey},
    poly::kzg::commitment::ParamsKZG,
};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use snark_verifier_sdk::{
    halo2::aggregation::AggregationConfigParams, snark_verifier::util::arithmetic::fe_from_limbs, CircuitExt, BITS,
    LIMBS,
};
use statesync_circuits::{
    poseidon::{self, Domain},
    witness::{PublicInputs, PUBLIC_LEN},
};

pub use circuit::{
    bind_sequence, epoch_circuit, inner_snark, EpochSpec, ACCUMULATOR_LEN, EPOCH_INSTANCES, EPOCH_PUBLIC_LEN,
};

use crate::{
    batch::BatchProof,
    hal::Hal,
    snark::{prove_circuit, verify_instances, vk_hash, TranscriptKind},
    ProverError,
};

/// Default `log2` of an epoch circuit's rows: the in-circuit verification
/// of two small proofs fills about 2^20 rows of 10 columns.
pub const EPOCH_K: u32 = 20;
/// Version of the epoch circuit's constraints (key caches are keyed by it).
pub const EPOCH_VERSION: u32 = 1;

/// SHA-256 (hex) of the epoch circuit's source ([`circuit`]) and of the batch circuit's digest
/// (which covers the Poseidon spec and the Cargo.lock entries of the halo2
/// and snark-verifier libraries): epoch key caches are addressed by it,
/// so a key made by other epoch-circuit code is never used.
pub fn epoch_digest() -> &'static str {
    static DIGEST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DIGEST.get_or_init(|| {
        let mut h = Sha256::new();
        h.update(include_str!("circuit.rs"));
        h.update(statesync_circuits::circuit::CIRCUIT_DIGEST);
        hex::encode(h.finalize())
    })
}

/// Default `log2` of the wrapper circuit's rows: one epoch proof verified
/// in-circuit fills about 2^22 rows of two advice columns, and fewer
/// columns make a smaller EVM verifier.
pub const WRAPPER_K: u32 = 22;

impl EpochSpec {
    /// Checks the spec can be built.
    pub fn validate(&self) -> Result<(), ProverError> {
        let k_ok = |k: u32| (EPOCH_K - 2..=26).contains(&k);
        if self.level == 0 || self.n < 2 || !k_ok(self.k) || self.wrap.is_some_and(|k| !k_ok(k) || self.level < 2) {
            return Err(ProverError::Epoch(format!(
                "an epoch needs level >= 1, n >= 2 and {} <= k <= 26, a wrapper level >= 2 and the same range of k (got {self})",
                EPOCH_K - 2,
            )));
        }
        Ok(())
    }
}

/// The keys of one epoch circuit (one chain, one spec).
#[derive(Debug)]
pub struct EpochKeys {
    /// What it aggregates.
    pub spec: EpochSpec,
    /// The chain tag it is bound to.
    pub tag: Fr,
    /// Its configuration (columns, lookup bits).
    pub config: AggregationConfigParams,
    /// Break points of the witness-generation builder.
    pub break_points: MultiPhaseThreadBreakPoints,
    /// Proving key.
    pub pk: ProvingKey<G1Affine>,
    /// Hex SHA-256 of the verifying key.
    pub vk_hash: String,
}

/// Generates the keys of the epoch circuit `spec` for the chain `tag` over
/// proofs of `inner_vk` (whose params are `inner_params`).
pub fn epoch_keygen(
    params: &ParamsKZG<Bn256>,
    inner_params: &ParamsKZG<Bn256>,
    inner_vk: &VerifyingKey<G1Affine>,
    spec: &EpochSpec,
    tag: Fr,
) -> Result<EpochKeys, ProverError> {
    let (circuit, config) = circuit::keygen_circuit(params, inner_params, inner_vk, spec, tag)?;
    let vk = keygen_vk(params, &circuit).map_err(ProverError::halo2("epoch keygen_vk"))?;
    let pk = keygen_pk(params, vk, &circuit).map_err(ProverError::halo2("epoch keygen_pk"))?;
    Ok(EpochKeys { spec: *spec, tag, config, break_points: circuit.break_points(), vk_hash: vk_hash(pk.get_vk()), pk })
}

/// The verifying key alone (what an EVM verifier needs; no proving key) and
/// the circuit's configuration.
pub fn epoch_vk(
    params: &ParamsKZG<Bn256>,
    inner_params: &ParamsKZG<Bn256>,
    inner_vk: &VerifyingKey<G1Affine>,
    spec: &EpochSpec,
    tag: Fr,
) -> Result<(VerifyingKey<G1Affine>, AggregationConfigParams), ProverError> {
    let (circuit, config) = circuit::keygen_circuit(params, inner_params, inner_vk, spec, tag)?;
    let vk = keygen_vk(params, &circuit).map_err(ProverError::halo2("epoch keygen_vk"))?;
    Ok((vk, config))
}

/// An epoch proof with its instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochProof {
    /// All instances: the accumulator, then [`EpochPublic`]'s fields.
    pub instances: Vec<Fr>,
    /// The proof bytes.
    pub proof: Vec<u8>,
    /// Its transcript.
    pub transcript: TranscriptKind,
    /// Hex SHA-256 of the epoch verifying key it was made for.
    pub vk_hash: String,
}

impl EpochProof {
    /// The public inputs after the accumulator.
    pub fn public(&self) -> EpochPublic {
        EpochPublic::from_fields(&self.instances[ACCUMULATOR_LEN..])
    }
}

/// A proof an epoch aggregates: a batch proof (level 1) or an epoch proof
/// of the level below.
pub trait Aggregated {
    /// Its whole instance column, its bytes, its transcript (an aggregated
    /// proof must be Poseidon's) and the hash of the verifying key it was
    /// made for.
    fn parts(&self) -> (Vec<Fr>, &[u8], TranscriptKind, &str);
}

impl Aggregated for BatchProof {
    fn parts(&self) -> (Vec<Fr>, &[u8], TranscriptKind, &str) {
        (self.public.to_fields(), &self.proof, self.transcript, &self.vk_hash)
    }
}

impl Aggregated for EpochProof {
    fn parts(&self) -> (Vec<Fr>, &[u8], TranscriptKind, &str) {
        (self.instances.clone(), &self.proof, self.transcript, &self.vk_hash)
    }
}

/// An epoch's public inputs (after the accumulator).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochPublic {
    /// The batches' public inputs, folded: first old root, last new root,
    /// hash of the commitments, totals, the chain tag, the first seq.
    #[serde(flatten)]
    pub public: PublicInputs,
    /// Batches the epoch covers.
    pub batches: u64,
}

impl EpochPublic {
    /// The [`EPOCH_PUBLIC_LEN`] field elements, in circuit order.
    pub fn to_fields(&self) -> Vec<Fr> {
        let mut v = self.public.to_fields();
        v.push(Fr::from(self.batches));
        v
    }

    /// From the [`EPOCH_PUBLIC_LEN`] field elements.
    pub fn from_fields(f: &[Fr]) -> Self {
        let batches = u64::from_le_bytes(f[PUBLIC_LEN].to_repr()[..8].try_into().expect("8 bytes"));
        EpochPublic { public: PublicInputs::from_fields(&f[..PUBLIC_LEN]), batches }
    }
}

/// Proves an epoch over `inner` (1..=`keys.spec.n` consecutive proofs made
/// for `inner_vk`, whose params are `inner_params`, with the Poseidon
/// transcript; the slots past them are padded with copies of the last,
/// which are verified but contribute nothing), or, when `keys.spec` is a
/// wrapper, wraps `inner`'s one epoch proof. The proofs' keys, transcript
/// and chaining are checked natively first, so a wrong request is a clear
/// error rather than a proof that does not verify.
pub fn prove_epoch(
    hal: &dyn Hal,
    params: &ParamsKZG<Bn256>,
    keys: &EpochKeys,
    (inner_params, inner_vk): (&ParamsKZG<Bn256>, &VerifyingKey<G1Affine>),
    inner: &[impl Aggregated],
    transcript: TranscriptKind,
    rng: impl RngCore,
) -> Result<EpochProof, ProverError> {
    let spec = &keys.spec;
    let slots = spec.slots();
    if inner.is_empty() || inner.len() > slots {
        return Err(ProverError::Epoch(match spec.wrap {
            Some(_) => format!("the wrapper takes one epoch proof, got {}", inner.len()),
            None => format!("the epoch takes 1 to {slots} proofs, got {}", inner.len()),
        }));
    }
    let inner_hash = vk_hash(inner_vk);
    let parts: Vec<_> = inner.iter().map(Aggregated::parts).collect();
    if let Some(i) = parts.iter().position(|p| p.2 != TranscriptKind::Poseidon || p.3 != inner_hash) {
        return Err(ProverError::Epoch(format!(
            "proof {i} was made with other keys or another transcript than the epoch aggregates"
        )));
    }
    check_sequence(spec, keys.tag, &parts.iter().map(|p| &p.0[..]).collect::<Vec<_>>())?;
    let real = parts.len();
    let padding = std::iter::repeat_n(parts[real - 1].clone(), slots - real);
    let snarks = parts
        .into_iter()
        .chain(padding)
        .map(|(instances, proof, ..)| inner_snark(inner_params, inner_vk, spec, instances, proof.to_vec()))
        .collect();
    let circuit = epoch_circuit(CircuitBuilderStage::Prover, keys.config, params, snarks, real, spec, keys.tag)
        .use_break_points(keys.break_points.clone());
    let instances = circuit.instances()[0].clone();
    let proof = prove_circuit(hal, params, &keys.pk, circuit, &instances, transcript, rng)?;
    Ok(EpochProof { instances, proof, transcript, vk_hash: keys.vk_hash.clone() })
}

/// The native form of [`bind_sequence`]: the aggregated proofs' instances
/// (each the full instance column) have the right length, carry `tag`,
/// chain their roots and have consecutive sequence numbers.
pub fn check_sequence(spec: &EpochSpec, tag: Fr, instances: &[&[Fr]]) -> Result<(), ProverError> {
    let off = spec.offset();
    for (i, inst) in instances.iter().enumerate() {
        if inst.len() != spec.inner_instances() {
            return Err(ProverError::Epoch(format!("proof {i} has the wrong number of public inputs")));
        }
        if inst[off + 5] != tag {
            return Err(ProverError::Epoch(format!("proof {i} is another chain's")));
        }
    }
    for (i, pair) in instances.windows(2).enumerate() {
        if pair[0][off + 1] != pair[1][off] {
            return Err(ProverError::Epoch(format!(
                "proofs {i} and {} do not chain: new root {} != old root {}",
                i + 1,
                statesync_circuits::witness::fr_hex::to_hex(&pair[0][off + 1]),
                statesync_circuits::witness::fr_hex::to_hex(&pair[1][off]),
            )));
        }
    }
    let public = |inst: &[Fr]| PublicInputs::from_fields(&inst[off..off + PUBLIC_LEN]);
    let count = |inst: &[Fr]| if spec.level == 1 { 1 } else { EpochPublic::from_fields(&inst[off..]).batches };
    for (i, pair) in instances.windows(2).enumerate() {
        let (a, b) = (public(pair[0]), public(pair[1]));
        if a.seq.checked_add(count(pair[0])) != Some(b.seq) {
            return Err(ProverError::Epoch(format!(
                "proofs {i} and {} are not consecutive: seq {} (+{}) then seq {}",
                i + 1,
                a.seq,
                count(pair[0]),
                b.seq
            )));
        }
    }
    Ok(())
}

/// Whether an epoch proof is valid: its own proof verifies under `vk` and
/// the deferred pairing check of its accumulator holds.
pub fn verify_epoch(
    params: &ParamsKZG<Bn256>,
    vk: &VerifyingKey<G1Affine>,
    instances: &[Fr],
    proof: &[u8],
    kind: TranscriptKind,
) -> bool {
    instances.len() == EPOCH_INSTANCES
        && verify_instances(params, vk, instances, proof, kind)
        && accumulator_holds(params, instances)
}

/// The deferred pairing check of an epoch proof: the accumulator in its
/// first [`ACCUMULATOR_LEN`] instances must satisfy e(lhs, g2) = e(rhs, s·g2).
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
/// (native, for checking and for clients): `previous` are the aggregated
/// proofs' batch-like inputs, `counts` the batches each covers.
pub fn epoch_public(previous: &[PublicInputs], counts: &[u64], tag: Fr) -> EpochPublic {
    EpochPublic {
        public: PublicInputs {
            old_root: previous[0].old_root,
            new_root: previous[previous.len() - 1].new_root,
            commitment: poseidon::hash(Domain::Epoch, &previous.iter().map(|p| p.commitment).collect::<Vec<_>>()),
            transitions: previous.iter().map(|p| p.transitions).sum(),
            liquidations: previous.iter().map(|p| p.liquidations).sum(),
            chain_tag: tag,
            seq: previous[0].seq,
        },
        batches: counts.iter().sum(),
    }
}

#[cfg(test)]
mod tests {
    use halo2_base::{
        gates::{circuit::builder::BaseCircuitBuilder, RangeInstructions},
        AssignedValue,
    };
    use halo2_proofs::dev::MockProver;
    use statesync_circuits::{
        config::ChainConfig,
        engine::apply_batch,
        examples,
        fixed::Fixed,
        transition::{Batch, Transition, BATCH_VERSION},
    };

    use super::*;

    /// Batch public inputs of a chain whose roots repeat: the funding index
    /// moved and moved back, again and again (roots R0, R1, R0, R1, ...).
    fn repeating(cfg: &ChainConfig, n: u64) -> Vec<PublicInputs> {
        let mut st = cfg.genesis_state();
        (0..n)
            .map(|seq| {
                let rate = Fixed(if seq % 2 == 0 { 1_000_000 } else { -1_000_000 });
                let t = Transition::FundingTick { market: 0, rate };
                let b = Batch { version: BATCH_VERSION, chain_id: cfg.chain_id.clone(), seq, transitions: vec![t] };
                let out = apply_batch(&st, &cfg.chain_id, &b).unwrap();
                st = out.state;
                out.witness.public
            })
            .collect()
    }

    /// Whether the epoch circuit's own constraints hold (MockProver over
    /// [`bind_sequence`]) over the slots `publics`, the first `real` of them
    /// the epoch's, with the epoch's public inputs `claimed` in the instance
    /// column (`None`: whatever the circuit computed).
    fn provable(spec: &EpochSpec, tag: Fr, publics: &[PublicInputs], real: u64, claimed: Option<&EpochPublic>) -> bool {
        let mut b = BaseCircuitBuilder::<Fr>::new(false).use_k(12).use_lookup_bits(11).use_instance_columns(1);
        let range = b.range_chip();
        let ctx = b.main(0);
        let prev: Vec<Vec<AssignedValue<Fr>>> =
            publics.iter().map(|p| p.to_fields().into_iter().map(|v| ctx.load_witness(v)).collect()).collect();
        let real = ctx.load_witness(Fr::from(real));
        let public = bind_sequence(ctx, range.gate(), &prev, real, spec, tag);
        let instances = claimed.map_or_else(|| public.iter().map(|c| *c.value()).collect(), EpochPublic::to_fields);
        b.assigned_instances[0] = public;
        b.calculate_params(Some(20));
        MockProver::run(12, &b, vec![instances]).unwrap().verify().is_ok()
    }

    /// The honest epoch over the first `m` of `publics` (batches).
    fn honest(publics: &[PublicInputs], m: usize, tag: Fr) -> EpochPublic {
        epoch_public(&publics[..m], &vec![1; m], tag)
    }

    #[test]
    fn reordered_repeated_and_foreign_batches_are_refused_and_unprovable() {
        let a = examples::tiny_chain("chain-a", 1, 3);
        let mut b = a.clone();
        b.chain_id = "chain-b".into();
        let (pa, pb) = (repeating(&a, 4), repeating(&b, 1));
        assert_eq!(pa[0].old_root, pa[1].new_root, "a funding index moved and moved back returns to the same root");
        assert_eq!(pa[0].old_root, pb[0].old_root, "identical genesis content, identical roots");
        assert_eq!(pa[0].new_root, pb[0].new_root);
        let tag = a.tag();
        let check = |spec: &EpochSpec, ps: &[PublicInputs]| {
            let fields: Vec<Vec<Fr>> = ps.iter().map(PublicInputs::to_fields).collect();
            let refs: Vec<&[Fr]> = fields.iter().map(|f| &f[..]).collect();
            check_sequence(spec, tag, &refs)
        };
        let two = EpochSpec::epoch(1, 2, EPOCH_K);
        let four = EpochSpec::epoch(1, 4, EPOCH_K);
        // the honest epochs
        assert!(check(&two, &pa[..2]).is_ok() && provable(&two, tag, &pa[..2], 2, Some(&honest(&pa, 2, tag))));
        assert!(check(&four, &pa).is_ok() && provable(&four, tag, &pa, 4, Some(&honest(&pa, 4, tag))));
        // [b1, b0]: the roots chain (R1 -> R0 -> R1), the seqs do not
        let reordered = [pa[1], pa[0]];
        assert!(matches!(check(&two, &reordered), Err(ProverError::Epoch(m)) if m.contains("not consecutive")));
        assert!(!provable(&two, tag, &reordered, 2, None));
        // [b0, b1, b0, b1]
        let repeated = [pa[0], pa[1], pa[0], pa[1]];
        assert!(matches!(check(&four, &repeated), Err(ProverError::Epoch(m)) if m.contains("not consecutive")));
        assert!(!provable(&four, tag, &repeated, 4, None));
        // chain b's batch 0 in chain a's epoch: same roots, another tag
        let foreign = [pb[0], pa[1]];
        assert!(matches!(check(&two, &foreign), Err(ProverError::Epoch(m)) if m.contains("another chain")));
        assert!(!provable(&two, tag, &foreign, 2, None));
    }

    #[test]
    fn padding_slots_contribute_nothing_and_the_count_is_in_range() {
        let a = examples::tiny_chain("chain-a", 1, 3);
        let tag = a.tag();
        let pa = repeating(&a, 4);
        let four = EpochSpec::epoch(1, 4, EPOCH_K);
        // a padding slot unlike any real one: its own roots, commitment,
        // counts and seq (a padding proof is verified, so it is the chain's)
        let stray = PublicInputs {
            old_root: Fr::from(7),
            new_root: Fr::from(8),
            commitment: Fr::from(9),
            transitions: 5,
            liquidations: 2,
            seq: 40,
            ..pa[2]
        };
        for m in 1..=3 {
            let copies: Vec<_> = (0..4).map(|i| pa[i.min(m - 1)]).collect();
            let strays: Vec<_> = (0..4).map(|i| if i < m { pa[i] } else { stray }).collect();
            let epoch = honest(&pa, m, tag);
            // padded as prove_epoch pads (copies of the last), or with anything
            assert!(provable(&four, tag, &copies, m as u64, Some(&epoch)), "m = {m}, copies");
            assert!(provable(&four, tag, &strays, m as u64, Some(&epoch)), "m = {m}, strays");
            // a padding slot contributing its new root, counts or commitment
            let claims = [
                EpochPublic { public: PublicInputs { new_root: stray.new_root, ..epoch.public }, ..epoch },
                EpochPublic {
                    public: PublicInputs { transitions: epoch.public.transitions + 5, ..epoch.public },
                    ..epoch
                },
                EpochPublic { public: PublicInputs { liquidations: 2, ..epoch.public }, ..epoch },
                EpochPublic { batches: m as u64 + 1, ..epoch },
                EpochPublic {
                    public: PublicInputs { commitment: honest(&strays, m + 1, tag).public.commitment, ..epoch.public },
                    ..epoch
                },
            ];
            for (i, claim) in claims.iter().enumerate() {
                assert!(!provable(&four, tag, &strays, m as u64, Some(claim)), "m = {m}, claim {i}");
            }
            // the strays counted as real: they do not chain
            assert!(!provable(&four, tag, &strays, m as u64 + 1, None), "m = {m} + 1 over strays");
        }
        assert!(provable(&four, tag, &pa, 4, None));
        // m out of 1..=4, whatever the instances claim
        for m in [0, 5, 6, u64::MAX] {
            assert!(!provable(&four, tag, &pa, m, None), "m = {m}");
        }
        // a padding slot of another chain (another tag) is refused
        let foreign = PublicInputs { chain_tag: Fr::from(3), ..pa[1] };
        assert!(!provable(&four, tag, &[pa[0], pa[1], foreign, foreign], 2, Some(&honest(&pa, 2, tag))));
    }
}
