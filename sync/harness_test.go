package sync

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/web/server"
)

var (
	poolOnce gosync.Once
	poolErr  error
	sharedDB *pgxpool.Pool
)

func testPool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	dsn := os.Getenv("SYNCPLANE_TEST_DATABASE_URL")
	if dsn == "" {
		tb.Skip("SYNCPLANE_TEST_DATABASE_URL is not set")
	}
	poolOnce.Do(func() {
		cfg, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			poolErr = err
			return
		}
		cfg.MaxConns = 20 // the database is shared with other test processes
		// Unqualified runtime SQL must fail loudly.
		cfg.ConnConfig.RuntimeParams["search_path"] = ""
		sharedDB, poolErr = pgxpool.NewWithConfig(context.Background(), cfg)
	})
	require.NoError(tb, poolErr)
	return sharedDB
}

// testDefinition is the business schema most tests use.
const testDefinition = `{"tables": [
 {"name": "users", "sync_key": "id", "columns": [
   {"name": "id", "type": "uuid"},
   {"name": "name", "type": "text"},
   {"name": "age", "type": "integer", "nullable": true},
   {"name": "score", "type": "real", "nullable": true},
   {"name": "avatar", "type": "blob", "nullable": true},
   {"name": "meta", "type": "json", "nullable": true},
   {"name": "born", "type": "timestamp", "nullable": true}
 ], "indexes": [{"columns": ["name"], "unique": true}]},
 {"name": "posts", "sync_key": "id", "columns": [
   {"name": "id", "type": "uuid"},
   {"name": "author_id", "type": "uuid", "nullable": true},
   {"name": "title", "type": "text"}
 ], "foreign_keys": [{"column": "author_id", "references": "users", "on_delete": "cascade"}]},
 {"name": "tags", "sync_key": "name", "columns": [
   {"name": "name", "type": "text"},
   {"name": "parent", "type": "text", "nullable": true}
 ], "foreign_keys": [{"column": "parent", "references": "tags"}]}
]}`

// env is one provisioned tenant served through a real HTTP server.
type env struct {
	t      testing.TB
	pool   *pgxpool.Pool
	tenant *tenant.Tenant
	schema *tenant.Schema
	h      *Handler
	srv    *httptest.Server
}

type envOpt func(*envConfig)

type envConfig struct {
	cfg      Config
	def      string
	retained int
	watch    bool
	handler  *Handler
	slug     string
}

func withConfig(f func(*Config)) envOpt   { return func(c *envConfig) { f(&c.cfg) } }
func withRetained(n int) envOpt           { return func(c *envConfig) { c.retained = n } }
func withWatch(on bool) envOpt            { return func(c *envConfig) { c.watch = on } }
func withDefinition(def string) envOpt    { return func(c *envConfig) { c.def = def } }
func withSharedHandler(h *Handler) envOpt { return func(c *envConfig) { c.handler = h } }

func randomSlug() string {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := []byte("st")
	for i := 0; i < 10; i++ {
		b = append(b, letters[rand.IntN(len(letters))])
	}
	return string(b)
}

// newEnv provisions a tenant schema with the test tables and serves it.
func newEnv(tb testing.TB, opts ...envOpt) *env {
	tb.Helper()
	ec := &envConfig{def: testDefinition, watch: true}
	for _, o := range opts {
		o(ec)
	}
	pool := testPool(tb)
	ctx := context.Background()
	slug := randomSlug()
	tn := &tenant.Tenant{ID: rand.Int64(), Slug: tenant.Slug(slug), Name: slug, State: tenant.StateActive, WireSchema: "app",
		Placement: "default", WatchEnabled: ec.watch, RetainedBundles: ec.retained}
	schemaName := tn.SchemaName()
	_, err := pool.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{schemaName}.Sanitize())
	require.NoError(tb, err)
	tb.Cleanup(func() {
		_, _ = pool.Exec(context.Background(), `DROP SCHEMA `+pgx.Identifier{schemaName}.Sanitize()+` CASCADE`)
	})
	require.NoError(tb, tenant.MigrateTenantSchema(ctx, pool, schemaName))
	var sch *tenant.Schema
	if ec.def != "" {
		def, err := tenant.ParseDefinition([]byte(ec.def))
		require.NoError(tb, err)
		sch, err = tenant.NewSchema(def)
		require.NoError(tb, err)
		tx, err := pool.Begin(ctx)
		require.NoError(tb, err)
		for _, stmt := range sch.CreateDDL(schemaName) {
			_, err := tx.Exec(ctx, stmt)
			require.NoError(tb, err, stmt)
		}
		require.NoError(tb, tx.Commit(ctx))
	}
	h := ec.handler
	if h == nil {
		h = NewHandler(ec.cfg)
		tb.Cleanup(h.Close)
	}
	e := &env{t: tb, pool: pool, tenant: tn, schema: sch, h: h}
	e.srv = httptest.NewServer(e.engine(h))
	tb.Cleanup(e.srv.Close)
	return e
}

// engine mounts h behind a stand-in gateway: the bearer token is the user id
// ("Bearer bad" and a missing header are refused like invalid tokens).
func (e *env) engine(h *Handler) *gin.Engine {
	gin.SetMode(gin.TestMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.NoMethod(func(c *gin.Context) {
		server.RenderError(c, server.NewError(http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed"))
	})
	tenantMW := func(c *gin.Context) {
		server.WithScope(c, &server.SyncScope{Tenant: e.tenant, Pool: e.pool, Schema: e.schema, SchemaVersion: 1})
	}
	public := r.Group("", tenantMW)
	authed := r.Group("", tenantMW, func(c *gin.Context) {
		tok, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
		if !ok || tok == "" || tok == "bad" {
			server.RenderError(c, server.NewError(http.StatusUnauthorized, "authentication_failed", "invalid token"))
			return
		}
		sc := *server.ScopeFrom(c)
		sc.UserID = tok
		server.WithScope(c, &sc)
	})
	h.Register(public, authed)
	return r
}

// resp is a decoded response.
type resp struct {
	Status int
	Header http.Header
	Body   []byte
	JSON   map[string]any
}

func (r *resp) code() string { s, _ := r.JSON["error"].(string); return s }

func (r *resp) num(k string) int64 {
	switch v := r.JSON[k].(type) {
	case json.Number:
		n, _ := v.Int64()
		return n
	}
	return -1
}

func (r *resp) str(k string) string { s, _ := r.JSON[k].(string); return s }

// client is one device: a user and a source.
type client struct {
	e      *env
	user   string
	source string
}

func (e *env) client(user, source string) *client { return &client{e: e, user: user, source: source} }

func (c *client) do(method, path string, body any) *resp {
	c.e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		require.NoError(c.e.t, err)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.e.srv.URL+path, rd)
	require.NoError(c.e.t, err)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.user != "" {
		req.Header.Set("Authorization", "Bearer "+c.user)
	}
	if c.source != "" {
		req.Header.Set("Oversync-Source-ID", c.source)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(c.e.t, err)
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	require.NoError(c.e.t, err)
	out := &resp{Status: res.StatusCode, Header: res.Header, Body: data}
	if len(data) > 0 && strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		require.NoError(c.e.t, dec.Decode(&out.JSON), string(data))
	}
	return out
}

// expect asserts status and error code ("" for success).
func (r *resp) expect(tb testing.TB, status int, code string) *resp {
	tb.Helper()
	require.Equal(tb, status, r.Status, "body: %s", r.Body)
	if code != "" {
		require.Equal(tb, code, r.code(), "body: %s", r.Body)
		require.NotEmpty(tb, r.JSON["message"])
	}
	return r
}

// row builds a push row.
func row(table, op string, key any, base int64, payload any) map[string]any {
	k := map[string]any{"id": key}
	if table == "tags" {
		k = map[string]any{"name": key}
	}
	r := map[string]any{"schema": "app", "table": table, "key": k, "op": op, "base_row_version": base}
	if payload != nil {
		r["payload"] = payload
	}
	return r
}

func newUUID() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(rand.IntN(256))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// connect attaches the client; returns the response.
func (c *client) connect(pending bool) *resp {
	return c.do("POST", "/sync/connect", map[string]any{"has_local_pending_rows": pending})
}

// push runs create/chunks/commit with chunk size n and returns the commit
// (or the first failing) response.
func (c *client) pushN(sbid int64, rows []map[string]any, n int, initID string) *resp {
	c.e.t.Helper()
	body := map[string]any{"source_bundle_id": sbid, "planned_row_count": len(rows)}
	if initID != "" {
		body["initialization_id"] = initID
	}
	cr := c.do("POST", "/sync/push-sessions", body)
	if cr.Status != 200 || cr.str("status") != "staging" {
		return cr
	}
	id := cr.str("push_id")
	for i := 0; i < len(rows); i += n {
		end := min(i+n, len(rows))
		ch := c.do("POST", "/sync/push-sessions/"+id+"/chunks", map[string]any{"start_row_ordinal": i, "rows": rows[i:end]})
		if ch.Status != 200 {
			return ch
		}
	}
	return c.do("POST", "/sync/push-sessions/"+id+"/commit", nil)
}

func (c *client) push(sbid int64, rows ...map[string]any) *resp { return c.pushN(sbid, rows, 1000, "") }

// attach connects an initialized-empty or remote-authoritative client.
func (c *client) attach() {
	c.e.t.Helper()
	r := c.connect(false).expect(c.e.t, 200, "")
	require.Contains(c.e.t, []string{"initialize_empty", "remote_authoritative"}, r.str("resolution"))
}

// pullAll pulls from after to the end and returns bundles.
func (c *client) pullAll(after int64) []map[string]any {
	c.e.t.Helper()
	var out []map[string]any
	target := int64(0)
	for {
		q := fmt.Sprintf("/sync/pull?after_bundle_seq=%d&max_bundles=100", after)
		if target > 0 {
			q += fmt.Sprintf("&target_bundle_seq=%d", target)
		}
		r := c.do("GET", q, nil).expect(c.e.t, 200, "")
		target = r.num("stable_bundle_seq")
		for _, b := range r.JSON["bundles"].([]any) {
			bm := b.(map[string]any)
			out = append(out, bm)
			n, _ := bm["bundle_seq"].(json.Number).Int64()
			after = n
		}
		if r.JSON["has_more"] != true {
			return out
		}
	}
}

// waitFor polls cond (for asynchronous effects such as watch events).
func waitFor(tb testing.TB, d time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	tb.Fatal("condition not met in time")
}

// scope is the SyncScope for server-originated writes of user.
func (e *env) scope(user string) *server.SyncScope {
	return &server.SyncScope{Tenant: e.tenant, Pool: e.pool, Schema: e.schema, SchemaVersion: 1, UserID: user}
}

// gin4writes serves RegisterServerWrites behind a stand-in secret-key
// middleware and returns a request function.
func gin4writes(e *env) func(method, path, body string) (int, string) {
	r := gin.New()
	g := r.Group("", func(c *gin.Context) {
		server.WithScope(c, &server.SyncScope{Tenant: e.tenant, Pool: e.pool, Schema: e.schema, SchemaVersion: 1})
	})
	e.h.RegisterServerWrites(g)
	return func(method, path, body string) (int, string) {
		w := httptest.NewRecorder()
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		r.ServeHTTP(w, req)
		return w.Code, w.Body.String()
	}
}
