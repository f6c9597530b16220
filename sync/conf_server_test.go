package sync

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	gosync "sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/web/server"
)

// 15.86: a server-originated write is one bundle of the writer, visible to
// pull, watch and snapshots.
func TestConf86ServerWrite(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "dev")
	c.attach()
	s, _ := c.watchStream(0)
	u := newUUID()
	res, err := e.h.ServerWrite(t.Context(), e.scope("u1"), "server:console", []WriteOp{
		{Table: "users", Op: "upsert", Key: u, Payload: json.RawMessage(`{"name":"from server","avatar":"AQI="}`)},
		{Table: "tags", Op: "upsert", Key: "t"},
	})
	require.NoError(t, err)
	require.EqualValues(t, 1, res.BundleSeq)
	require.Equal(t, "server:console", res.SourceID)
	require.EqualValues(t, 1, res.SourceBundleID)
	require.EqualValues(t, 2, res.RowCount)
	ev := s.next(t)
	require.Equal(t, "server:console", ev["source_id"])
	bs := c.pullAll(0)
	require.Len(t, bs, 1)
	require.Equal(t, res.BundleHash, bs[0]["bundle_hash"])
	require.Len(t, c.snapshotRows(), 2)
	// The writer's next write is its source_bundle_id 2; an update assigns
	// only the supplied columns.
	res, err = e.h.ServerWrite(t.Context(), e.scope("u1"), "server:console", []WriteOp{
		{Table: "users", Op: "upsert", Key: u, Payload: json.RawMessage(`{"age":3}`)}})
	require.NoError(t, err)
	require.EqualValues(t, 2, res.SourceBundleID)
	_, rows := c.committedRows(res.BundleSeq)
	require.Equal(t, "UPDATE", rows[0]["op"])
	p := rows[0]["payload"].(map[string]any)
	require.Equal(t, "from server", p["name"])
	require.Equal(t, "AQI=", p["avatar"])
	// Over HTTP, with the tenant scope set by the (secret-key) middleware.
	r := gin4writes(e)
	body := `{"writer_id":"worker:x","ops":[{"table":"tags","op":"delete","key":"t"}]}`
	status, out := r(http.MethodPost, "/v1/users/u1/writes", body)
	require.Equal(t, 200, status, out)
	require.Contains(t, out, `"source_id":"worker:x"`)
}

// 15.87: uninitialized scopes are initialized; initializing scopes and
// effect-free writes fail and write nothing.
func TestConf87ServerWriteScopes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, err := e.h.ServerWrite(t.Context(), e.scope("fresh"), "server:x", []WriteOp{{Table: "tags", Op: "upsert", Key: "a"}})
	require.NoError(t, err)
	require.Equal(t, "remote_authoritative", e.client("fresh", "dev").connect(true).expect(t, 200, "").str("resolution"))

	e.client("init", "dev").connect(true).expect(t, 200, "")
	_, err = e.h.ServerWrite(t.Context(), e.scope("init"), "server:x", []WriteOp{{Table: "tags", Op: "upsert", Key: "a"}})
	var se *server.Error
	require.ErrorAs(t, err, &se)
	require.Equal(t, "scope_initializing", se.Code)

	_, err = e.h.ServerWrite(t.Context(), e.scope("empty"), "server:x", []WriteOp{{Table: "tags", Op: "delete", Key: "none"}})
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusBadRequest, se.Status)
	require.Equal(t, "connect", func() string {
		// nothing was written, not even the initialization
		r := e.client("empty", "dev").connect(true).expect(t, 200, "")
		if r.str("resolution") == "initialize_local" {
			return "connect"
		}
		return r.str("resolution")
	}())
}

// 15.88: writes outside a bound sync transaction are rejected.
func TestConf88UnboundWriteRejected(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.pool.Exec(ctx, `INSERT INTO `+ident(e.tenant.SchemaName(), "tags")+` (_sync_scope_id, name) VALUES ('u1', 'x')`)
	require.ErrorContains(t, err, "outside a sync transaction")
	_, err = e.pool.Exec(ctx, `TRUNCATE `+ident(e.tenant.SchemaName(), "tags"))
	require.Error(t, err)
	// Bound to u1, touching u2's row is refused too.
	err = pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('syncplane.user_id', 'u1', true), set_config('syncplane.bundle_seq', '1', true)`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO `+ident(e.tenant.SchemaName(), "tags")+` (_sync_scope_id, name) VALUES ('u2', 'x')`)
		return err
	})
	require.ErrorContains(t, err, "another user")
}

// 15.89: two tenants with identical wire schema, tables, users and
// sources run the same flows concurrently and stay apart.
func TestConf89TenantIsolation(t *testing.T) {
	t.Parallel()
	a, b := newEnv(t), newEnv(t)
	var wg gosync.WaitGroup
	results := map[*env][]string{}
	var mu gosync.Mutex
	for _, e := range []*env{a, b} {
		wg.Add(1)
		go func(e *env) {
			defer wg.Done()
			c := e.client("u1", "dev")
			c.attach()
			var hashes []string
			for i := int64(1); i <= 5; i++ {
				r := c.push(i, userRow(newUUID(), fmt.Sprintf("%p-%d", e, i)))
				hashes = append(hashes, r.str("bundle_hash"))
			}
			mu.Lock()
			results[e] = hashes
			mu.Unlock()
		}(e)
	}
	wg.Wait()
	for _, e := range []*env{a, b} {
		c := e.client("u1", "dev")
		bs := c.pullAll(0)
		require.Len(t, bs, 5)
		for i, x := range bs {
			require.EqualValues(t, i+1, seqOf(x))
			require.Equal(t, results[e][i], x["bundle_hash"])
		}
		require.Len(t, c.snapshotRows(), 5)
	}
	// A session id of one tenant is unknown to the other.
	pid := a.client("u1", "dev").create(6, 1).expect(t, 200, "").str("push_id")
	b.client("u1", "dev").chunk(pid, 0, userRow(newUUID(), "x")).expect(t, 404, "push_session_not_found")
}

// 15.90 (first half): a push session created through one replica is
// chunked and committed through another; a commit whose response is lost
// (client gone mid-request) converges on retry without duplicates.
func TestConf90ReplicasAndRetry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	replica := newEnv(t)
	replica.tenant, replica.schema = e.tenant, e.schema
	c1, c2 := e.client("u1", "dev"), replica.client("u1", "dev")
	c1.attach()
	pid := c1.create(1, 2).expect(t, 200, "").str("push_id")
	c2.chunk(pid, 0, userRow(newUUID(), "a")).expect(t, 200, "")
	c1.chunk(pid, 1, userRow(newUUID(), "b")).expect(t, 200, "")
	first := c2.do("POST", "/sync/push-sessions/"+pid+"/commit", nil).expect(t, 200, "")
	// The client never saw that response and retries from create.
	again := c1.create(1, 2).expect(t, 200, "")
	require.Equal(t, "already_committed", again.str("status"))
	require.Equal(t, first.str("bundle_hash"), again.str("bundle_hash"))
	require.Len(t, c1.pullAll(0), 1)
}
