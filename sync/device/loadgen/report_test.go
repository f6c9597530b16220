package loadgen

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReportPushReadsFloors(t *testing.T) {
	dir := t.TempDir()
	bench := `goos: linux
BenchmarkPush10k/sync_push-2         	       3	 312107123 ns/op	     30000 rows/s
BenchmarkPush10k/sync_push-2         	       3	 409269867 ns/op	     20000 rows/s
BenchmarkPush10k/sync_push-2         	       3	 387433253 ns/op	     25000 rows/s
BenchmarkPush10k/plain_copy-2        	       3	  65778902 ns/op	    100000 rows/s
BenchmarkPush10k/floor_stage_apply-2 	       3	  87888494 ns/op	     70000 rows/s
BenchmarkPush10k/floor_decode_stage_apply-2         	       3	 112107123 ns/op	     55000 rows/s
BenchmarkPush10k/floor_live_history-2         	       3	 132107123 ns/op	     45000 rows/s
BenchmarkPush10k/floor_stage_apply_log-2         	       3	 169598500 ns/op	     40000 rows/s
PASS
`
	if err := os.WriteFile(filepath.Join(dir, "push_bench.txt"), []byte(bench), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := reportPush(dir)
	if err != nil {
		t.Fatal(err)
	}
	if w.Value != 25000 || *w.Met {
		t.Fatalf("value %v met %v, want the median 25000 and not met", w.Value, *w.Met)
	}
	for k, want := range map[string]float64{"ratio": 0.25, "floor_stage_apply_ratio": 0.7, "floor_decode_stage_apply_ratio": 0.55, "floor_live_history_ratio": 0.45, "floor_stage_apply_log_ratio": 0.4,
		"floor_stage_apply_log_rows_per_s": 40000} {
		if got := w.Extra[k]; got != want {
			t.Errorf("%s = %v, want %v", k, got, want)
		}
	}
	for _, row := range []string{"| floor with the server's JSON decoding and bundle hash | 55000 | 55.0% |", "| floor with the after-image history | 40000 | 40.0% |"} {
		if !strings.Contains(w.Detail, row) {
			t.Errorf("detail lacks the floor row %q:\n%s", row, w.Detail)
		}
	}
}

func TestReportPushWithoutFloors(t *testing.T) {
	dir := t.TempDir()
	bench := "BenchmarkPush10k/sync_push-2 3 1 ns/op 60000 rows/s\nBenchmarkPush10k/plain_copy-2 3 1 ns/op 100000 rows/s\n"
	if err := os.WriteFile(filepath.Join(dir, "push_bench.txt"), []byte(bench), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := reportPush(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !*w.Met || w.Miss != "" {
		t.Fatalf("met %v miss %q, want met", *w.Met, w.Miss)
	}
	if _, ok := w.Extra["floor_stage_apply_ratio"]; ok {
		t.Error("a floor ratio without floor results")
	}
}
