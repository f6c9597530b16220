package sync

import (
	"errors"
	"strings"

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
