package device

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/syncplane/syncplane/tenant"
)

// testTables covers every column type, a uuid and a text key, and a
// cascading foreign key.
const testTables = `{"tables": [
  {"name": "users", "sync_key": "id", "columns": [
    {"name": "id", "type": "uuid"},
    {"name": "name", "type": "text"},
    {"name": "email", "type": "text", "nullable": true},
    {"name": "created_at", "type": "timestamp"}]},
  {"name": "notes", "sync_key": "id", "columns": [
    {"name": "id", "type": "uuid"},
    {"name": "user_id", "type": "uuid"},
    {"name": "title", "type": "text"},
    {"name": "body", "type": "text", "nullable": true},
    {"name": "pinned", "type": "integer", "default": 0},
    {"name": "score", "type": "real", "nullable": true},
    {"name": "big", "type": "integer", "nullable": true},
    {"name": "attachment", "type": "blob", "nullable": true},
    {"name": "meta", "type": "json", "nullable": true},
    {"name": "updated_at", "type": "timestamp"}],
   "foreign_keys": [{"column": "user_id", "references": "users", "on_delete": "cascade"}],
   "indexes": [{"columns": ["user_id"]}]},
  {"name": "tags", "sync_key": "name", "columns": [
    {"name": "name", "type": "text"},
    {"name": "color", "type": "text", "nullable": true}]}
]}`

func testSchema(t testing.TB) *tenant.Schema {
	t.Helper()
	def, err := tenant.ParseDefinition([]byte(testTables))
	if err != nil {
		t.Fatal(err)
	}
	s, err := tenant.NewSchema(def)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func openTest(t testing.TB, s *tenant.Schema, base string, token func(context.Context) (string, error)) *Client {
	t.Helper()
	if token == nil {
		token = func(context.Context) (string, error) { return "none", nil }
	}
	c, err := Open(context.Background(), Config{
		Path: filepath.Join(t.TempDir(), "device.db"), BaseURL: base, Token: token,
		Schema: s, WireSchema: "app",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

type dirtyEntry struct {
	op   string
	base int64
}

func dirtySet(t *testing.T, db *sql.DB) map[string]dirtyEntry {
	t.Helper()
	rows, err := db.Query(`SELECT tbl, key, op, base_row_version FROM _sync_dirty`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]dirtyEntry{}
	for rows.Next() {
		var tbl, key string
		var e dirtyEntry
		if err := rows.Scan(&tbl, &key, &e.op, &e.base); err != nil {
			t.Fatal(err)
		}
		out[tbl+"/"+key] = e
	}
	return out
}

func mustExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

const (
	u1 = "11111111-1111-4111-8111-111111111111"
	u2 = "22222222-2222-4222-8222-222222222222"
	n1 = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
)

func TestCaptureCoalescing(t *testing.T) {
	c := openTest(t, testSchema(t), "http://127.0.0.1:1", nil)
	db := c.DB()
	ts := "2026-01-02T03:04:05.123456789Z"

	// insert then update = one dirty INSERT
	mustExec(t, db, `INSERT INTO users (id, name, created_at) VALUES (?, 'Ada', ?)`, u1, ts)
	mustExec(t, db, `UPDATE users SET name = 'Ada L.' WHERE id = ?`, u1)
	if d := dirtySet(t, db); len(d) != 1 || d["users/"+u1] != (dirtyEntry{"INSERT", 0}) {
		t.Fatalf("insert+update: %v", d)
	}
	// insert then delete = nothing
	mustExec(t, db, `INSERT INTO users (id, name, created_at) VALUES (?, 'Bob', ?)`, u2, ts)
	mustExec(t, db, `DELETE FROM users WHERE id = ?`, u2)
	if d := dirtySet(t, db); len(d) != 1 {
		t.Fatalf("insert+delete: %v", d)
	}

	// A synced row (server version 7): update = UPDATE base 7, delete = DELETE base 7.
	mustExec(t, db, `DELETE FROM _sync_dirty`)
	mustExec(t, db, `INSERT INTO _sync_row_state (tbl, key, row_version, deleted) VALUES ('users', ?, 7, 0)`, u1)
	mustExec(t, db, `UPDATE users SET email = 'a@example.com' WHERE id = ?`, u1)
	if d := dirtySet(t, db); d["users/"+u1] != (dirtyEntry{"UPDATE", 7}) {
		t.Fatalf("update synced: %v", d)
	}
	mustExec(t, db, `DELETE FROM users WHERE id = ?`, u1)
	if d := dirtySet(t, db); len(d) != 1 || d["users/"+u1] != (dirtyEntry{"DELETE", 7}) {
		t.Fatalf("delete synced: %v", d)
	}
	// Re-insert after a local delete of a synced row is an UPDATE again.
	mustExec(t, db, `INSERT INTO users (id, name, created_at) VALUES (?, 'Ada', ?)`, u1, ts)
	if d := dirtySet(t, db); d["users/"+u1] != (dirtyEntry{"UPDATE", 7}) {
		t.Fatalf("re-insert synced: %v", d)
	}

	// A key change is a delete of the old key and an insert of the new one.
	mustExec(t, db, `DELETE FROM _sync_dirty`)
	mustExec(t, db, `INSERT INTO tags (name) VALUES ('red')`)
	mustExec(t, db, `DELETE FROM _sync_dirty`)
	mustExec(t, db, `INSERT INTO _sync_row_state (tbl, key, row_version, deleted) VALUES ('tags', 'red', 3, 0)`)
	mustExec(t, db, `UPDATE tags SET name = 'crimson' WHERE name = 'red'`)
	if d := dirtySet(t, db); len(d) != 2 || d["tags/red"] != (dirtyEntry{"DELETE", 3}) || d["tags/crimson"] != (dirtyEntry{"INSERT", 0}) {
		t.Fatalf("key change: %v", d)
	}

	// Writes while applying server rows are not captured.
	mustExec(t, db, `DELETE FROM _sync_dirty`)
	if err := c.applyTx(context.Background(), func(tx *txn) error {
		_, err := tx.Exec(`INSERT INTO tags (name) VALUES ('blue')`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if d := dirtySet(t, db); len(d) != 0 {
		t.Fatalf("apply mode captured: %v", d)
	}
}

func TestCascadeCaptureAndFreezeOrder(t *testing.T) {
	c := openTest(t, testSchema(t), "http://127.0.0.1:1", nil)
	db := c.DB()
	ctx := context.Background()
	ts := "2026-01-02T03:04:05Z"
	// Child before parent in one transaction works (deferred FK).
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`INSERT INTO notes (id, user_id, title, updated_at) VALUES (?, ?, 'n', ?)`, n1, u1, ts); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`INSERT INTO users (id, name, created_at) VALUES (?, 'Ada', ?)`, u1, ts); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	// A dangling reference fails at commit.
	if _, err := db.Exec(`INSERT INTO notes (id, user_id, title, updated_at) VALUES (?, ?, 'n', ?)`, n1[:35]+"b", u2, ts); err == nil {
		t.Fatal("dangling FK accepted")
	}
	n, err := c.freeze(ctx)
	if err != nil || n != 2 {
		t.Fatalf("freeze: %d %v", n, err)
	}
	ob, err := c.loadOutbox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ob[0].table != "users" || ob[1].table != "notes" || ob[0].op != "INSERT" {
		t.Fatalf("upserts not parents first: %+v", ob)
	}
	var payload map[string]any
	if err := json.Unmarshal(ob[1].payload, &payload); err != nil {
		t.Fatal(err)
	}
	if len(payload) != 10 || payload["pinned"] != float64(0) || payload["attachment"] != nil {
		t.Fatalf("payload %s", ob[1].payload)
	}
	// Pretend the push committed at version 1, then delete the parent:
	// the cascade is captured, deletes go children first.
	mustExec(t, db, `DELETE FROM _sync_outbox`)
	mustExec(t, db, `INSERT INTO _sync_row_state VALUES ('users', ?, 1, 0), ('notes', ?, 1, 0)`, u1, n1)
	mustExec(t, db, `DELETE FROM users WHERE id = ?`, u1)
	if d := dirtySet(t, db); len(d) != 2 || d["notes/"+n1].op != "DELETE" {
		t.Fatalf("cascade capture: %v", d)
	}
	if n, err := c.freeze(ctx); err != nil || n != 2 {
		t.Fatalf("freeze: %d %v", n, err)
	}
	ob, _ = c.loadOutbox(ctx)
	if ob[0].table != "notes" || ob[1].table != "users" || ob[0].op != "DELETE" || ob[0].base != 1 || ob[0].payload != nil {
		t.Fatalf("deletes not children first: %+v", ob)
	}
}

func TestLocalDDL(t *testing.T) {
	s := testSchema(t)
	notes, _ := s.Table("notes")
	ddl, err := TableDDL(notes)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(ddl, "\n")
	for _, want := range []string{
		`"id" TEXT NOT NULL PRIMARY KEY`,
		`"pinned" INTEGER NOT NULL DEFAULT 0`,
		`"score" REAL`,
		`"attachment" BLOB`,
		`"meta" TEXT CHECK ("meta" IS NULL OR json_valid("meta"))`,
		`"updated_at" TEXT NOT NULL`,
		`FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON DELETE CASCADE ON UPDATE NO ACTION DEFERRABLE INITIALLY DEFERRED`,
		`) STRICT`,
		`CREATE INDEX IF NOT EXISTS`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("DDL lacks %q:\n%s", want, all)
		}
	}
	// uuid columns refuse non-canonical text; STRICT refuses wrong types.
	c := openTest(t, s, "http://127.0.0.1:1", nil)
	db := c.DB()
	if _, err := db.Exec(`INSERT INTO users (id, name, created_at) VALUES (?, 'x', 't')`, strings.ToUpper(n1)); err == nil {
		t.Error("upper-case uuid accepted")
	}
	if _, err := db.Exec(`INSERT INTO users (id, name, created_at) VALUES ('not-a-uuid', 'x', 't')`); err == nil {
		t.Error("invalid uuid accepted")
	}
	if _, err := db.Exec(`INSERT INTO users (id, name, created_at) VALUES (?, 'x', 'yesterday')`, n1); err == nil {
		t.Error("non-timestamp accepted")
	}
	for _, ts := range []string{"2026-01-02T03:04:05Z", "2026-01-02 03:04", "2026-01-02t03:04:05.123456789+02:00"} {
		if _, err := db.Exec(`INSERT INTO users (id, name, created_at) VALUES (?, 'x', ?)`, newTestUUID(), ts); err != nil {
			t.Errorf("timestamp %q refused: %v", ts, err)
		}
	}
	if _, err := db.Exec(`INSERT INTO tags (name, color) VALUES ('x', X'00')`); err == nil {
		t.Error("blob in a STRICT TEXT column accepted")
	}
	// Reopening an existing database is idempotent.
	if err := c.init(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestValueRoundTrip(t *testing.T) {
	s := testSchema(t)
	notes, _ := s.Table("notes")
	vals := []any{n1, u1, "héllo <&> \u2028", nil, int64(-9223372036854775808), 1.5e-7, int64(9223372036854775807),
		[]byte{0, 1, 2, 255}, `{"b": [1, 2.50], "a": "x"}`, "2026-01-02T03:04:05.123456789+02:00"}
	payload, err := encodePayload(notes, vals)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(payload), `"big":9223372036854775807`) || !strings.Contains(string(payload), `"attachment":"AAEC/w=="`) ||
		!strings.Contains(string(payload), `"meta":{"b":[1,2.50],"a":"x"}`) {
		t.Fatalf("payload %s", payload)
	}
	back, err := decodePayload(notes, payload)
	if err != nil {
		t.Fatal(err)
	}
	for i := range vals {
		want := vals[i]
		if i == 8 {
			want = `{"b":[1,2.50],"a":"x"}`
		}
		if b, ok := want.([]byte); ok {
			if string(b) != string(back[i].([]byte)) {
				t.Errorf("col %d: %v != %v", i, back[i], want)
			}
			continue
		}
		if back[i] != want {
			t.Errorf("col %d: %#v != %#v", i, back[i], want)
		}
	}
	// Column-set parity is enforced.
	if _, err := decodePayload(notes, json.RawMessage(`{"id":"x"}`)); err == nil {
		t.Error("partial payload accepted")
	}
}

var testUUIDs int

func newTestUUID() string {
	testUUIDs++
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", testUUIDs)
}
