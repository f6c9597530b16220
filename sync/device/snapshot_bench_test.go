package device

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/syncplane/syncplane/tenant"
)

// benchTables is the load generator's items table (loadgen.Tables).
const benchTables = `{"tables": [
  {"name": "items", "sync_key": "id", "columns": [
    {"name": "id", "type": "uuid"},
    {"name": "title", "type": "text"},
    {"name": "body", "type": "text", "nullable": true},
    {"name": "n", "type": "integer", "default": 0},
    {"name": "score", "type": "real", "nullable": true},
    {"name": "updated_at", "type": "timestamp"}]}
]}`

// benchSnapshotRows is the rows of the snapshot benchmarks:
// SYNCPLANE_BENCH_SNAPSHOT_ROWS, 100,000 by default.
func benchSnapshotRows(b *testing.B) int {
	s := os.Getenv("SYNCPLANE_BENCH_SNAPSHOT_ROWS")
	if s == "" {
		return 100000
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		b.Fatalf("SYNCPLANE_BENCH_SNAPSHOT_ROWS=%q", s)
	}
	return n
}

// BenchmarkSnapshotHydrate times a fresh device attaching to a user whose
// scope holds SYNCPLANE_BENCH_SNAPSHOT_ROWS rows (default 100,000): connect,
// snapshot session, every page, applied to SQLite. It needs the test
// database (SYNCPLANE_TEST_DATABASE_URL); the server runs in its own
// process, so a CPU profile of this benchmark shows the device's side.
func BenchmarkSnapshotHydrate(b *testing.B) {
	n := benchSnapshotRows(b)
	e := newTenantWith(b, benchTables)
	ctx := context.Background()
	open := func(path string, chunk int) *Client {
		c, err := Open(ctx, Config{Path: path, BaseURL: e.base, Token: e.token("u"), Schema: e.schema,
			WireSchema: "app", ChunkSize: chunk})
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	seed := open(filepath.Join(b.TempDir(), "seed.db"), 5000)
	defer seed.Close()
	// Attach empty, then push bundles of 10,000 rows (a whole scope in
	// one bundle would exceed the tenant's bundle size limit).
	if err := seed.Attach(ctx); err != nil {
		b.Fatalf("seed: %v\n%s", err, serverLog())
	}
	start := time.Now()
	for done := 0; done < n; {
		tx, err := seed.DB().Begin()
		if err != nil {
			b.Fatal(err)
		}
		for end := min(done+10000, n); done < end; done++ {
			i := done
			var body, score any
			if i%3 != 0 {
				body = fmt.Sprintf("body of item %d, some text to give the row a realistic size", i)
			}
			if i%2 == 0 {
				score = float64(i) / 7
			}
			if _, err := tx.Exec(`INSERT INTO items (id, title, body, n, score, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
				newUUID(), fmt.Sprintf("item %d", i), body, i, score, ts0); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
		if err := seed.Sync(ctx); err != nil {
			b.Fatalf("seed: %v\n%s", err, serverLog())
		}
	}
	b.Logf("seeded %d rows in %s", n, time.Since(start))

	dir := b.TempDir()
	var elapsed, cpu time.Duration // cpu: this process's, the device's
	var reps int
	for ; b.Loop(); reps++ {
		path := filepath.Join(dir, fmt.Sprintf("fresh-%d.db", reps))
		c := open(path, 0)
		start, cpu0 := time.Now(), processCPU()
		if err := c.Attach(ctx); err != nil {
			b.Fatalf("hydrate: %v\n%s", err, serverLog())
		}
		d, used := time.Since(start), processCPU()-cpu0
		elapsed += d
		cpu += used
		b.Logf("hydrated %d rows in %s (%.0f rows/s), device CPU %s", n, d, float64(n)/d.Seconds(), used)
		b.StopTimer()
		var got int
		if err := c.DB().QueryRow(`SELECT COUNT(*) FROM items`).Scan(&got); err != nil || got != n {
			b.Fatalf("hydrated %d rows (%v), want %d", got, err, n)
		}
		c.Close()
		for _, suffix := range []string{"", "-wal", "-shm"} {
			os.Remove(path + suffix)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(n)*float64(reps)/elapsed.Seconds(), "rows/s")
	b.ReportMetric(cpu.Seconds()/float64(reps), "cpu-s/op")
}

// fakeSnapshotServer answers just enough of the protocol for a fresh
// device to attach remote_authoritative and read a snapshot of pre-encoded
// rows (shaped like the server's: json_build_object payloads).
func fakeSnapshotServer(tb testing.TB, n int) *httptest.Server {
	tb.Helper()
	rows := make([][]byte, n)
	for i := range rows {
		id := fmt.Sprintf("%08x-0000-4000-8000-%012x", i/65536, i)
		body, score := "null", "null"
		if i%3 != 0 {
			body = strconv.Quote(fmt.Sprintf("body of item %d, some text to give the row a realistic size", i))
		}
		if i%2 == 0 {
			score = strconv.FormatFloat(float64(i)/7, 'g', -1, 64)
		}
		rows[i] = fmt.Appendf(nil, `{"schema":"app","table":"items","key":{"id":%q},"row_version":%d,"payload":`+
			`{"id" : %q, "title" : "item %d", "body" : %s, "n" : %d, "score" : %s, "updated_at" : %q}}`,
			id, i%1000+1, id, i, body, i, score, ts0)
	}
	const sid = "6f1c1c52-0000-4000-8000-000000000001"
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sync/capabilities", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"protocol_version":"v1","schema_version":1,"app_name":"bench","registered_tables":["items"],"features":{"connect_lifecycle":true},"bundle_limits":{}}`)
	})
	mux.HandleFunc("POST /sync/connect", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"resolution":"remote_authoritative"}`)
	})
	mux.HandleFunc("POST /sync/snapshot-sessions", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"snapshot_id":%q,"snapshot_bundle_seq":1000,"row_count":%d,"byte_count":0,"expires_at":"2099-01-01T00:00:00Z"}`, sid, n)
	})
	mux.HandleFunc("DELETE /sync/snapshot-sessions/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /sync/snapshot-sessions/{id}", func(w http.ResponseWriter, r *http.Request) {
		after, _ := strconv.Atoi(r.URL.Query().Get("after_row_ordinal"))
		max, _ := strconv.Atoi(r.URL.Query().Get("max_rows"))
		max = min(max, 5000)
		end := min(after+max, n)
		var b bytes.Buffer
		fmt.Fprintf(&b, `{"snapshot_id":%q,"snapshot_bundle_seq":1000,"rows":[`, sid)
		for i := after; i < end; i++ {
			if i > after {
				b.WriteByte(',')
			}
			b.Write(rows[i])
		}
		fmt.Fprintf(&b, `],"next_row_ordinal":%d,"has_more":%v}`, end, end < n)
		w.Write(b.Bytes())
	})
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	return srv
}

// BenchmarkSnapshotApply times a fresh device hydrating rows
// (SYNCPLANE_BENCH_SNAPSHOT_ROWS, 100,000 by default) from an in-process
// fake server: the device's own cost (page decoding and the SQLite writes),
// without PostgreSQL.
func BenchmarkSnapshotApply(b *testing.B) {
	n := benchSnapshotRows(b)
	schema := testSchemaFrom(b, benchTables)
	srv := fakeSnapshotServer(b, n)
	ctx := context.Background()
	dir := b.TempDir()
	tok := func(context.Context) (string, error) { return "t", nil }
	var elapsed, cpu time.Duration // cpu: the process's, device and fake server
	var reps int
	for ; b.Loop(); reps++ {
		path := filepath.Join(dir, fmt.Sprintf("fresh-%d.db", reps))
		c, err := Open(ctx, Config{Path: path, BaseURL: srv.URL, Token: tok, Schema: schema, WireSchema: "app"})
		if err != nil {
			b.Fatal(err)
		}
		start, cpu0 := time.Now(), processCPU()
		if err := c.Attach(ctx); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
		cpu += processCPU() - cpu0
		b.StopTimer()
		var got int
		if err := c.DB().QueryRow(`SELECT COUNT(*) FROM items`).Scan(&got); err != nil || got != n {
			b.Fatalf("hydrated %d rows (%v), want %d", got, err, n)
		}
		c.Close()
		for _, suffix := range []string{"", "-wal", "-shm"} {
			os.Remove(path + suffix)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(n)*float64(reps)/elapsed.Seconds(), "rows/s")
	b.ReportMetric(cpu.Seconds()/float64(reps), "cpu-s/op")
}

func testSchemaFrom(tb testing.TB, tables string) *tenant.Schema {
	tb.Helper()
	def, err := tenant.ParseDefinition([]byte(tables))
	if err != nil {
		tb.Fatal(err)
	}
	s, err := tenant.NewSchema(def)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
