//! `statesync-bench service`: drives a running (`--url`) or spawned
//! (`--spawn`) server with concurrent sequencers.
//!
//! Phases: (1) overhead — the same kind of batch proven directly in this
//! process (A) and through the service, submit to proven (B), alternating
//! A B A B on an idle server, each pair giving a ratio; (2) accept path —
//! one sequencer per chain submits its batches as fast as allowed (or at
//! `--rate`), timing every submission; then every job is checked to exist
//! exactly once, and with `--wait` to be proven.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use clap::Args;
use serde::Serialize;
use statesync_api::{client::Client, demo::Generator};
use statesync_circuits::{
    config::ChainConfig,
    engine::apply_batch,
    examples,
    transition::{Batch, BATCH_VERSION},
};
use statesync_prover::{hal, snark::TranscriptKind};

use crate::{
    progress::Progress,
    stats::{summarize, Summary},
};

/// Options.
#[derive(Debug, Clone, Args)]
pub struct ServiceArgs {
    /// URL of a running server.
    #[arg(long, conflicts_with = "spawn")]
    pub url: Option<String>,
    /// Spawn a server (the `statesync` binary next to this one) on a loopback port.
    #[arg(long)]
    pub spawn: bool,
    /// API key for `--url`.
    #[arg(long, env = "STATESYNC_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// The server's data directory with `--url` (for the direct-proving baseline's keys).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Concurrent sequencers, one chain each.
    #[arg(long, default_value_t = 4)]
    pub chains: usize,
    /// Transitions per batch (the chains' capacity).
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Accounts tree depth of the chains.
    #[arg(long, default_value_t = 8)]
    pub depth: usize,
    /// Batches each sequencer submits.
    #[arg(long, default_value_t = 25)]
    pub batches: usize,
    /// Submissions per second per sequencer (default: as fast as accepted).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Stop submitting after this many seconds (each sequencer stops at its
    /// first batch past the deadline; `--batches` stays the upper bound).
    #[arg(long)]
    pub duration: Option<f64>,
    /// A/B pairs of the overhead comparison (0 skips it).
    #[arg(long, default_value_t = 2)]
    pub overhead_reps: usize,
    /// Wait until every submitted job is proven (proving is slow: minutes).
    #[arg(long)]
    pub wait: bool,
    /// Path of the `statesync` binary for `--spawn`.
    #[arg(long)]
    pub server_bin: Option<PathBuf>,
}

impl ServiceArgs {
    /// Checks the options.
    pub fn validate(&self) -> Result<(), String> {
        if !self.spawn && self.url.is_none() {
            return Err("give --url or --spawn".into());
        }
        if self.chains == 0 || self.batches == 0 {
            return Err("--chains and --batches must be positive".into());
        }
        let positive = |v: Option<f64>| v.is_none_or(|v| v.is_finite() && v > 0.0);
        if !positive(self.rate) || !positive(self.duration) {
            return Err("--rate and --duration must be positive".into());
        }
        Ok(())
    }
}

/// The report (`--json` prints it; schema version 1).
#[derive(Debug, Clone, Serialize)]
pub struct ServiceReport {
    /// Schema version of this report.
    pub schema: u32,
    /// Settings.
    pub chains: usize,
    /// Transitions per batch.
    pub batch_size: usize,
    /// Depth.
    pub depth: usize,
    /// Accepted submissions.
    pub accepted: usize,
    /// Accepted submissions per second over the accept phase.
    pub accepted_per_sec: f64,
    /// Accept latency, milliseconds.
    pub accept_ms: Option<Summary>,
    /// Submit-to-proof latency of the accept-phase jobs, seconds (with `--wait`).
    pub submit_to_proof_s: Option<Summary>,
    /// Jobs found missing or duplicated (must be 0).
    pub lost_or_duplicated: usize,
    /// Direct proving time (A), seconds.
    pub direct_prove_s: Option<Summary>,
    /// Service submit-to-proven time (B), seconds.
    pub service_prove_s: Option<Summary>,
    /// Per pair (B - A) / A.
    pub overhead_ratio: Option<Summary>,
}

struct Spawned {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn server_bin(args: &ServiceArgs) -> PathBuf {
    args.server_bin.clone().unwrap_or_else(|| {
        let me = std::env::current_exe().unwrap_or_default();
        me.with_file_name("statesync")
    })
}

fn spawn(args: &ServiceArgs) -> Result<(Spawned, String, String, PathBuf), String> {
    use std::io::{BufRead, BufReader};
    let bin = server_bin(args);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let data = dir.path().to_path_buf();
    let out = Command::new(&bin).args(["keys", "add", "--name", "bench", "--data-dir"]).arg(&data).output();
    let out = out.map_err(|e| format!("running {}: {e}", bin.display()))?;
    let key: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("keys add: {e}"))?;
    let key = key["key"].as_str().ok_or("keys add printed no key")?.to_string();
    let mut child = Command::new(&bin)
        .args(["serve", "--bind", "127.0.0.1:0", "--rate-limit", "1000000", "--rate-burst", "1000000", "--data-dir"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting {}: {e}", bin.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(u) = line.strip_prefix("statesync listening on ") {
                    break u.to_string();
                }
            }
            _ => return Err("the server exited before listening".into()),
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Ok((Spawned { child, _dir: dir }, url, key, data))
}

fn chain_config(id: &str, args: &ServiceArgs) -> ChainConfig {
    let mut cfg = examples::chain_with(args.batch_size, args.depth);
    cfg.chain_id = id.to_string();
    cfg
}

/// Batches that apply in order on `cfg`'s genesis.
fn batches(cfg: &ChainConfig, n: usize, seed: u64) -> Vec<Batch> {
    let mut gen = Generator::new(cfg, seed);
    (0..n as u64)
        .map(|seq| Batch {
            version: BATCH_VERSION,
            chain_id: cfg.chain_id.clone(),
            seq,
            transitions: gen.batch(cfg.shape.capacity),
        })
        .collect()
}

async fn create_chain(http: &reqwest::Client, url: &str, key: &str, cfg: &ChainConfig) -> Result<(), String> {
    let r = http.post(format!("{url}/v1/chains")).bearer_auth(key).json(cfg).send().await.map_err(|e| e.to_string())?;
    if r.status().as_u16() != 201 {
        return Err(format!(
            "creating chain {}: HTTP {} {}",
            cfg.chain_id,
            r.status(),
            r.text().await.unwrap_or_default()
        ));
    }
    Ok(())
}

/// Runs the benchmark.
pub async fn run(args: &ServiceArgs, progress: &Progress) -> Result<ServiceReport, String> {
    args.validate()?;
    let (_spawned, url, key, data_dir) = if args.spawn {
        let (s, u, k, d) = spawn(args)?;
        (Some(s), u, k, Some(d))
    } else {
        let url = args.url.clone().unwrap_or_default();
        (None, url, args.api_key.clone().unwrap_or_default(), args.data_dir.clone())
    };
    let http = reqwest::Client::new();
    let client = Client::new(&url, Some(key.clone()));
    let nonce = std::process::id();

    // (1) overhead: A = direct proof in this process, B = through the service
    let mut direct = vec![];
    let mut service = vec![];
    let mut ratios = vec![];
    if args.overhead_reps > 0 {
        let cfg = chain_config(&format!("bench-overhead-{nonce}"), args);
        create_chain(&http, &url, &key, &cfg).await?;
        let all = batches(&cfg, args.overhead_reps + 1, 99);
        // the service's caches (its data directory), on the backend it picks with its defaults
        let cache = data_dir.clone().unwrap_or_else(std::env::temp_dir);
        let prover =
            crate::compare::dev_prover(&cache, &cache.join("keys"), hal::select(None).map_err(|e| e.to_string())?);
        let mut state = cfg.genesis_state();
        let task = progress.task("overhead: direct vs service", Some(all.len() as u64));
        for (i, b) in all.iter().enumerate() {
            let applied = apply_batch(&state, &cfg.chain_id, b).map_err(|e| e.to_string())?;
            // B
            task.step(&format!("pair {i}: service"));
            let t = Instant::now();
            let acc = client.submit(&cfg.chain_id, b, None).await.map_err(|e| e.to_string())?;
            let job = client.wait(&acc.job_id, |_| {}).await.map_err(|e| e.to_string())?;
            let b_time = t.elapsed().as_secs_f64();
            if job.state != statesync_api::store::JobState::Done {
                return Err(format!("overhead job ended {:?}", job.state));
            }
            // A
            task.step(&format!("pair {i}: direct"));
            let a_time = tokio::task::block_in_place(|| -> Result<f64, String> {
                prover.batch_keys(&cfg.shape).map_err(|e| e.to_string())?;
                let t = Instant::now();
                prover
                    .prove_batch(&applied.witness, TranscriptKind::Poseidon, rand::rngs::OsRng)
                    .map_err(|e| e.to_string())?;
                Ok(t.elapsed().as_secs_f64())
            })?;
            state = applied.state;
            task.inc();
            if i == 0 {
                continue; // warm-up pair: keys and params are loaded
            }
            direct.push(a_time);
            service.push(b_time);
            ratios.push((b_time - a_time) / a_time);
        }
    }

    // (2) accept path
    let mut chains = vec![];
    let task = progress.task(format!("generating {} batches per chain", args.batches), Some(args.chains as u64));
    for c in 0..args.chains {
        let cfg = chain_config(&format!("bench-{nonce}-{c}"), args);
        create_chain(&http, &url, &key, &cfg).await?;
        let bs = batches(&cfg, args.batches, c as u64);
        chains.push((cfg, bs));
        task.inc();
    }
    drop(task);
    let task = std::sync::Arc::new(progress.task("submitting", Some((args.chains * args.batches) as u64)));
    let started = Instant::now();
    let deadline = args.duration.map(|d| tokio::time::Instant::now() + Duration::from_secs_f64(d));
    let mut tasks = vec![];
    for (cfg, bs) in chains.clone() {
        let client = client.clone();
        let rate = args.rate;
        let task = task.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = vec![];
            let mut ids = vec![];
            let start = tokio::time::Instant::now();
            for (i, b) in bs.iter().enumerate() {
                if let Some(r) = rate {
                    tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / r)).await;
                }
                if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                    break;
                }
                let t = Instant::now();
                let acc = client.submit(&cfg.chain_id, b, None).await.map_err(|e| e.to_string())?;
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
                ids.push(acc.job_id);
                task.inc();
            }
            Ok::<_, String>((cfg.chain_id.clone(), lat, ids))
        }));
    }
    let mut lat = vec![];
    let mut ids = vec![];
    for t in tasks {
        let (chain, l, i) = t.await.map_err(|e| e.to_string())??;
        lat.extend(l);
        ids.push((chain, i));
    }
    let elapsed = started.elapsed().as_secs_f64();
    drop(task);
    let accepted = lat.len();

    // every job exactly once
    let mut lost_or_duplicated = 0;
    let mut all_ids = std::collections::HashSet::new();
    for (chain, jobs) in &ids {
        let page: serde_json::Value = http
            .get(format!("{url}/v1/jobs?chain={chain}&limit=500"))
            .bearer_auth(&key)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let listed: Vec<String> = page["jobs"]
            .as_array()
            .map(|a| a.iter().filter_map(|j| j["id"].as_str().map(String::from)).collect())
            .unwrap_or_default();
        lost_or_duplicated += listed.len().abs_diff(jobs.len());
        lost_or_duplicated += jobs.iter().filter(|j| !listed.contains(j) || !all_ids.insert((*j).clone())).count();
    }

    let mut submit_to_proof = vec![];
    if args.wait {
        let task = progress.task("waiting for the proofs", Some(accepted as u64));
        for (_, jobs) in &ids {
            for id in jobs {
                task.step(id);
                let job = client.wait(id, |_| {}).await.map_err(|e| e.to_string())?;
                task.inc();
                if let Some(f) = job.finished_at {
                    submit_to_proof.push((f - job.created_at) as f64 / 1000.0);
                }
                if job.state != statesync_api::store::JobState::Done {
                    lost_or_duplicated += 1;
                }
            }
        }
    }

    Ok(ServiceReport {
        schema: 1,
        chains: args.chains,
        batch_size: args.batch_size,
        depth: args.depth,
        accepted,
        accepted_per_sec: accepted as f64 / elapsed,
        accept_ms: summarize(&lat),
        submit_to_proof_s: summarize(&submit_to_proof),
        lost_or_duplicated,
        direct_prove_s: summarize(&direct),
        service_prove_s: summarize(&service),
        overhead_ratio: summarize(&ratios),
    })
}
