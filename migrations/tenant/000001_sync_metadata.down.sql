DROP FUNCTION IF EXISTS _sync_capture(), _sync_reject_truncate();
DROP TABLE IF EXISTS _sync_snapshot_row, _sync_snapshot_session, _sync_push_row,
    _sync_push_session, _sync_row_state, _sync_bundle_row, _sync_bundle, _sync_source, _sync_scope, _sync_catalog;
