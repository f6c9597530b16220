package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/tenant/tenanttest"
)

// proc is a real `syncplane serve` subprocess (the test binary re-executed).
type proc struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{}
}

func startServe(t *testing.T, addr string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "serve", "--http-addr", addr, "--metrics-addr", "", "--auto-migrate", "--log-level", "warn", "--db-max-conns", "6")
	cmd.Env = append(os.Environ(), "SYNCPLANE_TEST_AS_BINARY=1", "SYNCPLANE_DATABASE_URL="+tenanttest.DatabaseURL(t))
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	p := &proc{cmd: cmd, addr: addr, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(p.kill)
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("serve on %s exited before becoming ready", addr)
		default:
		}
		require.True(t, time.Now().Before(deadline), "serve on %s not ready in 30s", addr)
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *proc) url() string { return "http://" + p.addr }

// kill stops the process with SIGKILL, as a crash would.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// TestTwoServerProcesses: a push session started on one replica is chunked
// and committed through the other, and the commit wakes a watcher held by
// the other replica (conformance 83, 90).
func TestTwoServerProcesses(t *testing.T) {
	tt := newTestTenant(t, tenanttest.Store(t), todosTables)
	s1, s2 := startServe(t, freeAddr(t)), startServe(t, freeAddr(t))
	dev := map[string]string{"Authorization": "Bearer " + tt.token(t, "alice"), "Oversync-Source-ID": "device-a"}
	base := func(p *proc) string { return p.url() + "/k/" + tt.pk }

	status, body := doJSON(t, "POST", base(s1)+"/sync/connect", dev, map[string]any{"has_local_pending_rows": false})
	require.Equal(t, 200, status, "%v", body)
	require.Equal(t, "initialize_empty", body["resolution"])

	// Watch on replica 2.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", base(s2)+"/sync/watch?after_bundle_seq=0", nil)
	require.NoError(t, err)
	for k, v := range dev {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	require.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))
	events := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "data: ") {
				events <- strings.TrimPrefix(l, "data: ")
			}
		}
		close(events)
	}()

	// Create on 1, chunk on 2, commit on 1.
	status, body = doJSON(t, "POST", base(s1)+"/sync/push-sessions", dev, map[string]any{"source_bundle_id": 1, "planned_row_count": 1})
	require.Equal(t, 200, status, "%v", body)
	pushID := body["push_id"].(string)
	row := map[string]any{"schema": tt.WireSchema, "table": "todos", "op": "INSERT", "base_row_version": 0,
		"key": map[string]any{"id": "7c9e6679-7425-40de-944b-e07fc1f90ae7"}, "payload": map[string]any{"title": "x", "done": 0}}
	status, body = doJSON(t, "POST", base(s2)+"/sync/push-sessions/"+pushID+"/chunks", dev,
		map[string]any{"start_row_ordinal": 0, "rows": []any{row}})
	require.Equal(t, 200, status, "%v", body)
	status, body = doJSON(t, "POST", base(s1)+"/sync/push-sessions/"+pushID+"/commit", dev, nil)
	require.Equal(t, 200, status, "%v", body)
	require.EqualValues(t, 1, body["bundle_seq"])

	select {
	case ev := <-events:
		require.Contains(t, ev, `"bundle_seq":1`)
		require.Contains(t, ev, `"source_id":"device-a"`)
	case <-ctx.Done():
		t.Fatal("the watcher on replica 2 was not woken by the commit through replica 1")
	}
}

// TestCrashMidCommitLosesAndDuplicatesNothing kills the server with SIGKILL
// while several devices commit, restarts it, and lets every device retry
// as the protocol prescribes (same source_bundle_id: a fresh session or
// already_committed). No acknowledged bundle may be lost, none duplicated
// (conformance 90).
func TestCrashMidCommitLosesAndDuplicatesNothing(t *testing.T) {
	tt := newTestTenant(t, tenanttest.Store(t), todosTables)
	addr := freeAddr(t)
	srv := startServe(t, addr)
	base := "http://" + addr + "/k/" + tt.pk
	const devices, bundles = 4, 12

	type device struct {
		idx   int
		hdr   map[string]string
		acked map[int64]int64 // source_bundle_id → bundle_seq acknowledged
	}
	devs := make([]*device, devices)
	for i := range devs {
		user := fmt.Sprintf("user-%d", i%2)
		devs[i] = &device{idx: i, hdr: map[string]string{"Authorization": "Bearer " + tt.token(t, user),
			"Oversync-Source-ID": fmt.Sprintf("device-%d", i)}, acked: map[int64]int64{}}
		status, body := doJSON(t, "POST", base+"/sync/connect", devs[i].hdr, map[string]any{"has_local_pending_rows": false})
		require.Equal(t, 200, status, "%v", body)
	}

	client := &http.Client{Timeout: 5 * time.Second}
	// try runs one protocol request; ok=false on a network error or 5xx.
	try := func(method, url string, hdr map[string]string, body any) (int, map[string]any, bool) {
		var rd *strings.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = strings.NewReader(string(b))
		} else {
			rd = strings.NewReader("")
		}
		req, _ := http.NewRequest(method, url, rd)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := client.Do(req)
		if err != nil {
			return 0, nil, false
		}
		defer res.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode >= 500 {
			return res.StatusCode, out, false
		}
		return res.StatusCode, out, true
	}
	var retries, replayed atomic.Int64
	push := func(d *device, n int64) error {
		for attempt := 0; ; attempt++ {
			if attempt > 600 {
				return fmt.Errorf("push %d never succeeded", n)
			}
			if attempt > 0 {
				retries.Add(1)
				time.Sleep(50 * time.Millisecond)
			}
			status, body, ok := try("POST", base+"/sync/push-sessions", d.hdr, map[string]any{"source_bundle_id": n, "planned_row_count": 1})
			if !ok {
				continue
			}
			if status != 200 {
				return fmt.Errorf("push %d create: %d %v", n, status, body)
			}
			if body["status"] == "already_committed" {
				replayed.Add(1)
				d.acked[n] = int64(body["bundle_seq"].(float64))
				return nil
			}
			id := body["push_id"].(string)
			row := map[string]any{"schema": tt.WireSchema, "table": "todos", "op": "INSERT", "base_row_version": 0,
				"key":     map[string]any{"id": fmt.Sprintf("00000000-0000-4000-8000-%04d%08d", d.idx, n)},
				"payload": map[string]any{"title": fmt.Sprintf("%s #%d", d.hdr["Oversync-Source-ID"], n), "done": 0}}
			status, body, ok = try("POST", base+"/sync/push-sessions/"+id+"/chunks", d.hdr, map[string]any{"start_row_ordinal": 0, "rows": []any{row}})
			if !ok || status != 200 {
				continue // the session may be gone with the crash: start over
			}
			status, body, ok = try("POST", base+"/sync/push-sessions/"+id+"/commit", d.hdr, nil)
			if !ok || status != 200 {
				continue // outcome unknown: the next create tells
			}
			d.acked[n] = int64(body["bundle_seq"].(float64))
			return nil
		}
	}

	var wg sync.WaitGroup
	errs := make(chan error, devices)
	for _, d := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := int64(1); n <= bundles; n++ {
				if err := push(d, n); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	// Crash once some commits are through, then come back on the same address.
	require.Eventually(t, func() bool {
		status, body, ok := try("GET", base+"/sync/pull", devs[0].hdr, nil)
		return ok && status == 200 && len(body["bundles"].([]any)) >= 3
	}, 30*time.Second, 10*time.Millisecond)
	srv.kill()
	startServe(t, addr)
	wg.Wait()
	close(errs)
	t.Logf("after the crash: %d retried attempts, %d pushes answered already_committed", retries.Load(), replayed.Load())
	for err := range errs {
		require.NoError(t, err)
	}

	// A commit whose response is lost: the retry of the same tuple answers
	// already_committed with the bundle the server committed.
	d := devs[0]
	require.NoError(t, push(d, bundles+1))
	status, body := doJSON(t, "POST", base+"/sync/push-sessions", d.hdr, map[string]any{"source_bundle_id": bundles + 1, "planned_row_count": 1})
	require.Equal(t, 200, status, "%v", body)
	require.Equal(t, "already_committed", body["status"])
	require.EqualValues(t, d.acked[bundles+1], body["bundle_seq"])
	delete(d.acked, bundles+1)

	// Every acknowledged bundle is there exactly once, gap-free per user.
	for u := range 2 {
		hdr := map[string]string{"Authorization": "Bearer " + tt.token(t, fmt.Sprintf("user-%d", u)), "Oversync-Source-ID": "checker"}
		status, body := doJSON(t, "GET", base+"/sync/pull?after_bundle_seq=0&max_bundles=5000", hdr, nil)
		require.Equal(t, 200, status, "%v", body)
		got := map[string]int64{}
		for i, b := range body["bundles"].([]any) {
			bm := b.(map[string]any)
			require.EqualValues(t, i+1, bm["bundle_seq"], "gap-free bundle_seq")
			k := fmt.Sprintf("%s/%v", bm["source_id"], bm["source_bundle_id"])
			_, dup := got[k]
			require.False(t, dup, "tuple %s committed twice", k)
			got[k] = int64(bm["bundle_seq"].(float64))
		}
		want := bundles * devices / 2
		if u == 0 {
			want++ // the lost-response push above
		}
		require.Len(t, got, want)
		for i, d := range devs {
			if i%2 != u {
				continue
			}
			for n, seq := range d.acked {
				require.Equal(t, seq, got[fmt.Sprintf("device-%d/%d", i, n)], "acknowledged bundle %d of device-%d", n, i)
			}
		}
	}
}
