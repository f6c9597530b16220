package admin_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"

	syncx "github.com/syncplane/syncplane/sync"
	"github.com/syncplane/syncplane/sync/device"
	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/web/server"
)

// mountSync adds the sync gateway and protocol handler to a test engine, as
// the syncplane binary wires them.
func mountSync(t *testing.T) func(e *gin.Engine, store *tenant.Store) {
	return func(e *gin.Engine, store *tenant.Store) {
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		cache := tenant.NewCache(store, time.Second)
		gw := server.NewGateway(server.GatewayOptions{Resolver: cache, Log: log})
		h := syncx.NewHandler(syncx.Config{Logger: log})
		require.NoError(t, h.Start(context.Background()))
		t.Cleanup(func() { h.Close(); gw.Close() })
		gw.Mount(e, h.Register)
	}
}

// syncDevice opens a device for the tenant's current tables, writes one
// users row and syncs it; it returns the device's source id.
func syncDevice(t *testing.T, h *harness, slug, baseURL, token string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cur, err := h.store.CurrentTables(ctx, mustTenantID(t, h, slug))
	require.NoError(t, err)
	dev, err := device.Open(ctx, device.Config{
		Path: filepath.Join(t.TempDir(), "device.db"), BaseURL: baseURL, Schema: cur.Schema, WireSchema: "app",
		Token: func(context.Context) (string, error) { return token, nil },
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = dev.Close() })
	_, err = dev.DB().ExecContext(ctx, `INSERT INTO users (id, name) VALUES ('6f1c2c1e-7a53-4d6b-9a55-3a6f2d1c0b01', 'Ada')`)
	require.NoError(t, err)
	require.NoError(t, dev.Attach(ctx))
	require.NoError(t, dev.Sync(ctx))
	return dev.SourceID()
}
