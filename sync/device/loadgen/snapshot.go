package loadgen

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/google/uuid"

	"github.com/syncplane/syncplane/sync/device"
)

// SnapResult is the figures of WorkloadSnapshot.
type SnapResult struct {
	Rows         int64   `json:"rows"`
	SeedS        float64 `json:"seed_s"`
	SeedRowsPerS float64 `json:"seed_rows_per_s"`
	// RepsS are the end-to-end times of each fresh device: open, attach,
	// snapshot session, every page, applied to SQLite (device mode).
	RepsS    []float64 `json:"reps_s"`
	MedianS  float64   `json:"median_s"`
	RowsPerS float64   `json:"rows_per_s"`
	// HTTPRepsS (device mode only) read the same snapshot with the light
	// client, which decodes pages of 1,000 rows with encoding/json and
	// drops them: no SQLite, but no lower bound for the device either.
	HTTPRepsS   []float64 `json:"http_reps_s,omitempty"`
	HTTPMedianS float64   `json:"http_median_s,omitempty"`
}

// seedBundle is the rows per seeding push (chunks of 5,000).
const seedBundle = 10000

// snapshot seeds one user of the first tenant with SnapshotRows rows, then
// times Reps fresh devices hydrating from a snapshot.
func (r *runner) snapshot(ctx context.Context, res *Result) error {
	t := r.mainTenants()[0]
	user := fmt.Sprintf("lg-%s-snap", r.runID)
	tok, err := t.token(user)
	if err != nil {
		return err
	}
	base := r.cfg.URL + "/k/" + t.PublishableKey
	seeder := &httpDevice{hc: r.hc, base: base, token: tok, source: "lg-seed-" + uuid.NewString(), wire: t.wire(), chunkSize: 5000}
	if err := seeder.attach(ctx); err != nil {
		return fmt.Errorf("loadgen: seed: %w", err)
	}
	sr := &SnapResult{Rows: int64(r.cfg.SnapshotRows)}
	res.Snapshot = sr
	r.phase("seeding %d rows for one user", r.cfg.SnapshotRows)
	bar := r.bar(int64(r.cfg.SnapshotRows), "seed")
	start := time.Now()
	for left := r.cfg.SnapshotRows; left > 0; {
		n := min(left, seedBundle)
		if err := seeder.push(ctx, n); err != nil {
			return fmt.Errorf("loadgen: seed: %w", err)
		}
		left -= n
		bar.Add(n)
	}
	_ = bar.Finish()
	sr.SeedS = time.Since(start).Seconds()
	sr.SeedRowsPerS = float64(r.cfg.SnapshotRows) / sr.SeedS
	res.SetupS = sr.SeedS

	measure := time.Now()
	for rep := range r.cfg.Reps {
		if r.cfg.Mode == ModeHTTP || rep < r.cfg.DeviceReps {
			r.phase("repetition %d/%d: fresh %s device hydrates %d rows", rep+1, r.cfg.Reps, r.cfg.Mode, r.cfg.SnapshotRows)
			secs, err := r.hydrate(ctx, base, tok, t.wire(), rep, r.cfg.Mode)
			if err != nil {
				return fmt.Errorf("loadgen: repetition %d: %w", rep+1, err)
			}
			sr.RepsS = append(sr.RepsS, secs)
			r.phase("  %.2f s", secs)
		}
		if r.cfg.Mode == ModeDevice {
			secs, err := r.hydrate(ctx, base, tok, t.wire(), rep, ModeHTTP)
			if err != nil {
				return fmt.Errorf("loadgen: repetition %d (http): %w", rep+1, err)
			}
			sr.HTTPRepsS = append(sr.HTTPRepsS, secs)
			r.phase("  over HTTP without SQLite: %.2f s", secs)
		}
	}
	res.ElapsedS = time.Since(measure).Seconds()
	sr.MedianS = median(sr.RepsS)
	if sr.MedianS > 0 {
		sr.RowsPerS = float64(sr.Rows) / sr.MedianS
	}
	sr.HTTPMedianS = median(sr.HTTPRepsS)
	res.StoppedBy = "reps"
	res.Main = r.rec.group(GroupMain).result(time.Since(start), 1, 1)
	return nil
}

// hydrate times one fresh device's attach (snapshot included) and checks
// it received every row.
func (r *runner) hydrate(ctx context.Context, base, tok, wire string, rep int, mode string) (float64, error) {
	if mode == ModeHTTP {
		d := &httpDevice{hc: r.hc, base: base, token: tok, source: "lg-fresh-" + uuid.NewString(), wire: wire, chunkSize: 1000}
		start := time.Now()
		if err := d.attach(ctx); err != nil {
			return 0, err
		}
		return time.Since(start).Seconds(), nil
	}
	path := filepath.Join(r.dir, fmt.Sprintf("fresh-%d.db", rep))
	start := time.Now()
	c, err := device.Open(ctx, device.Config{Path: path, BaseURL: base, Schema: r.schema, WireSchema: wire, HTTPClient: r.hc,
		Token: func(context.Context) (string, error) { return tok, nil }})
	if err != nil {
		return 0, err
	}
	defer func() {
		c.Close()
		for _, suffix := range []string{"", "-wal", "-shm"} {
			os.Remove(path + suffix)
		}
	}()
	if err := c.Attach(ctx); err != nil {
		return 0, err
	}
	secs := time.Since(start).Seconds()
	var n int64
	if err := c.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM items`).Scan(&n); err != nil {
		return 0, err
	}
	if n != int64(r.cfg.SnapshotRows) {
		return 0, fmt.Errorf("fresh device holds %d rows, want %d", n, r.cfg.SnapshotRows)
	}
	return secs, nil
}
