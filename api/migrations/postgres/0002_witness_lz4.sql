-- Jobs' witnesses (about 100-200 KB of bincode each) are compressed with
-- lz4 instead of PostgreSQL's default pglz, which took as much CPU as the
-- API node itself at 80 accepted batches per second (bench/README.md). lz4
-- needs PostgreSQL 14 or later built with it (Debian's and the official
-- images are); elsewhere the column keeps the server's default. Applied at
-- every start (idempotent): the column is altered only while it is not lz4
-- yet.
DO $$
BEGIN
    IF 'lz4' = ANY (SELECT unnest(enumvals) FROM pg_settings WHERE name = 'default_toast_compression') THEN
        -- (nested: PostgreSQL 13 has no attcompression to read)
        IF (SELECT attcompression FROM pg_attribute
            WHERE attrelid = 'jobs'::regclass AND attname = 'witness') IS DISTINCT FROM 'l' THEN
            ALTER TABLE jobs ALTER COLUMN witness SET COMPRESSION lz4;
        END IF;
    END IF;
END
$$;
