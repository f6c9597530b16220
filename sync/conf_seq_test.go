package sync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// 15.49: gap-free bundle_seq under 50 concurrent commits from many sources.
func TestConf49GapFreeConcurrent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.client("u1", "init").attach()
	const n = 50
	seqs := make(chan int64, n)
	errs := make(chan string, n)
	for i := 0; i < n; i++ {
		go func(i int) {
			c := e.client("u1", fmt.Sprintf("src-%d", i))
			r := c.push(1, userRow(newUUID(), fmt.Sprint("n", i)))
			if r.Status != 200 {
				errs <- string(r.Body)
				seqs <- -1
				return
			}
			seqs <- r.num("bundle_seq")
		}(i)
	}
	var got []int64
	for i := 0; i < n; i++ {
		got = append(got, <-seqs)
	}
	close(errs)
	for msg := range errs {
		t.Fatal(msg)
	}
	sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
	for i, s := range got {
		require.EqualValues(t, i+1, s)
	}
	require.Len(t, e.client("u1", "x").pullAll(0), n)
}

// 15.50: a user's commit does not wait for another user's (or another
// tenant's) held lock. User A's scope row is locked by an open transaction;
// B of the same tenant and C of another tenant commit meanwhile; A's own
// commit completes only after the lock is released.
func TestConf50NoCrossUserBlocking(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	other := newEnv(t)
	for _, c := range []*client{e.client("A", "d"), e.client("B", "d"), other.client("A", "d")} {
		c.attach()
	}
	ctx := context.Background()
	tx, err := e.pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck
	_, err = lockScope(ctx, tx, e.tenant.SchemaName(), "A")
	require.NoError(t, err)

	aDone := make(chan *resp, 1)
	go func() { aDone <- e.client("A", "d").push(1, userRow(newUUID(), "a")) }()

	e.client("B", "d").push(1, userRow(newUUID(), "b")).expect(t, 200, "")
	other.client("A", "d").push(1, userRow(newUUID(), "a")).expect(t, 200, "")
	select {
	case r := <-aDone:
		t.Fatalf("A committed while its scope was locked: %s", r.Body)
	default:
	}
	require.NoError(t, tx.Rollback(ctx))
	(<-aDone).expect(t, 200, "")
}

// 15.51: bundle_hash is SHA-256 of the canonical row array and identical
// everywhere it is served.
func TestConf51BundleHash(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	u := newUUID()
	commit := c.push(1, map[string]any{"schema": "app", "table": "users", "key": map[string]any{"id": u}, "op": "INSERT",
		"payload": rawJSON(`{"id":"` + u + `","name":"Tom & Jerry <x> \u2028","score":1e21,"age":9007199254740993,"avatar":"AQID"}`)},
		row("tags", "INSERT", "t", 0, map[string]any{"name": "t", "parent": nil})).expect(t, 200, "")
	first, rows := c.committedRows(1)
	// Recompute as the Go client does: decode generically, re-encode.
	var arr []any
	for i, r := range rows {
		var generic map[string]any
		b, _ := json.Marshal(r)
		require.NoError(t, json.Unmarshal(b, &generic))
		if _, ok := generic["payload"]; !ok {
			generic["payload"] = nil
		}
		generic["row_ordinal"] = float64(i)
		arr = append(arr, generic)
	}
	canon, err := json.Marshal(arr)
	require.NoError(t, err)
	sum := sha256.Sum256(canon)
	want := hex.EncodeToString(sum[:])
	require.Equal(t, want, commit.str("bundle_hash"))
	require.Equal(t, want, first.str("bundle_hash"))
	require.Equal(t, want, c.create(1, 2).str("bundle_hash"))
	require.Equal(t, want, c.pullAll(0)[0]["bundle_hash"])
	paged := c.do("GET", "/sync/committed-bundles/1/rows?after_row_ordinal=0&max_rows=1", nil).expect(t, 200, "")
	require.Equal(t, want, paged.str("bundle_hash"))
}

// 15.52: committed-bundle paging.
func TestConf52CommittedPaging(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	var rows []map[string]any
	for i := 0; i < 5; i++ {
		rows = append(rows, userRow(newUUID(), fmt.Sprint(i)))
	}
	c.push(1, rows...).expect(t, 200, "")
	r := c.do("GET", "/sync/committed-bundles/1/rows?max_rows=2", nil).expect(t, 200, "")
	require.Len(t, r.JSON["rows"], 2)
	require.EqualValues(t, 1, r.num("next_row_ordinal"))
	require.Equal(t, true, r.JSON["has_more"])
	r = c.do("GET", "/sync/committed-bundles/1/rows?max_rows=2&after_row_ordinal=1", nil).expect(t, 200, "")
	require.EqualValues(t, 3, r.num("next_row_ordinal"))
	require.Equal(t, true, r.JSON["has_more"])
	r = c.do("GET", "/sync/committed-bundles/1/rows?max_rows=2&after_row_ordinal=3", nil).expect(t, 200, "")
	require.Len(t, r.JSON["rows"], 1)
	require.EqualValues(t, 4, r.num("next_row_ordinal"))
	require.Equal(t, false, r.JSON["has_more"])
	r = c.do("GET", "/sync/committed-bundles/1/rows?after_row_ordinal=4", nil).expect(t, 200, "")
	require.Len(t, r.JSON["rows"], 0)
	require.EqualValues(t, 4, r.num("next_row_ordinal"))
	require.Equal(t, false, r.JSON["has_more"])
	r = c.do("GET", "/sync/committed-bundles/1/rows?max_rows=999999", nil).expect(t, 200, "")
	require.Len(t, r.JSON["rows"], 5)
	for _, q := range []string{"max_rows=0", "max_rows=-1", "after_row_ordinal=-1", "max_rows=x", "after_row_ordinal=1.5"} {
		c.do("GET", "/sync/committed-bundles/1/rows?"+q, nil).expect(t, 400, "committed_bundle_chunk_invalid")
	}
	for _, seq := range []string{"0", "-1", "abc"} {
		c.do("GET", "/sync/committed-bundles/"+seq+"/rows", nil).expect(t, 400, "committed_bundle_chunk_invalid")
	}
}

// 15.53: other users' and missing bundles are 404 (also for a user who
// never synced, D5).
func TestConf53CommittedNotFound(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	c.push(1, userRow(newUUID(), "a")).expect(t, 200, "")
	c.do("GET", "/sync/committed-bundles/2/rows", nil).expect(t, 404, "committed_bundle_not_found")
	e.client("u2", "a").do("GET", "/sync/committed-bundles/1/rows", nil).expect(t, 404, "committed_bundle_not_found")
	e.client("never", "a").do("GET", "/sync/committed-bundles/1/rows", nil).expect(t, 404, "committed_bundle_not_found")
}

// 15.54: bundles at or below the floor are history_pruned.
func TestConf54CommittedPruned(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withRetained(2))
	c := e.client("u1", "a")
	c.attach()
	for i := int64(1); i <= 4; i++ {
		c.push(i, userRow(newUUID(), fmt.Sprint(i))).expect(t, 200, "")
	}
	c.do("GET", "/sync/committed-bundles/1/rows", nil).expect(t, 409, "history_pruned")
	c.do("GET", "/sync/committed-bundles/2/rows", nil).expect(t, 409, "history_pruned")
	c.do("GET", "/sync/committed-bundles/3/rows", nil).expect(t, 200, "")
}

// tx helper used by lock tests.
var _ = pgx.TxOptions{}

// 15.52 / 15.67: max_rows above 5,000 is capped, for committed-bundle rows
// and snapshot chunks alike.
func TestPageCaps(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	rows := make([]map[string]any, 5001)
	for i := range rows {
		rows[i] = row("tags", "INSERT", fmt.Sprintf("t%05d", i), 0, map[string]any{})
	}
	c.pushN(1, rows, 5000, "").expect(t, 200, "")
	r := c.do("GET", "/sync/committed-bundles/1/rows?max_rows=100000", nil).expect(t, 200, "")
	require.Len(t, r.JSON["rows"], 5000)
	require.Equal(t, true, r.JSON["has_more"])
	require.EqualValues(t, 4999, r.num("next_row_ordinal"))
	sid := c.do("POST", "/sync/snapshot-sessions", nil).expect(t, 200, "").str("snapshot_id")
	s := c.do("GET", "/sync/snapshot-sessions/"+sid+"?max_rows=100000", nil).expect(t, 200, "")
	require.Len(t, s.JSON["rows"], 5000)
	require.Equal(t, true, s.JSON["has_more"])
	require.EqualValues(t, 5000, s.num("next_row_ordinal"))
	// Defaults: 1,000 rows when max_rows is omitted.
	require.Len(t, c.do("GET", "/sync/committed-bundles/1/rows", nil).JSON["rows"], 1000)
	require.Len(t, c.do("GET", "/sync/snapshot-sessions/"+sid, nil).JSON["rows"], 1000)
}
