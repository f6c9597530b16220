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
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/tenant/tenanttest"
	"github.com/syncplane/syncplane/web/server"
)

// fairGateway is a gateway with a rate limiter and an in-flight cap over
// routes whose handlers hold their request until told to finish.
type fairGateway struct {
	url      string
	inflight *server.InFlightLimiter
	entered  chan string   // receives the user of each request a handler started
	release  chan struct{} // each receive lets one held request finish
}

func newFairGateway(t *testing.T, store *tenant.Store, maxInFlight int, wait time.Duration) *fairGateway {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cache := tenant.NewCache(store, time.Hour)
	done := make(chan struct{})
	go func() { defer close(done); cache.Run(ctx, time.Hour) }()
	<-cache.Listening()
	// No room to borrow beyond the cap: shared = the cap.
	fg := &fairGateway{inflight: server.NewInFlightLimiter(maxInFlight, maxInFlight), entered: make(chan string, 16), release: make(chan struct{})}
	gw := server.NewGateway(server.GatewayOptions{Resolver: cache,
		Limiter:  server.NewRateLimiter(store, "test", time.Hour, nil),
		InFlight: fg.inflight, QueueWait: wait, StreamRoutes: []string{"/sync/stream"}})
	e := server.NewEngine(slog.New(slog.NewTextHandler(io.Discard, nil)))
	hold := func(c *gin.Context) {
		s := server.ScopeFrom(c)
		// What a sync handler would write; a refused request must never get here.
		if _, err := s.Pool.Exec(c, `INSERT INTO `+pgx.Identifier{s.Tenant.SchemaName(), "fair_writes"}.Sanitize()+` (user_id) VALUES ($1)`, s.UserID); err != nil {
			_ = c.Error(err)
			c.AbortWithStatus(http.StatusInternalServerError)
			return
		}
		fg.entered <- s.UserID
		// The work's context outlives the client (the gateway detaches it,
		// watch streams excepted): stop when the client is gone, as a
		// handler that checks server.ClientGone would.
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-fg.release:
				c.JSON(http.StatusOK, gin.H{"user": s.UserID})
				return
			case <-c.Request.Context().Done():
				return
			case <-tick.C:
				if server.ClientGone(c) {
					return
				}
			}
		}
	}
	gw.Mount(e, func(public, authed gin.IRouter) {
		authed.GET("/sync/hold", hold)
		authed.GET("/sync/stream", hold)
		authed.GET("/sync/quick", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"user": server.ScopeFrom(c).UserID}) })
		authed.GET("/sync/panic", func(c *gin.Context) { panic("handler bug") })
	})
	srv := httptest.NewServer(e)
	fg.url = srv.URL
	t.Cleanup(func() { srv.Close(); gw.Close(); cancel(); <-done })
	return fg
}

// fairTenant is a gateway test tenant with the scratch table hold writes to.
func fairTenant(t *testing.T, store *tenant.Store) gwTenant {
	t.Helper()
	tn := newGWTenant(t, store)
	_, err := tenanttest.Pool(t).Exec(context.Background(),
		`CREATE TABLE `+pgx.Identifier{tn.t.SchemaName(), "fair_writes"}.Sanitize()+` (user_id text NOT NULL)`)
	require.NoError(t, err)
	return tn
}

func writesOf(t *testing.T, tn gwTenant, user string) int {
	t.Helper()
	var n int
	require.NoError(t, tenanttest.Pool(t).QueryRow(context.Background(),
		`SELECT count(*) FROM `+pgx.Identifier{tn.t.SchemaName(), "fair_writes"}.Sanitize()+` WHERE user_id = $1`, user).Scan(&n))
	return n
}

type fairResp struct {
	status     int
	retryAfter string
	body       map[string]any
}

// get sends a request as user of tn; the answer arrives on the channel.
func (fg *fairGateway) get(ctx context.Context, t *testing.T, tn gwTenant, path, user string) <-chan fairResp {
	ch := make(chan fairResp, 1)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fg.url+"/k/"+tn.pk+path, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token(t, tn.secret, user, time.Now().Add(time.Hour)))
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			ch <- fairResp{status: -1}
			return
		}
		defer res.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(res.Body).Decode(&body)
		ch <- fairResp{status: res.StatusCode, retryAfter: res.Header.Get("Retry-After"), body: body}
	}()
	return ch
}

func (fg *fairGateway) do(t *testing.T, tn gwTenant, path, user string) fairResp {
	t.Helper()
	return <-fg.get(context.Background(), t, tn, path, user)
}

func requireRefused(t *testing.T, r fairResp, limit string) {
	t.Helper()
	require.Equal(t, http.StatusTooManyRequests, r.status, "%v", r.body)
	require.Equal(t, "rate_limited", r.body["error"])
	require.Equal(t, limit, r.body["limit"])
	require.NotEmpty(t, r.body["message"])
	require.Equal(t, "1", r.retryAfter)
}

func TestGatewayInFlightCap(t *testing.T) {
	store := tenanttest.Store(t)
	a, b := fairTenant(t, store), fairTenant(t, store)
	fg := newFairGateway(t, store, 2, 0)

	// Tenant B has a request in progress; tenant A takes both of its slots.
	heldB := fg.get(context.Background(), t, b, "/sync/hold", "b1")
	require.Equal(t, "b1", <-fg.entered)
	first, second := fg.get(context.Background(), t, a, "/sync/hold", "a1"), fg.get(context.Background(), t, a, "/sync/hold", "a2")
	<-fg.entered
	<-fg.entered

	// A's third is refused before any handler runs: nothing is written.
	requireRefused(t, fg.do(t, a, "/sync/hold", "a3"), "requests_in_flight")
	require.Zero(t, writesOf(t, a, "a3"))

	// A capped tenant does not hold up another.
	require.Equal(t, http.StatusOK, fg.do(t, b, "/sync/quick", "b2").status)
	fg.release <- struct{}{}
	fg.release <- struct{}{}
	fg.release <- struct{}{}
	for _, ch := range []<-chan fairResp{first, second, heldB} {
		require.Equal(t, http.StatusOK, (<-ch).status)
	}
	requireIdle(t, fg, a)
	requireIdle(t, fg, b)

	// Watch-like streams take no slot: with two of A's open (and B busy,
	// so a request over the cap would be refused at once), A still gets in.
	heldB = fg.get(context.Background(), t, b, "/sync/hold", "b3")
	require.Equal(t, "b3", <-fg.entered)
	s1, s2 := fg.get(context.Background(), t, a, "/sync/stream", "s1"), fg.get(context.Background(), t, a, "/sync/stream", "s2")
	<-fg.entered
	<-fg.entered
	require.Equal(t, http.StatusOK, fg.do(t, a, "/sync/quick", "a4").status)
	fg.release <- struct{}{}
	fg.release <- struct{}{}
	fg.release <- struct{}{}
	for _, ch := range []<-chan fairResp{s1, s2, heldB} {
		require.Equal(t, http.StatusOK, (<-ch).status)
	}
	requireIdle(t, fg, a)
}

func TestGatewayInFlightQueue(t *testing.T) {
	store := tenanttest.Store(t)
	a := fairTenant(t, store)
	fg := newFairGateway(t, store, 1, time.Minute)

	first := fg.get(context.Background(), t, a, "/sync/hold", "u1")
	<-fg.entered
	// Over the cap with time to wait: queued, and run once the slot frees.
	queued := fg.get(context.Background(), t, a, "/sync/hold", "u2")
	require.Eventually(t, func() bool { _, w := fg.inflight.InFlight(a.t.ID); return w == 1 }, 10*time.Second, 5*time.Millisecond)
	require.Zero(t, writesOf(t, a, "u2"), "a queued request has not started")
	// A queued request whose client goes away leaves the queue.
	ctx, cancel := context.WithCancel(context.Background())
	gone := fg.get(ctx, t, a, "/sync/hold", "u3")
	require.Eventually(t, func() bool { _, w := fg.inflight.InFlight(a.t.ID); return w == 2 }, 10*time.Second, 5*time.Millisecond)
	cancel()
	<-gone
	require.Eventually(t, func() bool { _, w := fg.inflight.InFlight(a.t.ID); return w == 1 }, 10*time.Second, 5*time.Millisecond)

	fg.release <- struct{}{}
	require.Equal(t, http.StatusOK, (<-first).status)
	require.Equal(t, "u2", <-fg.entered)
	fg.release <- struct{}{}
	require.Equal(t, http.StatusOK, (<-queued).status)
	require.Zero(t, writesOf(t, a, "u3"))
	requireIdle(t, fg, a)
}

func TestGatewayInFlightReleasedOnPanicAndDisconnect(t *testing.T) {
	store := tenanttest.Store(t)
	a := fairTenant(t, store)
	fg := newFairGateway(t, store, 1, 0)

	for range 3 {
		require.Equal(t, http.StatusInternalServerError, fg.do(t, a, "/sync/panic", "u").status)
	}
	requireIdle(t, fg, a)
	require.Equal(t, http.StatusOK, fg.do(t, a, "/sync/quick", "u").status, "a panicking handler gave its slot back")

	ctx, cancel := context.WithCancel(context.Background())
	gone := fg.get(ctx, t, a, "/sync/hold", "u")
	<-fg.entered
	cancel()
	require.Equal(t, -1, (<-gone).status)
	requireIdle(t, fg, a)
	require.Equal(t, http.StatusOK, fg.do(t, a, "/sync/quick", "u").status, "a client that went away gave its slot back")
}

func requireIdle(t *testing.T, fg *fairGateway, tn gwTenant) {
	t.Helper()
	require.Eventually(t, func() bool {
		busy, waiting := fg.inflight.InFlight(tn.t.ID)
		return busy == 0 && waiting == 0
	}, 10*time.Second, 5*time.Millisecond, "every slot released")
}

func TestGatewayRateLimitWaitsThenRefuses(t *testing.T) {
	store := tenanttest.Store(t)
	a, b := fairTenant(t, store), fairTenant(t, store)
	rps, burst := 1.0, int64(1)
	require.NoError(t, store.SetQuota(context.Background(), a.t.ID, "", tenant.QuotaOverride{RequestsPerSecond: &rps, RequestBurst: &burst},
		store.Plans(), tenanttest.Actor))

	// With no time to wait, the request over the rate is refused with the
	// delay until the next token, and so is the next one (from the
	// refusal cache, before the tenant is looked up).
	fg := newFairGateway(t, store, 10, 0)
	require.Equal(t, http.StatusOK, fg.do(t, a, "/sync/quick", "u").status)
	r := fg.do(t, a, "/sync/quick", "u")
	requireRefused(t, r, "requests_per_second")
	require.Contains(t, r.body["message"], "rate limit of 1 per second")
	again := fg.do(t, a, "/sync/quick", "u")
	require.Equal(t, r, again, "a cached refusal answers the same")
	requireRefused(t, fg.do(t, a, "/sync/hold", "u"), "requests_per_second")
	require.Zero(t, writesOf(t, a, "u"))
	require.Equal(t, http.StatusOK, fg.do(t, b, "/sync/quick", "u").status, "another tenant is not limited")

	// With time to wait, a request over the rate waits for its token.
	fg = newFairGateway(t, store, 10, 5*time.Second)
	for range 3 {
		require.Equal(t, http.StatusOK, fg.do(t, a, "/sync/quick", "u").status)
	}
}

func TestInFlightLimiterWorkConserving(t *testing.T) {
	l := server.NewInFlightLimiter(1, 2) // one per tenant, two in all
	ctx := context.Background()
	require.True(t, l.Acquire(ctx, 7, 0))
	require.True(t, l.Acquire(ctx, 7, 0), "over its cap, but the replica has room")
	require.True(t, l.Acquire(ctx, 8, 0), "a tenant under its cap always gets in")
	require.False(t, l.Acquire(ctx, 7, 0), "over its cap, replica full, another tenant active")

	// A waiting request gets capacity as it frees, in order.
	got := make(chan bool, 1)
	go func() { got <- l.Acquire(ctx, 7, time.Minute) }()
	require.Eventually(t, func() bool { _, w := l.InFlight(7); return w == 1 }, 10*time.Second, time.Millisecond)
	l.Release(8) // two in all remain: no room yet
	_, w := l.InFlight(7)
	require.Equal(t, 1, w)
	l.Release(7)
	require.True(t, <-got)
	busy, w := l.InFlight(7)
	require.Equal(t, 2, busy)
	require.Zero(t, w)

	// Alone, a tenant over its cap is not refused when its wait runs out:
	// there is nobody to protect, so it waits as for a pool connection.
	go func() { got <- l.Acquire(ctx, 7, time.Millisecond) }()
	require.Eventually(t, func() bool { _, w := l.InFlight(7); return w == 1 }, 10*time.Second, time.Millisecond)
	time.Sleep(30 * time.Millisecond) // past its wait
	l.Release(7)
	require.True(t, <-got)
	l.Release(7)
	l.Release(7)
	busy, w = l.InFlight(7)
	require.Zero(t, busy)
	require.Zero(t, w)
}

// TestYieldLane: a paced request starts at once unless another request
// that was not paced is in progress; then it waits for the gap, or at most
// the bound.
func TestYieldLane(t *testing.T) {
	ctx := context.Background()
	require.Nil(t, server.NewYieldLane(0))
	server.NewYieldLane(0).Enter(ctx, true)() // a nil lane lets everything through

	y := server.NewYieldLane(time.Minute)
	a := y.Enter(ctx, true)
	b := y.Enter(ctx, true) // paced requests do not wait for each other
	a()
	b()

	other := y.Enter(ctx, false) // another tenant's request in progress
	started := make(chan func(), 2)
	go func() { started <- y.Enter(ctx, true) }()
	go func() { started <- y.Enter(ctx, true) }()
	require.Eventually(t, func() bool { return y.Waiting() == 2 }, time.Second, time.Millisecond)
	unpaced := y.Enter(ctx, false) // requests that were not paced never wait
	select {
	case <-started:
		t.Fatal("a paced request started beside another tenant's")
	case <-time.After(20 * time.Millisecond):
	}
	other()
	unpaced() // the gap: both start
	(<-started)()
	(<-started)()
	require.Zero(t, y.Waiting())

	// The bound: a paced request waits at most that long.
	y = server.NewYieldLane(30 * time.Millisecond)
	busy := y.Enter(ctx, false)
	t0 := time.Now()
	y.Enter(ctx, true)()
	require.GreaterOrEqual(t, time.Since(t0), 30*time.Millisecond)
	busy()
	require.Zero(t, y.Waiting())

	// A cancelled request stops waiting and leaves nothing behind.
	y = server.NewYieldLane(time.Minute)
	busy = y.Enter(ctx, false)
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { y.Enter(cctx, true)(); close(done) }()
	require.Eventually(t, func() bool { return y.Waiting() == 1 }, time.Second, time.Millisecond)
	cancel()
	<-done
	require.Zero(t, y.Waiting())
	busy()
	y.Enter(ctx, true)() // balanced: an idle lane admits at once
}
