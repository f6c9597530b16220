package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/syncplane/syncplane/admin"
	"github.com/syncplane/syncplane/web/server"
)

// consoleSetting reads a console setting from the environment, falling back
// to its default in the settings table.
// TODO(lead): carry these into config so their flags override them too.
func consoleSetting(env string) string {
	if v, ok := os.LookupEnv(env); ok {
		return v
	}
	for _, s := range settings {
		if s.Env == env {
			return s.Default
		}
	}
	return ""
}

// mountConsole adds the web console (/console) and the management API
// (/api/v1) to the app's engine.
func mountConsole(a *app) error {
	secure := consoleSetting("SYNCPLANE_COOKIE_SECURE")
	var secureCookies bool
	if secure == "auto" {
		secureCookies = strings.HasPrefix(a.cfg.PublicURL, "https://")
	} else {
		b, err := strconv.ParseBool(secure)
		if err != nil {
			return fmt.Errorf("SYNCPLANE_COOKIE_SECURE: want true, false or auto, got %q", secure)
		}
		secureCookies = b
	}
	opts := admin.Options{
		Store: a.store, Pool: a.pool, Log: a.log, PublicURL: a.cfg.PublicURL,
		Signup: consoleSetting("SYNCPLANE_SIGNUP"), Secret: []byte(consoleSetting("SYNCPLANE_SESSION_SECRET")),
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
	// Stop the session sweeper with the app's other background work.
	bg, cancel := context.WithCancel(context.Background())
	if prev := a.stop; prev != nil {
		a.stop = func() { cancel(); prev() }
	} else {
		a.stop = cancel
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		c.Run(bg, 10*time.Minute)
	}()
	return nil
}
