DROP TABLE IF EXISTS syncplane.audit_log, syncplane.quotas, syncplane.table_versions,
    syncplane.tenant_auth, syncplane.api_keys, syncplane.tenants, syncplane.placements;
DROP FUNCTION IF EXISTS syncplane.audit_log_append_only();
