package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/sync/device/loadgen"
	"github.com/syncplane/syncplane/tenant/tenanttest"
)

// TestLoadgen runs a tiny load against a real server subprocess in both
// device modes and checks the report: rows pushed, latencies per endpoint,
// no errors, the server's RSS found through its listening port, and the
// tenants it created deleted again.
func TestLoadgen(t *testing.T) {
	dbURL := tenanttest.DatabaseURL(t)
	store := tenanttest.Store(t)
	srv := startServe(t, freeAddr(t))
	ctx := context.Background()
	for _, mode := range []string{loadgen.ModeDevice, loadgen.ModeHTTP} {
		t.Run(mode, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.json")
			var stdout, stderr bytes.Buffer
			code := run(ctx, []string{"loadgen", "--url", srv.url(), "--database-url", dbURL, "--tenants", "1",
				"--mode", mode, "--devices", "3", "--devices-per-user", "3", "--ops", "30", "--rows-per-push", "5",
				"--json", out, "--quiet"}, &stdout, &stderr)
			require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
			require.Contains(t, stdout.String(), "push rows/s")

			data, err := os.ReadFile(out)
			require.NoError(t, err)
			var res loadgen.Result
			require.NoError(t, json.Unmarshal(data, &res))
			require.Equal(t, mode, res.Mode)
			require.Equal(t, "ops", res.StoppedBy)
			require.Positive(t, res.Main.PushedRows)
			require.Equal(t, res.Main.Pushes*5, res.Main.PushedRows)
			require.Contains(t, res.Main.Endpoints, "POST /sync/push-sessions/{id}/commit")
			require.Contains(t, res.Main.Endpoints, "GET /sync/pull")
			require.Empty(t, res.Main.ErrorsByCode)
			require.NotNil(t, res.Server, "the server's RSS is sampled through its port")
			require.Equal(t, srv.cmd.Process.Pid, res.Server.PID)
			require.Positive(t, res.Server.PeakRSSBytes)
		})
	}
	// The run deleted the tenants it created.
	all, err := store.ListTenants(ctx)
	require.NoError(t, err)
	for _, tn := range all {
		require.NotContains(t, string(tn.Slug), "lg_", "tenant %s left behind", tn.Slug)
	}
}

// TestLoadgenWatchersAndSnapshot runs the two special workloads at toy size
// from a tenants file.
func TestLoadgenWatchersAndSnapshot(t *testing.T) {
	dbURL := tenanttest.DatabaseURL(t)
	store := tenanttest.Store(t)
	srv := startServe(t, freeAddr(t))
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "tenants.json")
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, run(ctx, []string{"loadgen", "--database-url", dbURL, "--tenants", "1", "--noisy", "--noisy-rps", "20",
		"--write-tenants", file, "--setup-only", "--quiet"}, &stdout, &stderr), stderr.String())
	ts, err := loadgen.ReadTenantsFile(file)
	require.NoError(t, err)
	require.Len(t, ts, 2)
	require.True(t, ts[1].Noisy)
	t.Cleanup(func() { _ = loadgen.DeleteTenants(context.Background(), store, ts) })

	res, err := loadgen.Run(ctx, loadgen.Config{URL: srv.url(), Tenants: ts[:1], Mode: loadgen.ModeHTTP,
		Workload: loadgen.WorkloadWatchers, Watchers: 20, WatchersPerUser: 5, Commits: 4, Reps: 2})
	require.NoError(t, err)
	require.Equal(t, 20, res.Watch.Open)
	require.Equal(t, 8, res.Watch.Commits)
	require.Zero(t, res.Watch.Missed)
	require.Len(t, res.Watch.RepMediansMS, 2)

	res, err = loadgen.Run(ctx, loadgen.Config{URL: srv.url(), Tenants: ts[:1], Mode: loadgen.ModeDevice,
		Workload: loadgen.WorkloadSnapshot, SnapshotRows: 2500, Reps: 1})
	require.NoError(t, err)
	require.Len(t, res.Snapshot.RepsS, 1)
	require.Len(t, res.Snapshot.HTTPRepsS, 1)

	// The noisy tenant meets its rate limit and is reported apart. Twelve
	// devices are more than its 20 requests/s can pace within the server's
	// 250 ms queue wait (5 waiting), so some are refused.
	res, err = loadgen.Run(ctx, loadgen.Config{URL: srv.url(), Tenants: ts, Mode: loadgen.ModeHTTP, Devices: 2,
		NoisyDevices: 12, Duration: 2 * time.Second})
	require.NoError(t, err)
	require.NotNil(t, res.Noisy)
	require.Positive(t, res.Noisy.ErrorsByCode["429 rate_limited"])
	require.Empty(t, res.Main.ErrorsByCode)

	// --noisy-only runs the flood alone (scripts/perf.sh runs it in a
	// process of its own beside the measured tenant's).
	out := filepath.Join(t.TempDir(), "flood.json")
	stdout.Reset()
	stderr.Reset()
	require.Equal(t, 0, run(ctx, []string{"loadgen", "--url", srv.url(), "--tenants-file", file, "--noisy-only", "--noisy-devices", "3",
		"--mode", "http", "--duration", "1s", "--quiet", "--json", out}, &stdout, &stderr), stderr.String())
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	var flood loadgen.Result
	require.NoError(t, json.Unmarshal(data, &flood))
	require.NotNil(t, flood.Noisy)
	require.Positive(t, flood.Noisy.Requests)
	require.Zero(t, flood.Main.Requests)
}
