//! The service core: chain state cache, batch acceptance, and the in-process
//! proving workers. HTTP lives in [`crate::http`].
//!
//! Acceptance is serialized per chain by an async mutex around the chain's
//! cached state; the store's transaction (state advance + job insert) is the
//! commit point, and the cache only moves after it succeeded.

use std::{
    collections::HashMap,
    sync::{atomic::AtomicBool, Arc},
    time::{Duration, Instant},
};

use sha2::{Digest, Sha256};
use statesync_circuits::witness::fr_hex;
use statesync_circuits::{
    config::ChainConfig, engine::apply_batch, error::BatchError, state::ChainState, transition::Batch,
};
use statesync_prover::{
    epoch::{EpochProof, EpochSpec, EPOCH_K, WRAPPER_K},
    hal::{CancelFlag, Cancellable, Hal},
    snark::TranscriptKind,
    Prover, ProverError,
};
use tokio::sync::{Mutex, Notify};
use tokio_util::sync::CancellationToken;

use crate::{
    config::ServeConfig,
    devices::ProvingDevice,
    store::{
        BatchProof, ChainRecord, EpochFilter, EpochRecord, Job, JobState, NewEpoch, NewJob, Store, StoreError, Timings,
        Work, WorkKind,
    },
};

/// Why an epoch request was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EpochRequestError {
    /// No such chain (HTTP 404).
    #[error("unknown chain {0}")]
    UnknownChain(String),
    /// A range the epoch circuit cannot take (HTTP 422).
    #[error("{0}")]
    Invalid(String),
    /// A range that is not the chain's next (HTTP 409): a chain's epochs
    /// tile its batches in order.
    #[error("{0}")]
    Conflict(String),
    /// Storage failure (HTTP 500).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a submission was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// No such chain.
    #[error("unknown chain {0}")]
    UnknownChain(String),
    /// A rule was broken (HTTP 422).
    #[error("{0}")]
    Rejected(BatchError),
    /// Sequence gap (HTTP 409).
    #[error("expected seq {expected}, got {got}")]
    Gap {
        /// Next expected.
        expected: u64,
        /// Submitted.
        got: u64,
    },
    /// Same seq or idempotency key with other content (HTTP 409).
    #[error("{0}")]
    Conflict(String),
    /// Storage failure (HTTP 500, details logged only).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a proving attempt failed (recorded on the job or epoch, which is
/// retried with backoff until its attempts run out).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// Keys, proving or verifying.
    #[error(transparent)]
    Prover(#[from] ProverError),
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blocking proving task panicked or was cancelled.
    #[error("the proving task ended abnormally: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The epoch's chain is no longer stored.
    #[error("chain {0} is gone")]
    ChainGone(String),
    /// Not every proof the epoch aggregates is stored.
    #[error("the proofs the epoch aggregates are not all stored: {0}")]
    MissingProofs(String),
    /// The prover made a proof its own verifier refuses.
    #[error("the {0} proof did not verify")]
    NotVerified(&'static str),
}

impl WorkerError {
    /// Whether the device failed rather than the work (out of memory, a
    /// failed launch, a lost GPU): the work goes back to the queue at once
    /// for another device, and the device's failure counts toward taking it
    /// out of the rotation.
    pub fn is_device_error(&self) -> bool {
        matches!(self, WorkerError::Prover(ProverError::Device(_)))
    }
}

/// What an accepted submission returns.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The job.
    pub job: Job,
    /// Whether this was a replay of an earlier submission.
    pub replayed: bool,
}

struct ChainEntry {
    config: ChainConfig,
    state: ChainState,
    /// `state`'s root, hex (as the store keeps it).
    root: String,
}

/// Shared service state.
pub struct Service {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Configuration.
    pub config: ServeConfig,
    chains: std::sync::Mutex<HashMap<String, Arc<Mutex<Option<ChainEntry>>>>>,
    /// Wakes idle workers.
    pub work: Notify,
    /// The process's prover (SRS, keys, the main Hal): verifying keys,
    /// and the proofs of its in-process workers.
    pub prover: Prover,
    /// The devices this process's proving loops run on, with their health.
    proving: std::sync::Mutex<Vec<Arc<ProvingDevice>>>,
    /// Set once the store is open and workers run.
    pub ready: AtomicBool,
    /// Proving devices and GPU telemetry.
    pub devices: crate::devices::Devices,
    /// Cancelled when the service shuts down: workers stop claiming, event
    /// streams end.
    pub stopping: CancellationToken,
    /// The stop flags of the work this process proves now, by id: raised by
    /// a cancel, a lost lease or shutdown.
    running: std::sync::Mutex<HashMap<String, CancelFlag>>,
    /// The shapes whose SRS and keys this process has loaded (their jobs
    /// skip the `setup` stage).
    set_up: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Held while `GET /v1/chains/{chain}/vk` loads or makes keys.
    pub vk_work: Arc<Mutex<()>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").field("config", &self.config).finish_non_exhaustive()
    }
}

/// SHA-256 (hex) of a batch's canonical bincode encoding.
pub fn content_hash(batch: &Batch) -> String {
    hex::encode(Sha256::digest(batch.to_bincode()))
}

impl Service {
    /// A service over `store`.
    pub fn new(store: Arc<dyn Store>, config: ServeConfig, hal: Arc<dyn Hal>) -> Self {
        let prover = Prover::in_cache_dir(config.srs.clone(), &config.cache_dir, hal);
        Service {
            store,
            config,
            chains: Default::default(),
            work: Notify::new(),
            prover,
            proving: Default::default(),
            ready: AtomicBool::new(false),
            devices: crate::devices::Devices::probe(),
            stopping: CancellationToken::new(),
            running: Default::default(),
            set_up: Default::default(),
            vk_work: Default::default(),
        }
    }

    /// Adds a device to prove on with `loops` proving loops (the caller
    /// spawns them with [`run_worker`]).
    pub fn add_device(&self, label: impl Into<String>, prover: Prover, loops: usize) -> Arc<ProvingDevice> {
        let device = ProvingDevice::new(label, prover, loops);
        self.proving.lock().unwrap_or_else(|p| p.into_inner()).push(device.clone());
        device
    }

    /// The devices this process proves on.
    pub fn proving_devices(&self) -> Vec<Arc<ProvingDevice>> {
        self.proving.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// What `GET /v1/devices` answers.
    pub fn device_report(&self) -> crate::devices::DeviceReport {
        self.devices.report(self.prover.hal().as_ref(), &self.proving_devices())
    }

    /// Cancels a job that is not finished (returned as it is after; `None`
    /// if there is no such job). A proof of it running in this process
    /// stops at its next Hal operation; one in another process stops when
    /// its heartbeat finds the lease gone.
    pub async fn cancel(&self, id: &str) -> Result<Option<Job>, StoreError> {
        let job = self.store.cancel(id).await?;
        if job.as_ref().is_some_and(|j| j.state == JobState::Cancelled) {
            if let Some(flag) = self.running.lock().unwrap_or_else(|p| p.into_inner()).get(id) {
                flag.cancel();
            }
            tracing::info!(job = %id, "cancelled");
            metrics::counter!("statesync_job_cancellations_total").increment(1);
        }
        Ok(job)
    }

    /// Queues a failed or cancelled job again with a fresh attempt budget
    /// (returned as it is after; `None` if there is no such job).
    pub async fn retry(&self, id: &str) -> Result<Option<Job>, StoreError> {
        let job = self.store.retry(id).await?;
        if job.as_ref().is_some_and(|j| j.state == JobState::Queued) {
            tracing::info!(job = %id, "retried");
            metrics::counter!("statesync_job_retries_total").increment(1);
            self.work.notify_waiters();
        }
        Ok(job)
    }

    /// Creates a chain at its genesis.
    pub async fn create_chain(&self, config: &ChainConfig) -> Result<ChainRecord, StoreError> {
        self.store.create_chain(config, &config.genesis_state()).await
    }

    fn entry(&self, chain: &str) -> Arc<Mutex<Option<ChainEntry>>> {
        let mut map = self.chains.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(chain.to_string()).or_default().clone()
    }

    /// Validates, applies and enqueues a batch; replays return the same job.
    ///
    /// Several API nodes may share one database: acceptance is serialized
    /// per chain in this process by the chain's mutex and across processes
    /// by the database (the commit advances the chain only if it is still at
    /// the batch's seq). A cached state is checked against the stored next
    /// seq and root before use and reloaded when another node moved the
    /// chain; a commit that finds the chain moved meanwhile writes nothing,
    /// and the batch is decided again on the new state (a replay, a
    /// conflict, a gap, or accepted).
    pub async fn submit(&self, chain: &str, batch: Batch, idem_key: Option<String>) -> Result<Accepted, SubmitError> {
        const ROUNDS: usize = 4;
        let hash = content_hash(&batch);
        let entry = self.entry(chain);
        let mut guard = entry.lock().await;
        for _ in 0..ROUNDS {
            match self.submit_locked(&mut guard, chain, &batch, &hash, &idem_key).await {
                Err(SubmitError::Store(StoreError::Stale(why))) => {
                    tracing::info!(chain, seq = batch.seq, "another node moved the chain ({why}): deciding again");
                    *guard = None;
                }
                Err(SubmitError::UnknownChain(c)) => {
                    drop(guard);
                    // do not keep an entry per unknown name a client tries
                    self.chains.lock().unwrap_or_else(|p| p.into_inner()).remove(chain);
                    return Err(SubmitError::UnknownChain(c));
                }
                other => return other,
            }
        }
        Err(SubmitError::Conflict(format!(
            "chain {chain} kept moving while seq {} was being accepted (other API nodes): submit again",
            batch.seq
        )))
    }

    /// One decision on a batch, under the chain's mutex.
    async fn submit_locked(
        &self,
        cache: &mut Option<ChainEntry>,
        chain: &str,
        batch: &Batch,
        hash: &str,
        idem_key: &Option<String>,
    ) -> Result<Accepted, SubmitError> {
        if let Some(cached) = cache.as_ref() {
            // another node on the same database may have moved the chain
            match self.store.chain_head(chain).await? {
                Some((next_seq, root)) if next_seq == cached.state.next_seq && root == cached.root => {}
                _ => *cache = None,
            }
        }
        if cache.is_none() {
            let Some((config, state)) = self.store.chain_state(chain).await? else {
                return Err(SubmitError::UnknownChain(chain.to_string()));
            };
            *cache = Some(ChainEntry { root: fr_hex::to_hex(&state.root()), config, state });
        }
        let cached = cache.as_ref().expect("loaded above");
        if let Some(key) = idem_key {
            if let Some(job) = self.store.job_by_key(chain, key).await? {
                return if job.content_hash == hash {
                    Ok(Accepted { job, replayed: true })
                } else {
                    Err(SubmitError::Conflict("this Idempotency-Key was used for another batch".into()))
                };
            }
        }
        if let Some(job) = self.store.job_by_seq(chain, batch.seq).await? {
            return if job.content_hash == hash {
                if let Some(key) = idem_key {
                    // the key names this job from now on
                    self.store.bind_key(chain, key, &job.id).await?;
                }
                Ok(Accepted { job, replayed: true })
            } else {
                Err(SubmitError::Conflict(format!("seq {} was already accepted with other content", batch.seq)))
            };
        }
        let expected = cached.state.next_seq;
        if batch.seq != expected {
            return Err(SubmitError::Gap { expected, got: batch.seq });
        }
        // the engine hashes every touched leaf and path (milliseconds of
        // CPU): off the runtime's threads, so that other chains' requests
        // and database round trips (a transaction holding the SQLite
        // writer, say) are not stalled behind it. The clone shares the
        // state's maps.
        let (state, chain_id, b) = (cached.state.clone(), cached.config.chain_id.clone(), batch.clone());
        let applied = match tokio::task::spawn_blocking(move || apply_batch(&state, &chain_id, &b)).await {
            Ok(applied) => applied.map_err(SubmitError::Rejected)?,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        let mut touched: Vec<u64> =
            applied.witness.steps.iter().flat_map(|s| [s.transition.a, s.transition.b]).collect();
        touched.sort_unstable();
        touched.dedup();
        let new_root = fr_hex::to_hex(&applied.witness.public.new_root);
        let new_job = NewJob {
            id: uuid::Uuid::new_v4().to_string(),
            chain: chain.to_string(),
            seq: batch.seq,
            idem_key: idem_key.clone(),
            content_hash: hash.to_string(),
            witness: applied.witness,
            max_attempts: self.config.max_attempts,
        };
        let job = match self.store.commit_batch(&applied.state, &touched, new_job).await {
            Ok(job) => job,
            Err(e) => {
                // another writer may have advanced the chain: reload next time
                *cache = None;
                return Err(match e {
                    StoreError::Conflict(m) => SubmitError::Conflict(m),
                    other => SubmitError::Store(other),
                });
            }
        };
        let entry = cache.as_mut().expect("loaded above");
        (entry.state, entry.root) = (applied.state, new_root);
        tracing::info!(job = %job.id, chain, seq = job.seq, transitions = job.transitions, "batch accepted");
        metrics::counter!("statesync_batches_accepted_total").increment(1);
        self.work.notify_waiters();
        Ok(Accepted { job, replayed: false })
    }

    /// Requests the level-1 epoch proof of `chain`'s batches `first..=last`:
    /// 1..=`epoch_size` accepted batches starting at the chain's first batch
    /// under no level-1 epoch (epochs tile a chain's batches in order); the
    /// same range returns the same epoch. With automatic epochs this seals
    /// the open epoch early.
    pub async fn request_epoch(
        &self,
        chain: &str,
        first: u64,
        last: u64,
    ) -> Result<(EpochRecord, bool), EpochRequestError> {
        let record = self.store.chain(chain).await?.ok_or_else(|| EpochRequestError::UnknownChain(chain.into()))?;
        let n = self.config.epoch_size as u64;
        if last < first || last - first + 1 > n {
            return Err(EpochRequestError::Invalid(format!(
                "an epoch spans 1 to {n} consecutive batches (epoch_size), got seq {first}..={last}"
            )));
        }
        if last >= record.next_seq {
            return Err(EpochRequestError::Invalid(format!(
                "batch {last} has not been accepted yet (next seq is {})",
                record.next_seq
            )));
        }
        match self.seal(chain, 1, false, first, last).await {
            Err(StoreError::Conflict(m)) => Err(EpochRequestError::Conflict(m)),
            other => Ok(other?),
        }
    }

    /// Creates `chain`'s epoch at `level` (its wrapper when `wrapper`) over
    /// batches `first..=last` if it is the next one there, or returns the one
    /// of that range (`false`).
    async fn seal(
        &self,
        chain: &str,
        level: u32,
        wrapper: bool,
        first: u64,
        last: u64,
    ) -> Result<(EpochRecord, bool), StoreError> {
        let new = NewEpoch {
            id: uuid::Uuid::new_v4().to_string(),
            chain: chain.to_string(),
            first_seq: first,
            last_seq: last,
            level,
            size: self.config.epoch_size as u32,
            wrapper,
            max_attempts: self.config.max_attempts,
        };
        let out = self.store.create_epoch(&new).await?;
        if out.1 {
            let what = if wrapper { "wrapper" } else { "epoch" };
            tracing::info!(epoch = %out.0.id, chain, level, first, last, "{what} sealed");
            metrics::counter!("statesync_epochs_sealed_total", "level" => level.to_string(), "wrapper" => wrapper.to_string())
                .increment(1);
            self.work.notify_waiters();
        }
        Ok(out)
    }

    /// [`Service::seal`] for the sweep: whether it created the epoch (not
    /// when another node sealed that level meanwhile).
    async fn sealed(&self, chain: &str, level: u32, wrapper: bool, first: u64, last: u64) -> Result<bool, StoreError> {
        match self.seal(chain, level, wrapper, first, last).await {
            Ok((_, created)) => Ok(created),
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether `chain`'s batch `seq` was accepted `epoch_max_wait` ago or
    /// earlier (never without a maximum wait).
    async fn waited(&self, chain: &str, seq: u64) -> Result<bool, StoreError> {
        let Some(wait) = self.config.epoch_max_wait else { return Ok(false) };
        let accepted = self.store.job_by_seq(chain, seq).await?.map(|j| j.created_at);
        Ok(accepted.is_some_and(|at| crate::store::now_ms() - at >= wait.as_millis() as i64))
    }

    /// The sealing sweep of `chain`: with automatic epochs, seals each
    /// level's next epochs, in order from level 1 (a level-1 epoch at
    /// `epoch_size` accepted batches, a level-L epoch at `epoch_size` epochs
    /// of level L - 1; with fewer, once the first batch has waited
    /// `epoch_max_wait`); then wraps every epoch of the top level (level 1
    /// when epochs are made on request). Idempotent, and safe to run on
    /// several nodes at once (each range is created once).
    pub async fn seal_epochs(&self, chain: &str) -> Result<(), StoreError> {
        let n = self.config.epoch_size as u64;
        let top = if self.config.auto_epochs { self.config.epoch_levels } else { 1 };
        if self.config.auto_epochs {
            let Some(record) = self.store.chain(chain).await? else { return Ok(()) };
            for level in 1..=top {
                loop {
                    let first = self.store.epoch_frontier(chain, level, false).await?;
                    // what the next epoch can hold: batches, or epochs of the level below
                    let last_seqs: Vec<u64> = if level == 1 {
                        (first..record.next_seq).take(n as usize).collect()
                    } else {
                        let below = EpochFilter {
                            level: Some(level - 1),
                            wrapper: Some(false),
                            from_seq: first,
                            to_seq: None,
                            limit: n as u32,
                        };
                        // the ones that continue the range without a gap
                        let mut next = first;
                        let below = self.store.list_epochs(chain, &below).await?;
                        below
                            .iter()
                            .take_while(|e| {
                                let continues = e.first_seq == next;
                                next = e.last_seq + 1;
                                continues
                            })
                            .map(|e| e.last_seq)
                            .collect()
                    };
                    let Some(&last) = last_seqs.last() else { break };
                    if (last_seqs.len() as u64) < n && !self.waited(chain, first).await? {
                        break;
                    }
                    if !self.sealed(chain, level, false, first, last).await? {
                        break;
                    }
                }
            }
        }
        loop {
            let first = self.store.epoch_frontier(chain, top, true).await?;
            let next = EpochFilter { level: Some(top), wrapper: Some(false), from_seq: first, to_seq: None, limit: 1 };
            let Some(e) = self.store.list_epochs(chain, &next).await?.pop().filter(|e| e.first_seq == first) else {
                break;
            };
            if !self.sealed(chain, top, true, e.first_seq, e.last_seq).await? {
                break;
            }
        }
        Ok(())
    }

    /// The sealing sweep of every chain with batches under no wrapper yet.
    pub async fn seal_all(&self) -> Result<(), StoreError> {
        for chain in self.store.unwrapped_chains().await? {
            self.seal_epochs(&chain).await?;
        }
        Ok(())
    }
}

/// Seals epochs by time: the sealing sweep of every chain once a second,
/// until `stop` (automatic epochs with a maximum wait; the sweeps after each
/// proof seal by count).
pub async fn run_sealer(svc: Arc<Service>, stop: CancellationToken) {
    loop {
        if let Err(e) = svc.seal_all().await {
            tracing::error!("sealing epochs failed: {e}");
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Runs one proving loop on `device` until `stop` is cancelled or the
/// device leaves the rotation.
pub async fn run_worker(svc: Arc<Service>, name: String, device: Arc<ProvingDevice>, stop: CancellationToken) {
    tracing::info!(worker = %name, device = %device.label, "worker started");
    // epochs a crash missed between a proof and its sweep
    if let Err(e) = svc.seal_all().await {
        tracing::error!(worker = %name, "sealing epochs failed: {e}");
    }
    while !stop.is_cancelled() {
        if !device.in_rotation() {
            tracing::error!(worker = %name, device = %device.label, "worker stopped: its device is out of rotation");
            return;
        }
        match svc.store.requeue_expired().await {
            Ok(0) => {}
            Ok(n) => {
                tracing::warn!(worker = %name, requeued = n, "work whose lease expired is queued again");
                metrics::counter!("statesync_lease_expiries_total").increment(n);
            }
            Err(e) => tracing::error!(worker = %name, "requeue failed: {e}"),
        }
        match svc.store.claim(&name, svc.config.lease).await {
            Ok(Some(work)) => {
                process(&svc, &name, &device, work, &stop).await;
                // after a device error, the device's loops wait (a second
                // per error in a row) so that other devices take the work
                let pause = device.cooldown();
                if !pause.is_zero() {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(pause) => {}
                    }
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::error!(worker = %name, "claim failed: {e}"),
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = svc.work.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
    tracing::info!(worker = %name, "worker stopped");
}

/// Keeps a lease while the blocking prover runs, until `beat_stop`; when the
/// lease is gone (cancelled, or expired and taken), raises `flag` so the
/// proof stops.
fn spawn_heartbeat(
    svc: &Arc<Service>,
    kind: WorkKind,
    id: &str,
    worker: &str,
    beat_stop: &CancellationToken,
    flag: &CancelFlag,
) -> tokio::task::JoinHandle<()> {
    let (svc, id, worker, beat_stop) = (svc.clone(), id.to_string(), worker.to_string(), beat_stop.clone());
    let flag = flag.clone();
    tokio::spawn(async move {
        let every = svc.config.lease / 3;
        loop {
            tokio::select! {
                _ = beat_stop.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
            }
            match svc.store.heartbeat(kind, &id, &worker, svc.config.lease).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!(id = %id, kind = kind.as_str(), "lease gone (cancelled or taken): stopping the proof");
                    flag.cancel();
                    break;
                }
                Err(e) => tracing::warn!(id = %id, kind = kind.as_str(), "heartbeat failed: {e}"),
            }
        }
    })
}

/// What a proving attempt made.
enum Proven {
    Batch { proof: BatchProof, timings: Timings },
    Epoch(EpochProof),
}

/// Proves claimed work with `prover` (the service's, stoppable; blocking:
/// runs on the blocking pool).
fn prove_work(svc: &Service, prover: &Prover, worker: &str, work: Work) -> Result<Proven, WorkerError> {
    match work {
        Work::Job(claimed) => {
            let w = claimed.witness;
            let handle = tokio::runtime::Handle::current();
            let stage =
                |state, progress| handle.block_on(svc.store.set_stage(&claimed.job.id, worker, state, progress));
            // the SRS and the keys (made or loaded on a shape's first use), then the proof
            let shape = w.shape.id();
            if !svc.set_up.lock().unwrap_or_else(|p| p.into_inner()).contains(&shape) {
                let t = Instant::now();
                stage(JobState::Setup, 0.1)?;
                prover.params(prover.layout(&w.shape)?.k as u32)?;
                stage(JobState::Setup, 0.2)?;
                prover.batch_keys(&w.shape)?;
                svc.set_up.lock().unwrap_or_else(|p| p.into_inner()).insert(shape.clone());
                metrics::histogram!("statesync_setup_seconds").record(t.elapsed().as_secs_f64());
                tracing::info!(job = %claimed.job.id, shape, seconds = t.elapsed().as_secs_f64(), "SRS and keys ready");
            }
            stage(JobState::Proving, 0.3)?;
            let (proof, t) = prover.prove_batch(&w, TranscriptKind::Poseidon, rand::rngs::OsRng)?;
            if !prover.verify_batch(&w.shape, &proof)? {
                return Err(WorkerError::NotVerified("batch"));
            }
            let ms = |d: Duration| Some(d.as_millis() as u64);
            Ok(Proven::Batch { proof, timings: Timings { witness_ms: ms(t.witness), proving_ms: ms(t.proving) } })
        }
        Work::Epoch(epoch) => prove_epoch(svc, prover, &epoch).map(Proven::Epoch),
    }
}

/// The circuit of `epoch` (its level and N, or the wrapper of that level's
/// epochs).
pub fn epoch_spec(epoch: &EpochRecord) -> EpochSpec {
    let spec = EpochSpec::epoch(epoch.level, epoch.size as usize, EPOCH_K);
    if epoch.wrapper {
        spec.wrapper(WRAPPER_K)
    } else {
        spec
    }
}

/// Proves an epoch with the chain's keys of its circuit: a level-1 epoch
/// aggregates the stored batch proofs of its range, a level-L epoch the
/// level L - 1 epochs of its range, a wrapper the epoch of its range and
/// level; Poseidon's transcript below the wrapper (the level above verifies
/// it in-circuit), the EVM's for the wrapper (calldata for the base layer).
fn prove_epoch(svc: &Service, prover: &Prover, epoch: &EpochRecord) -> Result<EpochProof, WorkerError> {
    let handle = tokio::runtime::Handle::current();
    let record =
        handle.block_on(svc.store.chain(&epoch.chain))?.ok_or_else(|| WorkerError::ChainGone(epoch.chain.clone()))?;
    let cfg = &record.config;
    let spec = epoch_spec(epoch);
    let transcript = epoch.transcript;
    let count = epoch.last_seq - epoch.first_seq + 1;
    let proof = if epoch.level == 1 && !epoch.wrapper {
        let proofs = handle.block_on(svc.store.batch_proofs(&epoch.chain, epoch.first_seq, epoch.last_seq))?;
        if proofs.len() as u64 != count {
            return Err(WorkerError::MissingProofs(format!("{} of {count} batch proofs", proofs.len())));
        }
        prover.prove_epoch(cfg, &spec, &proofs, transcript, rand::rngs::OsRng)?
    } else {
        // the epochs below (or the one wrapped), which must tile the range
        let below = EpochFilter {
            level: Some(if epoch.wrapper { epoch.level } else { epoch.level - 1 }),
            wrapper: Some(false),
            from_seq: epoch.first_seq,
            to_seq: Some(epoch.last_seq),
            limit: epoch.size + 1,
        };
        let below = handle.block_on(svc.store.list_epochs(&epoch.chain, &below))?;
        let mut next = epoch.first_seq;
        let mut proofs = Vec::with_capacity(below.len());
        for e in &below {
            let (Some(instances), Some(proof), Some(vk_hash)) = (&e.instances, &e.proof, &e.vk_hash) else {
                return Err(WorkerError::MissingProofs(format!("epoch {} is {}", e.id, e.state.as_str())));
            };
            if e.first_seq != next {
                return Err(WorkerError::MissingProofs(format!("no epoch below starts at seq {next}")));
            }
            next = e.last_seq + 1;
            let instances = instances
                .iter()
                .map(|h| fr_hex::from_hex(h))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| WorkerError::MissingProofs(format!("epoch {}'s instances do not parse", e.id)))?;
            proofs.push(EpochProof {
                instances,
                proof: proof.clone(),
                transcript: e.transcript,
                vk_hash: vk_hash.clone(),
            });
        }
        if next != epoch.last_seq + 1 {
            return Err(WorkerError::MissingProofs(format!("the epochs below end at seq {}", next.saturating_sub(1))));
        }
        prover.prove_epoch(cfg, &spec, &proofs, transcript, rand::rngs::OsRng)?
    };
    if !prover.verify_epoch(cfg, &spec, &proof)? {
        return Err(WorkerError::NotVerified("epoch"));
    }
    Ok(proof)
}

/// One attempt at claimed work, under the lease protocol: heartbeats while
/// it runs, released (attempt not counted) on shutdown, stored once when
/// proven, failed with backoff otherwise.
async fn process(svc: &Arc<Service>, worker: &str, device: &ProvingDevice, work: Work, stop: &CancellationToken) {
    let (kind, id, attempt) = (work.kind(), work.id().to_string(), work.attempts());
    match &work {
        Work::Job(c) => tracing::info!(job = %id, chain = %c.job.chain, seq = c.job.seq, attempt, "proving"),
        Work::Epoch(e) => {
            tracing::info!(epoch = %id, chain = %e.chain, first = e.first_seq, last = e.last_seq, attempt, "aggregating")
        }
    }
    let chain = match &work {
        Work::Job(c) => c.job.chain.clone(),
        Work::Epoch(e) => e.chain.clone(),
    };
    let beat_stop = CancellationToken::new();
    let flag = CancelFlag::new();
    svc.running.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone(), flag.clone());
    let beat = spawn_heartbeat(svc, kind, &id, worker, &beat_stop, &flag);
    let started = Instant::now();
    let (svc2, worker2) = (svc.clone(), worker.to_string());
    let prover = device.prover.with_hal(Arc::new(Cancellable::new(device.prover.hal().clone(), flag.clone())));
    let task = tokio::task::spawn_blocking(move || prove_work(&svc2, &prover, &worker2, work));
    let result = tokio::select! {
        r = task => r.map_err(WorkerError::from).and_then(|r| r),
        _ = stop.cancelled() => {
            // shutting down mid-proof: stop the proof, give the work back;
            // it is proven after the restart
            flag.cancel();
            svc.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            beat_stop.cancel();
            let _ = beat.await;
            match svc.store.release(kind, &id, worker).await {
                Ok(()) => tracing::info!(id = %id, kind = kind.as_str(), "released on shutdown"),
                Err(e) => tracing::error!(id = %id, kind = kind.as_str(), "release failed: {e}"),
            }
            return;
        }
    };
    svc.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    beat_stop.cancel();
    let _ = beat.await;
    let proven = match result {
        Ok(proven) => proven,
        Err(_) if flag.is_cancelled() => {
            tracing::info!(id = %id, kind = kind.as_str(), after_ms = started.elapsed().as_millis() as u64, "proof stopped: cancelled or lease lost");
            return;
        }
        Err(e) => {
            match kind {
                WorkKind::Job => metrics::counter!("statesync_job_failures_total").increment(1),
                WorkKind::Epoch => metrics::counter!("statesync_epoch_failures_total").increment(1),
            }
            // a device error is not the work's fault: it goes back at once, for another device
            let backoff =
                if e.is_device_error() { Duration::ZERO } else { Duration::from_secs(1u64 << attempt.min(6)) };
            tracing::warn!(id = %id, kind = kind.as_str(), attempt, device = %device.label, "attempt failed: {e}");
            if e.is_device_error() {
                device.device_failed(&e.to_string());
            }
            if let Err(se) = svc.store.fail(kind, &id, worker, &e.to_string(), backoff).await {
                tracing::error!(id = %id, kind = kind.as_str(), "recording the failure failed: {se}");
            }
            return;
        }
    };
    device.succeeded();
    let stored = match &proven {
        Proven::Batch { proof, timings } => svc.store.complete_job(&id, worker, proof, *timings).await,
        Proven::Epoch(proof) => {
            let ms = started.elapsed().as_millis() as u64;
            let instances: Vec<String> = proof.instances.iter().map(fr_hex::to_hex).collect();
            svc.store.complete_epoch(&id, worker, &instances, &proof.proof, &proof.vk_hash, ms).await
        }
    };
    match stored {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(id = %id, kind = kind.as_str(), "proof discarded: cancelled or lease lost");
            return;
        }
        Err(e) => {
            tracing::error!(id = %id, kind = kind.as_str(), "storing the proof failed: {e}");
            return;
        }
    }
    let stage = |stage: &'static str, ms: u64| {
        metrics::histogram!("statesync_job_stage_seconds", "stage" => stage).record(ms as f64 / 1000.0)
    };
    match proven {
        Proven::Batch { timings, .. } => {
            metrics::counter!("statesync_proofs_total").increment(1);
            for (name, ms) in [("witness", timings.witness_ms), ("proving", timings.proving_ms)] {
                if let Some(ms) = ms {
                    stage(name, ms);
                }
            }
            tracing::info!(job = %id, proving_ms = timings.proving_ms, "proved");
        }
        Proven::Epoch(_) => {
            let ms = started.elapsed().as_millis() as u64;
            metrics::counter!("statesync_epoch_proofs_total").increment(1);
            stage("epoch", ms);
            tracing::info!(epoch = %id, proving_ms = ms, "epoch proved");
        }
    }
    // what this proof completes may seal the next epoch, at any level
    if let Err(e) = svc.seal_epochs(&chain).await {
        tracing::error!(chain = %chain, "sealing epochs failed: {e}");
    }
}
