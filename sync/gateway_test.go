package sync

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/tenant/tenanttest"
	"github.com/syncplane/syncplane/web/server"
)

// gwTenant is a real tenant (control plane, keys, HS256 end-user auth).
type gwTenant struct {
	*tenant.Tenant
	pk, secret string
}

func newGWTenant(t *testing.T, store *tenant.Store) gwTenant {
	ctx := context.Background()
	tn := tenanttest.Tenant(t, store, testDefinition)
	pk, _, err := store.CreateKey(ctx, tn.ID, tenant.KeyPublishable, "", tenanttest.Actor)
	require.NoError(t, err)
	secret, err := tenant.GenerateHS256Secret()
	require.NoError(t, err)
	require.NoError(t, store.SetAuth(ctx, tn.ID, tenant.AuthSettings{Mode: tenant.AuthHS256, HS256Secrets: []string{secret}}, tenanttest.Actor))
	return gwTenant{tn, pk, secret}
}

func (g gwTenant) token(t *testing.T, sub string) string {
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": sub, "exp": time.Now().Add(time.Hour).Unix()}).
		SignedString([]byte(g.secret))
	require.NoError(t, err)
	return s
}

// The protocol through the real gateway: tenants resolved by the /k/<key>
// prefix, end users by the tenant's own JWTs.
func TestThroughGateway(t *testing.T) {
	if testing.Short() {
		t.Skip("provisions real tenants")
	}
	testPool(t) // skip without a database
	store := tenanttest.Store(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	gw := server.NewGateway(server.GatewayOptions{Resolver: tenant.NewCache(store, time.Second), Log: log})
	h := NewHandler(Config{Logger: log})
	t.Cleanup(func() { h.Close(); gw.Close() })
	e := server.NewEngine(log)
	gw.Mount(e, h.Register)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	a, b := newGWTenant(t, store), newGWTenant(t, store)

	call := func(tn gwTenant, method, path, token, source string, body any) (int, map[string]any) {
		var rd io.Reader
		if body != nil {
			data, _ := json.Marshal(body)
			rd = bytes.NewReader(data)
		}
		req, err := http.NewRequest(method, srv.URL+"/k/"+tn.pk+path, rd)
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if source != "" {
			req.Header.Set("Oversync-Source-ID", source)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		var out map[string]any
		data, _ := io.ReadAll(res.Body)
		if len(data) > 0 {
			require.NoError(t, json.Unmarshal(data, &out), string(data))
		}
		return res.StatusCode, out
	}

	// 15.1: no token, a garbage token, another tenant's token.
	for _, tok := range []string{"", "garbage", b.token(t, "alice")} {
		status, body := call(a, "GET", "/sync/capabilities", tok, "dev", nil)
		require.Equal(t, 401, status, "%v", body)
		require.Equal(t, "authentication_failed", body["error"])
	}
	// 15.3: wrong method on a known path.
	status, body := call(a, "DELETE", "/sync/pull", a.token(t, "alice"), "dev", nil)
	require.Equal(t, 405, status)
	require.Equal(t, "method_not_allowed", body["error"])

	// 15.89 through the gateway: the same user, source and tables in two
	// tenants stay apart.
	id := newUUID()
	for _, tn := range []gwTenant{a, b} {
		tok := tn.token(t, "alice")
		status, body = call(tn, "POST", "/sync/connect", tok, "dev", map[string]any{"has_local_pending_rows": false})
		require.Equal(t, 200, status, "%v", body)
		status, body = call(tn, "POST", "/sync/push-sessions", tok, "dev", map[string]any{"source_bundle_id": 1, "planned_row_count": 1})
		require.Equal(t, 200, status, "%v", body)
		pid := body["push_id"].(string)
		status, body = call(tn, "POST", "/sync/push-sessions/"+pid+"/chunks", tok, "dev", map[string]any{"start_row_ordinal": 0,
			"rows": []any{userRow(id, string(tn.Slug))}})
		require.Equal(t, 200, status, "%v", body)
		status, body = call(tn, "POST", "/sync/push-sessions/"+pid+"/commit", tok, "dev", nil)
		require.Equal(t, 200, status, "%v", body)
		require.EqualValues(t, 1, body["bundle_seq"])
	}
	for _, tn := range []gwTenant{a, b} {
		status, body = call(tn, "GET", "/sync/pull", tn.token(t, "alice"), "dev", nil)
		require.Equal(t, 200, status, "%v", body)
		bundles := body["bundles"].([]any)
		require.Len(t, bundles, 1)
		row := bundles[0].(map[string]any)["rows"].([]any)[0].(map[string]any)
		require.Equal(t, string(tn.Slug), row["payload"].(map[string]any)["name"])
	}
	// Health and status answer per tenant without a user.
	status, body = call(a, "GET", "/syncx/health", "", "", nil)
	require.Equal(t, 200, status, "%v", body)
	require.Equal(t, string(a.Slug), body["app_name"])
}
