package tenant_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	syncx "github.com/syncplane/syncplane/sync"
	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/tenant/tenanttest"
	"github.com/syncplane/syncplane/web/server"
)

const usersV1 = `{"tables":[{"name":"users","sync_key":"id","columns":[
  {"name":"id","type":"uuid"},{"name":"name","type":"text"}]}]}`

const usersV2 = `{"tables":[
 {"name":"users","sync_key":"id","columns":[
  {"name":"id","type":"uuid"},{"name":"name","type":"text"},{"name":"age","type":"integer","nullable":true}],
  "indexes":[{"name":"users_name_idx","columns":["name"]}]},
 {"name":"posts","sync_key":"id","columns":[
  {"name":"id","type":"uuid"},{"name":"author_id","type":"uuid"},{"name":"body","type":"text"}],
  "foreign_keys":[{"column":"author_id","references":"users","on_delete":"cascade"}]}]}`

// usersDropName drops a column: breaking.
const usersDropName = `{"tables":[
 {"name":"users","sync_key":"id","columns":[
  {"name":"id","type":"uuid"},{"name":"age","type":"integer","nullable":true}],
  "indexes":[]},
 {"name":"posts","sync_key":"id","columns":[
  {"name":"id","type":"uuid"},{"name":"author_id","type":"uuid"},{"name":"body","type":"text"}],
  "foreign_keys":[{"column":"author_id","references":"users","on_delete":"cascade"}]}]}`

func mustDef(t *testing.T, doc string) tenant.Definition {
	t.Helper()
	def, err := tenant.ParseDefinition([]byte(doc))
	require.NoError(t, err)
	return def
}

func TestApplyTablesVersions(t *testing.T) {
	ctx := context.Background()
	store := tenanttest.Store(t)
	tn := tenanttest.Tenant(t, store, "")

	_, err := store.CurrentTables(ctx, tn.ID)
	require.ErrorIs(t, err, tenant.ErrNoDefinition)

	res := tenanttest.ApplyTables(t, store, tn, usersV1)
	require.True(t, res.Applied)
	require.Equal(t, 1, res.Version)

	// Same definition again: nothing to do.
	again, err := store.ApplyTables(ctx, tn.ID, mustDef(t, usersV1), tenant.ApplyOptions{}, tenanttest.Actor)
	require.NoError(t, err)
	require.False(t, again.Applied)
	require.Empty(t, again.Changes)
	require.Equal(t, 1, again.Version)

	// Dry run computes the plan and changes nothing.
	plan, err := store.ApplyTables(ctx, tn.ID, mustDef(t, usersV2), tenant.ApplyOptions{DryRun: true}, tenanttest.Actor)
	require.NoError(t, err)
	require.False(t, plan.Applied)
	require.NotEmpty(t, plan.DDL)
	require.Equal(t, 1, plan.Version)
	cur, err := store.CurrentTables(ctx, tn.ID)
	require.NoError(t, err)
	require.Equal(t, 1, cur.Version)

	// Compatible evolution: new table, nullable column, index.
	res = tenanttest.ApplyTables(t, store, tn, usersV2)
	require.Equal(t, 2, res.Version)
	for _, c := range res.Changes {
		require.False(t, c.Breaking, c.Description)
	}
	var cols int
	require.NoError(t, store.DB().QueryRow(ctx, `SELECT count(*) FROM information_schema.columns
		WHERE table_schema = $1 AND table_name = 'users' AND column_name IN ('age', 'name', 'id', '_sync_scope_id')`,
		tn.SchemaName()).Scan(&cols))
	require.Equal(t, 4, cols)

	// Every table of the schema, sync tables (tenant migration 000007) and
	// business tables alike, carries the small-table autovacuum thresholds.
	var tables, tuned int
	require.NoError(t, store.DB().QueryRow(ctx, `SELECT count(*),
		count(*) FILTER (WHERE reloptions @> ARRAY['autovacuum_vacuum_threshold=1000', 'autovacuum_analyze_threshold=5000'])
		FROM pg_class WHERE relnamespace = $1::regnamespace AND relkind = 'r'`, tn.SchemaName()).Scan(&tables, &tuned))
	require.Greater(t, tables, 5)
	require.Equal(t, tables, tuned, "tables without tenant.TableStorageOptions")

	// Breaking change refused without the flag, with nothing applied.
	_, err = store.ApplyTables(ctx, tn.ID, mustDef(t, usersDropName), tenant.ApplyOptions{}, tenanttest.Actor)
	require.Error(t, err)
	require.Contains(t, err.Error(), "name")
	cur, err = store.CurrentTables(ctx, tn.ID)
	require.NoError(t, err)
	require.Equal(t, 2, cur.Version)

	res, err = store.ApplyTables(ctx, tn.ID, mustDef(t, usersDropName), tenant.ApplyOptions{AllowBreaking: true}, tenanttest.Actor)
	require.NoError(t, err)
	require.Equal(t, 3, res.Version)

	versions, err := store.TableVersions(ctx, tn.ID)
	require.NoError(t, err)
	require.Len(t, versions, 3)
	require.Equal(t, []int{3, 2, 1}, []int{versions[0].Version, versions[1].Version, versions[2].Version})
	require.True(t, versions[0].Breaking)
	require.False(t, versions[1].Breaking)
	_, ok := versions[2].Schema.Table("posts")
	require.False(t, ok, "version 1 is immutable: it never had posts")

	// An invalid definition names the problem.
	_, err = store.ApplyTables(ctx, tn.ID, tenant.Definition{Tables: []tenant.TableDef{{Name: "x"}}}, tenant.ApplyOptions{}, tenanttest.Actor)
	var de *tenant.DefinitionError
	require.ErrorAs(t, err, &de)
	require.NotEmpty(t, de.Problems)
}

func TestApplyTablesInterruptedIsRepaired(t *testing.T) {
	ctx := context.Background()
	store := tenanttest.Store(t)
	tn := tenanttest.Tenant(t, store, usersV1)

	// The tenant schema commits the DDL, then the control plane write fails.
	tenant.SetFailpoint(store, func(step string) error {
		if step == "tables" {
			return errors.New("injected failure")
		}
		return nil
	})
	_, err := store.ApplyTables(ctx, tn.ID, mustDef(t, usersV2), tenant.ApplyOptions{}, tenanttest.Actor)
	tenant.SetFailpoint(store, nil)
	require.Error(t, err)
	cur, err := store.CurrentTables(ctx, tn.ID)
	require.NoError(t, err)
	require.Equal(t, 1, cur.Version)

	// The next apply first repairs the control plane from the tenant's own
	// record, then finds nothing left to do.
	res, err := store.ApplyTables(ctx, tn.ID, mustDef(t, usersV2), tenant.ApplyOptions{}, tenanttest.Actor)
	require.NoError(t, err)
	require.False(t, res.Applied)
	require.Equal(t, 2, res.Version)
	cur, err = store.CurrentTables(ctx, tn.ID)
	require.NoError(t, err)
	require.Equal(t, 2, cur.Version)
	_, ok := cur.Schema.Table("posts")
	require.True(t, ok)
}

// syncWrite runs stmts as one server-originated write of user, through the
// sync engine: the only way to write registered tables (capture triggers
// refuse anything else).
func syncWrite(t *testing.T, store *tenant.Store, tn *tenant.Tenant, user string, stmts ...string) error {
	t.Helper()
	ctx := context.Background()
	cur, err := store.CurrentTables(ctx, tn.ID)
	require.NoError(t, err)
	pool, err := store.PoolFor(tn)
	require.NoError(t, err)
	scope := &server.SyncScope{Tenant: tn, Pool: pool, Schema: cur.Schema, SchemaVersion: cur.Version, UserID: user}
	_, err = syncx.NewHandler(syncx.Config{}).ServerWriteTx(ctx, scope, "server:test", func(tx pgx.Tx) error {
		for _, s := range stmts {
			if _, err := tx.Exec(ctx, s); err != nil {
				return err
			}
		}
		return nil
	})
	return err
}

func TestTenantsWithSameTableNamesAreIsolated(t *testing.T) {
	ctx := context.Background()
	store := tenanttest.Store(t)
	a := tenanttest.Tenant(t, store, usersV1)
	b := tenanttest.Tenant(t, store, usersV1)
	require.Equal(t, a.WireSchema, b.WireSchema)
	require.NotEqual(t, a.SchemaName(), b.SchemaName())

	const id = "550e8400-e29b-41d4-a716-446655440000"
	for _, tc := range []struct {
		tn   *tenant.Tenant
		name string
	}{{a, "in a"}, {b, "in b"}} {
		require.NoError(t, syncWrite(t, store, tc.tn, "u1", `INSERT INTO `+pgx.Identifier{tc.tn.SchemaName(), "users"}.Sanitize()+
			` (id, name) VALUES ('`+id+`', '`+tc.name+`')`))
	}
	for _, tc := range []struct {
		tn   *tenant.Tenant
		want string
	}{{a, "in a"}, {b, "in b"}} {
		var names []string
		rows, err := store.DB().Query(ctx, `SELECT name FROM `+pgx.Identifier{tc.tn.SchemaName(), "users"}.Sanitize())
		require.NoError(t, err)
		names, err = pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		require.Equal(t, []string{tc.want}, names)
	}

	// Writes outside a bound sync transaction are refused by the database.
	_, err := store.DB().Exec(ctx, `INSERT INTO `+pgx.Identifier{a.SchemaName(), "users"}.Sanitize()+
		` (_sync_scope_id, id, name) VALUES ('u2', gen_random_uuid(), 'x')`)
	require.Error(t, err)
	require.Contains(t, err.Error(), "outside a sync transaction")
}

// TestRestrictForeignKeysJudgeTheCommittedState: a RESTRICT key may be
// broken mid-transaction (parent deleted before its children, as in a FK
// cycle) as long as the transaction ends consistent (protocol 6, 8.1).
func TestRestrictForeignKeysJudgeTheCommittedState(t *testing.T) {
	store := tenanttest.Store(t)
	tn := tenanttest.Tenant(t, store, `{"tables":[
	 {"name":"owners","sync_key":"id","columns":[{"name":"id","type":"text"}]},
	 {"name":"files","sync_key":"id","columns":[{"name":"id","type":"text"},{"name":"owner","type":"text"}],
	  "foreign_keys":[{"column":"owner","references":"owners","on_delete":"restrict"}]}]}`)
	owners, files := pgx.Identifier{tn.SchemaName(), "owners"}.Sanitize(), pgx.Identifier{tn.SchemaName(), "files"}.Sanitize()
	run := func(stmts ...string) error { return syncWrite(t, store, tn, "u1", stmts...) }
	require.NoError(t, run(`INSERT INTO `+owners+` (id) VALUES ('o1'), ('o2')`,
		`INSERT INTO `+files+` (id, owner) VALUES ('f1', 'o1'), ('f2', 'o2')`))
	require.NoError(t, run(`DELETE FROM `+owners+` WHERE id = 'o1'`, `DELETE FROM `+files+` WHERE id = 'f1'`),
		"parent first, child second: consistent at commit")
	err := run(`DELETE FROM ` + owners + ` WHERE id = 'o2'`)
	require.ErrorContains(t, err, "files_owner_fkey", "a dangling child still fails at commit")
}
