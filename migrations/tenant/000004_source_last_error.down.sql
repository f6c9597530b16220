ALTER TABLE _sync_source DROP COLUMN IF EXISTS last_error, DROP COLUMN IF EXISTS last_error_at;
