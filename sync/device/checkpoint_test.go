package device

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"
)

// TestRebuildCheckpointsInBackground: the rebuild's connection goes back to
// the pool with automatic checkpoints on again and temp_store at its
// default, and the rows are there once the client has closed.
func TestRebuildCheckpointsInBackground(t *testing.T) {
	const n = 3000
	schema := testSchemaFrom(t, benchTables)
	srv := fakeSnapshotServer(t, n)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fresh.db")
	c, err := Open(ctx, Config{Path: path, BaseURL: srv.URL, Schema: schema, WireSchema: "app",
		Token: func(context.Context) (string, error) { return "t", nil }})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Attach(ctx); err != nil {
		t.Fatal(err)
	}
	// Holding as many connections as the pool opens covers every one.
	var conns []*sql.Conn
	for range 4 {
		conn, err := c.DB().Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
		var v, temp int64
		if err := conn.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != 1000 {
			t.Errorf("connection %d: wal_autocheckpoint = %d after the rebuild, want 1000", len(conns), v)
		}
		if err := conn.QueryRowContext(ctx, `PRAGMA temp_store`).Scan(&temp); err != nil {
			t.Fatal(err)
		}
		if temp != 0 {
			t.Errorf("connection %d: temp_store = %d after the rebuild, want 0 (the default)", len(conns), temp)
		}
	}
	for _, conn := range conns {
		conn.Close()
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var got int
	if err := db.QueryRow(`SELECT count(*) FROM items`).Scan(&got); err != nil || got != n {
		t.Fatalf("database holds %d rows (%v), want %d", got, err, n)
	}
}
