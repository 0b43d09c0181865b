//! Proving and verifying any circuit (a batch or an epoch circuit) over
//! KZG/SHPLONK: the Fiat-Shamir transcripts, statesync's prover on a Hal,
//! halo2-axiom's prover as the baseline, the verifier, and the hash that
//! names a verifying key.

use std::{fmt, str::FromStr};

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
    SerdeFormat,
};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use snark_verifier_sdk::{
    halo2::{PoseidonTranscript, POSEIDON_SPEC},
    snark_verifier::{loader::native::NativeLoader, system::halo2::transcript::evm::EvmTranscript},
};

use crate::{hal::Hal, plonk, ProverError};

/// Fiat-Shamir transcript of a proof.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TranscriptKind {
    /// Blake2b: standalone proofs.
    Blake2b,
    /// snark-verifier's Poseidon: proofs that will be aggregated.
    Poseidon,
    /// Keccak, as the EVM verifier reads it: top-level epoch proofs.
    Evm,
}

impl TranscriptKind {
    /// Every kind.
    pub const ALL: [TranscriptKind; 3] = [TranscriptKind::Blake2b, TranscriptKind::Poseidon, TranscriptKind::Evm];

    /// Its name (as in JSON and in stores).
    pub fn as_str(self) -> &'static str {
        match self {
            TranscriptKind::Blake2b => "blake2b",
            TranscriptKind::Poseidon => "poseidon",
            TranscriptKind::Evm => "evm",
        }
    }
}

impl fmt::Display for TranscriptKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TranscriptKind {
    type Err = ProverError;

    fn from_str(s: &str) -> Result<Self, ProverError> {
        TranscriptKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| ProverError::ProofFile(format!("unknown transcript {s:?}")))
    }
}

/// Hex SHA-256 of a verifying key's raw bytes.
pub fn vk_hash(vk: &VerifyingKey<G1Affine>) -> String {
    hex::encode(Sha256::digest(vk.to_bytes(SerdeFormat::RawBytes)))
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
        .map_err(ProverError::halo2("create_proof"))
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

/// Whether `proof` is a valid proof for the public `instances` under `vk`
/// (halo2-axiom's verifier).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcript_names_round_trip_as_in_json() {
        for kind in TranscriptKind::ALL {
            assert_eq!(kind.as_str().parse::<TranscriptKind>().unwrap(), kind);
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{kind}\""));
        }
        assert!("Poseidon".parse::<TranscriptKind>().is_err());
    }
}
