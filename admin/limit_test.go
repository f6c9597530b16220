package admin

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// FuzzSafeNext: a post-login redirect never leaves the console's origin.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/console/t/acme", "//evil.example", "/console//evil", "https://evil.example/console/",
		"/console/\\evil", "/\\evil", "javascript:alert(1)", "/console/../x", "", "/console/%2F%2Fevil"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := safeNext(s)
		if out != "/console/tenants" && out != s {
			t.Fatalf("safeNext(%q) = %q", s, out)
		}
		u, err := url.Parse(out)
		if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(out, "/console/") {
			t.Fatalf("safeNext(%q) = %q leaves the console", s, out)
		}
	})
}

func TestLoginLimiter(t *testing.T) {
	l := newLoginLimiter(3, time.Minute)
	now := time.Unix(1000, 0)
	for i := 0; i < 3; i++ {
		if !l.allow(now, "ip:a", "email:x") {
			t.Fatalf("attempt %d refused", i)
		}
	}
	if l.allow(now, "ip:b", "email:x") {
		t.Fatal("a fourth attempt on one email within a minute was allowed")
	}
	if !l.allow(now, "ip:b", "email:y") {
		t.Fatal("another address and email were refused")
	}
	if !l.allow(now.Add(21*time.Second), "ip:c", "email:x") {
		t.Fatal("the email did not regain an attempt after 20 s")
	}
}
