-- Control plane: tenants, their keys, end-user auth, table definitions,
-- quotas and an append-only audit log. Lives in the "syncplane" schema.

CREATE TABLE IF NOT EXISTS syncplane.placements (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_-]{0,62}$'),
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO syncplane.placements (name, description)
VALUES ('default', 'the control-plane cluster') ON CONFLICT DO NOTHING;

CREATE TABLE syncplane.tenants (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z][a-z0-9_]{0,29}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    state       text NOT NULL DEFAULT 'provisioning'
                CHECK (state IN ('provisioning', 'active', 'suspended', 'deleting')),
    wire_schema text NOT NULL DEFAULT 'app' CHECK (wire_schema ~ '^[a-z][a-z0-9_]{0,62}$'),
    placement   text NOT NULL DEFAULT 'default' REFERENCES syncplane.placements (name),
    plan        text NOT NULL DEFAULT 'free',
    watch_enabled boolean NOT NULL DEFAULT true,
    retained_bundles integer NOT NULL DEFAULT 10000 CHECK (retained_bundles > 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE syncplane.api_keys (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    bigint NOT NULL REFERENCES syncplane.tenants (id) ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('publishable', 'secret')),
    label        text NOT NULL DEFAULT '',
    hash         bytea NOT NULL UNIQUE,
    display      text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_keys_tenant_idx ON syncplane.api_keys (tenant_id);

CREATE TABLE syncplane.tenant_auth (
    tenant_id  bigint PRIMARY KEY REFERENCES syncplane.tenants (id) ON DELETE CASCADE,
    settings   jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE syncplane.table_versions (
    tenant_id  bigint NOT NULL REFERENCES syncplane.tenants (id) ON DELETE CASCADE,
    version    integer NOT NULL CHECK (version > 0),
    definition jsonb NOT NULL,
    breaking   boolean NOT NULL DEFAULT false,
    applied_by text NOT NULL DEFAULT '',
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, version)
);

CREATE TABLE syncplane.quotas (
    tenant_id            bigint PRIMARY KEY REFERENCES syncplane.tenants (id) ON DELETE CASCADE,
    max_active_devices   bigint,
    max_rows             bigint,
    max_storage_bytes    bigint,
    requests_per_second  double precision,
    request_burst        integer,
    max_bundle_bytes     bigint,
    max_rows_per_chunk   integer,
    max_watchers         integer,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- Append-only: the application role may insert and read, never change.
CREATE TABLE syncplane.audit_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    tenant_id  bigint,
    actor      text NOT NULL,
    action     text NOT NULL,
    target     text NOT NULL DEFAULT '',
    detail     jsonb NOT NULL DEFAULT '{}'::jsonb,
    remote_addr text NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_tenant_idx ON syncplane.audit_log (tenant_id, at DESC);

CREATE FUNCTION syncplane.audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON syncplane.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION syncplane.audit_log_append_only();
