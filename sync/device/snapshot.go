package device

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/google/uuid"
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
	err := c.applyTx(ctx, func(tx *txn) error {
		var intent []intentRow
		if keepIntent {
			var err error
			if intent, err = c.collectIntent(ctx, tx); err != nil {
				return err
			}
		}
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
		tx.noDirty, tx.noRowState = true, true // a snapshot names each key once
		// Chunks are fetched one ahead of the one being applied, so the
		// server's work and the local writes overlap.
		fctx, cancel := context.WithCancel(ctx)
		defer cancel()
		chunks := c.fetchSnapshot(fctx, sourceID, s)
		var total int64
		for fc := range chunks {
			if fc.err != nil {
				return fc.err
			}
			for i := range fc.rows {
				r := &fc.rows[i]
				if r.RowVersion <= 0 || r.RowVersion > s.SnapshotBundleSeq {
					return fmt.Errorf("device: snapshot row version %d outside 1..%d", r.RowVersion, s.SnapshotBundleSeq)
				}
				r.Op = ""
				if err := c.applyServerRow(ctx, tx, r); err != nil {
					return err
				}
			}
			total += int64(len(fc.rows))
		}
		if total != s.RowCount {
			return fmt.Errorf("device: snapshot had %d rows, row_count says %d", total, s.RowCount)
		}
		tx.noDirty, tx.noRowState = false, false
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
	if err != nil {
		return err
	}
	_ = c.send(context.WithoutCancel(ctx), request{method: http.MethodDelete, path: "/sync/snapshot-sessions/" + url.PathEscape(s.SnapshotID), sourceID: sourceID}, nil)
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

type fetchedChunk struct {
	rows []wireRow
	err  error
}

// fetchSnapshot reads a snapshot session's chunks in order (7.11:
// after_row_ordinal from 0, max_rows 1000, then each next_row_ordinal) on its
// own goroutine, checking each page; the channel ends after the last chunk or
// the first error.
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
		var after int64
		for {
			var ch snapshotChunk
			q := url.Values{"after_row_ordinal": {strconv.FormatInt(after, 10)}, "max_rows": {"1000"}}
			err := c.call(ctx, request{method: http.MethodGet, path: path, query: q, sourceID: sourceID}, &ch)
			switch {
			case err != nil:
			case ch.SnapshotID != s.SnapshotID || ch.SnapshotBundleSeq != s.SnapshotBundleSeq:
				err = fmt.Errorf("device: snapshot chunk names %s@%d, expected %s@%d", ch.SnapshotID, ch.SnapshotBundleSeq, s.SnapshotID, s.SnapshotBundleSeq)
			case ch.NextRowOrdinal != after+int64(len(ch.Rows)):
				err = fmt.Errorf("device: snapshot chunk next_row_ordinal %d, expected %d", ch.NextRowOrdinal, after+int64(len(ch.Rows)))
			case ch.HasMore && len(ch.Rows) == 0:
				err = errors.New("device: empty snapshot chunk with has_more")
			}
			if err != nil {
				send(fetchedChunk{err: err})
				return
			}
			if !send(fetchedChunk{rows: ch.Rows}) || !ch.HasMore {
				return
			}
			after = ch.NextRowOrdinal
		}
	}()
	return out
}
