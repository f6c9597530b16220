package sync

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/web/server"
)

// A failed request is kept as the device's last error, unless the device
// went away before the answer (its request context is cancelled).
func TestObserveRecordsLastErrorOnlyForAnsweredRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "dev-a")
	c.attach()
	c.push(1, userRow(newUUID(), "a")).expect(t, 200, "")

	lastError := func() *string {
		var msg *string
		require.NoError(t, e.pool.QueryRow(context.Background(), `SELECT last_error FROM `+ident(e.tenant.SchemaName(), "_sync_source")+
			` WHERE user_id = 'u1' AND source_id = 'dev-a'`).Scan(&msg))
		return msg
	}
	failed := func(ctx context.Context) {
		gc, _ := gin.CreateTestContext(httptest.NewRecorder())
		gc.Request = httptest.NewRequestWithContext(ctx, http.MethodPost, "/sync/push-sessions", nil)
		server.WithScope(gc, &server.SyncScope{Tenant: e.tenant, Pool: e.pool, Schema: e.schema, UserID: "u1"})
		gc.Set(sourceKey, "dev-a")
		gc.Set(server.ErrorCodeKey, "push_session_create_failed")
		gc.Set(server.ErrorMessageKey, "internal error")
		e.h.observe(gc)
	}

	gone, cancel := context.WithCancel(context.Background())
	cancel()
	failed(gone)
	require.Nil(t, lastError())

	failed(context.Background())
	msg := lastError()
	require.NotNil(t, msg)
	require.Equal(t, "push_session_create_failed: internal error", *msg)
}
