package device

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"

	"github.com/syncplane/syncplane/tenant"
)

// The end-to-end tests run the real syncplane binary against the test
// database (SYNCPLANE_TEST_DATABASE_URL) and drive devices over HTTP. They
// skip when the database is not configured, when the binary does not build,
// or while the server lacks the sync endpoints.

var e2e struct {
	once  sync.Once
	skip  string
	bin   string
	dbURL string
	addr  string
	proc  *exec.Cmd
	logMu sync.Mutex
	log   strings.Builder
}

func TestMain(m *testing.M) {
	code := m.Run()
	if e2e.proc != nil && e2e.proc.Process != nil {
		e2e.proc.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { e2e.proc.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			e2e.proc.Process.Kill()
		}
	}
	if e2e.bin != "" {
		os.RemoveAll(filepath.Dir(e2e.bin))
	}
	os.Exit(code)
}

func startServer() string {
	e2e.dbURL = os.Getenv("SYNCPLANE_TEST_DATABASE_URL")
	if e2e.dbURL == "" {
		return "SYNCPLANE_TEST_DATABASE_URL is not set"
	}
	dir, err := os.MkdirTemp("", "syncplane-device-e2e-")
	if err != nil {
		return err.Error()
	}
	e2e.bin = filepath.Join(dir, "syncplane")
	build := exec.Command("go", "build", "-o", e2e.bin, "./cmd/syncplane")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Sprintf("syncplane binary does not build (someone else's package?): %v\n%s", err, out)
	}
	// migrate up walks every tenant; tests elsewhere create and drop
	// tenants concurrently, which can fail a run. Retry, then go on: the
	// control plane is what these tests need.
	for i := 0; i < 5; i++ {
		out, err := runCLI("migrate", "up")
		if err == nil {
			break
		}
		if i == 4 {
			fmt.Fprintf(os.Stderr, "device e2e: syncplane migrate up keeps failing, continuing: %v\n%s", err, out)
		}
		time.Sleep(time.Second)
	}
	cmd := exec.Command(e2e.bin, "serve", "--http-addr", "127.0.0.1:0", "--metrics-addr", "", "--log-level", "info")
	cmd.Env = append(os.Environ(), "SYNCPLANE_DATABASE_URL="+e2e.dbURL)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err.Error()
	}
	if err := cmd.Start(); err != nil {
		return err.Error()
	}
	e2e.proc = cmd
	addrCh := make(chan string, 1)
	addrRE := regexp.MustCompile(`syncplane listening.*addr=(\S+)`)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			e2e.logMu.Lock()
			e2e.log.WriteString(line + "\n")
			e2e.logMu.Unlock()
			if m := addrRE.FindStringSubmatch(line); m != nil {
				select {
				case addrCh <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	select {
	case e2e.addr = <-addrCh:
	case <-time.After(60 * time.Second):
		return "syncplane serve did not report its address:\n" + serverLog()
	}
	return ""
}

// runCLI runs the binary with the test database.
func runCLI(args ...string) (string, error) {
	cmd := exec.Command(e2e.bin, args...)
	cmd.Env = append(os.Environ(), "SYNCPLANE_DATABASE_URL="+e2e.dbURL)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func serverLog() string {
	e2e.logMu.Lock()
	defer e2e.logMu.Unlock()
	return e2e.log.String()
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// e2eTenant is a fresh tenant with the test tables.
type e2eTenant struct {
	slug   string
	base   string
	secret string
	schema *tenant.Schema
}

// token returns a Token func for user sub.
func (e *e2eTenant) token(sub string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		now := time.Now()
		return jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub": sub, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		}).SignedString([]byte(e.secret))
	}
}

var keyRE = regexp.MustCompile(`sp_pk_\S+`)

func newTenant(t *testing.T, retained ...int) *e2eTenant {
	t.Helper()
	var setup []string
	if len(retained) > 0 {
		// No CLI sets the retained window yet.
		setup = append(setup, fmt.Sprintf(`UPDATE syncplane.tenants SET retained_bundles = %d WHERE slug = $1`, retained[0]))
	}
	return newTenantWith(t, testTables, setup...)
}

// newTenantWith creates a tenant with the given table definition; setup
// statements (control plane, $1 = the slug) run before the server first
// loads the tenant.
func newTenantWith(t testing.TB, tables string, setup ...string) *e2eTenant {
	t.Helper()
	e2e.once.Do(func() { e2e.skip = startServer() })
	if e2e.skip != "" {
		t.Skip("end-to-end: " + e2e.skip)
	}
	slug := "dev" + randHex(5)
	def, err := tenant.ParseDefinition([]byte(tables))
	if err != nil {
		t.Fatal(err)
	}
	schema, err := tenant.NewSchema(def)
	if err != nil {
		t.Fatal(err)
	}
	e := &e2eTenant{slug: slug, secret: randHex(32), schema: schema}
	defFile := filepath.Join(t.TempDir(), "tables.json")
	if err := os.WriteFile(defFile, []byte(tables), 0o600); err != nil {
		t.Fatal(err)
	}
	steps := [][]string{
		{"tenant", "create", slug, "--wire-schema", "app"},
		{"tenant", "key", "create", slug},
		{"tenant", "auth", "set", slug, "--hs256-secret", e.secret},
		{"tenant", "tables", "apply", slug, "--file", defFile, "--yes"},
	}
	t.Cleanup(func() {
		if out, err := runCLI("tenant", "delete", slug, "--confirm", slug); err != nil {
			t.Logf("syncplane tenant delete %s: %v\n%s", slug, err, out)
		}
	})
	var key string
	for _, args := range steps {
		out, err := runCLI(args...)
		if err != nil {
			t.Fatalf("syncplane %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if args[1] == "key" {
			key = keyRE.FindString(out)
		}
	}
	if key == "" {
		t.Fatal("no publishable key in the CLI output")
	}
	e.base = "http://" + e2e.addr + "/k/" + key
	for _, q := range setup {
		e.sqlControl(t, q, slug)
	}
	// Skip while the sync core is not served yet.
	tok, _ := e.token("probe")(context.Background())
	req, _ := http.NewRequest(http.MethodGet, e.base+"/sync/capabilities", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Oversync-Source-ID", "probe")
	var resp *http.Response
	for i := 0; i < 50; i++ { // a new key may take a moment to be known
		resp, err = http.DefaultClient.Do(req)
		if err == nil && resp.StatusCode != http.StatusUnauthorized {
			break
		}
		if resp != nil {
			resp.Body.Close()
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
		t.Skipf("end-to-end: sync endpoints not served yet (capabilities: %d)", resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("capabilities: %d\n%s", resp.StatusCode, serverLog())
	}
	return e
}

// device opens a device for user sub with optional config tweaks.
func (e *e2eTenant) device(t *testing.T, sub string, tweak ...func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		Path: filepath.Join(t.TempDir(), "device.db"), BaseURL: e.base, Token: e.token(sub),
		Schema: e.schema, WireSchema: "app", Logf: t.Logf,
	}
	for _, f := range tweak {
		f(&cfg)
	}
	c, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dump renders every synced table of a device, sorted, for comparison.
func dump(t *testing.T, c *Client) string {
	t.Helper()
	var out []string
	for _, tb := range c.tables {
		rows, err := c.DB().Query(strings.Replace(selectSQL(tb), " WHERE "+qi(tb.Key.Name)+" = ?", "", 1))
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			vals := make([]any, len(tb.Columns))
			ptrs := make([]any, len(vals))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			p, err := encodePayload(tb, vals)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, tb.Name+" "+string(p))
		}
		rows.Close()
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func assertConverged(t *testing.T, devices ...*Client) {
	t.Helper()
	want := dump(t, devices[0])
	for i, d := range devices[1:] {
		if got := dump(t, d); got != want {
			t.Fatalf("device %d differs from device 0:\n--- device 0\n%s\n--- device %d\n%s", i+1, want, i+1, got)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%v\nserver log:\n%s", err, serverLog())
	}
}

func count(t *testing.T, c *Client, q string, args ...any) int {
	t.Helper()
	var n int
	if err := c.DB().QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func newUUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

const ts0 = "2026-03-24T18:02:00.123456789Z"

func insertUser(t *testing.T, c *Client, id, name string) {
	t.Helper()
	mustExec(t, c.DB(), `INSERT INTO users (id, name, created_at) VALUES (?, ?, ?)`, id, name, ts0)
}

func insertNote(t *testing.T, c *Client, id, user, title string) {
	t.Helper()
	mustExec(t, c.DB(), `INSERT INTO notes (id, user_id, title, updated_at) VALUES (?, ?, ?, ?)`, id, user, title, ts0)
}

func TestE2EFreshInstallSeedAndHydrate(t *testing.T) {
	e := newTenant(t)
	ctx := context.Background()
	a := e.device(t, "alice")
	uid := newUUID()
	insertUser(t, a, uid, "Alice")
	insertNote(t, a, newUUID(), uid, "first")
	insertNote(t, a, newUUID(), uid, "second")
	must(t, a.Attach(ctx)) // initialize_local + seed push
	st, err := a.State(ctx)
	must(t, err)
	if !st.Attached || st.Checkpoint != 1 || st.NextSourceBundleID != 2 || st.Dirty+st.Outbox != 0 || st.InitializationID != "" {
		t.Fatalf("after seed: %+v", st)
	}
	if v, del, _ := a.RowVersion(ctx, "users", uid); v != 1 || del {
		t.Fatalf("row version after seed: %d %v", v, del)
	}
	b := e.device(t, "alice")
	insertUser(t, b, newUUID(), "anonymous, discarded")
	must(t, b.Attach(ctx)) // remote_authoritative: snapshot
	if cp := b.Checkpoint(); cp != 1 {
		t.Fatalf("hydrated checkpoint %d", cp)
	}
	assertConverged(t, a, b)

	// A later edit on b reaches a.
	mustExec(t, b.DB(), `UPDATE users SET email = 'alice@example.com' WHERE id = ?`, uid)
	must(t, b.Sync(ctx))
	must(t, a.Sync(ctx))
	assertConverged(t, a, b)
	if a.Checkpoint() != 2 || b.Checkpoint() != 2 {
		t.Fatalf("checkpoints %d %d", a.Checkpoint(), b.Checkpoint())
	}
	// Another user of the tenant sees nothing.
	c := e.device(t, "bob")
	must(t, c.Attach(ctx))
	if n := count(t, c, `SELECT COUNT(*) FROM users`); n != 0 {
		t.Fatalf("bob sees %d users", n)
	}
}

func TestE2EEmptyAttachAndOfflineEdits(t *testing.T) {
	e := newTenant(t)
	ctx := context.Background()
	a := e.device(t, "u")
	must(t, a.Attach(ctx)) // initialize_empty
	b := e.device(t, "u")
	must(t, b.Attach(ctx)) // remote_authoritative, empty
	if a.Checkpoint() != 0 || b.Checkpoint() != 0 {
		t.Fatal("empty attach moved the checkpoint")
	}
	ids := make([]string, 6)
	for i := range ids {
		ids[i] = newUUID()
		insertUser(t, a, ids[i], fmt.Sprintf("user %d", i))
	}
	must(t, a.Sync(ctx))
	must(t, b.Sync(ctx))
	assertConverged(t, a, b)

	// Both go offline and edit different rows; b also inserts and deletes.
	mustExec(t, a.DB(), `UPDATE users SET name = 'a-edit' WHERE id = ?`, ids[0])
	mustExec(t, a.DB(), `DELETE FROM users WHERE id = ?`, ids[1])
	mustExec(t, b.DB(), `UPDATE users SET name = 'b-edit' WHERE id = ?`, ids[2])
	mustExec(t, b.DB(), `UPDATE users SET name = 'b-edit-2' WHERE id = ?`, ids[2])
	mustExec(t, b.DB(), `DELETE FROM users WHERE id = ?`, ids[3])
	tmp := newUUID()
	insertUser(t, b, tmp, "temp")
	mustExec(t, b.DB(), `DELETE FROM users WHERE id = ?`, tmp)
	insertUser(t, b, newUUID(), "new on b")
	if n, _ := b.PendingChanges(ctx); n != 3 {
		t.Fatalf("b pending %d, want 3", n)
	}
	must(t, a.Sync(ctx))
	must(t, b.Sync(ctx))
	must(t, a.Sync(ctx))
	assertConverged(t, a, b)
	if n := count(t, a, `SELECT COUNT(*) FROM users`); n != 5 {
		t.Fatalf("%d users, want 5", n)
	}
}

func TestE2EConflicts(t *testing.T) {
	merge := Merge(func(local, server Row) Row {
		m := Row{}
		for k, v := range server {
			m[k] = v
		}
		m["name"] = fmt.Sprint(server["name"], "+", local["name"])
		return m
	})
	cases := []struct {
		name     string
		resolver Resolver
		want     string
	}{
		{"accept-server", AcceptServer, "from-a"},
		{"keep-local", KeepLocal, "from-b"},
		{"merged", merge, "from-a+from-b"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newTenant(t)
			ctx := context.Background()
			a := e.device(t, "u")
			uid := newUUID()
			insertUser(t, a, uid, "v1")
			must(t, a.Attach(ctx))
			var seen []Conflict
			b := e.device(t, "u", func(c *Config) {
				c.Resolver = func(ctx context.Context, cf Conflict) (Resolution, error) {
					seen = append(seen, cf)
					return tc.resolver(ctx, cf)
				}
			})
			must(t, b.Attach(ctx))
			mustExec(t, a.DB(), `UPDATE users SET name = 'from-a' WHERE id = ?`, uid)
			mustExec(t, b.DB(), `UPDATE users SET name = 'from-b' WHERE id = ?`, uid)
			must(t, a.Sync(ctx))
			must(t, b.Sync(ctx))
			must(t, a.Sync(ctx))
			if len(seen) != 1 || seen[0].ServerRowVersion != 2 || seen[0].BaseRowVersion != 1 || seen[0].Op != "UPDATE" ||
				seen[0].ServerRow["name"] != "from-a" || seen[0].LocalRow["name"] != "from-b" {
				t.Fatalf("conflicts seen: %+v", seen)
			}
			assertConverged(t, a, b)
			var name string
			must(t, a.DB().QueryRow(`SELECT name FROM users WHERE id = ?`, uid).Scan(&name))
			if name != tc.want {
				t.Fatalf("name %q, want %q", name, tc.want)
			}
			if n, _ := b.PendingChanges(ctx); n != 0 {
				t.Fatalf("b still has %d pending", n)
			}
		})
	}
	t.Run("delete-vs-update", func(t *testing.T) {
		e := newTenant(t)
		ctx := context.Background()
		a := e.device(t, "u")
		uid := newUUID()
		insertUser(t, a, uid, "v1")
		must(t, a.Attach(ctx))
		b := e.device(t, "u", func(c *Config) { c.Resolver = KeepLocal })
		must(t, b.Attach(ctx))
		mustExec(t, a.DB(), `DELETE FROM users WHERE id = ?`, uid)
		mustExec(t, b.DB(), `UPDATE users SET name = 'resurrected' WHERE id = ?`, uid)
		must(t, a.Sync(ctx))
		must(t, b.Sync(ctx)) // UPDATE of a deleted row -> keep local -> INSERT on the tombstone
		must(t, a.Sync(ctx))
		assertConverged(t, a, b)
		if n := count(t, a, `SELECT COUNT(*) FROM users WHERE name = 'resurrected'`); n != 1 {
			t.Fatal("keep-local over a delete did not re-insert the row")
		}
	})
}

func TestE2EForeignKeysAndCascade(t *testing.T) {
	e := newTenant(t)
	ctx := context.Background()
	a := e.device(t, "u")
	must(t, a.Attach(ctx))
	b := e.device(t, "u")
	must(t, b.Attach(ctx))
	uid, nid := newUUID(), newUUID()
	// Child first, parent second, one local transaction, one bundle.
	tx, err := a.DB().Begin()
	must(t, err)
	_, err = tx.Exec(`INSERT INTO notes (id, user_id, title, updated_at) VALUES (?, ?, 'child', ?)`, nid, uid, ts0)
	must(t, err)
	_, err = tx.Exec(`INSERT INTO users (id, name, created_at) VALUES (?, 'parent', ?)`, uid, ts0)
	must(t, err)
	must(t, tx.Commit())
	must(t, a.Sync(ctx))
	must(t, b.Sync(ctx))
	assertConverged(t, a, b)
	// Deleting the parent cascades locally and on the server.
	mustExec(t, b.DB(), `DELETE FROM users WHERE id = ?`, uid)
	if n := count(t, b, `SELECT COUNT(*) FROM notes`); n != 0 {
		t.Fatal("local cascade did not run")
	}
	must(t, b.Sync(ctx))
	must(t, a.Sync(ctx))
	assertConverged(t, a, b)
	if n := count(t, a, `SELECT COUNT(*) FROM notes`); n != 0 {
		t.Fatal("cascade did not reach device a")
	}
	if v, del, _ := a.RowVersion(ctx, "notes", nid); !del || v == 0 {
		t.Fatalf("child row state %d %v", v, del)
	}
}

func TestE2EMultiChunkPush(t *testing.T) {
	e := newTenant(t)
	ctx := context.Background()
	a := e.device(t, "u", func(c *Config) { c.ChunkSize = 1000 })
	must(t, a.Attach(ctx))
	const n = 5000
	tx, err := a.DB().Begin()
	must(t, err)
	for i := 0; i < n; i++ {
		if _, err := tx.Exec(`INSERT INTO tags (name, color) VALUES (?, ?)`, fmt.Sprintf("tag-%05d", i), "c"); err != nil {
			t.Fatal(err)
		}
	}
	must(t, tx.Commit())
	start := time.Now()
	must(t, a.Sync(ctx))
	t.Logf("pushed %d rows in %s", n, time.Since(start))
	if a.Checkpoint() != 1 {
		t.Fatalf("checkpoint %d", a.Checkpoint())
	}
	b := e.device(t, "u")
	start = time.Now()
	must(t, b.Attach(ctx)) // snapshot in 1000-row chunks
	t.Logf("hydrated %d rows in %s", n, time.Since(start))
	c := e.device(t, "u")
	must(t, c.Attach(ctx))
	assertConverged(t, a, b, c)
	if got := count(t, b, `SELECT COUNT(*) FROM tags`); got != n {
		t.Fatalf("hydrated %d rows", got)
	}
	// Pull of a large bundle: delete everything on a, pull on b.
	mustExec(t, a.DB(), `DELETE FROM tags`)
	start = time.Now()
	must(t, a.Sync(ctx))
	t.Logf("pushed %d deletes in %s", n, time.Since(start))
	start = time.Now()
	must(t, b.Sync(ctx))
	t.Logf("pulled a %d-row bundle in %s", n, time.Since(start))
	if got := count(t, b, `SELECT COUNT(*) FROM tags`); got != 0 {
		t.Fatalf("%d rows left after pulling the delete", got)
	}
}

func TestE2EEveryColumnType(t *testing.T) {
	e := newTenant(t)
	ctx := context.Background()
	a := e.device(t, "u")
	must(t, a.Attach(ctx))
	b := e.device(t, "u")
	must(t, b.Attach(ctx))
	uid := newUUID()
	insertUser(t, a, uid, "Zoë 🚀 <&> \u2028 \"quoted\" \\ back")
	type noteVals struct {
		body  any
		big   any
		score any
		blob  any
		meta  any
	}
	cases := []noteVals{
		{nil, nil, nil, nil, nil},
		{"", int64(9223372036854775807), 1.5, []byte{}, `{}`},
		{"unicode ✓ 漢字 \x01", int64(-9223372036854775808), -0.000001, []byte{0, 255, 1, 2, 3}, `{"a":[1,2.5,"x"],"b":null}`},
		{"big", int64(9007199254740993), 1e21, []byte("\x00\x00binary\xff"), `[1,"two",true]`},
		{"tiny", int64(0), 1.5e-7, make([]byte, 4096), `"just a string"`},
	}
	ids := make([]string, len(cases))
	for i, v := range cases {
		ids[i] = newUUID()
		mustExec(t, a.DB(), `INSERT INTO notes (id, user_id, title, body, pinned, score, big, attachment, meta, updated_at)
			VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?)`, ids[i], uid, fmt.Sprintf("case %d", i), v.body, v.score, v.big, v.blob, v.meta,
			"2026-03-24T18:02:00.123456789+02:00")
	}
	must(t, a.Sync(ctx))
	must(t, b.Sync(ctx)) // through pull
	assertConverged(t, a, b)
	c := e.device(t, "u")
	must(t, c.Attach(ctx)) // through a snapshot
	assertConverged(t, a, c)
	var big int64
	must(t, c.DB().QueryRow(`SELECT big FROM notes WHERE id = ?`, ids[2]).Scan(&big))
	if big != -9223372036854775808 {
		t.Fatalf("int64 min came back as %d", big)
	}
	must(t, c.DB().QueryRow(`SELECT big FROM notes WHERE id = ?`, ids[3]).Scan(&big))
	if big != 9007199254740993 {
		t.Fatalf("2^53+1 came back as %d", big)
	}
	var blob []byte
	must(t, c.DB().QueryRow(`SELECT attachment FROM notes WHERE id = ?`, ids[3]).Scan(&blob))
	if string(blob) != "\x00\x00binary\xff" {
		t.Fatalf("blob came back as %q", blob)
	}
	var nulls int
	must(t, c.DB().QueryRow(`SELECT COUNT(*) FROM notes WHERE body IS NULL AND big IS NULL AND score IS NULL AND attachment IS NULL AND meta IS NULL`).Scan(&nulls))
	if nulls != 1 {
		t.Fatalf("%d all-null rows", nulls)
	}
	// Text keys with unusual characters.
	mustExec(t, a.DB(), `INSERT INTO tags (name, color) VALUES ('Ünïcødé key/with spaces & <html>', NULL)`)
	must(t, a.Sync(ctx))
	must(t, c.Sync(ctx))
	assertConverged(t, a, c)
}

func TestE2EUserSwitch(t *testing.T) {
	e := newTenant(t)
	ctx := context.Background()
	user := "alice"
	tok := func(ctx context.Context) (string, error) { return e.token(user)(ctx) }
	d := e.device(t, "", func(c *Config) { c.Token = tok })
	must(t, d.Attach(ctx))
	for i := 0; i < 3; i++ { // three pushes: the counter moves to 4
		insertUser(t, d, newUUID(), fmt.Sprintf("alice %d", i))
		must(t, d.Sync(ctx))
	}
	src := d.SourceID()
	must(t, d.Detach(ctx))
	if n := count(t, d, `SELECT COUNT(*) FROM users`); n != 0 {
		t.Fatal("detach kept alice's rows")
	}
	// Bob already has data from another device.
	other := e.device(t, "bob")
	insertUser(t, other, newUUID(), "bob's")
	must(t, other.Attach(ctx))

	user = "bob"
	must(t, d.Attach(ctx))
	if n := count(t, d, `SELECT COUNT(*) FROM users`); n != 1 {
		t.Fatalf("bob's device sees %d users", n)
	}
	// The device's counter (4) is ahead for bob: the push is refused with
	// source_sequence_out_of_order and the device rotates.
	insertUser(t, d, newUUID(), "bob on shared device")
	must(t, d.Sync(ctx))
	st, _ := d.State(ctx)
	if st.SourceID == src || st.NextSourceBundleID != 2 {
		t.Fatalf("after rotation: %+v (old source %s)", st, src)
	}
	must(t, other.Sync(ctx))
	assertConverged(t, d, other)
	if n := count(t, other, `SELECT COUNT(*) FROM users WHERE name LIKE 'alice%'`); n != 0 {
		t.Fatal("alice's rows leaked to bob")
	}
}

// dropFirstCommitResponse performs the first commit request but reports a
// network error instead of its answer: the "lost commit response" of 9.
type dropFirstCommitResponse struct {
	mu      sync.Mutex
	dropped bool
}

func (d *dropFirstCommitResponse) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || !strings.HasSuffix(r.URL.Path, "/commit") {
		return resp, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dropped {
		return resp, err
	}
	d.dropped = true
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return nil, io.ErrUnexpectedEOF
}

func TestE2ELostCommitResponse(t *testing.T) {
	e := newTenant(t)
	ctx := context.Background()
	rt := &dropFirstCommitResponse{}
	a := e.device(t, "u", func(c *Config) { c.HTTPClient = &http.Client{Transport: rt} })
	must(t, a.Attach(ctx))
	uid := newUUID()
	insertUser(t, a, uid, "once")
	insertNote(t, a, newUUID(), uid, "note")
	must(t, a.Sync(ctx)) // commit happens, answer lost, retry gets already_committed
	if !rt.dropped {
		t.Fatal("no commit was dropped")
	}
	st, _ := a.State(ctx)
	if st.NextSourceBundleID != 2 || st.Checkpoint != 1 || st.Outbox != 0 {
		t.Fatalf("after replay: %+v", st)
	}
	b := e.device(t, "u")
	must(t, b.Attach(ctx))
	assertConverged(t, a, b)
	if b.Checkpoint() != 1 {
		t.Fatalf("the push committed twice? checkpoint %d", b.Checkpoint())
	}
}

func TestE2EWatch(t *testing.T) {
	e := newTenant(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := e.device(t, "u")
	must(t, a.Attach(ctx))
	b := e.device(t, "u")
	must(t, b.Attach(ctx))
	caps, err := a.Capabilities(ctx)
	must(t, err)
	if !caps["bundle_change_watch"] {
		t.Skip("server does not offer watch for this tenant")
	}
	events := make(chan WatchEvent, 16)
	wctx, wcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Watch(wctx, func(ev WatchEvent) { events <- ev }) }()
	time.Sleep(300 * time.Millisecond) // let the stream open
	uid := newUUID()
	insertUser(t, b, uid, "watched")
	must(t, b.Sync(ctx))
	deadline := time.After(20 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond) // a reconnect can catch up without an event
	defer tick.Stop()
	for a.Checkpoint() < 1 {
		select {
		case <-tick.C:
		case ev := <-events:
			if ev.Err != nil {
				t.Fatalf("sync on event: %v", ev.Err)
			}
		case <-deadline:
			t.Fatal("watch did not deliver the commit")
		}
	}
	wcancel()
	<-done
	assertConverged(t, a, b)
}

func TestE2EHistoryPrunedRebuild(t *testing.T) {
	e := newTenant(t, 2) // retained window: 2 bundles per user
	ctx := context.Background()
	a := e.device(t, "u")
	uid := newUUID()
	insertUser(t, a, uid, "v0")
	must(t, a.Attach(ctx)) // bundle 1
	b := e.device(t, "u")
	must(t, b.Attach(ctx)) // checkpoint 1
	for i := 1; i <= 5; i++ {
		mustExec(t, a.DB(), `UPDATE users SET name = ? WHERE id = ?`, fmt.Sprintf("v%d", i), uid)
		insertUser(t, a, newUUID(), fmt.Sprintf("extra %d", i))
		must(t, a.Sync(ctx))
	}
	// b's checkpoint (1) is below the floor now: pull answers
	// history_pruned and b rebuilds from a snapshot, keeping its source.
	src := b.SourceID()
	must(t, b.Sync(ctx))
	assertConverged(t, a, b)
	if b.Checkpoint() != a.Checkpoint() || b.SourceID() != src {
		t.Fatalf("after rebuild: checkpoint %d (a %d), source %s (was %s)", b.Checkpoint(), a.Checkpoint(), b.SourceID(), src)
	}
	// Unsent local intent survives a rebuild: b edits offline while a
	// moves the floor again.
	mustExec(t, b.DB(), `UPDATE users SET email = 'kept@example.com' WHERE id = ?`, uid)
	for i := 6; i <= 9; i++ {
		insertUser(t, a, newUUID(), fmt.Sprintf("extra %d", i))
		must(t, a.Sync(ctx))
	}
	must(t, b.setState(ctx, `rebuild_required = 1`)) // as if a pull had just been refused
	must(t, b.Sync(ctx))
	must(t, a.Sync(ctx))
	assertConverged(t, a, b)
	if n := count(t, a, `SELECT COUNT(*) FROM users WHERE email = 'kept@example.com'`); n != 1 {
		t.Fatal("local intent lost in the rebuild")
	}
}

// failPushCreate answers 503 to push-session creates while on.
type failPushCreate struct {
	mu sync.Mutex
	on bool
	n  int
}

func (f *failPushCreate) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	on := f.on
	if on && r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/sync/push-sessions") {
		f.n++
		f.mu.Unlock()
		return &http.Response{StatusCode: 503, Header: http.Header{"Content-Type": {"application/json"}}, Request: r,
			Body: io.NopCloser(strings.NewReader(`{"error":"service_unavailable","message":"test"}`))}, nil
	}
	f.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func TestE2EInitializationLease(t *testing.T) {
	e := newTenant(t)
	ctx := context.Background()
	ft := &failPushCreate{on: true}
	a := e.device(t, "u", func(c *Config) { c.HTTPClient = &http.Client{Transport: ft} })
	insertUser(t, a, newUUID(), "from a")
	// a wins the lease but its seed push cannot get through (503 x3).
	if err := a.Attach(ctx); err == nil || !IsCode(err, "service_unavailable") || ft.n != 3 {
		t.Fatalf("seed push: %v (after %d attempts)", err, ft.n)
	}
	st, _ := a.State(ctx)
	if st.InitializationID == "" || !st.Attached {
		t.Fatalf("a lost its lease: %+v", st)
	}
	// b, with its own local rows, must wait.
	b := e.device(t, "u")
	insertUser(t, b, newUUID(), "from b")
	var rl *RetryLaterError
	if err := b.Attach(ctx); !errors.As(err, &rl) || rl.After < time.Second {
		t.Fatalf("b attach while a initializes: %v", err)
	}
	// a finishes its seed; b then hydrates (its anonymous rows are dropped).
	ft.mu.Lock()
	ft.on = false
	ft.mu.Unlock()
	must(t, a.Attach(ctx))
	if st, _ := a.State(ctx); st.InitializationID != "" || st.Checkpoint != 1 {
		t.Fatalf("after seed: %+v", st)
	}
	must(t, b.Attach(ctx))
	assertConverged(t, a, b)
	if n := count(t, b, `SELECT COUNT(*) FROM users WHERE name = 'from b'`); n != 0 {
		t.Fatal("b kept its anonymous rows")
	}
}

func TestE2ESourceRecovery(t *testing.T) {
	e := newTenant(t, 2)
	ctx := context.Background()
	a := e.device(t, "u")
	must(t, a.Attach(ctx))
	b := e.device(t, "u")
	must(t, b.Attach(ctx))
	for i := 0; i < 5; i++ {
		insertUser(t, a, newUUID(), fmt.Sprintf("a %d", i))
		must(t, a.Sync(ctx))
	}

	// A counter ahead of the server (e.g. a restored backup of another
	// database): source_sequence_out_of_order -> rotation.
	must(t, a.setState(ctx, `next_source_bundle_id = 42`))
	src := a.SourceID()
	pending := newUUID()
	insertUser(t, a, pending, "pushed after rotation")
	must(t, a.Sync(ctx))
	st, _ := a.State(ctx)
	if st.SourceID == src || st.NextSourceBundleID != 2 || st.Dirty+st.Outbox != 0 {
		t.Fatalf("after out-of-order rotation: %+v (old source %s)", st, src)
	}

	// A counter behind the retained history: the tuple was committed but
	// is pruned, so push create answers history_pruned -> rotated rebuild.
	for i := 0; i < 4; i++ {
		insertUser(t, a, newUUID(), fmt.Sprintf("more %d", i))
		must(t, a.Sync(ctx))
	}
	must(t, a.setState(ctx, `next_source_bundle_id = 1`))
	src = a.SourceID()
	mustExec(t, a.DB(), `UPDATE users SET email = 'after-pruned@example.com' WHERE id = ?`, pending)
	must(t, a.Sync(ctx))
	st, _ = a.State(ctx)
	if st.SourceID == src || st.NextSourceBundleID != 2 {
		t.Fatalf("after history_pruned rotation: %+v (old source %s)", st, src)
	}

	// An administrative retire that reserves a replacement (protocol 10):
	// the push gets source_retired naming it, and the device adopts it.
	cur, repl := a.SourceID(), newUUID()
	e.sql(t, `UPDATE %s._sync_source SET state = 'retired', replaced_by_source_id = $3, retire_reason = 'admin'
		WHERE user_id = $1 AND source_id = $2`, "u", cur, repl)
	e.sql(t, `INSERT INTO %s._sync_source (user_id, source_id, state) VALUES ($1, $2, 'reserved')`, "u", repl)
	insertUser(t, a, newUUID(), "after the admin retire")
	must(t, a.Sync(ctx))
	if got := a.SourceID(); got != repl {
		t.Fatalf("source %s after the admin retire, want the replacement %s", got, repl)
	}

	// A retire without a replacement (what the console does today) leaves
	// the device unable to rotate: its rotation gets source_retired too.
	cur = a.SourceID()
	e.sql(t, `UPDATE %s._sync_source SET state = 'retired', retire_reason = 'admin' WHERE user_id = $1 AND source_id = $2`, "u", cur)
	insertUser(t, a, newUUID(), "stuck")
	if err := a.Sync(ctx); !IsCode(err, "source_retired") {
		t.Fatalf("retire without replacement: %v", err)
	}
	mustExec(t, a.DB(), `DELETE FROM users WHERE name = 'stuck'`)
	must(t, a.setState(ctx, `rotation_new_source_id = '', rotation_reason = ''`))
	must(t, a.tx(ctx, func(tx *txn) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM _sync_outbox`)
		return err
	}))
	must(t, b.Sync(ctx))
	assertConverged(t, a, b)
	if n := count(t, b, `SELECT COUNT(*) FROM users WHERE email = 'after-pruned@example.com'`); n != 1 {
		t.Fatal("intent re-applied after the rotated rebuild did not reach b")
	}
}

func TestE2EReplayMismatchRefused(t *testing.T) {
	e := newTenant(t)
	ctx := context.Background()
	a := e.device(t, "u")
	must(t, a.Attach(ctx))
	insertUser(t, a, newUUID(), "one")
	must(t, a.Sync(ctx)) // tuple 1 committed
	// Reusing tuple 1 for different rows: already_committed with rows that
	// are not the outbox's. The client must refuse, not apply.
	must(t, a.setState(ctx, `next_source_bundle_id = 1`))
	insertUser(t, a, newUUID(), "two")
	err := a.Sync(ctx)
	var rm *ReplayMismatchError
	if !errors.As(err, &rm) {
		t.Fatalf("want a ReplayMismatchError, got %v", err)
	}
	if n, _ := a.PendingChanges(ctx); n != 1 {
		t.Fatalf("outbox not kept: %d pending", n)
	}
}

// sql runs a statement in the tenant's PostgreSQL schema (%s in query).
func (e *e2eTenant) sql(t *testing.T, query string, args ...any) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), e2e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), fmt.Sprintf(query, pgx.Identifier{"t_" + e.slug}.Sanitize()), args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func TestE2EPoisonRowAndDiscard(t *testing.T) {
	e := newTenant(t)
	ctx := context.Background()
	a := e.device(t, "u")
	uid := newUUID()
	insertUser(t, a, uid, "good")
	must(t, a.Attach(ctx))
	// A value the server refuses at commit (NUL cannot be stored in text).
	mustExec(t, a.DB(), `UPDATE users SET name = ? WHERE id = ?`, "bad\x00name", uid)
	insertUser(t, a, newUUID(), "innocent bystander")
	err := a.Sync(ctx)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 400 {
		t.Fatalf("want a 400 for the poison row, got %v", err)
	}
	if err := a.Sync(ctx); err == nil {
		t.Fatal("the poison push went through on retry")
	}
	must(t, a.DiscardLocalChanges(ctx))
	if n, _ := a.PendingChanges(ctx); n != 0 {
		t.Fatalf("%d changes pending after discard", n)
	}
	var name string
	must(t, a.DB().QueryRow(`SELECT name FROM users WHERE id = ?`, uid).Scan(&name))
	if name != "good" || count(t, a, `SELECT COUNT(*) FROM users`) != 1 {
		t.Fatalf("after discard: name %q, %d users", name, count(t, a, `SELECT COUNT(*) FROM users`))
	}
	insertUser(t, a, newUUID(), "after discard")
	must(t, a.Sync(ctx))
}

const treeTables = `{"tables": [
  {"name": "folders", "sync_key": "path", "columns": [
    {"name": "path", "type": "text"},
    {"name": "parent", "type": "text", "nullable": true},
    {"name": "label", "type": "text"}],
   "foreign_keys": [{"column": "parent", "references": "folders", "on_delete": "set null", "on_update": "cascade"}]},
  {"name": "files", "sync_key": "id", "columns": [
    {"name": "id", "type": "uuid"},
    {"name": "folder", "type": "text"},
    {"name": "owner", "type": "uuid", "nullable": true}],
   "foreign_keys": [{"column": "folder", "references": "folders", "on_delete": "cascade", "on_update": "cascade"},
                    {"column": "owner", "references": "owners", "on_delete": "no action"}]},
  {"name": "owners", "sync_key": "id", "columns": [
    {"name": "id", "type": "uuid"},
    {"name": "home", "type": "uuid", "nullable": true}],
   "foreign_keys": [{"column": "home", "references": "files", "on_delete": "set null"}]}
]}`

func TestE2ESelfReferenceCyclesAndKeyChange(t *testing.T) {
	e := newTenantWith(t, treeTables)
	ctx := context.Background()
	a := e.device(t, "u")
	must(t, a.Attach(ctx))
	b := e.device(t, "u")
	must(t, b.Attach(ctx))
	db := a.DB()
	// A tree (self-reference) and an owner <-> file cycle, in one bundle.
	f1, o1 := newUUID(), newUUID()
	tx, err := db.Begin()
	must(t, err)
	for _, q := range []struct {
		q    string
		args []any
	}{
		{`INSERT INTO folders (path, parent, label) VALUES ('/a/b', '/a', 'b')`, nil},
		{`INSERT INTO folders (path, parent, label) VALUES ('/a', NULL, 'a')`, nil},
		{`INSERT INTO files (id, folder, owner) VALUES (?, '/a/b', ?)`, []any{f1, o1}},
		{`INSERT INTO owners (id, home) VALUES (?, ?)`, []any{o1, f1}},
	} {
		if _, err := tx.Exec(q.q, q.args...); err != nil {
			t.Fatalf("%s: %v", q.q, err)
		}
	}
	must(t, tx.Commit())
	must(t, a.Sync(ctx))
	must(t, b.Sync(ctx))
	assertConverged(t, a, b)

	// Rename a key with children: ON UPDATE CASCADE locally, a delete of
	// the old key plus an insert of the new one on the wire.
	mustExec(t, db, `UPDATE folders SET path = '/a/c' WHERE path = '/a/b'`)
	if n := count(t, a, `SELECT COUNT(*) FROM files WHERE folder = '/a/c'`); n != 1 {
		t.Fatal("local ON UPDATE CASCADE did not run")
	}
	must(t, a.Sync(ctx))
	must(t, b.Sync(ctx))
	assertConverged(t, a, b)

	// Deleting the root: SET NULL on the child folder happens on the server
	// and arrives as an UPDATE in the same bundle.
	mustExec(t, b.DB(), `DELETE FROM folders WHERE path = '/a'`)
	must(t, b.Sync(ctx))
	must(t, a.Sync(ctx))
	assertConverged(t, a, b)
	var parent sql.NullString
	must(t, a.DB().QueryRow(`SELECT parent FROM folders WHERE path = '/a/c'`).Scan(&parent))
	if parent.Valid {
		t.Fatalf("parent still %q after SET NULL", parent.String)
	}
	// Breaking the cycle and deleting both sides in one bundle.
	tx, err = db.Begin()
	must(t, err)
	_, err = tx.Exec(`DELETE FROM owners WHERE id = ?`, o1) // files.owner references it: checked at commit
	must(t, err)
	_, err = tx.Exec(`DELETE FROM files WHERE id = ?`, f1)
	must(t, err)
	must(t, tx.Commit())
	must(t, a.Sync(ctx))
	must(t, b.Sync(ctx))
	assertConverged(t, a, b)
	if n := count(t, b, `SELECT COUNT(*) FROM owners`) + count(t, b, `SELECT COUNT(*) FROM files`); n != 0 {
		t.Fatalf("%d cycle rows left", n)
	}
}

// A device switching to a brand-new user with local rows seeds that user
// while its counter is still ahead from the previous user.
func TestE2EUserSwitchSeedWithStaleCounter(t *testing.T) {
	e := newTenant(t)
	ctx := context.Background()
	user := "carol"
	d := e.device(t, "", func(c *Config) { c.Token = func(ctx context.Context) (string, error) { return e.token(user)(ctx) } })
	must(t, d.Attach(ctx))
	for i := 0; i < 3; i++ {
		insertUser(t, d, newUUID(), "carol's")
		must(t, d.Sync(ctx))
	}
	must(t, d.Detach(ctx))
	user = "dave"
	insertUser(t, d, newUUID(), "written before dave signed in")
	must(t, d.Attach(ctx)) // initialize_local, seed refused as out of order, finished empty, pushed after rotation
	st, _ := d.State(ctx)
	if !st.Attached || st.InitializationID != "" || st.Dirty+st.Outbox != 0 {
		t.Fatalf("after the seed: %+v", st)
	}
	other := e.device(t, "dave")
	must(t, other.Attach(ctx))
	assertConverged(t, d, other)
	if n := count(t, other, `SELECT COUNT(*) FROM users`); n != 1 {
		t.Fatalf("dave has %d users", n)
	}
}

func TestE2EWatchDisabledPolls(t *testing.T) {
	e := newTenantWith(t, testTables, `UPDATE syncplane.tenants SET watch_enabled = false WHERE slug = $1`)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := e.device(t, "u")
	must(t, a.Attach(ctx))
	caps, err := a.Capabilities(ctx)
	must(t, err)
	if caps["bundle_change_watch"] {
		t.Skip("watch still enabled (tenant settings cached?)")
	}
	old := PollInterval
	PollInterval = 200 * time.Millisecond
	defer func() { PollInterval = old }()
	wctx, wcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Watch(wctx, nil) }()
	b := e.device(t, "u")
	must(t, b.Attach(ctx))
	insertUser(t, b, newUUID(), "polled")
	must(t, b.Sync(ctx))
	deadline := time.Now().Add(10 * time.Second)
	for a.Checkpoint() < 1 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	wcancel()
	<-done
	if a.Checkpoint() < 1 {
		t.Fatal("polling did not pick up the commit")
	}
	assertConverged(t, a, b)
}

// sqlControl runs a statement on the control plane before the server
// loads the tenant.
func (e *e2eTenant) sqlControl(t testing.TB, query string, args ...any) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), e2e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}
