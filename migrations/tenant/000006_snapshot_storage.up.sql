-- Frozen snapshot rows are a cache: a session lives 15 minutes and can be
-- recreated from the live tables at any time, so its rows skip the WAL.
-- After a crash (or a failover) PostgreSQL empties unlogged tables while the
-- logged sessions survive; the chunk endpoint compares what it reads with
-- the session's row_count and answers 410 snapshot_session_expired for a
-- session whose rows are gone, never a short snapshot.
ALTER TABLE _sync_snapshot_row SET UNLOGGED;

-- Large snapshots get a table of their own (unlogged too, built in one pass
-- and indexed afterwards) that deleting the session drops in O(1); NULL:
-- the rows are in _sync_snapshot_row.
ALTER TABLE _sync_snapshot_session ADD COLUMN rows_table text
    CHECK (rows_table ~ '^_sync_snap_[0-9a-f]{32}$');

-- Drops a session's own rows table; true, so that a session delete can call
-- it per deleted row. Strict: NULL (rows in the shared table) is a no-op.
CREATE FUNCTION _sync_drop_snapshot_table(name text) RETURNS boolean
LANGUAGE plpgsql STRICT SET search_path FROM CURRENT AS $$
BEGIN
    IF name !~ '^_sync_snap_[0-9a-f]{32}$' THEN
        RAISE EXCEPTION 'not a snapshot rows table: %', name;
    END IF;
    EXECUTE format('DROP TABLE IF EXISTS %I.%I', current_schema(), name);
    RETURN true;
END
$$;
