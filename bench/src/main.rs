//! `statesync-bench`: benchmark CLI. Each figure is measured against its
//! baseline in the same run.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use statesync_bench::{
    aggregate, compare, envinfo, gpucheck, kernels, plot::significant as sig, progress::Progress, service,
    stats::Summary,
};

#[derive(Debug, Parser)]
#[command(name = "statesync-bench", version, about)]
struct Cli {
    /// Print the report as JSON (stable schema).
    #[arg(long, global = true)]
    json: bool,
    /// Print the report as a markdown table.
    #[arg(long, global = true, conflicts_with = "json")]
    markdown: bool,
    /// Also draw time against size as an SVG chart (`msm`, `ntt`, `prove`,
    /// `aggregate`): medians with min-max bars, log-scale time.
    #[arg(long, global = true, value_name = "FILE.svg")]
    plot: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Drive a running or spawned server with concurrent sequencers.
    Service(service::ServiceArgs),
    /// Epoch circuits: keygen, proving, verification, peak memory, EVM gas.
    Aggregate(aggregate::AggregateArgs),
    /// Kernel resource report: registers, shared memory, spills (ptxas, sm_90)
    /// and the multiply instructions of one Fr multiplication (SASS).
    Kernels(kernels::KernelsArgs),
    /// A batch proof: our prover on its Hal against halo2-axiom's create_proof.
    Prove(compare::ProveArgs),
    /// MSM on the SRS: the Hal's commitment against halo2curves' best_multiexp.
    Msm(compare::SizeArgs),
    /// Forward, inverse and coset NTTs: the Hal's against halo2-axiom's.
    Ntt(compare::SizeArgs),
    /// On a GPU host: the kernel checks on the GPU, a DualHal batch proof,
    /// msm/ntt/prove on cpu and cuda, NVML telemetry. Exit 2 without a GPU.
    GpuCheck(gpucheck::GpuCheckArgs),
}

fn print_compare(name: &str, report: Result<compare::CompareReport, String>, cli: &Cli) -> ExitCode {
    let report = match report {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    if let Some(path) = &cli.plot {
        if let Err(e) = report.plot(&format!("statesync-bench {name}: time against size")).write_svg(path) {
            return fail(format!("--plot: {e}"));
        }
    }
    let env = envinfo::collect();
    if cli.json {
        println!("{}", serde_json::json!({ "benchmark": name, "environment": env, "report": report }));
        return ExitCode::SUCCESS;
    }
    print_rows(&report, cli.markdown);
    println!(
        "\nours: {}; ratio = baseline time / ours (> 1: ours faster); {} ({} threads), {} build, commit {}",
        report.hals.join(", "),
        env.cpu,
        env.threads,
        env.profile,
        env.git_commit.as_deref().unwrap_or("?")
    );
    ExitCode::SUCCESS
}

/// The rows and per-shape figures of a comparison, as text or markdown.
fn print_rows(report: &compare::CompareReport, md: bool) {
    if md {
        println!("| figure | n | min | p50 | p95 | p99 | max |\n|---|---|---|---|---|---|---|");
    }
    for r in &report.rows {
        let name = format!("{} [{}]", r.name, r.backend);
        println!("{}", row(&format!("{name}: baseline"), "s", &r.baseline_s, md));
        println!("{}", row(&format!("{name}: ours"), "s", &r.ours_s, md));
        println!("{}", row(&format!("{name}: ratio"), "x", &r.ratio, md));
    }
    for s in &report.shapes {
        println!(
            "{}",
            row(&format!("witness generation {} ({} transitions)", s.shape, s.transitions), "s", &s.witness_s, md)
        );
    }
    if !report.shapes.is_empty() {
        println!();
    }
    for s in &report.shapes {
        println!("proof size, shape {}: ours {} B, halo2-axiom {} B", s.shape, s.proof_bytes, s.baseline_proof_bytes);
        for t in &s.device_traffic {
            let mib = |b: u64| b as f64 / 1048576.0;
            println!(
                "device traffic of one proof, shape {} [{}]: {} launches, {:.1} MiB to the device, {:.1} MiB back",
                s.shape,
                t.backend,
                t.total.launches,
                mib(t.total.host_to_device_bytes),
                mib(t.total.device_to_host_bytes)
            );
        }
    }
}

/// `gpu-check`'s report as text or markdown.
fn print_gpu_check(r: &gpucheck::GpuCheckReport, md: bool) {
    let gib = |b: usize| b as f64 / f64::from(1u32 << 30);
    println!("GPU 0: {}, {:.1} GiB", r.device, r.memory_total_bytes.map_or(0.0, gib));
    for m in r.modules.result.iter().flatten() {
        let over = if m.passed_over.is_empty() {
            String::new()
        } else {
            format!(" (passed over: {})", m.passed_over.join("; "))
        };
        println!("module {}: {}{over}", m.module, m.from);
    }
    println!("\n| phase | seconds | result |\n|---|---|---|");
    for (name, seconds, error) in r.phases() {
        println!("| {name} | {seconds:.1} | {} |", error.map_or("passed".to_string(), |e| format!("FAILED: {e}")));
    }
    if let Some(d) = &r.dual_proof.result {
        println!(
            "\nDualHal proof, shape {} (k = {}, {} transitions): {} operations compared, {} B, identical {}, verified {}; CPU {:.2} s, dual {:.2} s",
            d.shape, d.k, d.transitions, d.operations_compared, d.proof_bytes, d.identical, d.verified, d.cpu_prove_s, d.dual_prove_s
        );
    }
    for p in [&r.msm, &r.ntt, &r.prove] {
        if let Some(report) = &p.result {
            println!("\n{}:", p.name);
            print_rows(report, md);
        }
    }
    if let Some(e) = &r.nvml_error {
        println!("\nNVML: {e}");
    } else {
        println!("\n| phase (NVML, GPU 0) | samples | memory used max MiB | utilization mean % | max % | power mean W | max W |\n|---|---|---|---|---|---|---|");
        let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
        for t in &r.telemetry {
            println!(
                "| {} | {} | {} | {} | {} | {} | {} |",
                t.phase,
                t.samples,
                f(t.memory_used_max_mib),
                f(t.utilization_mean_percent),
                t.utilization_max_percent.map_or("-".to_string(), |v| v.to_string()),
                f(t.power_mean_w),
                f(t.power_max_w)
            );
        }
    }
    println!("\n{}", if r.passed { "gpu-check: passed" } else { "gpu-check: FAILED" });
}

/// A failure while running (exit 1); invalid options exit 2, as clap's.
fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(1)
}

fn row(name: &str, unit: &str, s: &Option<Summary>, md: bool) -> String {
    let Some(s) = s else { return format!("{name:<52} -") };
    let [min, p50, p95, p99, max] = [s.min, s.p50, s.p95, s.p99, s.max].map(|v| sig(v, 4));
    if md {
        format!("| {name} ({unit}) | {} | {min} | {p50} | {p95} | {p99} | {max} |", s.n)
    } else {
        format!("{name:<52} n={:<4} min={min} p50={p50} p95={p95} p99={p99} max={max} {unit}", s.n)
    }
}

fn main() -> ExitCode {
    if let Err(e) = statesync_circuits::check_cpu() {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    let cli = Cli::parse();
    let progress = Progress::new(cli.json || cli.markdown);
    let invalid = match &cli.command {
        Cmd::Kernels(_) | Cmd::Service(_) | Cmd::GpuCheck(_) if cli.plot.is_some() => Some(
            "--plot draws time against size: msm, ntt, prove and aggregate have it, kernels, service and gpu-check do not"
                .into(),
        ),
        Cmd::Prove(args) => args.validate().err(),
        Cmd::Aggregate(args) => args.validate().err(),
        Cmd::Service(args) => args.validate().err(),
        Cmd::GpuCheck(args) => args.validate().err(),
        _ => None,
    };
    if let Some(e) = invalid {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    match &cli.command {
        Cmd::Prove(args) => print_compare("prove", compare::prove(args, &progress), &cli),
        Cmd::Msm(args) => print_compare("msm", compare::msm(args, &progress), &cli),
        Cmd::Ntt(args) => print_compare("ntt", compare::ntt(args, &progress), &cli),
        Cmd::GpuCheck(args) => {
            let env = envinfo::collect();
            let (json, status) = match gpucheck::run(args, &progress) {
                Err(no) => {
                    eprintln!("gpu-check: no usable GPU on this host ({}); nothing was run", no.reason);
                    (serde_json::json!({ "benchmark": "gpu-check", "environment": env, "no_gpu": no }), 2)
                }
                Ok(report) => {
                    if !cli.json {
                        print_gpu_check(&report, cli.markdown);
                    }
                    let status = if report.passed { 0 } else { 1 };
                    (serde_json::json!({ "benchmark": "gpu-check", "environment": env, "report": report }), status)
                }
            };
            if cli.json {
                println!("{json}");
            }
            if let Some(path) = &args.json_file {
                if let Err(e) = std::fs::write(path, format!("{json}\n")) {
                    return fail(format!("--json-file {}: {e}", path.display()));
                }
            }
            ExitCode::from(status)
        }
        Cmd::Kernels(args) => {
            let task = progress.task("compiling every kernel module for sm_90 (nvcc, ptxas -v, cuobjdump)", None);
            let report = kernels::run_report();
            drop(task);
            let report = match report {
                Ok(r) => r,
                Err(e) => return fail(e),
            };
            if cli.json {
                let env = envinfo::collect();
                println!("{}", serde_json::json!({ "benchmark": "kernels", "environment": env, "report": report }));
            } else {
                println!("| module | kernel | registers | shared B | stack B | spill stores B | spill loads B |");
                println!("|---|---|---|---|---|---|---|");
                for k in &report.kernels {
                    println!(
                        "| {} | {} | {} | {} | {} | {} | {} |",
                        k.module,
                        k.kernel,
                        k.registers,
                        k.shared_bytes,
                        k.stack_bytes,
                        k.spill_store_bytes,
                        k.spill_load_bytes
                    );
                }
                let ops: Vec<String> = report.fr_mul_opcodes.iter().map(|(op, n)| format!("{op} {n}")).collect();
                println!(
                    "\nfr_mul ({}, {}): {} IMAD/IMUL-family instructions (goal <= {}), {} without the MOV/SHL/IADD forms: {}",
                    report.arch,
                    report.nvcc,
                    report.fr_mul_multiply_family,
                    kernels::MUL_GOAL,
                    report.fr_mul_multiplies,
                    ops.join(", ")
                );
            }
            if args.check && !report.goals_met() {
                let spills: Vec<&str> = report.hot_spills().iter().map(|k| k.kernel.as_str()).collect();
                return fail(format!(
                    "goals not met: spilling MSM/NTT kernels {spills:?}, {} multiply instructions per Fr multiplication",
                    report.fr_mul_multiply_family
                ));
            }
            ExitCode::SUCCESS
        }
        Cmd::Aggregate(args) => {
            let report = match aggregate::run(args, &progress) {
                Ok(r) => r,
                Err(e) => return fail(e),
            };
            if let Some(path) = &cli.plot {
                if let Err(e) = report.plot().write_svg(path) {
                    return fail(format!("--plot: {e}"));
                }
            }
            let env = envinfo::collect();
            if cli.json {
                println!("{}", serde_json::json!({ "benchmark": "aggregate", "environment": env, "report": report }));
                return ExitCode::SUCCESS;
            }
            println!(
                "| level | N | batches | columns (advice+lookup) | keygen s | keygen peak MiB | prove s | prove peak MiB | verify ms | proof B | EVM gas | verifier B | StateSync.submit gas |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|"
            );
            for e in &report.epochs {
                let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
                let level = match e.wrapper_k {
                    Some(k) => format!("wrapper (k = {k}) of {}", e.level - 1),
                    None => e.level.to_string(),
                };
                println!(
                    "| {} | {} | {} | {}+{} | {:.1} | {:.0} | {:.1} | {:.0} | {:.1} | {} | {} | {} | {} |",
                    level,
                    e.n,
                    e.batches,
                    e.advice_columns,
                    e.lookup_columns,
                    e.keygen_s,
                    e.keygen_peak_mib,
                    e.prove_s,
                    e.prove_peak_mib,
                    e.verify_ms,
                    e.proof_bytes,
                    opt(e.evm_gas),
                    opt(e.verifier_bytes.map(|b| b as u64)),
                    opt(e.state_sync_gas)
                );
            }
            println!(
                "\nbatch proofs: shape {}, {:.1} s each (median); epoch circuits at k = {}; {} ({} threads), commit {}",
                report.batch_shape,
                report.batch_prove_s,
                report.k,
                env.cpu,
                env.threads,
                env.git_commit.as_deref().unwrap_or("?")
            );
            ExitCode::SUCCESS
        }
        Cmd::Service(args) => {
            let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => return fail(format!("tokio: {e}")),
            };
            let report = match rt.block_on(service::run(args, &progress)) {
                Ok(r) => r,
                Err(e) => return fail(e),
            };
            let env = envinfo::collect();
            if cli.json {
                println!("{}", serde_json::json!({ "benchmark": "service", "environment": env, "report": report }));
            } else {
                let md = cli.markdown;
                if md {
                    println!("| figure | n | min | p50 | p95 | p99 | max |\n|---|---|---|---|---|---|---|");
                }
                println!("{}", row("accept latency", "ms", &report.accept_ms, md));
                println!("{}", row("submit to proof", "s", &report.submit_to_proof_s, md));
                println!("{}", row("A: direct proving", "s", &report.direct_prove_s, md));
                println!("{}", row("B: service, submit to proven", "s", &report.service_prove_s, md));
                println!("{}", row("overhead (B - A) / A", "ratio", &report.overhead_ratio, md));
                if let Some(b) = &report.baseline {
                    println!("{}", row("baseline (single-node SQLite): accept latency", "ms", &b.accept_ms, md));
                }
                if let Some(f) = &report.finality {
                    println!("{}", row("finality: accept to proof", "s", &f.to_proof_s, md));
                    println!("{}", row("finality: accept to level-1 epoch", "s", &f.to_epoch_s, md));
                    println!("{}", row("finality: accept to wrapper calldata", "s", &f.to_wrapper_s, md));
                }
                let store = match report.database {
                    Some(service::Database::Postgres) => {
                        format!(", PostgreSQL with {} worker processes", report.workers)
                    }
                    Some(service::Database::Sqlite) => format!(", SQLite with {} in-process workers", report.workers),
                    None => String::new(),
                };
                println!(
                    "\n{} submissions accepted ({:.1}/s) on {} chains of {} transitions per batch, depth {}{store}; lost or duplicated: {}",
                    report.accepted, report.accepted_per_sec, report.chains, report.batch_size, report.depth, report.lost_or_duplicated
                );
                if let Some(b) = &report.baseline {
                    println!(
                        "baseline, the single-node SQLite default: {} accepted ({:.1}/s); ratio {:.2}",
                        b.accepted,
                        b.accepted_per_sec,
                        report.accepted_per_sec / b.accepted_per_sec
                    );
                }
                if let Some(f) = &report.finality {
                    println!(
                        "finality: {} batches at {}/s, --epoch-size {} --epoch-levels {} --epoch-max-wait {}: {} wrappers",
                        f.batches, f.rate, f.epoch_size, f.epoch_levels, f.epoch_max_wait_s, f.wrappers
                    );
                }
                for p in &report.scaling {
                    println!(
                        "proving throughput, {} worker process{}: {} jobs in {:.1} s, {:.3} proofs/s",
                        p.workers,
                        if p.workers == 1 { "" } else { "es" },
                        p.jobs,
                        p.seconds,
                        p.proofs_per_sec
                    );
                }
                println!(
                    "environment: {} ({} threads), {} build, commit {}",
                    env.cpu,
                    env.threads,
                    env.profile,
                    env.git_commit.as_deref().unwrap_or("?")
                );
            }
            if report.lost_or_duplicated > 0 {
                eprintln!("error: {} jobs lost or duplicated", report.lost_or_duplicated);
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
    }
}
