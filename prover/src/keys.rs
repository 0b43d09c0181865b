//! The key cache: proving and verifying keys of batch circuits (per shape)
//! and of epoch circuits (per chain and spec), on disk and in memory.
//!
//! A shape has one layout (`k`, columns, lookup bits), and per parameter set
//! one proving key and one verifying key. They are cached on disk, addressed
//! by everything they are made from, so a cached key is either the key a
//! fresh keygen would make or it is not found:
//!
//! - batch circuits: `batch-v<version>-<circuit digest>-<shape id>/` holds
//!   the layout, and `srs-<params id>/` inside it the keys and break points;
//! - epoch circuits: `epoch-v<version>-<epoch digest>-<inner vk hash>-<chain
//!   tag>-<spec>-srs-<params id>/` the configuration, keys and break points.
//!
//! The digests hash the circuits' source code and the Cargo.lock entries
//! the circuits are built from (build time, [`circuit::CIRCUIT_DIGEST`] and
//! [`crate::epoch::epoch_digest`]); the params id hashes the SRS
//! ([`crate::srs::params_id`]). Generating a key holds a lock file beside its
//! directory, so processes sharing a cache generate each key once. Keys are
//! also kept in memory for the life of the process.

use std::{
    collections::HashMap,
    fs,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use halo2_base::gates::circuit::BaseCircuitParams;
use halo2_proofs::{
    halo2curves::bn256::{Bn256, Fr, G1Affine},
    plonk::{ProvingKey, VerifyingKey},
    poly::kzg::commitment::ParamsKZG,
    SerdeFormat,
};
use sha2::{Digest, Sha256};
use snark_verifier_sdk::halo2::aggregation::{AggregationCircuit, AggregationConfigParams};
use statesync_circuits::{
    circuit::{self, BatchCircuit},
    config::Shape,
};

use crate::{
    batch::{keygen, keygen_verifying_key, ShapeKeys},
    cache::{locked, write_atomic, write_atomic_with},
    epoch::{epoch_digest, epoch_keygen, epoch_vk, EpochKeys, EpochSpec, EPOCH_VERSION},
    snark::vk_hash,
    srs::params_id,
    ProverError,
};

/// Keys of a shape found in the cache.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CachedKeys {
    /// Id of the SRS they were made with ([`crate::srs::params_id`]).
    pub srs: String,
    /// Hex SHA-256 of the verifying key, when `vk.bin` is there.
    pub vk_hash: Option<String>,
    /// Size of the proving key file, when complete.
    pub pk_bytes: Option<u64>,
}

/// Layouts and keys per shape (and per epoch circuit), cached on disk under
/// `dir` and in memory.
#[derive(Debug)]
pub struct KeyStore {
    dir: PathBuf,
    keys: Mutex<HashMap<String, Arc<ShapeKeys>>>,
    epochs: Mutex<HashMap<String, Arc<EpochKeys>>>,
}

impl KeyStore {
    /// A store rooted at `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        KeyStore { dir: dir.into(), keys: Mutex::new(HashMap::new()), epochs: Mutex::new(HashMap::new()) }
    }

    /// The store of a cache directory: `cache_dir/keys`, beside the SRS
    /// cache `cache_dir/srs` ([`crate::srs::SrsSource::new`]).
    pub fn in_cache_dir(cache_dir: &Path) -> Self {
        KeyStore::new(cache_dir.join("keys"))
    }

    fn shape_dir(&self, shape: &Shape) -> PathBuf {
        self.dir.join(format!("batch-v{}-{}-{}", circuit::CIRCUIT_VERSION, &circuit::CIRCUIT_DIGEST[..16], shape.id()))
    }

    /// Where the keys of `shape` made with `params` live.
    fn keys_dir(&self, params: &ParamsKZG<Bn256>, shape: &Shape) -> PathBuf {
        self.shape_dir(shape).join(format!("srs-{}", params_id(params)))
    }

    /// The keys of `shape` cached on disk, one entry per SRS they were made
    /// with (nothing is generated).
    pub fn cached(&self, shape: &Shape) -> Vec<CachedKeys> {
        let Ok(entries) = fs::read_dir(self.shape_dir(shape)) else { return vec![] };
        let mut out: Vec<CachedKeys> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let srs = name.strip_prefix("srs-")?.to_string();
                let dir = e.path();
                let pk_bytes = fs::metadata(dir.join("pk.bin")).ok().map(|m| m.len());
                let vk_hash = fs::read(dir.join("vk.bin")).ok().map(|b| hex::encode(Sha256::digest(b)));
                Some(CachedKeys { srs, vk_hash, pk_bytes })
            })
            .collect();
        out.sort_by(|a, b| a.srs.cmp(&b.srs));
        out
    }

    /// The layout of `shape` (computed once, then read from disk).
    pub fn layout(&self, shape: &Shape) -> Result<BaseCircuitParams, ProverError> {
        let path = self.shape_dir(shape).join("layout.json");
        if let Some(l) = fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok()) {
            return Ok(l);
        }
        let layout = circuit::layout(shape)?;
        write_atomic(&path, &serde_json::to_vec_pretty(&layout).expect("layouts serialize"))?;
        Ok(layout)
    }

    /// The keys of `shape`: from memory, else from disk, else generated (and
    /// cached on disk).
    pub fn keys(&self, params: &ParamsKZG<Bn256>, shape: &Shape) -> Result<Arc<ShapeKeys>, ProverError> {
        let dir = self.keys_dir(params, shape);
        let id = dir.to_string_lossy().into_owned();
        let mut map = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = map.get(&id) {
            return Ok(k.clone());
        }
        let layout = self.layout(shape)?;
        let keys = locked(&dir, || {
            if let Some(keys) = self.read_keys(&dir, shape, &layout) {
                return Ok(keys);
            }
            let keys = keygen(params, shape, &layout)?;
            write_atomic(&dir.join("vk.bin"), &keys.pk.get_vk().to_bytes(SerdeFormat::RawBytes))?;
            write_atomic(&dir.join("break_points.json"), &serde_json::to_vec(&keys.break_points).expect("serializes"))?;
            // last: its presence means the entry is complete
            write_atomic_with(&dir.join("pk.bin"), |w| keys.pk.write(w, SerdeFormat::RawBytes))?;
            Ok(keys)
        })?;
        let keys = Arc::new(keys);
        map.insert(id, keys.clone());
        Ok(keys)
    }

    /// Cached keys, if all files are present and readable.
    fn read_keys(&self, dir: &Path, shape: &Shape, layout: &BaseCircuitParams) -> Option<ShapeKeys> {
        let break_points = serde_json::from_slice(&fs::read(dir.join("break_points.json")).ok()?).ok()?;
        let file = fs::File::open(dir.join("pk.bin")).ok()?;
        let pk = ProvingKey::<G1Affine>::read::<_, BatchCircuit>(
            &mut std::io::BufReader::new(file),
            SerdeFormat::RawBytes,
            layout.clone(),
        )
        .map_err(|e| tracing::warn!(dir = %dir.display(), "cached proving key unreadable, regenerating: {e}"))
        .ok()?;
        Some(ShapeKeys {
            shape: shape.clone(),
            layout: layout.clone(),
            break_points,
            vk_hash: vk_hash(pk.get_vk()),
            pk,
        })
    }

    /// The verifying key of `shape` and its hash: from memory when the
    /// keys are loaded, else from disk when cached, otherwise generated (and
    /// cached).
    pub fn verifying_key(
        &self,
        params: &ParamsKZG<Bn256>,
        shape: &Shape,
    ) -> Result<(VerifyingKey<G1Affine>, String), ProverError> {
        let dir = self.keys_dir(params, shape);
        if let Some(k) = self.keys.lock().unwrap_or_else(|p| p.into_inner()).get(&*dir.to_string_lossy()) {
            return Ok((k.pk.get_vk().clone(), k.vk_hash.clone()));
        }
        let layout = self.layout(shape)?;
        let path = dir.join("vk.bin");
        if let Ok(bytes) = fs::read(&path) {
            if let Ok(vk) =
                VerifyingKey::<G1Affine>::from_bytes::<BatchCircuit>(&bytes, SerdeFormat::RawBytes, layout.clone())
            {
                let h = vk_hash(&vk);
                return Ok((vk, h));
            }
        }
        let vk = keygen_verifying_key(params, shape, &layout)?;
        write_atomic(&path, &vk.to_bytes(SerdeFormat::RawBytes))?;
        let h = vk_hash(&vk);
        Ok((vk, h))
    }
}

impl KeyStore {
    /// Where the keys of the epoch circuit `spec` for the chain `tag` over
    /// proofs of `inner_vk`, made with `params`, live.
    fn epoch_dir(
        &self,
        params: &ParamsKZG<Bn256>,
        inner_vk: &VerifyingKey<G1Affine>,
        spec: &EpochSpec,
        tag: Fr,
    ) -> PathBuf {
        self.dir.join(format!(
            "epoch-v{EPOCH_VERSION}-{}-{}-{}-{spec}-srs-{}",
            &epoch_digest()[..16],
            &vk_hash(inner_vk)[..16],
            &statesync_circuits::witness::fr_hex::to_hex(&tag)[2..18],
            params_id(params)
        ))
    }

    /// The keys of the epoch circuit `spec` for the chain `tag` over proofs
    /// of `inner_vk` (whose params are `inner_params`): from memory, else
    /// from disk, else generated and cached.
    pub fn epoch_keys(
        &self,
        params: &ParamsKZG<Bn256>,
        inner_params: &ParamsKZG<Bn256>,
        inner_vk: &VerifyingKey<G1Affine>,
        spec: &EpochSpec,
        tag: Fr,
    ) -> Result<Arc<EpochKeys>, ProverError> {
        let dir = self.epoch_dir(params, inner_vk, spec, tag);
        let id = dir.to_string_lossy().into_owned();
        let mut map = self.epochs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = map.get(&id) {
            return Ok(k.clone());
        }
        let keys = locked(&dir, || {
            if let Some(keys) = read_epoch_keys(&dir, spec, tag) {
                return Ok(keys);
            }
            let keys = epoch_keygen(params, inner_params, inner_vk, spec, tag)?;
            write_atomic(&dir.join("config.json"), &serde_json::to_vec(&keys.config).expect("serializes"))?;
            write_atomic(&dir.join("break_points.json"), &serde_json::to_vec(&keys.break_points).expect("serializes"))?;
            write_atomic(&dir.join("vk.bin"), &keys.pk.get_vk().to_bytes(SerdeFormat::RawBytes))?;
            // last: its presence means the entry is complete
            write_atomic_with(&dir.join("pk.bin"), |w| keys.pk.write(w, SerdeFormat::RawBytes))?;
            Ok(keys)
        })?;
        let keys = Arc::new(keys);
        map.insert(id, keys.clone());
        Ok(keys)
    }

    /// The verifying key alone of the epoch circuit (what an EVM verifier
    /// needs): from memory or disk when the keys were made, otherwise
    /// generated (no proving key) and cached.
    pub fn epoch_verifying_key(
        &self,
        params: &ParamsKZG<Bn256>,
        inner_params: &ParamsKZG<Bn256>,
        inner_vk: &VerifyingKey<G1Affine>,
        spec: &EpochSpec,
        tag: Fr,
    ) -> Result<VerifyingKey<G1Affine>, ProverError> {
        let dir = self.epoch_dir(params, inner_vk, spec, tag);
        if let Some(k) = self.epochs.lock().unwrap_or_else(|p| p.into_inner()).get(&*dir.to_string_lossy()) {
            return Ok(k.pk.get_vk().clone());
        }
        locked(&dir, || {
            if let Some(vk) = read_epoch_vk(&dir) {
                return Ok(vk);
            }
            let (vk, config) = epoch_vk(params, inner_params, inner_vk, spec, tag)?;
            write_atomic(&dir.join("config.json"), &serde_json::to_vec(&config).expect("serializes"))?;
            write_atomic(&dir.join("vk.bin"), &vk.to_bytes(SerdeFormat::RawBytes))?;
            Ok(vk)
        })
    }
}

impl KeyStore {
    /// The verifying key and configuration of the epoch circuit `spec` for
    /// the chain `tag` over proofs of `inner_vk`, if they were made (in
    /// memory or on disk); nothing is generated.
    pub fn cached_epoch_verifying_key(
        &self,
        params: &ParamsKZG<Bn256>,
        inner_vk: &VerifyingKey<G1Affine>,
        spec: &EpochSpec,
        tag: Fr,
    ) -> Option<(VerifyingKey<G1Affine>, AggregationConfigParams)> {
        let dir = self.epoch_dir(params, inner_vk, spec, tag);
        if let Some(k) = self.epochs.lock().unwrap_or_else(|p| p.into_inner()).get(&*dir.to_string_lossy()) {
            return Some((k.pk.get_vk().clone(), k.config));
        }
        Some((read_epoch_vk(&dir)?, read_epoch_config(&dir)?))
    }
}

fn read_epoch_config(dir: &Path) -> Option<AggregationConfigParams> {
    serde_json::from_slice(&fs::read(dir.join("config.json")).ok()?).ok()
}

fn read_epoch_vk(dir: &Path) -> Option<VerifyingKey<G1Affine>> {
    let config = read_epoch_config(dir)?;
    let bytes = fs::read(dir.join("vk.bin")).ok()?;
    VerifyingKey::<G1Affine>::from_bytes::<AggregationCircuit>(&bytes, SerdeFormat::RawBytes, config)
        .map_err(|e| tracing::warn!(dir = %dir.display(), "cached epoch verifying key unreadable, regenerating: {e}"))
        .ok()
}

fn read_epoch_keys(dir: &Path, spec: &EpochSpec, tag: Fr) -> Option<EpochKeys> {
    let config = read_epoch_config(dir)?;
    let break_points = serde_json::from_slice(&fs::read(dir.join("break_points.json")).ok()?).ok()?;
    let file = fs::File::open(dir.join("pk.bin")).ok()?;
    let pk = ProvingKey::<G1Affine>::read::<_, AggregationCircuit>(
        &mut std::io::BufReader::new(file),
        SerdeFormat::RawBytes,
        config,
    )
    .map_err(|e| tracing::warn!(dir = %dir.display(), "cached epoch proving key unreadable, regenerating: {e}"))
    .ok()?;
    Some(EpochKeys { spec: *spec, tag, config, break_points, vk_hash: vk_hash(pk.get_vk()), pk })
}
