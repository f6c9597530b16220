-- Sessions of several parts cannot be read with one rows table: they go,
-- with all their parts, before the function forgets the parts.
SELECT _sync_drop_snapshot_table(rows_table) FROM _sync_snapshot_session WHERE part_rows IS NOT NULL;
DELETE FROM _sync_snapshot_session WHERE part_rows IS NOT NULL;
ALTER TABLE _sync_snapshot_session DROP COLUMN part_rows;

CREATE OR REPLACE FUNCTION _sync_drop_snapshot_table(name text) RETURNS boolean
LANGUAGE plpgsql STRICT SET search_path FROM CURRENT AS $$
BEGIN
    IF name !~ '^_sync_snap_[0-9a-f]{32}$' THEN
        RAISE EXCEPTION 'not a snapshot rows table: %', name;
    END IF;
    EXECUTE format('DROP TABLE IF EXISTS %I.%I', current_schema(), name);
    RETURN true;
END
$$;
