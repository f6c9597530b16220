package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/tenant/tenanttest"
)

// TestServeSealedHS256: a server with SYNCPLANE_SEAL_KEYS verifies end-user
// tokens against sealed secrets; a server without the key refuses the
// tenant's requests with a logged error rather than accepting or rejecting
// tokens it cannot check.
func TestServeSealedHS256(t *testing.T) {
	ctx := context.Background()
	sealer, err := tenant.ParseSealKeys(tenant.NewSealKey())
	require.NoError(t, err)
	store := tenanttest.Store(t)
	store.SetSealer(sealer)
	tt := newTestTenant(t, store, todosTables)
	var doc string
	require.NoError(t, store.DB().QueryRow(ctx, `SELECT settings::text FROM syncplane.tenant_auth WHERE tenant_id = $1`, tt.ID).Scan(&doc))
	require.NotContains(t, doc, tt.secret)

	cfg := testConfig(t)
	cfg.Sealer = sealer
	a, err := newApp(ctx, cfg, discardLogger())
	require.NoError(t, err)
	defer a.Close()
	srv := httptest.NewServer(a.engine)
	defer srv.Close()
	dev := map[string]string{"Authorization": "Bearer " + tt.token(t, "alice"), "Oversync-Source-ID": "device-1"}
	status, body := doJSON(t, "POST", srv.URL+"/k/"+tt.pk+"/sync/connect", dev, map[string]any{"has_local_pending_rows": false})
	require.Equal(t, http.StatusOK, status, "%v", body)
	forged := map[string]string{"Authorization": "Bearer " + testTenant{secret: "another-secret-of-at-least-32-bytes!!"}.token(t, "alice"), "Oversync-Source-ID": "device-1"}
	status, body = doJSON(t, "POST", srv.URL+"/k/"+tt.pk+"/sync/connect", forged, map[string]any{"has_local_pending_rows": false})
	require.Equal(t, http.StatusUnauthorized, status, "%v", body)

	// serve makes its logger the default one, which request failures use.
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(logger)
	cfg.Sealer = nil
	keyless, err := newApp(ctx, cfg, logger)
	require.NoError(t, err)
	defer keyless.Close()
	srv2 := httptest.NewServer(keyless.engine)
	defer srv2.Close()
	status, body = doJSON(t, "POST", srv2.URL+"/k/"+tt.pk+"/sync/connect", dev, map[string]any{"has_local_pending_rows": false})
	require.Equal(t, http.StatusInternalServerError, status, "%v", body)
	require.Contains(t, logs.String(), "SYNCPLANE_SEAL_KEYS is not set", "the server warns at start")
	require.Contains(t, logs.String(), "no configured seal key (SYNCPLANE_SEAL_KEYS) opens them", "the failing request is logged with its cause")
}

// lockedBuffer is a bytes.Buffer safe for the server's goroutines to write.
type lockedBuffer struct {
	mu  gosync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestServeLogsRequestFailuresInItsFormat: `syncplane serve --log-format
// json` writes every line as JSON, including the packages' own logs of a
// failed request (here: a tenant whose secrets are sealed with a key the
// server was not given), with the cause.
func TestServeLogsRequestFailuresInItsFormat(t *testing.T) {
	dbURL := tenanttest.DatabaseURL(t)
	sealer, err := tenant.ParseSealKeys(tenant.NewSealKey())
	require.NoError(t, err)
	store := tenanttest.Store(t)
	store.SetSealer(sealer)
	tt := newTestTenant(t, store, todosTables)

	srv := startBinary(t, os.Args[0], append(os.Environ(), "SYNCPLANE_TEST_AS_BINARY=1", "SYNCPLANE_DATABASE_URL="+dbURL, "SYNCPLANE_SEAL_KEYS="),
		"serve", "--http-addr", "127.0.0.1:0", "--metrics-addr", "", "--log-format", "json")
	addr := srv.waitFor(t, "syncplane listening")
	dev := map[string]string{"Authorization": "Bearer " + tt.token(t, "alice"), "Oversync-Source-ID": "device-1"}
	status, body := doJSON(t, "POST", "http://"+addr+"/k/"+tt.pk+"/sync/connect", dev, map[string]any{"has_local_pending_rows": false})
	require.Equal(t, http.StatusInternalServerError, status, "%v", body)

	// Abort logs the failure before it answers; the pipe may lag behind.
	require.Eventually(t, func() bool { return strings.Contains(srv.log(), `"msg":"request failed"`) }, 10*time.Second, 10*time.Millisecond,
		"the failed request is logged as JSON:\n%s", srv.log())
	failure := ""
	for _, l := range strings.Split(strings.TrimSpace(srv.log()), "\n") {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &rec), "a log line is not JSON: %s", l)
		if rec["msg"] == "request failed" {
			failure, _ = rec["err"].(string)
		}
	}
	require.Contains(t, failure, "SYNCPLANE_SEAL_KEYS", "the failed request is logged with its cause:\n%s", srv.log())
}
