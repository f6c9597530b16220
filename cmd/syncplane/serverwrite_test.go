package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/tenant/tenanttest"
)

const todosTables = `{"tables":[{"name":"todos","sync_key":"id","columns":[
  {"name":"id","type":"uuid"},{"name":"title","type":"text"},{"name":"done","type":"integer","default":0}]}]}`

// testTenant is a tenant with keys, an HS256 end-user secret and tables.
type testTenant struct {
	*tenant.Tenant
	pk, sk, secret string
}

func newTestTenant(t *testing.T, store *tenant.Store, tables string) testTenant {
	t.Helper()
	ctx := context.Background()
	tn := tenanttest.Tenant(t, store, tables)
	pk, _, err := store.CreateKey(ctx, tn.ID, tenant.KeyPublishable, "", tenanttest.Actor)
	require.NoError(t, err)
	sk, _, err := store.CreateKey(ctx, tn.ID, tenant.KeySecret, "", tenanttest.Actor)
	require.NoError(t, err)
	secret, err := tenant.GenerateHS256Secret()
	require.NoError(t, err)
	require.NoError(t, store.SetAuth(ctx, tn.ID, tenant.AuthSettings{Mode: tenant.AuthHS256, HS256Secrets: []string{secret}}, tenanttest.Actor))
	return testTenant{tn, pk, sk, secret}
}

func (tt testTenant) token(t *testing.T, sub string) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": sub, "exp": time.Now().Add(time.Hour).Unix()}).
		SignedString([]byte(tt.secret))
	require.NoError(t, err)
	return s
}

func doJSON(t *testing.T, method, url string, headers map[string]string, body any) (int, map[string]any) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&out))
	return res.StatusCode, out
}

func TestServerOriginatedWriteReachesDevices(t *testing.T) {
	ctx := context.Background()
	a, err := newApp(ctx, testConfig(t), discardLogger())
	require.NoError(t, err)
	defer a.Close()
	srv := httptest.NewServer(a.engine)
	defer srv.Close()
	tt := newTestTenant(t, tenanttest.Store(t), todosTables)

	write := map[string]any{"writer_id": "server:billing", "ops": []map[string]any{
		{"table": "todos", "op": "upsert", "key": "550e8400-e29b-41d4-a716-446655440000",
			"payload": map[string]any{"title": "pay invoice"}},
	}}
	// Only the tenant's secret key may write.
	status, body := doJSON(t, "POST", srv.URL+"/v1/users/alice/writes", map[string]string{"Authorization": "Bearer " + tt.pk}, write)
	require.Equal(t, http.StatusUnauthorized, status, "%v", body)
	status, body = doJSON(t, "POST", srv.URL+"/v1/users/alice/writes", map[string]string{"Authorization": "Bearer " + tt.sk}, write)
	require.Equal(t, http.StatusOK, status, "%v", body)
	require.EqualValues(t, 1, body["bundle_seq"])
	require.Equal(t, "server:billing", body["source_id"])
	require.EqualValues(t, 1, body["source_bundle_id"])

	// A device of alice connects (the write initialized her scope) and pulls it.
	dev := map[string]string{"Authorization": "Bearer " + tt.token(t, "alice"), "Oversync-Source-ID": "device-1"}
	status, body = doJSON(t, "POST", srv.URL+"/k/"+tt.pk+"/sync/connect", dev, map[string]any{"has_local_pending_rows": true})
	require.Equal(t, http.StatusOK, status, "%v", body)
	require.Equal(t, "remote_authoritative", body["resolution"])
	status, body = doJSON(t, "GET", srv.URL+"/k/"+tt.pk+"/sync/pull?after_bundle_seq=0", dev, nil)
	require.Equal(t, http.StatusOK, status, "%v", body)
	bundles := body["bundles"].([]any)
	require.Len(t, bundles, 1)
	b := bundles[0].(map[string]any)
	require.Equal(t, "server:billing", b["source_id"])
	row := b["rows"].([]any)[0].(map[string]any)
	require.Equal(t, "INSERT", row["op"])
	require.Equal(t, "pay invoice", row["payload"].(map[string]any)["title"])
	require.EqualValues(t, 0, row["payload"].(map[string]any)["done"], "column default applied")

	// Another user of the tenant sees nothing of it.
	bob := map[string]string{"Authorization": "Bearer " + tt.token(t, "bob"), "Oversync-Source-ID": "device-1"}
	status, body = doJSON(t, "POST", srv.URL+"/k/"+tt.pk+"/sync/connect", bob, map[string]any{"has_local_pending_rows": false})
	require.Equal(t, http.StatusOK, status, "%v", body)
	status, body = doJSON(t, "GET", srv.URL+"/k/"+tt.pk+"/sync/pull", bob, nil)
	require.Equal(t, http.StatusOK, status, "%v", body)
	require.Empty(t, body["bundles"])
}
