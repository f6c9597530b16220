package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/syncplane/syncplane/tenant"
)

// KeyHeader carries an API key on the plain /sync paths.
const KeyHeader = "X-Syncplane-Key"

// Resolver finds tenants by API key or slug; *tenant.Cache implements it.
type Resolver interface {
	ResolveKey(ctx context.Context, key string) (*tenant.Runtime, tenant.KeyRecord, error)
	ResolveSlug(ctx context.Context, slug string) (*tenant.Runtime, error)
}

// GatewayOptions configure a Gateway.
type GatewayOptions struct {
	Resolver Resolver
	// DefaultTenant, when set, serves that tenant on the plain paths to
	// requests without a key. Meant for dev and testing only.
	DefaultTenant string
	// VerifierOptions are passed to every tenant's TokenVerifier.
	VerifierOptions []VerifierOption
	// Limiter, when set, enforces each tenant's request rate quota.
	Limiter *RateLimiter
	// InFlight, when set, caps each tenant's requests in progress on this
	// replica (see InFlightLimiter); StreamRoutes are not counted.
	InFlight *InFlightLimiter
	// QueueWait is the longest a request over its tenant's rate or
	// in-flight cap waits for its turn before it is refused with 429
	// (0: refused at once).
	QueueWait time.Duration
	// Yield, when set, makes requests paced by their tenant's rate limit
	// give way to the other requests in progress (see YieldLane).
	Yield *YieldLane
	// StreamRoutes are route templates (as on the plain paths, e.g.
	// "/sync/watch") of requests that stay open for minutes while mostly
	// idle; they take a token but no in-flight slot.
	StreamRoutes []string
	// Metrics, when set, counts refusals and waits by limit.
	Metrics *Metrics
	// Usage, when set, meters every request that reached a tenant.
	Usage UsageRecorder
	Log   *slog.Logger
}

// UsageRecorder meters requests per tenant; *tenant.Meter implements it.
type UsageRecorder interface {
	Request(tenantID int64, endpoint string, bytesIn, bytesOut int64)
}

// Gateway routes sync traffic to its tenant by API key and verifies the
// tenant's end-user tokens.
type Gateway struct {
	opts GatewayOptions
	ctx  context.Context // lives as long as the gateway; JWKS refreshers hang off it
	stop context.CancelFunc

	mu        sync.Mutex
	verifiers map[int64]*cachedVerifier

	refused refusalCache
	streams map[string]bool
}

type cachedVerifier struct {
	updated time.Time
	v       *TokenVerifier
}

// NewGateway returns a gateway; Close releases its token verifiers.
func NewGateway(opts GatewayOptions) *Gateway {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	ctx, stop := context.WithCancel(context.Background())
	g := &Gateway{opts: opts, ctx: ctx, stop: stop, verifiers: map[int64]*cachedVerifier{}, streams: map[string]bool{}}
	for _, r := range opts.StreamRoutes {
		g.streams[r] = true
	}
	return g
}

// Close stops background JWKS refreshes.
func (g *Gateway) Close() {
	g.stop()
	g.mu.Lock()
	defer g.mu.Unlock()
	for id, cv := range g.verifiers {
		cv.v.Close()
		delete(g.verifiers, id)
	}
}

// Mount registers the tenant routes twice: under /k/<key> (the key in the
// base URL, for clients configurable only with a base URL) and on the plain
// paths (the key in the X-Syncplane-Key header, or the dev default tenant).
// routes gets a group that only resolves the tenant and one that also
// verifies the end-user token.
func (g *Gateway) Mount(e *gin.Engine, routes func(public, authed gin.IRouter)) {
	prefixed := e.Group("/k/:apikey", g.resolve(func(c *gin.Context) string { return c.Param("apikey") }))
	routes(prefixed, prefixed.Group("", g.authenticate))
	plain := e.Group("", g.resolve(func(c *gin.Context) string { return c.GetHeader(KeyHeader) }))
	routes(plain, plain.Group("", g.authenticate))
}

// MountSecret registers routes for the tenant's own backend: the tenant is
// resolved from a secret key sent as "Authorization: Bearer sp_sk_…" or in
// the X-Syncplane-Key header (never in the URL, where it would be logged).
func (g *Gateway) MountSecret(e *gin.Engine, routes func(r gin.IRouter)) {
	routes(e.Group("", g.resolveKey(func(c *gin.Context) string {
		if k := c.GetHeader(KeyHeader); k != "" {
			return k
		}
		tok, _ := bearer(c.GetHeader("Authorization"))
		return tok
	}, true)))
}

func (g *Gateway) resolve(keyOf func(*gin.Context) string) gin.HandlerFunc {
	return g.resolveKey(keyOf, false)
}

// resolveKey resolves the request's tenant from its API key (or the dev
// default tenant), admits it under the tenant's rate and in-flight limits
// and stores the SyncScope. With secretOnly, only a secret key will do.
//
// Order matters for a tenant flooding at its limit: a key whose tenant was
// refused moments ago is refused again first, before the tenant lookup,
// token verification or reading the body; the in-flight slot is taken last,
// after the rate limiter, and held until the handlers return (or panic).
func (g *Gateway) resolveKey(keyOf func(*gin.Context) string, secretOnly bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		key := strings.TrimSpace(keyOf(c))
		if secretOnly && tenant.KeyKindOf(key) != tenant.KeySecret {
			RenderError(c, NewError(http.StatusUnauthorized, "invalid_api_key",
				"a secret key is required: send Authorization: Bearer sp_sk_…"))
			return
		}
		if key != "" && g.opts.Limiter != nil {
			if r := g.refused.get(key, time.Now()); r != nil {
				g.opts.Limiter.Note(r.tenantID)
				g.opts.Metrics.observeRefusal(limitRate)
				r.render(c)
				return
			}
		}
		var rt *tenant.Runtime
		var rec tenant.KeyRecord
		var err error
		switch {
		case key != "":
			rt, rec, err = g.opts.Resolver.ResolveKey(c.Request.Context(), key)
		case g.opts.DefaultTenant != "":
			rt, err = g.opts.Resolver.ResolveSlug(c.Request.Context(), g.opts.DefaultTenant)
		default:
			RenderError(c, NewError(http.StatusUnauthorized, "invalid_api_key",
				"missing API key: use the base URL https://<host>/k/<publishable key> or the "+KeyHeader+" header"))
			return
		}
		if err != nil {
			if errors.Is(err, tenant.ErrInvalidAPIKey) || errors.Is(err, tenant.ErrNotFound) {
				RenderError(c, NewError(http.StatusUnauthorized, "invalid_api_key", "the API key is unknown or revoked"))
				return
			}
			Abort(c, "gateway_failed", err)
			return
		}
		switch rt.Tenant.State {
		case tenant.StateActive:
		case tenant.StateSuspended:
			RenderError(c, NewError(http.StatusForbidden, "tenant_suspended",
				"tenant "+string(rt.Tenant.Slug)+" is suspended; sync is paused until an operator resumes it"))
			return
		default:
			RenderError(c, NewError(http.StatusUnauthorized, "invalid_api_key", "the API key is unknown or revoked"))
			return
		}
		paced, ok := g.admit(c, key, rt)
		if !ok {
			return
		}
		stream := g.streams[strings.TrimPrefix(c.FullPath(), "/k/:apikey")]
		if l := g.opts.InFlight; l != nil && !stream {
			start := time.Now()
			if !l.Acquire(c.Request.Context(), rt.Tenant.ID, g.opts.QueueWait) {
				if d := time.Since(start); d > time.Millisecond {
					g.opts.Metrics.observeWait(limitInFlight, d, false)
				}
				g.opts.Metrics.observeRefusal(limitInFlight)
				e := NewError(http.StatusTooManyRequests, "rate_limited", fmt.Sprintf(
					"tenant %s has %d requests in progress on this server, its limit; retry in 1 s",
					rt.Tenant.Slug, l.Max()))
				e.Extra = map[string]any{"limit": limitInFlight}
				e.Header = map[string]string{"Retry-After": "1"}
				RenderError(c, e)
				return
			}
			if d := time.Since(start); d > time.Millisecond {
				g.opts.Metrics.observeWait(limitInFlight, d, true)
			}
			defer l.Release(rt.Tenant.ID)
		}
		WithScope(c, &SyncScope{
			Tenant: &rt.Tenant, Pool: rt.Pool, Schema: rt.Schema, SchemaVersion: rt.SchemaVersion,
			Limits: rt.Limits, KeyKind: rec.Kind, auth: rt.Auth, authUpdated: rt.AuthUpdatedAt,
		})
		if !stream {
			start := time.Now()
			leave := g.opts.Yield.Enter(c.Request.Context(), paced)
			if d := time.Since(start); d > time.Millisecond {
				g.opts.Metrics.observeWait(limitYield, d, true)
			}
			defer leave()

			// Admitted work runs to its end even when the client goes away
			// (bounded by workTimeout): pgx closes a connection whose query
			// was interrupted, and its replacement starts with cold caches
			// (prepared statements, plans, relcache), which are per tenant
			// schema, so with many tenants re-warming a connection costs far
			// more than finishing one request. Mobile clients drop requests
			// all the time. A push commit that completes is replayed
			// idempotently when the client retries. Watch streams keep the
			// client's context: they end when the client leaves.
			c.Set(clientContextKey, c.Request.Context())
			ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request.Context()), workTimeout)
			defer cancel()
			c.Request = c.Request.WithContext(ctx)
		}
		c.Next()
		if u := g.opts.Usage; u != nil {
			// Both entry styles count as the same endpoint.
			endpoint := strings.TrimPrefix(c.FullPath(), "/k/:apikey")
			u.Request(rt.Tenant.ID, c.Request.Method+" "+endpoint, c.Request.ContentLength, int64(c.Writer.Size()))
		}
	}
}

// admit applies the tenant's request rate: the request goes on at once,
// after waiting up to QueueWait for its token (paced), or is refused with
// 429 and Retry-After; the refusal is then cached for the key until a token
// could be due within QueueWait.
func (g *Gateway) admit(c *gin.Context, key string, rt *tenant.Runtime) (paced, ok bool) {
	l := g.opts.Limiter
	if l == nil {
		return false, true
	}
	start := time.Now()
	ok, paced, wait := l.Wait(c.Request.Context(), rt.Tenant.ID, rt.Limits.RequestsPerSecond, rt.Limits.RequestBurst, g.opts.QueueWait)
	if d := time.Since(start); d > time.Millisecond {
		g.opts.Metrics.observeWait(limitRate, d, ok)
	}
	if ok {
		return paced, true
	}
	g.opts.Metrics.observeRefusal(limitRate)
	secs := max(int(math.Ceil(wait.Seconds())), 1)
	e := NewError(http.StatusTooManyRequests, "rate_limited", fmt.Sprintf(
		"request rate limit of %g per second reached for tenant %s; retry in %d s",
		rt.Limits.RequestsPerSecond, rt.Tenant.Slug, secs))
	e.Extra = map[string]any{"limit": limitRate}
	e.Header = map[string]string{"Retry-After": strconv.Itoa(secs)}
	if key != "" && wait > g.opts.QueueWait && c.Request.Context().Err() == nil {
		g.refused.put(key, e, rt.Tenant.ID, start.Add(wait-g.opts.QueueWait))
	}
	RenderError(c, e)
	return false, false
}

// clientContextKey holds the client's own request context once the work
// runs detached from it (see ClientGone).
const clientContextKey = "syncplane.client_context"

// ClientGone reports whether the client of c's request has gone away (or
// its request ended otherwise), also when the work runs detached from it.
func ClientGone(c *gin.Context) bool {
	if v, ok := c.Get(clientContextKey); ok {
		if ctx, ok := v.(context.Context); ok {
			return ctx.Err() != nil
		}
	}
	return c.Request.Context().Err() != nil
}

// workTimeout bounds an admitted request's work once it no longer follows
// its client's cancellation (see the gateway); the longest requests (a
// snapshot session over a million rows) take seconds.
const workTimeout = 2 * time.Minute

// Limits named in refusals (the "limit" member of a 429) and metrics.
const (
	limitRate     = "requests_per_second"
	limitInFlight = "requests_in_flight"
	limitYield    = "yield" // waits only: a paced request giving way (YieldLane)
)

func (g *Gateway) authenticate(c *gin.Context) {
	s := ScopeFrom(c)
	raw, ok := bearer(c.GetHeader("Authorization"))
	if !ok {
		RenderError(c, NewError(http.StatusUnauthorized, "authentication_failed",
			"missing bearer token: send Authorization: Bearer <end-user JWT>"))
		return
	}
	if s.auth == nil {
		RenderError(c, NewError(http.StatusUnauthorized, "authentication_failed",
			"tenant "+string(s.Tenant.Slug)+" has not configured end-user authentication"))
		return
	}
	v, err := g.verifier(s.Tenant.ID, *s.auth, s.authUpdated)
	if err != nil {
		Abort(c, "gateway_failed", err)
		return
	}
	sub, err := v.Verify(c.Request.Context(), raw)
	if err != nil {
		msg := "invalid bearer token"
		var te *TokenError
		if errors.As(err, &te) && te.Reason != "" {
			msg += ": " + te.Reason
		}
		RenderError(c, NewError(http.StatusUnauthorized, "authentication_failed", msg))
		return
	}
	s.UserID = sub
	c.Next()
}

// verifier returns the tenant's token verifier, rebuilding it when the
// tenant's auth settings changed. Building happens outside the lock: a JWKS
// verifier's first fetch may take seconds and must not hold up other tenants.
func (g *Gateway) verifier(tenantID int64, a tenant.AuthSettings, updated time.Time) (*TokenVerifier, error) {
	g.mu.Lock()
	cv, ok := g.verifiers[tenantID]
	g.mu.Unlock()
	if ok && cv.updated.Equal(updated) {
		return cv.v, nil
	}
	v, err := NewTokenVerifier(g.ctx, a, g.opts.VerifierOptions...)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if cur, ok := g.verifiers[tenantID]; ok {
		if cur.updated.Equal(updated) {
			v.Close() // another request built it meanwhile
			return cur.v, nil
		}
		cur.v.Close()
	}
	g.verifiers[tenantID] = &cachedVerifier{updated: updated, v: v}
	return v, nil
}

func bearer(h string) (string, bool) {
	const p = "bearer "
	if len(h) <= len(p) || !strings.EqualFold(h[:len(p)], p) {
		return "", false
	}
	tok := strings.TrimSpace(h[len(p):])
	return tok, tok != ""
}
