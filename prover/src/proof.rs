//! Batch proofs: proving, verifying, and the proof file format.

use halo2_base::gates::circuit::builder::BaseCircuitBuilder;
use halo2_proofs::{
    halo2curves::bn256::{Bn256, Fr, G1Affine},
    plonk::{create_proof, verify_proof, Circuit, ProvingKey, VerifyingKey},
    poly::{
        commitment::ParamsProver,
        kzg::{
            commitment::{KZGCommitmentScheme, ParamsKZG},
            multiopen::{ProverSHPLONK, VerifierSHPLONK},
            strategy::SingleStrategy,
        },
    },
    transcript::{
        Blake2bRead, Blake2bWrite, Challenge255, EncodedChallenge, TranscriptRead, TranscriptReadBuffer,
        TranscriptWrite, TranscriptWriterBuffer,
    },
};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use snark_verifier_sdk::{
    halo2::{PoseidonTranscript, POSEIDON_SPEC},
    snark_verifier::{loader::native::NativeLoader, system::halo2::transcript::evm::EvmTranscript},
};
use statesync_circuits::{
    circuit::BatchCircuit,
    config::Shape,
    witness::{BatchWitness, PublicInputs},
};

use crate::{hal::Hal, keys::ShapeKeys, plonk, ProverError};

/// Version of the proof file format.
pub const PROOF_VERSION: u32 = 2;

/// Fiat-Shamir transcript of a proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TranscriptKind {
    /// Blake2b: standalone proofs.
    Blake2b,
    /// snark-verifier's Poseidon: proofs that will be aggregated.
    Poseidon,
    /// Keccak, as the EVM verifier reads it: top-level epoch proofs.
    Evm,
}

/// Proves the batch in `w` with `keys` on `hal`; all prover randomness comes
/// from `rng`.
pub fn prove_batch(
    hal: &dyn Hal,
    params: &ParamsKZG<Bn256>,
    keys: &ShapeKeys,
    w: &BatchWitness,
    kind: TranscriptKind,
    rng: impl RngCore,
) -> Result<Vec<u8>, ProverError> {
    let (builder, claimed) = batch_circuit(keys, w)?;
    prove_circuit(hal, params, &keys.pk, builder, &claimed, kind, rng)
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

/// Writes one proof into a transcript of any kind.
trait WriteProof {
    fn write<E: EncodedChallenge<G1Affine>, T: TranscriptWrite<G1Affine, E>>(
        self,
        t: &mut T,
    ) -> Result<(), ProverError>;
}

/// statesync's prover on a Hal.
struct OnHal<'a, C, R> {
    hal: &'a dyn Hal,
    params: &'a ParamsKZG<Bn256>,
    pk: &'a ProvingKey<G1Affine>,
    circuit: C,
    instances: &'a [Fr],
    rng: R,
}

impl<C: Circuit<Fr>, R: RngCore> WriteProof for OnHal<'_, C, R> {
    fn write<E: EncodedChallenge<G1Affine>, T: TranscriptWrite<G1Affine, E>>(
        self,
        t: &mut T,
    ) -> Result<(), ProverError> {
        plonk::create_proof(self.hal, self.params, self.pk, &self.circuit, &[self.instances], self.rng, t)
    }
}

/// halo2-axiom's `create_proof`: the baseline of tests and benchmarks.
struct Baseline<'a, C, R> {
    params: &'a ParamsKZG<Bn256>,
    pk: &'a ProvingKey<G1Affine>,
    circuit: C,
    instances: &'a [Fr],
    rng: R,
}

impl<C: Circuit<Fr>, R: RngCore> WriteProof for Baseline<'_, C, R> {
    fn write<E: EncodedChallenge<G1Affine>, T: TranscriptWrite<G1Affine, E>>(
        self,
        t: &mut T,
    ) -> Result<(), ProverError> {
        create_proof::<KZGCommitmentScheme<Bn256>, ProverSHPLONK<'_, Bn256>, _, _, _, _>(
            self.params,
            self.pk,
            &[self.circuit],
            &[&[self.instances]],
            self.rng,
            t,
        )
        .map_err(|e| ProverError::Halo2(format!("create_proof: {e:?}")))
    }
}

fn write_proof(kind: TranscriptKind, proof: impl WriteProof) -> Result<Vec<u8>, ProverError> {
    match kind {
        TranscriptKind::Blake2b => {
            let mut t = Blake2bWrite::<_, G1Affine, Challenge255<_>>::init(vec![]);
            proof.write(&mut t)?;
            Ok(t.finalize())
        }
        TranscriptKind::Poseidon => {
            let mut t = PoseidonTranscript::<NativeLoader, Vec<u8>>::from_spec(vec![], POSEIDON_SPEC.clone());
            proof.write(&mut t)?;
            Ok(t.finalize())
        }
        TranscriptKind::Evm => {
            let mut t = <EvmTranscript<G1Affine, NativeLoader, _, _> as TranscriptWriterBuffer<_, _, _>>::init(vec![]);
            proof.write(&mut t)?;
            Ok(t.finalize())
        }
    }
}

fn check_proof<E: EncodedChallenge<G1Affine>, T: TranscriptRead<G1Affine, E>>(
    params: &ParamsKZG<Bn256>,
    vk: &VerifyingKey<G1Affine>,
    instances: &[&[Fr]],
    t: &mut T,
) -> bool {
    verify_proof::<KZGCommitmentScheme<Bn256>, VerifierSHPLONK<'_, Bn256>, _, _, SingleStrategy<'_, Bn256>>(
        params.verifier_params(),
        vk,
        SingleStrategy::new(params),
        &[instances],
        t,
    )
    .is_ok()
}

/// Proves any circuit (a batch or an epoch circuit) on `hal` with `kind`'s
/// transcript.
pub fn prove_circuit<C: Circuit<Fr>>(
    hal: &dyn Hal,
    params: &ParamsKZG<Bn256>,
    pk: &ProvingKey<G1Affine>,
    circuit: C,
    instances: &[Fr],
    kind: TranscriptKind,
    rng: impl RngCore,
) -> Result<Vec<u8>, ProverError> {
    write_proof(kind, OnHal { hal, params, pk, circuit, instances, rng })
}

/// The same proof by halo2-axiom's own `create_proof` — the reference the
/// tests and `statesync-bench prove` compare against; not used to serve.
pub fn prove_circuit_halo2<C: Circuit<Fr>>(
    params: &ParamsKZG<Bn256>,
    pk: &ProvingKey<G1Affine>,
    circuit: C,
    instances: &[Fr],
    kind: TranscriptKind,
    rng: impl RngCore,
) -> Result<Vec<u8>, ProverError> {
    write_proof(kind, Baseline { params, pk, circuit, instances, rng })
}

/// Whether `proof` is a valid proof of `public` under `vk`.
pub fn verify_batch(
    params: &ParamsKZG<Bn256>,
    vk: &VerifyingKey<G1Affine>,
    public: &PublicInputs,
    proof: &[u8],
    kind: TranscriptKind,
) -> bool {
    verify_instances(params, vk, &public.to_fields(), proof, kind)
}

/// Whether `proof` is a valid proof for the public `instances` under `vk`.
pub fn verify_instances(
    params: &ParamsKZG<Bn256>,
    vk: &VerifyingKey<G1Affine>,
    instances: &[Fr],
    proof: &[u8],
    kind: TranscriptKind,
) -> bool {
    let instances = [instances];
    match kind {
        TranscriptKind::Blake2b => {
            check_proof(params, vk, &instances, &mut Blake2bRead::<_, G1Affine, Challenge255<_>>::init(proof))
        }
        TranscriptKind::Poseidon => check_proof(
            params,
            vk,
            &instances,
            &mut PoseidonTranscript::<NativeLoader, &[u8]>::from_spec(proof, POSEIDON_SPEC.clone()),
        ),
        TranscriptKind::Evm => check_proof(
            params,
            vk,
            &instances,
            &mut <EvmTranscript<G1Affine, NativeLoader, _, _> as TranscriptReadBuffer<_, _, _>>::init(proof),
        ),
    }
}

/// A proof file (`statesync prove --out`), JSON.
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
    /// Parses a proof file.
    pub fn from_json(text: &str) -> Result<Self, ProverError> {
        let f: ProofFile = serde_json::from_str(text).map_err(|e| ProverError::ProofFile(e.to_string()))?;
        if f.version != PROOF_VERSION {
            return Err(ProverError::ProofFile(format!("unsupported version {}", f.version)));
        }
        Ok(f)
    }

    /// The proof bytes.
    pub fn proof_bytes(&self) -> Result<Vec<u8>, ProverError> {
        hex::decode(&self.proof).map_err(|e| ProverError::ProofFile(format!("proof is not hex: {e}")))
    }
}
