-- The last error the server answered a source with, for the console's
-- device list.
ALTER TABLE _sync_source ADD COLUMN last_error text, ADD COLUMN last_error_at timestamptz;
