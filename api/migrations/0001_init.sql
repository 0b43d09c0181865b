-- statesync job store, SQLite flavour. Times are unix milliseconds.
CREATE TABLE IF NOT EXISTS chains (
    id          TEXT PRIMARY KEY,
    config      TEXT    NOT NULL,   -- ChainConfig JSON
    markets     BLOB    NOT NULL,   -- MarketTable, bincode
    next_seq    INTEGER NOT NULL,
    root        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS accounts (
    chain  TEXT    NOT NULL REFERENCES chains(id),
    id     INTEGER NOT NULL,
    leaf   BLOB    NOT NULL,        -- Account, bincode
    PRIMARY KEY (chain, id)
);

CREATE TABLE IF NOT EXISTS jobs (
    n             INTEGER PRIMARY KEY AUTOINCREMENT,   -- cursor order
    id            TEXT    NOT NULL UNIQUE,
    chain         TEXT    NOT NULL REFERENCES chains(id),
    seq           INTEGER NOT NULL,
    idem_key      TEXT,
    content_hash  TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    stage         TEXT    NOT NULL,
    progress      REAL    NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0,
    max_attempts  INTEGER NOT NULL,
    error         TEXT,
    witness       BLOB    NOT NULL,                    -- BatchWitness, bincode
    public        TEXT    NOT NULL,                    -- PublicInputs JSON
    transitions   INTEGER NOT NULL,
    lease_owner   TEXT,
    lease_expires INTEGER,
    run_after     INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    started_at    INTEGER,
    finished_at   INTEGER,
    witness_ms    INTEGER,
    proving_ms    INTEGER,
    UNIQUE (chain, seq),
    UNIQUE (chain, idem_key)
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, run_after, n);

CREATE TABLE IF NOT EXISTS proofs (
    job_id      TEXT PRIMARY KEY REFERENCES jobs(id),
    proof       BLOB NOT NULL,
    vk_hash     TEXT NOT NULL,
    transcript  TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    hash        BLOB NOT NULL,      -- SHA-256 of the secret
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
