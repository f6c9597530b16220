package tenant

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgxpool"
)

// shardConns is the size of one request shard: the connections a tenant's
// requests use first. Small enough that a connection serves few tenants,
// large enough that a tenant's requests rarely queue behind one long one.
const shardConns = 4

// Prepared statements kept per shard connection: pgx's default (512) holds
// about ten tenants' worth of sync statements, while a shard connection
// serves about twenty tenants when 100 are active (and more when it lends
// itself out). Beyond the cache every statement is parsed and planned again
// on every use: with 100 active tenants that was two re-prepares per
// operation against 0.2 with 2,048 (docs/performance.md), for about a
// fifth more backend memory. A connection string that sets
// statement_cache_capacity to anything but the default keeps its value.
const (
	defaultStatementCache = 512
	shardStatementCache   = 2048
)

// requestShards splits one cluster's connection budget into small pools
// (shards) and gives every tenant a home shard, so that a tenant's requests
// usually run on the same few connections.
//
// Why: every tenant has its own schema, so its SQL texts are its own, and
// PostgreSQL's per-connection caches (pgx's prepared statements, the plan
// cache, compiled PL/pgSQL triggers, the relcache) hold entries per
// connection and tenant. With one pool every connection serves every active
// tenant and those caches stay cold: with 100 active tenants over 20
// connections planning and parsing took half of PostgreSQL's CPU
// (docs/performance.md). With shards a connection serves its shard's
// tenants.
//
// Affinity is soft and never caps a tenant: a request goes home while its
// home shard has room (fewer requests in flight than connections); else to
// the least busy shard if that one has room or if home is clearly busier
// (by more than a quarter plus one shard's connections). A single busy
// tenant therefore spreads over every connection of the cluster, while many
// tenants that keep every shard busy each stay home.
//
// Shard connections keep more prepared statements (shardStatementCache)
// and plan them generically at once
// (plan_cache_mode force_generic_plan, unless the connection string sets
// it): sync statements are key and range look-ups whose plans do not depend
// on the values, and a (connection, tenant, statement) triple is executed
// only a few times a minute with many tenants, so the default's five custom
// plans before a generic one meant planning on almost every execution
// (including the SQL in PL/pgSQL capture triggers).
//
// Load is counted in requests in flight per shard, from the pick until the
// request's context ends. Long-lived requests (watch streams) count too,
// which only makes their shard look busier and moves work elsewhere.
type requestShards struct {
	pools    []*pgxpool.Pool
	capacity int64 // connections per shard
	inflight []atomic.Int64

	mu    sync.Mutex
	home  map[int64]int // tenant id → shard
	homed []int         // tenants per shard
}

// clusterOf maps every shard pool to the pool of its cluster (the one
// Clusters.Pool returns), for code that keeps per-cluster state keyed by
// pool (the sync engine's watch hubs).
var clusterOf sync.Map

// ClusterPool returns the pool of the cluster p belongs to: p itself unless
// p is a request shard.
func ClusterPool(p *pgxpool.Pool) *pgxpool.Pool {
	if c, ok := clusterOf.Load(p); ok {
		return c.(*pgxpool.Pool)
	}
	return p
}

// newRequestShards opens the shards of cluster, each a pool of shardConns
// connections configured like base, together holding base.MaxConns
// connections. It returns nil when base is too small to split in two.
// Pools connect lazily: opening shards makes no connection.
func newRequestShards(cluster *pgxpool.Pool, base *pgxpool.Config) (*requestShards, error) {
	n := int(base.MaxConns) / shardConns
	if n < 2 {
		return nil, nil
	}
	s := &requestShards{capacity: shardConns, inflight: make([]atomic.Int64, n), home: map[int64]int{}, homed: make([]int, n)}
	for i := 0; i < n; i++ {
		cfg := base.Copy()
		cfg.MaxConns = shardConns
		if i == n-1 {
			cfg.MaxConns += base.MaxConns % shardConns
		}
		cfg.MinConns, cfg.MinIdleConns = 0, 0
		if _, set := cfg.ConnConfig.RuntimeParams["plan_cache_mode"]; !set {
			cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
		}
		if cfg.ConnConfig.StatementCacheCapacity == defaultStatementCache {
			cfg.ConnConfig.StatementCacheCapacity = shardStatementCache
		}
		p, err := pgxpool.NewWithConfig(context.Background(), cfg)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("open request shard %d: %w", i, err)
		}
		s.pools = append(s.pools, p)
		clusterOf.Store(p, cluster)
	}
	return s, nil
}

// homeOf returns the tenant's home shard, assigning the shard with the
// fewest tenants the first time a tenant is seen (ties: the lowest index),
// so active tenants spread evenly whatever their ids.
func (s *requestShards) homeOf(tenantID int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h, ok := s.home[tenantID]; ok {
		return h
	}
	h := 0
	for i, n := range s.homed {
		if n < s.homed[h] {
			h = i
		}
	}
	s.home[tenantID] = h
	s.homed[h]++
	return h
}

// pick chooses the shard for one request of the tenant (see requestShards).
func (s *requestShards) pick(tenantID int64) int {
	h := s.homeOf(tenantID)
	lh := s.inflight[h].Load()
	if lh < s.capacity {
		return h
	}
	m, lm := h, lh
	for i := range s.inflight {
		if l := s.inflight[i].Load(); l < lm {
			m, lm = i, l
		}
	}
	if lm < s.capacity || lh > lm+lm/4+s.capacity {
		return m
	}
	return h
}

// acquire picks the shard for a request of the tenant and counts the
// request in flight there until ctx ends. A context that never ends is not
// counted.
func (s *requestShards) acquire(ctx context.Context, tenantID int64) *pgxpool.Pool {
	i := s.pick(tenantID)
	if ctx.Done() != nil {
		s.inflight[i].Add(1)
		context.AfterFunc(ctx, func() { s.inflight[i].Add(-1) })
	}
	return s.pools[i]
}

func (s *requestShards) close() {
	for _, p := range s.pools {
		clusterOf.Delete(p)
		p.Close()
	}
}
