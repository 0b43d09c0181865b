//! Verifying-key files: a circuit's verifying key with the few parameters
//! its verifier reads (`GET /v1/chains/{chain}/vk`, `statesync verify --vk`),
//! so that verifying needs neither the SRS nor any key generation.
//!
//! What halo2-axiom's KZG verifier (SHPLONK) reads of the parameters:
//! `k`; the first G1 power `g`; `g2` and `s·g2` for the pairing; and the
//! Lagrange-basis commitments of the rows that carry public inputs (it
//! commits to the instance column, which is zero past them). A file carries
//! exactly these; [`VerifyingKeyFile::verifier`] rebuilds parameters whose
//! other Lagrange bases are the identity, which every commitment to an
//! instance column leaves unread (their scalars are zero).

use halo2_base::gates::circuit::BaseCircuitParams;
use halo2_proofs::{
    halo2curves::{
        bn256::{G1Affine, G2Affine},
        group::{prime::PrimeCurveAffine, GroupEncoding},
    },
    plonk::VerifyingKey,
    poly::commitment::{Params, ParamsProver},
    SerdeFormat,
};
use serde::{Deserialize, Serialize};
use snark_verifier_sdk::halo2::aggregation::{AggregationCircuit, AggregationConfigParams};
use statesync_circuits::{circuit::BatchCircuit, config::Shape};

use crate::{
    epoch::EpochSpec,
    prover::Verifier,
    snark::vk_hash,
    srs::{lagrange_bases, params_from_parts, params_id},
    ProverError,
};

/// Version of the verifying-key file format.
pub const VK_FILE_VERSION: u32 = 1;

/// The circuit a verifying key is of, with what reading the key needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "circuit", rename_all = "snake_case")]
pub enum CircuitOf {
    /// The batch circuit of `shape`, laid out as `layout` (halo2-base's
    /// circuit parameters).
    Batch {
        /// The shape.
        shape: Shape,
        /// halo2-base's `BaseCircuitParams` of the shape.
        #[cfg_attr(feature = "openapi", schema(value_type = Object))]
        layout: BaseCircuitParams,
    },
    /// The epoch circuit `spec`, configured as `config`
    /// (snark-verifier-sdk's `AggregationConfigParams`).
    Epoch {
        /// Level, batches per epoch and k.
        #[cfg_attr(feature = "openapi", schema(value_type = Object))]
        spec: EpochSpec,
        /// The aggregation circuit's configuration.
        #[cfg_attr(feature = "openapi", schema(value_type = Object))]
        config: AggregationConfigParams,
    },
}

/// The parameters a verifier reads (module docs), points compressed in hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VerifierParams {
    /// log2 of the circuit's rows.
    pub k: u32,
    /// The id of the SRS these were taken from (`statesync keys` and the
    /// key cache name it too).
    pub srs: String,
    /// The first G1 power (the generator).
    pub g: String,
    /// The G2 generator.
    pub g2: String,
    /// `s·g2`.
    pub s_g2: String,
    /// Lagrange-basis commitments of the public-input rows, in row order.
    pub lagrange: Vec<String>,
}

/// A verifying key with its parameters: everything a verifier of the
/// circuit's proofs needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyingKeyFile {
    /// Format version ([`VK_FILE_VERSION`]).
    pub version: u32,
    /// The circuit.
    #[serde(flatten)]
    pub circuit: CircuitOf,
    /// Hex SHA-256 of the verifying key's bytes (what proofs name).
    pub vk_hash: String,
    /// The verifying key, halo2-axiom's raw bytes in hex.
    pub vk: String,
    /// The parameters.
    pub params: VerifierParams,
}

fn point_hex(p: &impl GroupEncoding) -> String {
    format!("0x{}", hex::encode(p.to_bytes()))
}

fn point<P: GroupEncoding + Default>(text: &str, what: &str) -> Result<P, ProverError> {
    let bad = || ProverError::ProofFile(format!("verifying-key file: {what} is not a compressed point in hex"));
    let bytes = hex::decode(text.strip_prefix("0x").unwrap_or(text)).map_err(|_| bad())?;
    let mut repr = P::default().to_bytes();
    if bytes.len() != repr.as_ref().len() {
        return Err(bad());
    }
    repr.as_mut().copy_from_slice(&bytes);
    Option::from(P::from_bytes(&repr)).ok_or_else(bad)
}

impl VerifyingKeyFile {
    /// The file of `v`, a verifier of `circuit` whose proofs carry
    /// `instances` public inputs.
    pub fn new(v: &Verifier, circuit: CircuitOf, instances: usize) -> Result<Self, ProverError> {
        let p = &v.params;
        let lagrange = lagrange_bases(p)?.iter().take(instances).map(point_hex).collect();
        Ok(VerifyingKeyFile {
            version: VK_FILE_VERSION,
            circuit,
            vk_hash: v.vk_hash.clone(),
            vk: hex::encode(v.vk.to_bytes(SerdeFormat::RawBytes)),
            params: VerifierParams {
                k: p.k(),
                srs: params_id(p),
                g: point_hex(&p.get_g()[0]),
                g2: point_hex(&p.g2()),
                s_g2: point_hex(&p.s_g2()),
                lagrange,
            },
        })
    }

    /// The verifier it describes (a file of this version): its key, checked
    /// against `vk_hash`, and parameters. Nothing is generated.
    pub fn verifier(&self) -> Result<Verifier, ProverError> {
        let bad = |m: String| ProverError::ProofFile(format!("verifying-key file: {m}"));
        if self.version != VK_FILE_VERSION {
            return Err(bad(format!("unsupported version {} (this build reads {VK_FILE_VERSION})", self.version)));
        }
        let p = &self.params;
        if !(1..=28).contains(&p.k) {
            return Err(bad(format!("k = {} is outside 1..=28", p.k)));
        }
        let n = 1usize << p.k;
        if p.lagrange.len() > n {
            return Err(bad(format!("{} Lagrange bases for 2^{} rows", p.lagrange.len(), p.k)));
        }
        let mut lagrange = vec![G1Affine::identity(); n];
        for (slot, text) in lagrange.iter_mut().zip(&p.lagrange) {
            *slot = point(text, "a Lagrange basis")?;
        }
        let g: G1Affine = point(&p.g, "g")?;
        let (g2, s_g2): (G2Affine, G2Affine) = (point(&p.g2, "g2")?, point(&p.s_g2, "s_g2")?);
        let params = params_from_parts(p.k, vec![g], Some(lagrange), g2, s_g2);
        let bytes = hex::decode(&self.vk).map_err(|e| bad(format!("the key is not hex: {e}")))?;
        let vk = match &self.circuit {
            CircuitOf::Batch { layout, .. } => {
                VerifyingKey::<G1Affine>::from_bytes::<BatchCircuit>(&bytes, SerdeFormat::RawBytes, layout.clone())
            }
            CircuitOf::Epoch { config, .. } => {
                VerifyingKey::<G1Affine>::from_bytes::<AggregationCircuit>(&bytes, SerdeFormat::RawBytes, *config)
            }
        }
        .map_err(|e| bad(format!("the key does not read: {e}")))?;
        let hash = vk_hash(&vk);
        if hash != self.vk_hash {
            return Err(bad(format!("the key hashes to {hash}, not to its vk_hash {}", self.vk_hash)));
        }
        Ok(Verifier { params: std::sync::Arc::new(params), vk, vk_hash: hash })
    }
}
