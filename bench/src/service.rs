//! `statesync-bench service`: drives a running (`--url`) or spawned
//! (`--spawn`) service with concurrent sequencers. A spawned service is the
//! single-node SQLite default (`--database sqlite`, `--workers` in-process
//! proving workers) or a cluster on PostgreSQL (`--database postgres`: an
//! API node that does not prove, and `--workers` `statesync worker`
//! processes), in a schema of its own that is dropped at the end.
//!
//! Phases: (1) overhead — the same kind of batch proven directly in this
//! process (A) and through the service, submit to proven (B), alternating
//! A B A B on an idle server, each pair giving a ratio; (2) accept path —
//! one sequencer per chain submits its batches as fast as allowed (or at
//! `--rate`), timing every submission; then every job is checked to exist
//! exactly once, and with `--wait` to be proven; with `--baseline` the same
//! accept path on the single-node SQLite default, in the same run; (3) with
//! `--scaling 1,2`: proving throughput of each number of worker processes
//! on a queue of `--scaling-jobs` accepted jobs (PostgreSQL); (4) with
//! `--finality-batches B`: time to finality on a service of its own with
//! automatic epochs (`--epoch-size`, `--epoch-levels`, `--epoch-max-wait`):
//! one sequencer submits B batches at `--finality-rate`, and each batch's
//! acceptance is followed to its proof, its level-1 epoch and the wrapper
//! whose calldata the base layer takes.

use std::{
    path::{Path, PathBuf},
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
    /// The spawned service's store: the single-node SQLite default, or
    /// PostgreSQL with separate worker processes.
    #[arg(long, value_enum, default_value = "sqlite")]
    pub database: Database,
    /// PostgreSQL for `--database postgres` (a schema of the run's own is
    /// created and dropped) [default: $STATESYNC_BENCH_POSTGRES, else the
    /// local server's database `test`].
    #[arg(long, env = "STATESYNC_BENCH_POSTGRES")]
    pub database_url: Option<String>,
    /// Proving workers of the spawned service: in-process loops on SQLite,
    /// `statesync worker` processes (CPU) on PostgreSQL; 0 serves the API only.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Also run the accept path on the single-node SQLite default (`serve`
    /// with its defaults) in the same run.
    #[arg(long)]
    pub baseline: bool,
    /// Proving throughput with each of these numbers of worker processes
    /// (PostgreSQL), e.g. `1,2`.
    #[arg(long, value_delimiter = ',')]
    pub scaling: Vec<usize>,
    /// Jobs queued for each `--scaling` point.
    #[arg(long, default_value_t = 8)]
    pub scaling_jobs: usize,
    /// SRS and key cache of the spawned processes, kept between runs
    /// [default: a temporary directory per run].
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Time to finality: batches one sequencer submits to a service of
    /// its own with automatic epochs (0 skips the phase).
    #[arg(long, default_value_t = 0)]
    pub finality_batches: usize,
    /// Its submissions per second.
    #[arg(long, default_value_t = 0.05)]
    pub finality_rate: f64,
    /// Its service's --epoch-size.
    #[arg(long, default_value_t = 2)]
    pub epoch_size: usize,
    /// Its service's --epoch-levels.
    #[arg(long, default_value_t = 1)]
    pub epoch_levels: u32,
    /// Its service's --epoch-max-wait, seconds.
    #[arg(long, default_value_t = 60)]
    pub epoch_max_wait: u64,
}

/// A spawned service's store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Database {
    /// One process, SQLite.
    Sqlite,
    /// An API node and worker processes on PostgreSQL.
    Postgres,
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
        if (self.baseline || !self.scaling.is_empty() || self.database == Database::Postgres) && !self.spawn {
            return Err("--baseline, --scaling and --database postgres spawn their services: add --spawn".into());
        }
        if !self.scaling.is_empty() && (self.scaling.contains(&0) || self.scaling_jobs == 0) {
            return Err("--scaling counts and --scaling-jobs must be positive".into());
        }
        if self.finality_batches > 0 && (!self.spawn || !positive(Some(self.finality_rate))) {
            return Err(
                "--finality-batches spawns its service (add --spawn) and needs a positive --finality-rate".into()
            );
        }
        Ok(())
    }
}

/// The report (`--json` prints it; schema version 2: `finality`).
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
    /// The spawned service's store (absent with `--url`).
    pub database: Option<Database>,
    /// Its proving workers.
    pub workers: usize,
    /// The accept path on the single-node SQLite default (`--baseline`).
    pub baseline: Option<AcceptFigures>,
    /// Proving throughput per number of worker processes (`--scaling`).
    pub scaling: Vec<ScalingPoint>,
    /// Time to finality (`--finality-batches`).
    pub finality: Option<FinalityFigures>,
}

/// Time to finality: per batch, seconds from its acceptance to each stage.
#[derive(Debug, Clone, Serialize)]
pub struct FinalityFigures {
    /// Batches followed.
    pub batches: usize,
    /// Submissions per second.
    pub rate: f64,
    /// The service's epoch settings.
    pub epoch_size: usize,
    /// Levels under the wrapper.
    pub epoch_levels: u32,
    /// Maximum wait, seconds.
    pub epoch_max_wait_s: u64,
    /// Wrappers proven.
    pub wrappers: usize,
    /// Acceptance to the batch's proof.
    pub to_proof_s: Option<Summary>,
    /// Acceptance to its level-1 epoch's proof.
    pub to_epoch_s: Option<Summary>,
    /// Acceptance to its wrapper's proof: the calldata is served.
    pub to_wrapper_s: Option<Summary>,
}

/// What an accept phase measured.
#[derive(Debug, Clone, Serialize)]
pub struct AcceptFigures {
    /// Accepted submissions.
    pub accepted: usize,
    /// Per second over the phase.
    pub accepted_per_sec: f64,
    /// Latency, milliseconds.
    pub accept_ms: Option<Summary>,
}

/// Proving throughput of some worker processes on a full queue.
#[derive(Debug, Clone, Serialize)]
pub struct ScalingPoint {
    /// Worker processes.
    pub workers: usize,
    /// Jobs proven.
    pub jobs: usize,
    /// From the workers' start to the last proof, seconds.
    pub seconds: f64,
    /// Jobs per second.
    pub proofs_per_sec: f64,
}

/// A spawned service: its processes (killed on drop), data and cache
/// directories, and with PostgreSQL the run's own schema (dropped by
/// [`Deployment::close`]).
struct Deployment {
    bin: PathBuf,
    procs: Vec<Child>,
    dir: tempfile::TempDir,
    cache: PathBuf,
    url: String,
    key: String,
    pg: Option<Pg>,
}

/// The run's PostgreSQL schema.
struct Pg {
    admin: sqlx::AnyPool,
    schema: String,
    url: String,
}

impl Drop for Deployment {
    fn drop(&mut self) {
        for p in &mut self.procs {
            let _ = p.kill();
            let _ = p.wait();
        }
    }
}

fn server_bin(args: &ServiceArgs) -> PathBuf {
    args.server_bin.clone().unwrap_or_else(|| {
        let me = std::env::current_exe().unwrap_or_default();
        me.with_file_name("statesync")
    })
}

/// Starts `bin` with `args` (stderr to `log`) and returns it with the URL it
/// prints after `marker`.
fn launch(bin: &Path, args: &[&str], cache: &Path, log: &Path, marker: &str) -> Result<(Child, String), String> {
    use std::io::{BufRead, BufReader};
    let log = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut child = Command::new(bin)
        .args(args)
        .env("STATESYNC_CACHE_DIR", cache)
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", bin.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some((_, u)) = line.split_once(marker) {
                    break u.to_string();
                }
            }
            _ => return Err(format!("{} {} exited before it was ready", bin.display(), args[0])),
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Ok((child, url))
}

impl Deployment {
    /// A service on `database` with `workers` proving workers.
    async fn start(
        args: &ServiceArgs,
        database: Database,
        workers: usize,
        extra: &[&str],
    ) -> Result<Deployment, String> {
        let bin = server_bin(args);
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let cache = args.cache_dir.clone().unwrap_or_else(|| dir.path().join("cache"));
        let pg = match database {
            Database::Sqlite => None,
            Database::Postgres => {
                let base =
                    args.database_url.clone().unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into());
                sqlx::any::install_default_drivers();
                let admin =
                    sqlx::AnyPool::connect(&base).await.map_err(|e| format!("connecting to PostgreSQL: {e}"))?;
                let schema = format!("bench_{}", std::process::id());
                sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"))
                    .execute(&admin)
                    .await
                    .map_err(|e| e.to_string())?;
                let sep = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
                Some(Pg { admin, schema, url })
            }
        };
        let data = dir.path().to_str().ok_or("a temporary directory that is not UTF-8")?.to_string();
        let store: Vec<&str> = match &pg {
            Some(pg) => vec!["--database-url", &pg.url],
            None => vec![],
        };
        let out =
            Command::new(&bin).args(["keys", "add", "--name", "bench", "--data-dir", &data]).args(&store).output();
        let out = out.map_err(|e| format!("running {}: {e}", bin.display()))?;
        let key: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("keys add: {e}"))?;
        let key = key["key"].as_str().ok_or("keys add printed no key")?.to_string();
        let in_process = if pg.is_some() { 0 } else { workers }.to_string();
        let serve = [
            &["serve", "--bind", "127.0.0.1:0", "--rate-limit", "1000000", "--rate-burst", "1000000"][..],
            &["--data-dir", &data, "--workers", &in_process],
            &store,
            extra,
        ]
        .concat();
        let (api, url) = launch(&bin, &serve, &cache, &dir.path().join("serve.log"), "statesync listening on ")?;
        let mut d = Deployment { bin, procs: vec![api], dir, cache, url, key, pg };
        if d.pg.is_some() {
            d.add_workers(workers)?;
        }
        Ok(d)
    }

    /// Starts `n` more `statesync worker` processes (PostgreSQL).
    fn add_workers(&mut self, n: usize) -> Result<(), String> {
        let url = self.pg.as_ref().ok_or("worker processes need PostgreSQL")?.url.clone();
        for _ in 0..n {
            let i = self.procs.len();
            let args = ["worker", "--bind", "127.0.0.1:0", "--backend", "cpu", "--database-url", &url];
            let log = self.dir.path().join(format!("worker-{i}.log"));
            let (child, _) = launch(&self.bin, &args, &self.cache, &log, "operations port ")?;
            self.procs.push(child);
        }
        Ok(())
    }

    /// Stops the processes and drops the run's schema.
    async fn close(mut self) {
        for p in &mut self.procs {
            let _ = p.kill();
            let _ = p.wait();
        }
        if let Some(pg) = self.pg.take() {
            let _ = sqlx::raw_sql(&format!("DROP SCHEMA {} CASCADE", pg.schema)).execute(&pg.admin).await;
        }
    }
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
    let deployment = match args.spawn {
        true => Some(Deployment::start(args, args.database, args.workers, &[]).await?),
        false => None,
    };
    let (url, key, cache_dir) = match &deployment {
        Some(d) => (d.url.clone(), d.key.clone(), Some(d.cache.clone())),
        None => (args.url.clone().unwrap_or_default(), args.api_key.clone().unwrap_or_default(), args.data_dir.clone()),
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
        // the service's caches, on the backend it picks with its defaults
        let cache = cache_dir.clone().unwrap_or_else(std::env::temp_dir);
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
    let (figures, ids) = accept_phase(args, &client, &http, &url, &key, &format!("{nonce}"), progress).await?;

    // every job exactly once
    let mut lost_or_duplicated = 0;
    let mut all_ids = std::collections::HashSet::new();
    for (chain, jobs) in &ids {
        let listed = job_ids(&http, &url, &key, chain).await?;
        lost_or_duplicated += listed.len().abs_diff(jobs.len());
        lost_or_duplicated += jobs.iter().filter(|j| !listed.contains(j) || !all_ids.insert((*j).clone())).count();
    }

    let mut submit_to_proof = vec![];
    if args.wait {
        let task = progress.task("waiting for the proofs", Some(figures.accepted as u64));
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
    if let Some(d) = deployment {
        d.close().await;
    }

    // the single-node SQLite default, same workload
    let baseline = match args.baseline {
        true => {
            let d = Deployment::start(args, Database::Sqlite, 1, &[]).await?;
            let client = Client::new(&d.url, Some(d.key.clone()));
            let (figures, _) =
                accept_phase(args, &client, &http, &d.url, &d.key, &format!("{nonce}-baseline"), progress).await?;
            d.close().await;
            Some(figures)
        }
        false => None,
    };

    let mut scaling = vec![];
    for &n in &args.scaling {
        scaling.push(scaling_point(args, n, &http, progress).await?);
    }

    let finality = match args.finality_batches {
        0 => None,
        _ => Some(finality(args, &http, progress).await?),
    };

    Ok(ServiceReport {
        schema: 2,
        chains: args.chains,
        batch_size: args.batch_size,
        depth: args.depth,
        accepted: figures.accepted,
        accepted_per_sec: figures.accepted_per_sec,
        accept_ms: figures.accept_ms,
        submit_to_proof_s: summarize(&submit_to_proof),
        lost_or_duplicated,
        direct_prove_s: summarize(&direct),
        service_prove_s: summarize(&service),
        overhead_ratio: summarize(&ratios),
        database: args.spawn.then_some(args.database),
        workers: args.workers,
        baseline,
        scaling,
        finality,
    })
}

/// Time to finality on a single-node SQLite service of its own with
/// automatic epochs: `--finality-batches` batches of one chain at
/// `--finality-rate`, each followed from its acceptance to its proof, its
/// level-1 epoch's and its wrapper's (every batch ends under a wrapper:
/// the last ones by `--epoch-max-wait`).
async fn finality(args: &ServiceArgs, http: &reqwest::Client, progress: &Progress) -> Result<FinalityFigures, String> {
    let (size, levels, wait) = (args.epoch_size.to_string(), args.epoch_levels.to_string(), args.epoch_max_wait);
    let wait_s = wait.to_string();
    let extra = ["--auto-epochs", "--epoch-size", &size, "--epoch-levels", &levels, "--epoch-max-wait", &wait_s];
    let d = Deployment::start(args, Database::Sqlite, 1, &extra).await?;
    let client = Client::new(&d.url, Some(d.key.clone()));
    // One chain id for every run (each deployment has a database of its own):
    // epoch keys are made per chain tag, so a run with the `--cache-dir` of
    // an earlier one proves with its keys instead of making them again.
    let cfg = chain_config("finality", args);
    create_chain(http, &d.url, &d.key, &cfg).await?;
    let task = progress.task("finality: submitting", Some(args.finality_batches as u64));
    let start = tokio::time::Instant::now();
    let mut jobs = vec![];
    for (i, b) in batches(&cfg, args.finality_batches, 11).iter().enumerate() {
        tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / args.finality_rate)).await;
        jobs.push(client.submit(&cfg.chain_id, b, None).await.map_err(|e| e.to_string())?.job_id);
        task.inc();
    }
    drop(task);
    let last_seq = args.finality_batches as u64 - 1;
    let task = progress.task("finality: waiting for the wrappers", None);
    let epochs = loop {
        // every epoch of the chain, by pages of 100 (each page from the last
        // one's last first seq: several epochs share one)
        let mut epochs: Vec<serde_json::Value> = vec![];
        loop {
            let from = epochs.last().and_then(|e| e["first_seq"].as_u64()).unwrap_or(0);
            let url = format!("{}/v1/chains/{}/epochs?limit=100&from_seq={from}", d.url, cfg.chain_id);
            let r = http.get(url).bearer_auth(&d.key).send().await.map_err(|e| e.to_string())?;
            let page: Vec<serde_json::Value> = r.json().await.map_err(|e| e.to_string())?;
            let full = page.len() == 100;
            let new: Vec<_> = page.into_iter().filter(|e| !epochs.iter().any(|s| s["id"] == e["id"])).collect();
            if new.is_empty() {
                break;
            }
            epochs.extend(new);
            if !full {
                break;
            }
        }
        if let Some(bad) = epochs.iter().find(|e| e["state"] == "failed") {
            return Err(format!("epoch {} failed: {}", bad["id"], bad["error"]));
        }
        let wrapped = epochs
            .iter()
            .any(|e| e["wrapper"] == true && e["state"] == "done" && e["last_seq"].as_u64() == Some(last_seq));
        if wrapped {
            break epochs;
        }
        task.step(&format!("{} epochs", epochs.len()));
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    drop(task);
    let done_over = |seq: u64, wrapper: bool| {
        epochs.iter().find_map(|e| {
            let level_ok = wrapper || e["level"] == 1;
            let covers = e["first_seq"].as_u64()? <= seq && seq <= e["last_seq"].as_u64()?;
            (e["wrapper"] == wrapper && level_ok && covers && e["state"] == "done")
                .then(|| e["finished_at"].as_i64())
                .flatten()
        })
    };
    let (mut to_proof, mut to_epoch, mut to_wrapper) = (vec![], vec![], vec![]);
    for (seq, id) in jobs.iter().enumerate() {
        let job = client.wait(id, |_| {}).await.map_err(|e| e.to_string())?;
        let since = |at: Option<i64>| at.map(|t| (t - job.created_at) as f64 / 1000.0);
        to_proof.extend(since(job.finished_at));
        to_epoch.extend(since(done_over(seq as u64, false)));
        to_wrapper.extend(since(done_over(seq as u64, true)));
    }
    d.close().await;
    Ok(FinalityFigures {
        batches: jobs.len(),
        rate: args.finality_rate,
        epoch_size: args.epoch_size,
        epoch_levels: args.epoch_levels,
        epoch_max_wait_s: wait,
        wrappers: epochs.iter().filter(|e| e["wrapper"] == true).count(),
        to_proof_s: summarize(&to_proof),
        to_epoch_s: summarize(&to_epoch),
        to_wrapper_s: summarize(&to_wrapper),
    })
}

/// The ids of a chain's jobs.
async fn job_ids(http: &reqwest::Client, url: &str, key: &str, chain: &str) -> Result<Vec<String>, String> {
    let page: serde_json::Value = http
        .get(format!("{url}/v1/jobs?chain={chain}&limit=500"))
        .bearer_auth(key)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    Ok(page["jobs"]
        .as_array()
        .map(|a| a.iter().filter_map(|j| j["id"].as_str().map(String::from)).collect())
        .unwrap_or_default())
}

/// One sequencer per chain (`--chains` fresh chains named after `tag`)
/// submits its batches as fast as accepted (or at `--rate`); returns the
/// figures and each chain's job ids.
async fn accept_phase(
    args: &ServiceArgs,
    client: &Client,
    http: &reqwest::Client,
    url: &str,
    key: &str,
    tag: &str,
    progress: &Progress,
) -> Result<(AcceptFigures, Vec<(String, Vec<String>)>), String> {
    let mut chains = vec![];
    let task = progress.task(format!("generating {} batches per chain", args.batches), Some(args.chains as u64));
    for c in 0..args.chains {
        let cfg = chain_config(&format!("bench-{tag}-{c}"), args);
        create_chain(http, url, key, &cfg).await?;
        let bs = batches(&cfg, args.batches, c as u64);
        chains.push((cfg, bs));
        task.inc();
    }
    drop(task);
    let task = std::sync::Arc::new(progress.task("submitting", Some((args.chains * args.batches) as u64)));
    let started = Instant::now();
    let deadline = args.duration.map(|d| tokio::time::Instant::now() + Duration::from_secs_f64(d));
    let mut tasks = vec![];
    for (cfg, bs) in chains {
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
    let figures =
        AcceptFigures { accepted: lat.len(), accepted_per_sec: lat.len() as f64 / elapsed, accept_ms: summarize(&lat) };
    Ok((figures, ids))
}

/// Proving throughput of `n` worker processes: `--scaling-jobs` jobs are
/// accepted by an API node first (keys made beforehand by one warm-up job,
/// so no point pays for key generation), then `n` workers start and prove
/// them all.
async fn scaling_point(
    args: &ServiceArgs,
    n: usize,
    http: &reqwest::Client,
    progress: &Progress,
) -> Result<ScalingPoint, String> {
    let mut d = Deployment::start(args, Database::Postgres, 0, &[]).await?;
    let client = Client::new(&d.url, Some(d.key.clone()));
    let per_chain = args.scaling_jobs.div_ceil(args.chains);
    let mut jobs = vec![];
    let mut warm_up = None;
    for c in 0..args.chains {
        let cfg = chain_config(&format!("scaling-{n}-{c}"), args);
        create_chain(http, &d.url, &d.key, &cfg).await?;
        let count = if c == 0 { per_chain + 1 } else { per_chain };
        for (i, b) in batches(&cfg, count, 7 + c as u64).iter().enumerate() {
            let id = client.submit(&cfg.chain_id, b, None).await.map_err(|e| e.to_string())?.job_id;
            match (c, i) {
                (0, 0) => warm_up = Some(id),
                _ if jobs.len() < args.scaling_jobs => jobs.push(id),
                _ => {}
            }
        }
    }
    let task = progress.task(format!("scaling: {n} worker processes"), Some(jobs.len() as u64 + 1));
    // the warm-up job (its chain's first) makes or loads the keys, alone
    d.add_workers(1)?;
    let warm_up = warm_up.ok_or("no warm-up job")?;
    client.wait(&warm_up, |_| {}).await.map_err(|e| e.to_string())?;
    task.inc();
    let started = statesync_api::store::now_ms();
    d.add_workers(n - 1)?;
    let mut last = started;
    for id in &jobs {
        let job = client.wait(id, |_| {}).await.map_err(|e| e.to_string())?;
        if job.state != statesync_api::store::JobState::Done {
            return Err(format!("scaling job {id} ended {:?}", job.state));
        }
        last = last.max(job.finished_at.unwrap_or(last));
        task.inc();
    }
    d.close().await;
    let seconds = (last - started) as f64 / 1000.0;
    Ok(ScalingPoint { workers: n, jobs: jobs.len(), seconds, proofs_per_sec: jobs.len() as f64 / seconds })
}
