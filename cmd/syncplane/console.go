package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/syncplane/syncplane/admin"
	"github.com/syncplane/syncplane/web/server"
)

// mountConsole adds the web console (/console) and the management API
// (/api/v1) to the app's engine, and starts their background work: the
// session sweeper and the quota utilization job (quota_job.go).
func mountConsole(a *app) error {
	secureCookies := strings.HasPrefix(a.cfg.PublicURL, "https://")
	if a.cfg.CookieSecure != "auto" {
		secureCookies, _ = strconv.ParseBool(a.cfg.CookieSecure) // validated in config
	}
	opts := admin.Options{
		Store: a.store, Pool: a.pool, Log: a.log, PublicURL: a.cfg.PublicURL,
		Signup: a.cfg.Signup, Secret: []byte(a.cfg.SessionSecret),
		SecureCookies: secureCookies,
	}
	if a.cfg.JWKSAllowPrivate {
		opts.VerifierOptions = append(opts.VerifierOptions, server.WithPrivateNetworkJWKS())
	}
	if len(opts.Secret) == 0 {
		a.log.Warn("SYNCPLANE_SESSION_SECRET is not set: console CSRF tokens use a random per-process key")
	}
	c, err := admin.New(opts)
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	c.Mount(a.engine)
	// Stop the console's jobs with the app's other background work.
	bg, cancel := context.WithCancel(context.Background())
	if prev := a.stop; prev != nil {
		a.stop = func() { cancel(); prev() }
	} else {
		a.stop = cancel
	}
	a.wg.Add(2)
	go func() {
		defer a.wg.Done()
		c.Run(bg, 10*time.Minute)
	}()
	go func() {
		defer a.wg.Done()
		newQuotaJob(a.store, a.metrics.Tenants, a.metrics.Sync, a.log).run(bg, time.Minute)
	}()
	return nil
}
