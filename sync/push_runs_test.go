package sync

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// Staged rows are kept as runs: one record per run of consecutive rows of
// one table, op and column set within a chunk, whatever the row count.
func TestPushStagesRuns(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	cr := c.do("POST", "/sync/push-sessions", map[string]any{"source_bundle_id": 1, "planned_row_count": 7}).expect(t, 200, "")
	id := cr.str("push_id")
	u1, u2, u3, p := newUUID(), newUUID(), newUUID(), newUUID()
	c.do("POST", "/sync/push-sessions/"+id+"/chunks", map[string]any{"start_row_ordinal": 0, "rows": []map[string]any{
		userRow(u1, "1"), userRow(u2, "2"), userRow(u3, "3"),
		row("posts", "INSERT", p, 0, map[string]any{"id": p, "author_id": u1, "title": "t"}),
	}}).expect(t, 200, "")
	require.EqualValues(t, 2, e.count("_sync_push_run"))
	var keys []string
	var bases []int64
	require.NoError(t, e.pool.QueryRow(context.Background(), `SELECT keys, bases FROM `+ident(e.tenant.SchemaName(), "_sync_push_run")+
		` WHERE push_id = $1 AND first_ordinal = 0`, id).Scan(&keys, &bases))
	require.Equal(t, []string{u1, u2, u3}, keys)
	require.Equal(t, []int64{0, 0, 0}, bases)
	u4, u5, u6 := newUUID(), newUUID(), newUUID()
	c.do("POST", "/sync/push-sessions/"+id+"/chunks", map[string]any{"start_row_ordinal": 4, "rows": []map[string]any{
		userRow(u4, "4"), userRow(u5, "5"), userRow(u6, "6"),
	}}).expect(t, 200, "")
	require.EqualValues(t, 3, e.count("_sync_push_run"))
	r := c.do("POST", "/sync/push-sessions/"+id+"/commit", nil).expect(t, 200, "")
	require.EqualValues(t, 7, r.num("row_count"))
	require.EqualValues(t, 0, e.count("_sync_push_run"))
}

// Runs of one table spanning chunks, interleaved with other tables, are
// applied and captured in upload order.
func TestPushRunsKeepUploadOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	var rows []map[string]any
	var want []string
	for i := 0; i < 12; i++ {
		u := newUUID()
		rows = append(rows, userRow(u, fmt.Sprint("n", i)))
		want = append(want, "users/"+u)
		if i%5 == 4 {
			p := newUUID()
			rows = append(rows, row("posts", "INSERT", p, 0, map[string]any{"id": p, "author_id": u, "title": "t"}))
			want = append(want, "posts/"+p)
		}
	}
	r := c.pushN(1, rows, 4, "").expect(t, 200, "")
	require.EqualValues(t, len(rows), r.num("row_count"))
	_, got := c.committedRows(1)
	var order []string
	for _, x := range got {
		order = append(order, fmt.Sprint(x["table"], "/", x["key"].(map[string]any)["id"]))
	}
	require.Equal(t, want, order)
	require.EqualValues(t, 0, e.count("_sync_push_run"))
}

// A delete that cascades to a row inserted by the same push collapses: the
// insert and its cascaded delete leave nothing (8.3).
func TestPushCascadeInSamePushCollapses(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	u, other := newUUID(), newUUID()
	c.push(1, userRow(u, "a"), userRow(other, "b")).expect(t, 200, "")
	p := newUUID()
	r := c.push(2, row("posts", "INSERT", p, 0, map[string]any{"id": p, "author_id": u, "title": "t"}),
		row("users", "DELETE", u, 1, nil)).expect(t, 200, "")
	require.EqualValues(t, 1, r.num("row_count"))
	_, got := c.committedRows(2)
	require.Len(t, got, 1)
	require.Equal(t, "DELETE", got[0]["op"])
	require.Equal(t, "users", got[0]["table"])
	// The post never existed for anyone: no row state, no business row.
	require.EqualValues(t, 0, e.count("posts"))
	var n int64
	require.NoError(t, e.pool.QueryRow(context.Background(), `SELECT count(*) FROM `+ident(e.tenant.SchemaName(), "_sync_row_state")+
		` WHERE key_text = $1`, p).Scan(&n))
	require.EqualValues(t, 0, n)
}
