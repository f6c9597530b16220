package sync

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	gosync "sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/syncplane/syncplane/tenant"
)

// notifyChannel is the one PostgreSQL channel per cluster carrying commit
// events of every tenant; payloads name tenant schema and user, and the hub
// delivers each event only to that tenant's and user's streams.
const notifyChannel = "syncplane_bundles"

// maxNotifyPayload stays under PostgreSQL's 8000-byte NOTIFY limit.
const maxNotifyPayload = 7000

// bundleEvent announces a committed bundle.
type bundleEvent struct {
	Schema   string `json:"s"`
	User     string `json:"u"`
	Seq      int64  `json:"q"`
	Source   string `json:"c,omitempty"`
	SourceBI int64  `json:"b,omitempty"`
}

type subKey struct{ schema, user string }

// watcher is one open stream. Events coalesce: it keeps only the newest.
type watcher struct {
	mu      gosync.Mutex
	pending *bundleEvent
	wake    chan struct{}
}

func (w *watcher) offer(ev bundleEvent) {
	w.mu.Lock()
	if w.pending == nil || ev.Seq > w.pending.Seq {
		e := ev
		w.pending = &e
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *watcher) take() *bundleEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	ev := w.pending
	w.pending = nil
	return ev
}

// hub is the per-replica, per-cluster watch fan-out: one LISTEN connection,
// one coalescing notifier, and the replica's open streams.
type hub struct {
	pool   *pgxpool.Pool
	cfg    *Config
	ctx    context.Context
	cancel context.CancelFunc
	wg     gosync.WaitGroup

	mu       gosync.Mutex
	subs     map[subKey]map[*watcher]struct{}
	listener bool
	notifier bool
	closed   bool // no goroutine starts once set
	queue    map[subKey]bundleEvent
	kick     chan struct{}
	done     chan struct{}
}

// hubFor returns the hub of pool's cluster: requests of one cluster run on
// several request shards (tenant.ClusterPool), which share one hub.
func (h *Handler) hubFor(pool *pgxpool.Pool) *hub {
	pool = tenant.ClusterPool(pool)
	h.hubsMu.Lock()
	defer h.hubsMu.Unlock()
	hb, ok := h.hubs[pool]
	if !ok {
		ctx, cancel := context.WithCancel(h.life)
		hb = &hub{pool: pool, cfg: &h.cfg, ctx: ctx, cancel: cancel, subs: map[subKey]map[*watcher]struct{}{},
			queue: map[subKey]bundleEvent{}, kick: make(chan struct{}, 1), done: make(chan struct{})}
		h.hubs[pool] = hb
	}
	return hb
}

func (hb *hub) close() {
	hb.cancel()
	hb.mu.Lock()
	hb.closed = true
	select {
	case <-hb.done:
	default:
		close(hb.done)
	}
	hb.mu.Unlock()
	hb.wg.Wait()
}

// publish announces a commit: at once to this replica's streams, and to the
// other replicas through the notifier. Called after the commit is durable,
// never inside the committing transaction.
func (h *Handler) publish(pool *pgxpool.Pool, schema, user string, b BundleResult) {
	hb := h.hubFor(pool)
	ev := bundleEvent{Schema: schema, User: user, Seq: b.BundleSeq, Source: b.SourceID, SourceBI: b.SourceBundleID}
	hb.deliver(ev)
	hb.enqueue(ev)
}

func (hb *hub) deliver(ev bundleEvent) {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	for w := range hb.subs[subKey{ev.Schema, ev.User}] {
		w.offer(ev)
	}
}

func (hb *hub) enqueue(ev bundleEvent) {
	hb.mu.Lock()
	k := subKey{ev.Schema, ev.User}
	if old, ok := hb.queue[k]; !ok || ev.Seq > old.Seq {
		hb.queue[k] = ev
	}
	if !hb.notifier && !hb.closed {
		hb.notifier = true
		hb.wg.Add(1)
		go hb.runNotifier()
	}
	hb.mu.Unlock()
	select {
	case hb.kick <- struct{}{}:
	default:
	}
}

// runNotifier publishes queued events in few NOTIFYs: it waits NotifyDelay
// after a kick so concurrent commits share one notification.
func (hb *hub) runNotifier() {
	defer hb.wg.Done()
	for {
		select {
		case <-hb.ctx.Done():
			return
		case <-hb.kick:
		}
		select {
		case <-hb.ctx.Done():
			return
		case <-time.After(hb.cfg.NotifyDelay):
		}
		hb.mu.Lock()
		q := hb.queue
		hb.queue = map[subKey]bundleEvent{}
		hb.mu.Unlock()
		var batch []bundleEvent
		size := 0
		flush := func() {
			if len(batch) == 0 {
				return
			}
			payload, _ := json.Marshal(batch)
			ctx, cancel := context.WithTimeout(hb.ctx, 5*time.Second)
			if _, err := hb.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, notifyChannel, string(payload)); err != nil && hb.ctx.Err() == nil {
				// A lost wake-up costs latency, never data (7.9).
				hb.cfg.Logger.Warn("sync: publish bundle events", "err", err)
			}
			cancel()
			batch, size = batch[:0], 0
		}
		for _, ev := range q {
			n := len(ev.Schema) + len(ev.User) + len(ev.Source) + 64
			if size+n > maxNotifyPayload {
				flush()
			}
			batch = append(batch, ev)
			size += n
		}
		flush()
	}
}

// subscribe registers a stream and makes sure the listener runs.
func (hb *hub) subscribe(k subKey) *watcher {
	w := &watcher{wake: make(chan struct{}, 1)}
	hb.mu.Lock()
	defer hb.mu.Unlock()
	if hb.subs[k] == nil {
		hb.subs[k] = map[*watcher]struct{}{}
	}
	hb.subs[k][w] = struct{}{}
	if !hb.listener && !hb.closed {
		hb.listener = true
		hb.wg.Add(1)
		go hb.runListener()
	}
	return w
}

func (hb *hub) unsubscribe(k subKey, w *watcher) {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	delete(hb.subs[k], w)
	if len(hb.subs[k]) == 0 {
		delete(hb.subs, k)
	}
}

func (hb *hub) count() int {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	n := 0
	for _, m := range hb.subs {
		n += len(m)
	}
	return n
}

// runListener holds this replica's one LISTEN connection for the cluster.
// After a reconnect it re-announces every watched user's latest bundle, so
// no wake-up is lost while the connection was down.
func (hb *hub) runListener() {
	defer hb.wg.Done()
	backoff := 100 * time.Millisecond
	for hb.ctx.Err() == nil {
		err := hb.listenOnce()
		if hb.ctx.Err() != nil {
			return
		}
		hb.cfg.Logger.Warn("sync: watch listener reconnecting", "err", err)
		select {
		case <-hb.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (hb *hub) listenOnce() error {
	pc, err := hb.pool.Acquire(hb.ctx)
	if err != nil {
		return fmt.Errorf("acquire listener connection: %w", err)
	}
	conn := pc.Hijack() // owned by the listener, never returned to the pool
	defer conn.Close(context.Background())
	if _, err := conn.Exec(hb.ctx, `LISTEN `+pgx.Identifier{notifyChannel}.Sanitize()); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// Streams may have subscribed (and read their latest) before this
	// connection was listening: announce their users' latest once now.
	hb.reannounce(conn)
	for {
		n, err := conn.WaitForNotification(hb.ctx)
		if err != nil {
			return fmt.Errorf("wait for notification: %w", err)
		}
		var evs []bundleEvent
		if json.Unmarshal([]byte(n.Payload), &evs) != nil {
			continue
		}
		for _, ev := range evs {
			hb.deliver(ev)
		}
	}
}

func (hb *hub) reannounce(conn *pgx.Conn) {
	hb.mu.Lock()
	keys := make([]subKey, 0, len(hb.subs))
	for k := range hb.subs {
		keys = append(keys, k)
	}
	hb.mu.Unlock()
	for _, k := range keys {
		var seq int64
		err := conn.QueryRow(hb.ctx, `SELECT latest_bundle_seq FROM `+ident(k.schema, "_sync_scope")+` WHERE user_id = $1`, k.user).Scan(&seq)
		if err == nil && seq > 0 {
			hb.deliver(bundleEvent{Schema: k.schema, User: k.user, Seq: seq})
		}
	}
}

// watch streams bundle wake-ups as Server-Sent Events (protocol 7.9).
func (h *Handler) watch(c *gin.Context) error {
	r, err := h.req(c)
	if err != nil {
		return err
	}
	enabled, allowed := h.watchOffered(r)
	if enabled && !allowed {
		return apiErr(http.StatusForbidden, "bundle_change_watch_forbidden", "watch is not allowed for this user or source")
	}
	after, ok := queryInt(c, "after_bundle_seq", 0)
	if !ok || after < 0 {
		return apiErr(http.StatusBadRequest, "invalid_request", "after_bundle_seq must be an integer >= 0")
	}
	if !enabled {
		return apiErr(http.StatusServiceUnavailable, "bundle_change_watch_disabled", "watch is not enabled for this app")
	}
	hb := h.hubFor(r.pool)
	k := subKey{r.schema, r.user}
	w := hb.subscribe(k) // before reading latest: no commit slips between
	defer hb.unsubscribe(k, w)

	var s *scopeState
	err = inTx(c, r.pool, readOnlyRR, func(tx pgx.Tx) error {
		s, err = readScope(c, tx, r.schema, r.user)
		return err
	})
	if err != nil {
		return err
	}
	if err := scopeNotReady(s); err != nil {
		return err
	}

	touch, release, err := admitWatcher(c, r)
	if err != nil {
		return err
	}
	defer release()
	defer h.cfg.Metrics.WatcherConnected(string(r.scope.Tenant.Slug))()
	if u := h.cfg.Usage; u != nil {
		u.Watchers(r.scope.Tenant.ID, 1)
		defer u.Watchers(r.scope.Tenant.ID, -1)
	}
	hdr := c.Writer.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)
	c.Writer.WriteHeaderNow()
	c.Writer.Flush()

	announced := after
	send := func(data string) bool {
		if _, err := fmt.Fprintf(c.Writer, "event: bundle\ndata: %s\n\n", data); err != nil {
			return false
		}
		c.Writer.Flush()
		return true
	}
	if s.Latest > announced {
		announced = s.Latest
		if !send(fmt.Sprintf(`{"bundle_seq":%d}`, s.Latest)) {
			return nil
		}
	}
	tick := time.NewTicker(h.cfg.WatchHeartbeat)
	defer tick.Stop()
	ctx := c.Request.Context()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hb.done:
			return nil
		case <-tick.C:
			if _, err := fmt.Fprint(c.Writer, ": heartbeat\n\n"); err != nil {
				return nil
			}
			c.Writer.Flush()
			touch()
		case <-w.wake:
			ev := w.take()
			if ev == nil || ev.Seq <= announced {
				continue
			}
			announced = ev.Seq
			h.cfg.Metrics.ObserveWatchWakeup(string(r.scope.Tenant.Slug))
			data, _ := json.Marshal(struct {
				BundleSeq      int64  `json:"bundle_seq"`
				SourceID       string `json:"source_id,omitempty"`
				SourceBundleID int64  `json:"source_bundle_id,omitempty"`
			}{ev.Seq, ev.Source, ev.SourceBI})
			if !send(string(data)) {
				return nil
			}
		}
	}
}

// watcherCount reports this replica's open streams (tests).
func (h *Handler) watcherCount() int {
	h.hubsMu.Lock()
	defer h.hubsMu.Unlock()
	n := 0
	for _, hb := range h.hubs {
		n += hb.count()
	}
	return n
}
