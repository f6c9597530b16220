package device

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/syncplane/syncplane/tenant"
)

// bulkTables has a table with every column type but json (its rows load
// with the CHECK constraints verified in Go), one with a json column (its
// rows load with SQLite checking), a text key, a foreign key and an index.
const bulkTables = `{"tables": [
  {"name": "things", "sync_key": "id", "columns": [
    {"name": "id", "type": "uuid"},
    {"name": "label", "type": "text"},
    {"name": "note", "type": "text", "nullable": true},
    {"name": "n", "type": "integer", "nullable": true},
    {"name": "flag", "type": "integer", "default": 0},
    {"name": "x", "type": "real", "nullable": true},
    {"name": "data", "type": "blob", "nullable": true},
    {"name": "other", "type": "uuid", "nullable": true},
    {"name": "at", "type": "timestamp", "nullable": true}],
   "indexes": [{"columns": ["label"]}]},
  {"name": "docs", "sync_key": "name", "columns": [
    {"name": "name", "type": "text"},
    {"name": "thing", "type": "uuid", "nullable": true},
    {"name": "meta", "type": "json", "nullable": true}],
   "foreign_keys": [{"column": "thing", "references": "things", "on_delete": "cascade"}]}
]}`

// snapServer is a fake server for hydration tests: connect answers
// remote_authoritative and snapshot sessions serve rows (wire row objects),
// in pages of at most pageRows.
type snapServer struct {
	*httptest.Server
	mu       sync.Mutex
	rows     []string
	seq      int64
	pageRows int
}

func newSnapServer(tb testing.TB) *snapServer {
	s := &snapServer{pageRows: 5000}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sync/capabilities", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"protocol_version":"v1","schema_version":1,"app_name":"t","registered_tables":["things","docs"],"features":{"connect_lifecycle":true},"bundle_limits":{}}`)
	})
	mux.HandleFunc("POST /sync/connect", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"resolution":"remote_authoritative"}`)
	})
	const sid = "6f1c1c52-0000-4000-8000-000000000002"
	mux.HandleFunc("POST /sync/snapshot-sessions", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		fmt.Fprintf(w, `{"snapshot_id":%q,"snapshot_bundle_seq":%d,"row_count":%d,"byte_count":0,"expires_at":"2099-01-01T00:00:00Z"}`, sid, s.seq, len(s.rows))
	})
	mux.HandleFunc("DELETE /sync/snapshot-sessions/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /sync/snapshot-sessions/{id}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		after, _ := strconv.Atoi(r.URL.Query().Get("after_row_ordinal"))
		n, _ := strconv.Atoi(r.URL.Query().Get("max_rows"))
		end := min(after+min(n, s.pageRows), len(s.rows))
		fmt.Fprintf(w, `{"snapshot_id":%q,"snapshot_bundle_seq":%d,"rows":[%s],"next_row_ordinal":%d,"has_more":%v}`,
			sid, s.seq, strings.Join(s.rows[after:end], ","), end, end < len(s.rows))
	})
	s.Server = httptest.NewServer(mux)
	tb.Cleanup(s.Close)
	return s
}

func (s *snapServer) serve(seq int64, rows []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq, s.rows = seq, rows
}

// wire renders a snapshot row; payload is the payload object's JSON text.
func wire(table, keyCol, key string, version int64, payload string) string {
	k, _ := json.Marshal(key)
	return fmt.Sprintf(`{"schema":"app","table":%q,"key":{%q:%s},"row_version":%d,"payload":%s}`, table, keyCol, k, version, payload)
}

func openBulk(tb testing.TB, schema *tenant.Schema, base string) *Client {
	tb.Helper()
	c, err := Open(context.Background(), Config{Path: filepath.Join(tb.TempDir(), "device.db"), BaseURL: base,
		Token: func(context.Context) (string, error) { return "t", nil }, Schema: schema, WireSchema: "app"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// tableContent returns every row of every synced table (values as the
// driver returns them, so types count) and _sync_row_state, ordered.
func tableContent(tb testing.TB, c *Client) map[string][][]any {
	tb.Helper()
	out := map[string][][]any{}
	read := func(name, q string, ncol int) {
		rows, err := c.DB().Query(q)
		if err != nil {
			tb.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			vals := make([]any, ncol)
			ptrs := make([]any, ncol)
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				tb.Fatal(err)
			}
			out[name] = append(out[name], vals)
		}
		if err := rows.Err(); err != nil {
			tb.Fatal(err)
		}
	}
	for _, t := range c.tables {
		read(t.Name, strings.Replace(selectSQL(t), " WHERE "+qi(t.Key.Name)+" = ?", "", 1)+" ORDER BY "+qi(t.Key.Name), len(t.Columns))
	}
	read("_sync_row_state", `SELECT tbl, key, row_version, deleted FROM _sync_row_state ORDER BY tbl, key`, 4)
	read("_sync_dirty", `SELECT tbl, key, op, base_row_version FROM _sync_dirty ORDER BY tbl, key`, 4)
	return out
}

// applyOneByOne writes snapshot rows the way bundles are applied, row by
// row with applyServerRow, into a fresh database: the reference result.
func applyOneByOne(tb testing.TB, schema *tenant.Schema, rows []string) *Client {
	tb.Helper()
	c := openBulk(tb, schema, "http://127.0.0.1:1")
	err := c.applyTx(context.Background(), func(tx *txn) error {
		for _, s := range rows {
			var r wireRow
			if err := json.Unmarshal([]byte(s), &r); err != nil {
				return err
			}
			if err := c.applyServerRow(context.Background(), tx, &r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// assertLoadModeOver checks that the bulk load left no trace: the capture
// triggers exist and every pooled connection checks constraints.
func assertLoadModeOver(tb testing.TB, c *Client) {
	tb.Helper()
	var triggers int
	if err := c.DB().QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE '\_sync\_%' ESCAPE '\'`).Scan(&triggers); err != nil {
		tb.Fatal(err)
	}
	if want := 3 * len(c.tables); triggers != want {
		tb.Fatalf("%d capture triggers, want %d", triggers, want)
	}
	ctx := context.Background()
	var conns []*sql.Conn
	defer func() {
		for _, cn := range conns {
			cn.Close()
		}
	}()
	for range 4 { // the pool's size: every connection there is
		cn, err := c.DB().Conn(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		conns = append(conns, cn)
		var ignore int
		if err := cn.QueryRowContext(ctx, `PRAGMA ignore_check_constraints`).Scan(&ignore); err != nil {
			tb.Fatal(err)
		}
		if ignore != 0 {
			tb.Fatalf("connection %d still ignores CHECK constraints", len(conns))
		}
	}
}

func bulkRows() []string {
	thing := func(i int) string { return fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i) }
	var rows []string
	// Enough rows for full batches, a partial batch and several pages.
	for i := range 700 {
		var note, n, x, data, other, at any
		if i%3 != 0 {
			note = fmt.Sprintf("note %d", i)
		}
		if i%4 != 0 {
			n = int64(i) * 1000003
		}
		if i%5 != 0 {
			x = float64(i) / 7
		}
		if i%6 != 0 {
			data = []byte{byte(i), 0, 0xff, byte(i >> 8)}
		}
		if i%7 != 0 {
			other = thing(i + 100000)
		}
		if i%2 == 0 {
			at = fmt.Sprintf("2026-03-%02dT18:02:00.%09dZ", i%28+1, i)
		}
		p, _ := json.Marshal(map[string]any{"id": thing(i), "label": fmt.Sprintf("thing %d", 700-i), "note": note,
			"n": n, "flag": i % 2, "x": x, "data": data, "other": other, "at": at})
		rows = append(rows, wire("things", "id", thing(i), int64(i%50+1), string(p)))
	}
	// Every edge of every type, hand-written as a server would send them.
	special := []string{
		`{"id":"7fffffff-ffff-4fff-bfff-ffffffffffff","label":"Zoë 🚀 <&> \u2028 \"quoted\" \\ back","note":"","n":9223372036854775807,"flag":true,"x":1e21,"data":"","other":null,"at":"2026-03-24 18:02:00+02"}`,
		`{"id":"80000000-0000-4000-8000-000000000000","label":"min","note":"unicode ✓ 漢字 \u0001","n":-9223372036854775808,"flag":false,"x":-0.000001,"data":"AAD/AQID","other":"ffffffff-ffff-4fff-bfff-ffffffffffff","at":"2026-03-24t18:02:00Z"}`,
		`{"id":"80000000-0000-4000-8000-000000000001","label":"2^53+1","note":null,"n":9007199254740993,"flag":3.0,"x":1.5e-7,"data":"AABiaW5hcnn/","other":null,"at":null}`,
		`{ "id" : "80000000-0000-4000-8000-000000000002" , "label" : "spaced" , "note" : "x" , "n" : -1 , "flag" : 0 , "x" : 0 , "data" : null , "other" : null , "at" : "2026-12-31T23:59:59.999999Z" }`,
	}
	for i, p := range special {
		var m map[string]any
		if err := json.Unmarshal([]byte(p), &m); err != nil {
			panic(err)
		}
		rows = append(rows, wire("things", "id", m["id"].(string), int64(900+i), p))
	}
	for i, meta := range []string{`null`, `{}`, `{"a": [1, 2.5, "x"], "b": null}`, `[1,"two",true]`, `"just a string"`, `12345678901234567890`} {
		rows = append(rows, wire("docs", "name", fmt.Sprintf("doc %d ü/&", i), int64(i+1),
			fmt.Sprintf(`{"name":"doc %d ü/&","thing":%q,"meta":%s}`, i, thing(i), meta)))
	}
	return rows
}

// TestSnapshotBulkLoadEveryType hydrates a fresh device through the bulk
// load and compares the result, value types included, with the same rows
// applied one by one as bundle rows are.
func TestSnapshotBulkLoadEveryType(t *testing.T) {
	schema := testSchemaFrom(t, bulkTables)
	srv := newSnapServer(t)
	srv.pageRows = 300
	rows := bulkRows()
	srv.serve(1000, rows)
	c := openBulk(t, schema, srv.URL)
	if err := c.Attach(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, want := tableContent(t, c), tableContent(t, applyOneByOne(t, schema, rows))
	if len(got["things"]) != 704 || len(got["docs"]) != 6 || len(got["_sync_row_state"]) != 710 {
		t.Fatalf("hydrated %d things, %d docs, %d row states", len(got["things"]), len(got["docs"]), len(got["_sync_row_state"]))
	}
	for name := range want {
		if !reflect.DeepEqual(got[name], want[name]) {
			for i := range min(len(got[name]), len(want[name])) {
				if !reflect.DeepEqual(got[name][i], want[name][i]) {
					t.Errorf("%s row %d: bulk load wrote %#v, row by row %#v", name, i, got[name][i], want[name][i])
					break
				}
			}
			t.Fatalf("%s: bulk load wrote %d rows, row by row %d", name, len(got[name]), len(want[name]))
		}
	}
	// A few values spelled out, in case both paths were wrong alike.
	var n int64
	var flag int64
	var x float64
	var data []byte
	if err := c.DB().QueryRow(`SELECT n, flag, x, data FROM things WHERE id = '80000000-0000-4000-8000-000000000000'`).Scan(&n, &flag, &x, &data); err != nil {
		t.Fatal(err)
	}
	if n != -9223372036854775808 || flag != 0 || x != -0.000001 || string(data) != "\x00\x00\xff\x01\x02\x03" {
		t.Fatalf("min row: n %d flag %d x %v data %q", n, flag, x, data)
	}
	var meta string
	if err := c.DB().QueryRow(`SELECT meta FROM docs WHERE name = 'doc 2 ü/&'`).Scan(&meta); err != nil || meta != `{"a":[1,2.5,"x"],"b":null}` {
		t.Fatalf("meta %q (%v)", meta, err)
	}
	assertLoadModeOver(t, c)
	if st, err := c.State(context.Background()); err != nil || st.Checkpoint != 1000 || !st.Attached || st.Dirty != 0 {
		t.Fatalf("state %+v (%v)", st, err)
	}
	// Capture works again and the constraints hold for the app.
	if _, err := c.DB().Exec(`UPDATE things SET label = 'edited' WHERE id = '80000000-0000-4000-8000-000000000001'`); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DB().Exec(`INSERT INTO things (id, label) VALUES ('NOT-A-UUID', 'bad')`); err == nil || !strings.Contains(err.Error(), "CHECK") {
		t.Fatalf("an invalid uuid went in: %v", err)
	}
	d := tableContent(t, c)["_sync_dirty"]
	if len(d) != 1 || d[0][2] != "UPDATE" || d[0][3] != int64(902) {
		t.Fatalf("dirty after a local edit: %v", d)
	}
}

// TestSnapshotBulkLoadRefusesInvalidValues: a value SQLite's CHECK refuses
// still fails the hydration, which changes nothing.
func TestSnapshotBulkLoadRefusesInvalidValues(t *testing.T) {
	schema := testSchemaFrom(t, bulkTables)
	for _, bad := range []string{
		`"other":"ABCDEF00-0000-4000-8000-000000000000","at":null`,
		`"other":null,"at":"yesterday"`,
	} {
		srv := newSnapServer(t)
		rows := bulkRows()[:300]
		rows = append(rows, wire("things", "id", "90000000-0000-4000-8000-000000000000", 7,
			`{"id":"90000000-0000-4000-8000-000000000000","label":"bad","note":null,"n":null,"flag":0,"x":null,"data":null,`+bad+`}`))
		srv.serve(1000, rows)
		c := openBulk(t, schema, srv.URL)
		if _, err := c.DB().Exec(`INSERT INTO things (id, label) VALUES ('00000000-0000-4000-8000-00000000000a', 'local')`); err != nil {
			t.Fatal(err)
		}
		before := tableContent(t, c)
		err := c.Attach(context.Background())
		if err == nil || !strings.Contains(err.Error(), "CHECK constraint failed") {
			t.Fatalf("%s: hydration error %v, want a CHECK constraint failure", bad, err)
		}
		if after := tableContent(t, c); !reflect.DeepEqual(after, before) {
			t.Fatalf("%s: a failed hydration changed the database:\n%v\n%v", bad, before, after)
		}
		assertLoadModeOver(t, c)
		if st, _ := c.State(context.Background()); st.Attached || st.Checkpoint != 0 {
			t.Fatalf("%s: state after a failed hydration %+v", bad, st)
		}
	}
}

// TestSnapshotRebuildReplacesContent: hydrating over local rows replaces
// them, and a keep-source rebuild of a hydrated, locally edited database
// replaces its content and row state and re-applies the local intent.
func TestSnapshotRebuildReplacesContent(t *testing.T) {
	schema := testSchemaFrom(t, bulkTables)
	srv := newSnapServer(t)
	srv.pageRows = 250
	rows := bulkRows()
	srv.serve(1000, rows)
	c := openBulk(t, schema, srv.URL)
	ctx := context.Background()
	for _, q := range []string{
		`INSERT INTO things (id, label) VALUES ('00000000-0000-4000-8000-00000000000a', 'anonymous')`,
		`INSERT INTO things (id, label) VALUES ('00000001-0000-4000-8000-000000000001', 'anonymous, a served key')`,
	} {
		if _, err := c.DB().Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Attach(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := tableContent(t, c), tableContent(t, applyOneByOne(t, schema, rows)); !reflect.DeepEqual(got, want) {
		t.Fatal("hydrating over local rows did not leave exactly the snapshot's")
	}

	// Local intent: a new row, an edit and a delete of served rows.
	for _, q := range []string{
		`INSERT INTO things (id, label) VALUES ('00000000-0000-4000-8000-00000000000b', 'new local')`,
		`UPDATE things SET label = 'edited locally' WHERE id = '00000002-0000-4000-8000-000000000002'`,
		`DELETE FROM things WHERE id = '00000003-0000-4000-8000-000000000003'`,
	} {
		if _, err := c.DB().Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	// The next snapshot: every other row, new versions, some rows changed.
	var next []string
	for i, r := range rows {
		if i%2 == 1 && i > 3 {
			continue
		}
		next = append(next, strings.Replace(strings.Replace(r, `"label":"thing`, `"label":"v2 thing`, 1), `"row_version":`, `"row_version":1`, 1))
	}
	srv.serve(2000, next)
	if err := c.setState(ctx, `rebuild_required = 1`); err != nil {
		t.Fatal(err)
	}
	if err := c.recover(ctx); err != nil {
		t.Fatal(err)
	}
	// The reference: the new snapshot, then the same local statements.
	ref := applyOneByOne(t, schema, next)
	for _, q := range []string{
		`INSERT INTO things (id, label) VALUES ('00000000-0000-4000-8000-00000000000b', 'new local')`,
		`UPDATE things SET label = 'edited locally' WHERE id = '00000002-0000-4000-8000-000000000002'`,
		`DELETE FROM things WHERE id = '00000003-0000-4000-8000-000000000003'`,
	} {
		if _, err := ref.DB().Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	got, want := tableContent(t, c), tableContent(t, ref)
	for name := range want {
		if name == "_sync_dirty" {
			continue // reapplyIntent marks keys UPDATE with base 0; the push recomputes both
		}
		if !reflect.DeepEqual(got[name], want[name]) {
			t.Fatalf("%s after the rebuild differs from the reference (%d rows, want %d)", name, len(got[name]), len(want[name]))
		}
	}
	var keys []string // the cascade of the local delete took doc 3 along
	for _, d := range got["_sync_dirty"] {
		keys = append(keys, d[1].(string))
	}
	if strings.Join(keys, " ") != "doc 3 ü/& 00000000-0000-4000-8000-00000000000b 00000002-0000-4000-8000-000000000002 00000003-0000-4000-8000-000000000003" {
		t.Fatalf("dirty keys after the rebuild: %v", keys)
	}
	if st, err := c.State(ctx); err != nil || st.Checkpoint != 2000 || st.RebuildRequired {
		t.Fatalf("state %+v (%v)", st, err)
	}
	assertLoadModeOver(t, c)
}

// TestBulkLoadChecksImplySQLite: whatever the Go checks pass, the CHECK
// constraints of TableDDL accept.
func TestBulkLoadChecksImplySQLite(t *testing.T) {
	schema := testSchemaFrom(t, `{"tables": [{"name": "t", "sync_key": "k", "columns": [
		{"name": "k", "type": "text"}, {"name": "u", "type": "uuid", "nullable": true},
		{"name": "ts", "type": "timestamp", "nullable": true}]}]}`)
	c := openBulk(t, schema, "http://127.0.0.1:1")
	uuids := []string{"00000000-0000-4000-8000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff",
		"0123456789abcdef-0123-4567-89ab-cdef", "00000000-0000-4000-8000-00000000000A", "00000000-0000-4000-8000-0000000000001",
		"00000000-0000-4000-8000-00000000000", "00000000+0000-4000-8000-000000000000", "00000000-0000-4000-8000-00000000000g",
		"00000000-0000-4000-8000-00000000000\x00", "00000000-0000-4000-8000-00000000000é", "--------------------------------------------",
		"000000000000-4000-8000-0000000000000", ""}
	stamps := []string{"2026-03-24T18:02:00Z", "2026-03-24t18:02", "2026-03-24 18:02:00.123+02:00", "9999-19-39T29:59Z\x00x",
		"2026-03-24T18:02:0", "2026-03-24T18:60:00Z", "2026-03-24X18:02:00Z", "2026-3-24T18:02:00Z", "２026-03-24T18:02:00Z",
		"2026-03-24T18:02\xff", "2026-03-24T3:02:00Z", ""}
	try := func(col string, ct tenant.ColumnType, v string) {
		_, err := c.DB().Exec(`INSERT INTO t (k, `+col+`) VALUES (?, ?)`, col+v, v)
		if passesCheck(ct, v) && err != nil {
			t.Errorf("%s %q passes the Go check, but SQLite refuses it: %v", col, v, err)
		}
	}
	for _, u := range uuids {
		try("u", tenant.ColumnUUID, u)
	}
	for _, s := range stamps {
		try("ts", tenant.ColumnTimestamp, s)
	}
	for _, v := range []string{"00000000-0000-4000-8000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff"} {
		if !passesCheck(tenant.ColumnUUID, v) {
			t.Errorf("uuid %q fails the Go check", v)
		}
	}
	for _, v := range []string{"2026-03-24T18:02:00Z", "2026-03-24t18:02", "2026-03-24 18:02:00.123+02:00"} {
		if !passesCheck(tenant.ColumnTimestamp, v) {
			t.Errorf("timestamp %q fails the Go check", v)
		}
	}
}

// TestRowStateTableFormats: new databases keep _sync_row_state WITHOUT
// ROWID; one created earlier as a rowid table works the same.
func TestRowStateTableFormats(t *testing.T) {
	schema := testSchemaFrom(t, bulkTables)
	srv := newSnapServer(t)
	rows := bulkRows()
	srv.serve(1000, rows)
	want := tableContent(t, applyOneByOne(t, schema, rows))
	for _, old := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "device.db")
		if old {
			db, err := sql.Open("sqlite", "file:"+path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(`CREATE TABLE _sync_row_state (
	tbl TEXT NOT NULL,
	key TEXT NOT NULL,
	row_version INTEGER NOT NULL,
	deleted INTEGER NOT NULL,
	PRIMARY KEY (tbl, key)
) STRICT`); err != nil {
				t.Fatal(err)
			}
			db.Close()
		}
		c, err := Open(context.Background(), Config{Path: path, BaseURL: srv.URL,
			Token: func(context.Context) (string, error) { return "t", nil }, Schema: schema, WireSchema: "app"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var ddl string
		if err := c.DB().QueryRow(`SELECT sql FROM sqlite_master WHERE name = '_sync_row_state'`).Scan(&ddl); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(ddl, "WITHOUT ROWID") == old {
			t.Fatalf("old %v: _sync_row_state is %s", old, ddl)
		}
		if err := c.Attach(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := tableContent(t, c); !reflect.DeepEqual(got, want) {
			t.Fatalf("old %v: hydrated content differs from the reference", old)
		}
		if _, err := c.DB().Exec(`DELETE FROM things WHERE id = '00000004-0000-4000-8000-000000000004'`); err != nil {
			t.Fatal(err)
		}
		d := tableContent(t, c)["_sync_dirty"]
		if len(d) != 2 || d[1][1] != "00000004-0000-4000-8000-000000000004" || d[1][2] != "DELETE" || d[1][3] != int64(5) {
			t.Fatalf("old %v: dirty after a delete: %v", old, d)
		}
	}
}
