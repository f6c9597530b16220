-- Staged pushes are stored as runs instead of rows: one row per run of
-- consecutive staged rows with the same table, op and column set, holding
-- the run's keys, base versions and after-images as arrays. A 5,000-row
-- chunk of one table is one row here, so staging costs one heap tuple
-- instead of 5,000 tuples and index entries, and the commit applies a run
-- with one set-based statement straight from its arrays.
--
-- Sessions still staging when this runs are dropped: their clients get
-- push_session_not_found and stage the push again (protocol 7.4).
DELETE FROM _sync_push_session;
DROP TABLE _sync_push_row;

CREATE TABLE _sync_push_run (
    push_id       uuid NOT NULL,
    first_ordinal bigint NOT NULL,  -- row ordinal of the run's first row
    row_count     integer NOT NULL CHECK (row_count > 0),
    table_name    text NOT NULL,
    op            text NOT NULL,
    cols          text NOT NULL DEFAULT '', -- sorted, comma-joined payload columns
    keys          text[] NOT NULL,          -- key text per row, in ordinal order
    bases         bigint[] NOT NULL,        -- base_row_version per row
    payloads      jsonb,                    -- array of after-images; NULL for DELETE runs
    PRIMARY KEY (push_id, first_ordinal)
);
-- The arrays are large, already compact and read whole once: skip TOAST
-- compression.
ALTER TABLE _sync_push_run ALTER COLUMN keys SET STORAGE EXTERNAL,
    ALTER COLUMN bases SET STORAGE EXTERNAL, ALTER COLUMN payloads SET STORAGE EXTERNAL;
