package device

import (
	"context"
	"fmt"
)

// Conflict is a push conflict (8.2) as shown to a Resolver.
type Conflict struct {
	Table string
	Key   string
	// Op and BaseRowVersion are what the device pushed.
	Op             string
	BaseRowVersion int64
	// ServerRowVersion is the server's version of the row (0: never
	// existed); ServerRowDeleted reports a tombstone.
	ServerRowVersion int64
	ServerRowDeleted bool
	// LocalRow is the device's current row, nil if deleted locally.
	LocalRow Row
	// ServerRow is the server's live row, nil if deleted or absent.
	ServerRow Row
}

// ResolutionKind is what a Resolver decided.
type ResolutionKind int

const (
	// ResolveAcceptServer makes the server's state the local state and drops
	// the local intent for the key.
	ResolveAcceptServer ResolutionKind = iota
	// ResolveKeepLocal keeps the local row (or deletion) and pushes it again
	// on top of the server's version.
	ResolveKeepLocal
	// ResolveMerged writes Resolution.Row locally and pushes it on top of
	// the server's version.
	ResolveMerged
)

// Resolution is a Resolver's answer.
type Resolution struct {
	Kind ResolutionKind
	// Row is the merged full row for ResolveMerged (its key column is
	// forced to the conflicting key).
	Row Row
}

// Resolver decides a push conflict. The client rebases the surviving intent
// on ServerRowVersion and pushes again with the same source_bundle_id.
type Resolver func(ctx context.Context, c Conflict) (Resolution, error)

// AcceptServer is the Resolver that lets the server win (the default).
func AcceptServer(context.Context, Conflict) (Resolution, error) {
	return Resolution{Kind: ResolveAcceptServer}, nil
}

// KeepLocal is the Resolver that keeps the device's intent.
func KeepLocal(context.Context, Conflict) (Resolution, error) {
	return Resolution{Kind: ResolveKeepLocal}, nil
}

// Merge returns a Resolver that writes merge(local, server) when both rows
// are live and otherwise keeps the local intent.
func Merge(merge func(local, server Row) Row) Resolver {
	return func(_ context.Context, c Conflict) (Resolution, error) {
		if c.LocalRow == nil || c.ServerRow == nil {
			return Resolution{Kind: ResolveKeepLocal}, nil
		}
		return Resolution{Kind: ResolveMerged, Row: merge(c.LocalRow, c.ServerRow)}, nil
	}
}

// resolveConflict asks the resolver about cd and rewrites local state: the
// frozen outbox goes back into the dirty set, the key's row version becomes
// the server's, and the local row follows the resolution.
func (c *Client) resolveConflict(ctx context.Context, cd *ConflictDetails) error {
	t, ok := c.byName[cd.Table]
	if !ok || cd.Schema != c.cfg.WireSchema {
		return fmt.Errorf("device: conflict on unknown table %s.%s", cd.Schema, cd.Table)
	}
	key, ok := cd.Key[t.Key.Name]
	if !ok {
		return fmt.Errorf("device: conflict key for %s lacks %s", t.Name, t.Key.Name)
	}
	local, exists, err := readLocal(ctx, c.db, t, key)
	if err != nil {
		return err
	}
	var server []any
	if !isNullJSON(cd.ServerRow) {
		if server, err = decodePayload(t, cd.ServerRow); err != nil {
			return fmt.Errorf("device: conflict server_row: %w", err)
		}
	}
	conf := Conflict{
		Table: t.Name, Key: key, Op: cd.Op, BaseRowVersion: cd.BaseRowVersion,
		ServerRowVersion: cd.ServerRowVersion, ServerRowDeleted: cd.ServerRowDeleted,
	}
	if exists {
		conf.LocalRow = valuesToRow(t, local)
	}
	if server != nil {
		conf.ServerRow = valuesToRow(t, server)
	}
	res, err := c.cfg.Resolver(ctx, conf)
	if err != nil {
		return fmt.Errorf("device: resolver: %w", err)
	}
	var merged []any
	if res.Kind == ResolveMerged {
		if res.Row == nil {
			return fmt.Errorf("device: resolver returned ResolveMerged without a row")
		}
		if merged, err = rowToValues(t, res.Row); err != nil {
			return fmt.Errorf("device: resolver row: %w", err)
		}
		merged[keyIndex(t)] = key
	}
	c.logf("device: conflict on %s %q (pushed %s base %d, server v%d): resolution %d", t.Name, key, cd.Op, cd.BaseRowVersion, cd.ServerRowVersion, res.Kind)
	return c.applyTx(ctx, func(tx *txn) error {
		// Unfreeze: the next attempt re-freezes with the same source_bundle_id.
		if _, err := tx.ExecContext(ctx, `INSERT INTO _sync_dirty (tbl, key, op, base_row_version, ordinal)
			SELECT tbl, key, op, base_row_version, ordinal - 9000000000000000 FROM _sync_outbox WHERE true
			ON CONFLICT (tbl, key) DO NOTHING`); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM _sync_outbox`); err != nil {
			return err
		}
		if cd.ServerRowVersion == 0 {
			if _, err := tx.ExecContext(ctx, `DELETE FROM _sync_row_state WHERE tbl = ? AND key = ?`, t.Name, key); err != nil {
				return err
			}
		} else if err := setRowState(ctx, tx, t.Name, key, cd.ServerRowVersion, server == nil); err != nil {
			return err
		}
		switch res.Kind {
		case ResolveAcceptServer:
			if server != nil {
				if err := upsertLocal(ctx, tx, t, server); err != nil {
					return err
				}
			} else if err := deleteLocal(ctx, tx, t, key); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `DELETE FROM _sync_dirty WHERE tbl = ? AND key = ?`, t.Name, key)
			return err
		case ResolveKeepLocal:
			return markDirty(ctx, tx, t.Name, key)
		case ResolveMerged:
			if err := upsertLocal(ctx, tx, t, merged); err != nil {
				return err
			}
			return markDirty(ctx, tx, t.Name, key)
		}
		return fmt.Errorf("device: unknown resolution kind %d", res.Kind)
	})
}
