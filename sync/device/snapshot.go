package device

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/syncplane/syncplane/tenant"
)

// createSnapshot opens a snapshot session (7.10); rep == nil is a
// keep-source snapshot (sent with no body).
func (c *Client) createSnapshot(ctx context.Context, sourceID string, rep *sourceReplacement) (snapshotSession, error) {
	var s snapshotSession
	r := request{method: http.MethodPost, path: "/sync/snapshot-sessions", sourceID: sourceID}
	if rep != nil {
		r.body = snapshotCreateRequest{SourceReplacement: rep}
	}
	err := c.call(ctx, r, &s)
	if err == nil && (s.SnapshotID == "" || (s.RowCount > 0 && s.SnapshotBundleSeq <= 0)) {
		err = fmt.Errorf("device: invalid snapshot session %+v", s)
	}
	return s, err
}

// rebuild replaces every synced table with the snapshot's rows in one
// transaction (deferred foreign keys, capture suppressed), sets the
// checkpoint to snapshot_bundle_seq, re-applies unsent local intent when
// keepIntent (and otherwise discards it), runs extra in the same
// transaction, then deletes the session.
func (c *Client) rebuild(ctx context.Context, sourceID string, s snapshotSession, keepIntent bool, extra func(*txn) error) error {
	// The rebuild commits a WAL the size of the whole database, and the
	// committing connection would checkpoint it (copy it into the database
	// file and sync that) before the commit returns: about a second for
	// 1,000,000 rows. The transaction runs on a connection of its own with
	// automatic checkpoints off, and the checkpoint runs after the commit
	// in the background (checkpointLater). Synchronous NORMAL never synced
	// a WAL commit anyway; the checkpoint is what makes it durable, now a
	// moment later.
	//
	// The connection also keeps its statement journals in memory
	// (temp_store MEMORY, which SQLite reads when a transaction begins).
	// Every multi-row INSERT of the load may abort, so SQLite journals
	// each page the statement changes that the transaction had already
	// changed; those journals outgrow their 64 KiB in-memory start and
	// went to a temporary file, 15% of the rebuild's SQLite time in a
	// profile of 1,000,000 rows. They hold one statement's pages and are
	// emptied after it. The page cache stays at its default: 64 MiB
	// during the load was slower (4.5 s instead of 3.8 s for 1,000,000
	// rows in BenchmarkSnapshotApply).
	conn, err := c.db.Conn(ctx)
	if err != nil {
		return err
	}
	restore, err := setPragmas(ctx, conn, [2]string{"wal_autocheckpoint", "0"}, [2]string{"temp_store", "MEMORY"})
	if err != nil {
		// Its settings may be half set: the connection is not reused.
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		conn.Close()
		return err
	}
	err = c.applyTxOn(ctx, conn, func(tx *txn) error {
		var intent []intentRow
		if keepIntent {
			var err error
			if intent, err = c.collectIntent(ctx, tx); err != nil {
				return err
			}
		}
		load, err := startBulkLoad(ctx, tx, c.tables)
		if err != nil {
			return err
		}
		defer load.close(ctx)
		for _, q := range []string{`DELETE FROM _sync_outbox`, `DELETE FROM _sync_dirty`, `DELETE FROM _sync_row_state`} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		for i := len(c.tables) - 1; i >= 0; i-- {
			if _, err := tx.ExecContext(ctx, "DELETE FROM "+qi(c.tables[i].Name)); err != nil {
				return err
			}
		}
		// Chunks are fetched one ahead of the one being applied, so the
		// server's work and the local writes overlap.
		fctx, cancel := context.WithCancel(ctx)
		defer cancel()
		chunks := c.fetchSnapshot(fctx, sourceID, s)
		var total int64
		ins := newSnapshotWriter(tx, load)
		for fc := range chunks {
			if fc.err != nil {
				return fc.err
			}
			for i := range fc.rows {
				if err := ins.add(ctx, &fc.rows[i]); err != nil {
					return err
				}
			}
			total += int64(len(fc.rows))
		}
		if err := ins.flush(ctx); err != nil {
			return err
		}
		if err := load.finish(ctx); err != nil {
			return err
		}
		if total != s.RowCount {
			return fmt.Errorf("device: snapshot had %d rows, row_count says %d", total, s.RowCount)
		}
		if err := reapplyIntent(ctx, tx, intent); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE _sync_state SET last_bundle_seq_seen = ?, rebuild_required = 0 WHERE id = 1`, s.SnapshotBundleSeq); err != nil {
			return err
		}
		if extra != nil {
			return extra(tx)
		}
		return nil
	})
	if rerr := restore(context.WithoutCancel(ctx)); rerr != nil {
		// A connection that would never checkpoint (or keeps the
		// rebuild's other settings) must not go back to the pool.
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	conn.Close()
	if err != nil {
		return err
	}
	c.checkpointLater()
	// Deleting the session is best effort (7.12): the device does not wait
	// for the server to drop the frozen rows.
	delCtx := context.WithoutCancel(ctx)
	c.later(func() {
		_ = c.send(delCtx, request{method: http.MethodDelete, path: "/sync/snapshot-sessions/" + url.PathEscape(s.SnapshotID), sourceID: sourceID}, nil)
	})
	return nil
}

// recover finishes an interrupted recovery: a pending source rotation or a
// keep-source rebuild.
func (c *Client) recover(ctx context.Context) error {
	st, err := c.state(ctx)
	if err != nil {
		return err
	}
	switch {
	case st.rotNew != "":
		return c.rotate(ctx, st.rotReason, "")
	case st.rebuild:
		c.logf("device: keep-source snapshot rebuild")
		s, err := c.createSnapshot(ctx, st.sourceID, nil)
		if err != nil {
			return err
		}
		return c.rebuild(ctx, st.sourceID, s, true, nil)
	}
	return nil
}

// rotate performs source recovery (section 10): durably pick a replacement
// id (the server's replaced_by_source_id when given), take a snapshot with
// source_replacement, re-apply unsent intent, switch to the new id and start
// again at source_bundle_id 1.
func (c *Client) rotate(ctx context.Context, reason, replacedBy string) error {
	st, err := c.state(ctx)
	if err != nil {
		return err
	}
	newID := st.rotNew
	if newID == "" {
		newID = replacedBy
		if newID == "" {
			newID = uuid.NewString()
		}
		if err := c.setState(ctx, `rotation_new_source_id = ?, rotation_reason = ?`, newID, reason); err != nil {
			return err
		}
	}
	if reason == "" {
		reason = st.rotReason
	}
	c.logf("device: rotating source %s -> %s (%s)", st.sourceID, newID, reason)
	var s snapshotSession
	for attempt := 0; ; attempt++ {
		s, err = c.createSnapshot(ctx, st.sourceID, &sourceReplacement{PreviousSourceID: st.sourceID, NewSourceID: newID, Reason: reason})
		if err == nil {
			break
		}
		var ae *APIError
		if attempt >= 2 || !errors.As(err, &ae) {
			return err
		}
		switch {
		case ae.Code == "source_retired" && ae.ReplacedBySourceID != "" && ae.ReplacedBySourceID != newID:
			newID = ae.ReplacedBySourceID
		case ae.Code == "source_replacement_invalid":
			newID = uuid.NewString()
		default:
			return err
		}
		if err := c.setState(ctx, `rotation_new_source_id = ?`, newID); err != nil {
			return err
		}
	}
	return c.rebuild(ctx, st.sourceID, s, true, func(tx *txn) error {
		_, err := tx.ExecContext(ctx, `UPDATE _sync_state SET source_id = ?, next_source_bundle_id = 1,
			rotation_new_source_id = '', rotation_reason = '', initialization_id = '' WHERE id = 1`, newID)
		return err
	})
}

// setPragmas sets SQLite pragmas of conn (outside a transaction), given as
// name and value pairs, and returns the function that puts back the values
// they had.
func setPragmas(ctx context.Context, conn *sql.Conn, set ...[2]string) (func(context.Context) error, error) {
	var undo []string
	restore := func(ctx context.Context) error {
		var errs []error
		for _, q := range undo {
			if _, err := conn.ExecContext(ctx, q); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	for _, p := range set {
		var was string
		if err := conn.QueryRowContext(ctx, "PRAGMA "+p[0]).Scan(&was); err != nil {
			return nil, errors.Join(err, restore(ctx))
		}
		if _, err := conn.ExecContext(ctx, "PRAGMA "+p[0]+" = "+p[1]); err != nil {
			return nil, errors.Join(err, restore(ctx))
		}
		undo = append(undo, "PRAGMA "+p[0]+" = "+was)
	}
	return restore, nil
}

type fetchedChunk struct {
	rows []snapRow
	err  error
}

// snapRow is a snapshot row checked and decoded for applying: err is the
// error applyServerRow would have reported for it (the rows before it are
// applied first).
type snapRow struct {
	t       *tenant.Table
	key     string
	vals    []any
	version int64
	err     error
}

// fetchSnapshot reads a snapshot session's chunks in order (7.11:
// after_row_ordinal from 0, max_rows 5000, then each next_row_ordinal) on its
// own goroutine, checking each page and decoding its rows; the channel ends
// after the last chunk or the first error.
func (c *Client) fetchSnapshot(ctx context.Context, sourceID string, s snapshotSession) <-chan fetchedChunk {
	out := make(chan fetchedChunk, 1)
	go func() {
		defer close(out)
		send := func(fc fetchedChunk) bool {
			select {
			case out <- fc:
				return true
			case <-ctx.Done():
				return false
			}
		}
		path := "/sync/snapshot-sessions/" + url.PathEscape(s.SnapshotID)
		dec := newSnapshotDecoder(c, s.SnapshotBundleSeq)
		var after int64
		for {
			var ch snapshotChunk
			var n int // rows on the page
			var rows []snapRow
			q := url.Values{"after_row_ordinal": {strconv.FormatInt(after, 10)}, "max_rows": {strconv.Itoa(snapshotPageRows)}}
			r := request{method: http.MethodGet, path: path, query: q, sourceID: sourceID}
			err := withRetry(ctx, func() error {
				var data []byte
				if err := c.send(ctx, r, &data); err != nil {
					return err
				}
				var ok bool
				if ch, n, rows, ok = dec.pageFast(data); ok {
					return nil
				}
				rows = nil
				if err := decodeChunk(r, data, &ch); err != nil {
					return err
				}
				n = len(ch.Rows)
				for i := range ch.Rows {
					sr := dec.row(&ch.Rows[i])
					rows = append(rows, sr)
					if sr.err != nil {
						break
					}
				}
				return nil
			})
			switch {
			case err != nil:
			case ch.SnapshotID != s.SnapshotID || ch.SnapshotBundleSeq != s.SnapshotBundleSeq:
				err = fmt.Errorf("device: snapshot chunk names %s@%d, expected %s@%d", ch.SnapshotID, ch.SnapshotBundleSeq, s.SnapshotID, s.SnapshotBundleSeq)
			case ch.NextRowOrdinal != after+int64(n):
				err = fmt.Errorf("device: snapshot chunk next_row_ordinal %d, expected %d", ch.NextRowOrdinal, after+int64(n))
			case ch.HasMore && n == 0:
				err = errors.New("device: empty snapshot chunk with has_more")
			}
			if err != nil {
				send(fetchedChunk{err: err})
				return
			}
			if !send(fetchedChunk{rows: rows}) || !ch.HasMore || rows[len(rows)-1].err != nil {
				return
			}
			after = ch.NextRowOrdinal
		}
	}()
	return out
}

// snapshotPageRows is max_rows per snapshot page: the protocol's cap.
const snapshotPageRows = 5000

// decodeChunk decodes a snapshot page, through the fast path when the page
// has the usual shape.
func decodeChunk(r request, data []byte, ch *snapshotChunk) error {
	if fast, ok := decodeChunkFast(data); ok {
		*ch = fast
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(ch); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", r.method, r.path, err)
	}
	return nil
}

// snapshotDecoder turns served snapshot rows into snapRows.
type snapshotDecoder struct {
	c       *Client
	maxSeq  int64
	columns map[*tenant.Table]map[string]int
	block   []any // see values
	heads   []rowHead
	head    *rowHead // the last one that matched
}

func newSnapshotDecoder(c *Client, maxSeq int64) *snapshotDecoder {
	d := &snapshotDecoder{c: c, maxSeq: maxSeq, columns: map[*tenant.Table]map[string]int{}}
	for _, t := range c.tables {
		m := make(map[string]int, len(t.Columns))
		for i, col := range t.Columns {
			m[col.Name] = i
		}
		d.columns[t] = m
	}
	d.heads = rowHeads(c)
	return d
}

// row checks and decodes one snapshot row as applyServerRow does for a
// snapshot row (op "") in a transaction without dirty keys or row state.
func (d *snapshotDecoder) row(r *wireRow) snapRow {
	return d.decoded(r, nil, nil)
}

// decoded is row for a row whose payload may already be decoded: vals, for
// table pt.
func (d *snapshotDecoder) decoded(r *wireRow, pt *tenant.Table, vals []any) snapRow {
	if r.RowVersion <= 0 || r.RowVersion > d.maxSeq {
		return snapRow{err: fmt.Errorf("device: snapshot row version %d outside 1..%d", r.RowVersion, d.maxSeq)}
	}
	c := d.c
	var t *tenant.Table
	var key string
	if r.Schema == c.cfg.WireSchema {
		t = c.byName[r.Table]
	}
	ok := false
	if t != nil {
		key, ok = parseKeyFast(t, r.Key)
	}
	if !ok {
		var err error
		if t, key, err = c.checkRowTarget(r); err != nil {
			return snapRow{err: err}
		}
	}
	if isNullJSON(r.Payload) {
		return snapRow{err: fmt.Errorf("server row %s %s %q has no payload", "", t.Name, key)}
	}
	if t == pt && vals != nil {
		ok = true // decoded by pageFast
	} else {
		vals, ok = decodePayloadFast(t, r.Payload, d.columns[t])
	}
	if !ok {
		var err error
		if vals, err = decodePayload(t, r.Payload); err != nil {
			return snapRow{err: err}
		}
	}
	if k, _ := vals[keyIndex(t)].(string); k != key {
		return snapRow{err: fmt.Errorf("server row %s %q: payload key %q differs from row key", t.Name, key, k)}
	}
	return snapRow{t: t, key: key, vals: vals, version: r.RowVersion}
}

// snapshotWriter writes snapshot rows with multi-row INSERTs: consecutive
// rows of one table are batched, each batch becomes one upsert into the
// table and one into _sync_row_state, in row order.
type snapshotWriter struct {
	tx      *txn
	bulk    *bulkLoad
	t       *tenant.Table
	pending []*snapRow
	queries map[snapshotQueryKey]string
}

type snapshotQueryKey struct {
	t     *tenant.Table
	n     int
	state bool
}

// snapshotBatchRows is the most rows one INSERT writes (also bounded by
// SQLite's 32,766 variables). 1,024 wrote 1,000,000 rows ≈3% faster than 256
// in BenchmarkSnapshotApply, 64 ≈7% slower.
const snapshotBatchRows = 1024

func newSnapshotWriter(tx *txn, bulk *bulkLoad) *snapshotWriter {
	return &snapshotWriter{tx: tx, bulk: bulk, queries: map[snapshotQueryKey]string{}}
}

// add queues a row; a row with an error is reported once the rows before it
// are written.
func (w *snapshotWriter) add(ctx context.Context, r *snapRow) error {
	if r.err != nil {
		if err := w.flush(ctx); err != nil {
			return err
		}
		return r.err
	}
	if r.t != w.t {
		if err := w.flush(ctx); err != nil {
			return err
		}
		w.t = r.t
	}
	w.pending = append(w.pending, r)
	if len(w.pending) >= w.batchRows(r.t) {
		return w.flush(ctx)
	}
	return nil
}

func (w *snapshotWriter) batchRows(t *tenant.Table) int {
	return max(1, min(snapshotBatchRows, 32766/len(t.Columns)))
}

// flush writes every queued row.
func (w *snapshotWriter) flush(ctx context.Context) error {
	for rows := w.pending; len(rows) > 0; {
		n := w.batchRows(w.t)
		if len(rows) < n { // a power of two, so few statements are prepared
			n = 1
			for n*2 <= len(rows) {
				n *= 2
			}
		}
		if err := w.write(ctx, rows[:n]); err != nil {
			return err
		}
		rows = rows[n:]
	}
	w.pending = w.pending[:0]
	return nil
}

func (w *snapshotWriter) write(ctx context.Context, rows []*snapRow) error {
	t := w.t
	if err := w.bulk.prepareBatch(ctx, t, rows); err != nil {
		return err
	}
	args := make([]any, 0, len(rows)*len(t.Columns))
	for _, r := range rows {
		args = append(args, r.vals...)
	}
	if _, err := w.tx.ExecContext(ctx, w.query(t, len(rows), false), args...); err != nil {
		var se *sqlite.Error
		if len(rows) == 1 || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_CONSTRAINT {
			return fmt.Errorf("apply %s %q: %w", t.Name, rows[0].key, err)
		}
		// A constraint failure undid only this statement: write the rows
		// one by one for the error of the row that failed.
		for _, r := range rows {
			if err := upsertLocal(ctx, w.tx, t, r.vals); err != nil {
				return fmt.Errorf("apply %s %q: %w", t.Name, r.key, err)
			}
			if err := setRowState(ctx, w.tx, t.Name, r.key, r.version, false); err != nil {
				return err
			}
		}
		return err
	}
	args = args[:0]
	for _, r := range rows {
		args = append(args, r.key, r.version)
	}
	_, err := w.tx.ExecContext(ctx, w.query(t, len(rows), true), args...)
	return err
}

// query returns the n-row upsert into t (like upsertLocal) or, for state,
// into _sync_row_state (like setRowState, not deleted).
func (w *snapshotWriter) query(t *tenant.Table, n int, state bool) string {
	k := snapshotQueryKey{t, n, state}
	if q, ok := w.queries[k]; ok {
		return q
	}
	var b strings.Builder
	if state {
		b.WriteString("INSERT INTO _sync_row_state (tbl, key, row_version, deleted) VALUES ")
		row := "(" + ql(t.Name) + ", ?, ?, 0)"
		for i := range n {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(row)
		}
		b.WriteString(" ON CONFLICT (tbl, key) DO UPDATE SET row_version = excluded.row_version, deleted = excluded.deleted")
	} else {
		cols, marks, sets := upsertColumns(t)
		fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES ", qi(t.Name), strings.Join(cols, ", "))
		row := "(" + strings.Join(marks, ", ") + ")"
		for i := range n {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(row)
		}
		// A snapshot names each key once; the upsert keeps the outcome of
		// upsertLocal if a key came twice.
		b.WriteString(" ON CONFLICT (" + qi(t.Key.Name) + ") ")
		if len(sets) > 0 {
			b.WriteString("DO UPDATE SET " + strings.Join(sets, ", "))
		} else {
			b.WriteString("DO NOTHING")
		}
	}
	q := b.String()
	w.queries[k] = q
	return q
}
