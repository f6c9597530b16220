package sync

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/tenant/tenanttest"
	"github.com/syncplane/syncplane/web/server"
)

// Tenants pushing and pulling at once through the real gateway share the
// request shards' connections (tenanttest's pool splits into two shards, so
// each connection serves several of these tenants and their prepared
// statements): every request is served, and each tenant sees only its own
// rows.
func TestTenantsShareShardConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("provisions real tenants")
	}
	testPool(t) // skip without a database
	store := tenanttest.Store(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	gw := server.NewGateway(server.GatewayOptions{Resolver: tenant.NewCache(store, time.Minute), Log: log})
	h := NewHandler(Config{Logger: log})
	t.Cleanup(func() { h.Close(); gw.Close() })
	e := server.NewEngine(log)
	gw.Mount(e, h.Register)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)

	const tenants, users, rounds = 6, 3, 4
	var tns []gwTenant
	for i := 0; i < tenants; i++ {
		tns = append(tns, newGWTenant(t, store))
	}
	call := func(tn gwTenant, method, path, user, source string, body any) (int, map[string]any, error) {
		var rd io.Reader
		if body != nil {
			data, _ := json.Marshal(body)
			rd = bytes.NewReader(data)
		}
		req, err := http.NewRequest(method, srv.URL+"/k/"+tn.pk+path, rd)
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Authorization", "Bearer "+tn.token(t, user))
		req.Header.Set("Oversync-Source-ID", source)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer res.Body.Close()
		var out map[string]any
		data, _ := io.ReadAll(res.Body)
		if err := json.Unmarshal(data, &out); err != nil {
			return res.StatusCode, nil, fmt.Errorf("%s %s: %w: %s", method, path, err, data)
		}
		return res.StatusCode, out, nil
	}
	ok := func(tn gwTenant, method, path, user, source string, body any) (map[string]any, error) {
		status, out, err := call(tn, method, path, user, source, body)
		if err == nil && status != 200 {
			err = fmt.Errorf("%s %s: %d %v", method, path, status, out)
		}
		return out, err
	}

	// Every (tenant, user) device pushes rows named after its tenant and
	// user, at the same time as all the others.
	var wg gosync.WaitGroup
	errs := make(chan error, tenants*users)
	for _, tn := range tns {
		for u := 0; u < users; u++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				user, src := fmt.Sprintf("user%d", u), fmt.Sprintf("dev%d", u)
				if _, err := ok(tn, "POST", "/sync/connect", user, src, map[string]any{"has_local_pending_rows": false}); err != nil {
					errs <- err
					return
				}
				for r := 1; r <= rounds; r++ {
					body, err := ok(tn, "POST", "/sync/push-sessions", user, src, map[string]any{"source_bundle_id": r, "planned_row_count": 1})
					if err != nil {
						errs <- err
						return
					}
					pid, _ := body["push_id"].(string)
					path := "/sync/push-sessions/" + pid
					if _, err := ok(tn, "POST", path+"/chunks", user, src, map[string]any{"start_row_ordinal": 0,
						"rows": []any{userRow(newUUID(), fmt.Sprintf("%s/%s/%d", tn.Slug, user, r))}}); err != nil {
						errs <- err
						return
					}
					if _, err := ok(tn, "POST", path+"/commit", user, src, nil); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	// Each device pulls: exactly its own user's rows, of its own tenant.
	for _, tn := range tns {
		for u := 0; u < users; u++ {
			user := fmt.Sprintf("user%d", u)
			body, err := ok(tn, "GET", "/sync/pull", user, fmt.Sprintf("dev%d", u), nil)
			require.NoError(t, err)
			bundles, _ := body["bundles"].([]any)
			require.Len(t, bundles, rounds, "tenant %s user%d", tn.Slug, u)
			for _, b := range bundles {
				for _, r := range b.(map[string]any)["rows"].([]any) {
					name, _ := r.(map[string]any)["payload"].(map[string]any)["name"].(string)
					require.True(t, strings.HasPrefix(name, string(tn.Slug)+"/"+user+"/"), "tenant %s %s got %q", tn.Slug, user, name)
				}
			}
		}
	}
}

// Requests of one cluster run on several request shards; their watch
// streams and commits must meet in one hub, or a commit on one shard would
// reach a stream on another only through NOTIFY.
func TestWatchHubPerCluster(t *testing.T) {
	cfg, err := pgxpool.ParseConfig("postgres://nobody@127.0.0.1:1/none?sslmode=disable") // never connects
	require.NoError(t, err)
	cfg.MaxConns = 8
	cluster, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(cluster.Close)
	clusters := tenant.NewClusters(cluster)
	t.Cleanup(clusters.Close)
	h := NewHandler(Config{})
	t.Cleanup(h.Close)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	shards := map[*pgxpool.Pool]bool{}
	for id := int64(1); id <= 4; id++ {
		p, err := clusters.RequestPool(ctx, tenant.DefaultPlacement, id)
		require.NoError(t, err)
		shards[p] = true
	}
	require.Len(t, shards, 2, "tenants spread over the cluster's two shards")
	for p := range shards {
		require.NotSame(t, cluster, p)
		require.Same(t, h.hubFor(cluster), h.hubFor(p))
	}
}
