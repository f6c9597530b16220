package sync

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
)

// ownTables makes every snapshot of a user with at least n live rows use
// its own rows table.
func ownTables(n int64) envOpt {
	return withConfig(func(c *Config) { c.snapshotOwnTableRows = n })
}

// freezeInParts makes every snapshot of a user with at least 2*rows live
// rows frozen in up to parts parts (with own tables from 1 row).
func freezeInParts(parts int, rows int64) envOpt {
	return withConfig(func(c *Config) {
		c.snapshotOwnTableRows, c.snapshotFreezeParts, c.snapshotPartRows = 1, parts, rows
	})
}

// partRows is the per-part row counts of snapshot id (nil: one part).
func (e *env) partRows(id string) []int64 {
	var parts []int64
	require.NoError(e.t, e.pool.QueryRow(context.Background(), `SELECT part_rows FROM `+ident(e.tenant.SchemaName(), "_sync_snapshot_session")+
		` WHERE snapshot_id = $1`, id).Scan(&parts))
	return parts
}

// snapshotPages reads snapshot id in pages of size and returns the raw rows
// and the concatenated page bodies' rows as JSON text.
func (c *client) snapshotPages(id string, size int) []json.RawMessage {
	c.e.t.Helper()
	var out []json.RawMessage
	after := int64(0)
	for {
		r := c.do("GET", fmt.Sprintf("/sync/snapshot-sessions/%s?max_rows=%d&after_row_ordinal=%d", id, size, after), nil).expect(c.e.t, 200, "")
		var p struct {
			Rows           []json.RawMessage `json:"rows"`
			NextRowOrdinal int64             `json:"next_row_ordinal"`
			HasMore        bool              `json:"has_more"`
		}
		require.NoError(c.e.t, json.Unmarshal(r.Body, &p))
		require.Equal(c.e.t, after+int64(len(p.Rows)), p.NextRowOrdinal)
		out = append(out, p.Rows...)
		after = p.NextRowOrdinal
		if !p.HasMore {
			require.LessOrEqual(c.e.t, len(p.Rows), size)
			return out
		}
		require.Len(c.e.t, p.Rows, size)
	}
}

// rowsTable is the own rows table of snapshot id ("" for the shared table).
func (e *env) rowsTable(id string) string {
	var name *string
	require.NoError(e.t, e.pool.QueryRow(context.Background(), `SELECT rows_table FROM `+ident(e.tenant.SchemaName(), "_sync_snapshot_session")+
		` WHERE snapshot_id = $1`, id).Scan(&name))
	if name == nil {
		return ""
	}
	return *name
}

func (e *env) tableExists(name string) bool {
	var ok bool
	require.NoError(e.t, e.pool.QueryRow(context.Background(), `SELECT to_regclass($1) IS NOT NULL`, ident(e.tenant.SchemaName(), name)).Scan(&ok))
	return ok
}

// seedMixed commits rows of both key kinds, with values that need escaping
// and every column type, and returns the latest payload of each key as the
// pull serves it (rendered by the capture trigger).
func seedMixed(t *testing.T, c *client) map[string]string {
	big := make([]byte, 200) // base64 of > 57 bytes: encode() wraps lines
	for i := range big {
		big[i] = byte(i * 7)
	}
	var rows []map[string]any
	names := []string{`plain`, `quote " and \ backslash`, "tab\tnl\ncr\r\u0001bell", `<tag> & amp`, `é ü 漢字 🙂`, "\u2028sep"}
	scores := []any{0.1, 1e20, 1.5e-7, -0.0, 123456789012345.0, nil}
	for i, n := range names {
		id := newUUID()
		p := map[string]any{"id": id, "name": n, "age": int64(9223372036854775807) - int64(i), "score": scores[i],
			"avatar": base64.StdEncoding.EncodeToString(big[:i*40]), "meta": map[string]any{"k": n, "n": []any{1, 2.5, nil}},
			"born": "2026-03-24T18:02:00.123456789+02:00"}
		if i == 5 {
			p["avatar"], p["meta"], p["born"], p["age"] = nil, nil, nil, nil
		}
		rows = append(rows, row("users", "INSERT", id, 0, p))
	}
	for _, tag := range []string{"b", "a", "Z", "é", "aa", `q"\`} {
		rows = append(rows, row("tags", "INSERT", tag, 0, map[string]any{"name": tag}))
	}
	c.push(1, rows...).expect(t, 200, "")
	// A later change of some rows: snapshots carry the latest version.
	c.push(2, row("tags", "UPDATE", "a", 1, map[string]any{"name": "a", "parent": "b"})).expect(t, 200, "")
	latest := map[string]string{}
	r := c.do("GET", "/sync/pull?after_bundle_seq=0&max_bundles=100", nil).expect(t, 200, "")
	var p struct {
		Bundles []struct {
			Rows []struct {
				Table   string          `json:"table"`
				Key     map[string]any  `json:"key"`
				Payload json.RawMessage `json:"payload"`
			} `json:"rows"`
		} `json:"bundles"`
		HasMore bool `json:"has_more"`
	}
	require.NoError(t, json.Unmarshal(r.Body, &p))
	require.False(t, p.HasMore)
	for _, b := range p.Bundles {
		for _, x := range b.Rows {
			data, err := json.Marshal(x.Key)
			require.NoError(t, err)
			latest[x.Table+string(data)] = string(x.Payload)
		}
	}
	return latest
}

// Large snapshots live in a table of their own, or in several frozen at
// once, served like the shared one: same rows, order and payloads (byte for
// byte what the capture trigger renders), any page size and start (across
// the parts' boundaries too), repeatable after later commits, dropped in
// O(1) by DELETE.
func TestSnapshotOwnTable(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"shared", "own", "parts"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			own := mode != "shared"
			opts := []envOpt{}
			switch mode {
			case "own":
				opts = append(opts, ownTables(5))
			case "parts":
				opts = append(opts, freezeInParts(3, 2))
			}
			e := newEnv(t, opts...)
			c := e.client("u1", "a")
			c.attach()
			latest := seedMixed(t, c)
			s := c.do("POST", "/sync/snapshot-sessions", nil).expect(t, 200, "")
			id := s.str("snapshot_id")
			require.EqualValues(t, 12, s.num("row_count"))
			table := e.rowsTable(id)
			if own {
				require.Equal(t, snapshotRowsTable(id), table)
				require.True(t, e.tableExists(table))
				require.EqualValues(t, 0, e.count("_sync_snapshot_row"))
				if mode == "parts" {
					// Both tables (users, tags) sampled whole: three parts of four rows.
					require.Equal(t, []int64{4, 4, 4}, e.partRows(id))
					require.True(t, e.tableExists(table+"_p2"))
					require.True(t, e.tableExists(table+"_p3"))
				} else {
					require.Nil(t, e.partRows(id))
				}
			} else {
				require.Empty(t, table)
				require.EqualValues(t, 12, e.count("_sync_snapshot_row"))
			}

			all := c.snapshotPages(id, 5000)
			require.Len(t, all, 12)
			var bytes int64
			prev := ""
			for _, raw := range all {
				var m struct {
					Schema, Table string
					Key           json.RawMessage
					Payload       json.RawMessage
					RowVersion    json.RawMessage `json:"row_version"`
				}
				require.NoError(t, json.Unmarshal(raw, &m))
				require.Equal(t, "app", m.Schema)
				var key map[string]any
				require.NoError(t, json.Unmarshal(m.Key, &key))
				data, _ := json.Marshal(key)
				require.Equal(t, latest[m.Table+string(data)], string(m.Payload), "payload of %s %s", m.Table, data)
				bytes += int64(len(m.Payload))
				// Snapshot order: table, then key bytes, each key once.
				require.Len(t, key, 1)
				for _, v := range key {
					pos := m.Table + "\x00" + v.(string)
					require.Less(t, prev, pos, "rows out of snapshot order")
					prev = pos
				}
			}
			require.Equal(t, bytes, s.num("byte_count"))
			for _, size := range []int{1, 3, 5, 11} {
				require.Equal(t, all, c.snapshotPages(id, size))
			}
			// Any start, including past the end.
			r := c.do("GET", "/sync/snapshot-sessions/"+id+"?max_rows=3&after_row_ordinal=7", nil).expect(t, 200, "")
			var p struct {
				Rows    []json.RawMessage `json:"rows"`
				HasMore bool              `json:"has_more"`
			}
			require.NoError(t, json.Unmarshal(r.Body, &p))
			require.Equal(t, all[7:10], p.Rows)
			require.True(t, p.HasMore)
			r = c.do("GET", "/sync/snapshot-sessions/"+id+"?after_row_ordinal=99", nil).expect(t, 200, "")
			require.Equal(t, `{"snapshot_id":"`+id+`","snapshot_bundle_seq":2,"rows":[],"next_row_ordinal":99,"has_more":false}`, string(r.Body))

			// Frozen: later commits change nothing.
			first := c.do("GET", "/sync/snapshot-sessions/"+id+"?max_rows=5000", nil).expect(t, 200, "")
			c.push(3, row("tags", "DELETE", "Z", 1, nil), row("tags", "INSERT", "new", 0, map[string]any{"name": "new"})).expect(t, 200, "")
			require.Equal(t, string(first.Body), string(c.do("GET", "/sync/snapshot-sessions/"+id+"?max_rows=5000", nil).expect(t, 200, "").Body))

			c.do("DELETE", "/sync/snapshot-sessions/"+id, nil).expect(t, 204, "")
			if own {
				require.False(t, e.tableExists(table))
				require.False(t, e.tableExists(table+"_p2"))
				require.False(t, e.tableExists(table+"_p3"))
			}
			require.EqualValues(t, 0, e.count("_sync_snapshot_row"))
			c.do("GET", "/sync/snapshot-sessions/"+id, nil).expect(t, 404, "snapshot_session_not_found")
		})
	}
}

// The concatenation renderer is byte for byte json_build_object's, also for
// values pushes cannot produce (NaN, infinities).
func TestSnapshotPayloadExpr(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	users := catalogFor(e.schema).byName["users"]
	require.NotNil(t, users)
	var diff int
	var total int
	q := `SELECT count(*), count(*) FILTER (WHERE ` + users.wireExpr("t") + `::text IS DISTINCT FROM ` + users.snapshotPayloadExpr("t") + `)
		FROM (VALUES
			(gen_random_uuid(), 'x', 1::bigint, 'NaN'::float8, '\x00ff'::bytea, '{"a": [1, "é"]}'::jsonb, '2026-01-01T00:00:00Z'),
			(gen_random_uuid(), E'\\"\u0001\n', -9223372036854775808, 'Infinity', NULL, 'null', NULL),
			(gen_random_uuid(), '', NULL, '-Infinity', ''::bytea, '"s"', ''),
			(gen_random_uuid(), 'ü', 0, 1e300, decode(repeat('ab', 100), 'hex'), '1.50', 'x'),
			(gen_random_uuid(), 'y', 5, -0.0::float8, NULL, NULL, NULL)
		) t(id, name, age, score, avatar, meta, born)`
	require.NoError(t, e.pool.QueryRow(context.Background(), q).Scan(&total, &diff))
	require.Equal(t, 5, total)
	require.Zero(t, diff)
}

// Unlogged rows are lost in a crash while the session survives: a chunk
// read then answers 410 (never a short snapshot), the session stays expired
// and DELETE still works. A crash empties unlogged tables; emptying them by
// hand stands in for one.
func TestSnapshotLostRows(t *testing.T) {
	t.Parallel()
	for _, own := range []bool{false, true} {
		t.Run(fmt.Sprintf("own=%v", own), func(t *testing.T) {
			t.Parallel()
			opts := []envOpt{}
			if own {
				opts = append(opts, ownTables(1))
			}
			e := newEnv(t, opts...)
			c := e.client("u1", "a")
			c.attach()
			c.push(1, userRow(newUUID(), "a"), userRow(newUUID(), "b"), userRow(newUUID(), "c")).expect(t, 200, "")
			id := c.do("POST", "/sync/snapshot-sessions", nil).expect(t, 200, "").str("snapshot_id")
			c.do("GET", "/sync/snapshot-sessions/"+id+"?max_rows=1", nil).expect(t, 200, "")
			ctx := context.Background()
			if own {
				_, err := e.pool.Exec(ctx, `TRUNCATE `+ident(e.tenant.SchemaName(), e.rowsTable(id)))
				require.NoError(t, err)
			} else {
				_, err := e.pool.Exec(ctx, `DELETE FROM `+ident(e.tenant.SchemaName(), "_sync_snapshot_row"))
				require.NoError(t, err)
			}
			c.do("GET", "/sync/snapshot-sessions/"+id+"?max_rows=1&after_row_ordinal=1", nil).expect(t, 410, "snapshot_session_expired")
			c.do("GET", "/sync/snapshot-sessions/"+id, nil).expect(t, 410, "snapshot_session_expired")
			// Past the end there is nothing to lose.
			c.do("DELETE", "/sync/snapshot-sessions/"+id, nil).expect(t, 204, "")
			c.do("GET", "/sync/snapshot-sessions/"+id, nil).expect(t, 404, "snapshot_session_not_found")
		})
	}
}

// The sweeper drops the own rows tables of expired sessions, and the purge
// at create does too.
func TestSnapshotOwnTableExpiry(t *testing.T) {
	e := newEnv(t, ownTables(1))
	c := e.client("u1", "a")
	c.attach()
	c.push(1, userRow(newUUID(), "a"), userRow(newUUID(), "b")).expect(t, 200, "")
	ctx := context.Background()
	sess := ident(e.tenant.SchemaName(), "_sync_snapshot_session")
	expire := func(id string) {
		_, err := e.pool.Exec(ctx, `UPDATE `+sess+` SET expires_at = now() - interval '1 minute' WHERE snapshot_id = $1`, id)
		require.NoError(t, err)
	}

	// Purged by the next create.
	a := c.do("POST", "/sync/snapshot-sessions", nil).expect(t, 200, "").str("snapshot_id")
	expire(a)
	b := c.do("POST", "/sync/snapshot-sessions", nil).expect(t, 200, "").str("snapshot_id")
	require.False(t, e.tableExists(snapshotRowsTable(a)))
	require.True(t, e.tableExists(snapshotRowsTable(b)))

	// Swept.
	expire(b)
	h := NewHandler(Config{Pools: func() []*pgxpool.Pool { return []*pgxpool.Pool{e.pool} }})
	// Another test's sweeper may hold the lock for a moment, and other
	// tests' schemas come and go while a sweep lists them: retry.
	waitFor(t, 20e9, func() bool {
		_, _, _ = h.sweepCluster(ctx, e.pool, true)
		return e.count("_sync_snapshot_session") == 0
	})
	require.False(t, e.tableExists(snapshotRowsTable(b)))
	c.do("GET", "/sync/snapshot-sessions/"+b, nil).expect(t, 404, "snapshot_session_not_found")
}

// A freeze in parts that fails (here: over the row limit, found after the
// freeze) leaves no part behind; rows lost from a later part end the
// session like rows lost from the first.
func TestSnapshotPartsFailAndLoss(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	snapTables := func(e *env) int64 {
		var n int64
		require.NoError(t, e.pool.QueryRow(ctx, `SELECT count(*) FROM pg_class WHERE relnamespace = $1::regnamespace AND relkind = 'r' AND relname LIKE '\_sync\_snap\_%'`,
			e.tenant.SchemaName()).Scan(&n))
		return n
	}

	e := newEnv(t, freezeInParts(2, 2), withConfig(func(c *Config) { c.MaxRowsPerSnapshot = 5 }))
	c := e.client("u1", "a")
	c.attach()
	var rows []map[string]any
	for i := range 8 {
		rows = append(rows, userRow(newUUID(), fmt.Sprint("u", i)))
	}
	c.push(1, rows...).expect(t, 200, "")
	c.do("POST", "/sync/snapshot-sessions", nil).expect(t, 403, "quota_exceeded")
	require.Zero(t, snapTables(e), "a failed freeze leaves no table")
	require.EqualValues(t, 0, e.count("_sync_snapshot_session"))

	e = newEnv(t, freezeInParts(2, 2))
	c = e.client("u1", "a")
	c.attach()
	c.push(1, rows...).expect(t, 200, "")
	id := c.do("POST", "/sync/snapshot-sessions", nil).expect(t, 200, "").str("snapshot_id")
	parts := e.partRows(id)
	require.Len(t, parts, 2)
	require.EqualValues(t, 8, parts[0]+parts[1])
	require.EqualValues(t, 2, snapTables(e))
	c.do("GET", fmt.Sprintf("/sync/snapshot-sessions/%s?max_rows=%d", id, parts[0]), nil).expect(t, 200, "")
	_, err := e.pool.Exec(ctx, `TRUNCATE `+ident(e.tenant.SchemaName(), e.rowsTable(id)+"_p2"))
	require.NoError(t, err)
	c.do("GET", fmt.Sprintf("/sync/snapshot-sessions/%s?after_row_ordinal=%d", id, parts[0]-1), nil).expect(t, 410, "snapshot_session_expired")
	c.do("DELETE", "/sync/snapshot-sessions/"+id, nil).expect(t, 204, "")
	require.Zero(t, snapTables(e), "DELETE drops every part")
}
