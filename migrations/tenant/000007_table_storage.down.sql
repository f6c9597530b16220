DO $$
DECLARE
    t record;
BEGIN
    FOR t IN
        SELECT c.relname FROM pg_class c
        WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) AND c.relkind = 'r'
            AND c.relname !~ '^_sync_snap_[0-9a-f]{32}$'
    LOOP
        EXECUTE format('ALTER TABLE %I RESET (autovacuum_vacuum_threshold, autovacuum_analyze_threshold)', t.relname);
    END LOOP;
END
$$;
