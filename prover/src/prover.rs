//! The prover: one object owning what proofs are made with — the SRS
//! source, the parameters of each size, the key cache and the Hal — that
//! proves and verifies batches and epochs. The CLI, the service, the demo,
//! the benchmarks and the tests all go through it: the sequence "layout →
//! parameters of size k → keys" is written here once.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use halo2_base::gates::circuit::BaseCircuitParams;
use halo2_proofs::{halo2curves::bn256::G1Affine, plonk::VerifyingKey};
use rand::RngCore;
use statesync_circuits::{
    config::ChainConfig,
    config::Shape,
    witness::{BatchWitness, PUBLIC_LEN},
};

use crate::{
    batch::{self, BatchProof, ProofFile, ProveTimings, ShapeKeys},
    epoch::{self, Aggregated, EpochKeys, EpochProof, EpochSpec, EPOCH_INSTANCES},
    hal::Hal,
    keys::KeyStore,
    snark::{vk_hash, TranscriptKind},
    srs::{Params, SrsSource},
    vkfile::{CircuitOf, VerifyingKeyFile},
    ProverError,
};

/// What the prover's caches hold, shared by every [`Prover`] made with
/// [`Prover::with_hal`].
#[derive(Debug)]
struct Setup {
    srs: SrsSource,
    params: Mutex<HashMap<u32, Arc<Params>>>,
    keys: KeyStore,
}

/// Proves and verifies batches and epochs on one Hal.
#[derive(Debug, Clone)]
pub struct Prover {
    setup: Arc<Setup>,
    hal: Arc<dyn Hal>,
}

/// A circuit's proving keys with the parameters they were made with.
#[derive(Debug, Clone)]
pub struct Keyed<K> {
    /// The parameters.
    pub params: Arc<Params>,
    /// The keys.
    pub keys: Arc<K>,
}

/// A verifying key with its parameters and hash.
#[derive(Debug, Clone)]
pub struct Verifier {
    /// The parameters.
    pub params: Arc<Params>,
    /// The verifying key.
    pub vk: VerifyingKey<G1Affine>,
    /// Its hex SHA-256.
    pub vk_hash: String,
}

impl Prover {
    /// A prover with parameters from `srs`, keys cached in `keys`, proving on `hal`.
    pub fn new(srs: SrsSource, keys: KeyStore, hal: Arc<dyn Hal>) -> Self {
        Prover { setup: Arc::new(Setup { srs, params: Mutex::default(), keys }), hal }
    }

    /// The prover of a cache directory: the ceremony file if given, else the
    /// development SRS cached in `cache_dir/srs`; keys in `cache_dir/keys`.
    pub fn in_cache_dir(ceremony: Option<PathBuf>, cache_dir: &Path, hal: Arc<dyn Hal>) -> Self {
        Prover::new(SrsSource::new(ceremony, cache_dir), KeyStore::in_cache_dir(cache_dir), hal)
    }

    /// The same caches, proving on another Hal.
    pub fn with_hal(&self, hal: Arc<dyn Hal>) -> Self {
        Prover { setup: self.setup.clone(), hal }
    }

    /// The Hal proofs run on.
    pub fn hal(&self) -> &Arc<dyn Hal> {
        &self.hal
    }

    /// Where parameters come from.
    pub fn srs(&self) -> &SrsSource {
        &self.setup.srs
    }

    /// The key cache.
    pub fn key_store(&self) -> &KeyStore {
        &self.setup.keys
    }

    /// Parameters of size `k` (loaded or generated once per process).
    pub fn params(&self, k: u32) -> Result<Arc<Params>, ProverError> {
        let cached = || self.setup.params.lock().unwrap_or_else(|p| p.into_inner()).get(&k).cloned();
        if let Some(p) = cached() {
            return Ok(p);
        }
        let p = Arc::new(self.setup.srs.params(k)?);
        Ok(self.setup.params.lock().unwrap_or_else(|p| p.into_inner()).entry(k).or_insert(p).clone())
    }

    /// The batch circuit's layout at `shape`.
    pub fn layout(&self, shape: &Shape) -> Result<BaseCircuitParams, ProverError> {
        self.setup.keys.layout(shape)
    }

    /// The batch circuit's keys at `shape` (generated on first use).
    pub fn batch_keys(&self, shape: &Shape) -> Result<Keyed<ShapeKeys>, ProverError> {
        let params = self.params(self.layout(shape)?.k as u32)?;
        let keys = self.setup.keys.keys(&params, shape)?;
        Ok(Keyed { params, keys })
    }

    /// The batch circuit's verifying key at `shape` (no proving key is
    /// made or loaded when the verifying key is cached).
    pub fn batch_verifier(&self, shape: &Shape) -> Result<Verifier, ProverError> {
        let params = self.params(self.layout(shape)?.k as u32)?;
        let (vk, vk_hash) = self.setup.keys.verifying_key(&params, shape)?;
        Ok(Verifier { params, vk, vk_hash })
    }

    /// Proves the batch of `w` with `transcript`; all prover randomness
    /// comes from `rng`.
    pub fn prove_batch(
        &self,
        w: &BatchWitness,
        transcript: TranscriptKind,
        rng: impl RngCore,
    ) -> Result<(BatchProof, ProveTimings), ProverError> {
        let Keyed { params, keys } = self.batch_keys(&w.shape)?;
        batch::prove(self.hal.as_ref(), &params, &keys, w, transcript, rng)
    }

    /// Whether `proof` is a valid proof of a batch at `shape`: made for this
    /// prover's verifying key and accepted by halo2-axiom's verifier.
    pub fn verify_batch(&self, shape: &Shape, proof: &BatchProof) -> Result<bool, ProverError> {
        let v = self.batch_verifier(shape)?;
        Ok(batch::verify(&v.params, &v.vk, &v.vk_hash, proof))
    }

    /// The proof file of `proof`, batch `seq` of the chain `chain_id` at `shape`.
    pub fn proof_file(
        &self,
        chain_id: &str,
        seq: u64,
        shape: &Shape,
        proof: &BatchProof,
    ) -> Result<ProofFile, ProverError> {
        Ok(ProofFile::new(chain_id, seq, shape, self.layout(shape)?.k as u32, proof))
    }

    /// The verifier of the proofs an epoch `spec` of `cfg` aggregates: the
    /// batch circuit's for level 1, the epoch circuit's of the level below
    /// (same N and k) otherwise.
    fn inner_verifier(&self, cfg: &ChainConfig, spec: &EpochSpec) -> Result<Verifier, ProverError> {
        spec.validate()?;
        match spec.level {
            1 => self.batch_verifier(&cfg.shape),
            _ => self.epoch_verifier(cfg, &spec.below()),
        }
    }

    /// The keys of the epoch circuit `spec` of the chain `cfg` (generated
    /// on first use, with those of the levels below).
    pub fn epoch_keys(&self, cfg: &ChainConfig, spec: &EpochSpec) -> Result<Keyed<EpochKeys>, ProverError> {
        self.epoch_keys_over(cfg, spec, &self.inner_verifier(cfg, spec)?)
    }

    /// The keys of the epoch circuit `spec` of `cfg` over proofs that
    /// `inner` verifies.
    fn epoch_keys_over(
        &self,
        cfg: &ChainConfig,
        spec: &EpochSpec,
        inner: &Verifier,
    ) -> Result<Keyed<EpochKeys>, ProverError> {
        let params = self.params(spec.circuit_k())?;
        let keys = self.setup.keys.epoch_keys(&params, &inner.params, &inner.vk, spec, cfg.tag())?;
        Ok(Keyed { params, keys })
    }

    /// The verifying key alone of the epoch circuit `spec` of `cfg` (what
    /// an EVM verifier needs).
    pub fn epoch_verifier(&self, cfg: &ChainConfig, spec: &EpochSpec) -> Result<Verifier, ProverError> {
        let inner = self.inner_verifier(cfg, spec)?;
        let params = self.params(spec.circuit_k())?;
        let vk = self.setup.keys.epoch_verifying_key(&params, &inner.params, &inner.vk, spec, cfg.tag())?;
        Ok(Verifier { params, vk_hash: vk_hash(&vk), vk })
    }

    /// The verifying-key file of the batch circuit at `shape`
    /// ([`crate::vkfile`]; the key is generated if it is not cached).
    pub fn batch_vk_file(&self, shape: &Shape) -> Result<VerifyingKeyFile, ProverError> {
        let v = self.batch_verifier(shape)?;
        let circuit = CircuitOf::Batch { shape: shape.clone(), layout: self.layout(shape)? };
        VerifyingKeyFile::new(&v, circuit, PUBLIC_LEN)
    }

    /// The verifying-key file of the epoch circuit `spec` of `cfg`, if its
    /// keys were made and this prover holds the parameters of its size (it
    /// made or loaded them for an epoch since it started). Nothing is
    /// generated or loaded: an epoch key takes minutes, its SRS seconds.
    pub fn cached_epoch_vk_file(
        &self,
        cfg: &ChainConfig,
        spec: &EpochSpec,
    ) -> Result<Option<VerifyingKeyFile>, ProverError> {
        let loaded = self.setup.params.lock().unwrap_or_else(|p| p.into_inner()).get(&spec.circuit_k()).cloned();
        let Some(params) = loaded else { return Ok(None) };
        let inner = self.inner_verifier(cfg, spec)?;
        let Some((vk, config)) = self.setup.keys.cached_epoch_verifying_key(&params, &inner.vk, spec, cfg.tag()) else {
            return Ok(None);
        };
        let v = Verifier { params, vk_hash: vk_hash(&vk), vk };
        VerifyingKeyFile::new(&v, CircuitOf::Epoch { spec: *spec, config }, EPOCH_INSTANCES).map(Some)
    }

    /// Proves the epoch `spec` of `cfg` over `inner` (exactly N consecutive
    /// Poseidon-transcript proofs of the level below).
    pub fn prove_epoch(
        &self,
        cfg: &ChainConfig,
        spec: &EpochSpec,
        inner: &[impl Aggregated],
        transcript: TranscriptKind,
        rng: impl RngCore,
    ) -> Result<EpochProof, ProverError> {
        let below = self.inner_verifier(cfg, spec)?;
        let Keyed { params, keys } = self.epoch_keys_over(cfg, spec, &below)?;
        epoch::prove_epoch(self.hal.as_ref(), &params, &keys, (&below.params, &below.vk), inner, transcript, rng)
    }

    /// Whether `proof` is a valid epoch proof of `spec` for `cfg`: made for
    /// its verifying key, accepted by halo2-axiom's verifier, and its
    /// accumulator's deferred pairing check holds.
    pub fn verify_epoch(&self, cfg: &ChainConfig, spec: &EpochSpec, proof: &EpochProof) -> Result<bool, ProverError> {
        let v = self.epoch_verifier(cfg, spec)?;
        Ok(proof.vk_hash == v.vk_hash
            && epoch::verify_epoch(&v.params, &v.vk, &proof.instances, &proof.proof, proof.transcript))
    }
}
