-- Row versions move onto the business rows. Every registered table gets a
-- hidden _sync_row_version column (like _sync_scope_id): the bundle_seq of
-- the row's last change. _sync_row_state keeps only tombstones, the version
-- of each deleted key, so a commit writes row state for its deletes alone
-- instead of one tuple per changed row, and a snapshot reads versions from
-- the rows it freezes. A tombstone stays when its key is inserted again: the
-- live row's version wins, and the next delete overwrites the tombstone.
--
-- The committing code sets the column in its own INSERT and UPDATE
-- statements. Every other write (server-originated writes, foreign-key
-- actions such as ON DELETE SET NULL) is stamped by two row triggers whose
-- WHEN clauses skip rows that already carry a version, so the common path
-- runs no per-row function. The stamp refuses writes outside a bound sync
-- transaction with the capture trigger's error.
--
-- Live-row counting moves with it: the committing code adds a bundle's
-- inserts minus its deletes to _sync_scope.live_rows.

CREATE FUNCTION _sync_stamp_row_version() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    bseq bigint := nullif(current_setting('syncplane.bundle_seq', true), '')::bigint;
BEGIN
    IF bseq IS NULL THEN
        RAISE EXCEPTION 'write to registered table % outside a sync transaction', TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    NEW._sync_row_version := bseq;
    RETURN NEW;
END
$$;

DO $$
DECLARE
    t record;
BEGIN
    FOR t IN
        SELECT c.oid::regclass AS rel, c.relname::text AS name, a.attname::text AS keycol
        FROM pg_trigger tg
        JOIN pg_class c ON c.oid = tg.tgrelid
        JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[1] -- (_sync_scope_id, key)
        WHERE tg.tgname = '_sync_capture_ins' AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
    LOOP
        EXECUTE format('ALTER TABLE %s ADD COLUMN _sync_row_version bigint NOT NULL DEFAULT 0', t.rel);
        -- Not a sync change: the capture trigger would refuse it.
        EXECUTE format('ALTER TABLE %s DISABLE TRIGGER _sync_capture_upd', t.rel);
        EXECUTE format('UPDATE %s b SET _sync_row_version = s.row_version FROM _sync_row_state s
            WHERE s.user_id = b._sync_scope_id AND s.table_name = %L AND s.key_text = b.%I::text AND NOT s.deleted',
            t.rel, t.name, t.keycol);
        EXECUTE format('ALTER TABLE %s ENABLE TRIGGER _sync_capture_upd', t.rel);
        EXECUTE format('CREATE TRIGGER _sync_stamp_ins BEFORE INSERT ON %s FOR EACH ROW
            WHEN (NEW._sync_row_version = 0) EXECUTE FUNCTION _sync_stamp_row_version()', t.rel);
        EXECUTE format('CREATE TRIGGER _sync_stamp_upd BEFORE UPDATE ON %s FOR EACH ROW
            WHEN (NEW._sync_row_version = OLD._sync_row_version) EXECUTE FUNCTION _sync_stamp_row_version()', t.rel);
    END LOOP;
END
$$;

DELETE FROM _sync_row_state WHERE NOT deleted;
-- Only tombstones from now on. A replica still running the previous release
-- during an upgrade fails its commits here instead of recording live rows
-- beside their versions (see "Upgrading" in the chart's README).
ALTER TABLE _sync_row_state ADD CONSTRAINT _sync_row_state_tombstones_only CHECK (deleted);
DROP TRIGGER _sync_count_live_rows_ins ON _sync_row_state;
DROP TRIGGER _sync_count_live_rows_upd ON _sync_row_state;
DROP FUNCTION _sync_count_live_rows();

-- The capture trigger of 000001, with the version column left out of the
-- wire after-image like the scope column, and the after-image of tables up
-- to 50 columns rendered by concatenation (below).
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
        WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped AND a.attname NOT IN ('_sync_scope_id', '_sync_row_version');
        IF ncols <= 50 AND NOT EXISTS (SELECT 1 FROM pg_attribute a
                WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped AND a.attname !~ '^[a-z0-9_]+$') THEN
            -- json_build_object's text, byte for byte, by concatenation:
            -- '{"c" : v, ...}' with every value as json_build_object
            -- renders it (to_json for text and reals: escaping, NaN and
            -- infinities quoted; the rest's output is already JSON). It
            -- looks up no output function per argument and row, and column
            -- names needing no JSON escape are written as they are. The Go
            -- side's snapshot renderer (snapshotPayloadExpr) is the same.
            SELECT string_agg(format('%L || coalesce(%s, ''null'')',
                       CASE WHEN x.rn = 1 THEN '{' ELSE ', ' END || '"' || x.attname || '" : ',
                       CASE WHEN x.atttypid = 'uuid'::regtype THEN format('''"'' || n.%I::text || ''"''', x.attname)
                            WHEN x.atttypid IN ('bigint'::regtype, 'integer'::regtype, 'smallint'::regtype, 'jsonb'::regtype)
                                THEN format('n.%I::text', x.attname)
                            WHEN x.atttypid = 'bytea'::regtype
                                THEN format('''"'' || translate(encode(n.%I, ''base64''), E''\n'', '''') || ''"''', x.attname)
                            ELSE format('to_json(n.%I)::text', x.attname) END), ' || ' ORDER BY x.rn)
            INTO wire
            FROM (SELECT a.attname::text, a.atttypid, row_number() OVER (ORDER BY a.attnum) AS rn FROM pg_attribute a
                  WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped
                      AND a.attname NOT IN ('_sync_scope_id', '_sync_row_version')) x;
            wire := '(' || wire || ' || ''}'')';
        ELSIF ncols <= 50 THEN
            -- json text in declared column order, rendered like to_jsonb.
            wire := 'json_build_object(' || wire || ')::text';
        ELSE
            -- json_build_object takes at most 100 arguments.
            wire := 'to_jsonb(n) - ''{_sync_scope_id,_sync_row_version}''::text[]';
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
