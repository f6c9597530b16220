package device

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"time"
)

// ErrNotAttached is returned by sync operations before Attach succeeded.
var ErrNotAttached = errors.New("device: not attached (call Attach)")

// ErrPendingChanges is returned by Pull while local changes are not yet
// pushed (the protocol pulls only with nothing dirty or frozen, 13.3).
var ErrPendingChanges = errors.New("device: local changes are pending; push first")

// outboxRow is one row of the frozen push.
type outboxRow struct {
	ordinal int64
	table   string
	key     string
	op      string
	base    int64
	payload json.RawMessage
}

// freeze moves the dirty set into the outbox, unless a push is already
// frozen. Per key the op is recomputed from the current local row and the
// server row state: INSERT if the server has no live row, UPDATE if it has,
// DELETE if the row is gone locally (nothing if the server never had it).
// Upserts go parents first, deletes children first. It returns the number
// of outbox rows.
func (c *Client) freeze(ctx context.Context) (int, error) {
	var n int
	err := c.tx(ctx, func(tx *txn) error {
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM _sync_outbox`).Scan(&n); err != nil || n > 0 {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT tbl, key, ordinal FROM _sync_dirty ORDER BY ordinal`)
		if err != nil {
			return err
		}
		type dk struct {
			table, key string
			ord        int64
		}
		var dirty []dk
		for rows.Next() {
			var d dk
			if err := rows.Scan(&d.table, &d.key, &d.ord); err != nil {
				rows.Close()
				return err
			}
			dirty = append(dirty, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		rank := map[string]int{}
		for i, t := range c.tables {
			rank[t.Name] = i
		}
		type item struct {
			outboxRow
			rank int
			ord  int64
		}
		var ups, dels []item
		for _, d := range dirty {
			t, ok := c.byName[d.table]
			if !ok {
				continue
			}
			var version, deleted int64
			err := tx.QueryRowContext(ctx, `SELECT row_version, deleted FROM _sync_row_state WHERE tbl = ? AND key = ?`, d.table, d.key).Scan(&version, &deleted)
			known := err == nil
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			live := known && deleted == 0
			vals, exists, err := readLocal(ctx, tx, t, d.key)
			if err != nil {
				return err
			}
			it := item{outboxRow: outboxRow{table: d.table, key: d.key, base: version}, rank: rank[d.table], ord: d.ord}
			switch {
			case exists:
				it.op = "INSERT"
				if live {
					it.op = "UPDATE"
				}
				if it.payload, err = encodePayload(t, vals); err != nil {
					return err
				}
				ups = append(ups, it)
			case live:
				it.op = "DELETE"
				dels = append(dels, it)
			}
		}
		sort.SliceStable(ups, func(i, j int) bool { return ups[i].rank < ups[j].rank })
		sort.SliceStable(dels, func(i, j int) bool { return dels[i].rank > dels[j].rank })
		all := append(ups, dels...)
		for i, it := range all {
			var payload any
			if it.payload != nil {
				payload = string(it.payload)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO _sync_outbox (ordinal, tbl, key, op, base_row_version, payload) VALUES (?, ?, ?, ?, ?, ?)`,
				i, it.table, it.key, it.op, it.base, payload); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM _sync_dirty`); err != nil {
			return err
		}
		n = len(all)
		return nil
	})
	return n, err
}

func (c *Client) loadOutbox(ctx context.Context) ([]outboxRow, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT ordinal, tbl, key, op, base_row_version, payload FROM _sync_outbox ORDER BY ordinal`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []outboxRow
	for rows.Next() {
		var r outboxRow
		var payload sql.NullString
		if err := rows.Scan(&r.ordinal, &r.table, &r.key, &r.op, &r.base, &payload); err != nil {
			return nil, err
		}
		if payload.Valid {
			r.payload = json.RawMessage(payload.String)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (c *Client) wireRowOf(r outboxRow) pushRow {
	t := c.byName[r.table]
	return pushRow{
		Schema: c.cfg.WireSchema, Table: r.table, Key: map[string]string{t.Key.Name: r.key},
		Op: r.op, BaseRowVersion: r.base, Payload: r.payload,
	}
}

// Push uploads local changes as one logical push (13.2), resolving conflicts
// and recovering the source as the protocol describes. It does nothing when
// nothing is pending.
func (c *Client) Push(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.push(ctx, 0)
}

func (c *Client) push(ctx context.Context, depth int) error {
	if err := c.recover(ctx); err != nil {
		return err
	}
	st, err := c.state(ctx)
	if err != nil {
		return err
	}
	if !st.attached {
		return ErrNotAttached
	}
	conflicts, rotations := 0, 0
	for {
		n, err := c.freeze(ctx)
		if err != nil || n == 0 {
			return err
		}
		err = withRetry(ctx, func() error { return c.pushOnce(ctx) })
		var ae *APIError
		if err == nil || !errors.As(err, &ae) {
			return err
		}
		switch ae.Code {
		case "push_conflict":
			if conflicts >= 2 || ae.Conflict == nil {
				return err
			}
			conflicts++
			if err := c.resolveConflict(ctx, ae.Conflict); err != nil {
				return err
			}
		case "history_pruned", "source_sequence_out_of_order", "source_sequence_changed", "source_retired":
			// history_pruned here comes from push create: the frozen tuple
			// is older than retained history (13.8, rotated rebuild).
			if rotations >= 2 {
				return err
			}
			rotations++
			if st, serr := c.state(ctx); serr == nil && st.initID != "" && ae.Code == "source_sequence_out_of_order" {
				// A seed push with a counter left over from another user (13.7):
				// rotation needs an initialized scope, which only this seed
				// would create. Finish initialization empty instead (same
				// source, no pending rows: 7.2), then push normally; the
				// rotation then works.
				if err := c.initializeEmpty(ctx, st.sourceID); err != nil {
					return err
				}
				continue
			}
			if err := c.rotate(ctx, ae.Code, ae.ReplacedBySourceID); err != nil {
				return err
			}
		case "initialization_stale", "initialization_expired":
			// Drop the lease and re-attach (4.6).
			c.logf("device: %s; re-attaching", ae.Code)
			if err := c.setState(ctx, `attached = 0, initialization_id = ''`); err != nil {
				return err
			}
			if depth > 1 {
				return err
			}
			return c.attach(ctx, depth+1)
		case "scope_uninitialized":
			if err := c.setState(ctx, `attached = 0, initialization_id = ''`); err != nil {
				return err
			}
			return err
		default:
			return err
		}
	}
}

// pushOnce runs steps 2-5 of 13.2 for the frozen outbox.
func (c *Client) pushOnce(ctx context.Context) error {
	st, err := c.state(ctx)
	if err != nil {
		return err
	}
	rows, err := c.loadOutbox(ctx)
	if err != nil || len(rows) == 0 {
		return err
	}
	n := st.nextSBID
	var cr pushCreateResponse
	err = c.send(ctx, request{method: http.MethodPost, path: "/sync/push-sessions", sourceID: st.sourceID,
		body: pushCreateRequest{SourceBundleID: n, PlannedRowCount: int64(len(rows)), InitializationID: st.initID}}, &cr)
	if err != nil {
		return err
	}
	switch cr.Status {
	case "already_committed":
		if cr.SourceBundleID != n || cr.SourceID != st.sourceID {
			return fmt.Errorf("device: already_committed answer names %s/%d, expected %s/%d", cr.SourceID, cr.SourceBundleID, st.sourceID, n)
		}
		c.logf("device: push %d already committed as bundle %d", n, cr.BundleSeq)
		return c.finishCommitted(ctx, st, cr.bundleMeta, rows, true)
	case "staging":
	default:
		return fmt.Errorf("device: push create answered status %q", cr.Status)
	}
	if cr.PushID == "" || cr.PlannedRowCount != int64(len(rows)) || cr.NextExpectedRowOrdinal != 0 {
		return fmt.Errorf("device: push create answer does not match the request (push_id %q, planned %d, next %d)",
			cr.PushID, cr.PlannedRowCount, cr.NextExpectedRowOrdinal)
	}
	began := time.Now()
	pushPath := "/sync/push-sessions/" + url.PathEscape(cr.PushID)
	abandon := func(err error) error {
		// Best effort; the result does not matter (7.6).
		_ = c.send(context.WithoutCancel(ctx), request{method: http.MethodDelete, path: pushPath, sourceID: st.sourceID}, nil)
		return err
	}
	for start := 0; start < len(rows); start += c.cfg.ChunkSize {
		end := min(start+c.cfg.ChunkSize, len(rows))
		req := chunkRequest{StartRowOrdinal: int64(start), Rows: make([]pushRow, 0, end-start)}
		for _, r := range rows[start:end] {
			req.Rows = append(req.Rows, c.wireRowOf(r))
		}
		var resp chunkResponse
		if err := c.send(ctx, request{method: http.MethodPost, path: pushPath + "/chunks", sourceID: st.sourceID, body: req}, &resp); err != nil {
			return abandon(err)
		}
		if resp.PushID != cr.PushID || resp.NextExpectedRowOrdinal != int64(end) {
			return abandon(fmt.Errorf("device: chunk answer push_id %q next %d, expected %q next %d",
				resp.PushID, resp.NextExpectedRowOrdinal, cr.PushID, end))
		}
	}
	uploaded := time.Now()
	var meta bundleMeta
	if err := c.send(ctx, request{method: http.MethodPost, path: pushPath + "/commit", sourceID: st.sourceID}, &meta); err != nil {
		return abandon(err)
	}
	if meta.SourceID != st.sourceID || meta.SourceBundleID != n || meta.BundleSeq <= 0 {
		return fmt.Errorf("device: commit answered %s/%d bundle %d, expected %s/%d", meta.SourceID, meta.SourceBundleID, meta.BundleSeq, st.sourceID, n)
	}
	committed := time.Now()
	if err := c.finishCommitted(ctx, st, meta, rows, false); err != nil {
		return err
	}
	c.logf("device: push %d: %d rows -> bundle %d (%d rows); upload %s, commit %s, fetch and apply %s", n, len(rows),
		meta.BundleSeq, meta.RowCount, uploaded.Sub(began).Round(time.Millisecond), committed.Sub(uploaded).Round(time.Millisecond),
		time.Since(committed).Round(time.Millisecond))
	return nil
}

// finishCommitted fetches the committed bundle, verifies it, applies it as
// authoritative and advances the counters (13.2 step 5). replay compares it
// with the frozen outbox first (already_committed, 9).
func (c *Client) finishCommitted(ctx context.Context, st stateRow, meta bundleMeta, outbox []outboxRow, replay bool) error {
	rows, err := c.fetchCommitted(ctx, st.sourceID, meta)
	if IsCode(err, "history_pruned") {
		// 13.8: keep-source rebuild and move the counter past the tuple.
		c.logf("device: committed bundle %d already pruned; rebuilding from a snapshot", meta.BundleSeq)
		if err := c.tx(ctx, func(tx *txn) error {
			if _, err := tx.ExecContext(ctx, `DELETE FROM _sync_outbox`); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `UPDATE _sync_state SET next_source_bundle_id = ?, initialization_id = '', rebuild_required = 1 WHERE id = 1`, meta.SourceBundleID+1)
			return err
		}); err != nil {
			return err
		}
		return c.recover(ctx)
	}
	if err != nil {
		return err
	}
	if replay {
		if err := c.checkReplay(outbox, rows); err != nil {
			return err
		}
	}
	return c.applyTx(ctx, func(tx *txn) error {
		var dirty int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM _sync_dirty`).Scan(&dirty); err != nil {
			return err
		}
		tx.noDirty = dirty == 0
		for i := range rows {
			if err := c.applyServerRow(ctx, tx, &rows[i]); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM _sync_outbox`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE _sync_state SET next_source_bundle_id = ?, initialization_id = '',
			last_bundle_seq_seen = CASE WHEN last_bundle_seq_seen + 1 = ? THEN ? ELSE last_bundle_seq_seen END WHERE id = 1`,
			meta.SourceBundleID+1, meta.BundleSeq, meta.BundleSeq)
		return err
	})
}

// fetchCommitted reads every page of a committed bundle (7.7) and verifies
// metadata, row count and bundle_hash.
func (c *Client) fetchCommitted(ctx context.Context, sourceID string, meta bundleMeta) ([]wireRow, error) {
	h, _ := newBundleHasher()
	var rows []wireRow
	path := "/sync/committed-bundles/" + strconv.FormatInt(meta.BundleSeq, 10) + "/rows"
	first := true
	var after int64
	for {
		q := url.Values{"max_rows": {"1000"}}
		if !first {
			q.Set("after_row_ordinal", strconv.FormatInt(after, 10))
		}
		var page committedRowsResponse
		if err := c.call(ctx, request{method: http.MethodGet, path: path, query: q, sourceID: sourceID}, &page); err != nil {
			return nil, err
		}
		if page.bundleMeta != meta {
			return nil, fmt.Errorf("device: committed bundle %d page metadata %+v differs from %+v", meta.BundleSeq, page.bundleMeta, meta)
		}
		for i := range page.Rows {
			r := &page.Rows[i]
			if r.RowVersion != meta.BundleSeq {
				return nil, fmt.Errorf("device: committed bundle %d row has row_version %d", meta.BundleSeq, r.RowVersion)
			}
			if err := h.add(HashRow{Schema: r.Schema, Table: r.Table, Key: r.Key, Op: r.Op, RowVersion: r.RowVersion, Payload: r.Payload}); err != nil {
				return nil, err
			}
		}
		rows = append(rows, page.Rows...)
		if len(page.Rows) > 0 {
			want := int64(len(rows) - 1)
			if page.NextRowOrdinal != want {
				return nil, fmt.Errorf("device: committed bundle %d page next_row_ordinal %d, expected %d", meta.BundleSeq, page.NextRowOrdinal, want)
			}
		}
		if !page.HasMore {
			break
		}
		if len(page.Rows) == 0 {
			return nil, fmt.Errorf("device: committed bundle %d: empty page with has_more", meta.BundleSeq)
		}
		first, after = false, page.NextRowOrdinal
	}
	if int64(len(rows)) != meta.RowCount {
		return nil, fmt.Errorf("device: committed bundle %d has %d rows, row_count says %d", meta.BundleSeq, len(rows), meta.RowCount)
	}
	if sum := h.sum(); sum != meta.BundleHash {
		return nil, fmt.Errorf("device: committed bundle %d hash mismatch: computed %s, server %s", meta.BundleSeq, sum, meta.BundleHash)
	}
	return rows, nil
}
