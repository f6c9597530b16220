-- Per-tenant sync metadata. Runs with search_path set to the tenant schema
-- (t_<slug>) on a dedicated connection; every object lands in that schema.
-- Functions pin their search_path at creation (SET search_path FROM CURRENT)
-- so their unqualified names always resolve inside this tenant.
--
-- Everything here is per tenant: sequences, locks (row locks on _sync_scope)
-- and sessions never span tenants, so one tenant cannot block another.

-- Table-definition versions whose DDL this schema carries, written in the
-- same transaction as the DDL so the control plane can be repaired from it.
CREATE TABLE _sync_catalog (
    version    integer PRIMARY KEY,
    definition jsonb NOT NULL,
    breaking   boolean NOT NULL DEFAULT false,
    applied_by text NOT NULL DEFAULT '',
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- One row per end user: initialization state, sequence head and retention
-- floor. Locking this row (FOR UPDATE) serializes the user's mutations
-- across replicas (protocol 8.5); different users lock different rows.
CREATE TABLE _sync_scope (
    user_id            text PRIMARY KEY,
    state              text NOT NULL DEFAULT 'UNINITIALIZED'
                       CHECK (state IN ('UNINITIALIZED', 'INITIALIZING', 'INITIALIZED')),
    initializer_source text,
    initialization_id  uuid,
    lease_expires_at   timestamptz,
    initialized_by     text,
    latest_bundle_seq  bigint NOT NULL DEFAULT 0,
    retained_floor     bigint NOT NULL DEFAULT 0 CHECK (retained_floor <= latest_bundle_seq),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- Source registry, per user. max_source_bundle_id is kept forever so a
-- pruned tuple is still recognized (protocol 8.6).
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
    PRIMARY KEY (user_id, source_id)
);

-- Committed bundles (retained history). The unique tuple makes "one tuple,
-- one bundle" a database guarantee (protocol 9).
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

-- Bundle rows. The capture triggers write them directly while the bound
-- transaction runs (bundle_seq and the next row_ordinal come from the
-- transaction's settings); the committing code collapses repeated keys.
-- No foreign key to _sync_bundle: the rows exist before the bundle's hash is
-- known, and pruning deletes both by range.
CREATE TABLE _sync_bundle_row (
    user_id     text NOT NULL,
    bundle_seq  bigint NOT NULL,
    row_ordinal integer NOT NULL,
    table_name  text NOT NULL,
    key_text    text NOT NULL,
    op          text NOT NULL CHECK (op IN ('INSERT', 'UPDATE', 'DELETE')),
    payload     text, -- wire JSON, served verbatim; NULL for DELETE
    PRIMARY KEY (user_id, bundle_seq, row_ordinal)
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

-- Staged pushes. One uncommitted session per tuple (create replaces).
CREATE TABLE _sync_push_session (
    push_id           uuid PRIMARY KEY,
    user_id           text NOT NULL,
    source_id         text NOT NULL,
    source_bundle_id  bigint NOT NULL,
    planned_row_count bigint NOT NULL,
    next_row_ordinal  bigint NOT NULL DEFAULT 0,
    initialization_id uuid,
    created_at        timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz NOT NULL,
    UNIQUE (user_id, source_id, source_bundle_id)
);
CREATE INDEX _sync_push_session_expiry_idx ON _sync_push_session (expires_at);

-- Staged rows, validated at chunk time. No foreign key to the session (a
-- per-row RI check on 5,000-row COPYs and a per-row cascade at commit cost
-- more than the rest of the work): every statement that deletes sessions
-- deletes their rows in the same statement. payload is the after-image as the
-- apply statement reads it (bytea already as \x hex text; exact numbers);
-- cols is the sorted, comma-joined column list, used to group consecutive
-- rows into one set-based statement at commit.
CREATE TABLE _sync_push_row (
    push_id          uuid NOT NULL,
    row_ordinal      bigint NOT NULL,
    table_name       text NOT NULL,
    key_text         text NOT NULL,
    op               text NOT NULL,
    base_row_version bigint NOT NULL,
    cols             text NOT NULL DEFAULT '',
    payload          jsonb,
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

-- Frozen rows; like _sync_push_row, deleted together with their session.
CREATE TABLE _sync_snapshot_row (
    snapshot_id uuid NOT NULL,
    row_ordinal bigint NOT NULL,
    table_name  text NOT NULL,
    key_text    text NOT NULL,
    row_version bigint NOT NULL,
    payload     text NOT NULL, -- wire JSON, served verbatim
    PRIMARY KEY (snapshot_id, row_ordinal)
);

-- _sync_capture is attached to every registered table as three AFTER ...
-- FOR EACH STATEMENT triggers with transition tables _sync_new/_sync_old;
-- TG_ARGV[0] is the table's sync key column. It refuses writes outside a
-- bound sync transaction (syncplane.user_id / syncplane.bundle_seq unset)
-- and writes touching rows of another user, and appends every effect to
-- the bundle being built, in statement order, with its wire after-image.
CREATE FUNCTION _sync_capture() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    bound  text := current_setting('syncplane.user_id', true);
    bseq   bigint := nullif(current_setting('syncplane.bundle_seq', true), '')::bigint;
    base   integer := coalesce(nullif(current_setting('syncplane.row_ordinal', true), ''), '0')::integer;
    keycol text := TG_ARGV[0];
    wire   text;
    c      text;
    ncols  bigint;
    same   boolean;
    cnt    bigint;
    ins    constant text := 'INSERT INTO _sync_bundle_row (user_id, bundle_seq, row_ordinal, table_name, key_text, op, payload) ';
BEGIN
    IF bound IS NULL OR bound = '' OR bseq IS NULL THEN
        RAISE EXCEPTION 'write to registered table % outside a sync transaction', TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- Nested IFs: a query naming a transition table the event lacks would
    -- fail to plan, and SQL's AND does not short-circuit planning.
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        IF EXISTS (SELECT 1 FROM _sync_new n WHERE n._sync_scope_id IS DISTINCT FROM bound) THEN
            RAISE EXCEPTION 'write to table % touches a row of another user', TG_TABLE_NAME
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        IF EXISTS (SELECT 1 FROM _sync_old o WHERE o._sync_scope_id IS DISTINCT FROM bound) THEN
            RAISE EXCEPTION 'write to table % touches a row of another user', TG_TABLE_NAME
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END IF;

    -- The wire after-image: bytea columns as base64. The expression names
    -- the table's columns, so the statements are built per trigger call and
    -- run with EXECUTE (transition tables are visible to it). Keys are read
    -- as column::text, which renders like to_jsonb (uuid: canonical).
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        SELECT count(*), string_agg(format('%L, %s', a.attname,
                   CASE WHEN a.atttypid = 'bytea'::regtype
                        THEN format('translate(encode(n.%I, ''base64''), E''\n'', '''')', a.attname)
                        ELSE format('n.%I', a.attname) END), ', ' ORDER BY a.attnum)
        INTO ncols, wire
        FROM pg_attribute a
        WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped AND a.attname <> '_sync_scope_id';
        IF ncols <= 50 THEN
            -- json text in declared column order, rendered like to_jsonb.
            wire := 'json_build_object(' || wire || ')::text';
        ELSE
            -- json_build_object takes at most 100 arguments.
            wire := 'to_jsonb(n) - ''_sync_scope_id''';
            FOR c IN SELECT a.attname::text FROM pg_attribute a
                     WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped AND a.atttypid = 'bytea'::regtype
                     ORDER BY a.attnum LOOP
                wire := wire || format(' || jsonb_build_object(%L, translate(encode(n.%I, ''base64''), E''\n'', ''''))', c, c);
            END LOOP;
            wire := '(' || wire || ')::text';
        END IF;
    END IF;

    IF TG_OP = 'INSERT' THEN
        EXECUTE ins || format('SELECT $1, $2, $3 + (row_number() OVER () - 1)::integer, %L, n.%I::text, ''INSERT'', %s
            FROM _sync_new n', TG_TABLE_NAME, keycol, wire) USING bound, bseq, base;
        GET DIAGNOSTICS cnt = ROW_COUNT;
        base := base + cnt;
    ELSIF TG_OP = 'UPDATE' THEN
        -- Fast path: when the old and new key sequences are equal, no key
        -- changed and every row is an update of its key.
        EXECUTE format('SELECT coalesce(bool_and(z.ok = z.nk), true)
            FROM unnest(ARRAY(SELECT o.%1$I::text FROM _sync_old o), ARRAY(SELECT n.%1$I::text FROM _sync_new n)) AS z(ok, nk)',
            keycol) INTO same;
        IF same THEN
            EXECUTE ins || format('SELECT $1, $2, $3 + (row_number() OVER () - 1)::integer, %L, n.%I::text, ''UPDATE'', %s
                FROM _sync_new n', TG_TABLE_NAME, keycol, wire) USING bound, bseq, base;
            GET DIAGNOSTICS cnt = ROW_COUNT;
            base := base + cnt;
        ELSE
            -- A changed key value is a delete of the old key and an insert
            -- of the new one. Hash joins keep this linear.
            EXECUTE ins || format('SELECT $1, $2, $3 + (row_number() OVER (ORDER BY o.rn) - 1)::integer, %L, o.k, ''DELETE'', NULL
                FROM (SELECT o.%I::text AS k, row_number() OVER () AS rn FROM _sync_old o) o
                LEFT JOIN (SELECT n.%I::text AS k FROM _sync_new n) n ON n.k = o.k
                WHERE n.k IS NULL', TG_TABLE_NAME, keycol, keycol) USING bound, bseq, base;
            GET DIAGNOSTICS cnt = ROW_COUNT;
            base := base + cnt;
            EXECUTE ins || format('SELECT $1, $2, $3 + (row_number() OVER (ORDER BY s.rn) - 1)::integer, %L, s.k,
                    CASE WHEN o.k IS NULL THEN ''INSERT'' ELSE ''UPDATE'' END, s.j
                FROM (SELECT n.%I::text AS k, %s AS j, row_number() OVER () AS rn FROM _sync_new n) s
                LEFT JOIN (SELECT DISTINCT o.%I::text AS k FROM _sync_old o) o ON o.k = s.k', TG_TABLE_NAME, keycol, wire, keycol)
                USING bound, bseq, base;
            GET DIAGNOSTICS cnt = ROW_COUNT;
            base := base + cnt;
        END IF;
    ELSE
        EXECUTE ins || format('SELECT $1, $2, $3 + (row_number() OVER () - 1)::integer, %L, o.%I::text, ''DELETE'', NULL
            FROM _sync_old o', TG_TABLE_NAME, keycol) USING bound, bseq, base;
        GET DIAGNOSTICS cnt = ROW_COUNT;
        base := base + cnt;
    END IF;
    PERFORM set_config('syncplane.row_ordinal', base::text, true);
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
