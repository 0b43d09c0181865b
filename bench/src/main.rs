//! `statesync-bench`: benchmark CLI. Each figure is measured against its
//! baseline in the same run.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use statesync_bench::{aggregate, compare, envinfo, kernels, service, stats::Summary};

#[derive(Debug, Parser)]
#[command(name = "statesync-bench", version, about)]
struct Cli {
    /// Print the report as JSON (stable schema).
    #[arg(long, global = true)]
    json: bool,
    /// Print the report as a markdown table.
    #[arg(long, global = true)]
    markdown: bool,
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
    /// Inverse NTT: the Hal's against halo2-axiom's EvaluationDomain.
    Ntt(compare::SizeArgs),
}

fn print_compare(name: &str, report: Result<compare::CompareReport, String>, json: bool, md: bool) -> ExitCode {
    let report = match report {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let env = envinfo::collect();
    if json {
        println!("{}", serde_json::json!({ "benchmark": name, "environment": env, "report": report }));
        return ExitCode::SUCCESS;
    }
    if md {
        println!("| figure | n | min | p50 | p95 | p99 | max |\n|---|---|---|---|---|---|---|");
    }
    for r in &report.rows {
        println!("{}", row(&format!("{}: baseline", r.name), "s", &r.baseline_s, md));
        println!("{}", row(&format!("{}: ours", r.name), "s", &r.ours_s, md));
        println!("{}", row(&format!("{}: ratio", r.name), "x", &r.ratio, md));
    }
    println!(
        "\nours: {}; ratio = baseline time / ours (> 1: ours faster); {} ({} threads), {} build, commit {}",
        report.backend,
        env.cpu,
        env.threads,
        env.profile,
        env.git_commit.as_deref().unwrap_or("?")
    );
    ExitCode::SUCCESS
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(1)
}

fn row(name: &str, unit: &str, s: &Option<Summary>, md: bool) -> String {
    match s {
        None => format!("{name:<34} -"),
        Some(s) if md => format!(
            "| {name} ({unit}) | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
            s.n, s.min, s.p50, s.p95, s.p99, s.max
        ),
        Some(s) => format!(
            "{name:<34} n={:<4} min={:.3} p50={:.3} p95={:.3} p99={:.3} max={:.3} {unit}",
            s.n, s.min, s.p50, s.p95, s.p99, s.max
        ),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = cli.json || cli.markdown;
    let progress = move |m: &str| {
        if !quiet {
            eprintln!("... {m}");
        }
    };
    match cli.command {
        Cmd::Prove(args) => print_compare("prove", compare::prove(&args, &progress), cli.json, cli.markdown),
        Cmd::Msm(args) => print_compare("msm", compare::msm(&args, &progress), cli.json, cli.markdown),
        Cmd::Ntt(args) => print_compare("ntt", compare::ntt(&args, &progress), cli.json, cli.markdown),
        Cmd::Kernels(args) => {
            progress("compiling every kernel module for sm_90 (nvcc, ptxas -v, cuobjdump)");
            let report = match kernels::run_report() {
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
            let report = match aggregate::run(&args, &progress) {
                Ok(r) => r,
                Err(e) => return fail(e),
            };
            let env = envinfo::collect();
            if cli.json {
                println!("{}", serde_json::json!({ "benchmark": "aggregate", "environment": env, "report": report }));
                return ExitCode::SUCCESS;
            }
            println!(
                "| level | N | batches | columns (advice+lookup) | keygen s | keygen peak MiB | prove s | prove peak MiB | verify ms | proof B | EVM gas | verifier B |\n|---|---|---|---|---|---|---|---|---|---|---|---|"
            );
            for e in &report.epochs {
                let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
                println!(
                    "| {} | {} | {} | {}+{} | {:.1} | {:.0} | {:.1} | {:.0} | {:.1} | {} | {} | {} |",
                    e.level,
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
                    opt(e.verifier_bytes.map(|b| b as u64))
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
            let report = match rt.block_on(service::run(&args, &progress)) {
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
                println!(
                    "\n{} submissions accepted ({:.1}/s) on {} chains of {} transitions per batch, depth {}; lost or duplicated: {}",
                    report.accepted, report.accepted_per_sec, report.chains, report.batch_size, report.depth, report.lost_or_duplicated
                );
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
