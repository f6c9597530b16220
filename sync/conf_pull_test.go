package sync

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func seqOf(b any) int64 {
	n, _ := b.(map[string]any)["bundle_seq"].(json.Number).Int64()
	return n
}

// 15.55: complete bundles in (max(after, floor), stable], ascending, paged.
func TestConf55PullPaging(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	for i := int64(1); i <= 5; i++ {
		c.push(i, userRow(newUUID(), fmt.Sprint(i)), row("tags", "INSERT", fmt.Sprint("t", i), 0, map[string]any{"name": fmt.Sprint("t", i)})).expect(t, 200, "")
	}
	r := c.do("GET", "/sync/pull?after_bundle_seq=1&max_bundles=2", nil).expect(t, 200, "")
	bs := r.JSON["bundles"].([]any)
	require.Len(t, bs, 2)
	require.EqualValues(t, 2, seqOf(bs[0]))
	require.EqualValues(t, 3, seqOf(bs[1]))
	require.Len(t, bs[0].(map[string]any)["rows"], 2)
	require.Equal(t, true, r.JSON["has_more"])
	r = c.do("GET", "/sync/pull?after_bundle_seq=3&max_bundles=2&target_bundle_seq=5", nil).expect(t, 200, "")
	require.Len(t, r.JSON["bundles"], 2)
	require.Equal(t, false, r.JSON["has_more"])
	b := r.JSON["bundles"].([]any)[1].(map[string]any)
	for _, k := range []string{"bundle_seq", "source_id", "source_bundle_id", "row_count", "bundle_hash", "rows"} {
		require.Contains(t, b, k)
	}
}

// 15.56: stable_bundle_seq is frozen by target_bundle_seq.
func TestConf56StableCeiling(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	for i := int64(1); i <= 3; i++ {
		c.push(i, userRow(newUUID(), fmt.Sprint(i))).expect(t, 200, "")
	}
	r := c.do("GET", "/sync/pull?max_bundles=1", nil).expect(t, 200, "")
	require.EqualValues(t, 3, r.num("stable_bundle_seq"))
	c.push(4, userRow(newUUID(), "4")).expect(t, 200, "")
	r = c.do("GET", "/sync/pull?after_bundle_seq=1&max_bundles=10&target_bundle_seq=3", nil).expect(t, 200, "")
	require.EqualValues(t, 3, r.num("stable_bundle_seq"))
	require.Len(t, r.JSON["bundles"], 2)
	require.Equal(t, false, r.JSON["has_more"])
}

// 15.57: nothing after the ceiling.
func TestConf57PullCaughtUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	r := c.do("GET", "/sync/pull?after_bundle_seq=0", nil).expect(t, 200, "")
	require.EqualValues(t, 0, r.num("stable_bundle_seq"))
	require.Len(t, r.JSON["bundles"], 0)
	c.push(1, userRow(newUUID(), "1")).expect(t, 200, "")
	for _, after := range []string{"1", "7"} {
		r = c.do("GET", "/sync/pull?after_bundle_seq="+after, nil).expect(t, 200, "")
		require.Len(t, r.JSON["bundles"], 0)
		require.Equal(t, false, r.JSON["has_more"])
	}
}

// 15.58: bad pull parameters.
func TestConf58PullParams(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	for _, q := range []string{"after_bundle_seq=x", "after_bundle_seq=-1", "max_bundles=0", "max_bundles=5001", "max_bundles=1.5",
		"target_bundle_seq=-2", "target_bundle_seq=a"} {
		c.do("GET", "/sync/pull?"+q, nil).expect(t, 400, "invalid_request")
	}
	c.do("GET", "/sync/pull?max_bundles=5000", nil).expect(t, 200, "")
}

// 15.59: checkpoints at or below the floor (and a zero checkpoint once the
// floor is raised, D4) are history_pruned.
func TestConf59PullPruned(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withRetained(2))
	c := e.client("u1", "a")
	c.attach()
	for i := int64(1); i <= 5; i++ {
		c.push(i, userRow(newUUID(), fmt.Sprint(i))).expect(t, 200, "")
	}
	for _, q := range []string{"after_bundle_seq=1", "after_bundle_seq=3", "after_bundle_seq=0", "after_bundle_seq=4&target_bundle_seq=2"} {
		c.do("GET", "/sync/pull?"+q, nil).expect(t, 409, "history_pruned")
	}
	r := c.do("GET", "/sync/pull?after_bundle_seq=4", nil).expect(t, 200, "")
	require.Len(t, r.JSON["bundles"], 1)
}

// 15.60: pulls include own and server-originated bundles.
func TestConf60PullIncludesAll(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	c.push(1, userRow(newUUID(), "mine")).expect(t, 200, "")
	_, err := e.h.ServerWrite(t.Context(), e.scope("u1"), "server:test", []WriteOp{{Table: "tags", Op: "upsert", Key: "srv"}})
	require.NoError(t, err)
	bs := c.pullAll(0)
	require.Len(t, bs, 2)
	require.Equal(t, "a", bs[0]["source_id"])
	require.Equal(t, "server:test", bs[1]["source_id"])
}

// 15.61: users never see each other's bundles, rows or sessions.
func TestConf61UserIsolation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := e.client("u1", "a"), e.client("u2", "a")
	a.attach()
	b.attach()
	k := newUUID()
	a.push(1, userRow(k, "a's")).expect(t, 200, "")
	require.Len(t, b.pullAll(0), 0)
	require.Len(t, b.snapshotRows(), 0)
	// The same key is a different row for b.
	b.push(1, userRow(k, "b's")).expect(t, 200, "")
	require.Equal(t, "a's", a.snapshotRows()[0]["payload"].(map[string]any)["name"])
	sid := a.do("POST", "/sync/snapshot-sessions", nil).str("snapshot_id")
	b.do("GET", "/sync/snapshot-sessions/"+sid, nil).expect(t, 403, "snapshot_session_forbidden")
}

// 15.62: the floor rises by the window, at most 1,000 per commit.
func TestConf62RetentionFloor(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withRetained(3))
	c := e.client("u1", "a")
	c.attach()
	floor := func() (f int64) {
		require.NoError(t, e.pool.QueryRow(t.Context(), `SELECT retained_floor FROM `+ident(e.tenant.SchemaName(), "_sync_scope")+
			` WHERE user_id = 'u1'`).Scan(&f))
		return f
	}
	prev := int64(0)
	for i := int64(1); i <= 8; i++ {
		c.push(i, userRow(newUUID(), fmt.Sprint(i))).expect(t, 200, "")
		want := max(prev, min(i-3, prev+1000))
		require.Equal(t, want, floor(), "after commit %d", i)
		prev = want
	}
	var n int64
	require.NoError(t, e.pool.QueryRow(t.Context(), `SELECT count(*) FROM `+ident(e.tenant.SchemaName(), "_sync_bundle")).Scan(&n))
	require.EqualValues(t, 3, n)
	// The per-commit cap: shrink the window by pretending a huge history.
	_, err := e.pool.Exec(t.Context(), `UPDATE `+ident(e.tenant.SchemaName(), "_sync_scope")+` SET latest_bundle_seq = 5000 WHERE user_id = 'u1'`)
	require.NoError(t, err)
	_, err = e.h.ServerWrite(t.Context(), e.scope("u1"), "server:x", []WriteOp{{Table: "tags", Op: "upsert", Key: "x"}})
	require.NoError(t, err)
	require.EqualValues(t, prev+1000, floor())
}

// 15.63: a pruned tuple is refused at create and never committed twice.
func TestConf63PrunedTuple(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withRetained(1))
	c := e.client("u1", "a")
	c.attach()
	c.push(1, userRow(newUUID(), "1")).expect(t, 200, "")
	c.create(1, 1).expect(t, 200, "") // still retained: already_committed
	c.push(2, userRow(newUUID(), "2")).expect(t, 200, "")
	c.push(3, userRow(newUUID(), "3")).expect(t, 200, "")
	c.create(1, 1).expect(t, 409, "history_pruned")
	c.create(2, 1).expect(t, 409, "history_pruned")
	require.Equal(t, "already_committed", c.create(3, 1).expect(t, 200, "").str("status"))
}
