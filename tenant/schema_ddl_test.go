package tenant

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSchemaSQLType(t *testing.T) {
	want := map[ColumnType]string{
		ColumnText: "text", ColumnInteger: "bigint", ColumnReal: "double precision", ColumnBlob: "bytea",
		ColumnUUID: "uuid", ColumnTimestamp: "text", ColumnJSON: "jsonb",
	}
	require.Len(t, want, len(schemaColumnTypes))
	for typ, sql := range want {
		assert.Equal(t, sql, (&Column{Type: typ}).SQLType(), typ)
	}
}

func TestSchemaCaptureTriggerDDL(t *testing.T) {
	s := schemaMustNew(t, Definition{Tables: []TableDef{{Name: "notes", SyncKey: "note_key",
		Columns: []ColumnDef{{Name: "note_key", Type: ColumnText}}}}})
	tb, _ := s.Table("notes")
	assert.Equal(t, []string{
		`CREATE TRIGGER "_sync_capture_ins" AFTER INSERT ON "t_acme"."notes" REFERENCING NEW TABLE AS "_sync_new" FOR EACH STATEMENT EXECUTE FUNCTION "t_acme"."_sync_capture"('note_key')`,
		`CREATE TRIGGER "_sync_capture_upd" AFTER UPDATE ON "t_acme"."notes" REFERENCING OLD TABLE AS "_sync_old" NEW TABLE AS "_sync_new" FOR EACH STATEMENT EXECUTE FUNCTION "t_acme"."_sync_capture"('note_key')`,
		`CREATE TRIGGER "_sync_capture_del" AFTER DELETE ON "t_acme"."notes" REFERENCING OLD TABLE AS "_sync_old" FOR EACH STATEMENT EXECUTE FUNCTION "t_acme"."_sync_capture"('note_key')`,
		`CREATE TRIGGER "_sync_no_truncate" BEFORE TRUNCATE ON "t_acme"."notes" FOR EACH STATEMENT EXECUTE FUNCTION "t_acme"."_sync_reject_truncate"()`,
		`CREATE TRIGGER "_sync_stamp_ins" BEFORE INSERT ON "t_acme"."notes" FOR EACH ROW WHEN (NEW."_sync_row_version" = 0) EXECUTE FUNCTION "t_acme"."_sync_stamp_row_version"()`,
		`CREATE TRIGGER "_sync_stamp_upd" BEFORE UPDATE ON "t_acme"."notes" FOR EACH ROW WHEN (NEW."_sync_row_version" = OLD."_sync_row_version") EXECUTE FUNCTION "t_acme"."_sync_stamp_row_version"()`,
	}, CaptureTriggerDDL("t_acme", tb))
}

func TestSchemaQuoteLiteral(t *testing.T) {
	cases := map[string]string{
		"plain":       `'plain'`,
		"it's":        `'it''s'`,
		`a\b`:         `E'a\\b'`,
		`\'; DROP --`: `E'\\''; DROP --'`,
		"":            `''`,
		"line\nbreak": "'line\nbreak'",
	}
	for in, want := range cases {
		assert.Equal(t, want, schemaQuoteLiteral(in), in)
	}
}

func TestSchemaCreateDDLText(t *testing.T) {
	def := schemaBaseDef()
	def.Tables[0].Columns = append(def.Tables[0].Columns,
		ColumnDef{Name: "seen_at", Type: ColumnTimestamp, Nullable: true},
		ColumnDef{Name: "score", Type: ColumnReal, Default: json.RawMessage(`1e21`)},
		ColumnDef{Name: "big", Type: ColumnInteger, Default: json.RawMessage(`-9223372036854775808`)},
		ColumnDef{Name: "pic", Type: ColumnBlob, Default: json.RawMessage(`"aGk="`)},
		ColumnDef{Name: "meta", Type: ColumnJSON, Default: json.RawMessage(`{"q":"it's"}`)},
		ColumnDef{Name: "note", Type: ColumnText, Default: json.RawMessage(`"it's \\ here"`)},
	)
	def.Tables[0].Indexes = append(def.Tables[0].Indexes, IndexDef{Columns: []string{"name", "age"}, Unique: true})
	s := schemaMustNew(t, def)
	ddl := s.CreateDDL("t_acme")
	all := strings.Join(ddl, "\n")

	// Order: tables, then foreign keys, then indexes, then triggers.
	kind := func(stmt string) int {
		switch {
		case strings.HasPrefix(stmt, "CREATE TABLE"):
			return 0
		case strings.HasPrefix(stmt, "ALTER TABLE"):
			return 1
		case strings.Contains(stmt, "INDEX"):
			return 2
		case strings.HasPrefix(stmt, "CREATE TRIGGER"):
			return 3
		}
		t.Fatalf("unexpected statement %s", stmt)
		return -1
	}
	for i := 1; i < len(ddl); i++ {
		assert.LessOrEqual(t, kind(ddl[i-1]), kind(ddl[i]), "%s\nbefore\n%s", ddl[i-1], ddl[i])
	}
	assert.Len(t, ddl, 2 /* tables */ +2 /* fk + its index */ +2 /* indexes */ +12 /* triggers */)

	for _, want := range []string{
		`"_sync_scope_id" text NOT NULL DEFAULT current_setting('syncplane.user_id', true)`,
		`CONSTRAINT "users_pkey" PRIMARY KEY ("_sync_scope_id", "id")`,
		`"id" uuid NOT NULL,`,
		`"age" bigint,`,
		`"name" text NOT NULL DEFAULT ''::text,`,
		`"seen_at" text CHECK ("seen_at" ~ '^[0-9]{4}-`,
		`"score" double precision NOT NULL DEFAULT '1e+21'::double precision`,
		`"big" bigint NOT NULL DEFAULT '-9223372036854775808'::bigint`,
		`"pic" bytea NOT NULL DEFAULT E'\\x6869'::bytea`,
		`"meta" jsonb NOT NULL DEFAULT '{"q":"it''s"}'::jsonb`,
		`"note" text NOT NULL DEFAULT E'it''s \\ here'::text`,
		`ALTER TABLE "t_acme"."posts" ADD CONSTRAINT "posts_author_id_fkey" FOREIGN KEY ("_sync_scope_id", "author_id") ` +
			`REFERENCES "t_acme"."users" ("_sync_scope_id", "id") ON DELETE SET NULL ("author_id") ON UPDATE NO ACTION DEFERRABLE INITIALLY DEFERRED`,
		`CREATE INDEX "posts_author_id_fkey_idx" ON "t_acme"."posts" ("_sync_scope_id", "author_id")`,
		`CREATE INDEX "users_name_idx" ON "t_acme"."users" ("name")`,
		`CREATE UNIQUE INDEX "users_name_age_key" ON "t_acme"."users" ("_sync_scope_id", "name", "age")`,
	} {
		assert.Contains(t, all, want)
	}
}

// schemaTestDB connects to the test database with an empty search_path (so
// unqualified names in generated SQL fail) and creates a throw-away schema
// holding stand-ins for the sync core's trigger functions. The stand-in
// capture function only logs which table, operation and key column it was
// called for, and how many transition rows it saw.
func schemaTestDB(t *testing.T) (*pgx.Conn, string) {
	t.Helper()
	url := os.Getenv("SYNCPLANE_TEST_DATABASE_URL")
	if url == "" {
		t.Skip("SYNCPLANE_TEST_DATABASE_URL is not set")
	}
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(url)
	require.NoError(t, err)
	cfg.RuntimeParams["search_path"] = ""
	conn, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)

	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	schema := "t_test_" + hex.EncodeToString(rnd[:])
	q := pgx.Identifier{schema}.Sanitize()
	t.Cleanup(func() {
		_, err := conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+q+" CASCADE")
		assert.NoError(t, err)
		_ = conn.Close(context.Background())
	})
	for _, stmt := range []string{
		"CREATE SCHEMA " + q,
		"CREATE TABLE " + q + "._test_capture_log (seq serial, table_name text, op text, key_column text, row_count bigint)",
		"CREATE FUNCTION " + q + `._sync_capture() RETURNS trigger LANGUAGE plpgsql AS $$
		DECLARE n bigint;
		BEGIN
			IF TG_OP = 'DELETE' THEN SELECT count(*) INTO n FROM _sync_old;
			ELSE SELECT count(*) INTO n FROM _sync_new;
			END IF;
			EXECUTE format('INSERT INTO %I._test_capture_log (table_name, op, key_column, row_count) VALUES ($1, $2, $3, $4)', TG_TABLE_SCHEMA)
				USING TG_TABLE_NAME, TG_OP, TG_ARGV[0], n;
			RETURN NULL;
		END$$`,
		"CREATE FUNCTION " + q + `._sync_reject_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'TRUNCATE of registered table % is not allowed', TG_TABLE_NAME; END$$`,
		"CREATE FUNCTION " + q + `._sync_stamp_row_version() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN NEW._sync_row_version := 1; RETURN NEW; END$$`,
	} {
		_, err := conn.Exec(ctx, stmt)
		require.NoError(t, err, stmt)
	}
	return conn, schema
}

// schemaApply runs statements in one transaction.
func schemaApply(t *testing.T, conn *pgx.Conn, stmts []string) {
	t.Helper()
	err := pgx.BeginFunc(context.Background(), conn, func(tx pgx.Tx) error {
		for _, stmt := range stmts {
			if _, err := tx.Exec(context.Background(), stmt); err != nil {
				return errors.Join(err, errors.New(stmt))
			}
		}
		return nil
	})
	require.NoError(t, err)
}

// schemaAsUser runs fn in a transaction bound to user, as a sync
// transaction would be, and returns fn's or the commit's error.
func schemaAsUser(conn *pgx.Conn, user string, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(context.Background(), conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(context.Background(), `SELECT set_config('syncplane.user_id', $1, true)`, user); err != nil {
			return err
		}
		return fn(tx)
	})
}

func schemaPGCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// schemaPGDef is the definition the PostgreSQL test applies.
func schemaPGDef() Definition {
	return Definition{Tables: []TableDef{
		{Name: "users", SyncKey: "id",
			Columns: []ColumnDef{
				{Name: "id", Type: ColumnUUID},
				{Name: "name", Type: ColumnText, Default: json.RawMessage(`""`)},
				{Name: "email", Type: ColumnText, Nullable: true},
				{Name: "age", Type: ColumnInteger, Nullable: true},
				{Name: "score", Type: ColumnReal, Default: json.RawMessage(`0.25`)},
				{Name: "avatar", Type: ColumnBlob, Nullable: true, Default: json.RawMessage(`"AAEC/w=="`)},
				{Name: "meta", Type: ColumnJSON, Default: json.RawMessage(`{"tags":["a","it's"],"n":12345678901234567890}`)},
				{Name: "created_at", Type: ColumnTimestamp, Nullable: true},
			},
			Indexes: []IndexDef{{Columns: []string{"email"}, Unique: true}, {Columns: []string{"name"}}},
		},
		{Name: "posts", SyncKey: "id",
			Columns: []ColumnDef{
				{Name: "id", Type: ColumnUUID},
				{Name: "author_id", Type: ColumnUUID, Nullable: true},
				{Name: "body", Type: ColumnText},
			},
			ForeignKeys: []ForeignKeyDef{{Column: "author_id", References: "users", OnDelete: FKSetNull}},
		},
		{Name: "comments", SyncKey: "id",
			Columns: []ColumnDef{
				{Name: "id", Type: ColumnText},
				{Name: "post_id", Type: ColumnUUID},
				{Name: "body", Type: ColumnText, Default: json.RawMessage(`"it's \\ ok"`)},
			},
			ForeignKeys: []ForeignKeyDef{{Column: "post_id", References: "posts", OnDelete: FKCascade}},
		},
		{Name: "teams", SyncKey: "id",
			Columns:     []ColumnDef{{Name: "id", Type: ColumnText}, {Name: "captain_id", Type: ColumnText, Nullable: true}},
			ForeignKeys: []ForeignKeyDef{{Column: "captain_id", References: "members"}},
		},
		{Name: "members", SyncKey: "id",
			Columns:     []ColumnDef{{Name: "id", Type: ColumnText}, {Name: "team_id", Type: ColumnText}, {Name: "mentor_id", Type: ColumnText, Nullable: true}},
			ForeignKeys: []ForeignKeyDef{{Column: "team_id", References: "teams", OnDelete: FKCascade}, {Column: "mentor_id", References: "members"}},
		},
	}}
}

const (
	schemaU1 = "11111111-1111-1111-1111-111111111111"
	schemaU2 = "22222222-2222-2222-2222-222222222222"
	schemaP1 = "33333333-3333-3333-3333-333333333333"
	schemaP2 = "44444444-4444-4444-4444-444444444444"
)

func TestSchemaDDLPostgres(t *testing.T) {
	conn, schema := schemaTestDB(t)
	ctx := context.Background()
	tbl := func(name string) string { return pgx.Identifier{schema, name}.Sanitize() }
	s := schemaMustNew(t, schemaPGDef())
	schemaApply(t, conn, s.CreateDDL(schema))

	t.Run("catalog follows protocol section 6", func(t *testing.T) {
		// Every unique index starts with the scope column (6.3).
		rows, err := conn.Query(ctx, `
			SELECT c.relname, a.attname
			FROM pg_index i
			JOIN pg_class c ON c.oid = i.indexrelid
			JOIN pg_namespace n ON n.oid = c.relnamespace
			JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
			WHERE n.nspname = $1 AND i.indisunique AND c.relname <> '_test_capture_log_pkey'`, schema)
		require.NoError(t, err)
		firstCols, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct{ Index, First string }])
		require.NoError(t, err)
		assert.Len(t, firstCols, 6, "five primary keys and users_email_key")
		for _, r := range firstCols {
			assert.Equal(t, schemaScopeColumn, r.First, r.Index)
		}
		// Every foreign key is two columns, scope first, deferrable (6.5, 6.6).
		rows, err = conn.Query(ctx, `
			SELECT con.conname, cardinality(con.conkey), ka.attname, fa.attname, con.condeferrable, con.condeferred
			FROM pg_constraint con
			JOIN pg_namespace n ON n.oid = con.connamespace
			JOIN pg_attribute ka ON ka.attrelid = con.conrelid AND ka.attnum = con.conkey[1]
			JOIN pg_attribute fa ON fa.attrelid = con.confrelid AND fa.attnum = con.confkey[1]
			WHERE n.nspname = $1 AND con.contype = 'f'`, schema)
		require.NoError(t, err)
		type fkRow struct {
			Name               string
			Cols               int
			First, ParentFirst string
			Deferrable, Defer  bool
		}
		fks, err := pgx.CollectRows(rows, pgx.RowToStructByPos[fkRow])
		require.NoError(t, err)
		assert.Len(t, fks, 5)
		for _, fk := range fks {
			assert.Equal(t, fkRow{fk.Name, 2, schemaScopeColumn, schemaScopeColumn, true, true}, fk)
		}
		// Six triggers per table: capture (3), truncate, version stamps (2).
		var triggers int
		require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid
			JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND NOT tg.tgisinternal`, schema).Scan(&triggers))
		assert.Equal(t, 6*5, triggers)
	})

	t.Run("scope column comes from the bound user", func(t *testing.T) {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO `+tbl("users")+` (id) VALUES ($1)`, schemaU1)
			return err
		})
		assert.Equal(t, "23502", schemaPGCode(err), "no bound user: NOT NULL violation, got %v", err)

		require.NoError(t, schemaAsUser(conn, "alice", func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO `+tbl("users")+` (id) VALUES ($1)`, schemaU1)
			return err
		}))
		var scope, name, meta string
		var score float64
		var avatar []byte
		var created *string
		require.NoError(t, conn.QueryRow(ctx, `SELECT _sync_scope_id, name, score, avatar, meta::text, created_at FROM `+tbl("users")+
			` WHERE id = $1`, schemaU1).Scan(&scope, &name, &score, &avatar, &meta, &created))
		assert.Equal(t, "alice", scope)
		assert.Equal(t, "", name)
		assert.Equal(t, 0.25, score)
		assert.Equal(t, []byte{0, 1, 2, 255}, avatar)
		assert.JSONEq(t, `{"tags":["a","it's"],"n":12345678901234567890}`, meta)
		assert.Nil(t, created)
	})

	t.Run("capture triggers fire with the key column", func(t *testing.T) {
		var table, op, key string
		var n int64
		require.NoError(t, conn.QueryRow(ctx, `SELECT table_name, op, key_column, row_count FROM `+tbl("_test_capture_log")+
			` ORDER BY seq DESC LIMIT 1`).Scan(&table, &op, &key, &n))
		assert.Equal(t, []any{"users", "INSERT", "id", int64(1)}, []any{table, op, key, n})
	})

	t.Run("parent and child in reverse order commit (deferred FK)", func(t *testing.T) {
		require.NoError(t, schemaAsUser(conn, "alice", func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO `+tbl("comments")+` (id, post_id) VALUES ('c1', $1)`, schemaP1); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO `+tbl("posts")+` (id, author_id, body) VALUES ($1, $2, 'hello')`, schemaP1, schemaU2); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO `+tbl("users")+` (id, name) VALUES ($1, 'Bob')`, schemaU2)
			return err
		}))
		var body string
		require.NoError(t, conn.QueryRow(ctx, `SELECT body FROM `+tbl("comments")+` WHERE id = 'c1'`).Scan(&body))
		assert.Equal(t, `it's \ ok`, body, "text default with quote and backslash")
	})

	t.Run("FK cycle commits in one transaction", func(t *testing.T) {
		require.NoError(t, schemaAsUser(conn, "alice", func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO `+tbl("teams")+` (id, captain_id) VALUES ('t1', 'm1')`); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO `+tbl("members")+` (id, team_id, mentor_id) VALUES ('m1', 't1', 'm1')`)
			return err
		}))
	})

	t.Run("dangling reference fails at commit", func(t *testing.T) {
		insertOK := false
		err := schemaAsUser(conn, "alice", func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO `+tbl("posts")+` (id, author_id, body) VALUES ($1, $2, 'orphan')`,
				schemaP2, "99999999-9999-9999-9999-999999999999")
			insertOK = err == nil
			return err
		})
		assert.True(t, insertOK, "the check is deferred to commit")
		assert.Equal(t, "23503", schemaPGCode(err), "got %v", err)
	})

	t.Run("reference into another scope fails", func(t *testing.T) {
		// Bob (schemaU2) is alice's row; mallory's post cannot reference it.
		err := schemaAsUser(conn, "mallory", func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO `+tbl("posts")+` (id, author_id, body) VALUES ($1, $2, 'x')`, schemaP2, schemaU2)
			return err
		})
		assert.Equal(t, "23503", schemaPGCode(err), "got %v", err)
	})

	t.Run("set null nulls only the FK column", func(t *testing.T) {
		require.NoError(t, schemaAsUser(conn, "alice", func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `DELETE FROM `+tbl("users")+` WHERE id = $1`, schemaU2)
			return err
		}))
		var scope, body string
		var author *string
		require.NoError(t, conn.QueryRow(ctx, `SELECT _sync_scope_id, author_id::text, body FROM `+tbl("posts")+` WHERE id = $1`,
			schemaP1).Scan(&scope, &author, &body))
		assert.Equal(t, "alice", scope)
		assert.Nil(t, author)
		assert.Equal(t, "hello", body)
	})

	t.Run("cascade delete", func(t *testing.T) {
		require.NoError(t, schemaAsUser(conn, "alice", func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `DELETE FROM `+tbl("posts")+` WHERE id = $1`, schemaP1)
			return err
		}))
		var n int
		require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM `+tbl("comments")).Scan(&n))
		assert.Equal(t, 0, n)
		var op string
		var rows int64
		require.NoError(t, conn.QueryRow(ctx, `SELECT op, row_count FROM `+tbl("_test_capture_log")+
			` WHERE table_name = 'comments' ORDER BY seq DESC LIMIT 1`).Scan(&op, &rows))
		assert.Equal(t, "DELETE", op, "the cascade fires the child's capture trigger")
		assert.Equal(t, int64(1), rows)
	})

	t.Run("unique index is per scope", func(t *testing.T) {
		insert := func(user, id, email string) error {
			return schemaAsUser(conn, user, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, `INSERT INTO `+tbl("users")+` (id, email) VALUES ($1, $2)`, id, email)
				return err
			})
		}
		require.NoError(t, insert("alice", schemaP1, "a@example.com"))
		assert.Equal(t, "23505", schemaPGCode(insert("alice", schemaP2, "a@example.com")))
		assert.NoError(t, insert("bob", schemaP2, "a@example.com"), "same value in another scope")
		assert.NoError(t, insert("bob", schemaU1, "b@example.com"), "same key in another scope")
		assert.Equal(t, "23505", schemaPGCode(insert("bob", schemaU1, "c@example.com")), "same key in one scope")
	})

	t.Run("timestamps are kept exactly as text", func(t *testing.T) {
		for _, ts := range []string{"2026-03-24T18:02:00.123456789Z", "2026-03-24T18:02:00+02:00"} {
			var stored, asJSON string
			require.NoError(t, schemaAsUser(conn, "alice", func(tx pgx.Tx) error {
				return tx.QueryRow(ctx, `UPDATE `+tbl("users")+` u SET created_at = $1 WHERE id = $2 AND _sync_scope_id = 'alice'
					RETURNING created_at, to_jsonb(u) ->> 'created_at'`, ts, schemaP1).Scan(&stored, &asJSON)
			}))
			assert.Equal(t, ts, stored)
			assert.Equal(t, ts, asJSON)
		}
		for _, bad := range []string{"yesterday", "2026-02-30T25:00:00Z", "2026-03-24"} {
			err := schemaAsUser(conn, "alice", func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, `UPDATE `+tbl("users")+` SET created_at = $1 WHERE id = $2`, bad, schemaP1)
				return err
			})
			assert.Equal(t, "23514", schemaPGCode(err), "%q: %v", bad, err)
		}
	})

	t.Run("Go and PostgreSQL agree on the timestamp pattern", func(t *testing.T) {
		for _, v := range []string{
			"2026-03-24T18:02:00.123456789Z", "2026-03-24 18:02", "2026-03-24t18:02:00z", "2016-12-31T23:59:60-0530",
			"2026-03-24T18:02:00+02", "2026-03-24", "2026-03-24T18:02:00.Z", "2026-00-01T00:00Z", "x2026-03-24T18:02Z",
			"2026-03-24T18:02:00Z\n", "2026-03-24T18:02:00,5Z",
		} {
			var pg bool
			require.NoError(t, conn.QueryRow(ctx, `SELECT $1::text ~ `+schemaQuoteLiteral(schemaTimestampPattern), v).Scan(&pg))
			assert.Equal(t, schemaTimestampRE.MatchString(v), pg, "%q", v)
		}
	})

	t.Run("int64 extremes and bytes round-trip", func(t *testing.T) {
		blob := make([]byte, 256)
		for i := range blob {
			blob[i] = byte(i)
		}
		for _, n := range []int64{math.MaxInt64, math.MinInt64, 1<<53 + 1} {
			var got int64
			var gotJSON string
			var gotBlob []byte
			require.NoError(t, schemaAsUser(conn, "alice", func(tx pgx.Tx) error {
				// The sync core binds pushed numbers as exact decimal text.
				return tx.QueryRow(ctx, `UPDATE `+tbl("users")+` u SET age = $1::text::bigint, avatar = $2 WHERE id = $3 AND _sync_scope_id = 'alice'
					RETURNING age, to_jsonb(u) ->> 'age', avatar`, schemaJSONInt(n), blob, schemaP1).
					Scan(&got, &gotJSON, &gotBlob)
			}))
			assert.Equal(t, n, got)
			assert.Equal(t, schemaJSONInt(n), gotJSON)
			assert.True(t, bytes.Equal(blob, gotBlob))
		}
	})

	t.Run("truncate is refused", func(t *testing.T) {
		_, err := conn.Exec(ctx, `TRUNCATE `+tbl("comments"))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "TRUNCATE of registered table comments is not allowed")
	})

	// Compatible migration: add a table, a nullable column and an index.
	next := schemaPGDef()
	next.Tables[0].Columns = append(next.Tables[0].Columns, ColumnDef{Name: "nickname", Type: ColumnText, Nullable: true})
	next.Tables[0].Indexes = append(next.Tables[0].Indexes, IndexDef{Columns: []string{"age"}})
	next.Tables = append(next.Tables, TableDef{Name: "tags", SyncKey: "id",
		Columns:     []ColumnDef{{Name: "id", Type: ColumnText}, {Name: "post_id", Type: ColumnUUID}, {Name: "label", Type: ColumnText}},
		ForeignKeys: []ForeignKeyDef{{Column: "post_id", References: "posts", OnDelete: FKCascade}},
		Indexes:     []IndexDef{{Columns: []string{"label"}, Unique: true}},
	})
	s2 := schemaMustNew(t, next)

	t.Run("compatible migration", func(t *testing.T) {
		changes := Diff(s, s2)
		var kinds []ChangeKind
		for _, c := range changes {
			assert.False(t, c.Breaking, c.String())
			kinds = append(kinds, c.Kind)
		}
		assert.ElementsMatch(t, []ChangeKind{ChangeAddTable, ChangeAddColumn, ChangeAddIndex}, kinds)
		ddl, err := MigrationDDL(schema, s, s2, false)
		require.NoError(t, err)
		schemaApply(t, conn, ddl)

		var indexes []string
		rows, err := conn.Query(ctx, `SELECT indexname FROM pg_indexes WHERE schemaname = $1`, schema)
		require.NoError(t, err)
		indexes, err = pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		assert.Contains(t, indexes, "users_age_idx")
		assert.Contains(t, indexes, "tags_label_key")
		assert.Contains(t, indexes, "tags_post_id_fkey_idx")

		require.NoError(t, schemaAsUser(conn, "alice", func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `UPDATE `+tbl("users")+` SET nickname = 'al' WHERE id = $1 AND _sync_scope_id = 'alice'`, schemaP1); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO `+tbl("posts")+` (id, body) VALUES ($1, 'p')`, schemaP2); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO `+tbl("tags")+` (id, post_id, label) VALUES ('t1', $1, 'go')`, schemaP2)
			return err
		}))
		var op string
		require.NoError(t, conn.QueryRow(ctx, `SELECT op FROM `+tbl("_test_capture_log")+
			` WHERE table_name = 'tags' ORDER BY seq DESC LIMIT 1`).Scan(&op))
		assert.Equal(t, "INSERT", op, "the new table has capture triggers")
		err = schemaAsUser(conn, "alice", func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO `+tbl("tags")+` (id, post_id, label) VALUES ('t2', $1, 'go')`, schemaP2)
			return err
		})
		assert.Equal(t, "23505", schemaPGCode(err), "unique index on the new table")
	})

	t.Run("breaking migration", func(t *testing.T) {
		last := s2.Definition()
		tb := func(name string) *TableDef {
			for i := range last.Tables {
				if last.Tables[i].Name == name {
					return &last.Tables[i]
				}
			}
			t.Fatalf("no table %s", name)
			return nil
		}
		// Drop tags; drop users.age (and its index); change the posts FK to
		// cascade; drop the members self-reference; change a default; make
		// nickname required.
		last.Tables = slices.DeleteFunc(last.Tables, func(td TableDef) bool { return td.Name == "tags" })
		users := tb("users")
		users.Columns = slices.DeleteFunc(users.Columns, func(c ColumnDef) bool { return c.Name == "age" })
		users.Indexes = slices.DeleteFunc(users.Indexes, func(ix IndexDef) bool { return ix.Name == "users_age_idx" })
		for i := range users.Columns {
			switch users.Columns[i].Name {
			case "name":
				users.Columns[i].Default = json.RawMessage(`"anonymous"`)
			case "nickname":
				users.Columns[i].Nullable = false
				users.Columns[i].Default = json.RawMessage(`""`)
			}
		}
		tb("posts").ForeignKeys[0].OnDelete = FKCascade
		tb("members").ForeignKeys = tb("members").ForeignKeys[:1]
		s3 := schemaMustNew(t, last)

		_, err := MigrationDDL(schema, s2, s3, false)
		var ce *SchemaChangeError
		require.ErrorAs(t, err, &ce)
		assert.NotEmpty(t, ce.Breaking)

		// nickname has NULLs, so SET NOT NULL must fail and roll everything back.
		ddl, err := MigrationDDL(schema, s2, s3, true)
		require.NoError(t, err)
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			for _, stmt := range ddl {
				if _, err := tx.Exec(ctx, stmt); err != nil {
					return err
				}
			}
			return nil
		})
		assert.Equal(t, "23502", schemaPGCode(err), "got %v", err)

		require.NoError(t, schemaAsUser(conn, "alice", func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `UPDATE `+tbl("users")+` SET nickname = '' WHERE nickname IS NULL`)
			return err
		}))
		require.NoError(t, schemaAsUser(conn, "bob", func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `UPDATE `+tbl("users")+` SET nickname = '' WHERE nickname IS NULL`)
			return err
		}))
		schemaApply(t, conn, ddl)

		var hasAge, hasTags bool
		require.NoError(t, conn.QueryRow(ctx, `SELECT
			EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'users' AND column_name = 'age'),
			EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'tags')`, schema).Scan(&hasAge, &hasTags))
		assert.False(t, hasAge)
		assert.False(t, hasTags)

		// posts.author_id now cascades.
		require.NoError(t, schemaAsUser(conn, "alice", func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO `+tbl("users")+` (id) VALUES ($1)`, schemaU2); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `UPDATE `+tbl("posts")+` SET author_id = $1 WHERE id = $2`, schemaU2, schemaP2)
			return err
		}))
		var name, nick string
		require.NoError(t, conn.QueryRow(ctx, `SELECT name, nickname FROM `+tbl("users")+` WHERE _sync_scope_id = 'alice' AND id = $1`,
			schemaU2).Scan(&name, &nick))
		assert.Equal(t, []string{"anonymous", ""}, []string{name, nick})
		require.NoError(t, schemaAsUser(conn, "alice", func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `DELETE FROM `+tbl("users")+` WHERE id = $1`, schemaU2)
			return err
		}))
		var posts int
		require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM `+tbl("posts")+` WHERE id = $1`, schemaP2).Scan(&posts))
		assert.Equal(t, 0, posts)

		// The members self-reference is gone: a dangling mentor commits.
		require.NoError(t, schemaAsUser(conn, "alice", func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `UPDATE `+tbl("members")+` SET mentor_id = 'nobody' WHERE id = 'm1'`)
			return err
		}))
		assert.Empty(t, Diff(s3, schemaMustNew(t, s3.Definition())))
	})
}

func schemaJSONInt(n int64) string { return string(schemaMarshal(n)) }

// TestSchemaQuoteLiteralPostgres checks that quoted literals read back
// unchanged under both settings of standard_conforming_strings.
func TestSchemaQuoteLiteralPostgres(t *testing.T) {
	conn, _ := schemaTestDB(t)
	ctx := context.Background()
	values := []string{`it's`, `back\slash`, `\'; SELECT 1; --`, `E'x'`, "tab\tnew\nline", `\x41`, `$$dollar$$`, `''`, `\\`, "ünïcödé ✓"}
	for _, scs := range []string{"on", "off"} {
		_, err := conn.Exec(ctx, "SET standard_conforming_strings = "+scs)
		require.NoError(t, err)
		for _, v := range values {
			var got string
			require.NoError(t, conn.QueryRow(ctx, "SELECT "+schemaQuoteLiteral(v)+"::text").Scan(&got), v)
			assert.Equal(t, v, got, "standard_conforming_strings=%s", scs)
		}
	}
	_, err := conn.Exec(ctx, "RESET standard_conforming_strings")
	require.NoError(t, err)
}
