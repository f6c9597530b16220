-- Back to row state for every changed row, with its live-row counter.
ALTER TABLE _sync_row_state DROP CONSTRAINT _sync_row_state_tombstones_only;
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN
        SELECT c.oid::regclass AS rel, c.relname::text AS name, a.attname::text AS keycol
        FROM pg_trigger tg
        JOIN pg_class c ON c.oid = tg.tgrelid
        JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[1]
        WHERE tg.tgname = '_sync_capture_ins' AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
    LOOP
        EXECUTE format('INSERT INTO _sync_row_state (user_id, table_name, key_text, row_version, deleted)
            SELECT b._sync_scope_id, %L, b.%I::text, b._sync_row_version, false FROM %s b
            ON CONFLICT (user_id, table_name, key_text) DO UPDATE SET row_version = EXCLUDED.row_version, deleted = false',
            t.name, t.keycol, t.rel);
        EXECUTE format('DROP TRIGGER _sync_stamp_ins ON %s', t.rel);
        EXECUTE format('DROP TRIGGER _sync_stamp_upd ON %s', t.rel);
        EXECUTE format('ALTER TABLE %s DROP COLUMN _sync_row_version', t.rel);
    END LOOP;
END
$$;
DROP FUNCTION _sync_stamp_row_version();

UPDATE _sync_scope s SET live_rows = coalesce((SELECT count(*) FROM _sync_row_state r WHERE r.user_id = s.user_id AND NOT r.deleted), 0);

CREATE FUNCTION _sync_count_live_rows() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE _sync_scope s SET live_rows = s.live_rows + d.n
        FROM (SELECT user_id, count(*) AS n FROM _sync_new WHERE NOT deleted GROUP BY user_id) d
        WHERE s.user_id = d.user_id;
    ELSE
        UPDATE _sync_scope s SET live_rows = s.live_rows + d.n
        FROM (SELECT n.user_id, sum((NOT n.deleted)::int - (NOT o.deleted)::int) AS n
              FROM _sync_new n JOIN _sync_old o USING (user_id, table_name, key_text)
              GROUP BY n.user_id) d
        WHERE s.user_id = d.user_id AND d.n <> 0;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER _sync_count_live_rows_ins AFTER INSERT ON _sync_row_state
    REFERENCING NEW TABLE AS _sync_new FOR EACH STATEMENT EXECUTE FUNCTION _sync_count_live_rows();
CREATE TRIGGER _sync_count_live_rows_upd AFTER UPDATE ON _sync_row_state
    REFERENCING OLD TABLE AS _sync_old NEW TABLE AS _sync_new FOR EACH STATEMENT EXECUTE FUNCTION _sync_count_live_rows();

-- The capture trigger of 000001.
CREATE OR REPLACE FUNCTION _sync_capture() RETURNS trigger
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
