package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/tenant/tenanttest"
	"github.com/syncplane/syncplane/web/server"
)

type gwTenant struct {
	t      *tenant.Tenant
	pk, sk string
	secret string
}

func newGWTenant(t *testing.T, store *tenant.Store) gwTenant {
	t.Helper()
	ctx := context.Background()
	tn := tenanttest.Tenant(t, store, "")
	pk, _, err := store.CreateKey(ctx, tn.ID, tenant.KeyPublishable, "", tenanttest.Actor)
	require.NoError(t, err)
	sk, _, err := store.CreateKey(ctx, tn.ID, tenant.KeySecret, "", tenanttest.Actor)
	require.NoError(t, err)
	secret, err := tenant.GenerateHS256Secret()
	require.NoError(t, err)
	require.NoError(t, store.SetAuth(ctx, tn.ID, tenant.AuthSettings{Mode: tenant.AuthHS256, HS256Secrets: []string{secret}}, tenanttest.Actor))
	return gwTenant{t: tn, pk: pk, sk: sk, secret: secret}
}

func token(t *testing.T, secret, sub string, exp time.Time) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": sub, "exp": exp.Unix()}).SignedString([]byte(secret))
	require.NoError(t, err)
	return s
}

// newGateway serves a probe route that reports what the gateway resolved.
func newGateway(t *testing.T, store *tenant.Store, defaultTenant string) (*httptest.Server, *tenant.Cache) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cache := tenant.NewCache(store, time.Hour)
	done := make(chan struct{})
	go func() { defer close(done); cache.Run(ctx, time.Hour) }()
	<-cache.Listening()
	gw := server.NewGateway(server.GatewayOptions{Resolver: cache, DefaultTenant: defaultTenant})
	e := server.NewEngine(slog.New(slog.NewTextHandler(io.Discard, nil)))
	gw.Mount(e, func(public, authed gin.IRouter) {
		public.GET("/syncx/probe", func(c *gin.Context) {
			c.JSON(http.StatusOK, gin.H{"tenant": string(server.ScopeFrom(c).Tenant.Slug)})
		})
		authed.GET("/sync/probe", func(c *gin.Context) {
			s := server.ScopeFrom(c)
			c.JSON(http.StatusOK, gin.H{"tenant": string(s.Tenant.Slug), "user": s.UserID, "kind": string(s.KeyKind)})
		})
	})
	gw.MountSecret(e, func(r gin.IRouter) {
		r.GET("/v1/probe", func(c *gin.Context) {
			s := server.ScopeFrom(c)
			c.JSON(http.StatusOK, gin.H{"tenant": string(s.Tenant.Slug), "kind": string(s.KeyKind)})
		})
	})
	srv := httptest.NewServer(e)
	t.Cleanup(func() { srv.Close(); gw.Close(); cancel(); <-done })
	return srv, cache
}

type resp struct {
	status int
	body   map[string]any
}

func call(t *testing.T, method, url string, headers map[string]string) resp {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var body map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&body), "every answer is JSON")
	if res.StatusCode != http.StatusOK {
		require.Equal(t, "application/json; charset=utf-8", res.Header.Get("Content-Type"))
		require.IsType(t, "", body["error"], "error envelope: %v", body)
		require.IsType(t, "", body["message"], "error envelope: %v", body)
	}
	return resp{res.StatusCode, body}
}

func TestGatewayRouting(t *testing.T) {
	store := tenanttest.Store(t)
	a := newGWTenant(t, store)
	b := newGWTenant(t, store)
	noAuth := tenanttest.Tenant(t, store, "")
	noAuthKey, _, err := store.CreateKey(context.Background(), noAuth.ID, tenant.KeyPublishable, "", tenanttest.Actor)
	require.NoError(t, err)
	srv, _ := newGateway(t, store, "")
	now := time.Now()
	tokA := token(t, a.secret, "user-1", now.Add(time.Hour))
	tokB := token(t, b.secret, "user-1", now.Add(time.Hour))
	unknown, _ := tenant.NewKeySecret(tenant.KeyPublishable)
	noneTok := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "user-1", "exp": now.Add(time.Hour).Unix()})
	noneStr, err := noneTok.SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)

	for _, tc := range []struct {
		name    string
		method  string
		path    string
		headers map[string]string
		status  int
		code    string
		tenant  *tenant.Tenant
	}{
		{"key in path", "GET", "/k/" + a.pk + "/sync/probe", map[string]string{"Authorization": "Bearer " + tokA}, 200, "", a.t},
		{"key in header", "GET", "/sync/probe", map[string]string{server.KeyHeader: a.pk, "Authorization": "Bearer " + tokA}, 200, "", a.t},
		{"secret key works for sync too", "GET", "/k/" + a.sk + "/sync/probe", map[string]string{"Authorization": "Bearer " + tokA}, 200, "", a.t},
		{"other tenant, own token", "GET", "/k/" + b.pk + "/sync/probe", map[string]string{"Authorization": "Bearer " + tokB}, 200, "", b.t},
		{"public route needs no token", "GET", "/k/" + a.pk + "/syncx/probe", nil, 200, "", a.t},
		{"no key and no default tenant", "GET", "/sync/probe", map[string]string{"Authorization": "Bearer " + tokA}, 401, "invalid_api_key", nil},
		{"unknown key", "GET", "/k/" + unknown + "/sync/probe", map[string]string{"Authorization": "Bearer " + tokA}, 401, "invalid_api_key", nil},
		{"malformed key", "GET", "/k/hello/sync/probe", map[string]string{"Authorization": "Bearer " + tokA}, 401, "invalid_api_key", nil},
		{"token of tenant B at tenant A", "GET", "/k/" + a.pk + "/sync/probe", map[string]string{"Authorization": "Bearer " + tokB}, 401, "authentication_failed", nil},
		{"no token", "GET", "/k/" + a.pk + "/sync/probe", nil, 401, "authentication_failed", nil},
		{"not a bearer token", "GET", "/k/" + a.pk + "/sync/probe", map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}, 401, "authentication_failed", nil},
		{"alg none", "GET", "/k/" + a.pk + "/sync/probe", map[string]string{"Authorization": "Bearer " + noneStr}, 401, "authentication_failed", nil},
		{"expired token", "GET", "/k/" + a.pk + "/sync/probe", map[string]string{"Authorization": "Bearer " + token(t, a.secret, "u", now.Add(-time.Hour))}, 401, "authentication_failed", nil},
		{"tenant without end-user auth", "GET", "/k/" + noAuthKey + "/sync/probe", map[string]string{"Authorization": "Bearer " + tokA}, 401, "authentication_failed", nil},
		{"secret route, secret key as bearer", "GET", "/v1/probe", map[string]string{"Authorization": "Bearer " + a.sk}, 200, "", a.t},
		{"secret route, secret key in header", "GET", "/v1/probe", map[string]string{server.KeyHeader: b.sk}, 200, "", b.t},
		{"secret route refuses a publishable key", "GET", "/v1/probe", map[string]string{"Authorization": "Bearer " + a.pk}, 401, "invalid_api_key", nil},
		{"secret route refuses an end-user token", "GET", "/v1/probe", map[string]string{"Authorization": "Bearer " + tokA}, 401, "invalid_api_key", nil},
		{"unknown route", "GET", "/k/" + a.pk + "/sync/nope", nil, 404, "not_found", nil},
		{"wrong method", "POST", "/k/" + a.pk + "/sync/probe", nil, 405, "method_not_allowed", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, tc.method, srv.URL+tc.path, tc.headers)
			require.Equal(t, tc.status, r.status, "%v", r.body)
			if tc.code != "" {
				require.Equal(t, tc.code, r.body["error"])
				require.NotContains(t, r.body["message"], "SQL")
			}
			if tc.tenant != nil {
				require.Equal(t, string(tc.tenant.Slug), r.body["tenant"])
				if u, ok := r.body["user"]; ok {
					require.Equal(t, "user-1", u)
				}
			}
		})
	}

	r := call(t, "GET", srv.URL+"/k/"+a.pk+"/sync/probe", map[string]string{"Authorization": "Bearer " + token(t, a.secret, "u", now.Add(-time.Hour))})
	require.Contains(t, r.body["message"], "expired")
}

func TestGatewaySuspendRevokeAndDefaultTenant(t *testing.T) {
	ctx := context.Background()
	store := tenanttest.Store(t)
	a := newGWTenant(t, store)
	srv, _ := newGateway(t, store, string(a.t.Slug))
	tok := token(t, a.secret, "user-9", time.Now().Add(time.Hour))
	auth := map[string]string{"Authorization": "Bearer " + tok}

	// The dev default tenant answers the plain paths without a key.
	r := call(t, "GET", srv.URL+"/sync/probe", auth)
	require.Equal(t, 200, r.status)
	require.Equal(t, "user-9", r.body["user"])

	_, err := store.SetState(ctx, string(a.t.Slug), tenant.StateSuspended, tenanttest.Actor)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return call(t, "GET", srv.URL+"/k/"+a.pk+"/sync/probe", auth).status == http.StatusForbidden
	}, time.Second, 10*time.Millisecond)
	r = call(t, "GET", srv.URL+"/k/"+a.pk+"/sync/probe", auth)
	require.Equal(t, "tenant_suspended", r.body["error"])
	require.Equal(t, 403, call(t, "GET", srv.URL+"/sync/probe", auth).status)

	_, err = store.SetState(ctx, string(a.t.Slug), tenant.StateActive, tenanttest.Actor)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return call(t, "GET", srv.URL+"/k/"+a.pk+"/sync/probe", auth).status == http.StatusOK
	}, time.Second, 10*time.Millisecond)

	keys, err := store.ListKeys(ctx, a.t.ID)
	require.NoError(t, err)
	for _, k := range keys {
		if k.Kind == tenant.KeyPublishable {
			require.NoError(t, store.RevokeKey(ctx, a.t.ID, k.ID, tenanttest.Actor))
		}
	}
	require.Eventually(t, func() bool {
		return call(t, "GET", srv.URL+"/k/"+a.pk+"/sync/probe", auth).status == http.StatusUnauthorized
	}, time.Second, 10*time.Millisecond)
	require.Equal(t, 200, call(t, "GET", srv.URL+"/k/"+a.sk+"/sync/probe", auth).status, "other keys keep working")

	// Rotating the end-user secret takes effect too.
	newSecret, err := tenant.GenerateHS256Secret()
	require.NoError(t, err)
	require.NoError(t, store.SetAuth(ctx, a.t.ID, tenant.AuthSettings{Mode: tenant.AuthHS256, HS256Secrets: []string{newSecret}}, tenanttest.Actor))
	require.Eventually(t, func() bool {
		return call(t, "GET", srv.URL+"/k/"+a.sk+"/sync/probe", auth).status == http.StatusUnauthorized
	}, time.Second, 10*time.Millisecond)
	fresh := map[string]string{"Authorization": "Bearer " + token(t, newSecret, "user-9", time.Now().Add(time.Hour))}
	require.Equal(t, 200, call(t, "GET", srv.URL+"/k/"+a.sk+"/sync/probe", fresh).status)
}

// TestGatewayWorkOutlivesTheClient: a request's work keeps a live context
// when its client goes away (so a query is never interrupted and its
// connection closed), ClientGone tells the handler, and a watch-style
// stream route still ends with its client.
func TestGatewayWorkOutlivesTheClient(t *testing.T) {
	store := tenanttest.Store(t)
	a := newGWTenant(t, store)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cache := tenant.NewCache(store, time.Hour)
	done := make(chan struct{})
	go func() { defer close(done); cache.Run(ctx, time.Hour) }()
	<-cache.Listening()
	gw := server.NewGateway(server.GatewayOptions{Resolver: cache, StreamRoutes: []string{"/sync/stream"}})
	e := server.NewEngine(slog.New(slog.NewTextHandler(io.Discard, nil)))
	entered, release := make(chan struct{}, 2), make(chan struct{})
	type outcome struct{ workErr, gone bool }
	got := make(chan outcome, 2)
	gw.Mount(e, func(_, authed gin.IRouter) {
		authed.GET("/sync/slow", func(c *gin.Context) {
			entered <- struct{}{}
			<-release
			// The server notices the closed connection shortly after.
			for end := time.Now().Add(5 * time.Second); !server.ClientGone(c) && time.Now().Before(end); {
				time.Sleep(time.Millisecond)
			}
			got <- outcome{c.Err() != nil, server.ClientGone(c)}
		})
		authed.GET("/sync/stream", func(c *gin.Context) {
			entered <- struct{}{}
			select {
			case <-c.Done():
				got <- outcome{true, server.ClientGone(c)}
			case <-time.After(5 * time.Second):
				got <- outcome{false, server.ClientGone(c)}
			}
		})
	})
	srv := httptest.NewServer(e)
	defer func() { srv.Close(); gw.Close(); cancel(); <-done }()

	tok := token(t, a.secret, "user-1", time.Now().Add(time.Hour))
	send := func(path string) {
		rctx, rcancel := context.WithCancel(context.Background())
		req, err := http.NewRequestWithContext(rctx, http.MethodGet, srv.URL+"/k/"+a.pk+path, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok)
		errc := make(chan error, 1)
		go func() {
			res, err := http.DefaultClient.Do(req)
			if err == nil {
				res.Body.Close()
			}
			errc <- err
		}()
		<-entered
		rcancel() // the client goes away mid-request
		require.Error(t, <-errc)
	}

	send("/sync/slow")
	close(release)
	o := <-got
	require.False(t, o.workErr, "the work's context was cancelled with its client")
	require.True(t, o.gone, "ClientGone does not see the client leave")

	send("/sync/stream")
	o = <-got
	require.True(t, o.workErr, "a stream outlived its client")
	require.True(t, o.gone)
}
