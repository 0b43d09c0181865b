-- Epoch proofs: one row per requested or automatic epoch of a chain.
CREATE TABLE IF NOT EXISTS epochs (
    n             INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT    NOT NULL UNIQUE,
    chain         TEXT    NOT NULL REFERENCES chains(id),
    first_seq     INTEGER NOT NULL,
    last_seq      INTEGER NOT NULL,
    state         TEXT    NOT NULL,                    -- queued, proving, done, failed
    attempts      INTEGER NOT NULL DEFAULT 0,
    max_attempts  INTEGER NOT NULL,
    error         TEXT,
    lease_owner   TEXT,
    lease_expires INTEGER,
    run_after     INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    started_at    INTEGER,
    finished_at   INTEGER,
    proving_ms    INTEGER,
    instances     TEXT,                                -- JSON list of 0x-hex field elements
    proof         BLOB,
    vk_hash       TEXT,
    UNIQUE (chain, first_seq, last_seq)
);
CREATE INDEX IF NOT EXISTS epochs_state ON epochs (state, run_after, n);
