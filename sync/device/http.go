package device

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// APIError is a non-200 answer of the server, decoded from the protocol's
// error envelope (section 4.4).
type APIError struct {
	Method, Path string
	Status       int
	Code         string // the envelope's "error"
	Message      string
	// Conflict is set for 409 push_conflict.
	Conflict *ConflictDetails
	// SourceID and ReplacedBySourceID are set for 409 source_retired.
	SourceID           string
	ReplacedBySourceID string
	// RetryAfter is the Retry-After header of a 429 or 503, if any.
	RetryAfter time.Duration
	Body       []byte
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Status, e.Code, e.Message)
}

// IsCode reports whether err is an *APIError with the given code.
func IsCode(err error, code string) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == code
}

// ConflictDetails is the "conflict" member of a push_conflict error (8.2).
type ConflictDetails struct {
	Schema           string            `json:"schema"`
	Table            string            `json:"table"`
	Key              map[string]string `json:"key"`
	Op               string            `json:"op"`
	BaseRowVersion   int64             `json:"base_row_version"`
	ServerRowVersion int64             `json:"server_row_version"`
	ServerRowDeleted bool              `json:"server_row_deleted"`
	ServerRow        json.RawMessage   `json:"server_row"`
}

type errorEnvelope struct {
	Error              string           `json:"error"`
	Message            string           `json:"message"`
	Conflict           *ConflictDetails `json:"conflict"`
	SourceID           string           `json:"source_id"`
	ReplacedBySourceID string           `json:"replaced_by_source_id"`
}

// retryable reports whether a failed request may be retried (4.6): 429,
// 502, 503, 504 and network errors.
func retryable(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		switch ae.Status {
		case 429, 502, 503, 504:
			return true
		}
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// retryAttempts is how often a retryable operation is tried (Go client: 3).
const retryAttempts = 3

// maxRetryAfter bounds how long a Retry-After header makes the client wait.
const maxRetryAfter = 5 * time.Second

// withRetry runs fn up to retryAttempts times while it fails retryably,
// sleeping 100 ms doubling to 1 s with ±20 % jitter in between.
func withRetry(ctx context.Context, fn func() error) error {
	delay := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt >= retryAttempts || !retryable(err) || ctx.Err() != nil {
			return err
		}
		d := time.Duration(float64(delay) * (0.8 + 0.4*rand.Float64()))
		// Syncplane's 429 rate_limited says when to come back; honour it
		// (bounded), which the protocol allows and the reference ignores.
		var ae *APIError
		if errors.As(err, &ae) && ae.RetryAfter > d {
			d = min(ae.RetryAfter, maxRetryAfter)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
		delay = min(2*delay, time.Second)
	}
}

// request describes one protocol call.
type request struct {
	method   string
	path     string // e.g. /sync/pull
	query    url.Values
	body     any // JSON-encoded when non-nil
	sourceID string
}

// send performs one request without retrying and decodes a 200 JSON answer
// into out (if non-nil; a *[]byte receives the body as it is). A 204 is
// success too.
func (c *Client) send(ctx context.Context, r request, out any) error {
	resp, err := c.open(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusNoContent && r.method == http.MethodDelete {
		return nil
	}
	if resp.StatusCode != http.StatusOK {
		ae := decodeAPIError(r, resp.StatusCode, data)
		ae.RetryAfter = retryAfter(resp.Header.Get("Retry-After"))
		return ae
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*[]byte); ok { // the caller decodes
		*raw = data
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", r.method, r.path, err)
	}
	return nil
}

// call is send with the retry policy of 4.6; use it for idempotent calls.
func (c *Client) call(ctx context.Context, r request, out any) error {
	return withRetry(ctx, func() error { return c.send(ctx, r, out) })
}

// open sends the request and returns the raw response (status not checked).
func (c *Client) open(ctx context.Context, r request) (*http.Response, error) {
	u := c.base + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return nil, err
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	tok, err := c.cfg.Token(ctx)
	if err != nil {
		return nil, fmt.Errorf("device: token: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	src := r.sourceID
	if src == "" {
		st, err := c.state(ctx)
		if err != nil {
			return nil, err
		}
		src = st.sourceID
	}
	req.Header.Set("Oversync-Source-ID", src)
	return c.http.Do(req)
}

// retryAfter parses a Retry-After header given in seconds.
func retryAfter(h string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(h))
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}

func decodeAPIError(r request, status int, data []byte) *APIError {
	ae := &APIError{Method: r.method, Path: r.path, Status: status, Body: data}
	var env errorEnvelope
	if json.Unmarshal(data, &env) == nil {
		ae.Code, ae.Message, ae.Conflict = env.Error, env.Message, env.Conflict
		ae.SourceID, ae.ReplacedBySourceID = env.SourceID, env.ReplacedBySourceID
	}
	if ae.Code == "" {
		ae.Code = http.StatusText(status)
		ae.Message = string(bytes.TrimSpace(data))
		if len(ae.Message) > 200 {
			ae.Message = ae.Message[:200]
		}
	}
	return ae
}

// Wire types (reference-openapi.yaml).

type capabilities struct {
	ProtocolVersion string           `json:"protocol_version"`
	SchemaVersion   int64            `json:"schema_version"`
	AppName         string           `json:"app_name"`
	Tables          []string         `json:"registered_tables"`
	Features        map[string]bool  `json:"features"`
	BundleLimits    map[string]int64 `json:"bundle_limits"`
}

type connectResponse struct {
	Resolution        string `json:"resolution"`
	InitializationID  string `json:"initialization_id"`
	LeaseExpiresAt    string `json:"lease_expires_at"`
	RetryAfterSeconds int64  `json:"retry_after_seconds"`
}

type pushCreateRequest struct {
	SourceBundleID   int64  `json:"source_bundle_id"`
	PlannedRowCount  int64  `json:"planned_row_count"`
	InitializationID string `json:"initialization_id,omitempty"`
}

type pushCreateResponse struct {
	PushID                 string `json:"push_id"`
	Status                 string `json:"status"`
	PlannedRowCount        int64  `json:"planned_row_count"`
	NextExpectedRowOrdinal int64  `json:"next_expected_row_ordinal"`
	bundleMeta
}

type bundleMeta struct {
	BundleSeq      int64  `json:"bundle_seq"`
	SourceID       string `json:"source_id"`
	SourceBundleID int64  `json:"source_bundle_id"`
	RowCount       int64  `json:"row_count"`
	BundleHash     string `json:"bundle_hash"`
}

type pushRow struct {
	Schema         string            `json:"schema"`
	Table          string            `json:"table"`
	Key            map[string]string `json:"key"`
	Op             string            `json:"op"`
	BaseRowVersion int64             `json:"base_row_version"`
	Payload        json.RawMessage   `json:"payload,omitempty"`
}

type chunkRequest struct {
	StartRowOrdinal int64     `json:"start_row_ordinal"`
	Rows            []pushRow `json:"rows"`
}

type chunkResponse struct {
	PushID                 string `json:"push_id"`
	NextExpectedRowOrdinal int64  `json:"next_expected_row_ordinal"`
}

// wireRow is a bundle row or snapshot row as served.
type wireRow struct {
	Schema     string          `json:"schema"`
	Table      string          `json:"table"`
	Key        json.RawMessage `json:"key"`
	Op         string          `json:"op"`
	RowVersion int64           `json:"row_version"`
	Payload    json.RawMessage `json:"payload"`
}

type committedRowsResponse struct {
	bundleMeta
	Rows           []wireRow `json:"rows"`
	NextRowOrdinal int64     `json:"next_row_ordinal"`
	HasMore        bool      `json:"has_more"`
}

type wireBundle struct {
	bundleMeta
	Rows []wireRow `json:"rows"`
}

type pullResponse struct {
	StableBundleSeq int64        `json:"stable_bundle_seq"`
	Bundles         []wireBundle `json:"bundles"`
	HasMore         bool         `json:"has_more"`
}

type sourceReplacement struct {
	PreviousSourceID string `json:"previous_source_id"`
	NewSourceID      string `json:"new_source_id"`
	Reason           string `json:"reason"`
}

type snapshotCreateRequest struct {
	SourceReplacement *sourceReplacement `json:"source_replacement,omitempty"`
}

type snapshotSession struct {
	SnapshotID        string `json:"snapshot_id"`
	SnapshotBundleSeq int64  `json:"snapshot_bundle_seq"`
	RowCount          int64  `json:"row_count"`
	ByteCount         int64  `json:"byte_count"`
	ExpiresAt         string `json:"expires_at"`
}

type snapshotChunk struct {
	SnapshotID        string    `json:"snapshot_id"`
	SnapshotBundleSeq int64     `json:"snapshot_bundle_seq"`
	Rows              []wireRow `json:"rows"`
	NextRowOrdinal    int64     `json:"next_row_ordinal"`
	HasMore           bool      `json:"has_more"`
}
