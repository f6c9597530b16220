package sync

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"

	"github.com/syncplane/syncplane/web/server"
)

// applyGroup is a run of consecutive staged rows with the same table, op
// and column set, applied with one set-based statement.
type applyGroup struct {
	Table  string
	Op     string
	Cols   string
	Lo, Hi int64
}

const groupsSQL = `
SELECT table_name, op, cols, min(row_ordinal), max(row_ordinal) FROM (
    SELECT table_name, op, cols, row_ordinal,
           row_ordinal - row_number() OVER (PARTITION BY table_name, op, cols ORDER BY row_ordinal) AS grp
    FROM %s WHERE push_id = $1
) g GROUP BY table_name, op, cols, grp ORDER BY min(row_ordinal)`

// conflictSQL finds the first staged row, in ordinal order, that fails the
// optimistic-concurrency rules of protocol 8.2.
const conflictSQL = `
SELECT p.table_name, p.key_text, p.op, p.base_row_version, coalesce(s.row_version, 0), coalesce(s.deleted, false)
FROM %[1]s p
LEFT JOIN LATERAL (
    -- One primary-key probe per staged row whatever the statistics say
    -- (OFFSET 0 keeps the planner from flattening this into a join that
    -- stale estimates can turn quadratic).
    SELECT s.row_version, s.deleted FROM %[2]s s
    WHERE s.user_id = $2 AND s.table_name = p.table_name AND s.key_text = p.key_text OFFSET 0
) s ON true
WHERE p.push_id = $1 AND NOT coalesce(CASE
    WHEN p.op = 'INSERT' THEN (s.row_version IS NULL AND p.base_row_version = 0) OR (s.deleted AND p.base_row_version = s.row_version)
    ELSE s.row_version IS NOT NULL AND NOT s.deleted AND p.base_row_version = s.row_version
END, false)
ORDER BY p.row_ordinal LIMIT 1`

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
		// Staged-set checks, source state, the first conflict and the apply
		// groups: one round trip, evaluated in the protocol's order.
		b := &pgx.Batch{}
		b.Queue(`SELECT count(*), coalesce(max(row_ordinal), -1) FROM `+r.t("_sync_push_row")+` WHERE push_id = $1`, id)
		b.Queue(`SELECT table_name, key_text FROM `+r.t("_sync_push_row")+` WHERE push_id = $1
			GROUP BY table_name, key_text HAVING count(*) > 1 LIMIT 1`, id)
		b.Queue(fmt.Sprintf(selectSourceSQL, r.t("_sync_source")), r.user, ps.Source)
		b.Queue(fmt.Sprintf(conflictSQL, r.t("_sync_push_row"), r.t("_sync_row_state")), id, r.user)
		b.Queue(fmt.Sprintf(groupsSQL, r.t("_sync_push_row")), id)
		br := tx.SendBatch(c, b)
		defer br.Close()

		var count, maxOrd int64
		if err := br.QueryRow().Scan(&count, &maxOrd); err != nil {
			return fmt.Errorf("count staged rows: %w", err)
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
		var cf conflictRow
		cfErr := br.QueryRow().Scan(&cf.Table, &cf.Key, &cf.Op, &cf.Base, &cf.ServerVersion, &cf.Deleted)
		if cfErr != nil && !errors.Is(cfErr, pgx.ErrNoRows) {
			return fmt.Errorf("check conflicts: %w", cfErr)
		}
		groups, err := scanGroups(br)
		if err != nil {
			return err
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
		if cfErr == nil {
			return h.conflictError(c, tx, r, &cf)
		}

		// Bind and apply in one round trip.
		if err := applyGroups(c, tx, r, id, groups, func(b *pgx.Batch) { queueBind(b, r.user, ps.Source, ps.SBID, s.Latest+1) }); err != nil {
			return commitError(err, "push_commit_invalid")
		}
		res, err = finishBundle(c, tx, bundleSpec{schema: r.schema, wire: r.wire, user: r.user, source: ps.Source, sbid: ps.SBID,
			scope: s, cat: r.cat, retained: int64(r.scope.Tenant.RetainedBundles), pushID: id, seed: ps.InitID != "",
			tenant: r.scope.Tenant, limits: r.scope.Limits})
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

func scanGroups(br pgx.BatchResults) ([]applyGroup, error) {
	rows, err := br.Query()
	if err != nil {
		return nil, fmt.Errorf("read apply groups: %w", err)
	}
	defer rows.Close()
	var groups []applyGroup
	for rows.Next() {
		var g applyGroup
		if err := rows.Scan(&g.Table, &g.Op, &g.Cols, &g.Lo, &g.Hi); err != nil {
			return nil, fmt.Errorf("read apply groups: %w", err)
		}
		groups = append(groups, g)
	}
	return groups, rows.Err()
}

// applyGroups writes the staged rows to the business tables in ordinal
// order, one set-based statement per group, all in one round trip.
// Constraints are deferred, so only the final state must be consistent.
func applyGroups(c *gin.Context, tx pgx.Tx, r *reqCtx, pushID string, groups []applyGroup, first func(*pgx.Batch)) error {
	b := &pgx.Batch{}
	first(b)
	rowsTbl := r.t("_sync_push_row")
	for _, g := range groups {
		t, ok := r.cat.byName[g.Table]
		if !ok {
			return apiErr(http.StatusBadRequest, "push_commit_invalid", "table %s.%s is no longer registered", r.wire, g.Table)
		}
		tbl := r.t(t.name)
		key := col(t.keyCol)
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
				b.Queue(`INSERT INTO `+tbl+` (`+strings.Join(names, ", ")+`) SELECT `+strings.Join(sel, ", ")+
					` FROM `+rowsTbl+` p CROSS JOIN LATERAL jsonb_populate_record(NULL::`+tbl+`, p.payload) x
					WHERE p.push_id = $1 AND p.row_ordinal BETWEEN $2 AND $3 ORDER BY p.row_ordinal`, pushID, g.Lo, g.Hi)
			} else {
				set := make([]string, len(names))
				for i, n := range names {
					set[i] = n + " = x." + n
				}
				b.Queue(`UPDATE `+tbl+` AS t SET `+strings.Join(set, ", ")+
					` FROM `+rowsTbl+` p CROSS JOIN LATERAL jsonb_populate_record(NULL::`+tbl+`, p.payload) x
					WHERE p.push_id = $1 AND p.row_ordinal BETWEEN $2 AND $3 AND t._sync_scope_id = $4 AND t.`+key+` = x.`+key+
					// The key list pins the scan of t to primary-key probes.
					` AND t.`+key+` = ANY (ARRAY(SELECT q.key_text`+t.keyCast()+` FROM `+rowsTbl+` q
						WHERE q.push_id = $1 AND q.row_ordinal BETWEEN $2 AND $3))`,
					pushID, g.Lo, g.Hi, r.user)
			}
		case opDelete:
			b.Queue(`DELETE FROM `+tbl+` AS t WHERE t._sync_scope_id = $4 AND t.`+key+` = ANY (ARRAY(SELECT p.key_text`+t.keyCast()+
				` FROM `+rowsTbl+` p WHERE p.push_id = $1 AND p.row_ordinal BETWEEN $2 AND $3))`,
				pushID, g.Lo, g.Hi, r.user)
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
