package tenant

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultPlacement is the placement of the control-plane cluster itself.
const DefaultPlacement = "default"

// Clusters holds one connection pool per PostgreSQL cluster that hosts
// tenant schemas, chosen by a tenant's placement. Nothing else may assume a
// tenant schema lives in the control-plane database.
//
// Sync requests use a cluster's request shards instead (see RequestPool and
// requestShards): as many connections again as the cluster's pool, split
// so that each tenant's requests keep to a few warm connections. The
// cluster's pool serves everything else (provisioning, migrations, the
// control plane, background work).
type Clusters struct {
	mu     sync.RWMutex
	pools  map[string]*pgxpool.Pool
	owned  map[string]bool
	shards map[string]*requestShards // nil entry: too small to split
}

// NewClusters returns a registry whose "default" placement is the
// control-plane pool (not owned: Close leaves it open). Its request shards
// are opened here (they connect lazily) and closed by Close.
func NewClusters(control *pgxpool.Pool) *Clusters {
	c := &Clusters{
		pools:  map[string]*pgxpool.Pool{DefaultPlacement: control},
		owned:  map[string]bool{},
		shards: map[string]*requestShards{},
	}
	// Shards copy a configuration that already opened a pool, so opening
	// them cannot fail; without shards requests use the pool itself.
	c.shards[DefaultPlacement], _ = newRequestShards(control, control.Config())
	return c
}

// Add opens a pool for another placement from its connection string.
func (c *Clusters) Add(ctx context.Context, placement, dsn string) error {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return fmt.Errorf("parse placement %s connection string: %w", placement, err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("open placement %s: %w", placement, err)
	}
	shards, err := newRequestShards(pool, cfg)
	if err != nil {
		pool.Close()
		return fmt.Errorf("open placement %s: %w", placement, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.pools[placement]; ok && c.owned[placement] {
		old.Close()
	}
	if old := c.shards[placement]; old != nil {
		old.close()
	}
	c.pools[placement] = pool
	c.owned[placement] = true
	c.shards[placement] = shards
	return nil
}

// Pool returns the pool of a placement.
func (c *Clusters) Pool(placement string) (*pgxpool.Pool, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	p, ok := c.pools[placement]
	if !ok {
		return nil, fmt.Errorf("placement %q has no configured cluster", placement)
	}
	return p, nil
}

// RequestShards returns the request shards of a placement (nil when its
// cluster's pool is too small to split, or for an unknown placement).
func (c *Clusters) RequestShards(placement string) []*pgxpool.Pool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if s := c.shards[placement]; s != nil {
		return append([]*pgxpool.Pool(nil), s.pools...)
	}
	return nil
}

// RequestPool returns the pool one sync request of a tenant should use: a
// request shard of the placement's cluster, preferring the tenant's home
// shard (see requestShards). The request counts against its shard until
// ctx ends, so ctx must be the request's own context. Without shards it is
// the placement's pool.
func (c *Clusters) RequestPool(ctx context.Context, placement string, tenantID int64) (*pgxpool.Pool, error) {
	c.mu.RLock()
	s := c.shards[placement]
	c.mu.RUnlock()
	if s == nil {
		return c.Pool(placement)
	}
	return s.acquire(ctx, tenantID), nil
}

// Placements lists the configured placements, sorted.
func (c *Clusters) Placements() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]string, 0, len(c.pools))
	for p := range c.pools {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Pools returns every configured pool (one per cluster), in placement order.
func (c *Clusters) Pools() []*pgxpool.Pool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	names := make([]string, 0, len(c.pools))
	for n := range c.pools {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]*pgxpool.Pool, 0, len(names))
	seen := map[*pgxpool.Pool]bool{}
	for _, n := range names {
		if p := c.pools[n]; !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// Close closes the pools this registry opened.
func (c *Clusters) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, p := range c.pools {
		if c.owned[name] {
			p.Close()
		}
	}
	for name, s := range c.shards {
		if s != nil {
			s.close()
		}
		delete(c.shards, name)
	}
}
