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
// replica while the replica is busy, so that a tenant at its rate limit
// cannot hold every connection of the database pool (or every core) while
// other tenants queue behind it. The rate limiter bounds how many requests
// a tenant starts per second, this bounds how many run at once; both are
// needed because one admitted request may cost far more than another.
//
// The cap is work-conserving: a tenant under its cap (max) is admitted at
// once, and one over it is admitted too while fewer than shared requests
// (the pool size) are in progress on the replica in all, so a tenant alone
// on a replica may still use the whole pool. Otherwise the request waits in
// its tenant's FIFO queue; freed capacity goes first to tenants under their
// cap, then to the others. A request that waited the time given to Acquire
// is refused if any other tenant has requests in progress or waiting (it
// would otherwise crowd them out); a tenant alone keeps waiting, as it
// would have for a pool connection. Tenants under their cap never wait.
//
// The cap is per replica, as is the pool it protects; the cross-replica
// aggregate is the rate limiter's job.
type InFlightLimiter struct {
	max, shared int

	mu      sync.Mutex
	total   int // requests in progress, all tenants
	tenants map[int64]*tenantSlots
}

type tenantSlots struct {
	busy    int
	waiters []chan struct{} // oldest first; closed when handed a slot
}

// NewInFlightLimiter returns a limiter allowing n requests in progress per
// tenant (at least 1) once shared requests are in progress in all.
func NewInFlightLimiter(n, shared int) *InFlightLimiter {
	n = max(n, 1)
	return &InFlightLimiter{max: n, shared: max(shared, n), tenants: map[int64]*tenantSlots{}}
}

// Max is the per-tenant cap.
func (l *InFlightLimiter) Max() int { return l.max }

// Acquire takes a slot for the tenant, waiting when it is over its cap and
// the replica is busy (see InFlightLimiter). It returns false when it was
// refused or ctx ended; after true the caller must Release exactly once.
func (l *InFlightLimiter) Acquire(ctx context.Context, tenantID int64, wait time.Duration) bool {
	l.mu.Lock()
	s := l.tenants[tenantID]
	if s == nil {
		s = &tenantSlots{}
		l.tenants[tenantID] = s
	}
	if len(s.waiters) == 0 && (s.busy < l.max || l.total < l.shared) {
		s.busy++
		l.total++
		l.mu.Unlock()
		return true
	}
	if wait <= 0 && l.othersActive(tenantID) {
		l.drop(tenantID, s)
		l.mu.Unlock()
		return false
	}
	ch := make(chan struct{})
	s.waiters = append(s.waiters, ch)
	l.mu.Unlock()

	t := time.NewTimer(max(wait, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ch:
			return true
		case <-t.C:
			l.mu.Lock()
			alone := !l.othersActive(tenantID)
			l.mu.Unlock()
			if alone {
				// Nobody to crowd out: wait on, as for a pool connection,
				// and look again later.
				t.Reset(max(wait, 10*time.Millisecond))
				continue
			}
		case <-ctx.Done():
		}
		break
	}
	l.mu.Lock()
	for i, w := range s.waiters {
		if w == ch {
			s.waiters = append(s.waiters[:i], s.waiters[i+1:]...)
			l.drop(tenantID, s)
			l.mu.Unlock()
			return false
		}
	}
	l.mu.Unlock()
	// Handed a slot just as we gave up: pass it on.
	l.Release(tenantID)
	return false
}

// othersActive reports whether a tenant other than id has requests in
// progress or waiting. Caller holds l.mu.
func (l *InFlightLimiter) othersActive(id int64) bool {
	for tid := range l.tenants {
		if tid != id {
			return true // entries are deleted once idle
		}
	}
	return false
}

// drop forgets an idle tenant. Caller holds l.mu.
func (l *InFlightLimiter) drop(id int64, s *tenantSlots) {
	if s.busy <= 0 && len(s.waiters) == 0 {
		delete(l.tenants, id)
	}
}

// Release returns a slot taken by Acquire and hands freed capacity to
// waiting requests: first of tenants under their cap, then, while the
// replica has room, of the others (in no particular order among tenants,
// oldest first within one).
func (l *InFlightLimiter) Release(tenantID int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.tenants[tenantID]; s != nil {
		s.busy--
		l.total--
		l.drop(tenantID, s)
	}
	for {
		var next *tenantSlots
		for _, s := range l.tenants {
			if len(s.waiters) > 0 && (s.busy < l.max || (next == nil && l.total < l.shared)) {
				next = s
				if s.busy < l.max {
					break
				}
			}
		}
		if next == nil {
			return
		}
		close(next.waiters[0])
		next.waiters[0] = nil
		next.waiters = next.waiters[1:]
		next.busy++
		l.total++
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
