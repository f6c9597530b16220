package sync

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// 15.64: the create response.
func TestConf64SnapshotCreate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	c.push(1, userRow(newUUID(), "a"), userRow(newUUID(), "b")).expect(t, 200, "")
	c.push(2, row("tags", "INSERT", "x", 0, map[string]any{"name": "x"})).expect(t, 200, "")
	r := c.do("POST", "/sync/snapshot-sessions", nil).expect(t, 200, "")
	_, err := uuid.Parse(r.str("snapshot_id"))
	require.NoError(t, err)
	require.EqualValues(t, 2, r.num("snapshot_bundle_seq"))
	require.EqualValues(t, 3, r.num("row_count"))
	require.Greater(t, r.num("byte_count"), int64(0))
	exp, err := time.Parse(time.RFC3339Nano, r.str("expires_at"))
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(15*time.Minute), exp, time.Minute)
}

// 15.65: exactly the live rows with their versions.
func TestConf65SnapshotLiveRows(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	k1, k2 := newUUID(), newUUID()
	c.push(1, userRow(k1, "a"), userRow(k2, "b")).expect(t, 200, "")
	c.push(2, row("users", "DELETE", k1, 1, nil)).expect(t, 200, "")
	rows := c.snapshotRows()
	require.Len(t, rows, 1)
	require.Equal(t, map[string]any{"id": k2}, rows[0]["key"])
	require.EqualValues(t, "1", fmt.Sprint(rows[0]["row_version"]))
	require.NotContains(t, rows[0], "op")
}

// 15.66: a snapshot is frozen.
func TestConf66SnapshotFrozen(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	k := newUUID()
	c.push(1, userRow(k, "before")).expect(t, 200, "")
	sid := c.do("POST", "/sync/snapshot-sessions", nil).expect(t, 200, "").str("snapshot_id")
	first := c.do("GET", "/sync/snapshot-sessions/"+sid, nil).expect(t, 200, "")
	c.push(2, row("users", "UPDATE", k, 1, map[string]any{"id": k, "name": "after"}), userRow(newUUID(), "new")).expect(t, 200, "")
	second := c.do("GET", "/sync/snapshot-sessions/"+sid, nil).expect(t, 200, "")
	require.Equal(t, string(first.Body), string(second.Body))
}

// 15.67: 1-based ordinals, paging, deterministic order, capped pages.
func TestConf67SnapshotPaging(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	var rows []map[string]any
	var keys []string
	for i := 0; i < 7; i++ {
		k := newUUID()
		keys = append(keys, k)
		rows = append(rows, userRow(k, fmt.Sprint(i)))
	}
	for _, tag := range []string{"b", "a", "Z", "é", "aa"} {
		rows = append(rows, row("tags", "INSERT", tag, 0, map[string]any{"name": tag}))
	}
	c.push(1, rows...).expect(t, 200, "")
	sid := c.do("POST", "/sync/snapshot-sessions", nil).expect(t, 200, "").str("snapshot_id")
	var got []string
	after := int64(0)
	for {
		r := c.do("GET", "/sync/snapshot-sessions/"+sid+"?max_rows=5&after_row_ordinal="+itoa(after), nil).expect(t, 200, "")
		n := len(r.JSON["rows"].([]any))
		require.Equal(t, after+int64(n), r.num("next_row_ordinal"))
		require.Equal(t, sid, r.str("snapshot_id"))
		for _, x := range r.JSON["rows"].([]any) {
			m := x.(map[string]any)
			for _, v := range m["key"].(map[string]any) {
				got = append(got, m["table"].(string)+":"+v.(string))
			}
		}
		after = r.num("next_row_ordinal")
		if r.JSON["has_more"] != true {
			require.LessOrEqual(t, n, 5)
			break
		}
		require.Equal(t, 5, n)
	}
	// Expected: tags by UTF-8 bytes, then users by raw UUID bytes.
	tags := []string{"b", "a", "Z", "é", "aa"}
	sort.Slice(tags, func(i, j int) bool { return bytes.Compare([]byte(tags[i]), []byte(tags[j])) < 0 })
	sort.Slice(keys, func(i, j int) bool {
		a, _ := hex.DecodeString(strings.ReplaceAll(keys[i], "-", ""))
		b, _ := hex.DecodeString(strings.ReplaceAll(keys[j], "-", ""))
		return bytes.Compare(a, b) < 0
	})
	var want []string
	for _, x := range tags {
		want = append(want, "tags:"+x)
	}
	for _, x := range keys {
		want = append(want, "users:"+x)
	}
	require.Equal(t, want, got)
	r := c.do("GET", "/sync/snapshot-sessions/"+sid+"?max_rows=100000", nil).expect(t, 200, "")
	require.Len(t, r.JSON["rows"], 12)
	r = c.do("GET", "/sync/snapshot-sessions/"+sid+"?after_row_ordinal=12", nil).expect(t, 200, "")
	require.Len(t, r.JSON["rows"], 0)
	require.Equal(t, false, r.JSON["has_more"])
}

// 15.68: chunk errors.
func TestConf68SnapshotChunkErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	sid := c.do("POST", "/sync/snapshot-sessions", nil).expect(t, 200, "").str("snapshot_id")
	for _, q := range []string{"after_row_ordinal=-1", "max_rows=0", "max_rows=-3", "max_rows=x"} {
		c.do("GET", "/sync/snapshot-sessions/"+sid+"?"+q, nil).expect(t, 400, "snapshot_chunk_invalid")
	}
	e.client("u2", "a").do("GET", "/sync/snapshot-sessions/"+sid, nil).expect(t, 403, "snapshot_session_forbidden")
	c.do("GET", "/sync/snapshot-sessions/"+newUUID(), nil).expect(t, 404, "snapshot_session_not_found")
	c.do("GET", "/sync/snapshot-sessions/not-a-uuid", nil).expect(t, 404, "snapshot_session_not_found")
	_, err := e.pool.Exec(t.Context(), `UPDATE `+ident(e.tenant.SchemaName(), "_sync_snapshot_session")+
		` SET expires_at = now() - interval '1 second' WHERE snapshot_id = $1`, sid)
	require.NoError(t, err)
	c.do("GET", "/sync/snapshot-sessions/"+sid, nil).expect(t, 410, "snapshot_session_expired")
	c.do("DELETE", "/sync/snapshot-sessions/"+sid, nil).expect(t, 204, "")
}

// 15.69: DELETE then 404.
func TestConf69SnapshotDelete(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	sid := c.do("POST", "/sync/snapshot-sessions", nil).expect(t, 200, "").str("snapshot_id")
	e.client("u2", "a").do("DELETE", "/sync/snapshot-sessions/"+sid, nil).expect(t, 403, "snapshot_session_forbidden")
	c.do("DELETE", "/sync/snapshot-sessions/"+sid, nil).expect(t, 204, "")
	c.do("GET", "/sync/snapshot-sessions/"+sid, nil).expect(t, 404, "snapshot_session_not_found")
	c.do("DELETE", "/sync/snapshot-sessions/"+sid, nil).expect(t, 404, "snapshot_session_not_found")
}

// 15.70: strict create body.
func TestConf70SnapshotCreateBody(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	for _, b := range []string{`{"x":1}`, `{`, `{} {}`, `{"source_replacement":{"previous_source_id":"a","new_source_id":"b","reason":"history_pruned","extra":1}}`, `[]`} {
		c.do("POST", "/sync/snapshot-sessions", b).expect(t, 400, "snapshot_session_invalid")
	}
	for _, b := range []string{``, `{}`, `null`, ` `} {
		c.do("POST", "/sync/snapshot-sessions", b).expect(t, 200, "")
	}
}

// 15.71: pulling after a snapshot yields exactly the later commits.
func TestConf71SnapshotThenPull(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	c.push(1, userRow(newUUID(), "1")).expect(t, 200, "")
	c.push(2, userRow(newUUID(), "2")).expect(t, 200, "")
	s := c.do("POST", "/sync/snapshot-sessions", nil).expect(t, 200, "")
	c.push(3, userRow(newUUID(), "3")).expect(t, 200, "")
	bs := c.pullAll(s.num("snapshot_bundle_seq"))
	require.Len(t, bs, 1)
	require.EqualValues(t, 3, seqOf(bs[0]))
}

// 12.1 / D9: snapshot size limits are advertised and enforced with 403
// quota_exceeded; a refused rotation rotates nothing.
func TestSnapshotLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withConfig(func(c *Config) { c.MaxRowsPerSnapshot = 2 }))
	c := e.client("u1", "a")
	c.attach()
	l := c.do("GET", "/sync/capabilities", nil).expect(t, 200, "").JSON["bundle_limits"].(map[string]any)
	require.Equal(t, json.Number("2"), l["max_rows_per_snapshot_session"])
	c.push(1, userRow(newUUID(), "1"), userRow(newUUID(), "2")).expect(t, 200, "")
	c.do("POST", "/sync/snapshot-sessions", nil).expect(t, 200, "")
	c.push(2, userRow(newUUID(), "3")).expect(t, 200, "")
	c.do("POST", "/sync/snapshot-sessions", rotation("a", "b", "history_pruned")).expect(t, 403, "quota_exceeded")
	c.create(3, 1).expect(t, 200, "") // still active
}
