package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// httpDevice is the light mode (--mode=http): a device that speaks the
// protocol's client flows (13.1-13.3, 13.5) directly, without SQLite. It
// keeps only what the flows need (source id, next source_bundle_id,
// checkpoint) and drops the rows it receives after counting them, so
// thousands fit in one process. It is a load source, not a reference
// client: sync/device is.
type httpDevice struct {
	hc        *http.Client
	base      string // http://host/k/<key>
	token     string
	source    string
	wire      string
	nextSBID  int64
	cp        int64
	chunkSize int
	// noisy devices never give up on a 429: they keep pressing at their
	// tenant's rate limit. With backoff429 == 0 they back off like the
	// reference client (100 ms doubling to 1 s, ±20 % jitter, or the
	// answer's Retry-After when longer, up to 5 s); backoff429 > 0 is the
	// harsh flood: a fixed pause after every 429.
	noisy      bool
	backoff429 time.Duration
	// beforeCommit and afterCommit, if set, run right before the commit
	// request and right after its 200 answer (wake-up latency).
	beforeCommit, afterCommit func()
}

type apiError struct {
	status     int
	code       string
	body       string
	retryAfter time.Duration // Retry-After of a 429 or 503, if any
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.status, e.code, e.body) }

func isCode(err error, code string) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.code == code
}

// maxRetryAfter bounds how long a Retry-After header makes a device wait,
// as in sync/device.
const maxRetryAfter = 5 * time.Second

// do sends one request and decodes a 200 answer into out; retryable
// failures (429, 502-504, network) are retried as the protocol's clients do
// (4.6: three attempts, 100 ms doubling). A noisy device retries 429s
// without end (see httpDevice.noisy).
func (d *httpDevice) do(ctx context.Context, method, path string, body, out any) error {
	var data []byte
	if body != nil {
		var err error
		if data, err = json.Marshal(body); err != nil {
			return err
		}
	}
	delay := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := d.once(ctx, method, path, data, body != nil, out)
		if err == nil || ctx.Err() != nil {
			return err
		}
		var ae *apiError
		retry := true
		wait := time.Duration(float64(delay) * (0.8 + 0.4*rand.Float64()))
		if errors.As(err, &ae) {
			switch ae.status {
			case 429:
				if d.noisy {
					attempt = 0 // keeps pressing: the noisy tenant never gives up
					if d.backoff429 > 0 {
						wait = d.backoff429
					} else if ae.retryAfter > wait {
						wait = min(ae.retryAfter, maxRetryAfter)
					}
				}
			case 502, 503, 504:
			default:
				retry = false
			}
		}
		if !retry || attempt >= 3 {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		delay = min(2*delay, time.Second)
	}
}

func (d *httpDevice) once(ctx context.Context, method, path string, data []byte, hasBody bool, out any) error {
	var rd io.Reader
	if hasBody {
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.base+path, rd)
	if err != nil {
		return err
	}
	if hasBody {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+d.token)
	req.Header.Set("Oversync-Source-ID", d.source)
	resp, err := d.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusNoContent && method == http.MethodDelete {
		return nil
	}
	if resp.StatusCode != http.StatusOK {
		var env struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(b, &env)
		ae := &apiError{status: resp.StatusCode, code: env.Error, body: strings.TrimSpace(string(b[:min(len(b), 300)]))}
		if n, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); err == nil && n > 0 {
			ae.retryAfter = time.Duration(n) * time.Second
		}
		return ae
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

// attach runs capabilities and connect (13.1); a user already initialized
// is hydrated with a keep-source snapshot whose rows are counted and
// dropped.
func (d *httpDevice) attach(ctx context.Context) error {
	if err := d.do(ctx, http.MethodGet, "/sync/capabilities", nil, nil); err != nil {
		return err
	}
	for {
		var cr struct {
			Resolution        string `json:"resolution"`
			RetryAfterSeconds int64  `json:"retry_after_seconds"`
		}
		if err := d.do(ctx, http.MethodPost, "/sync/connect", map[string]bool{"has_local_pending_rows": false}, &cr); err != nil {
			return err
		}
		switch cr.Resolution {
		case "initialize_empty":
			d.nextSBID = 1
			return nil
		case "remote_authoritative":
			d.nextSBID = 1
			_, err := d.snapshot(ctx)
			return err
		case "retry_later":
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(max(cr.RetryAfterSeconds, 1)) * time.Second):
			}
		default:
			return fmt.Errorf("connect answered %q", cr.Resolution)
		}
	}
}

// snapshot reads a keep-source snapshot to the end (7.10, 7.11), in pages
// of 1,000 rows as the reference client does, and sets the checkpoint.
func (d *httpDevice) snapshot(ctx context.Context) (int64, error) {
	var s struct {
		SnapshotID        string `json:"snapshot_id"`
		SnapshotBundleSeq int64  `json:"snapshot_bundle_seq"`
		RowCount          int64  `json:"row_count"`
	}
	if err := d.do(ctx, http.MethodPost, "/sync/snapshot-sessions", nil, &s); err != nil {
		return 0, err
	}
	var after, n int64
	for {
		var ch struct {
			Rows           []json.RawMessage `json:"rows"`
			NextRowOrdinal int64             `json:"next_row_ordinal"`
			HasMore        bool              `json:"has_more"`
		}
		path := "/sync/snapshot-sessions/" + s.SnapshotID + "?max_rows=1000&after_row_ordinal=" + strconv.FormatInt(after, 10)
		if err := d.do(ctx, http.MethodGet, path, nil, &ch); err != nil {
			return n, err
		}
		n += int64(len(ch.Rows))
		after = ch.NextRowOrdinal
		if !ch.HasMore {
			break
		}
	}
	if n != s.RowCount {
		return n, fmt.Errorf("snapshot served %d rows, announced %d", n, s.RowCount)
	}
	d.cp = s.SnapshotBundleSeq
	_ = d.do(ctx, http.MethodDelete, "/sync/snapshot-sessions/"+s.SnapshotID, nil, nil)
	return n, nil
}

// itemRow is one generated row of the items table, as a push row.
func (d *httpDevice) itemRow(seq int) map[string]any {
	id := uuid.NewString()
	return map[string]any{"schema": d.wire, "table": "items", "key": map[string]string{"id": id},
		"op": "INSERT", "base_row_version": 0, "payload": map[string]any{
			"id": id, "title": "item " + strconv.Itoa(seq), "body": "generated by syncplane loadgen",
			"n": seq, "score": float64(seq) / 7, "updated_at": time.Now().UTC().Format(time.RFC3339Nano)}}
}

// push commits rows new rows as one logical push (13.2): create, chunks,
// commit, then the committed bundle's rows (the replay a client applies).
func (d *httpDevice) push(ctx context.Context, rows int) error {
	all := make([]map[string]any, rows)
	for i := range all {
		all[i] = d.itemRow(i)
	}
	var cr struct {
		PushID         string `json:"push_id"`
		Status         string `json:"status"`
		BundleSeq      int64  `json:"bundle_seq"`
		SourceBundleID int64  `json:"source_bundle_id"`
	}
	if err := d.do(ctx, http.MethodPost, "/sync/push-sessions",
		map[string]any{"source_bundle_id": d.nextSBID, "planned_row_count": rows}, &cr); err != nil {
		return err
	}
	seq := cr.BundleSeq
	if cr.Status != "already_committed" {
		for start := 0; start < rows; start += d.chunkSize {
			end := min(start+d.chunkSize, rows)
			path := "/sync/push-sessions/" + cr.PushID + "/chunks"
			if err := d.once(ctx, http.MethodPost, path, mustJSON(map[string]any{"start_row_ordinal": start, "rows": all[start:end]}), true, nil); err != nil {
				d.abandon(ctx, cr.PushID)
				return err
			}
		}
		var cm struct {
			BundleSeq int64 `json:"bundle_seq"`
		}
		if d.beforeCommit != nil {
			d.beforeCommit()
		}
		if err := d.once(ctx, http.MethodPost, "/sync/push-sessions/"+cr.PushID+"/commit", nil, false, &cm); err != nil {
			d.abandon(ctx, cr.PushID)
			return err
		}
		if d.afterCommit != nil {
			d.afterCommit()
		}
		seq = cm.BundleSeq
	}
	// Accepted-push replay: fetch the committed rows.
	var after int64 = -1
	for {
		var page struct {
			NextRowOrdinal int64 `json:"next_row_ordinal"`
			HasMore        bool  `json:"has_more"`
		}
		path := "/sync/committed-bundles/" + strconv.FormatInt(seq, 10) + "/rows?max_rows=1000"
		if after >= 0 {
			path += "&after_row_ordinal=" + strconv.FormatInt(after, 10)
		}
		if err := d.do(ctx, http.MethodGet, path, nil, &page); err != nil {
			return err
		}
		if !page.HasMore {
			break
		}
		after = page.NextRowOrdinal
	}
	d.nextSBID++
	if seq == d.cp+1 {
		d.cp = seq
	}
	return nil
}

func (d *httpDevice) abandon(ctx context.Context, pushID string) {
	_ = d.once(ctx, http.MethodDelete, "/sync/push-sessions/"+pushID, nil, false, nil)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// pull pulls from the checkpoint to the frozen ceiling (13.3).
func (d *httpDevice) pull(ctx context.Context) error {
	var target int64
	for {
		path := "/sync/pull?max_bundles=1000&after_bundle_seq=" + strconv.FormatInt(d.cp, 10)
		if target > 0 {
			path += "&target_bundle_seq=" + strconv.FormatInt(target, 10)
		}
		var p struct {
			StableBundleSeq int64 `json:"stable_bundle_seq"`
			Bundles         []struct {
				BundleSeq int64 `json:"bundle_seq"`
			} `json:"bundles"`
			HasMore bool `json:"has_more"`
		}
		if err := d.do(ctx, http.MethodGet, path, nil, &p); err != nil {
			if isCode(err, "history_pruned") {
				_, err = d.snapshot(ctx)
			}
			return err
		}
		target = p.StableBundleSeq
		for _, b := range p.Bundles {
			d.cp = b.BundleSeq
		}
		if !p.HasMore || d.cp >= target {
			return nil
		}
	}
}

// watch keeps GET /sync/watch open and calls onEvent with each announced
// bundle_seq, reconnecting from the last one after a disconnect, until ctx
// ends. opened is called once the first stream answered 200.
func (d *httpDevice) watch(ctx context.Context, after int64, opened func(error), onEvent func(seq int64)) {
	first := true
	for ctx.Err() == nil {
		err := d.watchOnce(ctx, after, func() {
			if first {
				first = false
				opened(nil)
			}
		}, func(seq int64) {
			after = max(after, seq)
			onEvent(seq)
		})
		if ctx.Err() != nil {
			break
		}
		if err != nil && first {
			first = false
			opened(err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(200+rand.IntN(300)) * time.Millisecond):
		}
	}
	if first {
		opened(ctx.Err())
	}
}

func (d *httpDevice) watchOnce(ctx context.Context, after int64, opened func(), onEvent func(int64)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.base+"/sync/watch?after_bundle_seq="+strconv.FormatInt(after, 10), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+d.token)
	req.Header.Set("Oversync-Source-ID", d.source)
	resp, err := d.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return &apiError{status: resp.StatusCode, body: string(b)}
	}
	opened()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 512), 64<<10)
	var event string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(line[len("event:"):])
		case strings.HasPrefix(line, "data:") && event == "bundle":
			var ev struct {
				BundleSeq int64 `json:"bundle_seq"`
			}
			if json.Unmarshal([]byte(strings.TrimSpace(line[len("data:"):])), &ev) == nil && ev.BundleSeq > 0 {
				onEvent(ev.BundleSeq)
			}
		case line == "":
			event = ""
		}
	}
	return sc.Err()
}
