-- A large snapshot is frozen by several connections at once, each writing
-- one range of the snapshot order into a table of its own: PostgreSQL
-- writes the rows of one statement in one process, and that write is most
-- of a large freeze. rows_table stays the first part; part k (k >= 2) is
-- rows_table || '_p' || k. part_rows holds each part's row count, in order
-- (part k's rows carry ordinals 1..part_rows[k], offset by the parts before
-- it); NULL: the session has one part.
--
-- A server of the previous release reading a session of several parts
-- finds fewer rows than row_count and answers 410 snapshot_session_expired;
-- the client then creates a new session.
ALTER TABLE _sync_snapshot_session ADD COLUMN part_rows bigint[]
    CHECK (part_rows IS NULL OR cardinality(part_rows) BETWEEN 2 AND 9);

-- Dropping a session's rows table drops its other parts too.
CREATE OR REPLACE FUNCTION _sync_drop_snapshot_table(name text) RETURNS boolean
LANGUAGE plpgsql STRICT SET search_path FROM CURRENT AS $$
DECLARE
    part text;
BEGIN
    IF name !~ '^_sync_snap_[0-9a-f]{32}$' THEN
        RAISE EXCEPTION 'not a snapshot rows table: %', name;
    END IF;
    EXECUTE format('DROP TABLE IF EXISTS %I.%I', current_schema(), name);
    FOR part IN SELECT c.relname FROM pg_class c
        WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
          AND c.relname ~ ('^' || name || '_p[2-9]$')
    LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I.%I', current_schema(), part);
    END LOOP;
    RETURN true;
END
$$;
