-- Every table of a tenant schema is small on most tenants, and PostgreSQL's
-- defaults vacuum a table after 50 changed rows and analyze it after 50 plus
-- 10 %. With thousands of small tables autovacuum never rests, and each
-- ANALYZE or VACUUM invalidates the plans and relcache entries of every
-- connection that used the table, so busy tenants' connections keep
-- re-planning. Raise the fixed thresholds (the scale factors still govern
-- large tables); tenant.TableStorageOptions sets the same on new business
-- tables. Snapshot session tables keep autovacuum off (they live minutes).
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN
        SELECT c.relname FROM pg_class c
        WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) AND c.relkind = 'r'
            AND c.relname !~ '^_sync_snap_[0-9a-f]{32}$'
    LOOP
        EXECUTE format('ALTER TABLE %I SET (autovacuum_vacuum_threshold = 1000, autovacuum_analyze_threshold = 5000)', t.relname);
    END LOOP;
END
$$;
