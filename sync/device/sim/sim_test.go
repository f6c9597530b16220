package sim

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestSuiteAgainstServer runs the whole suite against the real syncplane
// binary on the test database (SYNCPLANE_TEST_DATABASE_URL), comparing
// devices with the tenant's PostgreSQL rows. It skips without a database,
// when the binary does not build, or while sync endpoints are missing.
func TestSuiteAgainstServer(t *testing.T) {
	dbURL := os.Getenv("SYNCPLANE_TEST_DATABASE_URL")
	if dbURL == "" {
		t.Skip("SYNCPLANE_TEST_DATABASE_URL is not set")
	}
	if testing.Short() {
		t.Skip("short mode")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "syncplane")
	build := exec.Command("go", "build", "-o", bin, "./cmd/syncplane")
	build.Dir = filepath.Join("..", "..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Skipf("syncplane binary does not build: %v\n%s", err, out)
	}
	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "SYNCPLANE_DATABASE_URL="+dbURL)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("syncplane %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	// migrate up walks every tenant; tests elsewhere create and drop
	// tenants concurrently, which can fail a run: retry, then go on.
	for i := 0; i < 5; i++ {
		cmd := exec.Command(bin, "migrate", "up")
		cmd.Env = append(os.Environ(), "SYNCPLANE_DATABASE_URL="+dbURL)
		out, err := cmd.CombinedOutput()
		if err == nil {
			break
		}
		t.Logf("syncplane migrate up (attempt %d): %v\n%s", i+1, err, out)
		time.Sleep(time.Second)
	}
	srv := exec.Command(bin, "serve", "--http-addr", "127.0.0.1:0", "--metrics-addr", "", "--log-level", "info")
	srv.Env = append(os.Environ(), "SYNCPLANE_DATABASE_URL="+dbURL)
	stderr, err := srv.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { srv.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			srv.Process.Kill()
		}
	})
	addrCh := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`syncplane listening.*addr=(\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addrCh <- m[1]:
				default:
				}
			}
		}
	}()
	var addr string
	select {
	case addr = <-addrCh:
	case <-time.After(60 * time.Second):
		t.Fatal("syncplane serve did not report its address")
	}
	newTenant := func() (slug, base, secret, secretKey string) {
		b := make([]byte, 5)
		rand.Read(b)
		slug = "sim" + hex.EncodeToString(b)
		secretB := make([]byte, 32)
		rand.Read(secretB)
		secret = hex.EncodeToString(secretB)
		tables := filepath.Join(dir, "tables.json")
		if err := os.WriteFile(tables, []byte(Tables), 0o600); err != nil {
			t.Fatal(err)
		}
		cli("tenant", "create", slug, "--wire-schema", "app")
		t.Cleanup(func() {
			cmd := exec.Command(bin, "tenant", "delete", slug, "--confirm", slug)
			cmd.Env = append(os.Environ(), "SYNCPLANE_DATABASE_URL="+dbURL)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Logf("syncplane tenant delete %s: %v\n%s", slug, err, out)
			}
		})
		key := regexp.MustCompile(`sp_pk_\S+`).FindString(cli("tenant", "key", "create", slug))
		secretKey = regexp.MustCompile(`sp_sk_\S+`).FindString(cli("tenant", "key", "create", slug, "--kind", "secret"))
		cli("tenant", "auth", "set", slug, "--hs256-secret", secret)
		cli("tenant", "tables", "apply", slug, "--file", tables, "--yes")

		base = "http://" + addr + "/k/" + key
		return
	}
	probe := func(base string) {
		resp, err := http.Get(base + "/sync/capabilities")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			t.Skip("sync endpoints not served yet")
		}
	}
	ctx := context.Background()
	var cfgs []Config
	var outs []*bytes.Buffer
	for i := 0; i < 2; i++ { // two tenants at once, same user ids (89)
		slug, base, secret, secretKey := newTenant()
		window := 0
		if i == 1 { // the second tenant gets a small window, before any traffic
			window = 20
			conn, err := pgx.Connect(ctx, dbURL)
			if err != nil {
				t.Fatal(err)
			}
			_, err = conn.Exec(ctx, `UPDATE syncplane.tenants SET retained_bundles = $1 WHERE slug = $2`, window, slug)
			conn.Close(ctx)
			if err != nil {
				t.Fatal(err)
			}
		}
		probe(base)
		v, err := NewPGVerifier(ctx, dbURL, "t_"+slug)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		out := &bytes.Buffer{}
		outs = append(outs, out)
		cfg := Config{BaseURL: base, HS256Secret: secret, SecretKey: secretKey, Verifier: v, RetainedWindow: window, LargeRows: 5000, Dir: t.TempDir(), Out: out,
			Verbose: os.Getenv("SIM_VERBOSE") != ""}
		if n, err := strconv.Atoi(os.Getenv("SIM_LARGE_ROWS")); err == nil && n > 0 {
			cfg.LargeRows = n
		}
		if r := os.Getenv("SIM_RUN"); r != "" {
			cfg.Run = regexp.MustCompile(r)
		}
		cfgs = append(cfgs, cfg)
	}
	results, ok, err := RunParallel(ctx, cfgs)
	for i, out := range outs {
		t.Logf("tenant %d:\n%s", i+1, out)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		for i := range results {
			for _, r := range results[i] {
				if r.Err != nil {
					t.Errorf("tenant %d: %s: %v", i+1, r.Scenario, r.Err)
				}
			}
		}
	}
}
