-- Every Idempotency-Key bound to a job: the key it was created with, and
-- each key a replay of its batch presented first (so a key names exactly
-- one job from its first use on). Keys of databases written before this
-- table are copied from jobs.idem_key.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    chain   TEXT NOT NULL,
    key     TEXT NOT NULL,
    job_id  TEXT NOT NULL REFERENCES jobs(id),
    PRIMARY KEY (chain, key)
);
INSERT OR IGNORE INTO idempotency_keys (chain, key, job_id)
    SELECT chain, idem_key, id FROM jobs WHERE idem_key IS NOT NULL;
