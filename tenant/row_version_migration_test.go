package tenant_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/tenant/tenanttest"
)

// Tenant migration 000008 moves live rows' versions from _sync_row_state
// onto the business rows of a schema that already holds data, and its down
// migration puts them back.
func TestRowVersionMigrationUpAndDown(t *testing.T) {
	ctx := context.Background()
	pool := tenanttest.Pool(t)
	schema := "t_" + tenanttest.RandomSlug("rv")
	q := pgx.Identifier{schema}.Sanitize()
	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := pool.Exec(ctx, sql, args...)
		require.NoError(t, err, sql)
	}
	exec(`CREATE SCHEMA ` + q)
	t.Cleanup(func() { _, _ = pool.Exec(context.Background(), `DROP SCHEMA `+q+` CASCADE`) })
	require.NoError(t, tenant.MigrateTenantSchemaTo(ctx, pool, schema, 7))

	// A registered table as the tenant DDL made it before 000008.
	exec(`CREATE TABLE ` + q + `.items (_sync_scope_id text NOT NULL DEFAULT current_setting('syncplane.user_id', true),
		id text NOT NULL, title text, PRIMARY KEY (_sync_scope_id, id))`)
	exec(`CREATE TRIGGER _sync_capture_ins AFTER INSERT ON ` + q + `.items REFERENCING NEW TABLE AS _sync_new
		FOR EACH STATEMENT EXECUTE FUNCTION ` + q + `._sync_capture('id')`)
	exec(`CREATE TRIGGER _sync_capture_upd AFTER UPDATE ON ` + q + `.items REFERENCING OLD TABLE AS _sync_old NEW TABLE AS _sync_new
		FOR EACH STATEMENT EXECUTE FUNCTION ` + q + `._sync_capture('id')`)
	bound := func(user string, seq int, sql string) {
		t.Helper()
		require.NoError(t, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT set_config('syncplane.user_id', $1, true), set_config('syncplane.bundle_seq', $2::bigint::text, true)`,
				user, seq); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, sql)
			return err
		}), sql)
	}
	bound("u1", 3, `INSERT INTO `+q+`.items (id, title) VALUES ('a', 'A'), ('b', 'B')`)
	bound("u2", 7, `INSERT INTO `+q+`.items (id, title) VALUES ('c', 'C')`)
	exec(`INSERT INTO ` + q + `._sync_scope (user_id) VALUES ('u1'), ('u2')`)
	exec(`INSERT INTO ` + q + `._sync_row_state (user_id, table_name, key_text, row_version, deleted) VALUES
		('u1', 'items', 'a', 3, false), ('u1', 'items', 'b', 5, false), ('u2', 'items', 'c', 7, false), ('u1', 'items', 'z', 4, true)`)

	versions := func() map[string]int64 {
		t.Helper()
		rows, err := pool.Query(ctx, `SELECT id, _sync_row_version FROM `+q+`.items`)
		require.NoError(t, err)
		out := map[string]int64{}
		for rows.Next() {
			var id string
			var v int64
			require.NoError(t, rows.Scan(&id, &v))
			out[id] = v
		}
		require.NoError(t, rows.Err())
		return out
	}
	rowStates := func() map[string]any {
		t.Helper()
		rows, err := pool.Query(ctx, `SELECT key_text, row_version, deleted FROM `+q+`._sync_row_state`)
		require.NoError(t, err)
		out := map[string]any{}
		for rows.Next() {
			var key string
			var v int64
			var deleted bool
			require.NoError(t, rows.Scan(&key, &v, &deleted))
			out[key] = [2]any{v, deleted}
		}
		require.NoError(t, rows.Err())
		return out
	}
	liveRows := func(user string) int64 {
		t.Helper()
		var n int64
		require.NoError(t, pool.QueryRow(ctx, `SELECT live_rows FROM `+q+`._sync_scope WHERE user_id = $1`, user).Scan(&n))
		return n
	}
	require.EqualValues(t, 2, liveRows("u1"))

	require.NoError(t, tenant.MigrateTenantSchemaTo(ctx, pool, schema, 8))
	require.Equal(t, map[string]int64{"a": 3, "b": 5, "c": 7}, versions())
	require.Equal(t, map[string]any{"z": [2]any{int64(4), true}}, rowStates(), "only tombstones stay")
	// A writer of the old layout (a replica of the previous release) is
	// refused rather than recording live rows in row state.
	_, err := pool.Exec(ctx, `INSERT INTO `+q+`._sync_row_state (user_id, table_name, key_text, row_version, deleted)
		VALUES ('u1', 'items', 'n', 8, false)`)
	require.ErrorContains(t, err, "_sync_row_state_tombstones_only")

	// Writes that leave the version unset are stamped from the bound
	// transaction, and the captured after-image does not show it.
	bound("u1", 9, `INSERT INTO `+q+`.items (id, title) VALUES ('d', 'D')`)
	bound("u1", 10, `UPDATE `+q+`.items SET title = 'AA' WHERE id = 'a'`)
	require.Equal(t, map[string]int64{"a": 10, "b": 5, "c": 7, "d": 9}, versions())
	var payload string
	require.NoError(t, pool.QueryRow(ctx, `SELECT payload FROM `+q+`._sync_bundle_row WHERE user_id = 'u1' AND bundle_seq = 10`).Scan(&payload))
	require.JSONEq(t, `{"id": "a", "title": "AA"}`, payload)
	_, err = pool.Exec(ctx, `INSERT INTO `+q+`.items (_sync_scope_id, id) VALUES ('u1', 'x')`)
	require.ErrorContains(t, err, "outside a sync transaction")

	// Down: every live row has its row state again, and the counter counts
	// them.
	require.NoError(t, tenant.MigrateTenantSchemaTo(ctx, pool, schema, 7))
	require.Equal(t, map[string]any{"a": [2]any{int64(10), false}, "b": [2]any{int64(5), false}, "c": [2]any{int64(7), false},
		"d": [2]any{int64(9), false}, "z": [2]any{int64(4), true}}, rowStates())
	require.EqualValues(t, 3, liveRows("u1"))
	require.EqualValues(t, 1, liveRows("u2"))
	var cols int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.columns WHERE table_schema = $1 AND column_name = '_sync_row_version'`,
		schema).Scan(&cols))
	require.Zero(t, cols)

	// And up again.
	require.NoError(t, tenant.MigrateTenantSchemaTo(ctx, pool, schema, 8))
	require.Equal(t, map[string]int64{"a": 10, "b": 5, "c": 7, "d": 9}, versions())
}
