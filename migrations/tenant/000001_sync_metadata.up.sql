-- Per-tenant sync metadata. Runs with search_path set to the tenant schema
-- (t_<slug>) on a dedicated connection; every object lands in that schema.
-- Functions pin their search_path at creation (SET search_path FROM CURRENT)
-- so their unqualified names always resolve inside this tenant.

-- Table-definition versions whose DDL this schema carries, written in the
-- same transaction as the DDL so the control plane can be repaired from it.
CREATE TABLE _sync_catalog (
    version    integer PRIMARY KEY,
    definition jsonb NOT NULL,
    breaking   boolean NOT NULL DEFAULT false,
    applied_by text NOT NULL DEFAULT '',
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- One row per end user: initialization state, sequence head and retention floor.
CREATE TABLE _sync_scope (
    user_id            text PRIMARY KEY,
    state              text NOT NULL DEFAULT 'UNINITIALIZED'
                       CHECK (state IN ('UNINITIALIZED', 'INITIALIZING', 'INITIALIZED')),
    initializer_source text,
    initialization_id  uuid,
    lease_expires_at   timestamptz,
    latest_bundle_seq  bigint NOT NULL DEFAULT 0,
    retained_floor     bigint NOT NULL DEFAULT 0,
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- Source registry, per user.
CREATE TABLE _sync_source (
    user_id               text NOT NULL,
    source_id             text NOT NULL,
    state                 text NOT NULL CHECK (state IN ('reserved', 'active', 'retired')),
    max_source_bundle_id  bigint NOT NULL DEFAULT 0,
    replaced_by_source_id text,
    retire_reason         text,
    first_seen_at         timestamptz NOT NULL DEFAULT now(),
    last_seen_at          timestamptz NOT NULL DEFAULT now(),
    bundles_pushed        bigint NOT NULL DEFAULT 0,
    last_error            text,
    PRIMARY KEY (user_id, source_id)
);

-- Committed bundles and their rows (retained history).
CREATE TABLE _sync_bundle (
    user_id          text NOT NULL,
    bundle_seq       bigint NOT NULL,
    source_id        text NOT NULL,
    source_bundle_id bigint NOT NULL,
    row_count        integer NOT NULL,
    bundle_hash      text NOT NULL,
    byte_count       bigint NOT NULL DEFAULT 0,
    committed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, bundle_seq),
    UNIQUE (user_id, source_id, source_bundle_id)
);

CREATE TABLE _sync_bundle_row (
    user_id     text NOT NULL,
    bundle_seq  bigint NOT NULL,
    row_ordinal integer NOT NULL,
    table_name  text NOT NULL,
    key_text    text NOT NULL,
    op          text NOT NULL CHECK (op IN ('INSERT', 'UPDATE', 'DELETE')),
    payload     jsonb,
    PRIMARY KEY (user_id, bundle_seq, row_ordinal),
    FOREIGN KEY (user_id, bundle_seq) REFERENCES _sync_bundle (user_id, bundle_seq) ON DELETE CASCADE
);

-- Authoritative row state, tombstones included; never pruned.
CREATE TABLE _sync_row_state (
    user_id     text NOT NULL,
    table_name  text NOT NULL,
    key_text    text NOT NULL,
    row_version bigint NOT NULL,
    deleted     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (user_id, table_name, key_text)
);

-- Staged pushes.
CREATE TABLE _sync_push_session (
    push_id           uuid PRIMARY KEY,
    user_id           text NOT NULL,
    source_id         text NOT NULL,
    source_bundle_id  bigint NOT NULL,
    planned_row_count bigint NOT NULL,
    next_row_ordinal  bigint NOT NULL DEFAULT 0,
    initialization_id uuid,
    created_at        timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz NOT NULL
);
CREATE INDEX _sync_push_session_tuple_idx ON _sync_push_session (user_id, source_id, source_bundle_id);
CREATE INDEX _sync_push_session_expiry_idx ON _sync_push_session (expires_at);

CREATE TABLE _sync_push_row (
    push_id          uuid NOT NULL REFERENCES _sync_push_session (push_id) ON DELETE CASCADE,
    row_ordinal      bigint NOT NULL,
    table_name       text NOT NULL,
    key_text         text NOT NULL,
    op               text NOT NULL,
    base_row_version bigint NOT NULL,
    payload          text,
    PRIMARY KEY (push_id, row_ordinal)
);

-- Frozen snapshots.
CREATE TABLE _sync_snapshot_session (
    snapshot_id         uuid PRIMARY KEY,
    user_id             text NOT NULL,
    snapshot_bundle_seq bigint NOT NULL,
    row_count           bigint NOT NULL,
    byte_count          bigint NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz NOT NULL
);
CREATE INDEX _sync_snapshot_session_expiry_idx ON _sync_snapshot_session (expires_at);

CREATE TABLE _sync_snapshot_row (
    snapshot_id uuid NOT NULL REFERENCES _sync_snapshot_session (snapshot_id) ON DELETE CASCADE,
    row_ordinal bigint NOT NULL,
    table_name  text NOT NULL,
    key_text    text NOT NULL,
    row_version bigint NOT NULL,
    payload     jsonb NOT NULL,
    PRIMARY KEY (snapshot_id, row_ordinal)
);

-- Effects captured by the statement triggers of registered tables during one
-- bound transaction; the committing code collapses them into a bundle and
-- deletes them before commit. Unlogged: rows never outlive their transaction.
CREATE UNLOGGED TABLE _sync_capture (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    txid       xid8 NOT NULL DEFAULT pg_current_xact_id(),
    table_name text NOT NULL,
    key_text   text NOT NULL,
    op         "char" NOT NULL CHECK (op IN ('I', 'U', 'D')),
    payload    jsonb
);

-- _sync_capture is attached to every registered table as three AFTER ...
-- FOR EACH STATEMENT triggers with transition tables _sync_new/_sync_old;
-- TG_ARGV[0] is the table's sync key column. It refuses writes outside a
-- bound sync transaction (syncplane.user_id unset) and writes touching rows
-- of another user, and records every effect in _sync_capture.
CREATE FUNCTION _sync_capture() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    bound  text := current_setting('syncplane.user_id', true);
    keycol text := TG_ARGV[0];
BEGIN
    IF bound IS NULL OR bound = '' THEN
        RAISE EXCEPTION 'write to registered table % outside a sync transaction', TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND EXISTS (SELECT 1 FROM _sync_new n WHERE n._sync_scope_id IS DISTINCT FROM bound) THEN
        RAISE EXCEPTION 'write to table % touches a row of another user', TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') AND EXISTS (SELECT 1 FROM _sync_old o WHERE o._sync_scope_id IS DISTINCT FROM bound) THEN
        RAISE EXCEPTION 'write to table % touches a row of another user', TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END IF;

    IF TG_OP = 'INSERT' THEN
        INSERT INTO _sync_capture (table_name, key_text, op, payload)
        SELECT TG_TABLE_NAME, j ->> keycol, 'I', j - '_sync_scope_id'
        FROM (SELECT to_jsonb(n) AS j FROM _sync_new n) s;
    ELSIF TG_OP = 'UPDATE' THEN
        -- A changed key value is a delete of the old key and an insert of the new.
        INSERT INTO _sync_capture (table_name, key_text, op, payload)
        SELECT TG_TABLE_NAME, o.k, 'D', NULL
        FROM (SELECT to_jsonb(o) ->> keycol AS k FROM _sync_old o) o
        WHERE NOT EXISTS (SELECT 1 FROM _sync_new n WHERE to_jsonb(n) ->> keycol = o.k);
        INSERT INTO _sync_capture (table_name, key_text, op, payload)
        SELECT TG_TABLE_NAME, s.j ->> keycol,
               CASE WHEN EXISTS (SELECT 1 FROM _sync_old o WHERE to_jsonb(o) ->> keycol = s.j ->> keycol)
                    THEN 'U' ELSE 'I' END,
               s.j - '_sync_scope_id'
        FROM (SELECT to_jsonb(n) AS j FROM _sync_new n) s;
    ELSE
        INSERT INTO _sync_capture (table_name, key_text, op, payload)
        SELECT TG_TABLE_NAME, to_jsonb(o) ->> keycol, 'D', NULL FROM _sync_old o;
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION _sync_reject_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'TRUNCATE of registered table % is not allowed', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
