package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

const requestIDKey = "syncplane.request_id"

// RequestIDHeader carries the request id in and out.
const RequestIDHeader = "X-Request-Id"

// NewEngine returns a gin engine with Syncplane's middleware in a fixed
// order: recovery, request id, access log, metrics (WithMetrics). Unknown
// routes and wrong methods answer in the protocol's JSON error envelope.
func NewEngine(log *slog.Logger, opts ...EngineOption) *gin.Engine {
	var o engineOptions
	for _, opt := range opts {
		opt(&o)
	}
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.RemoveExtraSlash = false
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	e.ContextWithFallback = true
	e.Use(recovery(log), requestID(), accessLog(log))
	if o.metrics != nil {
		e.Use(o.metrics.Middleware())
	}
	e.NoRoute(func(c *gin.Context) {
		RenderError(c, NewError(http.StatusNotFound, "not_found", "no such endpoint: "+c.Request.Method+" "+c.Request.URL.Path))
	})
	e.NoMethod(func(c *gin.Context) {
		RenderError(c, NewError(http.StatusMethodNotAllowed, "method_not_allowed",
			"method "+c.Request.Method+" is not allowed on "+c.Request.URL.Path))
	})
	return e
}

func recovery(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				log.ErrorContext(c.Request.Context(), "panic serving request",
					"method", c.Request.Method, "route", c.FullPath(), "panic", r,
					"request_id", c.GetString(requestIDKey))
				if !c.Writer.Written() {
					RenderError(c, NewError(http.StatusInternalServerError, "internal_error", "internal error; the request was not completed"))
				}
				c.Abort()
			}
		}()
		c.Next()
	}
}

func requestID() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader(RequestIDHeader)
		if id == "" || len(id) > 64 || strings.ContainsAny(id, " \t\r\n") {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		c.Set(requestIDKey, id)
		c.Header(RequestIDHeader, id)
		c.Next()
	}
}

func accessLog(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "/healthz" || route == "/readyz" {
			return
		}
		// Refusals of a tenant over its rate limit can arrive by the thousand
		// per second; logging each would make a noisy tenant's refusals cost
		// everyone. They are still counted in metrics and usage. Nothing is
		// built for a record that is not written.
		level := slog.LevelInfo
		if c.Writer.Status() == http.StatusTooManyRequests {
			level = slog.LevelDebug
		}
		if !log.Enabled(c.Request.Context(), level) {
			return
		}
		attrs := []any{"method", c.Request.Method, "route", route, "status", c.Writer.Status(),
			"duration_ms", float64(time.Since(start).Microseconds()) / 1000, "request_id", c.GetString(requestIDKey)}
		if s := ScopeFrom(c); s != nil && s.Tenant != nil {
			attrs = append(attrs, "tenant", string(s.Tenant.Slug))
		}
		log.LogAttrs(c.Request.Context(), level, "http request", argsToAttrs(attrs)...)
	}
}

func argsToAttrs(args []any) []slog.Attr {
	out := make([]slog.Attr, 0, len(args)/2)
	for i := 0; i+1 < len(args); i += 2 {
		out = append(out, slog.Any(args[i].(string), args[i+1]))
	}
	return out
}

// MountHealth adds /healthz (the process is alive) and /readyz (ready runs
// the dependency checks: database reachable, migrations current).
func MountHealth(e *gin.Engine, ready func(ctx context.Context) error) {
	e.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	e.GET("/readyz", func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "reason": err.Error()})
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "ready"})
	})
}
