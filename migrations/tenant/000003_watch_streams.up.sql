-- Open watch streams, for the concurrent-watchers quota. A stream refreshes
-- seen_at on its heartbeats; rows of streams lost in a crash go stale and
-- stop counting. Unlogged: worthless after a crash anyway.
CREATE UNLOGGED TABLE _sync_watch_stream (
    stream_id uuid PRIMARY KEY,
    user_id   text NOT NULL,
    seen_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX _sync_watch_stream_seen_idx ON _sync_watch_stream (seen_at);
