package tenant

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
)

// testShards opens request shards over an unreachable address: pools
// connect lazily and these tests only route.
func testShards(t *testing.T, maxConns int32) *requestShards {
	t.Helper()
	cfg, err := pgxpool.ParseConfig("postgres://nobody@127.0.0.1:1/none?sslmode=disable")
	require.NoError(t, err)
	cfg.MaxConns = maxConns
	cluster, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(cluster.Close)
	s, err := newRequestShards(cluster, cfg)
	require.NoError(t, err)
	if s != nil {
		t.Cleanup(s.close)
		for _, p := range s.pools {
			require.Same(t, cluster, ClusterPool(p))
		}
	}
	return s
}

func TestRequestShardsSplitTheBudget(t *testing.T) {
	require.Nil(t, testShards(t, 7), "a pool too small to split has no shards")
	s := testShards(t, 22)
	require.Len(t, s.pools, 5)
	var total int32
	for _, p := range s.pools {
		total += p.Config().MaxConns
	}
	require.EqualValues(t, 22, total, "the shards hold the cluster's connection budget, no more")
	for _, p := range s.pools {
		require.Equal(t, "force_generic_plan", p.Config().ConnConfig.RuntimeParams["plan_cache_mode"])
		require.Equal(t, shardStatementCache, p.Config().ConnConfig.StatementCacheCapacity)
	}
}

// TestRequestShardsKeepExplicitSettings: settings the connection string
// gives win over the shards' own defaults.
func TestRequestShardsKeepExplicitSettings(t *testing.T) {
	cfg, err := pgxpool.ParseConfig("postgres://nobody@127.0.0.1:1/none?sslmode=disable&statement_cache_capacity=100&plan_cache_mode=auto")
	require.NoError(t, err)
	cfg.MaxConns = 8
	cluster, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(cluster.Close)
	s, err := newRequestShards(cluster, cfg)
	require.NoError(t, err)
	t.Cleanup(s.close)
	for _, p := range s.pools {
		require.Equal(t, 100, p.Config().ConnConfig.StatementCacheCapacity)
		require.Equal(t, "auto", p.Config().ConnConfig.RuntimeParams["plan_cache_mode"])
	}
}

func TestRequestShardsSpreadHomes(t *testing.T) {
	s := testShards(t, 20)
	for id := int64(1000); id < 1100; id++ {
		h := s.homeOf(id)
		require.Equal(t, h, s.homeOf(id), "a tenant's home is stable")
	}
	require.Equal(t, []int{20, 20, 20, 20, 20}, s.homed)
}

func TestRequestShardsRouting(t *testing.T) {
	s := testShards(t, 16) // 4 shards of 4
	const tenant = 7
	home := s.homeOf(tenant)
	set := func(loads ...int64) {
		for i, l := range loads {
			s.inflight[i].Store(l)
		}
	}
	other := (home + 1) % 4

	set(0, 0, 0, 0)
	require.Equal(t, home, s.pick(tenant), "home while it has room")

	set(4, 4, 4, 4)
	s.inflight[home].Store(4)
	s.inflight[other].Store(2)
	require.Equal(t, other, s.pick(tenant), "borrows a shard with room when home is full")

	set(40, 40, 40, 40)
	s.inflight[home].Store(45)
	require.Equal(t, home, s.pick(tenant), "stays home when every shard is about as busy")

	s.inflight[home].Store(60)
	require.NotEqual(t, home, s.pick(tenant), "leaves home when it is clearly busier")
}

// One tenant alone must reach every connection of the cluster: affinity
// must not cap it to its home shard.
func TestRequestShardsNeverCapOneTenant(t *testing.T) {
	s := testShards(t, 20)
	ctx, cancel := context.WithCancel(context.Background())
	for i := 0; i < 1000; i++ {
		s.acquire(ctx, 42)
	}
	var lo, hi int64 = 1 << 62, 0
	for i := range s.inflight {
		l := s.inflight[i].Load()
		lo, hi = min(lo, l), max(hi, l)
	}
	require.Greater(t, lo, int64(100), "every shard serves the busy tenant")
	require.LessOrEqual(t, hi, lo+lo/4+s.capacity+1, "no shard holds much more than the others")

	cancel()
	require.Eventually(t, func() bool {
		for i := range s.inflight {
			if s.inflight[i].Load() != 0 {
				return false
			}
		}
		return true
	}, 5*time.Second, time.Millisecond, "requests leave their shard when their context ends")

	// A context that never ends is not counted (it could not be released).
	s.acquire(context.Background(), 42)
	for i := range s.inflight {
		require.Zero(t, s.inflight[i].Load())
	}
}

// Many tenants that keep every shard busy each stay on their home shard.
func TestRequestShardsKeepTenantsHome(t *testing.T) {
	s := testShards(t, 20)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	away := 0
	for round := 0; round < 10; round++ {
		for id := int64(1); id <= 100; id++ {
			if s.pools[s.homeOf(id)] != s.acquire(ctx, id) {
				away++
			}
		}
	}
	// The first requests fill every shard's connections from whoever comes
	// first; after that every tenant stays home.
	require.LessOrEqual(t, away, 20, "requests away from home")
}
