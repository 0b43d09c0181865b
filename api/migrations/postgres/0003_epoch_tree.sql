-- Epochs as a tree (the SQLite migration 0005_epoch_tree.sql says what the
-- columns mean). Idempotent: it runs at every start.
ALTER TABLE epochs ADD COLUMN IF NOT EXISTS level BIGINT NOT NULL DEFAULT 1;
ALTER TABLE epochs ADD COLUMN IF NOT EXISTS size BIGINT NOT NULL DEFAULT 0;
ALTER TABLE epochs ADD COLUMN IF NOT EXISTS wrapper BIGINT NOT NULL DEFAULT 0;
ALTER TABLE epochs ADD COLUMN IF NOT EXISTS transcript TEXT NOT NULL DEFAULT 'evm';
UPDATE epochs SET size = last_seq - first_seq + 1 WHERE size = 0;
ALTER TABLE epochs DROP CONSTRAINT IF EXISTS epochs_chain_first_seq_last_seq_key;
CREATE UNIQUE INDEX IF NOT EXISTS epochs_range ON epochs (chain, level, wrapper, first_seq, last_seq);
