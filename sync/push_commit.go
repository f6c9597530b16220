package sync

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/syncplane/syncplane/web/server"
)

// applyGroup is a list of consecutive staged runs (_sync_push_run) with the
// same table, op and column set, applied with one set-based statement.
// Runs split only at chunk boundaries, so a group is usually one run, or a
// few for a push of one table in several chunks.
type applyGroup struct {
	Table  string
	Op     string
	Cols   string
	Firsts []int64 // first_ordinal of each run
	Fresh  bool    // every row has base_row_version 0
}

const runsSQL = `SELECT first_ordinal, row_count, table_name, op, cols, 0 = ALL (bases) FROM %s WHERE push_id = $1 ORDER BY first_ordinal`

// dupSQL finds a target row staged twice (protocol 7.5 step 2).
const dupSQL = `SELECT r.table_name, k.key_text FROM %s r CROSS JOIN LATERAL unnest(r.keys) AS k(key_text)
WHERE r.push_id = $1 GROUP BY r.table_name, k.key_text HAVING count(*) > 1 LIMIT 1`

// conflictSQL finds the first staged row, in ordinal order, that fails the
// optimistic-concurrency rules of protocol 8.2. A key's state is its live
// business row's version or else its tombstone in _sync_row_state; a
// tombstone left from before the key's latest insert is ignored. conflictSQL
// is built for the push's tables: one part per table, each probing that
// table's primary key ($1 the push, $2 the user).
func conflictSQL(r *reqCtx, tables []*catTable) string {
	parts := make([]string, len(tables))
	for i, t := range tables {
		// OFFSET 0 keeps one primary-key probe per staged row whatever the
		// statistics say: a join over stale estimates can turn quadratic.
		parts[i] = `SELECT r.first_ordinal, x.i, r.table_name, x.key_text, r.op, x.base,
			coalesce(l.v, d.v, 0) AS version, l.v IS NULL AND d.v IS NOT NULL AS deleted
		FROM ` + r.t("_sync_push_run") + ` r
		CROSS JOIN LATERAL unnest(r.keys, r.bases) WITH ORDINALITY AS x(key_text, base, i)
		LEFT JOIN LATERAL (
			SELECT b.` + col(versionColumn) + ` AS v FROM ` + r.t(t.name) + ` b
			WHERE b._sync_scope_id = $2 AND b.` + col(t.keyCol) + ` = x.key_text` + t.keyCast() + ` OFFSET 0
		) l ON true
		LEFT JOIN LATERAL (
			-- The uncorrelated EXISTS runs once: a user without tombstones
			-- in the table probes only the live rows.
			SELECT s.row_version AS v FROM ` + r.t("_sync_row_state") + ` s
			WHERE l.v IS NULL AND (SELECT EXISTS (SELECT 1 FROM ` + r.t("_sync_row_state") + ` WHERE user_id = $2 AND table_name = '` + t.name + `'))
				AND s.user_id = $2 AND s.table_name = r.table_name AND s.key_text = x.key_text AND s.deleted OFFSET 0
		) d ON true
		WHERE r.push_id = $1 AND r.table_name = '` + t.name + `' AND NOT coalesce(CASE
			WHEN r.op = 'INSERT' THEN l.v IS NULL AND x.base = coalesce(d.v, 0)
			ELSE x.base = l.v
		END, false)`
	}
	return `SELECT table_name, key_text, op, base, version, deleted FROM (` + strings.Join(parts, "\nUNION ALL\n") + `) c
		ORDER BY first_ordinal, i LIMIT 1`
}

// tombstonedSQL reports whether the user has a tombstone in any table the
// push writes: one probe per staged run ($1 the push, $2 the user).
const tombstonedSQL = `SELECT coalesce(bool_or(t.found), false) FROM %[1]s r
CROSS JOIN LATERAL (SELECT true AS found FROM %[2]s s WHERE s.user_id = $2 AND s.table_name = r.table_name LIMIT 1) t
WHERE r.push_id = $1`

// findConflict returns the first staged row that fails 8.2, or nil.
func findConflict(c *gin.Context, tx pgx.Tx, r *reqCtx, pushID string, tables []*catTable) (*conflictRow, error) {
	if len(tables) == 0 {
		return nil, nil
	}
	var cf conflictRow
	err := tx.QueryRow(c, conflictSQL(r, tables), pushID, r.user).Scan(&cf.Table, &cf.Key, &cf.Op, &cf.Base, &cf.ServerVersion, &cf.Deleted)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("check conflicts: %w", err)
	}
	return &cf, nil
}

// conflictOr is the 409 for cf, or err when the check itself failed.
func (h *Handler) conflictOr(c *gin.Context, tx pgx.Tx, r *reqCtx, cf *conflictRow, err error) error {
	if err != nil {
		return err
	}
	return h.conflictError(c, tx, r, cf)
}

// isUniqueViolation reports a unique or primary-key violation (23505).
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// pushTables returns the catalog tables the groups write, in first-use
// order, or the error for a table that is no longer registered.
func pushTables(r *reqCtx, groups []applyGroup) ([]*catTable, error) {
	var tables []*catTable
	seen := map[string]bool{}
	for _, g := range groups {
		if seen[g.Table] {
			continue
		}
		t, ok := r.cat.byName[g.Table]
		if !ok {
			return nil, apiErr(http.StatusBadRequest, "push_commit_invalid", "table %s.%s is no longer registered", r.wire, g.Table)
		}
		seen[g.Table] = true
		tables = append(tables, t)
	}
	return tables, nil
}

// commitPushSession applies a staged push as one bundle (protocol 7.5).
func (h *Handler) commitPushSession(c *gin.Context) error {
	r, err := h.req(c)
	if err != nil {
		return err
	}
	id, err := parsePushID(c)
	if err != nil {
		return err
	}
	var res BundleResult
	err = inTx(c, r.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		s, ps, err := lockScopeAndSession(c, tx, r, id)
		if err != nil {
			return err
		}
		// Staged-set checks, source state and the apply groups in one round
		// trip, then the first conflict among the push's tables; evaluated
		// in the protocol's order.
		b := &pgx.Batch{}
		runsTbl := r.t("_sync_push_run")
		b.Queue(fmt.Sprintf(runsSQL, runsTbl), id)
		b.Queue(fmt.Sprintf(dupSQL, runsTbl), id)
		b.Queue(fmt.Sprintf(selectSourceSQL, r.t("_sync_source")), r.user, ps.Source)
		b.Queue(fmt.Sprintf(tombstonedSQL, runsTbl, r.t("_sync_row_state")), id, r.user)
		br := tx.SendBatch(c, b)
		defer br.Close()

		groups, count, maxOrd, err := scanRuns(br)
		if err != nil {
			return err
		}
		var dupTable, dupKey string
		dupErr := br.QueryRow().Scan(&dupTable, &dupKey)
		if dupErr != nil && !errors.Is(dupErr, pgx.ErrNoRows) {
			return fmt.Errorf("check duplicates: %w", dupErr)
		}
		src, err := scanSource(br.QueryRow())
		if err != nil {
			return err
		}
		var tombstoned bool
		if err := br.QueryRow().Scan(&tombstoned); err != nil {
			return fmt.Errorf("look for tombstones: %w", err)
		}
		if err := br.Close(); err != nil {
			return fmt.Errorf("read staged push: %w", err)
		}

		if count != ps.Planned || maxOrd != ps.Planned-1 {
			return apiErr(http.StatusBadRequest, "push_commit_invalid", "staged row count %d does not match planned_row_count %d", count, ps.Planned)
		}
		if dupErr == nil {
			return apiErr(http.StatusBadRequest, "push_commit_invalid", "duplicate target row in staged push session: %s.%s %s", r.wire, dupTable, dupKey)
		}
		if err := checkSeedLease(s, ps); err != nil {
			return err
		}
		if src.State == "retired" {
			return sourceRetiredErr(r.user, ps.Source, src.ReplacedBy)
		}
		if src.MaxSBID+1 != ps.SBID {
			return apiErr(http.StatusConflict, "source_sequence_changed",
				"source %s expected source_bundle_id %d, but the session was created for %d", ps.Source, src.MaxSBID+1, ps.SBID)
		}
		tables, err := pushTables(r, groups)
		if err != nil {
			return err
		}
		// Fresh inserts into tables where the user has no tombstones can
		// conflict (8.2) only with a live row of the same key, which the
		// primary key refuses as the rows are applied. Such a push is applied
		// under a savepoint without a probe per row; only if the apply hits
		// a unique violation is it rolled back and the conflict looked for.
		fresh := onlyNewRows(groups) && !tombstoned
		if !fresh {
			if cf, err := findConflict(c, tx, r, id, tables); err != nil || cf != nil {
				return h.conflictOr(c, tx, r, cf, err)
			}
		}
		// Bind and apply in one round trip.
		err = applyGroups(c, tx, r, id, s.Latest+1, groups, func(b *pgx.Batch) {
			queueBind(b, r.user, ps.Source, ps.SBID, s.Latest+1)
			if fresh {
				b.Queue(`SAVEPOINT push_apply`)
			}
		})
		if fresh && isUniqueViolation(err) {
			if _, rbErr := tx.Exec(c, `ROLLBACK TO SAVEPOINT push_apply`); rbErr != nil {
				return fmt.Errorf("roll back the apply: %w", rbErr)
			}
			if cf, cfErr := findConflict(c, tx, r, id, tables); cfErr != nil || cf != nil {
				return h.conflictOr(c, tx, r, cf, cfErr)
			}
		}
		if err != nil {
			return commitError(err, "push_commit_invalid")
		}
		res, err = finishBundle(c, tx, bundleSpec{schema: r.schema, wire: r.wire, user: r.user, source: ps.Source, sbid: ps.SBID,
			scope: s, cat: r.cat, retained: int64(r.scope.Tenant.RetainedBundles), pushID: id, seed: ps.InitID != "",
			tenant: r.scope.Tenant, limits: r.scope.Limits, distinctKeys: !deletesSpread(r.cat, groups),
			newKeys: onlyNewRows(groups)})
		if errors.Is(err, errNoEffects) {
			return apiErr(http.StatusBadRequest, "push_commit_invalid", "push session produced no captured business-table effects")
		}
		return err
	})
	if err != nil {
		return commitError(err, "push_commit_invalid") // deferred constraints fail at COMMIT
	}
	h.publish(r.pool, r.schema, r.user, res)
	noteCommit(c, res.RowCount)
	c.JSON(http.StatusOK, res)
	return nil
}

// deletesSpread reports whether a delete of the push may change rows beyond
// the staged ones (a cascading or nulling foreign key), so that captured
// effects may repeat a key and need collapsing (8.3).
func deletesSpread(cat *catalog, groups []applyGroup) bool {
	for _, g := range groups {
		if t, ok := cat.byName[g.Table]; ok && g.Op == opDelete && t.deleteSpreads {
			return true
		}
	}
	return false
}

// onlyNewRows reports whether the push only inserts rows with base version
// 0. Once the conflict check has passed, none of their keys has a row or a
// tombstone (8.2), and the push cannot touch other keys.
func onlyNewRows(groups []applyGroup) bool {
	for _, g := range groups {
		if g.Op != opInsert || !g.Fresh {
			return false
		}
	}
	return true
}

// scanRuns reads the session's runs in ordinal order and merges them into
// apply groups; it also returns the staged row count and the last ordinal.
func scanRuns(br pgx.BatchResults) (groups []applyGroup, count, maxOrd int64, err error) {
	rows, err := br.Query()
	if err != nil {
		return nil, 0, 0, fmt.Errorf("read staged runs: %w", err)
	}
	defer rows.Close()
	maxOrd = -1
	for rows.Next() {
		var first int64
		var n int32
		var table, op, cols string
		var fresh bool
		if err := rows.Scan(&first, &n, &table, &op, &cols, &fresh); err != nil {
			return nil, 0, 0, fmt.Errorf("read staged runs: %w", err)
		}
		count += int64(n)
		maxOrd = first + int64(n) - 1
		if k := len(groups) - 1; k >= 0 && groups[k].Table == table && groups[k].Op == op && groups[k].Cols == cols {
			groups[k].Firsts = append(groups[k].Firsts, first)
			groups[k].Fresh = groups[k].Fresh && fresh
			continue
		}
		groups = append(groups, applyGroup{Table: table, Op: op, Cols: cols, Firsts: []int64{first}, Fresh: fresh})
	}
	if err := rows.Err(); err != nil {
		return nil, 0, 0, fmt.Errorf("read staged runs: %w", err)
	}
	return groups, count, maxOrd, nil
}

// applyGroups writes the staged rows to the business tables in ordinal
// order, one set-based statement per group, all in one round trip; the
// rows written get row version seq. Constraints are deferred, so only the
// final state must be consistent.
func applyGroups(c *gin.Context, tx pgx.Tx, r *reqCtx, pushID string, seq int64, groups []applyGroup, first func(*pgx.Batch)) error {
	b := &pgx.Batch{}
	first(b)
	runsTbl := r.t("_sync_push_run")
	// The group's after-images as records x of the business table, with
	// the order that sorts them by ordinal. One jsonb_populate_recordset per
	// run is cheaper than a jsonb_populate_record per element; a table with
	// a column named like the ordinality column takes the per-element form.
	images := func(t *catTable) (from, order string) {
		tbl := r.t(t.name)
		where := ` WHERE r.push_id = $1 AND r.first_ordinal = ANY ($2)`
		if _, clash := t.cols["ordinality"]; clash {
			return ` FROM ` + runsTbl + ` r CROSS JOIN LATERAL jsonb_array_elements(r.payloads) WITH ORDINALITY AS e(v, n)
				CROSS JOIN LATERAL jsonb_populate_record(NULL::` + tbl + `, e.v) x` + where, ` ORDER BY r.first_ordinal, e.n`
		}
		return ` FROM ` + runsTbl + ` r CROSS JOIN LATERAL jsonb_populate_recordset(NULL::` + tbl + `, r.payloads) WITH ORDINALITY AS x` + where,
			` ORDER BY r.first_ordinal, x.ordinality`
	}
	for _, g := range groups {
		t, ok := r.cat.byName[g.Table]
		if !ok {
			return apiErr(http.StatusBadRequest, "push_commit_invalid", "table %s.%s is no longer registered", r.wire, g.Table)
		}
		tbl := r.t(t.name)
		key := col(t.keyCol)
		// The group's keys, to pin the scan of the business table to
		// primary-key probes.
		keys := `ARRAY(SELECT k.key_text` + t.keyCast() + ` FROM ` + runsTbl + ` q CROSS JOIN LATERAL unnest(q.keys) AS k(key_text)
			WHERE q.push_id = $1 AND q.first_ordinal = ANY ($2))`
		switch g.Op {
		case opInsert, opUpdate:
			var names []string
			for _, n := range strings.Split(g.Cols, ",") {
				if _, ok := t.cols[n]; !ok {
					return apiErr(http.StatusBadRequest, "push_commit_invalid", "column %s of %s.%s is no longer registered", n, r.wire, g.Table)
				}
				names = append(names, col(n))
			}
			if g.Op == opInsert {
				sel := make([]string, len(names))
				for i, n := range names {
					sel[i] = "x." + n
				}
				from, order := images(t)
				b.Queue(`INSERT INTO `+tbl+` (`+strings.Join(names, ", ")+`, `+col(versionColumn)+`) SELECT `+strings.Join(sel, ", ")+
					`, $3::bigint`+from+order, pushID, g.Firsts, seq)
			} else {
				set := make([]string, len(names))
				for i, n := range names {
					set[i] = n + " = x." + n
				}
				from, _ := images(t)
				b.Queue(`UPDATE `+tbl+` AS t SET `+strings.Join(set, ", ")+`, `+col(versionColumn)+` = $4::bigint`+from+
					` AND t._sync_scope_id = $3 AND t.`+key+` = x.`+key+` AND t.`+key+` = ANY (`+keys+`)`,
					pushID, g.Firsts, r.user, seq)
			}
		case opDelete:
			b.Queue(`DELETE FROM `+tbl+` AS t WHERE t._sync_scope_id = $3 AND t.`+key+` = ANY (`+keys+`)`,
				pushID, g.Firsts, r.user)
		}
	}
	return tx.SendBatch(c, b).Close()
}

// conflictRow is the first staged row failing 8.2.
type conflictRow struct {
	Table, Key, Op string
	Base           int64
	ServerVersion  int64
	Deleted        bool
}

// conflictError builds the 409 push_conflict body, with the live server row.
func (h *Handler) conflictError(c *gin.Context, tx pgx.Tx, r *reqCtx, cf *conflictRow) error {
	t := r.cat.byName[cf.Table]
	keyCol := "id"
	var serverRow any
	if t != nil {
		keyCol = t.keyCol
		if cf.ServerVersion > 0 && !cf.Deleted {
			var payload []byte
			err := tx.QueryRow(c, `SELECT (`+t.wireExpr("t")+`)::text FROM `+r.t(t.name)+
				` t WHERE t._sync_scope_id = $1 AND t.`+col(t.keyCol)+` = $2`+t.keyCast(), r.user, cf.Key).Scan(&payload)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("read conflicting row: %w", err)
			}
			if payload != nil {
				serverRow = rawJSON(payload)
			}
		}
	}
	var msg string
	switch {
	case cf.Op == opInsert && cf.ServerVersion > 0 && !cf.Deleted:
		msg = fmt.Sprintf("insert conflict on %s.%s %s: row already exists at version %d", r.wire, cf.Table, cf.Key, cf.ServerVersion)
	case cf.Op == opInsert:
		msg = fmt.Sprintf("insert conflict on %s.%s %s: expected version %d, got %d", r.wire, cf.Table, cf.Key, cf.ServerVersion, cf.Base)
	case cf.ServerVersion == 0 || cf.Deleted:
		msg = fmt.Sprintf("%s conflict on %s.%s %s: row does not exist", strings.ToLower(cf.Op), r.wire, cf.Table, cf.Key)
	default:
		msg = fmt.Sprintf("%s conflict on %s.%s %s: expected version %d, got %d", strings.ToLower(cf.Op), r.wire, cf.Table, cf.Key, cf.ServerVersion, cf.Base)
	}
	return &server.Error{Status: http.StatusConflict, Code: "push_conflict", Message: msg, Extra: map[string]any{
		"conflict": map[string]any{
			"schema": r.wire, "table": cf.Table, "key": map[string]string{keyCol: cf.Key}, "op": cf.Op,
			"base_row_version": cf.Base, "server_row_version": cf.ServerVersion, "server_row_deleted": cf.Deleted,
			"server_row": serverRow,
		},
	}}
}
