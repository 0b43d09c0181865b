//! `statesync-bench gpu-check`: everything a GPU host can tell us, in one
//! self-contained run (the host needs nothing but this binary and a driver).
//!
//! 1. Every module loaded on the GPU, and from where (SASS, PTX or NVRTC).
//! 2. The kernel checks of `statesync_kernels::conformance` on the GPU: the
//!    very bodies the emulator runs in every test run.
//! 3. A batch proof through `DualHal(CpuHal, CudaHal<CudaDevice>)`: every
//!    Hal operation compared as it happens, the proof byte-identical to the
//!    CPU's and verified with halo2-axiom.
//! 4. `msm` and `ntt` over `--sizes` and `prove` on `--shape`, each with
//!    `--backend cpu,cuda`: every figure a same-run ratio to its baseline.
//!
//! NVML's view (memory used, utilization, power of GPU 0) is sampled during
//! the run and summarized per phase. A phase that fails is reported and the
//! run goes on; the exit status is 0 when everything passed, 1 otherwise,
//! and 2 on a host without a usable GPU (nothing is run).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::Serialize;
use statesync_api::devices::{Devices, Gpu};
use statesync_kernels::{conformance, CudaDevice, Device, ModuleLoad};
use statesync_prover::{
    hal::{Backend, CpuHal, CudaHal, CudaHalConfig, DualHal, Hal},
    snark::{prove_circuit, verify_instances, TranscriptKind},
};

use crate::compare::{self, BatchFixture, CompareArgs, CompareReport, ProveArgs, SizeArgs};
use crate::progress::Progress;

/// Version of the `gpu-check` JSON report.
pub const SCHEMA: u32 = 1;

/// `gpu-check` options.
#[derive(Debug, Clone, clap::Args)]
pub struct GpuCheckArgs {
    /// log2 sizes of the `msm` and `ntt` figures, comma separated.
    #[arg(long = "sizes", value_delimiter = ',', default_values_t = vec![16u32, 18, 20, 22, 24],
          value_parser = clap::value_parser!(u32).range(4..=24))]
    pub sizes: Vec<u32>,
    /// Shape of the DualHal proof and of the `prove` figures (as `prove
    /// --shape`).
    #[arg(long, default_value = "default")]
    pub shape: String,
    /// Measured A/B pairs per figure (after one warm-up pair).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub reps: u32,
    /// Data directory (SRS cache).
    #[arg(long, default_value = "./statesync-data")]
    pub data_dir: std::path::PathBuf,
    /// Also write the JSON report (as `--json` prints it) to this file.
    #[arg(long, value_name = "FILE")]
    pub json_file: Option<std::path::PathBuf>,
    /// Also append each phase's JSON object to this file, one line per phase
    /// as it ends: what a run cut short by a time limit still keeps.
    #[arg(long, value_name = "FILE")]
    pub phases_file: Option<std::path::PathBuf>,
    /// NVML sampling interval, milliseconds.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(10..=10_000))]
    pub sample_ms: u64,
}

impl GpuCheckArgs {
    /// Invalid options (exit 2 before anything runs).
    pub fn validate(&self) -> Result<(), String> {
        compare::shape_config(&self.shape).map(|_| ())
    }

    fn compare(&self) -> CompareArgs {
        CompareArgs { reps: self.reps, backends: vec![Backend::Cpu, Backend::Cuda], data_dir: self.data_dir.clone() }
    }
}

/// Why `gpu-check` did not run.
#[derive(Debug, Clone, Serialize)]
pub struct NoGpu {
    /// The CUDA driver's or cudarc's answer.
    pub reason: String,
}

/// How a module was loaded (see `statesync_kernels::ModuleLoad`).
#[derive(Debug, Clone, Serialize)]
pub struct Loaded {
    pub module: String,
    /// `sass sm_90`, `ptx sm_90` or `nvrtc compute_90`.
    pub from: String,
    /// Why earlier choices were passed over.
    pub passed_over: Vec<String>,
}

impl From<ModuleLoad> for Loaded {
    fn from(l: ModuleLoad) -> Self {
        Loaded { module: l.module.into(), from: l.from, passed_over: l.passed_over }
    }
}

/// One phase: its time and its result or error.
#[derive(Debug, Clone, Serialize)]
pub struct Phase<T> {
    pub name: String,
    pub seconds: f64,
    pub result: Option<T>,
    pub error: Option<String>,
}

impl<T> Phase<T> {
    fn passed(&self) -> bool {
        self.error.is_none()
    }
}

/// The DualHal proof.
#[derive(Debug, Clone, Serialize)]
pub struct DualProof {
    pub shape: String,
    pub k: u32,
    pub transitions: usize,
    /// Hal operations compared between the CPU and the GPU.
    pub operations_compared: usize,
    pub proof_bytes: usize,
    /// The DualHal proof equals the CPU-only proof, byte for byte.
    pub identical: bool,
    /// halo2-axiom's verifier accepts it.
    pub verified: bool,
    /// Seconds of the CPU-only proof and of the DualHal proof (both sides).
    pub cpu_prove_s: f64,
    pub dual_prove_s: f64,
}

/// NVML's readings of GPU 0 during one phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Telemetry {
    pub phase: String,
    pub samples: usize,
    pub memory_used_max_mib: Option<f64>,
    pub utilization_mean_percent: Option<f64>,
    pub utilization_max_percent: Option<u32>,
    pub power_mean_w: Option<f64>,
    pub power_max_w: Option<f64>,
}

/// The report.
#[derive(Debug, Clone, Serialize)]
pub struct GpuCheckReport {
    /// [`SCHEMA`].
    pub schema: u32,
    /// The GPU (model and compute capability).
    pub device: String,
    /// Device memory in bytes, total.
    pub memory_total_bytes: Option<usize>,
    pub modules: Phase<Vec<Loaded>>,
    /// One phase per kernel check.
    pub kernel_checks: Vec<Phase<()>>,
    pub dual_proof: Phase<DualProof>,
    pub msm: Phase<CompareReport>,
    pub ntt: Phase<CompareReport>,
    pub prove: Phase<CompareReport>,
    /// NVML per phase; empty when NVML is unavailable.
    pub telemetry: Vec<Telemetry>,
    pub nvml_error: Option<String>,
    /// Every phase passed.
    pub passed: bool,
}

impl GpuCheckReport {
    /// Every phase in the order run, as (name, seconds, error).
    pub fn phases(&self) -> Vec<(&str, f64, Option<&str>)> {
        fn row<T>(p: &Phase<T>) -> (&str, f64, Option<&str>) {
            (p.name.as_str(), p.seconds, p.error.as_deref())
        }
        let mut out = vec![row(&self.modules)];
        out.extend(self.kernel_checks.iter().map(row));
        out.extend([row(&self.dual_proof), row(&self.msm), row(&self.ntt), row(&self.prove)]);
        out
    }
}

/// NVML readings of GPU 0, taken every `interval` on a thread of their own.
struct Sampler {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<(f64, Gpu)>>>,
    thread: Option<std::thread::JoinHandle<()>>,
    t0: Instant,
}

impl Sampler {
    fn start(devices: Arc<Devices>, interval: Duration, t0: Instant) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(vec![]));
        let thread = {
            let (stop, samples) = (stop.clone(), samples.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(g) = devices.gpus().into_iter().next() {
                        samples.lock().unwrap_or_else(|p| p.into_inner()).push((t0.elapsed().as_secs_f64(), g));
                    }
                    std::thread::sleep(interval);
                }
            })
        };
        Sampler { stop, samples, thread: Some(thread), t0 }
    }

    fn now(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    /// Summaries of the samples within each (phase, from, to).
    fn finish(mut self, phases: &[(String, f64, f64)]) -> Vec<Telemetry> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        phases
            .iter()
            .map(|(name, from, to)| summarize(name, samples.iter().filter(|(t, _)| t >= from && t <= to)))
            .collect()
    }
}

fn summarize<'a>(phase: &str, samples: impl Iterator<Item = &'a (f64, Gpu)>) -> Telemetry {
    let gpus: Vec<&Gpu> = samples.map(|(_, g)| g).collect();
    let mean = |v: Vec<f64>| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    let max = |v: Vec<f64>| v.into_iter().reduce(f64::max);
    Telemetry {
        phase: phase.into(),
        samples: gpus.len(),
        memory_used_max_mib: max(gpus.iter().filter_map(|g| g.memory_used).map(|b| b as f64 / 1048576.0).collect()),
        utilization_mean_percent: mean(gpus.iter().filter_map(|g| g.utilization).map(f64::from).collect()),
        utilization_max_percent: gpus.iter().filter_map(|g| g.utilization).max(),
        power_mean_w: mean(gpus.iter().filter_map(|g| g.power_w).collect()),
        power_max_w: max(gpus.iter().filter_map(|g| g.power_w).collect()),
    }
}

/// The phases run so far: their intervals for the telemetry, and each
/// phase's JSON line when `--phases-file` is given.
struct Phases<'a> {
    sampler: Sampler,
    spans: Vec<(String, f64, f64)>,
    progress: &'a Progress,
    file: Option<std::fs::File>,
}

impl Phases<'_> {
    /// Runs `f` as the phase `name`.
    fn run<T: Serialize>(&mut self, name: impl Into<String>, f: impl FnOnce() -> Result<T, String>) -> Phase<T> {
        let name = name.into();
        let task = self.progress.task(format!("gpu-check: {name}"), None);
        let from = self.sampler.now();
        let (result, error) = match f() {
            Ok(v) => (Some(v), None),
            Err(e) => (None, Some(e)),
        };
        let to = self.sampler.now();
        // On a log, one line per phase as it ends: what a run cut short by a
        // timeout still tells.
        task.step(&match &error {
            None => format!("passed in {:.1} s", to - from),
            Some(e) => format!("FAILED after {:.1} s: {e}", to - from),
        });
        drop(task);
        self.spans.push((name.clone(), from, to));
        let phase = Phase { name, seconds: to - from, result, error };
        if let Some(file) = &mut self.file {
            use std::io::Write;
            if let Err(e) = writeln!(file, "{}", serde_json::json!(phase)).and_then(|()| file.flush()) {
                eprintln!("gpu-check: --phases-file: {e}");
            }
        }
        phase
    }
}

/// The batch proof on the CPU, then through `DualHal(CpuHal, CudaHal)`.
fn dual_proof(args: &GpuCheckArgs, progress: &Progress) -> Result<DualProof, String> {
    let cfg = compare::shape_config(&args.shape)?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let prover = compare::dev_prover(&args.data_dir, &dir.path().join("keys"), Arc::new(CpuHal));
    let fx = BatchFixture::new(cfg, &prover, progress)?;
    let (circuit, public) = fx.circuit()?;
    let kind = TranscriptKind::Poseidon; // what the service proves batches with
    let prove = |hal: &dyn Hal| -> Result<(f64, Vec<u8>), String> {
        let t = Instant::now();
        let rng = ChaCha20Rng::seed_from_u64(21);
        let p = prove_circuit(hal, &fx.params, &fx.keys.pk, circuit.clone(), &public, kind, rng)
            .map_err(|e| format!("{}: {e}", hal.name()))?;
        Ok((t.elapsed().as_secs_f64(), p))
    };
    let (cpu_prove_s, cpu) = prove(&CpuHal)?;
    let gpu = CudaDevice::new(0).map_err(|e| e.to_string())?;
    let dual = DualHal::new(CpuHal, CudaHal::new(gpu, CudaHalConfig::from_env().map_err(|e| e.to_string())?));
    let (dual_prove_s, proof) = prove(&dual)?;
    let verified = verify_instances(&fx.params, fx.keys.pk.get_vk(), &public, &proof, kind);
    let identical = proof == cpu;
    let report = DualProof {
        shape: fx.cfg.shape.id(),
        k: fx.k,
        transitions: fx.batch.transitions.len(),
        operations_compared: dual.compared(),
        proof_bytes: proof.len(),
        identical,
        verified,
        cpu_prove_s,
        dual_prove_s,
    };
    match (identical, verified) {
        (true, true) => Ok(report),
        _ => Err(format!("DualHal proof: identical to the CPU's {identical}, verified {verified}")),
    }
}

/// Runs the check on GPU 0; `Err` when there is no usable GPU.
pub fn run(args: &GpuCheckArgs, progress: &Progress) -> Result<GpuCheckReport, NoGpu> {
    let gpu = CudaDevice::new(0).map_err(|e| NoGpu { reason: e.to_string() })?;
    let devices = Arc::new(Devices::probe());
    let sampler = Sampler::start(devices.clone(), Duration::from_millis(args.sample_ms), Instant::now());
    let file = args.phases_file.as_ref().and_then(|path| {
        std::fs::File::create(path).map_err(|e| eprintln!("gpu-check: --phases-file {}: {e}", path.display())).ok()
    });
    let mut phases = Phases { sampler, spans: vec![], progress, file };

    let modules = phases.run("load every module", || {
        Ok(gpu.load_every_module().map_err(|e| e.to_string())?.into_iter().map(Loaded::from).collect())
    });
    let kernel_checks = conformance::all::<CudaDevice>()
        .into_iter()
        .map(|(name, check)| phases.run(format!("kernels: {name}"), || check(&gpu).map_err(|e| e.to_string())))
        .collect();
    let dual_proof = phases.run("DualHal(CpuHal, CudaHal) batch proof", || dual_proof(args, progress));
    let sizes = SizeArgs { sizes: args.sizes.clone(), common: args.compare() };
    let msm = phases.run("msm, cpu and cuda", || compare::msm(&sizes, progress));
    let ntt = phases.run("ntt, cpu and cuda", || compare::ntt(&sizes, progress));
    let prove_args = ProveArgs { shapes: vec![args.shape.clone()], common: args.compare() };
    let prove = phases.run("prove, cpu and cuda", || compare::prove(&prove_args, progress));

    let telemetry = phases.sampler.finish(&phases.spans);
    let mut report = GpuCheckReport {
        schema: SCHEMA,
        device: gpu.name(),
        memory_total_bytes: gpu.memory().ok().map(|(_, total)| total),
        modules,
        kernel_checks,
        dual_proof,
        msm,
        ntt,
        prove,
        telemetry,
        nvml_error: devices.nvml_error(),
        passed: false,
    };
    report.passed = report.modules.passed()
        && report.kernel_checks.iter().all(Phase::passed)
        && report.dual_proof.passed()
        && [&report.msm, &report.ntt, &report.prove].iter().all(|p| p.passed());
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(used_mib: u64, util: u32, power: f64) -> Gpu {
        Gpu {
            index: 0,
            name: "H200".into(),
            memory_total: Some(140 << 30),
            memory_used: Some(used_mib << 20),
            utilization: Some(util),
            temperature_c: None,
            power_w: Some(power),
        }
    }

    #[test]
    fn telemetry_summarizes_the_samples_of_a_phase() {
        let samples = [(0.5, gpu(100, 10, 100.0)), (1.5, gpu(300, 90, 500.0)), (2.5, gpu(200, 50, 300.0))];
        let t = summarize("msm", samples.iter().filter(|(t, _)| *t >= 1.0));
        assert_eq!(t.samples, 2);
        assert_eq!(t.memory_used_max_mib, Some(300.0));
        assert_eq!(t.utilization_mean_percent, Some(70.0));
        assert_eq!(t.utilization_max_percent, Some(90));
        assert_eq!(t.power_mean_w, Some(400.0));
        assert_eq!(t.power_max_w, Some(500.0));
        let none = summarize("idle", samples.iter().filter(|(t, _)| *t > 9.0));
        assert_eq!((none.samples, none.memory_used_max_mib, none.power_mean_w), (0, None, None));
    }
}
