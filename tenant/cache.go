package tenant

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Runtime is everything request handling needs to know about one tenant,
// loaded once and cached.
type Runtime struct {
	Tenant Tenant
	// Auth is the end-user token configuration; nil until the tenant sets one.
	Auth          *AuthSettings
	AuthUpdatedAt time.Time
	// Schema is the current table definition; nil until one is applied.
	Schema        *Schema
	SchemaVersion int
	// Pool reaches the cluster holding the tenant's schema. In a runtime
	// from ResolveKey or ResolveSlug it is the request's shard of that
	// cluster (Clusters.RequestPool).
	Pool *pgxpool.Pool
	// Limits are the tenant's effective quotas (plan plus overrides).
	Limits Limits
}

// Cache resolves API keys and tenants for the gateway from memory. Entries
// are dropped on every replica when the control plane announces a change on
// ControlChannel (within milliseconds), and expire after a TTL as a safety
// net should a notification be missed.
type Cache struct {
	store *Store
	ttl   time.Duration
	now   func() time.Time

	mu      sync.Mutex
	keys    map[string]cachedKey // by hex key hash
	tenants map[int64]cachedRuntime
	loads   map[int64]*runtimeLoad // runtimes being loaded, by tenant
	gen     map[int64]uint64       // bumped on invalidation; fills from older generations are dropped
	allGen  uint64
	keyGen  uint64              // bumped on any invalidation; key fills from older generations are dropped
	used    map[int64]time.Time // key id → last use, flushed in batches

	listening chan struct{} // closed once the first LISTEN is established
	once      sync.Once
}

type cachedKey struct {
	rec     KeyRecord
	err     error // ErrInvalidAPIKey for a negative entry
	expires time.Time
}

type cachedRuntime struct {
	rt      *Runtime
	expires time.Time
}

const maxCachedKeys = 100_000

// NewCache returns a cache over store; ttl bounds staleness if a
// notification is lost (e.g. 30s).
func NewCache(store *Store, ttl time.Duration) *Cache {
	return &Cache{
		store: store, ttl: ttl, now: time.Now,
		keys: map[string]cachedKey{}, tenants: map[int64]cachedRuntime{}, loads: map[int64]*runtimeLoad{},
		gen: map[int64]uint64{}, used: map[int64]time.Time{},
		listening: make(chan struct{}),
	}
}

// ResolveKey resolves a presented API key to its tenant. Unknown, malformed
// and revoked keys are ErrInvalidAPIKey.
func (c *Cache) ResolveKey(ctx context.Context, key string) (*Runtime, KeyRecord, error) {
	if KeyKindOf(key) == "" {
		return nil, KeyRecord{}, ErrInvalidAPIKey
	}
	h := hex.EncodeToString(KeyHash(key))
	now := c.now()
	c.mu.Lock()
	e, ok := c.keys[h]
	gen := c.keyGen
	c.mu.Unlock()
	if !ok || now.After(e.expires) {
		rec, err := c.store.LookupKey(ctx, key)
		if err != nil && !errors.Is(err, ErrInvalidAPIKey) {
			return nil, KeyRecord{}, err
		}
		e = cachedKey{rec: rec, err: err, expires: now.Add(c.ttl)}
		if err != nil {
			e.expires = now.Add(5 * time.Second) // short negative entries
		}
		c.mu.Lock()
		if c.keyGen == gen {
			if len(c.keys) >= maxCachedKeys {
				c.keys = map[string]cachedKey{}
			}
			c.keys[h] = e
		}
		c.mu.Unlock()
	}
	if e.err != nil {
		return nil, KeyRecord{}, e.err
	}
	if e.rec.Revoked {
		return nil, KeyRecord{}, ErrInvalidAPIKey
	}
	rt, err := c.TenantRuntime(ctx, e.rec.TenantID)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, KeyRecord{}, ErrInvalidAPIKey
		}
		return nil, KeyRecord{}, err
	}
	c.mu.Lock()
	c.used[e.rec.ID] = now
	c.mu.Unlock()
	if rt, err = c.forRequest(ctx, rt); err != nil {
		return nil, KeyRecord{}, err
	}
	return rt, e.rec, nil
}

// ResolveSlug resolves a tenant by slug (the dev default tenant).
func (c *Cache) ResolveSlug(ctx context.Context, slug string) (*Runtime, error) {
	t, err := c.store.Tenant(ctx, slug)
	if err != nil {
		return nil, err
	}
	rt, err := c.TenantRuntime(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	return c.forRequest(ctx, rt)
}

// forRequest returns a copy of rt whose Pool is the request shard chosen
// for one request (Clusters.RequestPool); ResolveKey and ResolveSlug are
// called once per request with the request's context.
func (c *Cache) forRequest(ctx context.Context, rt *Runtime) (*Runtime, error) {
	pool, err := c.store.clusters.RequestPool(ctx, rt.Tenant.Placement, rt.Tenant.ID)
	if err != nil {
		return nil, err
	}
	if pool == rt.Pool {
		return rt, nil
	}
	cp := *rt
	cp.Pool = pool
	return &cp, nil
}

// TenantRuntime returns the cached runtime of a tenant, loading it on a miss.
// Concurrent misses of one tenant share one load (requests of a busy tenant
// all miss together when its entry expires), unless the tenant was
// invalidated after that load began.
func (c *Cache) TenantRuntime(ctx context.Context, id int64) (*Runtime, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.tenants[id]
	gen, all := c.gen[id], c.allGen
	if ok && now.Before(e.expires) {
		c.mu.Unlock()
		return e.rt, nil
	}
	if l := c.loads[id]; l != nil && l.gen == gen && l.all == all {
		c.mu.Unlock()
		select {
		case <-l.done:
			return l.rt, l.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	l := &runtimeLoad{gen: gen, all: all, done: make(chan struct{})}
	c.loads[id] = l
	c.mu.Unlock()

	// The load outlives a caller that gives up: others may be waiting.
	l.rt, l.err = c.store.LoadRuntime(context.WithoutCancel(ctx), id)
	c.mu.Lock()
	if c.loads[id] == l {
		delete(c.loads, id)
	}
	if l.err == nil && c.gen[id] == gen && c.allGen == all {
		c.tenants[id] = cachedRuntime{rt: l.rt, expires: now.Add(c.ttl)}
	}
	c.mu.Unlock()
	close(l.done)
	return l.rt, l.err
}

// runtimeLoad is one tenant's runtime being loaded, for the callers that
// missed while it runs; rt and err are set before done closes.
type runtimeLoad struct {
	gen, all uint64
	done     chan struct{}
	rt       *Runtime
	err      error
}

// Invalidate drops everything cached about one tenant.
func (c *Cache) Invalidate(tenantID int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen[tenantID]++
	c.keyGen++
	delete(c.tenants, tenantID)
	for h, e := range c.keys {
		if e.err == nil && e.rec.TenantID == tenantID {
			delete(c.keys, h)
		}
	}
}

// InvalidateAll drops the whole cache (e.g. after the listener reconnects,
// when notifications may have been missed).
func (c *Cache) InvalidateAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.allGen++
	c.keyGen++
	c.keys = map[string]cachedKey{}
	c.tenants = map[int64]cachedRuntime{}
}

// Listening is closed once the cache receives control-plane notifications.
func (c *Cache) Listening() <-chan struct{} { return c.listening }

// Run listens for control-plane notifications on a dedicated connection and
// flushes key last-use times every flushEvery, until ctx ends.
func (c *Cache) Run(ctx context.Context, flushEvery time.Duration) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(flushEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				c.flushUse(context.WithoutCancel(ctx))
				return
			case <-t.C:
				c.flushUse(ctx)
			}
		}
	}()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := c.listen(ctx)
		if ctx.Err() != nil {
			break
		}
		slog.Warn("control-plane listener lost; reconnecting", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
	wg.Wait()
}

func (c *Cache) listen(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, c.store.db.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("connect listener: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{ControlChannel}.Sanitize()); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// Whatever changed while we were not listening is unknown: start clean.
	c.InvalidateAll()
	c.once.Do(func() { close(c.listening) })
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if id, ok := strings.CutPrefix(n.Payload, "t:"); ok {
			if tid, err := strconv.ParseInt(id, 10, 64); err == nil {
				c.Invalidate(tid)
				continue
			}
		}
		c.InvalidateAll()
	}
}

func (c *Cache) flushUse(ctx context.Context) {
	c.mu.Lock()
	used := c.used
	c.used = map[int64]time.Time{}
	c.mu.Unlock()
	if err := c.store.TouchKeys(ctx, used); err != nil {
		slog.Warn("flush key use", "err", err)
	}
}

// LoadRuntime reads a tenant's runtime view from the control plane.
func (s *Store) LoadRuntime(ctx context.Context, id int64) (*Runtime, error) {
	t, err := s.TenantByID(ctx, id)
	if err != nil {
		return nil, err
	}
	rt := &Runtime{Tenant: *t}
	if rt.Pool, err = s.PoolFor(t); err != nil {
		return nil, err
	}
	auth, updated, err := s.Auth(ctx, id)
	switch {
	case err == nil:
		rt.Auth, rt.AuthUpdatedAt = auth, updated
	case !errors.Is(err, ErrNotFound):
		return nil, err
	}
	q, err := s.Quota(ctx, t, s.plans)
	if err != nil {
		return nil, err
	}
	rt.Limits = q.Limits
	v, err := s.CurrentTables(ctx, id)
	switch {
	case err == nil:
		rt.Schema, rt.SchemaVersion = v.Schema, v.Version
	case !errors.Is(err, ErrNoDefinition):
		return nil, err
	}
	return rt, nil
}
