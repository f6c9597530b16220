package admin

import (
	"crypto/hmac"
	"crypto/sha256"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// loginLimiter limits login attempts per client address and per email, so
// neither one address guessing many accounts nor many addresses guessing
// one account gets far.
type loginLimiter struct {
	mu      sync.Mutex
	perMin  int
	every   time.Duration
	entries map[string]*limiterEntry
}

type limiterEntry struct {
	l    *rate.Limiter
	seen time.Time
}

func newLoginLimiter(perMinute int, window time.Duration) *loginLimiter {
	return &loginLimiter{perMin: perMinute, every: window, entries: map[string]*limiterEntry{}}
}

// allow consumes one attempt for every key and reports whether all had one
// left.
func (l *loginLimiter) allow(now time.Time, keys ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.entries) > 50000 {
		for k, e := range l.entries {
			if now.Sub(e.seen) > l.every {
				delete(l.entries, k)
			}
		}
	}
	ok := true
	for _, k := range keys {
		e := l.entries[k]
		if e == nil {
			e = &limiterEntry{l: rate.NewLimiter(rate.Every(l.every/time.Duration(l.perMin)), l.perMin)}
			l.entries[k] = e
		}
		e.seen = now
		if !e.l.AllowN(now, 1) {
			ok = false
		}
	}
	return ok
}

func deriveKey(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("syncplane console " + purpose))
	return m.Sum(nil)
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// safeNext keeps post-login redirects inside the console.
func safeNext(s string) string {
	if !strings.HasPrefix(s, "/console/") || strings.ContainsAny(s, "\\\x00\t\r\n") {
		return "/console/tenants"
	}
	if u, err := url.Parse(s); err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/console/tenants"
	}
	return s
}

func normalizeForLimit(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

func equalFoldEmail(a, b string) bool {
	return strings.EqualFold(strings.TrimSpace(a), strings.TrimSpace(b))
}

func itoa(n int) string { return strconv.Itoa(n) }
