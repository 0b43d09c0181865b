-- Epochs as a tree: `level` 1 aggregates batch proofs, level L >= 2 the
-- epochs of level L - 1 in its range; `size` is the N of its circuit;
-- `wrapper` 1 marks the wrapper proof of the level's epoch with the same
-- range; `transcript` is its proof's (poseidon below the wrapper, evm for
-- the wrapper). Rows of earlier versions were level-1 epochs proven with
-- the EVM transcript. SQLite cannot drop the old UNIQUE (chain, first_seq,
-- last_seq), which a level-2 epoch or a wrapper over the same range breaks,
-- so the table is rebuilt; the store runs this file once, while `epochs`
-- has no `level` column.
CREATE TABLE epochs_tree (
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
    level         INTEGER NOT NULL DEFAULT 1,
    size          INTEGER NOT NULL,
    wrapper       INTEGER NOT NULL DEFAULT 0,
    transcript    TEXT    NOT NULL DEFAULT 'evm',
    UNIQUE (chain, level, wrapper, first_seq, last_seq)
);
INSERT INTO epochs_tree (n, id, chain, first_seq, last_seq, state, attempts, max_attempts, error, lease_owner,
    lease_expires, run_after, created_at, started_at, finished_at, proving_ms, instances, proof, vk_hash, size)
SELECT n, id, chain, first_seq, last_seq, state, attempts, max_attempts, error, lease_owner, lease_expires,
    run_after, created_at, started_at, finished_at, proving_ms, instances, proof, vk_hash, last_seq - first_seq + 1
FROM epochs;
DROP TABLE epochs;
ALTER TABLE epochs_tree RENAME TO epochs;
CREATE INDEX IF NOT EXISTS epochs_state ON epochs (state, run_after, n);
