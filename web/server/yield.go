package server

import (
	"context"
	"sync"
	"time"
)

// YieldLane lets requests of tenants at their rate limit give way to
// everyone else's on this replica.
//
// Why: the rate limiter bounds what a tenant starts per second, and a tenant
// pressing at its limit is paced (its requests wait for their tokens). Its
// admitted requests are still real work on the same cores as the other
// tenants', and when one of them runs beside another tenant's request both
// take longer: at moderate load that overlap is what raises the others'
// tail latency. A paced request has already waited for its token, so a few
// milliseconds more cost its tenant nothing it was promised.
//
// How: a request that was paced (the gateway knows) starts only when no
// request that was not paced is in progress on the replica; otherwise it
// waits for such a gap, at most the lane's bound, and then starts anyway.
// So a tenant at its limit keeps its full rate (the bound is short beside
// the pacing, and a replica that is not saturated has gaps all the time)
// but its work fills the gaps between the other tenants' requests instead of
// running beside them. A tenant alone, or several tenants all at their
// limits, never wait here, and requests that were not paced never do. Watch
// streams do not take part (the gateway keeps them out, as from the
// in-flight cap).
//
// The lane is per replica: it orders work on this replica's cores.
type YieldLane struct {
	bound time.Duration

	mu      sync.Mutex
	others  int           // requests in progress that were not paced
	waiting int           // paced requests waiting for a gap
	gap     chan struct{} // closed when others drops to 0 (then replaced)
}

// NewYieldLane returns a lane whose paced requests wait at most bound for a
// gap; bound <= 0 returns nil, and a nil lane lets every request through.
func NewYieldLane(bound time.Duration) *YieldLane {
	if bound <= 0 {
		return nil
	}
	return &YieldLane{bound: bound, gap: make(chan struct{})}
}

// Enter registers a request in progress; a paced one first waits for its
// turn (see YieldLane). It returns the function that ends the request, to
// be called exactly once. A nil lane returns a no-op.
func (y *YieldLane) Enter(ctx context.Context, paced bool) (leave func()) {
	if y == nil {
		return func() {}
	}
	y.mu.Lock()
	if !paced {
		y.others++
		y.mu.Unlock()
		return y.leave
	}
	if y.others == 0 {
		y.mu.Unlock()
		return func() {}
	}
	y.waiting++
	gap := y.gap
	y.mu.Unlock()

	t := time.NewTimer(y.bound)
	select {
	case <-gap:
	case <-t.C:
	case <-ctx.Done():
	}
	t.Stop()
	y.mu.Lock()
	y.waiting--
	y.mu.Unlock()
	return func() {}
}

func (y *YieldLane) leave() {
	y.mu.Lock()
	defer y.mu.Unlock()
	y.others--
	if y.others == 0 {
		close(y.gap)
		y.gap = make(chan struct{})
	}
}

// Waiting is how many paced requests wait for a gap now.
func (y *YieldLane) Waiting() int {
	if y == nil {
		return 0
	}
	y.mu.Lock()
	defer y.mu.Unlock()
	return y.waiting
}
