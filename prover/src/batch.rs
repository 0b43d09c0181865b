//! The batch circuit's keys and proofs, and the proof file format.

use std::time::{Duration, Instant};

use halo2_base::gates::{
    circuit::{builder::BaseCircuitBuilder, BaseCircuitParams},
    flex_gate::MultiPhaseThreadBreakPoints,
};
use halo2_proofs::{
    halo2curves::bn256::{Bn256, Fr, G1Affine},
    plonk::{keygen_pk, keygen_vk, ProvingKey, VerifyingKey},
    poly::kzg::commitment::ParamsKZG,
};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use statesync_circuits::{
    circuit::{self, BatchCircuit},
    config::Shape,
    engine::padding_witness,
    witness::{BatchWitness, PublicInputs},
};

use crate::{
    hal::Hal,
    snark::{prove_circuit, verify_instances, vk_hash, TranscriptKind},
    ProverError,
};

/// Version of the proof file format.
pub const PROOF_VERSION: u32 = 2;

/// The keys of one shape.
#[derive(Debug)]
pub struct ShapeKeys {
    /// The shape.
    pub shape: Shape,
    /// Its layout.
    pub layout: BaseCircuitParams,
    /// Break points of the witness-generation builder.
    pub break_points: MultiPhaseThreadBreakPoints,
    /// Proving key.
    pub pk: ProvingKey<G1Affine>,
    /// Hex SHA-256 of the serialized verifying key.
    pub vk_hash: String,
}

impl ShapeKeys {
    /// `log2` of the circuit's rows.
    pub fn k(&self) -> u32 {
        self.layout.k as u32
    }
}

/// The keygen circuit of `shape` at `layout`: the padding witness.
fn keygen_circuit(shape: &Shape, layout: &BaseCircuitParams) -> Result<BatchCircuit, ProverError> {
    Ok(circuit::circuit_for(layout, &padding_witness(shape), false)?)
}

/// Generates the keys of `shape` at `layout`.
pub fn keygen(params: &ParamsKZG<Bn256>, shape: &Shape, layout: &BaseCircuitParams) -> Result<ShapeKeys, ProverError> {
    let c = keygen_circuit(shape, layout)?;
    let vk = keygen_vk(params, &c).map_err(ProverError::halo2("keygen_vk"))?;
    let pk = keygen_pk(params, vk, &c).map_err(ProverError::halo2("keygen_pk"))?;
    Ok(ShapeKeys {
        shape: shape.clone(),
        layout: layout.clone(),
        break_points: c.builder.break_points(),
        vk_hash: vk_hash(pk.get_vk()),
        pk,
    })
}

/// Generates the verifying key alone of `shape` at `layout`.
pub fn keygen_verifying_key(
    params: &ParamsKZG<Bn256>,
    shape: &Shape,
    layout: &BaseCircuitParams,
) -> Result<VerifyingKey<G1Affine>, ProverError> {
    keygen_vk(params, &keygen_circuit(shape, layout)?).map_err(ProverError::halo2("keygen_vk"))
}

/// The batch circuit of `w` (witness generation done) and its public inputs,
/// refused when the witness claims other public inputs than it computes.
pub fn batch_circuit(keys: &ShapeKeys, w: &BatchWitness) -> Result<(BatchCircuit, Vec<Fr>), ProverError> {
    let builder = BaseCircuitBuilder::prover(keys.layout.clone(), keys.break_points.clone());
    let c = BatchCircuit::new(builder, w)?;
    let computed = c.instances();
    let claimed = w.public.to_fields();
    if computed != claimed {
        return Err(ProverError::Inconsistent(format!("{computed:?}, the witness claims {claimed:?}")));
    }
    Ok((c, claimed))
}

/// A batch proof: what a store keeps and an epoch aggregates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchProof {
    /// The batch's public inputs.
    pub public: PublicInputs,
    /// Its transcript.
    pub transcript: TranscriptKind,
    /// Hex SHA-256 of the verifying key it was made for.
    pub vk_hash: String,
    /// The proof bytes.
    pub proof: Vec<u8>,
}

/// How long the steps of a batch proof took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProveTimings {
    /// Witness generation: the batch circuit's cells from the batch witness.
    pub witness: Duration,
    /// The proof itself.
    pub proving: Duration,
}

/// Proves the batch in `w` with `keys` on `hal`; all prover randomness comes
/// from `rng`.
pub fn prove(
    hal: &dyn Hal,
    params: &ParamsKZG<Bn256>,
    keys: &ShapeKeys,
    w: &BatchWitness,
    transcript: TranscriptKind,
    rng: impl RngCore,
) -> Result<(BatchProof, ProveTimings), ProverError> {
    let t = Instant::now();
    let (circuit, instances) = batch_circuit(keys, w)?;
    let witness = t.elapsed();
    let t = Instant::now();
    let proof = prove_circuit(hal, params, &keys.pk, circuit, &instances, transcript, rng)?;
    let proving = t.elapsed();
    let proof = BatchProof { public: w.public, transcript, vk_hash: keys.vk_hash.clone(), proof };
    Ok((proof, ProveTimings { witness, proving }))
}

/// Whether `proof` is a valid proof under `vk` (whose hash is `vk_hash`):
/// it names that key and halo2-axiom's verifier accepts it.
pub fn verify(params: &ParamsKZG<Bn256>, vk: &VerifyingKey<G1Affine>, vk_hash: &str, proof: &BatchProof) -> bool {
    proof.vk_hash == vk_hash && verify_instances(params, vk, &proof.public.to_fields(), &proof.proof, proof.transcript)
}

/// A proof file (`statesync prove --out`, `GET /v1/jobs/{id}/proof`), JSON.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofFile {
    /// Format version ([`PROOF_VERSION`]).
    pub version: u32,
    /// Chain id.
    pub chain_id: String,
    /// Batch sequence number.
    pub seq: u64,
    /// Circuit shape.
    pub shape: Shape,
    /// log2 of the circuit's rows.
    pub k: u32,
    /// Transcript.
    pub transcript: TranscriptKind,
    /// Public inputs.
    pub public_inputs: PublicInputs,
    /// Hex SHA-256 of the verifying key.
    pub vk_hash: String,
    /// The proof, hex.
    pub proof: String,
}

impl ProofFile {
    /// The file of `proof`, batch `seq` of chain `chain_id` at `shape`
    /// (whose circuit has 2^k rows).
    pub fn new(chain_id: &str, seq: u64, shape: &Shape, k: u32, proof: &BatchProof) -> Self {
        ProofFile {
            version: PROOF_VERSION,
            chain_id: chain_id.to_string(),
            seq,
            shape: shape.clone(),
            k,
            transcript: proof.transcript,
            public_inputs: proof.public,
            vk_hash: proof.vk_hash.clone(),
            proof: hex::encode(&proof.proof),
        }
    }

    /// Parses a proof file.
    pub fn from_json(text: &str) -> Result<Self, ProverError> {
        let f: ProofFile = serde_json::from_str(text)?;
        if f.version != PROOF_VERSION {
            return Err(ProverError::ProofFile(format!("unsupported version {}", f.version)));
        }
        Ok(f)
    }

    /// The proof it carries.
    pub fn batch_proof(&self) -> Result<BatchProof, ProverError> {
        let proof = hex::decode(&self.proof)?;
        Ok(BatchProof { public: self.public_inputs, transcript: self.transcript, vk_hash: self.vk_hash.clone(), proof })
    }
}
