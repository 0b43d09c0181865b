//! `statesync-bench aggregate`: epoch circuits (DESIGN.md §3) — key
//! generation, proving and verification time, peak memory, proof size and
//! the gas of the Solidity verifier in revm, for level-1 epochs of each N
//! and, with `--levels 2`, the level-2 epoch over N level-1 epochs; with
//! `--wrap`, the wrapper over each top-level epoch, its verifier deployed on
//! an EVM with EIP-170 and EIP-3860 enforced, and `StateSync.submit`'s gas.
//!
//! Peak memory is the process's resident-set high-water mark (`VmHWM`),
//! reset before each phase through `/proc/self/clear_refs`, so each figure is
//! that phase's own peak (including what earlier phases still hold).

use std::time::Instant;

use crate::{
    plot::{Plot, Point, Series},
    progress::Progress,
};
use clap::Args;
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
    epoch::{Aggregated, EpochProof, EpochSpec, EPOCH_K, WRAPPER_K},
    evm::{
        calldata, compile_solidity, solcjs, state_sync_constructor_args, submit_calldata, verifier_solidity, Evm,
        STATE_SYNC_SOL,
    },
    hal::{self, Backend},
    snark::TranscriptKind,
    Prover,
};

/// Options.
#[derive(Debug, Clone, Args)]
pub struct AggregateArgs {
    /// Proofs per epoch, comma separated.
    #[arg(long, value_delimiter = ',', default_values_t = vec![2usize, 4])]
    pub n: Vec<usize>,
    /// 2 also measures the level-2 epoch over N level-1 epochs (for the
    /// smallest N; its level-1 epochs are proven N times, figures of the first).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=2))]
    pub levels: u32,
    /// Transitions per batch of the aggregated batch proofs.
    #[arg(long, default_value_t = 2)]
    pub capacity: usize,
    /// Accounts tree depth of the aggregated batch proofs.
    #[arg(long, default_value_t = 8)]
    pub depth: usize,
    /// Also compile the Solidity verifiers (solcjs) and measure their gas in revm.
    #[arg(long)]
    pub evm: bool,
    /// Also wrap each top-level epoch (proven with the Poseidon transcript
    /// then) in the wrapper circuit; with `--evm`, deploy its verifier and
    /// `StateSync` with Ethereum's size limits and measure `submit`.
    #[arg(long)]
    pub wrap: bool,
    /// `log2` of the wrapper circuit's rows.
    #[arg(long, default_value_t = WRAPPER_K, value_parser = clap::value_parser!(u32).range(18..=26))]
    pub wrapper_k: u32,
    /// Cache directory for the SRS (the dev SRS is deterministic).
    #[arg(long, default_value = "./statesync-data")]
    pub data_dir: std::path::PathBuf,
    /// Backend of every proof [default: cuda when a GPU is usable, else cpu].
    #[arg(long)]
    pub backend: Option<Backend>,
}

/// One epoch circuit's figures.
#[derive(Debug, Clone, Serialize)]
pub struct EpochFigures {
    /// 1 or 2 (a wrapper: one above the epoch it wraps).
    pub level: u32,
    /// `log2` of the wrapper's rows, when this is the wrapper.
    pub wrapper_k: Option<u32>,
    /// Proofs aggregated.
    pub n: usize,
    /// Batches covered.
    pub batches: usize,
    /// Advice columns.
    pub advice_columns: usize,
    /// Lookup columns.
    pub lookup_columns: usize,
    /// Key generation (vk and pk), seconds.
    pub keygen_s: f64,
    /// Peak resident memory during key generation, MiB.
    pub keygen_peak_mib: f64,
    /// Proving, seconds.
    pub prove_s: f64,
    /// Peak resident memory during proving, MiB.
    pub prove_peak_mib: f64,
    /// Native verification (proof and accumulator pairing), milliseconds.
    pub verify_ms: f64,
    /// Proof bytes.
    pub proof_bytes: usize,
    /// Gas of the verifying call in revm (with `--evm`).
    pub evm_gas: Option<u64>,
    /// Deployed verifier size in bytes (with `--evm`).
    pub verifier_bytes: Option<usize>,
    /// Gas of `StateSync.submit` with this proof, storage included (the
    /// wrapper, with `--evm`).
    pub state_sync_gas: Option<u64>,
}

/// The report (`--json`; schema version 2: `wrapper_k` and
/// `state_sync_gas` per epoch circuit).
#[derive(Debug, Clone, Serialize)]
pub struct AggregateReport {
    /// Schema version.
    pub schema: u32,
    /// Shape id of the aggregated batch proofs.
    pub batch_shape: String,
    /// Batch proving time, seconds each (median).
    pub batch_prove_s: f64,
    /// `log2` rows of every epoch circuit.
    pub k: u32,
    /// Per epoch circuit.
    pub epochs: Vec<EpochFigures>,
}

impl AggregateArgs {
    /// Checks the options: the sizes N (sorted, distinct) and the batch
    /// proofs' chain.
    pub fn validate(&self) -> Result<(Vec<usize>, ChainConfig), String> {
        let mut ns = self.n.clone();
        ns.sort_unstable();
        ns.dedup();
        if ns.is_empty() || ns[0] < 2 || ns[ns.len() - 1] > 16 {
            return Err("--n takes sizes between 2 and 16".into());
        }
        let cfg = examples::chain_with(self.capacity, self.depth);
        cfg.validate().map_err(|e| format!("--capacity/--depth: {e}"))?;
        Ok((ns, cfg))
    }
}

impl AggregateReport {
    /// Keygen and proving time against N, one line per level and phase.
    pub fn plot(&self) -> Plot {
        let mut series: Vec<Series> = vec![];
        for e in &self.epochs {
            for (phase, t) in [("keygen", e.keygen_s), ("prove", e.prove_s)] {
                let label = match e.wrapper_k {
                    Some(_) => format!("wrapper {phase}"),
                    None => format!("level {} {phase}", e.level),
                };
                let point = Point { x: e.n as f64, y: t, lo: t, hi: t };
                match series.iter_mut().find(|s| s.label == label) {
                    Some(s) => s.points.push(point),
                    None => series.push(Series { label, points: vec![point] }),
                }
            }
        }
        Plot {
            title: format!("epoch circuits (k = {}, batches of shape {})", self.k, self.batch_shape),
            x_label: "proofs per epoch (N)".into(),
            y_label: "seconds".into(),
            series,
        }
    }
}

fn peak_reset() {
    // "5" resets the peak RSS (VmHWM) on Linux; elsewhere peaks are cumulative
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

struct Ctx<'a> {
    args: &'a AggregateArgs,
    cfg: ChainConfig,
    prover: Prover,
    rng: ChaCha20Rng,
    progress: &'a Progress,
}

fn err(e: statesync_prover::ProverError) -> String {
    e.to_string()
}

/// Keygen, prove, verify (and with `--evm`, deploy and call the verifier
/// when `kind` is the EVM transcript) one epoch circuit. Keys are made once
/// per process (the key cache is a temporary directory).
fn measure(
    ctx: &mut Ctx<'_>,
    spec: EpochSpec,
    inner: &[impl Aggregated],
    kind: TranscriptKind,
    batches: usize,
) -> Result<(EpochProof, EpochFigures), String> {
    let what = match spec.wrap {
        Some(k) => format!("wrapper k={k} over level {} N={}", spec.level - 1, spec.n),
        None => format!("level {} N={}", spec.level, spec.n),
    };
    let task = ctx.progress.task(what.clone(), None);
    task.step("keygen");
    peak_reset();
    let t = Instant::now();
    let keyed = ctx.prover.epoch_keys(&ctx.cfg, &spec).map_err(err)?;
    let (params, ek) = (keyed.params, keyed.keys);
    let keygen_s = t.elapsed().as_secs_f64();
    let keygen_peak_mib = peak_mib();
    task.step("prove");
    peak_reset();
    let t = Instant::now();
    let proof = ctx.prover.prove_epoch(&ctx.cfg, &spec, inner, kind, &mut ctx.rng).map_err(err)?;
    let prove_s = t.elapsed().as_secs_f64();
    let prove_peak_mib = peak_mib();
    let t = Instant::now();
    if !ctx.prover.verify_epoch(&ctx.cfg, &spec, &proof).map_err(err)? {
        return Err(format!("the {what} epoch proof did not verify"));
    }
    let verify_ms = t.elapsed().as_secs_f64() * 1000.0;
    let (mut evm_gas, mut verifier_bytes, mut state_sync_gas) = (None, None, None);
    if ctx.args.evm && kind == TranscriptKind::Evm {
        task.step("EVM verifier");
        let code =
            compile_solidity(&solcjs().map_err(err)?, &verifier_solidity(&params, ek.pk.get_vk())).map_err(err)?;
        // an epoch's verifier is over EIP-170's limit: measured without it;
        // the wrapper's is meant for Ethereum: measured with it
        let mut evm = if spec.wrap.is_some() { Evm::new() } else { Evm::without_size_limits() };
        let verifier = evm.deploy(code).map_err(err)?;
        verifier_bytes = Some(evm.code_size(verifier));
        let data = calldata(&proof.instances, &proof.proof);
        let out = evm.call(verifier, data.clone()).map_err(err)?;
        if !out.success {
            return Err(format!("the {what} verifier contract rejected a valid proof"));
        }
        evm_gas = Some(out.gas_used);
        if spec.wrap.is_some() {
            let public = proof.public().public;
            let mut code = compile_solidity(&solcjs().map_err(err)?, STATE_SYNC_SOL).map_err(err)?;
            code.extend(state_sync_constructor_args(
                verifier.into_array(),
                public.chain_tag,
                public.old_root,
                public.seq,
            ));
            let sync = evm.deploy(code).map_err(err)?;
            let out = evm.call(sync, submit_calldata(&data)).map_err(err)?;
            if !out.success {
                return Err(format!("StateSync rejected the {what} proof: {out:?}"));
            }
            state_sync_gas = Some(out.gas_used);
        }
    }
    let figures = EpochFigures {
        level: spec.level,
        wrapper_k: spec.wrap,
        n: spec.n,
        batches,
        advice_columns: ek.config.num_advice,
        lookup_columns: ek.config.num_lookup_advice,
        keygen_s,
        keygen_peak_mib,
        prove_s,
        prove_peak_mib,
        verify_ms,
        proof_bytes: proof.proof.len(),
        evm_gas,
        verifier_bytes,
        state_sync_gas,
    };
    Ok((proof, figures))
}

/// Runs the measurements.
pub fn run(args: &AggregateArgs, progress: &Progress) -> Result<AggregateReport, String> {
    let (ns, cfg) = args.validate()?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let hal = hal::select(args.backend).map_err(err)?;
    let prover = crate::compare::dev_prover(&args.data_dir, &dir.path().join("keys"), hal);
    let keys_task = progress.task("SRS and batch keys", None);
    prover.batch_keys(&cfg.shape).map_err(err)?;
    prover.params(EPOCH_K).map_err(err)?;
    let mut ctx = Ctx { args, cfg, prover, rng: ChaCha20Rng::seed_from_u64(7), progress };
    drop(keys_task);

    let smallest = ns[0];
    let needed = ns[ns.len() - 1].max(if args.levels == 2 { smallest * smallest } else { 0 });
    let cfg = ctx.cfg.clone();
    let mut gen = Generator::new(&cfg, 7);
    let mut state = cfg.genesis_state();
    let mut batches = vec![];
    let mut batch_times = vec![];
    let task = progress.task(format!("batch proofs, shape {}", cfg.shape.id()), Some(needed as u64));
    for seq in 0..needed as u64 {
        let batch = Batch {
            version: BATCH_VERSION,
            chain_id: cfg.chain_id.clone(),
            seq,
            transitions: gen.batch(cfg.shape.capacity),
        };
        let applied = apply_batch(&state, &cfg.chain_id, &batch).map_err(|e| e.to_string())?;
        let t = Instant::now();
        let (proof, _) =
            ctx.prover.prove_batch(&applied.witness, TranscriptKind::Poseidon, &mut ctx.rng).map_err(err)?;
        batch_times.push(t.elapsed().as_secs_f64());
        batches.push(proof);
        state = applied.state;
        task.inc();
    }
    drop(task);
    batch_times.sort_by(f64::total_cmp);

    // the top level is proven for the EVM, or for the wrapper above it
    let top_kind = if args.wrap { TranscriptKind::Poseidon } else { TranscriptKind::Evm };
    let mut epochs = vec![];
    for &n in &ns {
        let spec = EpochSpec::epoch(1, n, EPOCH_K);
        let (top_spec, top, batches) = if args.levels == 2 && n == smallest {
            // level-1 epochs for the level above: Poseidon transcript
            let mut inner = vec![];
            for i in 0..n {
                let (proof, figures) =
                    measure(&mut ctx, spec, &batches[i * n..(i + 1) * n], TranscriptKind::Poseidon, n)?;
                if i == 0 {
                    epochs.push(figures);
                }
                inner.push(proof);
            }
            let spec2 = EpochSpec::epoch(2, n, EPOCH_K);
            let (top, figures) = measure(&mut ctx, spec2, &inner, top_kind, n * n)?;
            epochs.push(figures);
            (spec2, top, n * n)
        } else {
            let (top, figures) = measure(&mut ctx, spec, &batches[..n], top_kind, n)?;
            epochs.push(figures);
            (spec, top, n)
        };
        if args.wrap {
            let wrapper = top_spec.wrapper(args.wrapper_k);
            let (_, figures) = measure(&mut ctx, wrapper, &[top], TranscriptKind::Evm, batches)?;
            epochs.push(figures);
        }
    }
    Ok(AggregateReport {
        schema: 2,
        batch_shape: cfg.shape.id(),
        batch_prove_s: batch_times[batch_times.len() / 2],
        k: EPOCH_K,
        epochs,
    })
}
