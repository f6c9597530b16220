package device

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/syncplane/syncplane/tenant"
)

// checkRowTarget validates a served row's schema and table and returns the
// local table and key.
func (c *Client) checkRowTarget(r *wireRow) (*tenant.Table, string, error) {
	if r.Schema != c.cfg.WireSchema {
		return nil, "", fmt.Errorf("server row for schema %q, but this database syncs schema %q", r.Schema, c.cfg.WireSchema)
	}
	t, ok := c.byName[r.Table]
	if !ok {
		return nil, "", fmt.Errorf("server row for unknown table %s.%s", r.Schema, r.Table)
	}
	key, err := parseKey(t, r.Key)
	if err != nil {
		return nil, "", err
	}
	return t, key, nil
}

// applyServerRow writes one authoritative row (a bundle row; op "" means a
// snapshot row, always an upsert) inside an applyTx. Rows whose local
// version is already >= the incoming row_version are skipped; keys with a
// captured local change keep their local data (only the version moves), so
// newer local intent is never overwritten.
func (c *Client) applyServerRow(ctx context.Context, tx *txn, r *wireRow) error {
	t, key, err := c.checkRowTarget(r)
	if err != nil {
		return err
	}
	if !tx.noRowState {
		var local int64
		err = tx.QueryRowContext(ctx, `SELECT row_version FROM _sync_row_state WHERE tbl = ? AND key = ?`, t.Name, key).Scan(&local)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		case local >= r.RowVersion:
			return nil
		}
	}
	var dirty int
	if !tx.noDirty {
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM _sync_dirty WHERE tbl = ? AND key = ?`, t.Name, key).Scan(&dirty); err != nil {
			return err
		}
	}
	deleted := r.Op == "DELETE"
	switch r.Op {
	case "DELETE":
		if dirty == 0 {
			if err := deleteLocal(ctx, tx, t, key); err != nil {
				return err
			}
		}
	case "INSERT", "UPDATE", "":
		if isNullJSON(r.Payload) {
			return fmt.Errorf("server row %s %s %q has no payload", r.Op, t.Name, key)
		}
		vals, err := decodePayload(t, r.Payload)
		if err != nil {
			return err
		}
		if k, _ := vals[keyIndex(t)].(string); k != key {
			return fmt.Errorf("server row %s %q: payload key %q differs from row key", t.Name, key, k)
		}
		if dirty == 0 {
			if err := upsertLocal(ctx, tx, t, vals); err != nil {
				return fmt.Errorf("apply %s %q: %w", t.Name, key, err)
			}
		}
	default:
		return fmt.Errorf("server row %s %q has unknown op %q", t.Name, key, r.Op)
	}
	return setRowState(ctx, tx, t.Name, key, r.RowVersion, deleted)
}

func setRowState(ctx context.Context, q querier, table, key string, version int64, deleted bool) error {
	del := 0
	if deleted {
		del = 1
	}
	_, err := q.ExecContext(ctx, `INSERT INTO _sync_row_state (tbl, key, row_version, deleted) VALUES (?, ?, ?, ?)
		ON CONFLICT (tbl, key) DO UPDATE SET row_version = excluded.row_version, deleted = excluded.deleted`,
		table, key, version, del)
	return err
}

// markDirty makes sure a key has a captured-change entry (op and base are
// recomputed when the push freezes).
func markDirty(ctx context.Context, q querier, table, key string) error {
	_, err := q.ExecContext(ctx, `INSERT INTO _sync_dirty (tbl, key, op, base_row_version, ordinal)
		VALUES (?, ?, 'UPDATE', 0, COALESCE((SELECT MAX(ordinal) FROM _sync_dirty), 0) + 1)
		ON CONFLICT (tbl, key) DO NOTHING`, table, key)
	return err
}

// intentRow is a key with unsent local intent and its current local row
// (nil when the row is deleted locally).
type intentRow struct {
	table *tenant.Table
	key   string
	vals  []any
}

// collectIntent reads every key of the outbox and the dirty set with its
// current local row, outbox first.
func (c *Client) collectIntent(ctx context.Context, tx *txn) ([]intentRow, error) {
	rows, err := tx.QueryContext(ctx, `SELECT tbl, key FROM (
		SELECT tbl, key, ordinal - 9000000000000000 AS o FROM _sync_outbox
		UNION ALL SELECT tbl, key, ordinal AS o FROM _sync_dirty) ORDER BY o`)
	if err != nil {
		return nil, err
	}
	type tk struct{ t, k string }
	var keys []tk
	seen := map[tk]bool{}
	for rows.Next() {
		var x tk
		if err := rows.Scan(&x.t, &x.k); err != nil {
			rows.Close()
			return nil, err
		}
		if !seen[x] {
			seen[x] = true
			keys = append(keys, x)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]intentRow, 0, len(keys))
	for _, x := range keys {
		t, ok := c.byName[x.t]
		if !ok {
			continue
		}
		vals, ok, err := readLocal(ctx, tx, t, x.k)
		if err != nil {
			return nil, err
		}
		if !ok {
			vals = nil
		}
		out = append(out, intentRow{table: t, key: x.k, vals: vals})
	}
	return out, nil
}

// reapplyIntent writes collected intent back on top of freshly applied
// server state and marks each key dirty again.
func reapplyIntent(ctx context.Context, tx *txn, intent []intentRow) error {
	for _, in := range intent {
		if in.vals != nil {
			if err := upsertLocal(ctx, tx, in.table, in.vals); err != nil {
				return fmt.Errorf("re-apply local %s %q: %w", in.table.Name, in.key, err)
			}
		} else if err := deleteLocal(ctx, tx, in.table, in.key); err != nil {
			return err
		}
		if err := markDirty(ctx, tx, in.table.Name, in.key); err != nil {
			return err
		}
	}
	return nil
}
