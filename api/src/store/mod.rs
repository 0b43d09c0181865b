//! The durable store: chains and their state ([`ChainStore`]), jobs and
//! epochs under one lease protocol ([`WorkQueue`]), batch proofs
//! ([`ProofStore`]) and API keys ([`ApiKeyStore`]); [`Store`] is all four.
//! [`sql::SqlStore`] implements them on SQLite (the embedded default) and on
//! PostgreSQL. Everything the service needs to
//! survive a crash lives here.

pub mod sql;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use statesync_circuits::{config::ChainConfig, state::ChainState, witness::BatchWitness};
pub use statesync_prover::batch::BatchProof;

/// Job states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for a worker.
    Queued,
    /// A worker is loading or making what the job's shape is proven with
    /// (the SRS, then the proving key): the first job of a shape after a
    /// start; progress 0.1 → 0.2 (SRS ready) → 0.3 (keys ready).
    Setup,
    /// A worker is building the circuit witness.
    Witness,
    /// A worker is proving.
    Proving,
    /// Proven; the proof is stored.
    Done,
    /// Failed after its last attempt.
    Failed,
    /// Cancelled by a client.
    Cancelled,
}

impl JobState {
    /// All states.
    pub const ALL: [JobState; 7] = [
        JobState::Queued,
        JobState::Setup,
        JobState::Witness,
        JobState::Proving,
        JobState::Done,
        JobState::Failed,
        JobState::Cancelled,
    ];

    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Setup => "setup",
            JobState::Witness => "witness",
            JobState::Proving => "proving",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        JobState::ALL.into_iter().find(|j| j.as_str() == s)
    }

    /// States of a job a worker holds a lease on.
    pub const LEASED: [JobState; 3] = [JobState::Setup, JobState::Witness, JobState::Proving];
    /// States of a job that is not finished.
    pub const UNFINISHED: [JobState; 4] = [JobState::Queued, JobState::Setup, JobState::Witness, JobState::Proving];

    /// Whether the job will not change any more.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobState::Done | JobState::Failed | JobState::Cancelled)
    }
}

/// Stage timings in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Timings {
    /// Witness generation.
    pub witness_ms: Option<u64>,
    /// Proving.
    pub proving_ms: Option<u64>,
}

/// A job as clients see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Job {
    /// Job id.
    pub id: String,
    /// Chain id.
    pub chain: String,
    /// Batch sequence number.
    pub seq: u64,
    /// State.
    pub state: JobState,
    /// Current stage (`queued`, `witness`, `proving`, `done`, ...).
    pub stage: String,
    /// Progress in [0, 1].
    pub progress: f64,
    /// Attempts so far.
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Last error.
    pub error: Option<String>,
    /// State root before the batch.
    pub old_root: String,
    /// State root after the batch.
    pub new_root: String,
    /// Real transitions in the batch.
    pub transitions: u64,
    /// Created (unix ms).
    pub created_at: i64,
    /// First claimed (unix ms; never before the previous seq's
    /// `finished_at`, which the claim waited for).
    pub started_at: Option<i64>,
    /// Finished (unix ms).
    pub finished_at: Option<i64>,
    /// Stage timings.
    pub timings: Timings,
    /// Cursor position (for pagination).
    #[serde(skip)]
    pub cursor: i64,
    /// Content hash of the batch (for idempotency).
    #[serde(skip)]
    pub content_hash: String,
}

/// A chain as clients see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChainRecord {
    /// Chain id.
    pub id: String,
    /// Config and genesis.
    pub config: ChainConfig,
    /// Current state root (after every accepted batch).
    pub state_root: String,
    /// Sequence number the next batch must carry.
    pub next_seq: u64,
    /// Created (unix ms).
    pub created_at: i64,
}

/// A job to insert with the state it produces.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Job id.
    pub id: String,
    /// Chain id.
    pub chain: String,
    /// Sequence number.
    pub seq: u64,
    /// Client's `Idempotency-Key`.
    pub idem_key: Option<String>,
    /// SHA-256 of the batch's canonical encoding.
    pub content_hash: String,
    /// Witness for the worker.
    pub witness: BatchWitness,
    /// Attempts allowed.
    pub max_attempts: u32,
}

/// A claimed job with its witness.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The job.
    pub job: Job,
    /// Its witness.
    pub witness: BatchWitness,
}

/// Filters of `GET /v1/jobs`.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// Only this chain.
    pub chain: Option<String>,
    /// Only this state.
    pub state: Option<JobState>,
    /// Only jobs after this cursor.
    pub after: Option<i64>,
    /// Page size.
    pub limit: u32,
}

/// An API key row (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    /// Key id (public part).
    pub id: String,
    /// Name.
    pub name: String,
    /// Created (unix ms).
    pub created_at: i64,
    /// Revoked (unix ms).
    pub revoked_at: Option<i64>,
    /// SHA-256 of the secret.
    #[serde(skip)]
    pub hash: Vec<u8>,
}

/// Epoch states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EpochState {
    /// Waiting for its batches to be proven and for a worker.
    Queued,
    /// A worker is aggregating.
    Proving,
    /// Proven; the proof and calldata are stored.
    Done,
    /// Failed (after its last attempt, or a batch of its range failed).
    Failed,
}

impl EpochState {
    /// All states.
    pub const ALL: [EpochState; 4] = [EpochState::Queued, EpochState::Proving, EpochState::Done, EpochState::Failed];

    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            EpochState::Queued => "queued",
            EpochState::Proving => "proving",
            EpochState::Done => "done",
            EpochState::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        EpochState::ALL.into_iter().find(|j| j.as_str() == s)
    }

    /// States of an epoch a worker holds a lease on.
    pub const LEASED: [EpochState; 1] = [EpochState::Proving];

    /// Whether the epoch will not change any more.
    pub fn is_terminal(self) -> bool {
        matches!(self, EpochState::Done | EpochState::Failed)
    }
}

/// An epoch as stored (the HTTP layer adds public inputs and calldata).
#[derive(Debug, Clone, PartialEq)]
pub struct EpochRecord {
    /// Epoch id.
    pub id: String,
    /// Chain id.
    pub chain: String,
    /// First batch (inclusive).
    pub first_seq: u64,
    /// Last batch (inclusive).
    pub last_seq: u64,
    /// Level: 1 aggregates batch proofs, L >= 2 the epochs of level L - 1
    /// in its range.
    pub level: u32,
    /// The N of its circuit (it holds 1..=N proofs).
    pub size: u32,
    /// The wrapper of the level's epoch with the same range (one proof, few
    /// columns, the EVM transcript: what the base layer verifies).
    pub wrapper: bool,
    /// Its proof's transcript: Poseidon below the wrapper (so that the level
    /// above can aggregate it), EVM for the wrapper.
    pub transcript: statesync_prover::snark::TranscriptKind,
    /// State.
    pub state: EpochState,
    /// Attempts so far.
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Last error.
    pub error: Option<String>,
    /// Created (unix ms).
    pub created_at: i64,
    /// Finished (unix ms).
    pub finished_at: Option<i64>,
    /// Proving time.
    pub proving_ms: Option<u64>,
    /// All instances of the proof (accumulator first), once done.
    pub instances: Option<Vec<String>>,
    /// The proof (EVM transcript), once done.
    pub proof: Option<Vec<u8>>,
    /// Hex SHA-256 of the epoch verifying key, once done.
    pub vk_hash: Option<String>,
}

/// An epoch to create ([`WorkQueue::create_epoch`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEpoch {
    /// Epoch id.
    pub id: String,
    /// Chain id.
    pub chain: String,
    /// First batch (inclusive).
    pub first_seq: u64,
    /// Last batch (inclusive).
    pub last_seq: u64,
    /// Level ([`EpochRecord::level`]).
    pub level: u32,
    /// The N of its circuit.
    pub size: u32,
    /// Whether it is the wrapper of the level's epoch with this range.
    pub wrapper: bool,
    /// Attempts allowed.
    pub max_attempts: u32,
}

impl NewEpoch {
    /// Its proof's transcript: the EVM's for a wrapper, Poseidon's below.
    pub fn transcript(&self) -> statesync_prover::snark::TranscriptKind {
        if self.wrapper {
            statesync_prover::snark::TranscriptKind::Evm
        } else {
            statesync_prover::snark::TranscriptKind::Poseidon
        }
    }
}

/// Which of a chain's epochs to list, by first seq.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochFilter {
    /// Only this level.
    pub level: Option<u32>,
    /// Only wrappers (`true`) or only the levels' epochs (`false`).
    pub wrapper: Option<bool>,
    /// Only epochs starting at or after this seq.
    pub from_seq: u64,
    /// Only epochs ending at or before this seq.
    pub to_seq: Option<u64>,
    /// At most this many.
    pub limit: u32,
}

/// Store errors. Messages never reach HTTP clients (they may name internals).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A unique constraint or a concurrent writer: the caller should re-read.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The chain moved on since the caller read it (another API node
    /// accepted a batch): nothing was written; re-read and decide again.
    #[error("stale: {0}")]
    Stale(String),
    /// Stored data could not be decoded.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The database.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// The two kinds of leased work: a batch's proof (a job) and an epoch's.
/// Both follow one lease protocol ([`WorkQueue`]): claimed with a lease,
/// kept by heartbeats, completed once, failed with backoff until their
/// attempts run out, released on shutdown, requeued when a lease expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkKind {
    /// A batch proof.
    Job,
    /// An epoch proof.
    Epoch,
}

impl WorkKind {
    /// Both kinds.
    pub const ALL: [WorkKind; 2] = [WorkKind::Job, WorkKind::Epoch];

    /// Its name in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkKind::Job => "job",
            WorkKind::Epoch => "epoch",
        }
    }
}

/// What a worker claimed.
#[derive(Debug, Clone)]
pub enum Work {
    /// A job with its witness.
    Job(Box<Claimed>),
    /// An epoch.
    Epoch(Box<EpochRecord>),
}

impl Work {
    /// Its kind.
    pub fn kind(&self) -> WorkKind {
        match self {
            Work::Job(_) => WorkKind::Job,
            Work::Epoch(_) => WorkKind::Epoch,
        }
    }

    /// Its id.
    pub fn id(&self) -> &str {
        match self {
            Work::Job(c) => &c.job.id,
            Work::Epoch(e) => &e.id,
        }
    }

    /// Attempts so far, this one included.
    pub fn attempts(&self) -> u32 {
        match self {
            Work::Job(c) => c.job.attempts,
            Work::Epoch(e) => e.attempts,
        }
    }
}

/// Chains and batch acceptance.
#[async_trait]
pub trait ChainStore: Send + Sync + 'static {
    /// Creates a chain at its genesis; `Conflict` if the id exists.
    async fn create_chain(&self, config: &ChainConfig, state: &ChainState) -> Result<ChainRecord, StoreError>;
    /// A chain.
    async fn chain(&self, id: &str) -> Result<Option<ChainRecord>, StoreError>;
    /// A chain's config and full current state (one consistent snapshot).
    async fn chain_state(&self, id: &str) -> Result<Option<(ChainConfig, ChainState)>, StoreError>;
    /// A chain's next seq and state root (hex): what a cached state is
    /// checked against before use.
    async fn chain_head(&self, id: &str) -> Result<Option<(u64, String)>, StoreError>;
    /// The job of `chain` with `seq`, if any.
    async fn job_by_seq(&self, chain: &str, seq: u64) -> Result<Option<Job>, StoreError>;
    /// The job idempotency key `key` of `chain` is bound to, if any.
    async fn job_by_key(&self, chain: &str, key: &str) -> Result<Option<Job>, StoreError>;
    /// Binds an unused idempotency key of `chain` to `job` (a replay that
    /// presents a new key); false if the key was bound already.
    async fn bind_key(&self, chain: &str, key: &str, job: &str) -> Result<bool, StoreError>;
    /// Atomically: advances the chain to `state` (writing the `touched`
    /// accounts) if it is still at `job.seq`, and inserts the job (and binds
    /// its idempotency key); `Stale` (nothing written) if the chain moved on.
    async fn commit_batch(&self, state: &ChainState, touched: &[u64], job: NewJob) -> Result<Job, StoreError>;
}

/// Jobs and epochs: the records, and the lease protocol workers follow.
#[async_trait]
pub trait WorkQueue: Send + Sync + 'static {
    /// Claims the oldest runnable job whose chain has no earlier unfinished
    /// job, leasing it to `worker` for `lease`.
    async fn claim_job(&self, worker: &str, lease: Duration) -> Result<Option<Claimed>, StoreError>;
    /// Marks each queued epoch whose range holds a failed or cancelled job
    /// with the first such job (its `error` names it; the epoch waits until
    /// the job is retried and proven), then claims the oldest queued epoch
    /// whose inputs are all proven: its batches (level 1), the epochs of the
    /// level below in its range (level >= 2), or the epoch it wraps.
    async fn claim_epoch(&self, worker: &str, lease: Duration) -> Result<Option<EpochRecord>, StoreError>;
    /// Claims work: a job first, else an epoch.
    async fn claim(&self, worker: &str, lease: Duration) -> Result<Option<Work>, StoreError> {
        if let Some(c) = self.claim_job(worker, lease).await? {
            return Ok(Some(Work::Job(Box::new(c))));
        }
        Ok(self.claim_epoch(worker, lease).await?.map(|e| Work::Epoch(Box::new(e))))
    }
    /// Extends a lease; false if the worker no longer holds it.
    async fn heartbeat(&self, kind: WorkKind, id: &str, worker: &str, lease: Duration) -> Result<bool, StoreError>;
    /// Records a failed attempt: requeued after `retry_in`, or failed for good
    /// when attempts are exhausted.
    async fn fail(
        &self,
        kind: WorkKind,
        id: &str,
        worker: &str,
        error: &str,
        retry_in: Duration,
    ) -> Result<(), StoreError>;
    /// Gives leased work back to the queue without counting the attempt
    /// (graceful shutdown).
    async fn release(&self, kind: WorkKind, id: &str, worker: &str) -> Result<(), StoreError>;
    /// Requeues (or fails, when out of attempts) work whose lease expired;
    /// returns how many.
    async fn requeue_expired(&self) -> Result<u64, StoreError>;
    /// Moves a leased job to another stage.
    async fn set_stage(&self, job: &str, worker: &str, state: JobState, progress: f64) -> Result<bool, StoreError>;
    /// Stores the proof and marks the job done, once: false if the worker
    /// lost the lease or the job was cancelled (nothing is written then).
    async fn complete_job(
        &self,
        job: &str,
        worker: &str,
        proof: &BatchProof,
        timings: Timings,
    ) -> Result<bool, StoreError>;
    /// Stores the epoch proof, once; false if the lease was lost.
    async fn complete_epoch(
        &self,
        id: &str,
        worker: &str,
        instances: &[String],
        proof: &[u8],
        vk_hash: &str,
        proving_ms: u64,
    ) -> Result<bool, StoreError>;
    /// A job.
    async fn job(&self, id: &str) -> Result<Option<Job>, StoreError>;
    /// Jobs in creation order.
    async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, StoreError>;
    /// Cancels a job that is not finished; returns it.
    async fn cancel(&self, id: &str) -> Result<Option<Job>, StoreError>;
    /// Queues a failed or cancelled job again with a fresh attempt budget
    /// (its accepted state stands; this proves it); returns it as it is
    /// after, in whatever state (unchanged when it was neither).
    async fn retry(&self, id: &str) -> Result<Option<Job>, StoreError>;
    /// Number of jobs per state.
    async fn counts(&self) -> Result<Vec<(JobState, u64)>, StoreError>;
    /// Creates the epoch `new` describes if its range is the next at its
    /// level and kind (the epochs of one level, and the wrappers, tile a
    /// chain's batches from seq 0: it starts at [`WorkQueue::epoch_frontier`])
    /// and returns it with `true`; returns the existing epoch of that level,
    /// kind and range with `false`; `Conflict` otherwise. Several nodes may
    /// race: one range is created.
    async fn create_epoch(&self, new: &NewEpoch) -> Result<(EpochRecord, bool), StoreError>;
    /// The first seq of `chain` that no epoch at `level` (wrappers when
    /// `wrapper`) covers yet: one past the last one's last seq, or 0. Ranges
    /// proven for the EVM count at every level: the wrappers' (which lie
    /// under every level's epochs anyway) and those of the level-1 epochs
    /// of earlier versions, which were proven for the EVM and are not
    /// aggregated or wrapped again.
    async fn epoch_frontier(&self, chain: &str, level: u32, wrapper: bool) -> Result<u64, StoreError>;
    /// The chains with an accepted batch that no wrapper covers yet: what
    /// the sealing sweep visits.
    async fn unwrapped_chains(&self) -> Result<Vec<String>, StoreError>;
    /// An epoch.
    async fn epoch(&self, id: &str) -> Result<Option<EpochRecord>, StoreError>;
    /// A chain's epochs that `filter` selects, by first seq (then level,
    /// level epochs before wrappers).
    async fn list_epochs(&self, chain: &str, filter: &EpochFilter) -> Result<Vec<EpochRecord>, StoreError>;
}

/// Batch proofs.
#[async_trait]
pub trait ProofStore: Send + Sync + 'static {
    /// The proof of a done job.
    async fn proof(&self, job: &str) -> Result<Option<BatchProof>, StoreError>;
    /// The proofs of `chain`'s batches `first..=last` in seq order (only
    /// those that are done).
    async fn batch_proofs(&self, chain: &str, first: u64, last: u64) -> Result<Vec<BatchProof>, StoreError>;
}

/// API keys.
#[async_trait]
pub trait ApiKeyStore: Send + Sync + 'static {
    /// Adds an API key.
    async fn add_key(&self, id: &str, name: &str, hash: &[u8]) -> Result<(), StoreError>;
    /// All API keys.
    async fn keys(&self) -> Result<Vec<ApiKey>, StoreError>;
    /// Revokes a key; false if unknown.
    async fn revoke_key(&self, id: &str) -> Result<bool, StoreError>;
    /// One key.
    async fn key(&self, id: &str) -> Result<Option<ApiKey>, StoreError>;
}

/// The durable store: every resource. A backend implements the four small
/// traits and gets this one.
pub trait Store: ChainStore + WorkQueue + ProofStore + ApiKeyStore {}

impl<T: ChainStore + WorkQueue + ProofStore + ApiKeyStore> Store for T {}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
