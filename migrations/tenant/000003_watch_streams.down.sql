DROP TABLE IF EXISTS _sync_watch_stream;
