//! `statesync-bench prove | msm | ntt`: statesync's prover and its Hal
//! operations against halo2-axiom / halo2curves, A/B alternating in the same
//! run after one warm-up of each, reported as ratios (baseline time / ours:
//! above 1 means ours is faster) with min / median / max.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Instant,
};

use clap::Args;
use halo2_proofs::{
    arithmetic::{best_fft, best_multiexp},
    halo2curves::{bn256::Fr, ff::Field},
    poly::{commitment::ParamsProver, EvaluationDomain},
};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::Serialize;
use statesync_api::demo::Generator;
use statesync_circuits::{
    circuit::BatchCircuit,
    config::ChainConfig,
    engine::apply_batch,
    examples,
    state::ChainState,
    transition::{Batch, BATCH_VERSION},
};
use statesync_prover::{
    batch::{batch_circuit, ShapeKeys},
    hal::{self, traffic_since, Backend, Bases, CpuHal, Hal, OpTraffic, TrafficReport},
    keys::KeyStore,
    snark::{prove_circuit, prove_circuit_halo2, verify_instances, TranscriptKind},
    srs::{Params, SrsSource},
    Prover,
};

use crate::{
    plot::{Plot, Point, Series},
    progress::Progress,
    stats::{summarize, Summary},
};

/// Version of the `prove`/`msm`/`ntt` JSON report.
pub const SCHEMA: u32 = 1;

/// Options shared by the comparisons.
#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// Measured A/B pairs (after one warm-up pair).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub reps: u32,
    /// Backends of our side, comma separated, each compared with the
    /// baseline in its own pairs [default: cuda when a GPU is usable, else
    /// cpu].
    #[arg(long = "backend", value_delimiter = ',')]
    pub backends: Vec<Backend>,
    /// Data directory (SRS cache).
    #[arg(long, default_value = "./statesync-data")]
    pub data_dir: PathBuf,
}

/// `prove` options.
#[derive(Debug, Clone, Args)]
pub struct ProveArgs {
    /// Circuit shapes, comma separated: `default` (the example chain),
    /// `test` (capacity 12, depth 3), `cC-dD` (the example chain with
    /// capacity C and depth D) or the path of a chain config (JSON).
    #[arg(long = "shape", value_delimiter = ',', default_value = "default")]
    pub shapes: Vec<String>,
    #[command(flatten)]
    pub common: CompareArgs,
}

impl ProveArgs {
    /// The chain configs of the shapes.
    pub fn validate(&self) -> Result<Vec<ChainConfig>, String> {
        self.shapes.iter().map(|s| shape_config(s)).collect()
    }
}

/// `msm` / `ntt` options.
#[derive(Debug, Clone, Args)]
pub struct SizeArgs {
    /// log2 sizes, comma separated.
    #[arg(long = "sizes", alias = "k", value_delimiter = ',', default_values_t = vec![12u32, 14, 16, 18],
          value_parser = clap::value_parser!(u32).range(4..=24))]
    pub sizes: Vec<u32>,
    #[command(flatten)]
    pub common: CompareArgs,
}

/// One comparison: one operation at one size on one backend.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// What was measured, for people.
    pub name: String,
    /// The operation: `msm`, `ntt forward`, `ntt inverse`, `ntt coset`,
    /// `prove`.
    pub op: String,
    /// log2 of the size (the circuit's k for `prove`).
    pub k: u32,
    /// Our backend (`cpu`, `cuda`, `emu`).
    pub backend: Backend,
    /// Baseline (halo2-axiom / halo2curves) seconds.
    pub baseline_s: Option<Summary>,
    /// Ours, seconds.
    pub ours_s: Option<Summary>,
    /// Baseline time / our time, per pair.
    pub ratio: Option<Summary>,
}

/// What `prove` measures besides the proving time, per shape.
#[derive(Debug, Clone, Serialize)]
pub struct ShapeFigures {
    /// The shape's id (`c12-d20-m2-s2-g5`).
    pub shape: String,
    /// The circuit's k.
    pub k: u32,
    /// Transitions in the proven batch.
    pub transitions: usize,
    /// Witness generation: the engine's checks and witness for the batch
    /// (`apply_batch`) and the circuit built from it, seconds; `reps` runs
    /// after a warm-up, outside the proving times.
    pub witness_s: Option<Summary>,
    /// Proof size, ours, bytes.
    pub proof_bytes: usize,
    /// Proof size, halo2-axiom's, bytes.
    pub baseline_proof_bytes: usize,
    /// Transitions proven per core-second (median proving time, all the
    /// machine's cores), per backend of ours, with halo2-axiom's beside it.
    pub transitions_per_core_second: Vec<Throughput>,
    /// Device traffic of one proof (the last measured), per backend of ours
    /// that has a device (none for `cpu`).
    pub device_traffic: Vec<ProofTraffic>,
}

/// What one proof moved between the host and a device.
#[derive(Debug, Clone, Serialize)]
pub struct ProofTraffic {
    /// Our backend.
    pub backend: Backend,
    /// All operations together.
    pub total: OpTraffic,
    /// Per Hal operation.
    pub operations: TrafficReport,
}

/// Proving throughput of one backend against the baseline's, same run.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    /// Our backend.
    pub backend: Backend,
    /// Cores of the machine (`available_parallelism`).
    pub cores: usize,
    /// Ours: transitions / (median seconds · cores).
    pub ours: Option<f64>,
    /// halo2-axiom's.
    pub baseline: Option<f64>,
}

/// A report.
#[derive(Debug, Clone, Serialize)]
pub struct CompareReport {
    /// [`SCHEMA`].
    pub schema: u32,
    /// Our Hals, by name, in the order measured.
    pub hals: Vec<String>,
    /// The comparisons.
    pub rows: Vec<Comparison>,
    /// `prove` only: per shape.
    pub shapes: Vec<ShapeFigures>,
}

impl CompareReport {
    /// Time against size, one series per operation and side (the baseline
    /// once, ours per backend), medians with min–max bars.
    pub fn plot(&self, title: &str) -> Plot {
        let mut series: Vec<Series> = vec![];
        let mut add = |label: String, k: u32, s: &Option<Summary>| {
            let Some(s) = s else { return };
            let i = match series.iter().position(|x| x.label == label) {
                Some(i) => i,
                None => {
                    series.push(Series { label, points: vec![] });
                    series.len() - 1
                }
            };
            let points = &mut series[i].points;
            if !points.iter().any(|p| p.x == f64::from(k)) {
                points.push(Point { x: f64::from(k), y: s.p50, lo: s.min, hi: s.max });
            }
        };
        for r in &self.rows {
            add(format!("{}: {}", r.op, baseline_name(&r.op)), r.k, &r.baseline_s);
            add(format!("{}: ours ({})", r.op, r.backend), r.k, &r.ours_s);
        }
        Plot {
            title: title.into(),
            x_label: "log2 size (k)".into(),
            y_label: "seconds (median, min-max)".into(),
            series,
        }
    }
}

fn baseline_name(op: &str) -> &'static str {
    match op {
        "msm" => "halo2curves",
        _ => "halo2-axiom",
    }
}

fn time<T>(f: impl FnOnce() -> Result<T, String>) -> Result<(f64, T), String> {
    let t = Instant::now();
    let v = f()?;
    Ok((t.elapsed().as_secs_f64(), v))
}

/// Warm-up, then `reps` pairs alternating which side runs first.
fn ab(
    row: (String, &str, u32, Backend),
    reps: u32,
    progress: &Progress,
    mut baseline: impl FnMut() -> Result<(), String>,
    mut ours: impl FnMut() -> Result<(), String>,
) -> Result<Comparison, String> {
    let (name, op, k, backend) = row;
    let task = progress.task(format!("{name} [{backend}]"), Some(u64::from(reps) + 1));
    task.step("warm-up");
    baseline()?;
    ours()?;
    task.inc();
    let (mut a, mut b, mut r) = (vec![], vec![], vec![]);
    for i in 0..reps {
        task.step(&format!("pair {}/{reps}", i + 1));
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
        task.inc();
    }
    Ok(Comparison {
        name,
        op: op.into(),
        k,
        backend,
        baseline_s: summarize(&a),
        ours_s: summarize(&b),
        ratio: summarize(&r),
    })
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn random(n: usize, seed: u64) -> Vec<Fr> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    (0..n).map(|_| Fr::random(&mut rng)).collect()
}

/// The Hals of `args` (the default one when none is named).
fn hals(args: &CompareArgs) -> Result<Vec<Arc<dyn Hal>>, String> {
    if args.backends.is_empty() {
        return Ok(vec![hal::select(None).map_err(err)?]);
    }
    let mut seen = vec![];
    let mut out = vec![];
    for &b in &args.backends {
        if !seen.contains(&b) {
            seen.push(b);
            out.push(hal::select(Some(b)).map_err(|e| format!("--backend {b}: {e}"))?);
        }
    }
    Ok(out)
}

fn sizes(args: &SizeArgs) -> Vec<u32> {
    let mut k = args.sizes.clone();
    k.sort_unstable();
    k.dedup();
    k
}

fn report(hals: &[Arc<dyn Hal>], rows: Vec<Comparison>, shapes: Vec<ShapeFigures>) -> CompareReport {
    CompareReport { schema: SCHEMA, hals: hals.iter().map(|h| h.name()).collect(), rows, shapes }
}

/// MSMs of 2^k random scalars on the SRS: halo2curves' `best_multiexp`
/// (what halo2-axiom commits with) against our Hal's commitment; both
/// results must agree.
pub fn msm(args: &SizeArgs, progress: &Progress) -> Result<CompareReport, String> {
    let hals = hals(&args.common)?;
    let srs = SrsSource::Dev { cache_dir: args.common.data_dir.join("srs") };
    let mut rows = vec![];
    for k in sizes(args) {
        let params = {
            let _task = progress.task(format!("SRS 2^{k}"), None);
            srs.params(k).map_err(err)?
        };
        let scalars = random(1 << k, u64::from(k));
        let g = params.get_g();
        for hal in &hals {
            let mut expected = None;
            let mut got = None;
            rows.push(ab(
                (format!("msm 2^{k}"), "msm", k, hal.backend()),
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
                return Err(format!("msm 2^{k} on {}: the two sides disagree", hal.name()));
            }
        }
    }
    Ok(report(&hals, rows, vec![]))
}

/// NTTs of 2^k, forward, inverse and coset, each checked for agreement:
/// - forward: halo2-axiom's `best_fft` against the Hal's coset transform
///   with the factor that cancels the coset shift (the Hal has no separate
///   forward transform; the prover never needs one), so ours also pays a
///   multiplication by 1 per element;
/// - inverse: `EvaluationDomain::lagrange_to_coeff` against the Hal's;
/// - coset: `EvaluationDomain::coeff_to_extended_part` (ζ·ω_ext·H, the
///   quotient's second part) against the Hal's.
pub fn ntt(args: &SizeArgs, progress: &Progress) -> Result<CompareReport, String> {
    let hals = hals(&args.common)?;
    let mut rows = vec![];
    for k in sizes(args) {
        let domain = EvaluationDomain::<Fr>::new(3, k);
        let values = random(1 << k, u64::from(k));
        for hal in &hals {
            let hal = hal.as_ref();
            type Side<'a> = Box<dyn Fn() -> Result<Vec<Fr>, String> + 'a>;
            let cases: [(&str, Side, Side); 3] = [
                (
                    "ntt forward",
                    Box::new(|| {
                        let mut a = values.clone();
                        best_fft(&mut a, domain.get_omega(), k, domain.get_fft_data(values.len()), false);
                        Ok(a)
                    }),
                    Box::new(|| coset(hal, &domain, &values, domain.g_coset_inv)),
                ),
                (
                    "ntt inverse",
                    Box::new(|| Ok(domain.lagrange_to_coeff(domain.lagrange_from_vec(values.clone())).into_values())),
                    Box::new(|| {
                        let mut v = vec![values.clone()];
                        hal.lagrange_to_coeff(&domain, &mut v).map_err(err)?;
                        v.pop().ok_or_else(|| "no polynomial back".to_string())
                    }),
                ),
                (
                    "ntt coset",
                    Box::new(|| {
                        Ok(domain
                            .coeff_to_extended_part(domain.coeff_from_vec(values.clone()), domain.get_extended_omega())
                            .into_values())
                    }),
                    Box::new(|| coset(hal, &domain, &values, domain.get_extended_omega())),
                ),
            ];
            for (op, baseline, ours) in cases {
                let (mut a, mut b) = (vec![], vec![]);
                rows.push(ab(
                    (format!("{op} 2^{k}"), op, k, hal.backend()),
                    args.common.reps,
                    progress,
                    || {
                        a = baseline()?;
                        Ok(())
                    },
                    || {
                        b = ours()?;
                        Ok(())
                    },
                )?);
                if a != b {
                    return Err(format!("{op} 2^{k} on {}: the two sides disagree", hal.name()));
                }
            }
        }
    }
    Ok(report(&hals, rows, vec![]))
}

fn coset(hal: &dyn Hal, domain: &EvaluationDomain<Fr>, values: &[Fr], factor: Fr) -> Result<Vec<Fr>, String> {
    hal.coeff_to_extended_part(domain, &[values], factor).map_err(err)?.pop().ok_or_else(|| "no polynomial back".into())
}

/// The chain config a `--shape` value names.
pub fn shape_config(name: &str) -> Result<ChainConfig, String> {
    let cfg = match name {
        "default" => examples::chain(),
        "test" => examples::chain_with(12, 3),
        _ => match name.strip_prefix('c').and_then(|s| s.split_once("-d")).map(|(c, d)| (c.parse(), d.parse())) {
            Some((Ok(capacity), Ok(depth))) => examples::chain_with(capacity, depth),
            _ => {
                let text = std::fs::read_to_string(name).map_err(|e| {
                    format!("--shape {name}: not default, test or cC-dD, and not a readable chain config ({e})")
                })?;
                ChainConfig::from_json(&text).map_err(|e| format!("--shape {name}: {e}"))?
            }
        },
    };
    cfg.validate().map_err(|e| format!("--shape {name}: {e}"))?;
    Ok(cfg)
}

/// A prover on the development SRS cached in `data_dir/srs`, with keys in
/// `keys_dir` (the benchmarks' temporary key cache), proving on `hal`.
pub fn dev_prover(data_dir: &Path, keys_dir: &Path, hal: Arc<dyn Hal>) -> Prover {
    Prover::new(SrsSource::Dev { cache_dir: data_dir.join("srs") }, KeyStore::new(keys_dir), hal)
}

/// One full batch of a shape, ready to prove: the development SRS of the
/// shape's k (cached under `data_dir`), its keys and a generated batch of
/// `capacity` transitions on the shape's chain, from its genesis state.
#[derive(Debug)]
pub struct BatchFixture {
    /// The shape's chain.
    pub cfg: ChainConfig,
    /// The circuit's k.
    pub k: u32,
    /// Development SRS of size 2^k.
    pub params: Arc<Params>,
    /// The shape's proving and verifying keys.
    pub keys: Arc<ShapeKeys>,
    /// A full batch (seq 0).
    pub batch: Batch,
    genesis: ChainState,
}

impl BatchFixture {
    /// SRS and keys (from `prover`) for `cfg`'s shape, and its batch.
    pub fn new(cfg: ChainConfig, prover: &Prover, progress: &Progress) -> Result<Self, String> {
        let k = prover.layout(&cfg.shape).map_err(err)?.k as u32;
        let _task = progress.task(format!("SRS and keys, shape {} (k = {k})", cfg.shape.id()), None);
        let keyed = prover.batch_keys(&cfg.shape).map_err(err)?;
        let (params, keys) = (keyed.params, keyed.keys);
        let batch = Batch {
            version: BATCH_VERSION,
            chain_id: cfg.chain_id.clone(),
            seq: 0,
            transitions: Generator::new(&cfg, 7).batch(cfg.shape.capacity),
        };
        let genesis = cfg.genesis_state();
        Ok(BatchFixture { cfg, k, params, keys, batch, genesis })
    }

    /// Witness generation: the engine's checks and witness of the batch and
    /// the circuit built from it, with its public inputs.
    pub fn circuit(&self) -> Result<(BatchCircuit, Vec<Fr>), String> {
        let applied = apply_batch(&self.genesis, &self.cfg.chain_id, &self.batch).map_err(err)?;
        batch_circuit(&self.keys, &applied.witness).map_err(err)
    }
}

/// Full batch proofs of each shape: halo2-axiom's `create_proof` against
/// our prover on each Hal, on the same circuit, keys and transcript
/// (Blake2b); every proof is verified. Also the witness-generation time and
/// the proof sizes.
pub fn prove(args: &ProveArgs, progress: &Progress) -> Result<CompareReport, String> {
    let configs = args.validate()?;
    let hals = hals(&args.common)?;
    let dir = tempfile::tempdir().map_err(err)?;
    let prover = dev_prover(&args.common.data_dir, &dir.path().join("keys"), Arc::new(CpuHal));
    let kind = TranscriptKind::Blake2b;
    let mut rows = vec![];
    let mut shapes = vec![];
    for cfg in configs {
        let fx = BatchFixture::new(cfg, &prover, progress)?;
        let (k, params, keys, batch, cfg) = (fx.k, &fx.params, &fx.keys, &fx.batch, &fx.cfg);
        let witness = || fx.circuit();
        let mut witness_s = vec![];
        {
            let task = progress
                .task(format!("witness generation, shape {}", cfg.shape.id()), Some(u64::from(args.common.reps) + 1));
            for i in 0..=args.common.reps {
                let (t, _) = time(witness)?;
                if i > 0 {
                    witness_s.push(t); // the first run is the warm-up
                }
                task.inc();
            }
        }
        let (circuit, public) = witness()?;
        let vk = keys.pk.get_vk();
        let (mut ours_len, mut baseline_len) = (0, 0);
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let per_core_second =
            |s: &Option<Summary>| s.as_ref().map(|s| batch.transitions.len() as f64 / (s.p50 * cores as f64));
        let mut throughput = vec![];
        let mut device_traffic = vec![];
        for hal in &hals {
            let seed = std::cell::Cell::new(0u64);
            let mut moved = TrafficReport::new();
            rows.push(ab(
                (format!("prove {} (k = {k})", cfg.shape.id()), "prove", k, hal.backend()),
                args.common.reps,
                progress,
                || {
                    seed.set(seed.get() + 1);
                    let rng = ChaCha20Rng::seed_from_u64(seed.get());
                    let p = prove_circuit_halo2(params, &keys.pk, circuit.clone(), &public, kind, rng).map_err(err)?;
                    baseline_len = p.len();
                    verify_instances(params, vk, &public, &p, kind)
                        .then_some(())
                        .ok_or("halo2-axiom's proof did not verify".into())
                },
                || {
                    let rng = ChaCha20Rng::seed_from_u64(seed.get());
                    let before = hal.traffic();
                    let p = prove_circuit(hal.as_ref(), params, &keys.pk, circuit.clone(), &public, kind, rng)
                        .map_err(err)?;
                    moved = traffic_since(&hal.traffic(), &before);
                    ours_len = p.len();
                    verify_instances(params, vk, &public, &p, kind)
                        .then_some(())
                        .ok_or("our proof did not verify".into())
                },
            )?);
            let row = rows.last().expect("just pushed");
            throughput.push(Throughput {
                backend: hal.backend(),
                cores,
                ours: per_core_second(&row.ours_s),
                baseline: per_core_second(&row.baseline_s),
            });
            if !moved.is_empty() {
                device_traffic.push(ProofTraffic {
                    backend: hal.backend(),
                    total: OpTraffic::total(&moved),
                    operations: moved,
                });
            }
        }
        shapes.push(ShapeFigures {
            shape: cfg.shape.id(),
            k,
            transitions: batch.transitions.len(),
            witness_s: summarize(&witness_s),
            proof_bytes: ours_len,
            baseline_proof_bytes: baseline_len,
            transitions_per_core_second: throughput,
            device_traffic,
        });
    }
    Ok(report(&hals, rows, shapes))
}
