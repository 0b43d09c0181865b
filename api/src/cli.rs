//! The `statesync` command line. Exit codes: 0 ok, 1 failure (including an
//! invalid proof), 2 invalid input (including a rejected batch).

use std::{
    fs,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
    time::Instant,
};

use clap::{Args, Parser, Subcommand};
use rand::rngs::OsRng;
use statesync_circuits::{config::ChainConfig, transition::Batch, witness::fr_hex};
use statesync_prover::{
    batch::ProofFile,
    epoch::{EpochSpec, EPOCH_K, WRAPPER_K},
    evm::{verifier_solidity, STATE_SYNC_SOL},
    hal::{self, Backend, CpuHal, Hal},
    snark::TranscriptKind,
    Prover,
};

use crate::{
    demo,
    statedir::{StateDir, StateDirError},
};

/// statesync: proofs of derivatives-protocol state transitions.
#[derive(Debug, Parser)]
#[command(name = "statesync", version, about)]
pub struct Cli {
    /// Command.
    #[command(subcommand)]
    pub command: Command,
    /// Log lines on standard error: `text` for people, `json` (one object a
    /// line, with the request's or job's fields) for log collectors. The
    /// level is `RUST_LOG`'s [default: info for `serve`, warn otherwise].
    #[arg(long, global = true, env = "STATESYNC_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Cli {
    /// Installs the log subscriber this command line asks for.
    pub fn init_logs(&self) {
        let default = if matches!(self.command, Command::Serve(_) | Command::Worker(_)) { "info" } else { "warn" };
        let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into());
        let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
        match self.log_format {
            LogFormat::Text => logs.init(),
            LogFormat::Json => logs.json().with_current_span(true).with_span_list(false).init(),
        }
    }
}

/// Where parameters and keys are cached.
#[derive(Debug, Clone, Args)]
pub struct ProverOpts {
    /// Data directory: the SRS and key caches live here unless --cache-dir says otherwise.
    #[arg(long, env = "STATESYNC_DATA_DIR", default_value = "./statesync-data")]
    pub data_dir: PathBuf,
    /// Directory of the SRS and key caches (`srs/`, `keys/`), e.g. one shared
    /// by several data directories [default: DATA_DIR].
    #[arg(long, env = "STATESYNC_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Ceremony KZG parameters (halo2 ParamsKZG file). Without it an INSECURE
    /// development SRS is generated and cached in the cache directory.
    #[arg(long, env = "STATESYNC_SRS")]
    pub srs: Option<PathBuf>,
    /// Prover backend: cpu, cuda (GPU 0) or emu (the kernels on the CPU SIMT
    /// emulator; slow, for testing) [default: cuda when a GPU is usable, else cpu].
    #[arg(long, env = "STATESYNC_BACKEND")]
    pub backend: Option<Backend>,
}

impl ProverOpts {
    fn cache_dir(&self) -> &Path {
        self.cache_dir.as_deref().unwrap_or(&self.data_dir)
    }
    /// The prover these options name: their SRS and caches, on their
    /// backend (announced on stderr).
    pub fn prover(&self) -> Result<Prover, Failure> {
        let hal = hal::select(self.backend)?;
        eprintln!("proving on {}", hal.name());
        Ok(self.on(hal))
    }
    /// The same SRS and caches for verifying and inspecting keys (it proves
    /// nothing, so no backend is chosen).
    pub fn verifier(&self) -> Prover {
        self.on(Arc::new(CpuHal))
    }
    fn on(&self, hal: Arc<dyn Hal>) -> Prover {
        Prover::in_cache_dir(self.srs.clone(), self.cache_dir(), hal)
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a chain from the example config, generate random valid batches
    /// (trades, oracle moves, funding, option marks, a liquidation), apply,
    /// prove and verify them, and print a summary.
    Demo(demo::DemoArgs),
    /// Apply a batch (JSON, or bincode when the file ends in .bin) to the chain
    /// state in DIR; prints {seq, old_root, new_root}.
    Apply {
        /// Chain config and genesis.
        #[arg(long)]
        chain: PathBuf,
        /// State directory (created from the genesis on first use).
        #[arg(long)]
        state_dir: PathBuf,
        /// The batch.
        batch: PathBuf,
    },
    /// Prove an applied batch.
    Prove {
        /// Chain config.
        #[arg(long)]
        chain: PathBuf,
        /// State directory.
        #[arg(long)]
        state_dir: PathBuf,
        /// Sequence number of the batch.
        #[arg(long)]
        seq: u64,
        /// Output proof file (JSON).
        #[arg(long)]
        out: PathBuf,
        /// Transcript: blake2b (standalone) or poseidon (for aggregation).
        #[arg(long, value_enum, default_value = "blake2b")]
        transcript: Transcript,
        /// Caches and parameters.
        #[command(flatten)]
        prover: ProverOpts,
    },
    /// Run the proving service (HTTP API, durable queue, in-process workers).
    Serve(crate::config::ServeArgs),
    /// Run a proving worker for a cluster: claims jobs and epochs from the
    /// service's PostgreSQL, one proving loop per GPU (or the CPU), no API.
    Worker(crate::worker::WorkerArgs),
    /// Health check of a running node (container HEALTHCHECK): exit 0 when
    /// URL answers 2xx within 5 s, 1 otherwise.
    Probe {
        /// An API node's or a worker's readiness URL.
        #[arg(env = "STATESYNC_HEALTH_URL", default_value = "http://127.0.0.1:8080/readyz")]
        url: String,
    },
    /// Manage API keys in the service's database.
    Keys {
        /// Action.
        #[command(subcommand)]
        action: KeysAction,
        /// Data directory.
        #[arg(long, global = true, env = "STATESYNC_DATA_DIR", default_value = "./statesync-data")]
        data_dir: PathBuf,
        /// Database file [default: DATA_DIR/statesync.db].
        #[arg(long, global = true, env = "STATESYNC_DATABASE")]
        database: Option<PathBuf>,
        /// The service's PostgreSQL instead of the SQLite file (as `serve
        /// --database-url`).
        #[arg(long, global = true, env = "STATESYNC_DATABASE_URL")]
        database_url: Option<String>,
    },
    /// Submit a batch to a running service (retries 5xx and 429 with backoff).
    Submit {
        /// Service URL.
        #[arg(long, env = "STATESYNC_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Chain id.
        #[arg(long)]
        chain: String,
        /// API key.
        #[arg(long, env = "STATESYNC_API_KEY", hide_env_values = true)]
        api_key: Option<String>,
        /// Idempotency key.
        #[arg(long)]
        idempotency_key: Option<String>,
        /// Follow the job's events until it is proven.
        #[arg(long)]
        wait: bool,
        /// The batch (JSON, or bincode when it ends in .bin).
        batch: PathBuf,
    },
    /// Write the Solidity verifier of a chain's wrapper proofs and
    /// `StateSync.sol` beside it (the two contracts the base layer deploys:
    /// the verifier, then `StateSync` with the constructor arguments printed
    /// as JSON; a wrapper's calldata, as `GET /v1/chains/{chain}/epochs/{id}`
    /// returns it, is what `StateSync.submit` takes). The keys of every
    /// level are made if they are not cached (k = 20 and 22 SRS: minutes).
    EvmVerifier {
        /// Chain config.
        #[arg(long)]
        chain: PathBuf,
        /// Proofs per epoch (the service's --epoch-size).
        #[arg(long, default_value_t = 4)]
        epoch_size: usize,
        /// Levels of epochs under the wrapper (the service's --epoch-levels;
        /// 1 when epochs are made on request).
        #[arg(long, default_value_t = 1)]
        epoch_levels: u32,
        /// Output Solidity file of the verifier; `StateSync.sol` is written
        /// in the same directory.
        #[arg(long)]
        out: PathBuf,
        /// Caches and parameters.
        #[command(flatten)]
        prover: ProverOpts,
    },
    /// Print the size of a chain's batch circuit, what an operator sizes a
    /// deployment by: k, columns, rows, advice cells in all and per
    /// transition slot (by part), lookup cells, and the keys in the cache
    /// (proving-key size and verifying-key hash per SRS).
    Shape {
        /// Chain config.
        #[arg(long)]
        chain: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Where keys are cached.
        #[command(flatten)]
        prover: ProverOpts,
    },
    /// Print the GPUs (name, memory, utilization, temperature, power) or say
    /// that none was found and the CPU backend is used.
    Devices,
    /// Create account keys, or print a key file's public key.
    Account {
        /// Action.
        #[command(subcommand)]
        action: crate::signing::AccountAction,
    },
    /// Sign a transition, an order or an oracle quote with an account's or
    /// an oracle's secret key for a chain; prints its JSON, ready for a
    /// batch.
    Sign {
        /// Chain config (its tag is signed: a signature holds on this chain only).
        #[arg(long, global = true)]
        chain: Option<PathBuf>,
        /// The account's or oracle's secret key file (`statesync account new`).
        #[arg(long, global = true)]
        key_file: Option<PathBuf>,
        /// The transition.
        #[command(subcommand)]
        action: crate::signing::SignAction,
    },
    /// Verify a proof: exit 0 valid, 1 invalid. With --chain the verifying
    /// key comes from the key cache (made there if missing, with the SRS);
    /// with --vk from a file, and nothing is generated.
    Verify {
        /// Chain config.
        #[arg(long, required_unless_present = "vk")]
        chain: Option<PathBuf>,
        /// The verifying keys: `GET /v1/chains/{chain}/vk`'s answer, or one
        /// verifying-key file of it (`batch`, `epoch` or `wrapper`).
        #[arg(long, conflicts_with = "chain")]
        vk: Option<PathBuf>,
        /// A batch proof file (`GET /v1/jobs/{id}/proof`, `statesync
        /// prove --out`) or, with --vk, a proven level-1 epoch or wrapper
        /// as `GET /v1/chains/{chain}/epochs/{id}` returns it.
        proof: PathBuf,
        /// Caches and parameters.
        #[command(flatten)]
        prover: ProverOpts,
    },
}

/// `statesync keys` actions.
#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Create a key; it is printed once and only its hash is stored.
    Add {
        /// A name for the key (e.g. the sequencer it belongs to).
        #[arg(long)]
        name: String,
    },
    /// List keys (never their secrets).
    List,
    /// Revoke a key by id.
    Revoke {
        /// Key id (the part after `ssk_`).
        id: String,
    },
}

/// Transcript choice on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Transcript {
    /// Blake2b.
    Blake2b,
    /// Poseidon.
    Poseidon,
}

impl From<Transcript> for TranscriptKind {
    fn from(t: Transcript) -> Self {
        match t {
            Transcript::Blake2b => TranscriptKind::Blake2b,
            Transcript::Poseidon => TranscriptKind::Poseidon,
        }
    }
}

/// A command's failure: message and exit code.
#[derive(Debug)]
pub struct Failure {
    /// 1 failure, 2 invalid input.
    pub code: u8,
    /// Printed on stderr (or stdout as JSON for rejected batches).
    pub message: String,
}

impl Failure {
    /// Exit code 2.
    pub fn input(message: impl Into<String>) -> Self {
        Failure { code: 2, message: message.into() }
    }
    /// Exit code 1.
    pub fn failed(message: impl Into<String>) -> Self {
        Failure { code: 1, message: message.into() }
    }
}

impl From<statesync_circuits::circuit::WitnessShapeError> for Failure {
    fn from(e: statesync_circuits::circuit::WitnessShapeError) -> Self {
        Failure::input(e.to_string())
    }
}

impl From<statesync_prover::ProverError> for Failure {
    fn from(e: statesync_prover::ProverError) -> Self {
        Failure::failed(e.to_string())
    }
}

/// Reads and validates a chain config file.
pub fn read_chain(path: &Path) -> Result<ChainConfig, Failure> {
    let text = fs::read_to_string(path).map_err(|e| Failure::input(format!("reading {}: {e}", path.display())))?;
    ChainConfig::from_json(&text).map_err(|e| Failure::input(format!("{}: {e}", path.display())))
}

fn read_batch(path: &Path) -> Result<Batch, statesync_circuits::error::BatchError> {
    let bytes = fs::read(path).map_err(|e| {
        statesync_circuits::error::BatchError::batch("unreadable", format!("reading {}: {e}", path.display()))
    })?;
    if path.extension().is_some_and(|e| e == "bin") {
        Batch::from_bincode(&bytes)
    } else {
        Batch::from_json(&String::from_utf8_lossy(&bytes))
    }
}

fn state_dir_failure(e: StateDirError) -> Failure {
    match e {
        StateDirError::Rejected(be) => {
            Failure::input(serde_json::to_string(&crate::http::Rejection::from(&be)).expect("errors serialize"))
        }
        StateDirError::Mismatch(_) | StateDirError::NoSuchBatch(_) => Failure::input(e.to_string()),
        _ => Failure::failed(e.to_string()),
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Apply { chain, state_dir, batch } => apply(&chain, &state_dir, &batch),
        Command::Prove { chain, state_dir, seq, out, transcript, prover } => {
            prove(&chain, &state_dir, seq, &out, transcript.into(), &prover)
        }
        Command::Verify { chain: Some(chain), proof, prover, .. } => verify(&chain, &proof, &prover),
        Command::Verify { vk: Some(vk), proof, .. } => crate::vkverify::verify(&vk, &proof),
        Command::Verify { .. } => Err(Failure::input("verify needs --chain or --vk")),
        Command::EvmVerifier { chain, epoch_size, epoch_levels, out, prover } => {
            evm_verifier(&chain, epoch_size, epoch_levels, &out, &prover)
        }
        Command::Serve(args) => serve(&args),
        Command::Worker(args) => worker(&args),
        Command::Probe { url } => probe(&url),
        Command::Devices => devices(),
        Command::Account { action } => crate::signing::account(action),
        Command::Sign { chain, key_file, action } => match (chain, key_file) {
            (Some(chain), Some(key_file)) => crate::signing::sign(&chain, &key_file, action),
            _ => Err(Failure::input("sign needs --chain and --key-file")),
        },
        Command::Shape { chain, json, prover } => shape(&chain, json, &prover),
        Command::Keys { action, data_dir, database, database_url } => keys(action, &data_dir, database, database_url),
        Command::Submit { url, chain, api_key, idempotency_key, wait, batch } => {
            submit(&url, &chain, api_key, idempotency_key.as_deref(), wait, &batch)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if f.message.starts_with('{') {
                println!("{}", f.message);
            } else {
                eprintln!("error: {}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}

fn shape(chain: &Path, json: bool, opts: &ProverOpts) -> Result<(), Failure> {
    let cfg = read_chain(chain)?;
    let r = statesync_circuits::circuit::report(&cfg.shape)?;
    let keys = opts.verifier().key_store().cached(&cfg.shape);
    if json {
        let mut v = serde_json::to_value(&r).expect("reports serialize");
        v["chain_id"] = serde_json::json!(cfg.chain_id);
        v["keys"] = serde_json::to_value(&keys).expect("serializes");
        println!("{}", serde_json::to_string_pretty(&v).expect("serializes"));
        return Ok(());
    }
    let s = &r.shape;
    println!(
        "chain {}: shape {} (capacity {}, depth {}, {} markets, {} series, {} scenarios)",
        cfg.chain_id,
        s.id(),
        s.capacity,
        s.depth,
        s.markets,
        s.series,
        s.scenarios
    );
    println!(
        "k = {} ({} rows); halo2-base fills {} rows, the Poseidon chip {}, the EdDSA chip {} below it",
        r.k, r.rows, r.halo2_base_rows, r.poseidon_rows, r.signature_rows
    );
    println!(
        "columns: {} advice (halo2-base {}, Poseidon and EdDSA chips {}), {} lookup, {} fixed, {} selectors; degree {}",
        r.halo2_base_advice_columns + r.poseidon_advice_columns,
        r.halo2_base_advice_columns,
        r.poseidon_advice_columns,
        r.lookup_advice_columns,
        r.fixed_columns,
        r.selectors,
        r.degree
    );
    println!("advice cells: {} in all, {} per transition slot:", r.advice_cells, r.advice_cells_per_slot);
    for (part, cells) in &r.slot_parts {
        println!("  {cells:>8}  {part}");
    }
    if r.shape.oracle_updates > 0 {
        println!(
            "oracle updates: {} per batch, {} advice cells per update ({} quotes: keys, bounds, medians, signatures)",
            r.shape.oracle_updates, r.oracle_update_cells, r.shape.oracles
        );
    }
    println!("lookup cells: {} in all, {} per transition slot", r.lookup_cells, r.lookup_cells_per_slot);
    if keys.is_empty() {
        println!("keys: none cached for this shape");
    }
    for k in keys {
        println!(
            "keys (SRS {}): proving key {}, verifying key sha256 {}",
            k.srs,
            k.pk_bytes.map_or("incomplete".to_string(), |b| format!("{:.1} MiB", b as f64 / (1 << 20) as f64)),
            k.vk_hash.as_deref().unwrap_or("missing")
        );
    }
    Ok(())
}

fn devices() -> Result<(), Failure> {
    let hal = hal::select(None)?;
    let r = crate::devices::Devices::probe().report(hal.as_ref(), &[]);
    if r.gpus.is_empty() {
        eprintln!("no GPU found ({}); the CPU backend is used", r.nvml_error.as_deref().unwrap_or("NVML lists none"));
    }
    println!("{}", serde_json::to_string_pretty(&r).expect("reports serialize"));
    Ok(())
}

fn apply(chain: &Path, dir: &Path, batch: &Path) -> Result<(), Failure> {
    let cfg = read_chain(chain)?;
    let batch = read_batch(batch).map_err(|e| Failure::input(serde_json::to_string(&e).expect("errors serialize")))?;
    let sd = StateDir::open(dir, &cfg).map_err(state_dir_failure)?;
    let out = sd.apply(&batch).map_err(state_dir_failure)?;
    println!("{}", serde_json::to_string(&out).expect("serializes"));
    Ok(())
}

fn prove(
    chain: &Path,
    dir: &Path,
    seq: u64,
    out: &Path,
    kind: TranscriptKind,
    opts: &ProverOpts,
) -> Result<(), Failure> {
    let cfg = read_chain(chain)?;
    let sd = StateDir::open(dir, &cfg).map_err(state_dir_failure)?;
    let w = sd.witness(seq).map_err(state_dir_failure)?;
    drop(sd);
    let prover = opts.prover()?;
    let t0 = Instant::now();
    let keys = prover.batch_keys(&cfg.shape)?.keys;
    eprintln!("keys for shape {} (k = {}) ready in {:.1?}", cfg.shape.id(), keys.k(), t0.elapsed());
    let t1 = Instant::now();
    let (proof, _) = prover.prove_batch(&w, kind, OsRng)?;
    eprintln!("proved batch {seq} in {:.1?}", t1.elapsed());
    let file = prover.proof_file(&cfg.chain_id, seq, &cfg.shape, &proof)?;
    let text = serde_json::to_string_pretty(&file).expect("proof files serialize");
    fs::write(out, text).map_err(|e| Failure::failed(format!("writing {}: {e}", out.display())))?;
    println!("{}", serde_json::json!({ "seq": seq, "out": out.display().to_string(), "vk_hash": keys.vk_hash }));
    Ok(())
}

fn verify(chain: &Path, proof: &Path, opts: &ProverOpts) -> Result<(), Failure> {
    let cfg = read_chain(chain)?;
    let text = fs::read_to_string(proof).map_err(|e| Failure::input(format!("reading {}: {e}", proof.display())))?;
    let file = ProofFile::from_json(&text).map_err(|e| Failure::input(e.to_string()))?;
    if file.chain_id != cfg.chain_id || file.shape != cfg.shape {
        return Err(Failure::failed("invalid: the proof is for another chain or shape"));
    }
    let proof = file.batch_proof().map_err(|e| Failure::input(e.to_string()))?;
    let prover = opts.verifier();
    if prover.batch_verifier(&cfg.shape)?.vk_hash != file.vk_hash {
        return Err(Failure::failed("invalid: the proof names another verifying key"));
    }
    if prover.verify_batch(&cfg.shape, &proof)? {
        println!("{}", serde_json::json!({ "valid": true, "seq": file.seq }));
        Ok(())
    } else {
        println!("{}", serde_json::json!({ "valid": false, "seq": file.seq }));
        Err(Failure::failed("invalid proof"))
    }
}

fn evm_verifier(
    chain: &Path,
    epoch_size: usize,
    epoch_levels: u32,
    out: &Path,
    prover: &ProverOpts,
) -> Result<(), Failure> {
    let cfg = read_chain(chain)?;
    if !(1..=4).contains(&epoch_levels) {
        return Err(Failure::input(format!("--epoch-levels must be between 1 and 4, got {epoch_levels}")));
    }
    let top = EpochSpec::epoch(epoch_levels, epoch_size, EPOCH_K);
    top.validate().map_err(|e| Failure::input(format!("--epoch-size: {e}")))?;
    let spec = top.wrapper(WRAPPER_K);
    let v = prover.verifier().epoch_verifier(&cfg, &spec)?;
    let sol = verifier_solidity(&v.params, &v.vk);
    let write = |path: &Path, text: &str| {
        fs::write(path, text).map_err(|e| Failure::failed(format!("writing {}: {e}", path.display())))
    };
    write(out, &sol)?;
    let state_sync = out.with_file_name("StateSync.sol");
    write(&state_sync, STATE_SYNC_SOL)?;
    let genesis = cfg.genesis_state().root();
    let deploy = serde_json::json!({
        "verifier": out.display().to_string(),
        "verifier_vk_sha256": v.vk_hash,
        "state_sync": state_sync.display().to_string(),
        "chain_id": cfg.chain_id,
        "shape": cfg.shape.id(),
        "epoch_size": epoch_size,
        "epoch_levels": epoch_levels,
        "wrapper_k": WRAPPER_K,
        // StateSync's constructor(address verifier, uint256 chainTag, uint256 genesisRoot, uint256 firstSeq)
        "constructor": {
            "verifier": "the deployed verifier's address",
            "chainTag": fr_hex::to_hex(&cfg.tag()),
            "genesisRoot": fr_hex::to_hex(&genesis),
            "firstSeq": 0,
        },
    });
    println!("{}", serde_json::to_string_pretty(&deploy).expect("serializes"));
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| Failure::failed(format!("tokio: {e}")))
}

fn serve(args: &crate::config::ServeArgs) -> Result<(), Failure> {
    let cfg = args.resolve().map_err(Failure::input)?;
    run_service(crate::serve::serve(cfg))
}

fn worker(args: &crate::worker::WorkerArgs) -> Result<(), Failure> {
    let plan = args.resolve().map_err(Failure::input)?;
    run_service(crate::worker::run(plan))
}

/// Runs a long-lived process (`serve`, `worker`) until it stops.
fn run_service(process: impl std::future::Future<Output = Result<(), String>>) -> Result<(), Failure> {
    let rt = runtime()?;
    let result = rt.block_on(process);
    // a proof still running on a blocking thread was released to the queue: do not wait for it
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    result.map_err(Failure::failed)
}

fn probe(url: &str) -> Result<(), Failure> {
    runtime()?.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .map_err(|e| Failure::failed(e.to_string()))?;
        let resp = client.get(url).send().await.map_err(|e| Failure::failed(format!("{url}: {e}")))?;
        if !resp.status().is_success() {
            return Err(Failure::failed(format!("{url}: {}", resp.status())));
        }
        println!("{url}: {}", resp.status());
        Ok(())
    })
}

fn keys(
    action: KeysAction,
    data_dir: &Path,
    database: Option<PathBuf>,
    database_url: Option<String>,
) -> Result<(), Failure> {
    use crate::store::{sql::SqlStore, ApiKeyStore};
    let db = database.unwrap_or_else(|| data_dir.join("statesync.db"));
    runtime()?.block_on(async move {
        let store = match database_url {
            Some(url) => SqlStore::postgres(&url, None).await,
            None => {
                fs::create_dir_all(data_dir)
                    .map_err(|e| Failure::failed(format!("creating {}: {e}", data_dir.display())))?;
                SqlStore::sqlite(&db).await
            }
        }
        .map_err(|e| Failure::failed(e.to_string()))?;
        let fail = |e: crate::store::StoreError| Failure::failed(e.to_string());
        match action {
            KeysAction::Add { name } => {
                let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
                let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
                store.add_key(&id, &name, &crate::http::hash_secret(&secret)).await.map_err(fail)?;
                println!("{}", serde_json::json!({ "id": id, "name": name, "key": format!("ssk_{id}_{secret}") }));
                eprintln!("store this key now: it is not shown again");
            }
            KeysAction::List => {
                for k in store.keys().await.map_err(fail)? {
                    println!("{}", serde_json::to_string(&k).expect("keys serialize"));
                }
            }
            KeysAction::Revoke { id } => {
                if !store.revoke_key(&id).await.map_err(fail)? {
                    return Err(Failure::input(format!("no active key {id}")));
                }
                println!("{}", serde_json::json!({ "revoked": id }));
            }
        }
        Ok(())
    })
}

fn submit(
    url: &str,
    chain: &str,
    key: Option<String>,
    idem: Option<&str>,
    wait: bool,
    path: &Path,
) -> Result<(), Failure> {
    let batch = read_batch(path).map_err(|e| Failure::input(serde_json::to_string(&e).expect("errors serialize")))?;
    let client = crate::client::Client::new(url, key);
    runtime()?.block_on(async move {
        let api_failure = |e: crate::client::ClientError| match e {
            crate::client::ClientError::Api { status, body } => {
                let code = if (400..500).contains(&status) { 2 } else { 1 };
                Failure { code, message: body.to_string() }
            }
            other => Failure::failed(other.to_string()),
        };
        let accepted = client.submit(chain, &batch, idem).await.map_err(api_failure)?;
        println!("{}", serde_json::to_string(&accepted).expect("serializes"));
        if wait {
            let job = client
                .wait(&accepted.job_id, |j| eprintln!("job {}: {} ({:.0}%)", j.id, j.stage, j.progress * 100.0))
                .await
                .map_err(api_failure)?;
            println!("{}", serde_json::to_string(&job).expect("serializes"));
            if job.state != crate::store::JobState::Done {
                return Err(Failure::failed(format!("job ended {}", job.state.as_str())));
            }
        }
        Ok(())
    })
}
