package server

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// InFlightLimiter caps how many requests one tenant has in progress on this
// replica, so that a tenant at its rate limit cannot hold every connection
// of the database pool (or every core) while other tenants queue behind it.
// The rate limiter bounds how many requests a tenant starts per second, this
// bounds how many run at once; both are needed because one admitted request
// may cost far more than another.
//
// A request over the cap waits in a per-tenant FIFO queue for a slot to free
// up; the queue is at most queueFactor × max long and a request waits at
// most the time given to Acquire. Slots are handed over directly to the
// oldest waiter, so a tenant's queue cannot be overtaken by its own newer
// requests. Tenants never wait for each other here.
//
// The cap is per replica, as is the pool it protects; the cross-replica
// aggregate is the rate limiter's job.
type InFlightLimiter struct {
	max int

	mu      sync.Mutex
	tenants map[int64]*tenantSlots
}

type tenantSlots struct {
	busy    int
	waiters []chan struct{} // oldest first; closed when handed a slot
}

// queueFactor bounds a tenant's waiting requests to a multiple of its cap.
const queueFactor = 4

// NewInFlightLimiter returns a limiter allowing n requests in progress per
// tenant (at least 1).
func NewInFlightLimiter(n int) *InFlightLimiter {
	return &InFlightLimiter{max: max(n, 1), tenants: map[int64]*tenantSlots{}}
}

// Max is the per-tenant cap.
func (l *InFlightLimiter) Max() int { return l.max }

// Acquire takes one of the tenant's slots, waiting up to wait for one. It
// returns false when the queue is full, the wait ran out or ctx ended; after
// true the caller must Release exactly once.
func (l *InFlightLimiter) Acquire(ctx context.Context, tenantID int64, wait time.Duration) bool {
	l.mu.Lock()
	s := l.tenants[tenantID]
	if s == nil {
		s = &tenantSlots{}
		l.tenants[tenantID] = s
	}
	if s.busy < l.max {
		s.busy++
		l.mu.Unlock()
		return true
	}
	if wait <= 0 || len(s.waiters) >= queueFactor*l.max {
		l.mu.Unlock()
		return false
	}
	ch := make(chan struct{})
	s.waiters = append(s.waiters, ch)
	l.mu.Unlock()

	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	l.mu.Lock()
	for i, w := range s.waiters {
		if w == ch {
			s.waiters = append(s.waiters[:i], s.waiters[i+1:]...)
			l.mu.Unlock()
			return false
		}
	}
	l.mu.Unlock()
	// Handed a slot just as we gave up: pass it on.
	l.Release(tenantID)
	return false
}

// Release returns a slot taken by Acquire, handing it to the oldest waiter.
func (l *InFlightLimiter) Release(tenantID int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.tenants[tenantID]
	if s == nil {
		return
	}
	if len(s.waiters) > 0 {
		close(s.waiters[0])
		s.waiters[0] = nil
		s.waiters = s.waiters[1:]
		return
	}
	s.busy--
	if s.busy <= 0 {
		delete(l.tenants, tenantID)
	}
}

// InFlight reports the tenant's requests in progress and waiting.
func (l *InFlightLimiter) InFlight(tenantID int64) (busy, waiting int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.tenants[tenantID]; s != nil {
		return s.busy, len(s.waiters)
	}
	return 0, 0
}

// refusalCache remembers, per presented API key, that its tenant is over
// its rate until a given time, so that the flood of a client that does not
// back off is answered before any tenant lookup, token verification or
// allocation beyond the answer itself. An entry lives only as long as the
// bucket would refuse anyway (until a token is due within the queue wait),
// so it never refuses a request the bucket would have admitted, except for
// the cross-replica share changing within those milliseconds.
type refusalCache struct {
	mu      sync.RWMutex
	entries map[string]*refusal
}

// refusal is a prepared 429 answer.
type refusal struct {
	tenantID   int64
	until      time.Time
	retryAfter string
	message    string
	body       []byte
}

const maxRefusals = 10_000

func (rc *refusalCache) get(key string, now time.Time) *refusal {
	rc.mu.RLock()
	r := rc.entries[key]
	rc.mu.RUnlock()
	if r == nil || !now.Before(r.until) {
		return nil
	}
	return r
}

func (rc *refusalCache) put(key string, e *Error, tenantID int64, until time.Time) {
	body, err := json.Marshal(errorBody(e))
	if err != nil {
		return
	}
	r := &refusal{tenantID: tenantID, until: until, retryAfter: e.Header["Retry-After"], message: e.Message, body: body}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.entries == nil {
		rc.entries = map[string]*refusal{}
	}
	if len(rc.entries) >= maxRefusals {
		for k, v := range rc.entries {
			if !until.Before(v.until) {
				delete(rc.entries, k)
			}
		}
		if len(rc.entries) >= maxRefusals {
			rc.entries = map[string]*refusal{}
		}
	}
	rc.entries[key] = r
}

// render answers the request with the prepared refusal.
func (r *refusal) render(c *gin.Context) {
	c.Set(ErrorCodeKey, "rate_limited")
	c.Set(ErrorMessageKey, r.message)
	c.Header("Retry-After", r.retryAfter)
	c.Data(http.StatusTooManyRequests, "application/json; charset=utf-8", r.body)
	c.Abort()
}
