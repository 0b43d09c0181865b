//! Proving and verifying keys per circuit shape.
//!
//! A shape has one layout (`k`, columns, lookup bits), one proving key and one
//! verifying key. All of them and the break points are cached on disk under
//! `keys/v<circuit version>-<shape-id>/` (the version changes whenever the
//! constraints do, so a cache never outlives its circuit), and the keys are
//! kept in memory for the life of the process.

use std::{
    collections::HashMap,
    fs,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use halo2_base::gates::circuit::builder::BaseCircuitBuilder;
use halo2_base::gates::{circuit::BaseCircuitParams, flex_gate::MultiPhaseThreadBreakPoints};
use halo2_proofs::{
    halo2curves::bn256::{Bn256, Fr, G1Affine},
    plonk::{keygen_pk, keygen_vk, ProvingKey, VerifyingKey},
    poly::kzg::commitment::ParamsKZG,
    SerdeFormat,
};
use sha2::{Digest, Sha256};
use statesync_circuits::{circuit, config::Shape, engine::padding_witness};

use snark_verifier_sdk::halo2::aggregation::{AggregationCircuit, AggregationConfigParams};

use crate::{
    epoch::{epoch_keygen, EpochKeys, EpochSpec, EPOCH_VERSION},
    ProverError,
};

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

/// Hex SHA-256 of a verifying key's raw bytes.
pub fn vk_hash(vk: &VerifyingKey<G1Affine>) -> String {
    hex::encode(Sha256::digest(vk.to_bytes(SerdeFormat::RawBytes)))
}

/// Generates the keys of `shape` at `layout` from the padding witness.
pub fn keygen(params: &ParamsKZG<Bn256>, shape: &Shape, layout: &BaseCircuitParams) -> Result<ShapeKeys, ProverError> {
    let w = padding_witness(shape);
    let builder = circuit::builder_for(layout, &w, false)?;
    let vk = keygen_vk(params, &builder).map_err(|e| ProverError::Halo2(format!("keygen_vk: {e:?}")))?;
    let pk = keygen_pk(params, vk, &builder).map_err(|e| ProverError::Halo2(format!("keygen_pk: {e:?}")))?;
    Ok(ShapeKeys {
        shape: shape.clone(),
        layout: layout.clone(),
        break_points: builder.break_points(),
        vk_hash: vk_hash(pk.get_vk()),
        pk,
    })
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

    fn shape_dir(&self, shape: &Shape) -> PathBuf {
        self.dir.join(format!("v{}-{}", circuit::CIRCUIT_VERSION, shape.id()))
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
        let mut map = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = map.get(&shape.id()) {
            return Ok(k.clone());
        }
        let layout = self.layout(shape)?;
        let dir = self.shape_dir(shape);
        let keys = match self.read_keys(shape, &layout) {
            Some(keys) => keys,
            None => {
                let keys = keygen(params, shape, &layout)?;
                let mut pk_bytes = vec![];
                keys.pk
                    .write(&mut pk_bytes, SerdeFormat::RawBytes)
                    .map_err(ProverError::io("serializing the proving key"))?;
                write_atomic(&dir.join("pk.bin"), &pk_bytes)?;
                write_atomic(&dir.join("vk.bin"), &keys.pk.get_vk().to_bytes(SerdeFormat::RawBytes))?;
                write_atomic(
                    &dir.join("break_points.json"),
                    &serde_json::to_vec(&keys.break_points).expect("serializes"),
                )?;
                keys
            }
        };
        let keys = Arc::new(keys);
        map.insert(shape.id(), keys.clone());
        Ok(keys)
    }

    /// Cached keys, if all files are present and readable.
    fn read_keys(&self, shape: &Shape, layout: &BaseCircuitParams) -> Option<ShapeKeys> {
        let dir = self.shape_dir(shape);
        let break_points = serde_json::from_slice(&fs::read(dir.join("break_points.json")).ok()?).ok()?;
        let file = fs::File::open(dir.join("pk.bin")).ok()?;
        let pk = ProvingKey::<G1Affine>::read::<_, BaseCircuitBuilder<Fr>>(
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

    /// The verifying key of `shape` and its hash: from disk when cached,
    /// otherwise generated (and cached).
    pub fn verifying_key(
        &self,
        params: &ParamsKZG<Bn256>,
        shape: &Shape,
    ) -> Result<(VerifyingKey<G1Affine>, String), ProverError> {
        let layout = self.layout(shape)?;
        let path = self.shape_dir(shape).join("vk.bin");
        if let Ok(bytes) = fs::read(&path) {
            if let Ok(vk) = VerifyingKey::<G1Affine>::from_bytes::<BaseCircuitBuilder<Fr>>(
                &bytes,
                SerdeFormat::RawBytes,
                layout.clone(),
            ) {
                let h = vk_hash(&vk);
                return Ok((vk, h));
            }
        }
        let builder = circuit::builder_for(&layout, &padding_witness(shape), false)?;
        let vk = keygen_vk(params, &builder).map_err(|e| ProverError::Halo2(format!("keygen_vk: {e:?}")))?;
        write_atomic(&path, &vk.to_bytes(SerdeFormat::RawBytes))?;
        let h = vk_hash(&vk);
        Ok((vk, h))
    }
}

impl KeyStore {
    /// The keys of the epoch circuit `spec` for the chain `tag` over proofs
    /// of `inner_vk` (whose params are `inner_params`): from memory, else
    /// from disk, else generated and cached under
    /// `epoch-v<version>-<inner vk hash>-<tag>-<spec>/`.
    pub fn epoch_keys(
        &self,
        params: &ParamsKZG<Bn256>,
        inner_params: &ParamsKZG<Bn256>,
        inner_vk: &VerifyingKey<G1Affine>,
        spec: &EpochSpec,
        tag: Fr,
    ) -> Result<Arc<EpochKeys>, ProverError> {
        let name = format!(
            "epoch-v{EPOCH_VERSION}-{}-{}-{spec}",
            &vk_hash(inner_vk)[..16],
            &statesync_circuits::witness::fr_hex::to_hex(&tag)[2..18]
        );
        let mut map = self.epochs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = map.get(&name) {
            return Ok(k.clone());
        }
        let dir = self.dir.join(&name);
        let keys = match read_epoch_keys(&dir, spec, tag) {
            Some(keys) => keys,
            None => {
                let keys = epoch_keygen(params, inner_params, inner_vk, spec, tag)?;
                let mut pk_bytes = vec![];
                keys.pk
                    .write(&mut pk_bytes, SerdeFormat::RawBytes)
                    .map_err(ProverError::io("serializing the epoch proving key"))?;
                write_atomic(&dir.join("config.json"), &serde_json::to_vec(&keys.config).expect("serializes"))?;
                write_atomic(
                    &dir.join("break_points.json"),
                    &serde_json::to_vec(&keys.break_points).expect("serializes"),
                )?;
                write_atomic(&dir.join("pk.bin"), &pk_bytes)?;
                keys
            }
        };
        let keys = Arc::new(keys);
        map.insert(name, keys.clone());
        Ok(keys)
    }
}

fn read_epoch_keys(dir: &Path, spec: &EpochSpec, tag: Fr) -> Option<EpochKeys> {
    let config: AggregationConfigParams = serde_json::from_slice(&fs::read(dir.join("config.json")).ok()?).ok()?;
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

/// A temporary sibling of `path`, unique to this process and call, so that
/// processes sharing a data directory never write the same temporary file.
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}-{n}", std::process::id()));
    path.with_file_name(name)
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ProverError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(ProverError::io(format!("creating {}", parent.display())))?;
    }
    let tmp = tmp_path(path);
    fs::write(&tmp, bytes).map_err(ProverError::io(format!("writing {}", tmp.display())))?;
    fs::rename(&tmp, path).map_err(ProverError::io(format!("renaming {}", tmp.display())))
}
