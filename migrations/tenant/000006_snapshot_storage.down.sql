DO $$
DECLARE
    t text;
BEGIN
    FOR t IN SELECT rows_table FROM _sync_snapshot_session WHERE rows_table IS NOT NULL LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I', t);
    END LOOP;
END
$$;
DELETE FROM _sync_snapshot_session WHERE rows_table IS NOT NULL;
DROP FUNCTION _sync_drop_snapshot_table(text);
ALTER TABLE _sync_snapshot_session DROP COLUMN rows_table;
ALTER TABLE _sync_snapshot_row SET LOGGED;
