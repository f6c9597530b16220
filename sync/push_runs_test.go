package sync

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
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

// A table with a column named like the ordinality column of the apply's
// record set takes the per-element form: its inserts and updates land.
func TestApplyTableWithOrdinalityColumn(t *testing.T) {
	t.Parallel()
	def := `{"tables": [{"name": "steps", "sync_key": "id", "columns": [{"name": "id", "type": "text"},
		{"name": "ordinality", "type": "integer", "nullable": true}, {"name": "label", "type": "text", "nullable": true}]}]}`
	e := newEnv(t, withDefinition(def))
	c := e.client("u1", "a")
	c.attach()
	step := func(op, id string, base int64, ord int, label string) map[string]any {
		return map[string]any{"schema": "app", "table": "steps", "key": map[string]any{"id": id}, "op": op, "base_row_version": base,
			"payload": map[string]any{"id": id, "ordinality": ord, "label": label}}
	}
	c.push(1, step("INSERT", "s1", 0, 10, "one"), step("INSERT", "s2", 0, 20, "two"), step("INSERT", "s3", 0, 30, "three")).expect(t, 200, "")
	c.push(2, step("UPDATE", "s2", 1, 21, "two'")).expect(t, 200, "")
	rows, err := e.pool.Query(context.Background(), `SELECT id, ordinality, label, _sync_row_version FROM `+
		ident(e.tenant.SchemaName(), "steps")+` WHERE _sync_scope_id = 'u1' ORDER BY id`)
	require.NoError(t, err)
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var id, label string
		var ord, v int64
		err := r.Scan(&id, &ord, &label, &v)
		return fmt.Sprintf("%s %d %s %d", id, ord, label, v), err
	})
	require.NoError(t, err)
	require.Equal(t, []string{"s1 10 one 1", "s2 21 two' 2", "s3 30 three 1"}, got)
	_, captured := c.committedRows(1)
	require.Len(t, captured, 3)
	for i, id := range []string{"s1", "s2", "s3"} {
		require.Equal(t, id, captured[i]["payload"].(map[string]any)["id"], "row %d in staged order", i)
	}
}
