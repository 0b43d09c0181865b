//! `statesync-bench prove | msm | ntt`: statesync's prover and its Hal
//! operations against halo2-axiom / halo2curves, A/B alternating in the same
//! run after one warm-up of each, reported as ratios (baseline time / ours:
//! above 1 means ours is faster) with min / median / max.

use std::time::Instant;

use clap::{Args, ValueEnum};
use halo2_proofs::{
    arithmetic::best_multiexp,
    halo2curves::{bn256::Fr, ff::Field},
    poly::{commitment::ParamsProver, EvaluationDomain},
};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::Serialize;
use statesync_api::demo::Generator;
use statesync_circuits::{
    config::ChainConfig,
    engine::apply_batch,
    examples,
    transition::{Batch, BATCH_VERSION},
};
use statesync_prover::{
    hal::{self, Backend, Bases},
    keys::KeyStore,
    proof::{batch_circuit, prove_circuit, prove_circuit_halo2, verify_instances, TranscriptKind},
    srs::SrsSource,
};

use crate::stats::{summarize, Summary};

/// Options shared by the comparisons.
#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// Measured A/B pairs (after one warm-up pair).
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// Backend of our side [default: cuda when a GPU is usable, else cpu].
    #[arg(long)]
    pub backend: Option<Backend>,
    /// Data directory (SRS cache).
    #[arg(long, default_value = "./statesync-data")]
    pub data_dir: std::path::PathBuf,
}

/// `prove` options.
#[derive(Debug, Clone, Args)]
pub struct ProveArgs {
    /// Circuit shape: the example chain's default shape, or the small test shape.
    #[arg(long, value_enum, default_value_t = ShapeChoice::Default)]
    pub shape: ShapeChoice,
    #[command(flatten)]
    pub common: CompareArgs,
}

/// `msm` / `ntt` options.
#[derive(Debug, Clone, Args)]
pub struct SizeArgs {
    /// log2 sizes, comma separated.
    #[arg(long, value_delimiter = ',', default_values_t = vec![16u32, 18])]
    pub k: Vec<u32>,
    #[command(flatten)]
    pub common: CompareArgs,
}

/// Batch-circuit shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ShapeChoice {
    /// The example chain's shape.
    Default,
    /// Capacity 11, depth 3 (the tests' shape).
    Test,
}

/// One comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// What was measured.
    pub name: String,
    /// Baseline (halo2-axiom / halo2curves) seconds.
    pub baseline_s: Option<Summary>,
    /// Ours, seconds.
    pub ours_s: Option<Summary>,
    /// Baseline time / our time, per pair.
    pub ratio: Option<Summary>,
}

/// A report.
#[derive(Debug, Clone, Serialize)]
pub struct CompareReport {
    /// Our backend.
    pub backend: String,
    /// The comparisons.
    pub rows: Vec<Comparison>,
}

fn time<T>(f: impl FnOnce() -> Result<T, String>) -> Result<(f64, T), String> {
    let t = Instant::now();
    let v = f()?;
    Ok((t.elapsed().as_secs_f64(), v))
}

/// Warm-up, then `reps` pairs alternating which side runs first.
fn ab(
    name: String,
    reps: usize,
    progress: &dyn Fn(&str),
    mut baseline: impl FnMut() -> Result<(), String>,
    mut ours: impl FnMut() -> Result<(), String>,
) -> Result<Comparison, String> {
    progress(&format!("{name}: warm-up"));
    baseline()?;
    ours()?;
    let (mut a, mut b, mut r) = (vec![], vec![], vec![]);
    for i in 0..reps {
        progress(&format!("{name}: pair {}/{reps}", i + 1));
        let (ta, tb) = if i % 2 == 0 {
            let ta = time(&mut baseline)?.0;
            (ta, time(&mut ours)?.0)
        } else {
            let tb = time(&mut ours)?.0;
            (time(&mut baseline)?.0, tb)
        };
        a.push(ta);
        b.push(tb);
        r.push(ta / tb);
    }
    Ok(Comparison { name, baseline_s: summarize(&a), ours_s: summarize(&b), ratio: summarize(&r) })
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn random(n: usize, seed: u64) -> Vec<Fr> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    (0..n).map(|_| Fr::random(&mut rng)).collect()
}

/// MSMs of 2^k random scalars on the SRS: halo2curves' `best_multiexp`
/// (what halo2-axiom commits with) against our Hal's commitment.
pub fn msm(args: &SizeArgs, progress: &dyn Fn(&str)) -> Result<CompareReport, String> {
    let hal = hal::select(args.common.backend).map_err(err)?;
    let srs = SrsSource::Dev { cache_dir: args.common.data_dir.join("srs") };
    let mut rows = vec![];
    for &k in &args.k {
        progress(&format!("SRS k = {k}"));
        let params = srs.params(k).map_err(err)?;
        let scalars = random(1 << k, k as u64);
        let g = params.get_g();
        let mut expected = None;
        let mut got = None;
        rows.push(ab(
            format!("msm 2^{k}"),
            args.common.reps,
            progress,
            || {
                expected = Some(best_multiexp(&scalars, g));
                Ok(())
            },
            || {
                got = Some(hal.commit(&params, Bases::Monomial, &[&scalars]).map_err(err)?[0]);
                Ok(())
            },
        )?);
        if expected.map(Into::into) != got {
            return Err(format!("msm 2^{k}: the two sides disagree"));
        }
    }
    Ok(CompareReport { backend: hal.name(), rows })
}

/// Inverse NTTs (Lagrange to coefficients) of 2^k: halo2-axiom's
/// `EvaluationDomain::lagrange_to_coeff` against our Hal's.
pub fn ntt(args: &SizeArgs, progress: &dyn Fn(&str)) -> Result<CompareReport, String> {
    let hal = hal::select(args.common.backend).map_err(err)?;
    let mut rows = vec![];
    for &k in &args.k {
        let domain = EvaluationDomain::<Fr>::new(1, k);
        let values = random(1 << k, k as u64);
        let (mut a, mut b) = (vec![], vec![]);
        rows.push(ab(
            format!("intt 2^{k}"),
            args.common.reps,
            progress,
            || {
                a = domain.lagrange_to_coeff(domain.lagrange_from_vec(values.clone())).into_values();
                Ok(())
            },
            || {
                let mut v = vec![values.clone()];
                hal.lagrange_to_coeff(&domain, &mut v).map_err(err)?;
                b = v.pop().unwrap_or_default();
                Ok(())
            },
        )?);
        if a != b {
            return Err(format!("intt 2^{k}: the two sides disagree"));
        }
    }
    Ok(CompareReport { backend: hal.name(), rows })
}

/// A full batch proof of `shape`: halo2-axiom's `create_proof` against our
/// prover on the same circuit, keys and transcript (Blake2b); both proofs
/// are verified.
pub fn prove(args: &ProveArgs, progress: &dyn Fn(&str)) -> Result<CompareReport, String> {
    let hal = hal::select(args.common.backend).map_err(err)?;
    let cfg: ChainConfig = match args.shape {
        ShapeChoice::Default => examples::chain(),
        ShapeChoice::Test => examples::chain_with(11, 3),
    };
    let srs = SrsSource::Dev { cache_dir: args.common.data_dir.join("srs") };
    let dir = tempfile::tempdir().map_err(err)?;
    let store = KeyStore::new(dir.path().join("keys"));
    let layout = store.layout(&cfg.shape).map_err(err)?;
    progress(&format!("SRS and keys (k = {})", layout.k));
    let params = srs.params(layout.k as u32).map_err(err)?;
    let keys = store.keys(&params, &cfg.shape).map_err(err)?;
    let batch = Batch {
        version: BATCH_VERSION,
        chain_id: cfg.chain_id.clone(),
        seq: 0,
        transitions: Generator::new(&cfg, 7).batch(cfg.shape.capacity),
    };
    let applied = apply_batch(&cfg.genesis_state(), &cfg.chain_id, &batch).map_err(err)?;
    let w = &applied.witness;
    let public = w.public.to_fields();
    let kind = TranscriptKind::Blake2b;
    let vk = keys.pk.get_vk();
    let seed = std::cell::Cell::new(0u64);
    let row = ab(
        format!("prove batch shape {} (k = {})", cfg.shape.id(), layout.k),
        args.common.reps,
        progress,
        || {
            seed.set(seed.get() + 1);
            let (c, public) = batch_circuit(&keys, w).map_err(err)?;
            let p = prove_circuit_halo2(&params, &keys.pk, c, &public, kind, ChaCha20Rng::seed_from_u64(seed.get()))
                .map_err(err)?;
            verify_instances(&params, vk, &public, &p, kind)
                .then_some(())
                .ok_or("halo2-axiom's proof did not verify".into())
        },
        || {
            let (c, _) = batch_circuit(&keys, w).map_err(err)?;
            let p = prove_circuit(
                hal.as_ref(),
                &params,
                &keys.pk,
                c,
                &public,
                kind,
                ChaCha20Rng::seed_from_u64(seed.get()),
            )
            .map_err(err)?;
            verify_instances(&params, vk, &public, &p, kind).then_some(()).ok_or("our proof did not verify".into())
        },
    )?;
    Ok(CompareReport { backend: hal.name(), rows: vec![row] })
}
