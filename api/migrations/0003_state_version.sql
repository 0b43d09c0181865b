-- The state version (statesync_circuits::state::STATE_VERSION) the chains of
-- this database were written with: leaf encoding, tree and state root. A
-- database without it predates versioning (version 1).
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
