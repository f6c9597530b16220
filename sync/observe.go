package sync

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/syncplane/syncplane/web/server"
)

// UsageMeter meters a tenant's sync work; *tenant.Meter implements it.
type UsageMeter interface {
	Pushed(tenantID, bundles, rows int64)
	Pulled(tenantID, rows int64)
	Snapshotted(tenantID, rows int64)
	Watchers(tenantID, delta int64)
}

// Request-scoped notes that handlers leave for observe.
const (
	outRowsKey   = "syncplane.sync.out_rows"
	outBytesKey  = "syncplane.sync.out_bytes"
	inRowsKey    = "syncplane.sync.in_rows"
	inBytesKey   = "syncplane.sync.in_bytes"
	committedKey = "syncplane.sync.committed_rows"
)

// noteOut records the rows and bytes a read answered with.
func noteOut(c *gin.Context, rows, bytes int) {
	c.Set(outRowsKey, rows)
	c.Set(outBytesKey, bytes)
}

// noteIn records the rows and bytes an upload staged.
func noteIn(c *gin.Context, rows, bytes int) {
	c.Set(inRowsKey, rows)
	c.Set(inBytesKey, bytes)
}

// noteCommit records a committed bundle's rows.
func noteCommit(c *gin.Context, rows int64) { c.Set(committedKey, rows) }

// observe turns one finished /sync request into metrics and usage: what
// it read or wrote, and the protocol error it answered with, if any.
func (h *Handler) observe(c *gin.Context) {
	sc := server.ScopeFrom(c)
	if sc == nil || sc.Tenant == nil {
		return
	}
	m, u := h.cfg.Metrics, h.cfg.Usage
	slug, id := string(sc.Tenant.Slug), sc.Tenant.ID
	if code := c.GetString(server.ErrorCodeKey); code != "" {
		// A request whose client went away (a device stopping mid-request)
		// failed because of that: nobody got the answer, so it is not the
		// device's last error.
		if !server.ClientGone(c) {
			h.recordSourceError(c, sc, code)
		}
		m.ObserveError(slug, code)
		switch code {
		case "history_pruned":
			m.ObserveHistoryPruned(slug)
		case "push_conflict":
			m.ObserveConflict(slug, 1)
		}
		return
	}
	if rows, ok := c.Get(committedKey); ok {
		n := rows.(int64)
		m.ObserveCommit(slug, int(n))
		if u != nil {
			u.Pushed(id, 1, n)
		}
	}
	if rows, ok := c.Get(inRowsKey); ok {
		m.ObservePushChunk(slug, rows.(int), c.GetInt(inBytesKey))
	}
	rows, ok := c.Get(outRowsKey)
	if !ok {
		return
	}
	n, bytes := rows.(int), c.GetInt(outBytesKey)
	switch route := c.FullPath(); {
	case strings.HasSuffix(route, "/sync/pull"):
		m.ObservePull(slug, n, bytes)
		if u != nil {
			u.Pulled(id, int64(n))
		}
	case strings.HasSuffix(route, "/rows"):
		m.ObserveSent(slug, n, bytes)
		if u != nil {
			u.Pulled(id, int64(n))
		}
	case strings.Contains(route, "/sync/snapshot-sessions/"):
		m.ObserveSnapshot(slug, n, bytes)
		if u != nil {
			u.Snapshotted(id, int64(n))
		}
	}
}

// errorCode is the protocol code err will be answered with.
func errorCode(err error) string {
	var e *server.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return "server_write_failed"
}

// recordSourceError keeps the last error a device was answered with, for
// the console. Only known sources are updated (one keyed UPDATE, on error
// paths only); abandoning a session that is already gone is not an error
// worth showing.
func (h *Handler) recordSourceError(c *gin.Context, sc *server.SyncScope, code string) {
	src, _ := c.Get(sourceKey)
	source, _ := src.(string)
	if source == "" || sc.UserID == "" || sc.Pool == nil || c.Request.Method == http.MethodDelete {
		return
	}
	msg := code + ": " + c.GetString(server.ErrorMessageKey)
	if len(msg) > 500 {
		msg = msg[:500]
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request.Context()), 2*time.Second)
	defer cancel()
	if _, err := sc.Pool.Exec(ctx, `UPDATE `+ident(sc.Tenant.SchemaName(), "_sync_source")+`
		SET last_error = $3, last_error_at = now() WHERE user_id = $1 AND source_id = $2`, sc.UserID, source, msg); err != nil {
		h.cfg.Logger.Warn("sync: record device error", "err", err)
	}
}
