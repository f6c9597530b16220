package device

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestRetryOnTransientStatuses(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Oversync-Source-ID") == "" || r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(400)
			return
		}
		n := calls.Add(1)
		switch {
		case r.URL.Path == "/k/x/sync/capabilities" && n == 1:
			w.WriteHeader(503)
			w.Write([]byte(`{"error":"service_unavailable","message":"draining"}`))
		case r.URL.Path == "/k/x/sync/capabilities" && n == 2:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(429)
			w.Write([]byte(`{"error":"rate_limited","message":"slow down"}`))
		case r.URL.Path == "/k/x/sync/capabilities":
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"protocol_version":"v1","schema_version":1,"features":{"connect_lifecycle":true}}`))
		default:
			w.WriteHeader(404)
			w.Write([]byte(`{"error":"not_found","message":"no"}`))
		}
	}))
	defer srv.Close()
	c := openTest(t, testSchema(t), srv.URL+"/k/x/", func(context.Context) (string, error) { return "tok", nil })
	start := time.Now()
	caps, err := c.Capabilities(context.Background())
	if err != nil || !caps["connect_lifecycle"] || calls.Load() != 3 {
		t.Fatalf("caps %v err %v after %d calls", caps, err, calls.Load())
	}
	if el := time.Since(start); el < 900*time.Millisecond {
		t.Fatalf("Retry-After: 1 not honoured (%s)", el)
	}
	// Non-retryable statuses fail at once, decoded.
	calls.Store(0)
	err = c.call(context.Background(), request{method: http.MethodGet, path: "/sync/nope"}, nil)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 404 || ae.Code != "not_found" || calls.Load() != 1 {
		t.Fatalf("404: %v after %d calls", err, calls.Load())
	}
	// Three failures in a row give up with the last error.
	calls.Store(0)
	always := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(502)
	}))
	defer always.Close()
	c2 := openTest(t, testSchema(t), always.URL, nil)
	if _, err := c2.Capabilities(context.Background()); !errors.As(err, &ae) || ae.Status != 502 || calls.Load() != 3 {
		t.Fatalf("502: %v after %d calls", err, calls.Load())
	}
	// Operations need an attached device.
	if err := c.Sync(context.Background()); !errors.Is(err, ErrNotAttached) {
		t.Fatalf("sync unattached: %v", err)
	}
}
