package sync

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

const rowVersionDefinition = `{"tables": [
 {"name": "authors", "sync_key": "id", "columns": [{"name": "id", "type": "uuid"}, {"name": "name", "type": "text"}]},
 {"name": "books", "sync_key": "id", "columns": [
   {"name": "id", "type": "uuid"}, {"name": "title", "type": "text"}, {"name": "author_id", "type": "uuid", "nullable": true}
 ], "foreign_keys": [{"column": "author_id", "references": "authors", "on_delete": "set null"}]}
]}`

// version reads a business row's row version (tenant migration 000008), or
// -1 when the row does not exist.
func (e *env) version(table, key string) int64 {
	e.t.Helper()
	var v int64 = -1
	err := e.pool.QueryRow(context.Background(), `SELECT coalesce((SELECT _sync_row_version FROM `+ident(e.tenant.SchemaName(), table)+
		` WHERE id = $1::uuid), -1)`, key).Scan(&v)
	require.NoError(e.t, err)
	return v
}

// tombstone reads a key's row state: its version and whether it is
// deleted; (0, false) when there is none.
func (e *env) tombstone(table, key string) (int64, bool) {
	e.t.Helper()
	var v int64
	var deleted bool
	err := e.pool.QueryRow(context.Background(), `SELECT coalesce(max(row_version), 0), coalesce(bool_or(deleted), false) FROM `+
		ident(e.tenant.SchemaName(), "_sync_row_state")+` WHERE table_name = $1 AND key_text = $2`, table, key).Scan(&v, &deleted)
	require.NoError(e.t, err)
	return v, deleted
}

func (e *env) liveRows(user string) int64 {
	e.t.Helper()
	var n int64
	require.NoError(e.t, e.pool.QueryRow(context.Background(), `SELECT live_rows FROM `+ident(e.tenant.SchemaName(), "_sync_scope")+
		` WHERE user_id = $1`, user).Scan(&n))
	return n
}

// Row versions live on the business rows; row state keeps tombstones only.
// Writes the committing code does not make itself (here ON DELETE SET NULL)
// are stamped with their bundle too, and conflicts, snapshots and the
// live-row counter all follow.
func TestRowVersionsLiveOnRows(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withDefinition(rowVersionDefinition))
	c := e.client("u1", "a")
	c.attach()
	a, b := newUUID(), newUUID()
	author := func(op string, base int64, name string) map[string]any {
		var p any
		if op != opDelete {
			p = map[string]any{"id": a, "name": name}
		}
		return row("authors", op, a, base, p)
	}
	book := func(op string, base int64, title string, authorID any) map[string]any {
		return row("books", op, b, base, map[string]any{"id": b, "title": title, "author_id": authorID})
	}

	c.push(1, author(opInsert, 0, "ann"), book(opInsert, 0, "one", a)).expect(t, 200, "")
	require.EqualValues(t, 1, e.version("authors", a))
	require.EqualValues(t, 1, e.version("books", b))
	require.EqualValues(t, 0, e.count("_sync_row_state"), "live rows keep no row state")
	require.EqualValues(t, 2, e.liveRows("u1"))

	c.push(2, book(opUpdate, 1, "two", a)).expect(t, 200, "")
	require.EqualValues(t, 2, e.version("books", b))
	require.EqualValues(t, 1, e.version("authors", a))

	// Deleting the author nulls the book's author_id: the book changes in
	// bundle 3 and carries its version.
	c.push(3, author(opDelete, 1, "")).expect(t, 200, "")
	require.EqualValues(t, -1, e.version("authors", a))
	require.EqualValues(t, 3, e.version("books", b))
	v, deleted := e.tombstone("authors", a)
	require.True(t, deleted)
	require.EqualValues(t, 3, v)
	require.EqualValues(t, 1, e.liveRows("u1"))
	_, rows := c.committedRows(3)
	require.Len(t, rows, 2)
	for _, r := range rows {
		if r["table"] == "books" {
			require.Equal(t, "UPDATE", r["op"])
			require.Nil(t, r["payload"].(map[string]any)["author_id"])
		}
		require.Equal(t, json.Number("3"), r["row_version"])
	}

	// A client that missed the cascade conflicts on the book's new version.
	cf := c.push(4, book(opUpdate, 2, "three", nil)).expect(t, 409, "push_conflict").JSON["conflict"].(map[string]any)
	require.Equal(t, json.Number("3"), cf["server_row_version"])
	require.Equal(t, false, cf["server_row_deleted"])
	// The deleted author conflicts as deleted, with its tombstone version.
	cf = c.push(4, author(opUpdate, 1, "x")).expect(t, 409, "push_conflict").JSON["conflict"].(map[string]any)
	require.Equal(t, json.Number("3"), cf["server_row_version"])
	require.Equal(t, true, cf["server_row_deleted"])
	// Re-inserting needs the tombstone's version as base.
	c.push(4, author(opInsert, 0, "ann")).expect(t, 409, "push_conflict")
	c.push(4, author(opInsert, 3, "ann")).expect(t, 200, "")
	require.EqualValues(t, 4, e.version("authors", a))
	require.EqualValues(t, 2, e.liveRows("u1"))
	// The old tombstone stays but no longer counts: the live row wins.
	cf = c.push(5, author(opInsert, 3, "ann")).expect(t, 409, "push_conflict").JSON["conflict"].(map[string]any)
	require.Equal(t, json.Number("4"), cf["server_row_version"])
	require.Equal(t, false, cf["server_row_deleted"])
	c.push(5, author(opUpdate, 4, "anne")).expect(t, 200, "")
	require.EqualValues(t, 5, e.version("authors", a))

	// A snapshot carries the rows' own versions and never the hidden
	// columns.
	got := map[string]any{}
	for _, r := range c.snapshotRows() {
		got[r["table"].(string)] = r["row_version"]
		p := r["payload"].(map[string]any)
		require.NotContains(t, p, "_sync_row_version")
		require.NotContains(t, p, "_sync_scope_id")
	}
	require.Equal(t, map[string]any{"authors": json.Number("5"), "books": json.Number("3")}, got)

	// Deleting the book removes the last but one live row.
	c.push(6, row("books", opDelete, b, 3, nil)).expect(t, 200, "")
	require.EqualValues(t, 1, e.liveRows("u1"))
}

// A push of fresh inserts (base 0, no tombstones in its tables) is applied
// without a conflict probe per row; a live key is caught by the primary key,
// the apply is rolled back to its savepoint and the 409 names the first
// conflicting row. Other unique violations stay 400s; nothing is left
// behind either way.
func TestFreshPushConflictAfterApply(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	k1, k2 := newUUID(), newUUID()
	c.push(1, userRow(k1, "one"), userRow(k2, "two")).expect(t, 200, "")

	r := c.push(2, userRow(newUUID(), "new"), userRow(k2, "two again"), userRow(k1, "one again")).expect(t, 409, "push_conflict")
	cf := r.JSON["conflict"].(map[string]any)
	require.Equal(t, map[string]any{"id": k2}, cf["key"], "the first conflicting row in upload order")
	require.Equal(t, json.Number("1"), cf["server_row_version"])
	require.Equal(t, "two", cf["server_row"].(map[string]any)["name"])
	require.EqualValues(t, 2, e.count("users"))

	c.push(2, userRow(newUUID(), "one")).expect(t, 400, "push_commit_invalid") // the unique name
	require.EqualValues(t, 2, e.count("users"))
	require.EqualValues(t, 2, e.liveRows("u1"))
	r = c.push(2, userRow(newUUID(), "three")).expect(t, 200, "")
	require.EqualValues(t, 2, r.num("bundle_seq"))
	require.EqualValues(t, 3, e.liveRows("u1"))
}

// Server-originated writes leave the version to the stamp triggers: their
// inserts and updates carry their bundle, so a device's next change needs
// that bundle as its base, and their deletes leave tombstones.
func TestServerWriteRowVersions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "dev")
	c.attach()
	u := newUUID()
	res, err := e.h.ServerWrite(t.Context(), e.scope("u1"), "server:x", []WriteOp{
		{Table: "users", Op: "upsert", Key: u, Payload: json.RawMessage(`{"name":"s"}`)}})
	require.NoError(t, err)
	require.EqualValues(t, res.BundleSeq, e.version("users", u))
	require.EqualValues(t, 1, e.liveRows("u1"))

	res, err = e.h.ServerWrite(t.Context(), e.scope("u1"), "server:x", []WriteOp{
		{Table: "users", Op: "upsert", Key: u, Payload: json.RawMessage(`{"age":7}`)}})
	require.NoError(t, err)
	require.EqualValues(t, 2, res.BundleSeq)
	require.EqualValues(t, 2, e.version("users", u))
	c.push(1, row("users", opUpdate, u, 1, map[string]any{"id": u, "name": "d"})).expect(t, 409, "push_conflict")
	c.push(1, row("users", opUpdate, u, 2, map[string]any{"id": u, "name": "d"})).expect(t, 200, "")
	require.EqualValues(t, 3, e.version("users", u))

	res, err = e.h.ServerWrite(t.Context(), e.scope("u1"), "server:x", []WriteOp{{Table: "users", Op: "delete", Key: u}})
	require.NoError(t, err)
	v, deleted := e.tombstone("users", u)
	require.True(t, deleted)
	require.Equal(t, res.BundleSeq, v)
	require.EqualValues(t, 0, e.liveRows("u1"))
}
