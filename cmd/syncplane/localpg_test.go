package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestLocalPGURL(t *testing.T) {
	p := &LocalPG{Port: 54321}
	if got, want := p.URL("syncplane_test"), "postgres://postgres@127.0.0.1:54321/syncplane_test?sslmode=disable"; got != want {
		t.Fatalf("URL = %q, want %q", got, want)
	}
}

func TestVersionLess(t *testing.T) {
	vs := []string{"9.6", "10", "15", "16", "17"}
	for i := 0; i+1 < len(vs); i++ {
		if !versionLess(vs[i], vs[i+1]) || versionLess(vs[i+1], vs[i]) {
			t.Errorf("versionLess order wrong between %s and %s", vs[i], vs[i+1])
		}
	}
}

func TestRunLocalPGUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := runLocalPG(context.Background(), nil, &out, &errOut); code != 2 {
		t.Errorf("no args: exit %d, want 2", code)
	}
	if code := runLocalPG(context.Background(), []string{"frobnicate"}, &out, &errOut); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
	if code := runLocalPG(context.Background(), []string{"release", "--dir", t.TempDir()}, &out, &errOut); code != 2 {
		t.Errorf("release without --lease: exit %d, want 2", code)
	}
	if out.Len() != 0 {
		t.Errorf("usage errors wrote to stdout: %q", out.String())
	}
}

// TestLocalPGLifecycle starts a real private cluster. It is slow (initdb), so
// it only runs with SYNCPLANE_TEST_LOCALPG=1.
func TestLocalPGLifecycle(t *testing.T) {
	if os.Getenv("SYNCPLANE_TEST_LOCALPG") != "1" {
		t.Skip("set SYNCPLANE_TEST_LOCALPG=1 to start a private PostgreSQL cluster")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	base := t.TempDir()
	// t.TempDir's directories are 0700; when we run as root the server runs
	// as user postgres, which must be able to traverse them.
	for d := base; d != os.TempDir() && d != filepath.Dir(d); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(base, "pg")
	var log bytes.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("localpg log:\n%s", log.String())
		}
	})

	p, err := StartLocalPG(ctx, dir, &log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	if p.Port == 5432 || p.Port == 0 {
		t.Fatalf("unexpected port %d", p.Port)
	}
	if err := p.EnsureDatabase(ctx, "lifecycle"); err != nil {
		t.Fatal(err)
	}
	if err := p.EnsureDatabase(ctx, "lifecycle"); err != nil { // idempotent
		t.Fatal(err)
	}
	exec1(t, ctx, p.URL("lifecycle"), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('hello')")

	// Starting again while running reuses the cluster.
	p2, err := StartLocalPG(ctx, dir, &log)
	if err != nil {
		t.Fatal(err)
	}
	if p2.Port != p.Port {
		t.Fatalf("reuse of running cluster: port %d, want %d", p2.Port, p.Port)
	}
	if !strings.Contains(log.String(), "reusing running cluster") {
		t.Errorf("second start did not report reuse; log:\n%s", log.String())
	}

	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if running, err := p.status(ctx); err != nil || running {
		t.Fatalf("after Stop: running=%v err=%v", running, err)
	}
	if err := p.Stop(ctx); err != nil { // stopping a stopped cluster is fine
		t.Fatal(err)
	}

	// Start again: same port, same data.
	p3, err := StartLocalPG(ctx, dir, &log)
	if err != nil {
		t.Fatal(err)
	}
	if p3.Port != p.Port {
		t.Fatalf("restart: port %d, want the remembered %d", p3.Port, p.Port)
	}
	var v string
	conn := connect(t, ctx, p3.URL("lifecycle"))
	if err := conn.QueryRow(ctx, "SELECT v FROM kept").Scan(&v); err != nil || v != "hello" {
		t.Fatalf("data after restart: v=%q err=%v", v, err)
	}

	// Unix socket lives in the data dir (when the path is short enough);
	// the server listens on 127.0.0.1 only.
	var listen, sockets string
	if err := conn.QueryRow(ctx, "SELECT current_setting('listen_addresses'), current_setting('unix_socket_directories')").Scan(&listen, &sockets); err != nil {
		t.Fatal(err)
	}
	if listen != "127.0.0.1" || (sockets != p3.Dir && sockets != "") {
		t.Errorf("listen_addresses=%q unix_socket_directories=%q", listen, sockets)
	}
	conn.Close(ctx)

	// CLI: status/start print only the URL on stdout.
	var out, errOut bytes.Buffer
	if code := runLocalPG(ctx, []string{"status", "--dir", dir, "--db", "lifecycle"}, &out, &errOut); code != 0 {
		t.Fatalf("localpg status: exit %d: %s", code, errOut.String())
	}
	if got := strings.TrimSpace(out.String()); got != p3.URL("lifecycle") {
		t.Fatalf("localpg status stdout = %q, want %q", got, p3.URL("lifecycle"))
	}
	out.Reset()
	if code := runLocalPG(ctx, []string{"localpg", "start", "--dir", dir, "--db", "cli_db"}, &out, &errOut); code != 0 {
		t.Fatalf("localpg start: exit %d: %s", code, errOut.String())
	}
	if got := out.String(); got != p3.URL("cli_db")+"\n" {
		t.Fatalf("localpg start stdout = %q, want only the URL", got)
	}
	exec1(t, ctx, p3.URL("cli_db"), "SELECT 1")

	// CLI stop, then status reports "not running" with exit 3.
	if code := runLocalPG(ctx, []string{"stop", "--dir", dir}, &out, &errOut); code != 0 {
		t.Fatalf("localpg stop: exit %d: %s", code, errOut.String())
	}
	out.Reset()
	if code := runLocalPG(ctx, []string{"status", "--dir", dir}, &out, &errOut); code != 3 || out.Len() != 0 {
		t.Fatalf("localpg status after stop: exit %d stdout %q", code, out.String())
	}

	// Leases: a cluster started with --lease is stopped by the last live
	// holder; dead holders are ignored.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	deadPID := strconv.Itoa(dead.Process.Pid)
	me := strconv.Itoa(os.Getpid())
	if code := runLocalPG(ctx, []string{"start", "--dir", dir, "--lease", deadPID}, &out, &errOut); code != 0 {
		t.Fatalf("leased start: exit %d: %s", code, errOut.String())
	}
	if code := runLocalPG(ctx, []string{"start", "--dir", dir, "--lease", me}, &out, &errOut); code != 0 {
		t.Fatalf("second leased start: exit %d: %s", code, errOut.String())
	}
	stopped, err := releaseLease(ctx, dir, &log, os.Getppid()) // not a holder
	if err != nil || stopped {
		t.Fatalf("release by non-holder: stopped=%v err=%v", stopped, err)
	}
	if stopped, err := releaseLease(ctx, dir, &log, os.Getpid()); err != nil || !stopped {
		t.Fatalf("release by last live holder: stopped=%v err=%v", stopped, err)
	}

	// A cluster that was running before any lease is left running.
	if _, err := StartLocalPG(ctx, dir, &log); err != nil {
		t.Fatal(err)
	}
	if code := runLocalPG(ctx, []string{"start", "--dir", dir, "--lease", me}, &out, &errOut); code != 0 {
		t.Fatalf("leased start on running cluster: exit %d: %s", code, errOut.String())
	}
	if stopped, err := releaseLease(ctx, dir, &log, os.Getpid()); err != nil || stopped {
		t.Fatalf("release of pre-existing cluster: stopped=%v err=%v", stopped, err)
	}
	exec1(t, ctx, p3.URL("lifecycle"), "SELECT 1")
	t.Logf("localpg log:\n%s", log.String())
}

func connect(t *testing.T, ctx context.Context, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	return conn
}

func exec1(t *testing.T, ctx context.Context, url, sql string) {
	t.Helper()
	conn := connect(t, ctx, url)
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
