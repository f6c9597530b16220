package sync

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// committedRows fetches every row of a bundle through the API.
func (c *client) committedRows(seq int64) (*resp, []map[string]any) {
	c.e.t.Helper()
	var rows []map[string]any
	path := "/sync/committed-bundles/" + itoa(seq) + "/rows"
	var first *resp
	after := int64(-1)
	for {
		p := path
		if after >= 0 {
			p += "?after_row_ordinal=" + itoa(after)
		}
		r := c.do("GET", p, nil)
		if r.Status != 200 {
			return r, nil
		}
		if first == nil {
			first = r
		}
		for _, x := range r.JSON["rows"].([]any) {
			rows = append(rows, x.(map[string]any))
		}
		if r.JSON["has_more"] != true {
			return first, rows
		}
		after = r.num("next_row_ordinal")
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// 15.36: a conflicting push writes nothing.
func TestConf36Atomic(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	k := newUUID()
	c.push(1, userRow(k, "k")).expect(t, 200, "")
	fresh := newUUID()
	c.push(2, userRow(fresh, "fresh"), row("users", "UPDATE", k, 7, map[string]any{"id": k, "name": "stale"})).expect(t, 409, "push_conflict")
	require.Len(t, c.pullAll(0), 1)
	require.EqualValues(t, 1, e.count("users"))
	s := c.do("POST", "/sync/snapshot-sessions", nil).expect(t, 200, "")
	require.EqualValues(t, 1, s.num("row_count"))
}

// 15.37: a stale UPDATE or DELETE carries the full conflict payload.
func TestConf37StaleUpdate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	k := newUUID()
	c.push(1, userRow(k, "Jane")).expect(t, 200, "")
	for _, op := range []string{"UPDATE", "DELETE"} {
		var payload any
		if op == "UPDATE" {
			payload = map[string]any{"id": k, "name": "x"}
		}
		r := c.push(2, row("users", op, k, 3, payload)).expect(t, 409, "push_conflict")
		cf := r.JSON["conflict"].(map[string]any)
		require.Equal(t, "app", cf["schema"])
		require.Equal(t, "users", cf["table"])
		require.Equal(t, map[string]any{"id": k}, cf["key"])
		require.Equal(t, op, cf["op"])
		require.Equal(t, json.Number("3"), cf["base_row_version"])
		require.Equal(t, json.Number("1"), cf["server_row_version"])
		require.Equal(t, false, cf["server_row_deleted"])
		sr := cf["server_row"].(map[string]any)
		require.Equal(t, "Jane", sr["name"])
		require.NotContains(t, sr, "_sync_scope_id")
	}
}

// 15.38: INSERT of a live key.
func TestConf38InsertLive(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	k := newUUID()
	c.push(1, userRow(k, "live")).expect(t, 200, "")
	cf := c.push(2, userRow(k, "again")).expect(t, 409, "push_conflict").JSON["conflict"].(map[string]any)
	require.Equal(t, json.Number("1"), cf["server_row_version"])
	require.Equal(t, "live", cf["server_row"].(map[string]any)["name"])
}

// 15.39: INSERT of a never-seen key with a non-zero base.
func TestConf39InsertUnknownWithBase(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	k := newUUID()
	r := c.push(1, row("users", "INSERT", k, 4, map[string]any{"id": k, "name": "x"})).expect(t, 409, "push_conflict")
	cf := r.JSON["conflict"].(map[string]any)
	require.Equal(t, json.Number("0"), cf["server_row_version"])
	require.Equal(t, false, cf["server_row_deleted"])
	require.Contains(t, cf, "server_row")
	require.Nil(t, cf["server_row"])
}

// 15.40: tombstones: UPDATE conflicts, INSERT needs the tombstone version.
func TestConf40Tombstones(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	k := newUUID()
	c.push(1, userRow(k, "x")).expect(t, 200, "")
	c.push(2, row("users", "DELETE", k, 1, nil)).expect(t, 200, "")
	cf := c.push(3, row("users", "UPDATE", k, 2, map[string]any{"id": k, "name": "y"})).expect(t, 409, "push_conflict").JSON["conflict"].(map[string]any)
	require.Equal(t, true, cf["server_row_deleted"])
	require.Nil(t, cf["server_row"])
	require.Equal(t, json.Number("2"), cf["server_row_version"])
	c.push(3, row("users", "INSERT", k, 0, map[string]any{"id": k, "name": "y"})).expect(t, 409, "push_conflict")
	c.push(3, row("users", "INSERT", k, 2, map[string]any{"id": k, "name": "y"})).expect(t, 200, "")
}

// 15.41: the first conflicting row in upload order is reported.
func TestConf41FirstConflict(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	k1, k2 := newUUID(), newUUID()
	c.push(1, userRow(k1, "1"), userRow(k2, "2")).expect(t, 200, "")
	r := c.push(2, userRow(newUUID(), "ok"), row("users", "UPDATE", k2, 9, map[string]any{"id": k2, "name": "b"}),
		row("users", "UPDATE", k1, 9, map[string]any{"id": k1, "name": "a"})).expect(t, 409, "push_conflict")
	require.Equal(t, map[string]any{"id": k2}, r.JSON["conflict"].(map[string]any)["key"])
}

// 15.42: FK order and cycles inside one push; dangling references fail.
func TestConf42ForeignKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	u, p := newUUID(), newUUID()
	// Child before parent.
	c.push(1, row("posts", "INSERT", p, 0, map[string]any{"id": p, "author_id": u, "title": "t"}), userRow(u, "author")).expect(t, 200, "")
	// A two-row cycle in a self-referencing table.
	c.push(2, row("tags", "INSERT", "x", 0, map[string]any{"name": "x", "parent": "y"}),
		row("tags", "INSERT", "y", 0, map[string]any{"name": "y", "parent": "x"})).expect(t, 200, "")
	// Dangling.
	r := c.push(3, row("posts", "INSERT", newUUID(), 0, map[string]any{"title": "t", "author_id": newUUID()})).expect(t, 400, "push_commit_invalid")
	require.Contains(t, r.str("message"), "constraint")
	require.Len(t, c.pullAll(0), 2)
}

// 15.43: cascaded deletes are rows of the same bundle.
func TestConf43Cascade(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	u, p1, p2 := newUUID(), newUUID(), newUUID()
	c.push(1, userRow(u, "a"), row("posts", "INSERT", p1, 0, map[string]any{"id": p1, "author_id": u, "title": "1"}),
		row("posts", "INSERT", p2, 0, map[string]any{"id": p2, "author_id": u, "title": "2"})).expect(t, 200, "")
	r := c.push(2, row("users", "DELETE", u, 1, nil)).expect(t, 200, "")
	require.EqualValues(t, 3, r.num("row_count"))
	_, rows := c.committedRows(2)
	require.Len(t, rows, 3)
	for _, x := range rows {
		require.Equal(t, "DELETE", x["op"])
		require.NotContains(t, x, "payload")
	}
}

// 15.44: bundle rows carry the bundle's seq; row state follows.
func TestConf44RowVersions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	k1, k2 := newUUID(), newUUID()
	c.push(1, userRow(k1, "1")).expect(t, 200, "")
	c.push(2, userRow(k2, "2"), row("users", "UPDATE", k1, 1, map[string]any{"id": k1, "name": "1b"})).expect(t, 200, "")
	_, rows := c.committedRows(2)
	for _, x := range rows {
		require.Equal(t, json.Number("2"), x["row_version"])
	}
	snap := c.snapshotRows()
	for _, x := range snap {
		require.Equal(t, json.Number("2"), x["row_version"])
	}
}

// 15.45: exact int64 values at the edges.
func TestConf45ExactIntegers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	vals := []string{"-9223372036854775808", "9223372036854775807", "9007199254740993", "0", "-1"}
	var rows []map[string]any
	for i, v := range vals {
		k := newUUID()
		rows = append(rows, map[string]any{"schema": "app", "table": "users", "key": map[string]any{"id": k}, "op": "INSERT",
			"payload": rawJSON(`{"id":"` + k + `","name":"n` + itoa(int64(i)) + `","age":` + v + `}`)})
	}
	c.push(1, rows...).expect(t, 200, "")
	_, rows = c.committedRows(1)
	got := map[string]bool{}
	for _, x := range rows {
		got[string(x["payload"].(map[string]any)["age"].(json.Number))] = true
	}
	for _, v := range vals {
		require.True(t, got[v], v)
		var n int64
		require.NoError(t, e.pool.QueryRow(context.Background(), `SELECT count(*) FROM `+ident(e.tenant.SchemaName(), "users")+
			` WHERE age = $1::bigint`, v).Scan(&n))
		require.EqualValues(t, 1, n, v)
	}
}

// 15.46: every type round-trips push → committed rows → pull → snapshot.
func TestConf46TypedRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	u := newUUID()
	p := newUUID()
	payload := `{"id":"` + u + `","name":"Zoë 🦊 <&> \u2028 \"q\"","age":9007199254740993,"score":0.1,"avatar":"AAEC/w==",` +
		`"meta":{"a":[1,2.5,"x",null,true]},"born":"2026-03-24T18:02:00.123456789+02:00"}`
	c.push(1, map[string]any{"schema": "app", "table": "users", "key": map[string]any{"id": u}, "op": "INSERT", "payload": rawJSON(payload)},
		row("posts", "INSERT", p, 0, map[string]any{"id": p, "author_id": u, "title": ""}),
		row("tags", "INSERT", "nul", 0, map[string]any{"name": "nul", "parent": nil})).expect(t, 200, "")
	_, committed := c.committedRows(1)
	pulled := c.pullAll(0)[0]["rows"].([]any)
	snap := c.snapshotRows()
	var want map[string]any
	require.NoError(t, json.Unmarshal([]byte(payload), &want))
	find := func(rows []any, table string) map[string]any {
		for _, x := range rows {
			m := x.(map[string]any)
			if m["table"] == table {
				return normalize(m["payload"])
			}
		}
		return nil
	}
	toAny := func(ms []map[string]any) []any {
		out := make([]any, len(ms))
		for i, m := range ms {
			out[i] = m
		}
		return out
	}
	for _, rows := range [][]any{toAny(committed), pulled, toAny(snap)} {
		require.Equal(t, want, find(rows, "users"))
		require.Equal(t, map[string]any{"id": p, "author_id": u, "title": ""}, find(rows, "posts"))
		require.Equal(t, map[string]any{"name": "nul", "parent": nil}, find(rows, "tags"))
	}
}

// normalize re-decodes a json.Number-based value with float64 numbers.
func normalize(v any) map[string]any {
	b, _ := json.Marshal(v)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

// 15.47: the hidden scope column never reaches the wire.
func TestConf47NoScopeColumn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	k := newUUID()
	c.push(1, userRow(k, "a")).expect(t, 200, "")
	r, _ := c.committedRows(1)
	require.NotContains(t, string(r.Body), "_sync_scope_id")
	p := c.do("GET", "/sync/pull", nil)
	require.NotContains(t, string(p.Body), "_sync_scope_id")
	sid := c.do("POST", "/sync/snapshot-sessions", nil).str("snapshot_id")
	require.NotContains(t, string(c.do("GET", "/sync/snapshot-sessions/"+sid, nil).Body), "_sync_scope_id")
	cf := c.push(2, userRow(k, "b")).expect(t, 409, "push_conflict")
	require.NotContains(t, string(cf.Body), "_sync_scope_id")
}

// 15.48: a commit without captured effects is refused.
func TestConf48NoEffects(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	k := newUUID()
	// In a consistent database every staged row that passes the conflict
	// check changes a row, and collapsing (8.3) always leaves the staged
	// keys' effects. So take capture away: with the delete trigger of users
	// disabled, a valid DELETE captures nothing.
	c.push(1, userRow(k, "a")).expect(t, 200, "")
	users := ident(e.tenant.SchemaName(), "users")
	_, err := e.pool.Exec(context.Background(), `ALTER TABLE `+users+` DISABLE TRIGGER _sync_capture_del`)
	require.NoError(t, err)
	r := c.push(2, row("users", "DELETE", k, 1, nil)).expect(t, 400, "push_commit_invalid")
	require.Contains(t, r.str("message"), "no captured")
	require.EqualValues(t, 1, e.count("users"), "the refused commit deleted nothing")
}

// snapshotRows reads a full keep-source snapshot.
func (c *client) snapshotRows() []map[string]any {
	c.e.t.Helper()
	s := c.do("POST", "/sync/snapshot-sessions", nil).expect(c.e.t, 200, "")
	id := s.str("snapshot_id")
	var out []map[string]any
	after := int64(0)
	for {
		r := c.do("GET", "/sync/snapshot-sessions/"+id+"?max_rows=2&after_row_ordinal="+itoa(after), nil).expect(c.e.t, 200, "")
		for _, x := range r.JSON["rows"].([]any) {
			out = append(out, x.(map[string]any))
		}
		after = r.num("next_row_ordinal")
		if r.JSON["has_more"] != true {
			break
		}
	}
	c.do("DELETE", "/sync/snapshot-sessions/"+id, nil).expect(c.e.t, 204, "")
	return out
}
