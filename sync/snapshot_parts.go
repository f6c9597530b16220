package sync

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	gosync "sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"
)

// A large snapshot is frozen by several connections at once. Rendering and
// sorting the rows run in parallel workers anyway; writing them does not:
// PostgreSQL writes the rows of one statement in the process that runs it,
// and for a million rows that write is about a third of the freeze
// (docs/performance.md). So the snapshot order is cut into ranges at keys
// sampled from the user's rows, and each range is frozen into a table of
// its own by its own connection, all in the session transaction's snapshot
// (pg_export_snapshot, SET TRANSACTION SNAPSHOT), so together they are the
// one consistent read the protocol requires (7.10). Part k's rows carry
// ordinals 1..n_k; the session records every part's n_k (part_rows), and a
// page reads the parts its ordinals fall in.
//
// The extra transactions commit only after the session's has: a freeze that
// fails anywhere leaves no part behind. A part whose commit fails after the
// session committed takes the session with it.

const (
	// snapshotFreezeParts is the default number of parts (Config.snapshotFreezeParts).
	snapshotFreezeParts = 2
	// snapshotPartRows is the default fewest rows per part (Config.snapshotPartRows).
	snapshotPartRows = 100000
	// maxSnapshotParts bounds the parts of one session (migration 000009).
	maxSnapshotParts = 9
	// snapshotSampleRows is about how many of the user's keys are sampled to
	// cut the snapshot order into parts of similar size.
	snapshotSampleRows = 4000
	// snapshotPartAcquire is how long a freeze waits for a connection for a
	// part; without one in time it freezes the rest in fewer parts.
	snapshotPartAcquire = 100 * time.Millisecond
)

// freezePlan says into how many parts a snapshot of live rows is frozen.
type freezePlan struct {
	parts    int
	partRows int64
}

// freezePlan is how the handler freezes large snapshots.
func (h *Handler) freezePlan() freezePlan {
	p := freezePlan{parts: h.cfg.snapshotFreezeParts, partRows: h.cfg.snapshotPartRows}
	if p.parts <= 0 {
		p.parts = snapshotFreezeParts
	}
	if p.partRows <= 0 {
		p.partRows = snapshotPartRows
	}
	p.parts = min(p.parts, maxSnapshotParts)
	return p
}

func (p freezePlan) partsFor(live int64) int {
	return int(max(1, min(int64(p.parts), live/max(p.partRows, 1))))
}

// snapBound is a position in the snapshot order: table ord, then key text.
type snapBound struct {
	tord int
	key  string
}

// freezeParts are the open transactions of a freeze's extra parts.
type freezeParts struct {
	txs []pgx.Tx
}

func (p *freezeParts) rollback(ctx context.Context) {
	for _, tx := range p.txs {
		_ = tx.Rollback(context.WithoutCancel(ctx))
	}
	p.txs = nil
}

func (p *freezeParts) commit(ctx context.Context) error {
	var err error
	for _, tx := range p.txs {
		if cerr := tx.Commit(context.WithoutCancel(ctx)); cerr != nil && err == nil {
			err = cerr
		}
	}
	p.txs = nil
	return err
}

// snapshotPartTable is the name of part k (from 1) of a session whose rows
// table is rowsTable.
func snapshotPartTable(rowsTable string, k int) string {
	if k <= 1 {
		return rowsTable
	}
	return rowsTable + "_p" + strconv.Itoa(k)
}

// sampleBounds cuts the user's rows into k parts of similar size at keys
// sampled from the user's tables (TABLESAMPLE SYSTEM: whole pages, so a few
// hundred page reads for any size): k-1 increasing bounds, fewer when the
// sample is too small to tell, none for one part.
func sampleBounds(c *gin.Context, tx pgx.Tx, r *reqCtx, live int64, k int) ([]snapBound, error) {
	pct := min(100, 100*float64(snapshotSampleRows)/float64(max(live, 1)))
	var branches []string
	for _, t := range r.cat.tables {
		branches = append(branches, `SELECT `+strconv.Itoa(t.ord)+` AS tord, t.`+col(t.keyCol)+`::text AS key_text FROM `+r.t(t.name)+
			` t TABLESAMPLE SYSTEM ($2) WHERE t._sync_scope_id = $1`)
	}
	rows, err := tx.Query(c, `SELECT tord, key_text FROM (`+strings.Join(branches, " UNION ALL ")+`) x ORDER BY tord, key_text COLLATE "C"`, r.user, pct)
	if err != nil {
		return nil, fmt.Errorf("sample snapshot keys: %w", err)
	}
	sample, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (snapBound, error) {
		var b snapBound
		err := row.Scan(&b.tord, &b.key)
		return b, err
	})
	if err != nil {
		return nil, fmt.Errorf("sample snapshot keys: %w", err)
	}
	if len(sample) < 2*k {
		return nil, nil
	}
	var bounds []snapBound
	for i := 1; i < k; i++ {
		b := sample[i*len(sample)/k]
		if len(bounds) > 0 && bounds[len(bounds)-1] == b {
			continue // many equal keys cannot be: keys are unique per table
		}
		bounds = append(bounds, b)
	}
	return bounds, nil
}

// exportedSnapshot is what pg_export_snapshot returns, e.g. 00000003-0000001B-1.
var exportedSnapshot = regexp.MustCompile(`^[0-9A-F]+-[0-9A-F]+-[0-9]+$`)

// freezeOwnParts freezes the user's rows into rowsTable and, with bounds,
// into one more part per bound, each by its own connection at the same
// time. It returns the row count of every part and fills resp's totals.
// The extra parts' transactions are left open in parts.
func freezeOwnParts(c *gin.Context, tx pgx.Tx, r *reqCtx, rowsTable string, bounds []snapBound, parts *freezeParts, resp *snapshotCreateResponse) ([]int64, error) {
	ctx := c.Request.Context()
	if len(bounds) > 0 {
		var snap string
		if err := tx.QueryRow(ctx, `SELECT pg_export_snapshot()`).Scan(&snap); err != nil {
			return nil, fmt.Errorf("export snapshot: %w", err)
		}
		if !exportedSnapshot.MatchString(snap) {
			return nil, fmt.Errorf("export snapshot: unexpected id %q", snap)
		}
		for range bounds {
			ptx, err := beginPart(ctx, r, snap)
			if err != nil {
				break // freeze the rest in fewer parts
			}
			parts.txs = append(parts.txs, ptx)
		}
		bounds = bounds[:len(parts.txs)]
	}
	txs := append([]pgx.Tx{tx}, parts.txs...)
	counts := make([]int64, len(txs))
	sizes := make([]int64, len(txs))
	errs := make([]error, len(txs))
	var wg gosync.WaitGroup
	for k := range txs {
		var lo, hi *snapBound
		if k > 0 {
			lo = &bounds[k-1]
		}
		if k < len(bounds) {
			hi = &bounds[k]
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			counts[k], sizes[k], errs[k] = freezePart(ctx, txs[k], r, snapshotPartTable(rowsTable, k+1), lo, hi)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for k := range txs {
		resp.RowCount += counts[k]
		resp.ByteCount += sizes[k]
	}
	return counts, nil
}

// beginPart opens the transaction of an extra part in the exported
// snapshot snap, waiting at most snapshotPartAcquire for a connection (the
// pool's transaction returns it when it ends).
func beginPart(ctx context.Context, r *reqCtx, snap string) (pgx.Tx, error) {
	actx, cancel := context.WithTimeout(ctx, snapshotPartAcquire)
	defer cancel()
	tx, err := r.pool.BeginTx(actx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `SET TRANSACTION SNAPSHOT '`+snap+`'`); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return nil, err
	}
	return tx, nil
}

// freezePart writes the rows of the range [lo, hi) into a new table, then
// measures and indexes it. CREATE TABLE AS may run its query in parallel
// (an INSERT cannot), so reading, rendering and sorting use the cores the
// other parts leave free.
func freezePart(ctx context.Context, tx pgx.Tx, r *reqCtx, table string, lo, hi *snapBound) (rows, bytes int64, err error) {
	if _, err := tx.Exec(ctx, `SET LOCAL work_mem = '`+snapshotWorkMem+`'; SET LOCAL parallel_setup_cost = 100; SET LOCAL parallel_tuple_cost = 0.01`); err != nil {
		return 0, 0, fmt.Errorf("plan snapshot: %w", err)
	}
	args := []any{r.user}
	q := `CREATE UNLOGGED TABLE ` + r.t(table) + `
		WITH (autovacuum_enabled = false, toast.autovacuum_enabled = false) AS SELECT ` + frozenRows(r, lo, hi, &args)
	if _, err := tx.Exec(ctx, q, args...); err != nil {
		return 0, 0, fmt.Errorf("freeze snapshot rows: %w", err)
	}
	if err := tx.QueryRow(ctx, `SELECT count(*), coalesce(sum(octet_length(payload)), 0)::bigint FROM `+r.t(table)).Scan(&rows, &bytes); err != nil {
		return 0, 0, fmt.Errorf("measure snapshot rows: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE UNIQUE INDEX ON `+r.t(table)+` (row_ordinal)`); err != nil {
		return 0, 0, fmt.Errorf("index snapshot rows: %w", err)
	}
	return rows, bytes, nil
}
