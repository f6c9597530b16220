DROP TRIGGER IF EXISTS _sync_count_live_rows_ins ON _sync_row_state;
DROP TRIGGER IF EXISTS _sync_count_live_rows_upd ON _sync_row_state;
DROP FUNCTION IF EXISTS _sync_count_live_rows();
ALTER TABLE _sync_scope DROP COLUMN IF EXISTS live_rows;
