-- statesync store, PostgreSQL flavour: the tables of the SQLite migrations
-- 0001..0004 (../), with PostgreSQL's types. Times are unix milliseconds.
-- Every statement is idempotent: nodes apply it at every start, under an
-- advisory lock.
CREATE TABLE IF NOT EXISTS chains (
    id          TEXT PRIMARY KEY,
    config      TEXT   NOT NULL,   -- ChainConfig JSON
    markets     BYTEA  NOT NULL,   -- MarketTable, bincode
    next_seq    BIGINT NOT NULL,
    root        TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS accounts (
    chain  TEXT   NOT NULL REFERENCES chains(id),
    id     BIGINT NOT NULL,
    leaf   BYTEA  NOT NULL,        -- Account, bincode
    PRIMARY KEY (chain, id)
);

CREATE TABLE IF NOT EXISTS jobs (
    n             BIGSERIAL PRIMARY KEY,                -- cursor order
    id            TEXT   NOT NULL UNIQUE,
    chain         TEXT   NOT NULL REFERENCES chains(id),
    seq           BIGINT NOT NULL,
    idem_key      TEXT,
    content_hash  TEXT   NOT NULL,
    state         TEXT   NOT NULL,
    stage         TEXT   NOT NULL,
    progress      DOUBLE PRECISION NOT NULL DEFAULT 0,
    attempts      BIGINT NOT NULL DEFAULT 0,
    max_attempts  BIGINT NOT NULL,
    error         TEXT,
    witness       BYTEA  NOT NULL,                      -- BatchWitness, bincode
    public        TEXT   NOT NULL,                      -- PublicInputs JSON
    transitions   BIGINT NOT NULL,
    lease_owner   TEXT,
    lease_expires BIGINT,
    run_after     BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    started_at    BIGINT,
    finished_at   BIGINT,
    witness_ms    BIGINT,
    proving_ms    BIGINT,
    UNIQUE (chain, seq),
    UNIQUE (chain, idem_key)
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, run_after, n);

CREATE TABLE IF NOT EXISTS proofs (
    job_id      TEXT PRIMARY KEY REFERENCES jobs(id),
    proof       BYTEA  NOT NULL,
    vk_hash     TEXT   NOT NULL,
    transcript  TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT   NOT NULL,
    hash        BYTEA  NOT NULL,    -- SHA-256 of the secret
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

CREATE TABLE IF NOT EXISTS epochs (
    n             BIGSERIAL PRIMARY KEY,
    id            TEXT   NOT NULL UNIQUE,
    chain         TEXT   NOT NULL REFERENCES chains(id),
    first_seq     BIGINT NOT NULL,
    last_seq      BIGINT NOT NULL,
    state         TEXT   NOT NULL,                      -- queued, proving, done, failed
    attempts      BIGINT NOT NULL DEFAULT 0,
    max_attempts  BIGINT NOT NULL,
    error         TEXT,
    lease_owner   TEXT,
    lease_expires BIGINT,
    run_after     BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    started_at    BIGINT,
    finished_at   BIGINT,
    proving_ms    BIGINT,
    instances     TEXT,                                 -- JSON list of 0x-hex field elements
    proof         BYTEA,
    vk_hash       TEXT,
    UNIQUE (chain, first_seq, last_seq)
);
CREATE INDEX IF NOT EXISTS epochs_state ON epochs (state, run_after, n);

CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS idempotency_keys (
    chain   TEXT NOT NULL,
    key     TEXT NOT NULL,
    job_id  TEXT NOT NULL REFERENCES jobs(id),
    PRIMARY KEY (chain, key)
);
