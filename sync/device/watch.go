package device

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// WatchEvent is one bundle wake-up (7.9) after the device synced on it.
// Err is the result of that sync.
type WatchEvent struct {
	BundleSeq      int64  `json:"bundle_seq"`
	SourceID       string `json:"source_id"`
	SourceBundleID int64  `json:"source_bundle_id"`
	Err            error  `json:"-"`
}

// PollInterval is how often Watch syncs when the server offers no watch
// stream (or refuses it), and also while a stream is connected.
var PollInterval = 60 * time.Second

// Watch keeps the device in sync until ctx ends: it syncs once, then keeps
// GET /sync/watch open and syncs on every event (calling onEvent, which may
// be nil, afterwards), reconnecting from the durable checkpoint after every
// disconnect. Without server watch support it polls every PollInterval. It
// returns ctx.Err().
func (c *Client) Watch(ctx context.Context, onEvent func(WatchEvent)) error {
	if err := c.Sync(ctx); err != nil && ctx.Err() == nil {
		c.logf("device: watch: initial sync: %v", err)
	}
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		caps, err := c.fetchCaps(ctx)
		if err == nil && caps.Features["bundle_change_watch"] {
			err = c.watchStream(ctx, onEvent)
			if err == nil {
				backoff = 500 * time.Millisecond
				continue
			}
		}
		if ctx.Err() != nil {
			break
		}
		wait := backoff
		var ae *APIError
		if err == nil || IsCode(err, "bundle_change_watch_forbidden") || IsCode(err, "bundle_change_watch_disabled") {
			wait = PollInterval // poll mode
		} else {
			c.logf("device: watch: %v", err)
			if errors.As(err, &ae) && ae.RetryAfter > wait {
				wait = min(ae.RetryAfter, maxRetryAfter)
			}
			backoff = min(2*backoff, 30*time.Second)
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
			if err := c.Sync(ctx); err != nil && ctx.Err() == nil {
				c.logf("device: watch: sync: %v", err)
			}
		}
	}
	return ctx.Err()
}

// watchStream reads one SSE stream until it ends. A stream that ends after
// having been open is not an error.
func (c *Client) watchStream(ctx context.Context, onEvent func(WatchEvent)) error {
	st, err := c.state(ctx)
	if err != nil {
		return err
	}
	if !st.attached {
		return ErrNotAttached
	}
	r := request{method: http.MethodGet, path: "/sync/watch", sourceID: st.sourceID,
		query: url.Values{"after_bundle_seq": {strconv.FormatInt(st.cp, 10)}}}
	c.logf("device: watch: opening the stream after bundle %d", st.cp)
	resp, err := c.open(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	c.logf("device: watch: stream answered %d", resp.StatusCode)
	if resp.StatusCode != http.StatusOK {
		data := make([]byte, 4096)
		n, _ := resp.Body.Read(data)
		ae := decodeAPIError(r, resp.StatusCode, data[:n])
		ae.RetryAfter = retryAfter(resp.Header.Get("Retry-After"))
		return ae
	}
	poll := time.NewTicker(PollInterval)
	defer poll.Stop()
	events := make(chan WatchEvent, 1)
	done := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var event, data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if event == "bundle" && data != "" {
					var ev WatchEvent
					if json.Unmarshal([]byte(data), &ev) == nil && ev.BundleSeq > 0 {
						// Coalesce: only the newest pending event matters.
						select {
						case <-events:
						default:
						}
						events <- ev
					}
				}
				event, data = "", ""
			case strings.HasPrefix(line, ":"):
			case strings.HasPrefix(line, "event:"):
				event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
			case strings.HasPrefix(line, "data:"):
				if data != "" {
					data += "\n"
				}
				data += strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")
			}
		}
		done <- sc.Err()
	}()
	for {
		select {
		case <-ctx.Done():
			resp.Body.Close()
			return ctx.Err()
		case ev := <-events:
			c.logf("device: watch: event for bundle %d", ev.BundleSeq)
			ev.Err = c.Sync(ctx)
			if ev.Err != nil {
				c.logf("device: watch: sync after bundle %d: %v", ev.BundleSeq, ev.Err)
			}
			if onEvent != nil {
				onEvent(ev)
			}
		case <-poll.C:
			if err := c.Sync(ctx); err != nil {
				c.logf("device: watch: periodic sync: %v", err)
			}
		case err := <-done:
			// Deliver an event that raced with the end of the stream.
			select {
			case ev := <-events:
				ev.Err = c.Sync(ctx)
				if onEvent != nil {
					onEvent(ev)
				}
			default:
			}
			if err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
				return nil // timeouts and resets end a stream; reconnect
			}
			return nil
		}
	}
}
