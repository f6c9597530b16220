package sync

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// expireLease moves the user's initialization lease into the past.
func (e *env) expireLease(user string) {
	_, err := e.pool.Exec(context.Background(), `UPDATE `+ident(e.tenant.SchemaName(), "_sync_scope")+
		` SET lease_expires_at = now() - interval '1 second' WHERE user_id = $1`, user)
	require.NoError(e.t, err)
}

// 15.10: first connect with pending rows gets the lease.
func TestConf10InitializeLocal(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.client("u1", "a").connect(true).expect(t, 200, "")
	require.Equal(t, "initialize_local", r.str("resolution"))
	_, err := uuid.Parse(r.str("initialization_id"))
	require.NoError(t, err)
	lease, err := time.Parse(time.RFC3339Nano, r.str("lease_expires_at"))
	require.NoError(t, err)
	require.True(t, lease.After(time.Now()))
}

// 15.11: empty first connect, then remote_authoritative for everyone.
func TestConf11InitializeEmpty(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	require.Equal(t, "initialize_empty", e.client("u1", "a").connect(false).expect(t, 200, "").str("resolution"))
	for _, src := range []string{"a", "b"} {
		for _, pending := range []bool{false, true} {
			require.Equal(t, "remote_authoritative", e.client("u1", src).connect(pending).expect(t, 200, "").str("resolution"))
		}
	}
}

// 15.12: another source gets retry_later while the lease is held.
func TestConf12RetryLater(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.client("u1", "a").connect(true).expect(t, 200, "")
	r := e.client("u1", "b").connect(true).expect(t, 200, "")
	require.Equal(t, "retry_later", r.str("resolution"))
	require.GreaterOrEqual(t, r.num("retry_after_seconds"), int64(1))
	require.NotEmpty(t, r.str("lease_expires_at"))
}

// 15.13: the initializer's reconnect keeps the id and extends the lease;
// without pending rows it initializes empty.
func TestConf13InitializerReconnect(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.client("u1", "a")
	first := a.connect(true).expect(t, 200, "")
	time.Sleep(5 * time.Millisecond)
	second := a.connect(true).expect(t, 200, "")
	require.Equal(t, first.str("initialization_id"), second.str("initialization_id"))
	t1, _ := time.Parse(time.RFC3339Nano, first.str("lease_expires_at"))
	t2, _ := time.Parse(time.RFC3339Nano, second.str("lease_expires_at"))
	require.True(t, t2.After(t1))
	require.Equal(t, "initialize_empty", a.connect(false).expect(t, 200, "").str("resolution"))
	require.Equal(t, "remote_authoritative", e.client("u1", "b").connect(true).expect(t, 200, "").str("resolution"))
}

// 15.14: a lapsed lease behaves as uninitialized.
func TestConf14LapsedLease(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	first := e.client("u1", "a").connect(true).expect(t, 200, "")
	e.expireLease("u1")
	r := e.client("u1", "b").connect(true).expect(t, 200, "")
	require.Equal(t, "initialize_local", r.str("resolution"))
	require.NotEqual(t, first.str("initialization_id"), r.str("initialization_id"))
}

// 15.15: reads need an initialized scope.
func TestConf15ScopeNotReady(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.do("GET", "/sync/pull", nil).expect(t, 409, "scope_uninitialized")
	c.do("POST", "/sync/snapshot-sessions", nil).expect(t, 409, "scope_uninitialized")
	c.do("GET", "/sync/watch", nil).expect(t, 409, "scope_uninitialized")
	c.connect(true).expect(t, 200, "")
	b := e.client("u1", "b")
	b.do("GET", "/sync/pull", nil).expect(t, 409, "scope_initializing")
	b.do("POST", "/sync/snapshot-sessions", nil).expect(t, 409, "scope_initializing")
	b.do("GET", "/sync/watch", nil).expect(t, 409, "scope_initializing")
}

// 15.16: push create on an uninitialized scope.
func TestConf16PushUninitialized(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.do("POST", "/sync/push-sessions", map[string]any{"source_bundle_id": 1, "planned_row_count": 1}).expect(t, 409, "scope_uninitialized")
	c.do("POST", "/sync/push-sessions", map[string]any{"source_bundle_id": 1, "planned_row_count": 1, "initialization_id": newUUID()}).
		expect(t, 410, "initialization_expired")
}

// 15.17: the seed push commits as bundle 1 and initializes the scope.
func TestConf17SeedPush(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.client("u1", "a")
	init := a.connect(true).expect(t, 200, "").str("initialization_id")
	id := newUUID()
	r := a.pushN(1, []map[string]any{row("users", "INSERT", id, 0, map[string]any{"id": id, "name": "seed"})}, 1000, init).expect(t, 200, "")
	require.EqualValues(t, 1, r.num("bundle_seq"))
	require.Equal(t, "remote_authoritative", e.client("u1", "b").connect(false).expect(t, 200, "").str("resolution"))
	// D3: a seed push whose response was lost is confirmed, not refused.
	again := a.do("POST", "/sync/push-sessions", map[string]any{"source_bundle_id": 1, "planned_row_count": 1, "initialization_id": init}).expect(t, 200, "")
	require.Equal(t, "already_committed", again.str("status"))
}

// 15.18: a wrong initialization id or a non-initializer is stale.
func TestConf18InitializationStale(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	init := e.client("u1", "a").connect(true).expect(t, 200, "").str("initialization_id")
	e.client("u1", "a").do("POST", "/sync/push-sessions", map[string]any{"source_bundle_id": 1, "planned_row_count": 1, "initialization_id": newUUID()}).
		expect(t, 409, "initialization_stale")
	e.client("u1", "b").do("POST", "/sync/push-sessions", map[string]any{"source_bundle_id": 1, "planned_row_count": 1, "initialization_id": init}).
		expect(t, 409, "initialization_stale")
	e.client("u1", "b").do("POST", "/sync/push-sessions", map[string]any{"source_bundle_id": 1, "planned_row_count": 1}).
		expect(t, 400, "push_session_invalid")
	// A lease lapsing under an open seed session makes its chunks stale.
	cr := e.client("u1", "a").do("POST", "/sync/push-sessions", map[string]any{"source_bundle_id": 1, "planned_row_count": 1, "initialization_id": init}).expect(t, 200, "")
	e.expireLease("u1")
	id := newUUID()
	e.client("u1", "a").do("POST", "/sync/push-sessions/"+cr.str("push_id")+"/chunks", map[string]any{"start_row_ordinal": 0,
		"rows": []any{row("users", "INSERT", id, 0, map[string]any{"id": id, "name": "x"})}}).expect(t, 409, "initialization_stale")
}

// 15.19: an unparsable connect body is invalid_request.
func TestConf19ConnectBadBody(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, body := range []string{"", "{", `{"has_local_pending_rows":"yes"}`, "[]"} {
		e.client("u1", "a").do("POST", "/sync/connect", body).expect(t, 400, "invalid_request")
	}
}
