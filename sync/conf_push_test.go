package sync

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func userRow(id, name string) map[string]any {
	return row("users", "INSERT", id, 0, map[string]any{"id": id, "name": name})
}

func (c *client) create(sbid, planned int64) *resp {
	return c.do("POST", "/sync/push-sessions", map[string]any{"source_bundle_id": sbid, "planned_row_count": planned})
}

func (c *client) chunk(pid string, start int64, rows ...map[string]any) *resp {
	return c.do("POST", "/sync/push-sessions/"+pid+"/chunks", map[string]any{"start_row_ordinal": start, "rows": rows})
}

func (e *env) count(table string) int64 {
	var n int64
	require.NoError(e.t, e.pool.QueryRow(context.Background(), `SELECT count(*) FROM `+ident(e.tenant.SchemaName(), table)).Scan(&n))
	return n
}

// 15.20: field rules of push create.
func TestConf20PushCreateInvalid(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	for _, b := range [][2]int64{{0, 1}, {-1, 1}, {1, 0}, {1, -5}} {
		c.create(b[0], b[1]).expect(t, 400, "push_session_invalid")
	}
	c.do("POST", "/sync/push-sessions", "{").expect(t, 400, "invalid_request")
}

// 15.21: staging response of a new source.
func TestConf21PushCreateStaging(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	r := c.create(1, 7).expect(t, 200, "")
	require.Equal(t, "staging", r.str("status"))
	_, err := uuid.Parse(r.str("push_id"))
	require.NoError(t, err)
	require.EqualValues(t, 7, r.num("planned_row_count"))
	require.EqualValues(t, 0, r.num("next_expected_row_ordinal"))
}

// 15.22: sequence gaps and pruned tuples at create.
func TestConf22SourceSequence(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withRetained(1))
	c := e.client("u1", "a")
	c.attach()
	c.create(2, 1).expect(t, 409, "source_sequence_out_of_order")
	for i := int64(1); i <= 3; i++ {
		c.push(i, userRow(newUUID(), fmt.Sprint("n", i))).expect(t, 200, "")
	}
	c.create(1, 1).expect(t, 409, "history_pruned") // committed, below the floor
	c.create(5, 1).expect(t, 409, "source_sequence_out_of_order")
}

// 15.23: a second create replaces the uncommitted session.
func TestConf23CreateReplacesSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	old := c.create(1, 1).expect(t, 200, "").str("push_id")
	fresh := c.create(1, 1).expect(t, 200, "").str("push_id")
	require.NotEqual(t, old, fresh)
	c.chunk(old, 0, userRow(newUUID(), "x")).expect(t, 404, "push_session_not_found")
	c.chunk(fresh, 0, userRow(newUUID(), "x")).expect(t, 200, "")
}

// 15.24: chunks must start at the expected ordinal.
func TestConf24ChunkOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	pid := c.create(1, 3).expect(t, 200, "").str("push_id")
	c.chunk(pid, 1, userRow(newUUID(), "a")).expect(t, 409, "push_chunk_out_of_order")
	r := c.chunk(pid, 0, userRow(newUUID(), "a")).expect(t, 200, "")
	require.EqualValues(t, 1, r.num("next_expected_row_ordinal"))
	require.Equal(t, pid, r.str("push_id"))
	c.chunk(pid, 0, userRow(newUUID(), "b")).expect(t, 409, "push_chunk_out_of_order") // repeat
	c.chunk(pid, 1, userRow(newUUID(), "b")).expect(t, 200, "")
}

// 15.25: empty, oversized and overflowing chunks stage nothing.
func TestConf25ChunkSize(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	pid := c.create(1, 2).expect(t, 200, "").str("push_id")
	c.chunk(pid, 0).expect(t, 400, "push_chunk_invalid")
	big := make([]map[string]any, 5001)
	for i := range big {
		big[i] = userRow(newUUID(), fmt.Sprint(i))
	}
	c.chunk(pid, 0, big...).expect(t, 400, "push_chunk_invalid")
	c.chunk(pid, 0, userRow(newUUID(), "a"), userRow(newUUID(), "b"), userRow(newUUID(), "c")).expect(t, 400, "push_chunk_invalid")
	require.EqualValues(t, 0, e.count("_sync_push_run"))
	// A bad chunk for a missing session is a 400, not a 404.
	c.chunk(newUUID(), 0).expect(t, 400, "push_chunk_invalid")
}

// 15.26: row validation.
func TestConf26RowValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	pid := c.create(1, 1).expect(t, 200, "").str("push_id")
	id := newUUID()
	cases := map[string]map[string]any{
		"unregistered table": row("nope", "INSERT", id, 0, map[string]any{"id": id}),
		"other schema":       {"schema": "public", "table": "users", "key": map[string]any{"id": id}, "op": "INSERT", "payload": map[string]any{"id": id, "name": "x"}},
		"invalid table name": {"schema": "app", "table": "us-ers", "key": map[string]any{"id": id}, "op": "INSERT", "payload": map[string]any{"id": id}},
		"invalid schema":     {"schema": "a.b", "table": "users", "key": map[string]any{"id": id}, "op": "INSERT", "payload": map[string]any{"id": id}},
		"bad op":             row("users", "UPSERT", id, 0, map[string]any{"id": id, "name": "x"}),
		"missing key":        {"schema": "app", "table": "users", "key": map[string]any{"other": id}, "op": "INSERT", "payload": map[string]any{"name": "x"}},
		"non-string key":     {"schema": "app", "table": "users", "key": map[string]any{"id": 5}, "op": "INSERT", "payload": map[string]any{"name": "x"}},
		"uppercase uuid":     row("users", "INSERT", strings.ToUpper(id), 0, map[string]any{"name": "x"}),
		"braced uuid":        row("users", "INSERT", "{"+id+"}", 0, map[string]any{"name": "x"}),
		"payload on delete":  row("users", "DELETE", id, 1, map[string]any{"id": id}),
		"missing payload":    row("users", "INSERT", id, 0, nil),
		"update no payload":  row("users", "UPDATE", id, 1, nil),
		"non-object payload": row("users", "INSERT", id, 0, []any{1}),
		"scope column":       row("users", "INSERT", id, 0, map[string]any{"id": id, "name": "x", "_sync_scope_id": "u2"}),
		"key mismatch":       row("users", "INSERT", id, 0, map[string]any{"id": newUUID(), "name": "x"}),
		"bad base64":         row("users", "INSERT", id, 0, map[string]any{"id": id, "name": "x", "avatar": "not base64!"}),
		"non-string blob":    row("users", "INSERT", id, 0, map[string]any{"id": id, "name": "x", "avatar": 12}),
		"unknown column":     row("users", "INSERT", id, 0, map[string]any{"id": id, "name": "x", "nope": 1}),
		"invalid column":     row("users", "INSERT", id, 0, map[string]any{"id": id, "name": "x", "a-b": 1}),
		"text gets number":   row("users", "INSERT", id, 0, map[string]any{"id": id, "name": 5}),
		"int gets float":     row("users", "INSERT", id, 0, map[string]any{"id": id, "name": "x", "age": 1.5}),
		"int out of range":   {"schema": "app", "table": "users", "key": map[string]any{"id": id}, "op": "INSERT", "payload": rawJSON(`{"name":"x","age":9223372036854775808}`)},
		"real gets string":   row("users", "INSERT", id, 0, map[string]any{"id": id, "name": "x", "score": "1"}),
		"bad base version":   {"schema": "app", "table": "users", "key": map[string]any{"id": id}, "op": "INSERT", "base_row_version": 1.5, "payload": map[string]any{"name": "x"}},
	}
	for name, r := range cases {
		res := c.chunk(pid, 0, r)
		require.Equal(t, 400, res.Status, "%s: %s", name, res.Body)
		require.Equal(t, "push_chunk_invalid", res.code(), name)
	}
	// D6: an explicit null payload on DELETE is accepted as absent.
	del := row("users", "DELETE", id, 1, nil)
	del["payload"] = nil
	c.chunk(pid, 0, del).expect(t, 200, "")
}

// 15.27: duplicate (table, key) within a chunk and across chunks.
func TestConf27DuplicateRows(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	id := newUUID()
	pid := c.create(1, 2).expect(t, 200, "").str("push_id")
	c.chunk(pid, 0, userRow(id, "a"), userRow(id, "b")).expect(t, 400, "push_chunk_invalid")
	c.chunk(pid, 0, userRow(id, "a")).expect(t, 200, "")
	c.chunk(pid, 1, userRow(id, "b")).expect(t, 200, "")
	r := c.do("POST", "/sync/push-sessions/"+pid+"/commit", nil).expect(t, 400, "push_commit_invalid")
	require.Contains(t, r.str("message"), "duplicate target row")
}

// 15.28: another user's session is forbidden; unknown or malformed is 404.
func TestConf28ForeignSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.client("u1", "a")
	a.attach()
	pid := a.create(1, 1).expect(t, 200, "").str("push_id")
	b := e.client("u2", "a")
	b.chunk(pid, 0, userRow(newUUID(), "x")).expect(t, 403, "push_session_forbidden")
	b.do("POST", "/sync/push-sessions/"+pid+"/commit", nil).expect(t, 403, "push_session_forbidden")
	b.do("DELETE", "/sync/push-sessions/"+pid, nil).expect(t, 403, "push_session_forbidden")
	for _, id := range []string{newUUID(), "not-a-uuid", strings.ToUpper(pid) + "x"} {
		a.chunk(id, 0, userRow(newUUID(), "x")).expect(t, 404, "push_session_not_found")
		a.do("POST", "/sync/push-sessions/"+id+"/commit", nil).expect(t, 404, "push_session_not_found")
		a.do("DELETE", "/sync/push-sessions/"+id, nil).expect(t, 404, "push_session_not_found")
	}
}

func (e *env) expirePush(pid string) {
	_, err := e.pool.Exec(context.Background(), `UPDATE `+ident(e.tenant.SchemaName(), "_sync_push_session")+
		` SET expires_at = now() - interval '1 second' WHERE push_id = $1`, pid)
	require.NoError(e.t, err)
}

func (e *env) pushExpiry(pid string) (exp float64) {
	require.NoError(e.t, e.pool.QueryRow(context.Background(), `SELECT extract(epoch FROM expires_at) FROM `+
		ident(e.tenant.SchemaName(), "_sync_push_session")+` WHERE push_id = $1`, pid).Scan(&exp))
	return exp
}

// 15.29: expired sessions answer 410; each chunk renews the TTL.
func TestConf29SessionExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	pid := c.create(1, 2).expect(t, 200, "").str("push_id")
	_, err := e.pool.Exec(context.Background(), `UPDATE `+ident(e.tenant.SchemaName(), "_sync_push_session")+
		` SET expires_at = now() + interval '1 minute' WHERE push_id = $1`, pid)
	require.NoError(t, err)
	before := e.pushExpiry(pid)
	c.chunk(pid, 0, userRow(newUUID(), "a")).expect(t, 200, "")
	require.Greater(t, e.pushExpiry(pid), before+600)
	e.expirePush(pid)
	c.chunk(pid, 1, userRow(newUUID(), "b")).expect(t, 410, "push_session_expired")
	c.do("POST", "/sync/push-sessions/"+pid+"/commit", nil).expect(t, 410, "push_session_expired")
	c.do("DELETE", "/sync/push-sessions/"+pid, nil).expect(t, 410, "push_session_expired")
}

// 15.30: a commit with fewer staged rows than planned.
func TestConf30CommitIncomplete(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	pid := c.create(1, 2).expect(t, 200, "").str("push_id")
	c.chunk(pid, 0, userRow(newUUID(), "a")).expect(t, 200, "")
	r := c.do("POST", "/sync/push-sessions/"+pid+"/commit", nil).expect(t, 400, "push_commit_invalid")
	require.Contains(t, r.str("message"), "staged row count 1 does not match planned_row_count 2")
}

var hexHash = regexp.MustCompile(`^[0-9a-f]{64}$`)

// 15.31: the commit response.
func TestConf31CommitResponse(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "dev-x")
	c.attach()
	r := c.push(1, userRow(newUUID(), "a"), userRow(newUUID(), "b")).expect(t, 200, "")
	require.EqualValues(t, 1, r.num("bundle_seq"))
	require.Equal(t, "dev-x", r.str("source_id"))
	require.EqualValues(t, 1, r.num("source_bundle_id"))
	require.EqualValues(t, 2, r.num("row_count"))
	require.Regexp(t, hexHash, r.str("bundle_hash"))
}

// 15.32: committing the same push_id twice.
func TestConf32CommitTwice(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	pid := c.create(1, 1).expect(t, 200, "").str("push_id")
	c.chunk(pid, 0, userRow(newUUID(), "a")).expect(t, 200, "")
	c.do("POST", "/sync/push-sessions/"+pid+"/commit", nil).expect(t, 200, "")
	c.do("POST", "/sync/push-sessions/"+pid+"/commit", nil).expect(t, 404, "push_session_not_found")
}

// 15.33: re-creating a committed tuple answers already_committed.
func TestConf33AlreadyCommitted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	first := c.push(1, userRow(newUUID(), "a")).expect(t, 200, "")
	again := c.create(1, 1).expect(t, 200, "")
	require.Equal(t, "already_committed", again.str("status"))
	require.NotContains(t, again.JSON, "push_id")
	for _, k := range []string{"bundle_seq", "row_count", "source_bundle_id"} {
		require.Equal(t, first.num(k), again.num(k), k)
	}
	require.Equal(t, first.str("bundle_hash"), again.str("bundle_hash"))
	require.Equal(t, "a", again.str("source_id"))
	require.Len(t, c.pullAll(0), 1)
}

// 15.34: the sequence moved or the source was retired after create.
func TestConf34SequenceChangedAndRetired(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	pid := c.create(1, 1).expect(t, 200, "").str("push_id")
	c.chunk(pid, 0, userRow(newUUID(), "a")).expect(t, 200, "")
	// A server-originated write with the same source id commits tuple 1.
	_, err := e.h.ServerWrite(context.Background(), e.scope("u1"), "a", []WriteOp{{Table: "tags", Op: "upsert", Key: "t1"}})
	require.NoError(t, err)
	c.do("POST", "/sync/push-sessions/"+pid+"/commit", nil).expect(t, 409, "source_sequence_changed")

	pid = c.create(2, 1).expect(t, 200, "").str("push_id")
	c.chunk(pid, 0, userRow(newUUID(), "b")).expect(t, 200, "")
	c.do("POST", "/sync/snapshot-sessions", map[string]any{"source_replacement": map[string]any{
		"previous_source_id": "a", "new_source_id": "a2", "reason": "source_retired"}}).expect(t, 200, "")
	r := c.do("POST", "/sync/push-sessions/"+pid+"/commit", nil).expect(t, 409, "source_retired")
	require.Equal(t, "a", r.str("source_id"))
	require.Equal(t, "a2", r.str("replaced_by_source_id"))
}

// 15.35: DELETE of a push session.
func TestConf35DeleteSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	pid := c.create(1, 1).expect(t, 200, "").str("push_id")
	c.chunk(pid, 0, userRow(newUUID(), "a")).expect(t, 200, "")
	c.do("DELETE", "/sync/push-sessions/"+pid, nil).expect(t, 204, "")
	c.do("DELETE", "/sync/push-sessions/"+pid, nil).expect(t, 404, "push_session_not_found")
	c.chunk(pid, 1, userRow(newUUID(), "a")).expect(t, 404, "push_session_not_found")
	require.EqualValues(t, 0, e.count("_sync_push_run"))
}

// Values PostgreSQL cannot store are the chunk's fault: 400, never 500.
func TestChunkUnstorableValues(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	pid := c.create(1, 1).expect(t, 200, "").str("push_id")
	id := newUUID()
	r := c.chunk(pid, 0, map[string]any{"schema": "app", "table": "users", "key": map[string]any{"id": id}, "op": "INSERT",
		"payload": rawJSON(`{"name":"nul\u0000byte"}`)})
	r.expect(t, 400, "push_chunk_invalid")
	c.chunk(pid, 0, row("tags", "INSERT", "a\u0000b", 0, map[string]any{})).expect(t, 400, "push_chunk_invalid")
	c.chunk(pid, 0, userRow(id, "fine")).expect(t, 200, "")
}
