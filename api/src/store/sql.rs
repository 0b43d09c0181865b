//! The store ([`super::Store`]) on SQL: SQLite (WAL, the embedded default)
//! or PostgreSQL (a database server), through sqlx's `Any` driver. One
//! implementation serves both, so both have the same semantics by
//! construction: every statement is written once, with `?` or `?N`
//! parameters and `{kind:state}` placeholders that `SqlStore::sql` turns into
//! each database's text. The schemas are per database
//! (`migrations/` for SQLite, `migrations/postgres/` for PostgreSQL).
//!
//! SQLite: writes go through one connection, so transactions never race for
//! its write lock; reads use a small read-only pool. PostgreSQL: one pool;
//! claims take the oldest eligible row `FOR UPDATE SKIP LOCKED`, so workers
//! on several hosts never claim the same row, and acceptance advances a
//! chain with a conditional update of its row (`next_seq` must still be the
//! batch's seq), which PostgreSQL serializes on the row's lock: two API nodes
//! can never both accept seq N of a chain.

use std::{str::FromStr, time::Duration};

use async_trait::async_trait;
use sqlx::{
    any::{AnyConnectOptions, AnyPoolOptions, AnyRow},
    sqlite::SqliteConnectOptions,
    AnyPool, ConnectOptions, Executor, Row,
};
use statesync_circuits::{
    config::ChainConfig,
    state::{ChainState, StoredState, STATE_VERSION},
    witness::{fr_hex::to_hex, BatchWitness, PublicInputs},
};

use super::{
    now_ms, ApiKey, ApiKeyStore, BatchProof, ChainRecord, ChainStore, Claimed, EpochFilter, EpochRecord, EpochState,
    Job, JobFilter, JobState, NewEpoch, NewJob, ProofStore, StoreError, Timings, WorkKind, WorkQueue,
};
use statesync_prover::ProverError;

/// The SQLite schema, in order.
const SQLITE_SCHEMA: [&str; 4] = [
    include_str!("../../migrations/0001_init.sql"),
    include_str!("../../migrations/0002_epochs.sql"),
    include_str!("../../migrations/0003_state_version.sql"),
    include_str!("../../migrations/0004_idempotency_keys.sql"),
];

/// SQLite: epochs as a tree, a table rebuild run once, while `epochs` has
/// no `level` column (the schema above is run at every start).
const SQLITE_EPOCH_TREE: &str = include_str!("../../migrations/0005_epoch_tree.sql");

/// The PostgreSQL schema, in order.
const POSTGRES_SCHEMA: [&str; 3] = [
    include_str!("../../migrations/postgres/0001_init.sql"),
    include_str!("../../migrations/postgres/0002_witness_lz4.sql"),
    include_str!("../../migrations/postgres/0003_epoch_tree.sql"),
];

const EPOCH_COLUMNS: &str = "id, chain, first_seq, last_seq, level, size, wrapper, transcript, state, attempts, \
    max_attempts, error, created_at, finished_at, proving_ms, instances, proof, vk_hash";

/// [`WorkQueue::epoch_frontier`]: binds the chain, the level and the kind.
const EPOCH_FRONTIER: &str = "SELECT COALESCE(MAX(last_seq) + 1, 0) FROM epochs WHERE chain = ? \
    AND ((level = ? AND wrapper = ?) OR transcript = 'evm')";

const JOB_COLUMNS: &str = "n, id, chain, seq, content_hash, state, stage, progress, attempts, max_attempts, error, \
    public, transitions, created_at, started_at, finished_at, witness_ms, proving_ms";

/// Which database a [`SqlStore`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (one file).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The store on SQLite or PostgreSQL.
#[derive(Debug, Clone)]
pub struct SqlStore {
    dialect: Dialect,
    writer: AnyPool,
    reader: AnyPool,
}

impl SqlStore {
    /// Opens (creating) the SQLite database at `path` and applies the schema.
    pub async fn sqlite(path: &std::path::Path) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?.create_if_missing(true);
        let any = |o: SqliteConnectOptions| AnyConnectOptions::from_url(&o.to_url_lossy());
        // the `Any` URL carries the file and its mode (create, read-only),
        // not the pragmas: WAL, full sync, a busy timeout and foreign keys
        // are set on every connection
        let pragmas = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 30000; \
                       PRAGMA foreign_keys = ON;";
        let writer = AnyPoolOptions::new()
            .max_connections(1)
            .after_connect(move |c, _| Box::pin(async move { c.execute(pragmas).await.map(|_| ()) }))
            .connect_with(any(opts.clone())?)
            .await?;
        let store = SqlStore { dialect: Dialect::Sqlite, writer: writer.clone(), reader: writer };
        store.migrate(&SQLITE_SCHEMA).await?;
        let reader = AnyPoolOptions::new()
            .max_connections(4)
            .after_connect(|c, _| Box::pin(async move { c.execute("PRAGMA busy_timeout = 30000;").await.map(|_| ()) }))
            .connect_with(any(opts.read_only(true))?)
            .await?;
        Ok(SqlStore { reader, ..store })
    }

    /// Connects to PostgreSQL at `url` (`postgres://user@host:port/db`),
    /// working in `schema` when given (created if missing; tests use one
    /// each), and applies the schema.
    pub async fn postgres(url: &str, schema: Option<&str>) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        // a database that is down answers within seconds (a 500 the client retries), not after the request timeout
        let mut options = AnyPoolOptions::new().max_connections(16).acquire_timeout(Duration::from_secs(5));
        if let Some(schema) = schema {
            if !schema.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
                return Err(StoreError::Corrupt(format!("schema name {schema:?}: a-z, 0-9 and _ only")));
            }
            let set = format!("CREATE SCHEMA IF NOT EXISTS {schema}; SET search_path TO {schema};");
            options = options.after_connect(move |c, _| {
                let set = set.clone();
                Box::pin(async move { c.execute(set.as_str()).await.map(|_| ()) })
            });
        }
        let pool = options.connect_with(AnyConnectOptions::from_str(url)?).await?;
        let store = SqlStore { dialect: Dialect::Postgres, writer: pool.clone(), reader: pool };
        store.migrate(&POSTGRES_SCHEMA).await?;
        Ok(store)
    }

    /// Applies `schema` (idempotent statements) and checks the state
    /// version. On PostgreSQL an advisory lock keeps nodes starting together
    /// from applying it at once.
    async fn migrate(&self, schema: &[&str]) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        if self.dialect == Dialect::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(7406391425061216870)").execute(&mut *tx).await?;
        }
        for part in schema {
            sqlx::raw_sql(part).execute(&mut *tx).await?;
        }
        if self.dialect == Dialect::Sqlite {
            let tree: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pragma_table_info('epochs') WHERE name = 'level'")
                .fetch_one(&mut *tx)
                .await?;
            if tree == 0 {
                sqlx::raw_sql(SQLITE_EPOCH_TREE).execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        self.check_state_version().await
    }

    /// Records [`STATE_VERSION`] in a new database and refuses one whose chains
    /// were written with another (their roots hash differently).
    async fn check_state_version(&self) -> Result<(), StoreError> {
        let db = &self.writer;
        let stored: Option<String> =
            sqlx::query_scalar("SELECT value FROM meta WHERE key = 'state_version'").fetch_optional(db).await?;
        let version =
            match stored {
                Some(v) => v.parse::<u32>().map_err(|e| corrupt("state version")(e.to_string()))?,
                None => {
                    let chains: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM chains").fetch_one(db).await?;
                    if chains > 0 {
                        1
                    } else {
                        sqlx::query(&self.sql(
                            "INSERT INTO meta (key, value) VALUES ('state_version', ?) ON CONFLICT (key) DO NOTHING",
                        ))
                        .bind(STATE_VERSION.to_string())
                        .execute(db)
                        .await?;
                        STATE_VERSION
                    }
                }
            };
        if version != STATE_VERSION {
            return Err(StoreError::Corrupt(format!(
                "the database's chains were written with state version {version}, this build reads version \
                 {STATE_VERSION} (state root, leaf encoding and batch circuit changed): finish them with the old build, \
                 then start a new database"
            )));
        }
        Ok(())
    }

    /// `template` in this database's SQL: parameters `?` (numbered in
    /// order) and `?N` become `$N` (both databases read it; a statement uses
    /// one form or the other); `{skip_locked}` becomes `FOR UPDATE SKIP
    /// LOCKED`, `{for_share}` `FOR SHARE` and `{for_update}` `FOR UPDATE` on
    /// PostgreSQL, and nothing on SQLite (whose one writer serializes claims
    /// and whose transactions are snapshots); `{greatest}` is the function
    /// giving the larger of its arguments (`GREATEST`; SQLite's scalar
    /// `MAX`; they differ on NULLs, so give it none); `{job:done}` is the
    /// stored name of `JobState::Done` as a literal, `{job:leased}`,
    /// `{job:unfinished}` and `{epoch:leased}` the lists of
    /// [`JobState::LEASED`], [`JobState::UNFINISHED`] and
    /// [`EpochState::LEASED`]. A placeholder that names nothing panics (every
    /// statement runs in the store's tests, on both databases).
    fn sql(&self, template: &str) -> String {
        let mut out = String::with_capacity(template.len() + 16);
        let (mut bare, mut numbered) = (0, false);
        let mut chars = template.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '?' => {
                    out.push('$');
                    if chars.peek().is_some_and(|(_, d)| d.is_ascii_digit()) {
                        numbered = true;
                    } else {
                        bare += 1;
                        out.push_str(&bare.to_string());
                    }
                }
                '{' => {
                    let close = i + template[i..].find('}').expect("a closed placeholder");
                    out.push_str(&self.placeholder(&template[i + 1..close]));
                    while chars.peek().is_some_and(|(j, _)| *j <= close) {
                        chars.next();
                    }
                }
                c => out.push(c),
            }
        }
        assert!(!(numbered && bare > 0), "one parameter form per statement: {template}");
        out
    }

    fn placeholder(&self, name: &str) -> String {
        // (PostgreSQL, SQLite) spellings of what the two databases write differently
        let spelled = match name {
            "skip_locked" => Some(("FOR UPDATE SKIP LOCKED", "")),
            "for_share" => Some(("FOR SHARE", "")),
            "for_update" => Some(("FOR UPDATE", "")),
            "greatest" => Some(("GREATEST", "MAX")),
            _ => None,
        };
        if let Some((postgres, sqlite)) = spelled {
            return match self.dialect {
                Dialect::Postgres => postgres.into(),
                Dialect::Sqlite => sqlite.into(),
            };
        }
        match name.split_once(':').expect("{kind:state} or a spelled placeholder") {
            ("job", "leased") => quoted(&JobState::LEASED, JobState::as_str),
            ("job", "unfinished") => quoted(&JobState::UNFINISHED, JobState::as_str),
            ("epoch", "leased") => quoted(&EpochState::LEASED, EpochState::as_str),
            ("job", name) => quoted(&[JobState::parse(name).expect("a job state")], JobState::as_str),
            ("epoch", name) => quoted(&[EpochState::parse(name).expect("an epoch state")], EpochState::as_str),
            (kind, _) => panic!("no states of {kind}"),
        }
    }
}

/// The epoch of `new`'s chain, level, kind and range (`sql` selects it).
async fn same_range(sql: &str, conn: &mut sqlx::AnyConnection, new: &NewEpoch) -> Result<Option<AnyRow>, sqlx::Error> {
    sqlx::query(sql)
        .bind(&new.chain)
        .bind(new.level as i64)
        .bind(new.wrapper as i64)
        .bind(new.first_seq as i64)
        .bind(new.last_seq as i64)
        .fetch_optional(conn)
        .await
}

fn corrupt(what: &str) -> impl FnOnce(String) -> StoreError + '_ {
    move |e| StoreError::Corrupt(format!("{what}: {e}"))
}

/// `'a', 'b'`: the stored names of `states`, as SQL string literals.
fn quoted<S: Copy>(states: &[S], name: fn(S) -> &'static str) -> String {
    states.iter().map(|s| format!("'{}'", name(*s))).collect::<Vec<_>>().join(", ")
}

/// How the lease protocol reads and writes one kind of work's table.
struct Table {
    name: &'static str,
    /// The states a worker holds a lease in, as an SQL list.
    leased: String,
    queued: String,
    failed: String,
    /// Jobs mirror their state in `stage` and restart `progress`.
    mirrors_stage: bool,
}

impl Table {
    fn of(kind: WorkKind) -> Table {
        match kind {
            WorkKind::Job => {
                Table::new("jobs", &JobState::LEASED, [JobState::Queued, JobState::Failed], JobState::as_str, true)
            }
            WorkKind::Epoch => {
                let states = [EpochState::Queued, EpochState::Failed];
                Table::new("epochs", &EpochState::LEASED, states, EpochState::as_str, false)
            }
        }
    }

    fn new<S: Copy>(
        name: &'static str,
        leased: &[S],
        [queued, failed]: [S; 2],
        as_str: fn(S) -> &'static str,
        mirrors_stage: bool,
    ) -> Table {
        Table {
            name,
            leased: quoted(leased, as_str),
            queued: quoted(&[queued], as_str),
            failed: quoted(&[failed], as_str),
            mirrors_stage,
        }
    }

    /// `SET` clauses moving a row to the state `expr` (an SQL expression).
    fn set_state(&self, expr: &str) -> String {
        if self.mirrors_stage {
            format!("state = {expr}, stage = {expr}, progress = 0")
        } else {
            format!("state = {expr}")
        }
    }

    /// `SET` clauses of a lost or failed attempt: queued again, or failed
    /// for good (finished at `?1`) when its attempts are spent.
    fn retry_or_fail(&self) -> String {
        let (spent, failed, queued) = ("attempts >= max_attempts", &self.failed, &self.queued);
        format!(
            "{}, finished_at = CASE WHEN {spent} THEN ?1 ELSE NULL END",
            self.set_state(&format!("CASE WHEN {spent} THEN {failed} ELSE {queued} END"))
        )
    }
}

fn job_from_row(r: &AnyRow) -> Result<Job, StoreError> {
    let public: PublicInputs =
        serde_json::from_str(r.try_get("public")?).map_err(|e| corrupt("job public inputs")(e.to_string()))?;
    let state: String = r.try_get("state")?;
    Ok(Job {
        cursor: r.try_get("n")?,
        id: r.try_get("id")?,
        chain: r.try_get("chain")?,
        seq: r.try_get::<i64, _>("seq")? as u64,
        state: JobState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("job state {state:?}")))?,
        stage: r.try_get("stage")?,
        progress: r.try_get("progress")?,
        attempts: r.try_get::<i64, _>("attempts")? as u32,
        max_attempts: r.try_get::<i64, _>("max_attempts")? as u32,
        error: r.try_get("error")?,
        old_root: to_hex(&public.old_root),
        new_root: to_hex(&public.new_root),
        transitions: r.try_get::<i64, _>("transitions")? as u64,
        created_at: r.try_get("created_at")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        timings: Timings {
            witness_ms: r.try_get::<Option<i64>, _>("witness_ms")?.map(|v| v as u64),
            proving_ms: r.try_get::<Option<i64>, _>("proving_ms")?.map(|v| v as u64),
        },
        content_hash: r.try_get("content_hash")?,
    })
}

fn epoch_from_row(r: &AnyRow) -> Result<EpochRecord, StoreError> {
    let state: String = r.try_get("state")?;
    let instances = r
        .try_get::<Option<String>, _>("instances")?
        .map(|t| serde_json::from_str(&t).map_err(|e| corrupt("epoch instances")(e.to_string())))
        .transpose()?;
    Ok(EpochRecord {
        id: r.try_get("id")?,
        chain: r.try_get("chain")?,
        first_seq: r.try_get::<i64, _>("first_seq")? as u64,
        last_seq: r.try_get::<i64, _>("last_seq")? as u64,
        level: r.try_get::<i64, _>("level")? as u32,
        size: r.try_get::<i64, _>("size")? as u32,
        wrapper: r.try_get::<i64, _>("wrapper")? != 0,
        transcript: r
            .try_get::<&str, _>("transcript")?
            .parse()
            .map_err(|e: ProverError| corrupt("epoch transcript")(e.to_string()))?,
        state: EpochState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("epoch state {state:?}")))?,
        attempts: r.try_get::<i64, _>("attempts")? as u32,
        max_attempts: r.try_get::<i64, _>("max_attempts")? as u32,
        error: r.try_get("error")?,
        created_at: r.try_get("created_at")?,
        finished_at: r.try_get("finished_at")?,
        proving_ms: r.try_get::<Option<i64>, _>("proving_ms")?.map(|v| v as u64),
        instances,
        proof: r.try_get("proof")?,
        vk_hash: r.try_get("vk_hash")?,
    })
}

fn proof_from_row(r: &AnyRow) -> Result<BatchProof, StoreError> {
    Ok(BatchProof {
        proof: r.try_get("proof")?,
        vk_hash: r.try_get("vk_hash")?,
        transcript: r
            .try_get::<&str, _>("transcript")?
            .parse()
            .map_err(|e: ProverError| corrupt("transcript")(e.to_string()))?,
        public: serde_json::from_str(r.try_get("public")?).map_err(|e| corrupt("public inputs")(e.to_string()))?,
    })
}

fn chain_from_row(r: &AnyRow) -> Result<ChainRecord, StoreError> {
    let config: ChainConfig =
        serde_json::from_str(r.try_get("config")?).map_err(|e| corrupt("chain config")(e.to_string()))?;
    Ok(ChainRecord {
        id: r.try_get("id")?,
        config,
        state_root: r.try_get("root")?,
        next_seq: r.try_get::<i64, _>("next_seq")? as u64,
        created_at: r.try_get("created_at")?,
    })
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

#[async_trait]
impl ChainStore for SqlStore {
    async fn create_chain(&self, config: &ChainConfig, state: &ChainState) -> Result<ChainRecord, StoreError> {
        let now = now_ms();
        let root = to_hex(&state.root());
        let mut tx = self.writer.begin().await?;
        let inserted = sqlx::query(
            &self.sql("INSERT INTO chains (id, config, markets, next_seq, root, created_at) VALUES (?, ?, ?, ?, ?, ?)"),
        )
        .bind(&config.chain_id)
        .bind(serde_json::to_string(config).expect("configs serialize"))
        .bind(bincode::serialize(&state.markets).expect("markets serialize"))
        .bind(state.next_seq as i64)
        .bind(&root)
        .bind(now)
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict(format!("chain {} exists", config.chain_id)))
            }
            r => r?,
        };
        for (id, acct) in state.accounts() {
            sqlx::query(&self.sql("INSERT INTO accounts (chain, id, leaf) VALUES (?, ?, ?)"))
                .bind(&config.chain_id)
                .bind(id as i64)
                .bind(bincode::serialize(acct).expect("accounts serialize"))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(ChainRecord {
            id: config.chain_id.clone(),
            config: config.clone(),
            state_root: root,
            next_seq: state.next_seq,
            created_at: now,
        })
    }

    async fn chain(&self, id: &str) -> Result<Option<ChainRecord>, StoreError> {
        let row =
            sqlx::query(&self.sql("SELECT * FROM chains WHERE id = ?")).bind(id).fetch_optional(&self.reader).await?;
        row.as_ref().map(chain_from_row).transpose()
    }

    async fn chain_state(&self, id: &str) -> Result<Option<(ChainConfig, ChainState)>, StoreError> {
        // one snapshot of the chain row and its accounts: on PostgreSQL the
        // row's share lock holds off another node's acceptance until both
        // are read (SQLite's transaction is a snapshot already)
        let mut tx = self.writer.begin().await?;
        let Some(row) = sqlx::query(&self.sql("SELECT * FROM chains WHERE id = ? {for_share}"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let rec = chain_from_row(&row)?;
        let markets =
            bincode::deserialize(row.try_get("markets")?).map_err(|e| corrupt("market table")(e.to_string()))?;
        let mut accounts = std::collections::BTreeMap::new();
        for r in
            sqlx::query(&self.sql("SELECT id, leaf FROM accounts WHERE chain = ?")).bind(id).fetch_all(&mut *tx).await?
        {
            let leaf = bincode::deserialize(r.try_get("leaf")?).map_err(|e| corrupt("account")(e.to_string()))?;
            accounts.insert(r.try_get::<i64, _>("id")? as u64, leaf);
        }
        let state = ChainState::from_stored(StoredState {
            version: STATE_VERSION,
            tag: rec.config.tag(),
            shape: rec.config.shape.clone(),
            markets,
            accounts,
            next_seq: rec.next_seq,
        })
        .map_err(|e| StoreError::Corrupt(format!("chain {id}: {e}")))?;
        if to_hex(&state.root()) != rec.state_root {
            return Err(StoreError::Corrupt(format!(
                "chain {id}: stored accounts do not hash to the stored root (the database was written by another \
                 state version than {STATE_VERSION}, or it is corrupt)"
            )));
        }
        tx.commit().await?;
        Ok(Some((rec.config, state)))
    }

    async fn chain_head(&self, id: &str) -> Result<Option<(u64, String)>, StoreError> {
        let row = sqlx::query(&self.sql("SELECT next_seq, root FROM chains WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.writer)
            .await?;
        row.map(|r| Ok((r.try_get::<i64, _>("next_seq")? as u64, r.try_get("root")?))).transpose()
    }

    async fn job_by_seq(&self, chain: &str, seq: u64) -> Result<Option<Job>, StoreError> {
        let q = self.sql(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE chain = ? AND seq = ?"));
        let row = sqlx::query(&q).bind(chain).bind(seq as i64).fetch_optional(&self.writer).await?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn job_by_key(&self, chain: &str, key: &str) -> Result<Option<Job>, StoreError> {
        let q = self.sql(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE id = \
               (SELECT job_id FROM idempotency_keys WHERE chain = ? AND key = ?)"
        ));
        let row = sqlx::query(&q).bind(chain).bind(key).fetch_optional(&self.writer).await?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn bind_key(&self, chain: &str, key: &str, job: &str) -> Result<bool, StoreError> {
        let r = sqlx::query(&self.sql(
            "INSERT INTO idempotency_keys (chain, key, job_id) VALUES (?, ?, ?) ON CONFLICT (chain, key) DO NOTHING",
        ))
        .bind(chain)
        .bind(key)
        .bind(job)
        .execute(&self.writer)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn commit_batch(&self, state: &ChainState, touched: &[u64], job: NewJob) -> Result<Job, StoreError> {
        let now = now_ms();
        let mut tx = self.writer.begin().await?;
        let advanced = sqlx::query(
            &self.sql("UPDATE chains SET markets = ?, next_seq = ?, root = ? WHERE id = ? AND next_seq = ?"),
        )
        .bind(bincode::serialize(&state.markets).expect("markets serialize"))
        .bind(state.next_seq as i64)
        .bind(to_hex(&state.root()))
        .bind(&job.chain)
        .bind(job.seq as i64)
        .execute(&mut *tx)
        .await?;
        if advanced.rows_affected() != 1 {
            return Err(StoreError::Stale(format!("chain {} is no longer at seq {}", job.chain, job.seq)));
        }
        for id in touched {
            let acct = state.account(*id);
            sqlx::query(&self.sql("INSERT INTO accounts (chain, id, leaf) VALUES (?, ?, ?) ON CONFLICT (chain, id) DO UPDATE SET leaf = excluded.leaf"))
                .bind(&job.chain)
                .bind(*id as i64)
                .bind(bincode::serialize(&acct).expect("accounts serialize"))
                .execute(&mut *tx)
                .await?;
        }
        let inserted = sqlx::query(
            &self.sql("INSERT INTO jobs (id, chain, seq, idem_key, content_hash, state, stage, max_attempts, witness, public, transitions, created_at) \
             VALUES (?, ?, ?, ?, ?, {job:queued}, {job:queued}, ?, ?, ?, ?, ?)"),
        )
        .bind(&job.id)
        .bind(&job.chain)
        .bind(job.seq as i64)
        .bind(&job.idem_key)
        .bind(&job.content_hash)
        .bind(job.max_attempts as i64)
        .bind(bincode::serialize(&job.witness).expect("witnesses serialize"))
        .bind(serde_json::to_string(&job.witness.public).expect("public inputs serialize"))
        .bind(job.witness.public.transitions as i64)
        .bind(now)
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => return Err(StoreError::Conflict("job exists".into())),
            r => r?,
        };
        if let Some(key) = &job.idem_key {
            let bound = sqlx::query(&self.sql("INSERT INTO idempotency_keys (chain, key, job_id) VALUES (?, ?, ?)"))
                .bind(&job.chain)
                .bind(key)
                .bind(&job.id)
                .execute(&mut *tx)
                .await;
            match bound {
                Err(e) if is_unique_violation(&e) => {
                    return Err(StoreError::Conflict("this Idempotency-Key names another job".into()))
                }
                r => r?,
            };
        }
        tx.commit().await?;
        self.job(&job.id).await?.ok_or_else(|| StoreError::Corrupt("inserted job vanished".into()))
    }
}

#[async_trait]
impl WorkQueue for SqlStore {
    async fn claim_job(&self, worker: &str, lease: Duration) -> Result<Option<Claimed>, StoreError> {
        // `now` is read before the statement runs, and another process may
        // complete the previous seq in between with a later clock reading:
        // the start recorded is the later of the two, never before that finish.
        let now = now_ms();
        let q = self.sql(
            "UPDATE jobs SET state = {job:witness}, stage = {job:witness}, progress = 0.05, attempts = attempts + 1, \
               lease_owner = ?1, lease_expires = ?2, error = NULL, \
               started_at = COALESCE(started_at, {greatest}(?3, COALESCE((SELECT p.finished_at FROM jobs p \
                   WHERE p.chain = jobs.chain AND p.seq = jobs.seq - 1), 0))) \
             WHERE id = (SELECT j.id FROM jobs j WHERE j.state = {job:queued} AND j.run_after <= ?3 \
                 AND NOT EXISTS (SELECT 1 FROM jobs e WHERE e.chain = j.chain AND e.seq < j.seq \
                                 AND e.state IN ({job:unfinished})) \
                 ORDER BY j.n LIMIT 1 {skip_locked}) \
             RETURNING ",
        ) + JOB_COLUMNS
            + ", witness";
        let row = sqlx::query(&q)
            .bind(worker)
            .bind(now + lease.as_millis() as i64)
            .bind(now)
            .fetch_optional(&self.writer)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let job = job_from_row(&row)?;
        let witness: BatchWitness =
            bincode::deserialize(row.try_get("witness")?).map_err(|e| corrupt("job witness")(e.to_string()))?;
        Ok(Some(Claimed { job, witness }))
    }

    async fn claim_epoch(&self, worker: &str, lease: Duration) -> Result<Option<EpochRecord>, StoreError> {
        let now = now_ms();
        let blocker = self.sql(
            "SELECT 'waiting for job ' || j.id || ' (seq ' || j.seq || ', ' || j.state || \
               '): POST /v1/jobs/' || j.id || '/retry proves it' FROM jobs j WHERE j.chain = epochs.chain \
               AND j.seq BETWEEN epochs.first_seq AND epochs.last_seq AND j.state IN ({job:failed}, {job:cancelled}) \
             ORDER BY j.seq LIMIT 1",
        );
        // (an epoch waiting out a failed attempt's backoff keeps that error)
        sqlx::query(&self.sql(&format!(
            "UPDATE epochs SET error = ({blocker}) WHERE state = {{epoch:queued}} AND error IS DISTINCT FROM ({blocker}) \
               AND (({blocker}) IS NOT NULL OR error LIKE 'waiting for job %')"
        )))
        .execute(&self.writer)
        .await?;
        let q = self.sql(
            "UPDATE epochs SET state = {epoch:proving}, attempts = attempts + 1, lease_owner = ?1, lease_expires = ?2, \
               started_at = COALESCE(started_at, ?3), error = NULL \
             WHERE id = (SELECT e.id FROM epochs e WHERE e.state = {epoch:queued} AND e.run_after <= ?3 \
                 AND ((e.wrapper = 0 AND e.level = 1 \
                       AND (SELECT COUNT(*) FROM jobs j WHERE j.chain = e.chain AND j.state = {job:done} \
                            AND j.seq BETWEEN e.first_seq AND e.last_seq) = e.last_seq - e.first_seq + 1) \
                   OR (e.wrapper = 0 AND e.level > 1 \
                       AND EXISTS (SELECT 1 FROM epochs c WHERE c.chain = e.chain AND c.level = e.level - 1 \
                                   AND c.wrapper = 0 AND c.first_seq = e.first_seq) \
                       AND NOT EXISTS (SELECT 1 FROM epochs c WHERE c.chain = e.chain AND c.level = e.level - 1 \
                                       AND c.wrapper = 0 AND c.first_seq >= e.first_seq \
                                       AND c.last_seq <= e.last_seq AND c.state <> {epoch:done})) \
                   OR (e.wrapper = 1 \
                       AND EXISTS (SELECT 1 FROM epochs c WHERE c.chain = e.chain AND c.level = e.level \
                                   AND c.wrapper = 0 AND c.first_seq = e.first_seq AND c.last_seq = e.last_seq \
                                   AND c.state = {epoch:done}))) \
                 ORDER BY e.n LIMIT 1 {skip_locked}) \
             RETURNING ",
        ) + EPOCH_COLUMNS;
        let row = sqlx::query(&q)
            .bind(worker)
            .bind(now + lease.as_millis() as i64)
            .bind(now)
            .fetch_optional(&self.writer)
            .await?;
        row.as_ref().map(epoch_from_row).transpose()
    }

    async fn heartbeat(&self, kind: WorkKind, id: &str, worker: &str, lease: Duration) -> Result<bool, StoreError> {
        let table = Table::of(kind);
        let r = sqlx::query(&self.sql(&format!(
            "UPDATE {} SET lease_expires = ? WHERE id = ? AND lease_owner = ? AND state IN ({})",
            table.name, table.leased
        )))
        .bind(now_ms() + lease.as_millis() as i64)
        .bind(id)
        .bind(worker)
        .execute(&self.writer)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn fail(
        &self,
        kind: WorkKind,
        id: &str,
        worker: &str,
        error: &str,
        retry_in: Duration,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let table = Table::of(kind);
        sqlx::query(&self.sql(&format!(
            "UPDATE {} SET {}, error = ?2, lease_owner = NULL, lease_expires = NULL, run_after = ?3 \
             WHERE id = ?4 AND lease_owner = ?5 AND state IN ({})",
            table.name,
            table.retry_or_fail(),
            table.leased
        )))
        .bind(now)
        .bind(error)
        .bind(now + retry_in.as_millis() as i64)
        .bind(id)
        .bind(worker)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn release(&self, kind: WorkKind, id: &str, worker: &str) -> Result<(), StoreError> {
        let table = Table::of(kind);
        sqlx::query(&self.sql(&format!(
            "UPDATE {} SET {}, attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, lease_owner = NULL, lease_expires = NULL \
             WHERE id = ? AND lease_owner = ? AND state IN ({})",
            table.name,
            table.set_state(&table.queued),
            table.leased
        )))
        .bind(id)
        .bind(worker)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn requeue_expired(&self) -> Result<u64, StoreError> {
        let now = now_ms();
        let mut requeued = 0;
        for kind in WorkKind::ALL {
            let table = Table::of(kind);
            let r = sqlx::query(&self.sql(&format!(
                "UPDATE {} SET {}, error = 'lease expired (worker lost)', lease_owner = NULL, lease_expires = NULL \
                 WHERE state IN ({}) AND lease_expires < ?1",
                table.name,
                table.retry_or_fail(),
                table.leased
            )))
            .bind(now)
            .execute(&self.writer)
            .await?;
            requeued += r.rows_affected();
        }
        Ok(requeued)
    }

    async fn set_stage(&self, job: &str, worker: &str, state: JobState, progress: f64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            &self.sql("UPDATE jobs SET state = ?1, stage = ?1, progress = ?2 WHERE id = ?3 AND lease_owner = ?4 AND state IN ({job:leased})"),
        )
        .bind(state.as_str())
        .bind(progress)
        .bind(job)
        .bind(worker)
        .execute(&self.writer)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn complete_job(
        &self,
        job: &str,
        worker: &str,
        proof: &BatchProof,
        timings: Timings,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query(&self.sql(
            "UPDATE jobs SET state = {job:done}, stage = {job:done}, progress = 1, finished_at = ?, lease_owner = NULL, \
               lease_expires = NULL, witness_ms = ?, proving_ms = ? \
             WHERE id = ? AND lease_owner = ? AND state IN ({job:leased})",
        ))
        .bind(now)
        .bind(timings.witness_ms.map(|v| v as i64))
        .bind(timings.proving_ms.map(|v| v as i64))
        .bind(job)
        .bind(worker)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query(
            &self.sql("INSERT INTO proofs (job_id, proof, vk_hash, transcript, created_at) VALUES (?, ?, ?, ?, ?)"),
        )
        .bind(job)
        .bind(&proof.proof)
        .bind(&proof.vk_hash)
        .bind(proof.transcript.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn complete_epoch(
        &self,
        id: &str,
        worker: &str,
        instances: &[String],
        proof: &[u8],
        vk_hash: &str,
        proving_ms: u64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(&self.sql(
            "UPDATE epochs SET state = {epoch:done}, finished_at = ?, lease_owner = NULL, lease_expires = NULL, \
               proving_ms = ?, instances = ?, proof = ?, vk_hash = ? \
             WHERE id = ? AND lease_owner = ? AND state IN ({epoch:leased})",
        ))
        .bind(now_ms())
        .bind(proving_ms as i64)
        .bind(serde_json::to_string(instances).expect("strings serialize"))
        .bind(proof)
        .bind(vk_hash)
        .bind(id)
        .bind(worker)
        .execute(&self.writer)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn job(&self, id: &str) -> Result<Option<Job>, StoreError> {
        let q = self.sql(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?"));
        let row = sqlx::query(&q).bind(id).fetch_optional(&self.writer).await?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn list_jobs(&self, f: &JobFilter) -> Result<Vec<Job>, StoreError> {
        let q = self.sql(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE (?1 IS NULL OR chain = ?1) AND (?2 IS NULL OR state = ?2) AND n > ?3 ORDER BY n LIMIT ?4"
        ));
        let rows = sqlx::query(&q)
            .bind(&f.chain)
            .bind(f.state.map(JobState::as_str))
            .bind(f.after.unwrap_or(0))
            .bind(f.limit as i64)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(job_from_row).collect()
    }

    async fn cancel(&self, id: &str) -> Result<Option<Job>, StoreError> {
        sqlx::query(&self.sql(
            "UPDATE jobs SET state = {job:cancelled}, stage = {job:cancelled}, finished_at = ?, lease_owner = NULL, lease_expires = NULL \
             WHERE id = ? AND state IN ({job:unfinished})",
        ))
        .bind(now_ms())
        .bind(id)
        .execute(&self.writer)
        .await?;
        self.job(id).await
    }

    async fn retry(&self, id: &str) -> Result<Option<Job>, StoreError> {
        sqlx::query(&self.sql(
            "UPDATE jobs SET state = {job:queued}, stage = {job:queued}, progress = 0, attempts = 0, error = NULL, \
               finished_at = NULL, run_after = 0, lease_owner = NULL, lease_expires = NULL \
             WHERE id = ? AND state IN ({job:failed}, {job:cancelled})",
        ))
        .bind(id)
        .execute(&self.writer)
        .await?;
        self.job(id).await
    }

    async fn counts(&self) -> Result<Vec<(JobState, u64)>, StoreError> {
        let rows = sqlx::query(&self.sql("SELECT state, COUNT(*) AS c FROM jobs GROUP BY state"))
            .fetch_all(&self.reader)
            .await?;
        let mut out: Vec<(JobState, u64)> = JobState::ALL.iter().map(|s| (*s, 0)).collect();
        for r in rows {
            let s: String = r.try_get("state")?;
            if let Some(st) = JobState::parse(&s) {
                if let Some(slot) = out.iter_mut().find(|(x, _)| *x == st) {
                    slot.1 = r.try_get::<i64, _>("c")? as u64;
                }
            }
        }
        Ok(out)
    }

    async fn create_epoch(&self, new: &NewEpoch) -> Result<(EpochRecord, bool), StoreError> {
        let (level, wrapper) = (new.level as i64, new.wrapper as i64);
        let mut tx = self.writer.begin().await?;
        // one creator per chain at a time (SQLite's one writer serializes them)
        sqlx::query(&self.sql("SELECT id FROM chains WHERE id = ? {for_update}"))
            .bind(&new.chain)
            .fetch_optional(&mut *tx)
            .await?;
        let same = self.sql(&format!(
            "SELECT {EPOCH_COLUMNS} FROM epochs WHERE chain = ? AND level = ? AND wrapper = ? AND first_seq = ? \
             AND last_seq = ?"
        ));
        if let Some(row) = same_range(&same, &mut tx, new).await? {
            return Ok((epoch_from_row(&row)?, false));
        }
        let frontier: i64 = sqlx::query_scalar(&self.sql(EPOCH_FRONTIER))
            .bind(&new.chain)
            .bind(level)
            .bind(wrapper)
            .fetch_one(&mut *tx)
            .await?;
        if new.first_seq as i64 != frontier {
            let what = if new.wrapper { "wrapper" } else { "epoch" };
            return Err(StoreError::Conflict(format!(
                "the next level-{} {what} of chain {} starts at seq {frontier}, not {}",
                new.level, new.chain, new.first_seq
            )));
        }
        sqlx::query(&self.sql(
            "INSERT INTO epochs (id, chain, first_seq, last_seq, level, size, wrapper, transcript, state, \
               max_attempts, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, {epoch:queued}, ?, ?)",
        ))
        .bind(&new.id)
        .bind(&new.chain)
        .bind(new.first_seq as i64)
        .bind(new.last_seq as i64)
        .bind(level)
        .bind(new.size as i64)
        .bind(wrapper)
        .bind(new.transcript().as_str())
        .bind(new.max_attempts as i64)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        let row = same_range(&same, &mut tx, new)
            .await?
            .ok_or_else(|| StoreError::Corrupt("the epoch just inserted".into()))?;
        tx.commit().await?;
        Ok((epoch_from_row(&row)?, true))
    }

    async fn epoch_frontier(&self, chain: &str, level: u32, wrapper: bool) -> Result<u64, StoreError> {
        let frontier: i64 = sqlx::query_scalar(&self.sql(EPOCH_FRONTIER))
            .bind(chain)
            .bind(level as i64)
            .bind(wrapper as i64)
            .fetch_one(&self.reader)
            .await?;
        Ok(frontier as u64)
    }

    async fn unwrapped_chains(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT c.id FROM chains c WHERE c.next_seq > \
               COALESCE((SELECT MAX(e.last_seq) + 1 FROM epochs e WHERE e.chain = c.id AND e.wrapper = 1), 0) \
             ORDER BY c.id",
        )
        .fetch_all(&self.reader)
        .await?)
    }

    async fn epoch(&self, id: &str) -> Result<Option<EpochRecord>, StoreError> {
        let row = sqlx::query(&self.sql(&format!("SELECT {EPOCH_COLUMNS} FROM epochs WHERE id = ?")))
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(epoch_from_row).transpose()
    }

    async fn list_epochs(&self, chain: &str, filter: &EpochFilter) -> Result<Vec<EpochRecord>, StoreError> {
        let mut q = format!("SELECT {EPOCH_COLUMNS} FROM epochs WHERE chain = ? AND first_seq >= ?");
        for (set, clause) in [
            (filter.level.is_some(), " AND level = ?"),
            (filter.wrapper.is_some(), " AND wrapper = ?"),
            (filter.to_seq.is_some(), " AND last_seq <= ?"),
        ] {
            if set {
                q.push_str(clause);
            }
        }
        q.push_str(" ORDER BY first_seq, wrapper, level, n LIMIT ?");
        let q = self.sql(&q);
        let mut query = sqlx::query(&q).bind(chain).bind(filter.from_seq as i64);
        if let Some(level) = filter.level {
            query = query.bind(level as i64);
        }
        if let Some(wrapper) = filter.wrapper {
            query = query.bind(wrapper as i64);
        }
        if let Some(to) = filter.to_seq {
            query = query.bind(to as i64);
        }
        let rows = query.bind(filter.limit as i64).fetch_all(&self.reader).await?;
        rows.iter().map(epoch_from_row).collect()
    }
}

#[async_trait]
impl ProofStore for SqlStore {
    async fn proof(&self, job: &str) -> Result<Option<BatchProof>, StoreError> {
        let row = sqlx::query(&self.sql("SELECT p.proof, p.vk_hash, p.transcript, j.public FROM proofs p JOIN jobs j ON j.id = p.job_id WHERE p.job_id = ?"))
            .bind(job)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(proof_from_row).transpose()
    }

    async fn batch_proofs(&self, chain: &str, first: u64, last: u64) -> Result<Vec<BatchProof>, StoreError> {
        let rows = sqlx::query(&self.sql(
            "SELECT p.proof, p.vk_hash, p.transcript, j.public FROM proofs p JOIN jobs j ON j.id = p.job_id \
             WHERE j.chain = ? AND j.seq BETWEEN ? AND ? AND j.state = {job:done} ORDER BY j.seq",
        ))
        .bind(chain)
        .bind(first as i64)
        .bind(last as i64)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(proof_from_row).collect()
    }
}

#[async_trait]
impl ApiKeyStore for SqlStore {
    async fn add_key(&self, id: &str, name: &str, hash: &[u8]) -> Result<(), StoreError> {
        sqlx::query(&self.sql("INSERT INTO api_keys (id, name, hash, created_at) VALUES (?, ?, ?, ?)"))
            .bind(id)
            .bind(name)
            .bind(hash)
            .bind(now_ms())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let rows = sqlx::query(&self.sql("SELECT * FROM api_keys ORDER BY created_at")).fetch_all(&self.reader).await?;
        rows.iter().map(key_from_row).collect()
    }

    async fn revoke_key(&self, id: &str) -> Result<bool, StoreError> {
        let r = sqlx::query(&self.sql("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"))
            .bind(now_ms())
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn key(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
        let row =
            sqlx::query(&self.sql("SELECT * FROM api_keys WHERE id = ?")).bind(id).fetch_optional(&self.reader).await?;
        row.as_ref().map(key_from_row).transpose()
    }
}

fn key_from_row(r: &AnyRow) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        created_at: r.try_get("created_at")?,
        revoked_at: r.try_get("revoked_at")?,
        hash: r.try_get("hash")?,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use statesync_circuits::{
        config::ChainConfig,
        engine::{apply_batch, Applied},
        examples,
        state::ChainState,
    };
    use statesync_prover::snark::TranscriptKind;
    use statesync_testkit::{deposit_batch, postgres_url};

    use super::*;

    /// A fresh database: a temporary SQLite file, or a schema of its own on
    /// PostgreSQL (dropped by [`Fresh::drop_schema`] when the test passes),
    /// so runs never see each other's rows.
    struct Fresh {
        dir: tempfile::TempDir,
        schema: Option<String>,
    }

    impl Fresh {
        async fn drop_schema(self) {
            if let Some(schema) = self.schema {
                sqlx::any::install_default_drivers();
                let db = AnyPool::connect(&postgres_url()).await.unwrap();
                sqlx::raw_sql(&format!("DROP SCHEMA {schema} CASCADE")).execute(&db).await.unwrap();
            }
        }
    }

    async fn open(dialect: Dialect) -> (Fresh, SqlStore) {
        let dir = tempfile::tempdir().unwrap();
        match dialect {
            Dialect::Sqlite => {
                let store = SqlStore::sqlite(&dir.path().join("db.sqlite")).await.unwrap();
                (Fresh { dir, schema: None }, store)
            }
            Dialect::Postgres => {
                let schema = format!("t{}", uuid::Uuid::new_v4().simple());
                let store = SqlStore::postgres(&postgres_url(), Some(&schema)).await.unwrap_or_else(|e| {
                    panic!("PostgreSQL at {} (scripts/test starts the local server): {e}", postgres_url())
                });
                (Fresh { dir, schema: Some(schema) }, store)
            }
        }
    }

    async fn setup(dialect: Dialect) -> (Fresh, SqlStore, ChainConfig) {
        let (fresh, store) = open(dialect).await;
        let cfg = examples::chain_with(2, 4);
        store.create_chain(&cfg, &cfg.genesis_state()).await.unwrap();
        (fresh, store, cfg)
    }

    /// Each test body once per database: `name::sqlite` and `name::postgres`.
    macro_rules! on_both {
        ($(async fn $name:ident($d:ident: Dialect) $body:block)*) => {$(
            mod $name {
                use super::*;
                async fn body($d: Dialect) $body
                #[tokio::test]
                async fn sqlite() {
                    body(Dialect::Sqlite).await
                }
                #[tokio::test]
                async fn postgres() {
                    body(Dialect::Postgres).await
                }
            }
        )*};
    }

    #[tokio::test]
    async fn a_database_of_another_state_version_is_refused() {
        let (fresh, store, _) = setup(Dialect::Sqlite).await;
        let path = fresh.dir.path().join("db.sqlite");
        drop(store);
        assert!(SqlStore::sqlite(&path).await.is_ok(), "the version it recorded");
        for old in ["UPDATE meta SET value = '1' WHERE key = 'state_version'", "DELETE FROM meta"] {
            let db = AnyPool::connect(&format!("sqlite://{}", path.display())).await.unwrap();
            sqlx::query(old).execute(&db).await.unwrap();
            db.close().await;
            let Err(StoreError::Corrupt(m)) = SqlStore::sqlite(&path).await else { panic!("{old}: must be refused") };
            assert!(m.contains("state version 1"), "{m}");
        }
    }

    /// The local server has lz4 (PostgreSQL 15, Debian's build): witnesses
    /// are compressed with it, and opening the store again (the migration
    /// runs at every start) keeps it.
    #[tokio::test]
    async fn postgresql_compresses_witnesses_with_lz4() {
        let (fresh, store) = open(Dialect::Postgres).await;
        let schema = fresh.schema.clone().unwrap();
        let compression = || async {
            sqlx::query_scalar::<_, String>(
                "SELECT attcompression::text FROM pg_attribute WHERE attrelid = 'jobs'::regclass AND attname = 'witness'",
            )
            .fetch_one(&store.writer)
            .await
            .unwrap()
        };
        assert_eq!(compression().await, "l");
        let again = SqlStore::postgres(&postgres_url(), Some(&schema)).await.unwrap();
        drop(again);
        assert_eq!(compression().await, "l");
        fresh.drop_schema().await;
    }

    #[tokio::test]
    async fn statements_are_written_for_each_database() {
        let (_fresh, store) = open(Dialect::Sqlite).await;
        let pg = SqlStore { dialect: Dialect::Postgres, ..store.clone() };
        let claim = "SELECT id FROM jobs WHERE state = {job:queued} AND n > ? LIMIT ? {skip_locked}";
        assert_eq!(store.sql(claim), "SELECT id FROM jobs WHERE state = 'queued' AND n > $1 LIMIT $2 ");
        assert_eq!(
            pg.sql(claim),
            "SELECT id FROM jobs WHERE state = 'queued' AND n > $1 LIMIT $2 FOR UPDATE SKIP LOCKED"
        );
        assert_eq!(
            (store.sql("{greatest}(?, 0)"), pg.sql("{greatest}(?, 0)")),
            ("MAX($1, 0)".into(), "GREATEST($1, 0)".into())
        );
        assert_eq!(
            store.sql("UPDATE t SET a = ?2 WHERE b = ?1 AND c = ?2"),
            "UPDATE t SET a = $2 WHERE b = $1 AND c = $2"
        );
        let mixed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| store.sql("SELECT ?1, ?")));
        assert!(mixed.is_err(), "one parameter form per statement");
    }

    async fn accept(store: &SqlStore, state: &ChainState, seq: u64, id: &str) -> (Applied, Job) {
        let applied = apply_batch(state, "perps-devnet-1", &deposit_batch("perps-devnet-1", seq, 1, 1)).unwrap();
        let job = store
            .commit_batch(
                &applied.state,
                &[1],
                NewJob {
                    id: id.into(),
                    chain: "perps-devnet-1".into(),
                    seq,
                    idem_key: Some(format!("k{seq}")),
                    content_hash: format!("h{seq}"),
                    witness: applied.witness.clone(),
                    max_attempts: 2,
                },
            )
            .await
            .unwrap();
        (applied, job)
    }

    fn proof(a: &Applied) -> BatchProof {
        BatchProof {
            proof: vec![1, 2, 3],
            vk_hash: "vk".into(),
            transcript: TranscriptKind::Poseidon,
            public: a.witness.public,
        }
    }

    const LEASE: Duration = Duration::from_secs(60);

    /// A new epoch of the test chain at `level` (N = 2; `wrapper`: its wrapper).
    fn epoch(id: &str, level: u32, wrapper: bool, first_seq: u64, last_seq: u64) -> NewEpoch {
        let chain = "perps-devnet-1".into();
        NewEpoch { id: id.into(), chain, first_seq, last_seq, level, size: 2, wrapper, max_attempts: 3 }
    }

    on_both! {
        async fn chains_persist_and_advance_atomically(dialect: Dialect) {
            let (fresh, store, cfg) = setup(dialect).await;
            assert!(matches!(store.create_chain(&cfg, &cfg.genesis_state()).await, Err(StoreError::Conflict(_))));
            let (a0, job) = accept(&store, &cfg.genesis_state(), 0, "j0").await;
            assert_eq!((job.state, job.seq, job.new_root.clone()), (JobState::Queued, 0, to_hex(&a0.state.root())));
            let (_, st) = store.chain_state("perps-devnet-1").await.unwrap().unwrap();
            assert_eq!(st.root(), a0.state.root());
            assert_eq!(st.next_seq, 1);
            // a writer still at seq 0 is refused and changes nothing
            let stale =
                apply_batch(&cfg.genesis_state(), "perps-devnet-1", &deposit_batch("perps-devnet-1", 0, 1, 1)).unwrap();
            let again = store
                .commit_batch(
                    &stale.state,
                    &[1],
                    NewJob {
                        id: "dup".into(),
                        chain: "perps-devnet-1".into(),
                        seq: 0,
                        idem_key: None,
                        content_hash: "x".into(),
                        witness: stale.witness,
                        max_attempts: 2,
                    },
                )
                .await;
            assert!(matches!(again, Err(StoreError::Stale(_))), "the chain moved on: {again:?}");
            assert!(store.job("dup").await.unwrap().is_none());
            let (next, root) = store.chain_head("perps-devnet-1").await.unwrap().unwrap();
            let rec = store.chain("perps-devnet-1").await.unwrap().unwrap();
            assert_eq!((next, root), (1, rec.state_root), "the head is the stored chain's");
            assert!(store.chain_head("nope").await.unwrap().is_none());
            assert_eq!(store.job_by_key("perps-devnet-1", "k0").await.unwrap().unwrap().id, "j0");
            assert_eq!(store.job_by_seq("perps-devnet-1", 0).await.unwrap().unwrap().id, "j0");
            // a replay's new key is bound to the job from its first use on
            assert!(store.bind_key("perps-devnet-1", "replayed", "j0").await.unwrap());
            assert!(!store.bind_key("perps-devnet-1", "replayed", "j0").await.unwrap(), "bound once");
            assert_eq!(store.job_by_key("perps-devnet-1", "replayed").await.unwrap().unwrap().id, "j0");
            assert!(store.job_by_key("perps-devnet-1", "unused").await.unwrap().is_none());
            fresh.drop_schema().await;
        }
        async fn epochs_wait_for_their_batches_and_complete_once(dialect: Dialect) {
            let (fresh, store, cfg) = setup(dialect).await;
            let (a0, _) = accept(&store, &cfg.genesis_state(), 0, "j0").await;
            let (a1, _) = accept(&store, &a0.state, 1, "j1").await;
            let (a2, _) = accept(&store, &a1.state, 2, "j2").await;
            let (a3, _) = accept(&store, &a2.state, 3, "j3").await;
            let (e, created) = store.create_epoch(&epoch("e0", 1, false, 0, 1)).await.unwrap();
            assert!(created);
            assert_eq!((e.state, e.first_seq, e.last_seq), (EpochState::Queued, 0, 1));
            assert_eq!((e.level, e.size, e.wrapper, e.transcript), (1, 2, false, TranscriptKind::Poseidon));
            let (same, created) = store.create_epoch(&epoch("other", 1, false, 0, 1)).await.unwrap();
            assert!(!created, "one epoch per range");
            assert_eq!(same.id, "e0");
            assert!(store.claim_epoch("w", LEASE).await.unwrap().is_none(), "its batches are not proven");
            for (id, a) in [("j0", &a0), ("j1", &a1)] {
                let c = store.claim_job("w", LEASE).await.unwrap().unwrap();
                assert_eq!(c.job.id, id);
                assert!(store.complete_job(id, "w", &proof(a), Timings::default()).await.unwrap());
            }
            let proofs = store.batch_proofs("perps-devnet-1", 0, 1).await.unwrap();
            assert_eq!(proofs.iter().map(|p| p.public).collect::<Vec<_>>(), vec![a0.witness.public, a1.witness.public]);
            let claimed = store.claim_epoch("w", LEASE).await.unwrap().unwrap();
            assert_eq!((claimed.id.as_str(), claimed.state, claimed.attempts), ("e0", EpochState::Proving, 1));
            assert!(store.claim_epoch("w2", LEASE).await.unwrap().is_none(), "leased");
            assert!(store.heartbeat(WorkKind::Epoch, "e0", "w", LEASE).await.unwrap());
            store.release(WorkKind::Epoch, "e0", "w").await.unwrap();
            let again = store.claim_epoch("w2", LEASE).await.unwrap().unwrap();
            assert_eq!(again.attempts, 1, "a release does not count the attempt");
            // the lease protocol of jobs: a failed attempt and a lost lease are retried
            assert!(!store.heartbeat(WorkKind::Epoch, "e0", "w", LEASE).await.unwrap(), "only the holder extends it");
            store.fail(WorkKind::Epoch, "e0", "w2", "boom", Duration::ZERO).await.unwrap();
            let failed = store.epoch("e0").await.unwrap().unwrap();
            assert_eq!((failed.state, failed.error.as_deref()), (EpochState::Queued, Some("boom")));
            assert_eq!(store.claim_epoch("w2", Duration::from_millis(1)).await.unwrap().unwrap().attempts, 2);
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(store.requeue_expired().await.unwrap(), 1);
            let lost = store.epoch("e0").await.unwrap().unwrap();
            assert_eq!(lost.state, EpochState::Queued, "{lost:?}");
            assert!(lost.error.unwrap().contains("lease expired"));
            assert_eq!(store.claim_epoch("w2", LEASE).await.unwrap().unwrap().attempts, 3);
            let inst = vec!["0x01".to_string()];
            assert!(!store.complete_epoch("e0", "w", &inst, &[9], "vk", 5).await.unwrap(), "not the lease owner");
            assert!(store.complete_epoch("e0", "w2", &inst, &[9], "vk", 5).await.unwrap());
            assert!(!store.complete_epoch("e0", "w2", &inst, &[9], "vk", 5).await.unwrap(), "only once");
            let done = store.epoch("e0").await.unwrap().unwrap();
            assert_eq!((done.state, done.proof, done.instances), (EpochState::Done, Some(vec![9]), Some(inst)));
            // an epoch over a cancelled batch waits for it and names it; once
            // the job is retried and proven, the epoch is claimed
            store.create_epoch(&epoch("e1", 1, false, 2, 3)).await.unwrap();
            store.cancel("j3").await.unwrap();
            assert!(store.claim_epoch("w", LEASE).await.unwrap().is_none());
            let waiting = store.epoch("e1").await.unwrap().unwrap();
            assert_eq!(waiting.state, EpochState::Queued);
            let why = waiting.error.unwrap();
            assert!(why.starts_with("waiting for job j3 (seq 3, cancelled)") && why.contains("/v1/jobs/j3/retry"), "{why}");
            assert_eq!(store.retry("j0").await.unwrap().unwrap().state, JobState::Done, "only failed or cancelled jobs");
            let again = store.retry("j3").await.unwrap().unwrap();
            assert_eq!((again.state, again.attempts, again.error), (JobState::Queued, 0, None));
            for (id, a) in [("j2", &a2), ("j3", &a3)] {
                let c = store.claim_job("w", LEASE).await.unwrap().unwrap();
                assert_eq!(c.job.id, id);
                assert!(store.complete_job(id, "w", &proof(a), Timings::default()).await.unwrap());
            }
            let claimed = store.claim_epoch("w", LEASE).await.unwrap().unwrap();
            assert_eq!((claimed.id.as_str(), claimed.error), ("e1", None), "unblocked, the note is gone");
            // a failed attempt's error stays while the epoch waits out its backoff
            store.fail(WorkKind::Epoch, "e1", "w", "boom", Duration::from_secs(60)).await.unwrap();
            assert!(store.claim_epoch("w", LEASE).await.unwrap().is_none(), "backing off");
            assert_eq!(store.epoch("e1").await.unwrap().unwrap().error.as_deref(), Some("boom"));
            let all = EpochFilter { level: None, wrapper: None, from_seq: 0, to_seq: None, limit: 10 };
            assert_eq!(store.list_epochs("perps-devnet-1", &all).await.unwrap().len(), 2);
            let from_1 = EpochFilter { from_seq: 1, ..all };
            assert_eq!(store.list_epochs("perps-devnet-1", &from_1).await.unwrap().len(), 1);
            fresh.drop_schema().await;
        }
        async fn epochs_tile_each_level_and_wait_for_the_level_below(dialect: Dialect) {
            let (fresh, store, cfg) = setup(dialect).await;
            let chain = "perps-devnet-1";
            let (a0, _) = accept(&store, &cfg.genesis_state(), 0, "j0").await;
            let (a1, _) = accept(&store, &a0.state, 1, "j1").await;
            let (a2, _) = accept(&store, &a1.state, 2, "j2").await;
            assert_eq!(store.unwrapped_chains().await.unwrap(), vec![chain.to_string()]);
            // each level tiles the chain from seq 0: only the next range is created
            assert_eq!(store.epoch_frontier(chain, 1, false).await.unwrap(), 0);
            let conflict = store.create_epoch(&epoch("x", 1, false, 1, 2)).await;
            assert!(matches!(&conflict, Err(StoreError::Conflict(m)) if m.contains("starts at seq 0")), "{conflict:?}");
            store.create_epoch(&epoch("e0", 1, false, 0, 1)).await.unwrap();
            assert!(matches!(store.create_epoch(&epoch("x", 1, false, 1, 2)).await, Err(StoreError::Conflict(_))));
            assert!(matches!(store.create_epoch(&epoch("x", 1, false, 0, 0)).await, Err(StoreError::Conflict(_))));
            assert_eq!(store.epoch_frontier(chain, 1, false).await.unwrap(), 2);
            store.create_epoch(&epoch("e1", 1, false, 2, 2)).await.unwrap();
            // level 2 over both, its wrapper over the same range
            assert_eq!(store.epoch_frontier(chain, 2, false).await.unwrap(), 0);
            store.create_epoch(&epoch("t", 2, false, 0, 2)).await.unwrap();
            let (w, _) = store.create_epoch(&epoch("w", 2, true, 0, 2)).await.unwrap();
            assert_eq!((w.level, w.wrapper, w.transcript), (2, true, TranscriptKind::Evm));
            assert_eq!(store.epoch_frontier(chain, 2, true).await.unwrap(), 3);
            assert!(store.unwrapped_chains().await.unwrap().is_empty(), "every accepted batch is under a wrapper");
            let list = |level: Option<u32>, wrapper: Option<bool>, to_seq: Option<u64>| {
                let filter = EpochFilter { level, wrapper, from_seq: 0, to_seq, limit: 10 };
                let store = store.clone();
                async move {
                    store.list_epochs(chain, &filter).await.unwrap().into_iter().map(|e| e.id).collect::<Vec<_>>()
                }
            };
            assert_eq!(list(None, None, None).await, ["e0", "t", "w", "e1"], "by first seq, level, wrappers last");
            assert_eq!(list(Some(1), None, None).await, ["e0", "e1"]);
            assert_eq!(list(None, Some(true), None).await, ["w"]);
            assert_eq!(list(Some(1), Some(false), Some(1)).await, ["e0"]);
            // claims: level 1 waits for its batches, level 2 for its epochs,
            // the wrapper for the epoch it wraps
            for (id, a) in [("j0", &a0), ("j1", &a1), ("j2", &a2)] {
                store.claim_job("w", LEASE).await.unwrap().unwrap();
                assert!(store.complete_job(id, "w", &proof(a), Timings::default()).await.unwrap());
            }
            let inst = vec!["0x01".to_string()];
            for (id, blocked) in [("e0", None), ("e1", Some("t waits for e1")), ("t", Some("w waits for t")), ("w", None)] {
                let claimed = store.claim_epoch("w", LEASE).await.unwrap().unwrap();
                assert_eq!(claimed.id, id);
                if let Some(why) = blocked {
                    assert!(store.claim_epoch("w2", LEASE).await.unwrap().is_none(), "{why}");
                }
                assert!(store.complete_epoch(id, "w", &inst, &[9], "vk", 5).await.unwrap());
            }
            assert!(store.claim_epoch("w", LEASE).await.unwrap().is_none());
            fresh.drop_schema().await;
        }
        async fn an_epochs_table_of_the_last_version_becomes_a_tree(dialect: Dialect) {
            // the last version's table: level-1 epochs proven for the EVM, one
            // row per range (ranges may overlap: they were requested freely)
            let (fresh, store, cfg) = setup(dialect).await;
            let (a0, _) = accept(&store, &cfg.genesis_state(), 0, "j0").await;
            accept(&store, &a0.state, 1, "j1").await;
            let old = match dialect {
                Dialect::Sqlite => include_str!("../../migrations/0002_epochs.sql").to_string(),
                Dialect::Postgres => {
                    let init = include_str!("../../migrations/postgres/0001_init.sql");
                    let table = &init[init.find("CREATE TABLE IF NOT EXISTS epochs").unwrap()..];
                    table[..table.find(");").unwrap() + 2].to_string()
                }
            };
            let mut tx = store.writer.begin().await.unwrap();
            sqlx::raw_sql("DROP TABLE epochs").execute(&mut *tx).await.unwrap();
            sqlx::raw_sql(&old).execute(&mut *tx).await.unwrap();
            for (id, first, last) in [("old0", 0, 1), ("old1", 1, 1)] {
                sqlx::query(&store.sql(
                    "INSERT INTO epochs (id, chain, first_seq, last_seq, state, max_attempts, created_at, instances, \
                       proof) VALUES (?, 'perps-devnet-1', ?, ?, 'done', 3, 1, '[\"0x01\"]', ?)",
                ))
                .bind(id)
                .bind(first)
                .bind(last)
                .bind(vec![7u8])
                .execute(&mut *tx)
                .await
                .unwrap();
            }
            tx.commit().await.unwrap();
            // the next start migrates it, the one after changes nothing
            for _ in 0..2 {
                match dialect {
                    Dialect::Sqlite => store.migrate(&SQLITE_SCHEMA).await.unwrap(),
                    Dialect::Postgres => store.migrate(&POSTGRES_SCHEMA).await.unwrap(),
                }
                let all = EpochFilter { level: None, wrapper: None, from_seq: 0, to_seq: None, limit: 10 };
                let epochs = store.list_epochs("perps-devnet-1", &all).await.unwrap();
                let seen: Vec<_> =
                    epochs.iter().map(|e| (e.id.as_str(), e.level, e.size, e.wrapper, e.transcript, &e.proof)).collect();
                let evm = TranscriptKind::Evm;
                let old = [("old0", 1, 2, false, evm, &Some(vec![7])), ("old1", 1, 1, false, evm, &Some(vec![7]))];
                assert_eq!(seen, old, "the old rows, as they were");
            }
            // every level starts after the ranges proven for the EVM
            for (level, wrapper) in [(1, false), (2, false), (2, true)] {
                assert_eq!(store.epoch_frontier("perps-devnet-1", level, wrapper).await.unwrap(), 2);
            }
            assert!(matches!(store.create_epoch(&epoch("x", 2, false, 0, 1)).await, Err(StoreError::Conflict(_))));
            // one range at three levels: the old UNIQUE (chain, first_seq, last_seq) is gone
            for (id, level, wrapper) in [("e", 1, false), ("t", 2, false), ("w", 2, true)] {
                store.create_epoch(&epoch(id, level, wrapper, 2, 3)).await.unwrap();
            }
            fresh.drop_schema().await;
        }
        async fn claims_follow_sequence_and_complete_once(dialect: Dialect) {
            let (fresh, store, cfg) = setup(dialect).await;
            let (a0, _) = accept(&store, &cfg.genesis_state(), 0, "j0").await;
            accept(&store, &a0.state, 1, "j1").await;
            let c = store.claim_job("w1", LEASE).await.unwrap().unwrap();
            assert_eq!((c.job.id.as_str(), c.job.attempts, c.job.state), ("j0", 1, JobState::Witness));
            assert_eq!(c.witness, a0.witness);
            assert!(store.claim_job("w2", LEASE).await.unwrap().is_none(), "seq 1 waits for seq 0");
            assert!(!store.complete_job("j0", "w2", &proof(&a0), Timings::default()).await.unwrap(), "not the lease owner");
            assert!(store.set_stage("j0", "w1", JobState::Proving, 0.5).await.unwrap());
            assert!(store.complete_job("j0", "w1", &proof(&a0), Timings::default()).await.unwrap());
            assert!(!store.complete_job("j0", "w1", &proof(&a0), Timings::default()).await.unwrap(), "only once");
            assert_eq!(store.proof("j0").await.unwrap().unwrap().proof, vec![1, 2, 3]);
            // the finish of seq 0 read a clock ahead of the claimer's (another
            // process, which read it after the claimer had read its own)
            let finished = store.job("j0").await.unwrap().unwrap().finished_at.unwrap() + 60_000;
            sqlx::query(&store.sql("UPDATE jobs SET finished_at = ? WHERE id = 'j0'"))
                .bind(finished)
                .execute(&store.writer)
                .await
                .unwrap();
            let c = store.claim_job("w2", LEASE).await.unwrap().unwrap();
            assert_eq!(c.job.id, "j1");
            assert_eq!(c.job.started_at, Some(finished), "seq 1 starts when seq 0 finished, not before");
            assert!(store.proof("j1").await.unwrap().is_none());
            let counts = store.counts().await.unwrap();
            assert!(counts.contains(&(JobState::Done, 1)) && counts.contains(&(JobState::Witness, 1)));
            fresh.drop_schema().await;
        }
        async fn expired_leases_requeue_and_attempts_are_bounded(dialect: Dialect) {
            let (fresh, store, cfg) = setup(dialect).await;
            accept(&store, &cfg.genesis_state(), 0, "j0").await;
            store.claim_job("w1", Duration::from_millis(1)).await.unwrap().unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
            assert!(!store.heartbeat(WorkKind::Job, "j0", "w2", LEASE).await.unwrap());
            assert_eq!(store.requeue_expired().await.unwrap(), 1);
            let j = store.job("j0").await.unwrap().unwrap();
            assert_eq!((j.state, j.attempts), (JobState::Queued, 1));
            assert!(j.error.unwrap().contains("lease expired"));
            // the second (last) attempt fails for good
            store.claim_job("w2", LEASE).await.unwrap().unwrap();
            store.fail(WorkKind::Job, "j0", "w2", "boom", Duration::ZERO).await.unwrap();
            let j = store.job("j0").await.unwrap().unwrap();
            assert_eq!((j.state, j.attempts, j.error.as_deref()), (JobState::Failed, 2, Some("boom")));
            assert!(j.finished_at.is_some());
            fresh.drop_schema().await;
        }
        async fn failures_back_off_cancel_and_release(dialect: Dialect) {
            let (fresh, store, cfg) = setup(dialect).await;
            let (a0, _) = accept(&store, &cfg.genesis_state(), 0, "j0").await;
            store.claim_job("w1", LEASE).await.unwrap().unwrap();
            store.fail(WorkKind::Job, "j0", "w1", "transient", Duration::from_secs(60)).await.unwrap();
            assert_eq!(store.job("j0").await.unwrap().unwrap().state, JobState::Queued);
            assert!(store.claim_job("w1", LEASE).await.unwrap().is_none(), "backing off");
            accept(&store, &a0.state, 1, "j1").await;
            assert!(store.claim_job("w1", LEASE).await.unwrap().is_none(), "seq 1 still waits behind seq 0");
            let j = store.cancel("j0").await.unwrap().unwrap();
            assert_eq!(j.state, JobState::Cancelled);
            let c = store.claim_job("w1", LEASE).await.unwrap().unwrap();
            assert_eq!(c.job.id, "j1", "a cancelled job no longer blocks its chain");
            store.release(WorkKind::Job, "j1", "w1").await.unwrap();
            let j = store.job("j1").await.unwrap().unwrap();
            assert_eq!((j.state, j.attempts), (JobState::Queued, 0), "release does not count the attempt");
            assert!(store.cancel("nope").await.unwrap().is_none());
            let page = store.list_jobs(&JobFilter { chain: None, state: None, after: None, limit: 1 }).await.unwrap();
            assert_eq!(page.len(), 1);
            let next = store
                .list_jobs(&JobFilter { chain: None, state: None, after: Some(page[0].cursor), limit: 10 })
                .await
                .unwrap();
            assert_eq!(next.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), vec!["j1"]);
            let cancelled = store
                .list_jobs(&JobFilter { state: Some(JobState::Cancelled), limit: 10, ..Default::default() })
                .await
                .unwrap();
            assert_eq!(cancelled.len(), 1);
            fresh.drop_schema().await;
        }
        async fn api_keys(dialect: Dialect) {
            let (fresh, store, _) = setup(dialect).await;
            store.add_key("abc", "seq", &[7; 32]).await.unwrap();
            assert_eq!(store.key("abc").await.unwrap().unwrap().hash, vec![7; 32]);
            assert!(store.revoke_key("abc").await.unwrap());
            assert!(!store.revoke_key("abc").await.unwrap());
            assert!(store.keys().await.unwrap()[0].revoked_at.is_some());
            fresh.drop_schema().await;
        }
    }
}
