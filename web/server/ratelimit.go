package server

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/syncplane/syncplane/tenant"
)

// DemandExchanger shares per-tenant request demand between replicas;
// *tenant.Store implements it over the control-plane database.
type DemandExchanger interface {
	ExchangeDemand(ctx context.Context, replica string, demand map[int64]float64, fresh time.Duration) (map[int64]tenant.DemandTotals, error)
}

// RateLimiter enforces each tenant's aggregate request rate across all
// replicas with a token bucket.
//
// Design. Every replica answers from an in-memory token bucket per tenant,
// with no I/O on the request path. Every Interval it publishes the demand it
// saw per tenant (requests per second it was asked to serve, smoothed,
// allowed or not) to the control plane and reads back the sum over every
// replica that reported within the last few intervals, in one round trip.
// Its bucket then refills at limit × (local demand / total demand), and the
// burst is split the same way. The shares sum to 1 however the load
// balancer spreads a tenant's traffic — evenly, all on one replica, or
// shifting — so the tenant's aggregate rate is its limit. Errors are bounded
// by: the lag of one interval when traffic shifts between replicas, and a
// small floor share (10% split over the replicas) that keeps a replica with
// no recent demand from refusing the first requests of a burst; together
// they keep the aggregate within 20% of the limit (tested with two server
// processes). If the exchange fails, replicas keep their last shares; a
// replica that never exchanged assumes it is alone.
type RateLimiter struct {
	ex       DemandExchanger
	replica  string
	interval time.Duration
	now      func() time.Time
	log      *slog.Logger

	mu      sync.Mutex
	buckets map[int64]*tenantBucket
	last    time.Time
}

type tenantBucket struct {
	limit    float64
	burst    int64
	lim      *rate.Limiter
	count    int64   // requests since the last exchange
	demand   float64 // smoothed requests per second
	share    float64
	replicas int
	seen     time.Time
}

// NewRateLimiter returns a limiter for one replica. interval is how often
// demand is exchanged (e.g. 250ms).
func NewRateLimiter(ex DemandExchanger, replica string, interval time.Duration, log *slog.Logger) *RateLimiter {
	if log == nil {
		log = slog.Default()
	}
	return &RateLimiter{ex: ex, replica: replica, interval: interval, now: time.Now, log: log,
		buckets: map[int64]*tenantBucket{}, last: time.Now()}
}

// Wait takes one token of the tenant's bucket; limit <= 0 is unlimited. A
// request over the rate waits for its token when that token is due within
// maxDelay (the bucket's reservation holds its place, so waiters are
// admitted in order at the tenant's rate). Otherwise, or when ctx ends
// first, it is refused and retry says how long until a token is due. A
// client pressing without pause is thus paced by the server instead of
// costing a refusal every few milliseconds, and waiting requests are bounded
// by rate × maxDelay. Waiting happens without r's lock; maxDelay 0 never
// waits. paced says the request got its token by waiting: its tenant is at
// its rate limit.
func (r *RateLimiter) Wait(ctx context.Context, tenantID int64, limit float64, burst int64, maxDelay time.Duration) (ok, paced bool, retry time.Duration) {
	if limit <= 0 {
		return true, false, 0
	}
	if burst < 1 {
		burst = 1
	}
	now := r.now()
	r.mu.Lock()
	b := r.bucket(tenantID, limit, burst, now)
	b.count++
	b.seen = now
	res := b.lim.ReserveN(now, 1)
	r.mu.Unlock()
	if !res.OK() {
		return false, false, time.Second
	}
	d := res.DelayFrom(now)
	if d <= 0 {
		return true, false, 0
	}
	if d > maxDelay {
		res.CancelAt(now)
		return false, false, d
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true, true, 0
	case <-ctx.Done():
		res.Cancel()
		return false, false, d
	}
}

// Note counts a request towards the tenant's demand without taking a token:
// a request refused before it reached the bucket (see Gateway) still shows
// how much traffic this replica is asked to serve.
func (r *RateLimiter) Note(tenantID int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b, ok := r.buckets[tenantID]; ok {
		b.count++
		b.seen = r.now()
	}
}

// bucket returns the tenant's bucket, created or updated to limit and
// burst. Caller holds r.mu.
func (r *RateLimiter) bucket(tenantID int64, limit float64, burst int64, now time.Time) *tenantBucket {
	b, ok := r.buckets[tenantID]
	if !ok {
		b = &tenantBucket{limit: limit, burst: burst, share: 1, replicas: 1}
		b.lim = rate.NewLimiter(rate.Limit(limit), int(burst))
		r.buckets[tenantID] = b
	}
	if b.limit != limit || b.burst != burst {
		b.limit, b.burst = limit, burst
		b.apply(now)
	}
	return b
}

// apply sets the bucket's local rate and burst from its share.
func (b *tenantBucket) apply(now time.Time) {
	b.lim.SetLimitAt(now, rate.Limit(b.limit*b.share))
	b.lim.SetBurstAt(now, int(math.Max(1, math.Round(float64(b.burst)*b.share))))
}

// Run exchanges demand every interval until ctx ends.
func (r *RateLimiter) Run(ctx context.Context) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.exchange(ctx)
		}
	}
}

func (r *RateLimiter) exchange(ctx context.Context) {
	now := r.now()
	r.mu.Lock()
	elapsed := now.Sub(r.last).Seconds()
	r.last = now
	demand := make(map[int64]float64, len(r.buckets))
	for id, b := range r.buckets {
		if now.Sub(b.seen) > 5*time.Minute {
			delete(r.buckets, id)
			continue
		}
		inst := 0.0
		if elapsed > 0 {
			inst = float64(b.count) / elapsed
		}
		b.count = 0
		// Rising demand counts at once; falling demand decays, so a
		// replica does not give its share away during a short pause.
		b.demand = math.Max(inst, b.demand*0.5)
		if b.demand < 0.01 {
			b.demand = 0
		}
		demand[id] = b.demand
	}
	r.mu.Unlock()
	if len(demand) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, r.interval*4)
	defer cancel()
	totals, err := r.ex.ExchangeDemand(ctx, r.replica, demand, r.interval*4)
	if err != nil {
		r.log.Warn("rate limiter: demand exchange failed; keeping last shares", "err", err)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now = r.now()
	for id, b := range r.buckets {
		tot, ok := totals[id]
		if !ok || tot.Demand <= 0 {
			continue // nobody busy: keep the last share
		}
		replicas := max(tot.Replicas, 1)
		floor := 0.1 / float64(replicas)
		b.share = math.Min(1, math.Max(floor, b.demand/tot.Demand))
		b.replicas = replicas
		b.apply(now)
	}
}
