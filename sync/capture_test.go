package sync

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// 6 (capture): a changed key is a DELETE of the old key and an INSERT of
// the new; effects collapse per key (8.3).
func TestCaptureKeyChangeAndCollapse(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	c.push(1, row("tags", "INSERT", "old", 0, map[string]any{"name": "old"}),
		row("tags", "INSERT", "a", 0, map[string]any{"name": "a"}), row("tags", "INSERT", "b", 0, map[string]any{"name": "b"})).expect(t, 200, "")
	tags := ident(e.tenant.SchemaName(), "tags")
	ops := func(seq int64) map[string]string {
		_, rows := c.committedRows(seq)
		out := map[string]string{}
		for _, r := range rows {
			out[r["key"].(map[string]any)["name"].(string)] = r["op"].(string)
		}
		return out
	}
	res, err := e.h.ServerWriteTx(context.Background(), e.scope("u1"), "server:x", func(tx pgx.Tx) error {
		_, err := tx.Exec(context.Background(), `UPDATE `+tags+` SET name = 'new' WHERE name = 'old'`)
		return err
	})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"old": "DELETE", "new": "INSERT"}, ops(res.BundleSeq))
	// Several keys change in one statement, next to a plain update.
	res, err = e.h.ServerWriteTx(context.Background(), e.scope("u1"), "server:x", func(tx pgx.Tx) error {
		_, err := tx.Exec(context.Background(), `UPDATE `+tags+` SET name = CASE name WHEN 'new' THEN 'new' ELSE name || '2' END`)
		return err
	})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"a": "DELETE", "b": "DELETE", "a2": "INSERT", "b2": "INSERT", "new": "UPDATE"}, ops(res.BundleSeq))
	// Insert then delete within one write vanishes; delete then re-insert
	// is an UPDATE.
	res, err = e.h.ServerWriteTx(context.Background(), e.scope("u1"), "server:x", func(tx pgx.Tx) error {
		for _, q := range []string{`INSERT INTO ` + tags + ` (name) VALUES ('tmp')`, `DELETE FROM ` + tags + ` WHERE name = 'tmp'`,
			`DELETE FROM ` + tags + ` WHERE name = 'a2'`, `INSERT INTO ` + tags + ` (name, parent) VALUES ('a2', 'b2')`} {
			if _, err := tx.Exec(context.Background(), q); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"a2": "UPDATE"}, ops(res.BundleSeq))
}

// The capture trigger renders after-images by concatenation (tenant
// migration 000008): byte for byte what wireExpr renders from the stored
// row, for inserts and updates, also for values pushes cannot produce (NaN,
// infinities, control characters).
func TestCapturePayloadIsWireExpr(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	users := catalogFor(e.schema).byName["users"]
	tbl := ident(e.tenant.SchemaName(), "users")
	write := func(seq int, sql string) {
		t.Helper()
		require.NoError(t, pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT set_config('syncplane.user_id', 'u1', true), set_config('syncplane.bundle_seq', $1::bigint::text, true)`,
				seq); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, sql)
			return err
		}))
	}
	write(900, `INSERT INTO `+tbl+` (id, name, age, score, avatar, meta, born) VALUES
		(gen_random_uuid(), 'x', 1, 'NaN'::float8, '\x00ff'::bytea, '{"a": [1, "é"], "b": {"c": null}}'::jsonb, '2026-01-01T00:00:00Z'),
		(gen_random_uuid(), E'\\"\u0001\n\t/<>', -9223372036854775808, 'Infinity', NULL, 'null', NULL),
		(gen_random_uuid(), '', NULL, '-Infinity', ''::bytea, '"s"', '2026-01-01T00:00:00.123456789+05:30'),
		(gen_random_uuid(), 'ü 😀', 9223372036854775807, 1e300, decode(repeat('ab', 100), 'hex'), '1.50', NULL),
		(gen_random_uuid(), 'y', 5, -0.0::float8, NULL, NULL, NULL),
		(gen_random_uuid(), 'z', 0, 0.1::float8 + 0.2::float8, '\xfbff'::bytea, '[]', NULL)`)
	same := func(seq int, want int) {
		t.Helper()
		var total, diff int
		require.NoError(t, e.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE b.payload IS DISTINCT FROM (`+users.wireExpr("t")+`)::text)
			FROM `+ident(e.tenant.SchemaName(), "_sync_bundle_row")+` b
			JOIN `+tbl+` t ON t._sync_scope_id = b.user_id AND t.id::text = b.key_text
			WHERE b.user_id = 'u1' AND b.bundle_seq = $1`, seq).Scan(&total, &diff))
		require.Equal(t, want, total)
		require.Zero(t, diff, "bundle %d", seq)
	}
	same(900, 6)
	write(901, `UPDATE `+tbl+` SET score = score / 3, name = name || '''', meta = '{"k": "v"}', avatar = NULL`)
	same(901, 6)
}
