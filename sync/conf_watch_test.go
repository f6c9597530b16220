package sync

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// stream is an open watch connection.
type stream struct {
	res    *http.Response
	cancel context.CancelFunc
	events chan map[string]any
	beats  chan struct{}
}

func (c *client) watchStream(after int64) (*stream, *http.Response) {
	c.e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", c.e.srv.URL+"/sync/watch?after_bundle_seq="+itoa(after), nil)
	require.NoError(c.e.t, err)
	req.Header.Set("Authorization", "Bearer "+c.user)
	req.Header.Set("Oversync-Source-ID", c.source)
	res, err := http.DefaultClient.Do(req)
	require.NoError(c.e.t, err)
	if res.StatusCode != 200 {
		cancel()
		return nil, res
	}
	s := &stream{res: res, cancel: cancel, events: make(chan map[string]any, 100), beats: make(chan struct{}, 100)}
	go func() {
		sc := bufio.NewScanner(res.Body)
		var event string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == ": heartbeat":
				s.beats <- struct{}{}
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && event == "bundle":
				var m map[string]any
				dec := json.NewDecoder(strings.NewReader(strings.TrimPrefix(line, "data: ")))
				dec.UseNumber()
				if dec.Decode(&m) == nil {
					s.events <- m
				}
			}
		}
		close(s.events)
	}()
	c.e.t.Cleanup(s.close)
	return s, res
}

func (s *stream) close() { s.cancel(); s.res.Body.Close() }

func (s *stream) next(tb testing.TB) map[string]any {
	tb.Helper()
	select {
	case ev, ok := <-s.events:
		require.True(tb, ok, "stream closed")
		return ev
	case <-time.After(10 * time.Second):
		tb.Fatal("no watch event")
		return nil
	}
}

func (s *stream) none(tb testing.TB, d time.Duration) {
	tb.Helper()
	select {
	case ev := <-s.events:
		tb.Fatalf("unexpected event %v", ev)
	case <-time.After(d):
	}
}

// 15.79: a commit wakes the user's stream with its metadata.
func TestConf79WatchEvent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "dev")
	c.attach()
	s, res := c.watchStream(0)
	require.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))
	require.Equal(t, "no-cache", res.Header.Get("Cache-Control"))
	c.push(1, userRow(newUUID(), "a")).expect(t, 200, "")
	ev := s.next(t)
	require.Equal(t, json.Number("1"), ev["bundle_seq"])
	require.Equal(t, "dev", ev["source_id"])
	require.Equal(t, json.Number("1"), ev["source_bundle_id"])
}

// 15.80: catch-up event for the latest bundle.
func TestConf80WatchCatchUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "dev")
	c.attach()
	for i := int64(1); i <= 3; i++ {
		c.push(i, userRow(newUUID(), itoa(i))).expect(t, 200, "")
	}
	s, _ := c.watchStream(1)
	require.Equal(t, map[string]any{"bundle_seq": json.Number("3")}, s.next(t))
}

// 15.81: never an event at or below what was announced.
func TestConf81WatchMonotonic(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "dev")
	c.attach()
	c.push(1, userRow(newUUID(), "1")).expect(t, 200, "")
	c.push(2, userRow(newUUID(), "2")).expect(t, 200, "")
	s, _ := c.watchStream(5) // ahead of the server: nothing until bundle 6
	for i := int64(3); i <= 5; i++ {
		c.push(i, userRow(newUUID(), itoa(i))).expect(t, 200, "")
	}
	// A replayed stale event (e.g. a late notification) is ignored.
	e.h.hubFor(e.pool).deliver(bundleEvent{Schema: e.tenant.SchemaName(), User: "u1", Seq: 4})
	s.none(t, 200*time.Millisecond)
	c.push(6, userRow(newUUID(), "6")).expect(t, 200, "")
	require.Equal(t, json.Number("6"), s.next(t)["bundle_seq"])
}

// 15.82: heartbeats on idle streams (interval configurable; 25 s default).
func TestConf82Heartbeat(t *testing.T) {
	t.Parallel()
	require.Equal(t, 25*time.Second, NewHandler(Config{}).cfg.WatchHeartbeat)
	e := newEnv(t, withConfig(func(c *Config) { c.WatchHeartbeat = 30 * time.Millisecond }))
	c := e.client("u1", "dev")
	c.attach()
	s, _ := c.watchStream(0)
	for i := 0; i < 2; i++ {
		select {
		case <-s.beats:
		case <-time.After(5 * time.Second):
			t.Fatal("no heartbeat")
		}
	}
}

// 15.83: events reach only the same tenant and user, on every replica
// (here: a second Handler sharing the database), after commit.
func TestConf83WatchScoping(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	other := newEnv(t)
	replica := newEnv(t) // a second replica serving e's tenant
	replica.tenant, replica.schema = e.tenant, e.schema
	for _, c := range []*client{e.client("u1", "d"), e.client("u2", "d"), other.client("u1", "d")} {
		c.attach()
	}
	mine, _ := replica.client("u1", "w").watchStream(0)
	otherUser, _ := e.client("u2", "w").watchStream(0)
	otherTenant, _ := other.client("u1", "w").watchStream(0)
	waitFor(t, 5*time.Second, func() bool { return replica.h.watcherCount() == 1 })
	e.client("u1", "d").push(1, userRow(newUUID(), "x")).expect(t, 200, "")
	require.Equal(t, json.Number("1"), mine.next(t)["bundle_seq"])
	otherUser.none(t, 100*time.Millisecond)
	otherTenant.none(t, 100*time.Millisecond)
}

// 15.84: disabled watch and bad parameters.
func TestConf84WatchErrors(t *testing.T) {
	t.Parallel()
	off := newEnv(t, withWatch(false))
	c := off.client("u1", "d")
	c.attach()
	c.do("GET", "/sync/watch", nil).expect(t, 503, "bundle_change_watch_disabled")
	on := newEnv(t)
	d := on.client("u1", "d")
	d.attach()
	d.do("GET", "/sync/watch?after_bundle_seq=-1", nil).expect(t, 400, "invalid_request")
	d.do("GET", "/sync/watch?after_bundle_seq=x", nil).expect(t, 400, "invalid_request")
}

// 15.85: closed streams release their subscriptions.
func TestConf85WatchRelease(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "d")
	c.attach()
	for i := 0; i < 1000; i++ {
		s, res := c.watchStream(0)
		require.NotNil(t, s, "status %d", res.StatusCode)
		s.close()
	}
	waitFor(t, 10*time.Second, func() bool { return e.h.watcherCount() == 0 })
}
