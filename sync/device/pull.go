package device

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// Pull downloads and applies every bundle after the checkpoint (13.3). It
// returns ErrPendingChanges when local changes are waiting to be pushed.
func (c *Client) Pull(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pull(ctx, true)
}

func (c *Client) pull(ctx context.Context, mayRebuild bool) error {
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
	if pending, err := c.pending(ctx, c.db); err != nil || pending {
		if err == nil {
			err = ErrPendingChanges
		}
		return err
	}
	after, target := st.cp, int64(0)
	for {
		q := url.Values{
			"after_bundle_seq": {strconv.FormatInt(after, 10)},
			"max_bundles":      {strconv.Itoa(c.cfg.PullBundles)},
		}
		if target > 0 {
			q.Set("target_bundle_seq", strconv.FormatInt(target, 10))
		}
		var pr pullResponse
		err := c.call(ctx, request{method: http.MethodGet, path: "/sync/pull", query: q, sourceID: st.sourceID}, &pr)
		if IsCode(err, "history_pruned") && mayRebuild {
			// 13.8: keep-source rebuild, then continue from its checkpoint.
			c.logf("device: pull after %d: history pruned; rebuilding from a snapshot", after)
			if err := c.setState(ctx, `rebuild_required = 1`); err != nil {
				return err
			}
			if err := c.recover(ctx); err != nil {
				return err
			}
			return c.pull(ctx, false)
		}
		if err != nil {
			return err
		}
		if target == 0 {
			target = pr.StableBundleSeq
		} else if pr.StableBundleSeq != target {
			return fmt.Errorf("device: pull stable_bundle_seq moved from %d to %d", target, pr.StableBundleSeq)
		}
		for i := range pr.Bundles {
			b := &pr.Bundles[i]
			if b.BundleSeq <= after || b.BundleSeq > target {
				return fmt.Errorf("device: pull returned bundle %d outside (%d, %d]", b.BundleSeq, after, target)
			}
			if err := c.verifyBundle(b); err != nil {
				return err
			}
			stop := false
			err := c.applyTx(ctx, func(tx *txn) error {
				// The app may have written since the pull started: stop
				// rather than apply over fresh local intent.
				if pending, err := c.pending(ctx, tx); err != nil || pending {
					stop = pending
					return err
				}
				tx.noDirty = true
				for j := range b.Rows {
					if err := c.applyServerRow(ctx, tx, &b.Rows[j]); err != nil {
						return fmt.Errorf("bundle %d: %w", b.BundleSeq, err)
					}
				}
				_, err := tx.ExecContext(ctx, `UPDATE _sync_state SET last_bundle_seq_seen = ? WHERE id = 1`, b.BundleSeq)
				return err
			})
			if err != nil {
				return err
			}
			if stop {
				return ErrPendingChanges
			}
			after = b.BundleSeq
		}
		if after >= target {
			return nil
		}
		if !pr.HasMore {
			return fmt.Errorf("device: pull ended at bundle %d before its ceiling %d", after, target)
		}
	}
}

// verifyBundle checks a pulled bundle's rows against its row_count and
// bundle_hash.
func (c *Client) verifyBundle(b *wireBundle) error {
	if len(b.Rows) == 0 {
		return fmt.Errorf("device: pulled bundle %d has no rows", b.BundleSeq)
	}
	if b.RowCount != 0 && int64(len(b.Rows)) != b.RowCount {
		return fmt.Errorf("device: pulled bundle %d has %d rows, row_count says %d", b.BundleSeq, len(b.Rows), b.RowCount)
	}
	h, _ := newBundleHasher()
	for i := range b.Rows {
		r := &b.Rows[i]
		if r.RowVersion != b.BundleSeq {
			return fmt.Errorf("device: pulled bundle %d row has row_version %d", b.BundleSeq, r.RowVersion)
		}
		if err := h.add(HashRow{Schema: r.Schema, Table: r.Table, Key: r.Key, Op: r.Op, RowVersion: r.RowVersion, Payload: r.Payload}); err != nil {
			return err
		}
	}
	if b.BundleHash != "" {
		if sum := h.sum(); sum != b.BundleHash {
			return fmt.Errorf("device: pulled bundle %d hash mismatch: computed %s, server %s", b.BundleSeq, sum, b.BundleHash)
		}
	}
	return nil
}

type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// pending reports whether anything is dirty or frozen.
func (c *Client) pending(ctx context.Context, q rowQuerier) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM _sync_dirty) + (SELECT COUNT(*) FROM _sync_outbox)`).Scan(&n)
	return n > 0, err
}
