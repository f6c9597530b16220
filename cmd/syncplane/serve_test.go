package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/tenant/tenanttest"
)

func testConfig(t *testing.T) config {
	t.Helper()
	cfg, err := bindSettings(newFlagSet(), func(string) string { return "" }).config()
	require.NoError(t, err)
	cfg.DatabaseURL = tenanttest.DatabaseURL(t)
	cfg.HTTPAddr, cfg.MetricsAddr = "127.0.0.1:0", ""
	cfg.AutoMigrate = true
	return cfg
}

func TestTwoReplicasSeeRevocationWithinASecond(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	a1, err := newApp(ctx, cfg, discardLogger())
	require.NoError(t, err)
	defer a1.Close()
	a2, err := newApp(ctx, cfg, discardLogger())
	require.NoError(t, err)
	defer a2.Close()
	<-a1.cache.Listening()
	<-a2.cache.Listening()

	store := tenanttest.Store(t) // outlives the apps, for clean-up
	tn := tenanttest.Tenant(t, store, "")
	key, rec, err := a1.store.CreateKey(ctx, tn.ID, tenant.KeyPublishable, "", tenanttest.Actor)
	require.NoError(t, err)
	get := func(a *app) int {
		srv := httptest.NewServer(a.engine)
		defer srv.Close()
		res, err := http.Get(srv.URL + "/k/" + key + "/syncx/health")
		require.NoError(t, err)
		res.Body.Close()
		return res.StatusCode
	}
	require.Equal(t, http.StatusOK, get(a1))
	require.Equal(t, http.StatusOK, get(a2))
	// Revoked through replica 1; replica 2 refuses within a second.
	require.NoError(t, a1.store.RevokeKey(ctx, tn.ID, rec.ID, tenanttest.Actor))
	start := time.Now()
	require.Eventually(t, func() bool { return get(a2) == http.StatusUnauthorized }, time.Second, 5*time.Millisecond)
	t.Logf("replica 2 refused the revoked key after %v", time.Since(start))
}

var listenRE = regexp.MustCompile(`syncplane listening"? addr=(\S+)`)

func TestServeShutsDownGracefullyOnSIGTERM(t *testing.T) {
	dbURL := tenanttest.DatabaseURL(t)
	cmd := exec.Command(os.Args[0], "serve", "--http-addr", "127.0.0.1:0", "--metrics-addr", "", "--auto-migrate")
	cmd.Env = append(os.Environ(), "SYNCPLANE_TEST_AS_BINARY=1", "SYNCPLANE_DATABASE_URL="+dbURL)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer cmd.Process.Kill()

	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var addr string
	var log []string
	for addr == "" {
		select {
		case l, ok := <-lines:
			require.True(t, ok, "serve exited early:\n%s", strings.Join(log, "\n"))
			log = append(log, l)
			if m := listenRE.FindStringSubmatch(l); m != nil {
				addr = m[1]
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("serve did not start:\n%s", strings.Join(log, "\n"))
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		res, err := http.Get("http://" + addr + path)
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusOK, res.StatusCode, path)
	}

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	for l := range lines {
		log = append(log, l)
	}
	require.NoError(t, cmd.Wait(), "exit status after SIGTERM:\n%s", strings.Join(log, "\n"))
	all := strings.Join(log, "\n")
	require.Contains(t, all, "draining in-flight requests")
	require.Contains(t, all, "stopped cleanly")
	_, err = http.Get("http://" + addr + "/healthz")
	require.Error(t, err, "the listener is closed after shutdown")
}

func TestServeHelpAndReadmeListEverySetting(t *testing.T) {
	code, _, errOut := runCLI(t, nil, "serve", "--help")
	require.Equal(t, 0, code)
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	for _, s := range settings {
		require.Contains(t, errOut, s.Env)
		require.Contains(t, errOut, "--"+s.Flag)
	}
	require.Contains(t, string(readme), settingsMarkdown(),
		"README's configuration table is out of date; regenerate it with: go run ./cmd/syncplane docs settings")
}

func TestConfigFlagsOverrideEnvironment(t *testing.T) {
	env := map[string]string{"SYNCPLANE_HTTP_ADDR": ":7000", "SYNCPLANE_LOG_LEVEL": "debug", "SYNCPLANE_AUTO_MIGRATE": "true"}
	fs := newFlagSet()
	vals := bindSettings(fs, func(k string) string { return env[k] })
	require.NoError(t, fs.Parse([]string{"--http-addr", ":7001"}))
	cfg, err := vals.config()
	require.NoError(t, err)
	require.Equal(t, ":7001", cfg.HTTPAddr, "flag wins")
	require.Equal(t, "debug", cfg.LogLevel, "environment applies")
	require.True(t, cfg.AutoMigrate)
	require.Equal(t, 10, cfg.TenantMaxInFlight, "auto: half of the default pool of 20")
	require.Equal(t, 250*time.Millisecond, cfg.TenantQueueWait)

	// The in-flight cap follows the pool, or is set, or is off.
	for in, want := range map[[2]string]int{{"40", "auto"}: 20, {"2", "auto"}: 1, {"20", "3"}: 3, {"20", "0"}: 0} {
		cfg, err := bindSettings(newFlagSet(), func(k string) string {
			return map[string]string{"SYNCPLANE_DB_MAX_CONNS": in[0], "SYNCPLANE_TENANT_MAX_IN_FLIGHT": in[1]}[k]
		}).config()
		require.NoError(t, err)
		require.Equal(t, want, cfg.TenantMaxInFlight, "%v", in)
	}

	// Console settings honour their flags too.
	fs = newFlagSet()
	vals = bindSettings(fs, func(k string) string { return map[string]string{"SYNCPLANE_SIGNUP": "open"}[k] })
	require.NoError(t, fs.Parse([]string{"--signup", "closed", "--cookie-secure", "true"}))
	cfg, err = vals.config()
	require.NoError(t, err)
	require.Equal(t, "closed", cfg.Signup)
	require.Equal(t, "true", cfg.CookieSecure)

	for _, bad := range []map[string]string{
		{"SYNCPLANE_AUTO_MIGRATE": "maybe"},
		{"SYNCPLANE_DB_MAX_CONNS": "1"},
		{"SYNCPLANE_CACHE_TTL": "-1s"},
		{"SYNCPLANE_TENANT_MAX_IN_FLIGHT": "half"},
		{"SYNCPLANE_TENANT_MAX_IN_FLIGHT": "-1"},
		{"SYNCPLANE_TENANT_QUEUE_WAIT": "-1ms"},
		{"SYNCPLANE_TENANT_QUEUE_WAIT": "1h"},
		{"SYNCPLANE_LOG_LEVEL": "loud"},
		{"SYNCPLANE_CLUSTERS": "nodsn"},
		{"SYNCPLANE_SIGNUP": "maybe"},
		{"SYNCPLANE_SESSION_SECRET": "short"},
		{"SYNCPLANE_SEAL_KEYS": "c2hvcnQ="},
		{"SYNCPLANE_COOKIE_SECURE": "sometimes"},
		{"SYNCPLANE_PLANS": `{"free": {"requests_per_second": "fast"}}`},
	} {
		_, err := bindSettings(newFlagSet(), func(k string) string { return bad[k] }).config()
		require.Error(t, err, fmt.Sprint(bad))
	}
}
