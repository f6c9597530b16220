package device

import (
	"context"

	"github.com/syncplane/syncplane/tenant"
)

// bulkLoad is the state of a snapshot rebuild's transaction while the
// synced tables fill. A rebuild writes only server rows, with capture
// suppressed, into tables it has just emptied; two things SQLite would do
// for every row are wasted work then:
//
//   - the capture triggers fire (and evaluate their WHEN clause, a lookup in
//     _sync_state) only to do nothing. They are dropped for the load and
//     created again before the transaction commits; SQLite's DDL is
//     transactional, so a rebuild that fails or is interrupted leaves them
//     as they were.
//   - the CHECK constraints of uuid and timestamp columns (GLOB patterns)
//     are evaluated by the SQLite interpreter. The writer checks those
//     values in Go instead and runs a batch with PRAGMA
//     ignore_check_constraints only when every value of it passes a check
//     that implies SQLite's; any other batch, and every batch of a table
//     with a json column (json_valid is not reproduced in Go), runs with
//     the constraints checked.
//
// The pragma is connection state, not transactional: it is turned back off
// by finish, and by close on every other path.
type bulkLoad struct {
	tx        *txn
	tables    []*tenant.Table
	checksOff bool
	checks    map[*tenant.Table]tableChecks
}

// tableChecks is how the CHECK constraints of a table's columns are
// verified in Go: ok is false when some cannot be (json); cols lists the
// uuid and timestamp columns by index.
type tableChecks struct {
	ok   bool
	cols []int
}

// startBulkLoad drops the capture triggers of tables in tx.
func startBulkLoad(ctx context.Context, tx *txn, tables []*tenant.Table) (*bulkLoad, error) {
	b := &bulkLoad{tx: tx, tables: tables, checks: make(map[*tenant.Table]tableChecks, len(tables))}
	for _, t := range tables {
		tc := tableChecks{ok: true}
		for i, c := range t.Columns {
			switch c.Type {
			case tenant.ColumnUUID, tenant.ColumnTimestamp:
				tc.cols = append(tc.cols, i)
			case tenant.ColumnJSON:
				tc.ok = false
			}
		}
		b.checks[t] = tc
		for _, name := range triggerNames(t) {
			if _, err := tx.Tx.ExecContext(ctx, "DROP TRIGGER IF EXISTS "+qi(name)); err != nil {
				return nil, err
			}
		}
	}
	return b, nil
}

// triggerNames returns the names of t's capture triggers (TriggerDDL).
func triggerNames(t *tenant.Table) []string {
	return []string{"_sync_" + t.Name + "_ai", "_sync_" + t.Name + "_au", "_sync_" + t.Name + "_ad"}
}

// prepareBatch sets up the connection for writing rows (full value lists)
// of t: the CHECK constraints are skipped if the Go checks vouch for every
// value, and enforced otherwise.
func (b *bulkLoad) prepareBatch(ctx context.Context, t *tenant.Table, rows []*snapRow) error {
	tc := b.checks[t]
	skip := tc.ok
	for _, r := range rows {
		if !skip {
			break
		}
		for _, i := range tc.cols {
			if !passesCheck(t.Columns[i].Type, r.vals[i]) {
				skip = false
				break
			}
		}
	}
	return b.setChecksOff(ctx, skip)
}

func (b *bulkLoad) setChecksOff(ctx context.Context, off bool) error {
	if off == b.checksOff {
		return nil
	}
	q := `PRAGMA ignore_check_constraints = OFF`
	if off {
		q = `PRAGMA ignore_check_constraints = ON`
	}
	if _, err := b.tx.Tx.ExecContext(ctx, q); err != nil {
		return err
	}
	b.checksOff = off
	return nil
}

// finish ends the load: constraints checked again, triggers created again.
func (b *bulkLoad) finish(ctx context.Context) error {
	if err := b.setChecksOff(ctx, false); err != nil {
		return err
	}
	for _, t := range b.tables {
		for _, q := range TriggerDDL(t) {
			if _, err := b.tx.Tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
	}
	return nil
}

// close makes sure the connection checks constraints again, whatever
// happened to the load; the transaction's rollback restores the triggers.
func (b *bulkLoad) close(ctx context.Context) {
	if b.checksOff {
		if _, err := b.tx.Tx.ExecContext(context.WithoutCancel(ctx), `PRAGMA ignore_check_constraints = OFF`); err == nil {
			b.checksOff = false
		}
	}
}

// passesCheck reports whether v certainly satisfies the CHECK constraint
// TableDDL gives a column of type ct (false means "let SQLite decide", not
// "invalid").
func passesCheck(ct tenant.ColumnType, v any) bool {
	if v == nil {
		return true // CHECK (x IS NULL OR ...)
	}
	s, ok := v.(string)
	if !ok {
		return false
	}
	switch ct {
	case tenant.ColumnUUID:
		return isCanonicalUUID(s)
	case tenant.ColumnTimestamp:
		return hasTimestampPrefix(s)
	}
	return false
}

// isCanonicalUUID reports whether s is a dashed lowercase UUID: 36 ASCII
// bytes, so length() is 36 and lower() leaves it unchanged, dashes at 9,
// 14, 19 and 24 (1-based, as substr counts) and nothing outside [0-9a-f-].
func isCanonicalUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// hasTimestampPrefix reports whether s matches the timestamp CHECK's GLOB
// '[0-9][0-9][0-9][0-9]-[01][0-9]-[0-3][0-9][Tt ][0-2][0-9]:[0-5][0-9]*':
// the first 16 bytes are ASCII characters from those sets (the trailing *
// matches whatever follows).
func hasTimestampPrefix(s string) bool {
	if len(s) < 16 {
		return false
	}
	in := func(c, lo, hi byte) bool { return lo <= c && c <= hi }
	return in(s[0], '0', '9') && in(s[1], '0', '9') && in(s[2], '0', '9') && in(s[3], '0', '9') &&
		s[4] == '-' && in(s[5], '0', '1') && in(s[6], '0', '9') &&
		s[7] == '-' && in(s[8], '0', '3') && in(s[9], '0', '9') &&
		(s[10] == 'T' || s[10] == 't' || s[10] == ' ') &&
		in(s[11], '0', '2') && in(s[12], '0', '9') && s[13] == ':' && in(s[14], '0', '5') && in(s[15], '0', '9')
}
