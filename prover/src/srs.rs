//! KZG parameters (the structured reference string).
//!
//! Production loads ceremony parameters from a file (halo2's `ParamsKZG`
//! format, e.g. converted from a powers-of-tau ceremony) and downsizes them to
//! the `k` a circuit needs. Development generates parameters from a fixed,
//! public seed: anyone can forge proofs against them. They are labelled
//! `INSECURE` in their file name and every use logs a warning.

use std::{
    collections::HashMap,
    fs,
    io::BufReader,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, OnceLock},
};

use halo2_proofs::{
    arithmetic::Field,
    halo2curves::{
        bn256::{Bn256, Fr, G1Affine, G2Affine, G1},
        ff::{BatchInvert, PrimeField},
        group::{prime::PrimeCurveAffine, Curve, Group},
        serde::SerdeObject,
    },
    poly::{
        commitment::{Params as _, ParamsProver},
        kzg::commitment::ParamsKZG,
    },
    SerdeFormat,
};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;

use sha2::{Digest, Sha256};

use crate::{
    cache::{locked, write_atomic_with},
    ProverError,
};

/// KZG parameters over BN254.
pub type Params = ParamsKZG<Bn256>;

/// Public seed of the development SRS. Its toxic waste is known to everyone.
const DEV_SEED: u64 = 0x5747_4553_594e_4353;

/// Where parameters come from.
#[derive(Debug, Clone)]
pub enum SrsSource {
    /// Generated from a public seed and cached in `cache_dir`. INSECURE.
    Dev {
        /// Cache directory.
        cache_dir: PathBuf,
    },
    /// A ceremony file.
    Ceremony {
        /// The file.
        path: PathBuf,
    },
}

impl SrsSource {
    /// The ceremony file `ceremony` if given, else the development SRS cached
    /// in `cache_dir/srs`.
    pub fn new(ceremony: Option<PathBuf>, cache_dir: &Path) -> Self {
        match ceremony {
            Some(path) => SrsSource::Ceremony { path },
            None => SrsSource::Dev { cache_dir: cache_dir.join("srs") },
        }
    }

    /// Parameters for circuits of size `2^k`.
    pub fn params(&self, k: u32) -> Result<ParamsKZG<Bn256>, ProverError> {
        match self {
            SrsSource::Dev { cache_dir } => dev_params(cache_dir, k),
            SrsSource::Ceremony { path } => {
                let mut p = read_params(path)?;
                if p.k() < k {
                    return Err(ProverError::SrsTooSmall { have: p.k(), need: k });
                }
                if p.k() > k {
                    p.downsize(k);
                }
                Ok(p)
            }
        }
    }

    /// Whether these parameters are insecure development parameters.
    pub fn is_insecure(&self) -> bool {
        matches!(self, SrsSource::Dev { .. })
    }
}

fn read_params(path: &Path) -> Result<ParamsKZG<Bn256>, ProverError> {
    let f = fs::File::open(path).map_err(ProverError::io(format!("opening params {}", path.display())))?;
    ParamsKZG::<Bn256>::read(&mut BufReader::new(f))
        .map_err(ProverError::io(format!("reading params {}", path.display())))
}

/// Identifies a parameter set: k and the raw bytes of `[s]G`.
type SrsId = (u32, Vec<u8>);

/// The Lagrange-basis SRS points of `params` (`[L_i(s)]G` of the 2^k
/// domain). halo2-axiom keeps them private: they are read once from the
/// parameters' raw serialization and cached per parameter set.
pub fn lagrange_bases(params: &ParamsKZG<Bn256>) -> Result<Arc<Vec<G1Affine>>, ProverError> {
    static CACHE: OnceLock<Mutex<HashMap<SrsId, Arc<Vec<G1Affine>>>>> = OnceLock::new();
    let g = params.get_g();
    let id: SrsId = (params.k(), g.get(1).map(|p| p.to_raw_bytes()).unwrap_or_default());
    let cache = CACHE.get_or_init(Default::default);
    if let Some(bases) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&id) {
        return Ok(bases.clone());
    }
    let mut raw = Vec::new();
    params.write_custom(&mut raw, SerdeFormat::RawBytesUnchecked).map_err(ProverError::io("serializing params"))?;
    // Layout: k (4 bytes), n points of g, n points of g_lagrange, g2, s_g2.
    let point = g.first().map(|p| p.to_raw_bytes().len()).unwrap_or(64);
    let n = g.len();
    let start = 4 + n * point;
    let bytes = raw
        .get(start..start + n * point)
        .ok_or_else(|| ProverError::Hal("params serialization is shorter than expected".into()))?;
    let bases: Vec<G1Affine> = bytes.chunks_exact(point).map(G1Affine::from_raw_bytes_unchecked).collect();
    let bases = Arc::new(bases);
    cache.lock().unwrap_or_else(|e| e.into_inner()).insert(id, bases.clone());
    Ok(bases)
}

/// A short identifier of a parameter set (hex, 16 digits): SHA-256 of `k`,
/// `[s]G` and `[s]G2`. Key caches are addressed by it, so keys made with
/// other parameters (the development SRS, another ceremony) are never used.
pub fn params_id(params: &ParamsKZG<Bn256>) -> String {
    let mut h = Sha256::new();
    h.update(params.k().to_le_bytes());
    if let Some(g1) = params.get_g().get(1) {
        h.update(g1.to_raw_bytes());
    }
    h.update(params.s_g2().to_raw_bytes());
    hex::encode(&h.finalize()[..8])
}

/// The cache file of the development SRS of size `k`.
pub fn dev_params_path(cache_dir: &Path, k: u32) -> PathBuf {
    cache_dir.join(format!("INSECURE-dev-srs-bn254-k{k}.params"))
}

fn dev_params(cache_dir: &Path, k: u32) -> Result<ParamsKZG<Bn256>, ProverError> {
    tracing::warn!(
        k,
        "using the INSECURE development SRS (public seed): never use it in production, pass ceremony params instead"
    );
    let path = dev_params_path(cache_dir, k);
    let read_cached = || {
        let p = read_params(&path).ok().filter(|p| p.k() == k);
        if p.is_none() && path.exists() {
            tracing::warn!(path = %path.display(), "cached development SRS unreadable, regenerating");
        }
        p
    };
    if let Some(p) = read_cached() {
        return Ok(p);
    }
    locked(&path, || {
        if let Some(p) = read_cached() {
            return Ok(p);
        }
        let params = dev_setup(k);
        write_atomic_with(&path, |w| params.write(w))?;
        Ok(params)
    })
}

/// `ParamsKZG::setup(k, ChaCha20Rng::seed_from_u64(DEV_SEED))`, the same
/// parameters bit for bit, about ten times faster: halo2-axiom computes every
/// `[s^i]G` and `[L_i(s)]G` by a full double-and-add scalar multiplication
/// (minutes at k = 24 on sixteen threads); here the scalars are computed
/// first (the Lagrange ones with one batch inversion per chunk) and
/// multiplied by the fixed base through a table of its byte multiples
/// (`FixedBase`: 32 mixed additions per point).
fn dev_setup(k: u32) -> Params {
    assert!(k <= Fr::S, "the BN254 scalar field has roots of unity up to 2^{}", Fr::S);
    let n = 1usize << k;
    let s = Fr::random(ChaCha20Rng::seed_from_u64(DEV_SEED));
    let base = FixedBase::new(G1Affine::generator());
    // s^i, then ω^i (ω of order n) for the Lagrange bases
    let powers = |x: Fr| {
        let mut out = vec![Fr::ZERO; n];
        out.par_chunks_mut(CHUNK).enumerate().for_each(|(c, chunk)| {
            let mut p = x.pow_vartime([(c * CHUNK) as u64]);
            for v in chunk {
                *v = p;
                p *= x;
            }
        });
        out
    };
    let g = base.mul_all(&powers(s));
    // L_i(s) = (s^n - 1)/n · ω^i/(s - ω^i)
    let mut omega = Fr::ROOT_OF_UNITY;
    for _ in k..Fr::S {
        omega = omega.square();
    }
    let mut lagrange = powers(omega);
    let factor = (s.pow_vartime([n as u64]) - Fr::ONE) * Fr::from(n as u64).invert().expect("n is not 0 in Fr");
    lagrange.par_chunks_mut(CHUNK).for_each(|chunk| {
        let mut denominators: Vec<Fr> = chunk.iter().map(|w| s - w).collect();
        denominators.iter_mut().batch_invert();
        for (w, d) in chunk.iter_mut().zip(denominators) {
            *w = factor * *w * d;
        }
    });
    let g_lagrange = base.mul_all(&lagrange);
    let g2 = G2Affine::generator();
    params_from_parts(k, g, Some(g_lagrange), g2, (g2 * s).into())
}

/// Scalars per parallel chunk in [`dev_setup`].
const CHUNK: usize = 1 << 12;

/// Multiples of one fixed point: `table[j][d] = [d·256^j]P` for the 32 bytes
/// of a scalar, so `[x]P` is the sum of one entry per non-zero byte of `x`.
struct FixedBase {
    table: Vec<[G1Affine; 256]>,
}

impl FixedBase {
    fn new(p: G1Affine) -> Self {
        let mut step = p.to_curve();
        let table = (0..32)
            .map(|_| {
                let mut row = [G1::identity(); 256];
                for d in 1..256 {
                    row[d] = row[d - 1] + step;
                }
                step = row[255] + step;
                let mut affine = [G1Affine::identity(); 256];
                G1::batch_normalize(&row, &mut affine);
                affine
            })
            .collect();
        FixedBase { table }
    }

    /// `[x]P` for every `x`, in affine form.
    fn mul_all(&self, scalars: &[Fr]) -> Vec<G1Affine> {
        let mut out = vec![G1Affine::identity(); scalars.len()];
        out.par_chunks_mut(CHUNK).zip(scalars.par_chunks(CHUNK)).for_each(|(out, scalars)| {
            let projective: Vec<G1> = scalars
                .iter()
                .map(|x| {
                    let bytes = x.to_repr();
                    let mut acc = G1::identity();
                    for (row, &b) in self.table.iter().zip(bytes.as_ref()) {
                        if b != 0 {
                            acc += row[b as usize];
                        }
                    }
                    acc
                })
                .collect();
            G1::batch_normalize(&projective, out);
        });
        out
    }
}

/// KZG parameters from their parts (halo2-axiom's `from_parts` is a method:
/// any parameters serve as its receiver); without Lagrange bases, halo2-axiom
/// computes them from `g`.
pub fn params_from_parts(
    k: u32,
    g: Vec<G1Affine>,
    g_lagrange: Option<Vec<G1Affine>>,
    g2: G2Affine,
    s_g2: G2Affine,
) -> Params {
    static RECEIVER: OnceLock<Params> = OnceLock::new();
    RECEIVER.get_or_init(|| ParamsKZG::setup(0, ChaCha20Rng::seed_from_u64(0))).from_parts(k, g, g_lagrange, g2, s_g2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use halo2_proofs::arithmetic::g_to_lagrange;

    #[test]
    fn dev_params_are_cached_and_ceremony_files_downsize() {
        let dir = tempfile::tempdir().unwrap();
        let src = SrsSource::Dev { cache_dir: dir.path().into() };
        let a = src.params(5).unwrap();
        assert!(dev_params_path(dir.path(), 5).exists());
        let b = src.params(5).unwrap();
        assert_eq!(a.get_g(), b.get_g(), "the cache returns the same parameters");
        let ceremony = SrsSource::Ceremony { path: dev_params_path(dir.path(), 5) };
        assert_eq!(ceremony.params(4).unwrap().k(), 4);
        assert!(matches!(ceremony.params(6), Err(ProverError::SrsTooSmall { have: 5, need: 6 })));
        assert!(!ceremony.is_insecure() && src.is_insecure());
        // the id names the parameter set: the same toxic waste and k, the same id
        assert_eq!(params_id(&a), params_id(&b));
        assert_eq!(params_id(&ceremony.params(4).unwrap()), params_id(&src.params(4).unwrap()), "downsized = dev k4");
        assert_ne!(params_id(&a), params_id(&src.params(4).unwrap()), "k is part of it");
        let other = ParamsKZG::<Bn256>::setup(5, ChaCha20Rng::seed_from_u64(1));
        assert_ne!(params_id(&a), params_id(&other), "other toxic waste, other id");
    }

    #[test]
    fn the_fast_dev_setup_is_halo2_axioms_setup_bit_for_bit() {
        for k in [0, 1, 5, 13] {
            let mut ours = vec![];
            dev_setup(k).write(&mut ours).unwrap();
            let mut theirs = vec![];
            ParamsKZG::<Bn256>::setup(k, ChaCha20Rng::seed_from_u64(DEV_SEED)).write(&mut theirs).unwrap();
            assert!(ours == theirs, "k = {k}");
        }
    }

    #[test]
    fn lagrange_bases_are_the_lagrange_transform_of_g() {
        let dir = tempfile::tempdir().unwrap();
        let params = SrsSource::Dev { cache_dir: dir.path().into() }.params(4).unwrap();
        let expected = g_to_lagrange(params.get_g().iter().map(|p| p.to_curve()).collect(), 4);
        assert_eq!(*lagrange_bases(&params).unwrap(), expected);
        assert!(Arc::ptr_eq(&lagrange_bases(&params).unwrap(), &lagrange_bases(&params).unwrap()), "cached");
    }
}
