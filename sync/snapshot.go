package sync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	gosync "sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

type sourceReplacement struct {
	PreviousSourceID string `json:"previous_source_id"`
	NewSourceID      string `json:"new_source_id"`
	Reason           string `json:"reason"`
}

type snapshotCreateRequest struct {
	SourceReplacement *sourceReplacement `json:"source_replacement"`
}

var rotationReasons = map[string]bool{
	"history_pruned": true, "source_sequence_out_of_order": true, "source_sequence_changed": true, "source_retired": true,
}

type snapshotCreateResponse struct {
	SnapshotID        string `json:"snapshot_id"`
	SnapshotBundleSeq int64  `json:"snapshot_bundle_seq"`
	RowCount          int64  `json:"row_count"`
	ByteCount         int64  `json:"byte_count"`
	ExpiresAt         string `json:"expires_at"`
}

// parseSnapshotCreate decodes the optional create body strictly (7.10).
func parseSnapshotCreate(body []byte) (*sourceReplacement, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var req *snapshotCreateRequest
	if err := dec.Decode(&req); err != nil {
		return nil, apiErr(http.StatusBadRequest, "snapshot_session_invalid", "request body is not a valid snapshot session request: %s", jsonProblemStrict(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, apiErr(http.StatusBadRequest, "snapshot_session_invalid", "request body has trailing data")
	}
	if req == nil || req.SourceReplacement == nil {
		return nil, nil
	}
	sr := req.SourceReplacement
	sr.PreviousSourceID = strings.TrimSpace(sr.PreviousSourceID)
	sr.NewSourceID = strings.TrimSpace(sr.NewSourceID)
	sr.Reason = strings.TrimSpace(sr.Reason)
	return sr, nil
}

func jsonProblemStrict(err error) string {
	if strings.HasPrefix(err.Error(), "json: unknown field ") {
		return "unknown member " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return jsonProblem(err)
}

// createSnapshotSession freezes the user's live rows (protocol 7.10),
// optionally rotating the caller's source atomically with it.
func (h *Handler) createSnapshotSession(c *gin.Context) error {
	r, err := h.req(c)
	if err != nil {
		return err
	}
	body, err := h.readBody(c)
	if err != nil {
		return err
	}
	rot, err := parseSnapshotCreate(body)
	if err != nil {
		return err
	}
	var resp snapshotCreateResponse
	parts := &freezeParts{}
	defer parts.rollback(c)
	err = inTx(c, r.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		parts.rollback(c) // a retried attempt starts over
		if _, err := tx.Exec(c, deleteSessionsSQL(r.schema, "snapshot", expiredWhere("snapshot_id", 10))); err != nil {
			return fmt.Errorf("purge expired snapshots: %w", err)
		}
		var s *scopeState
		if rot != nil {
			// A rotation is a mutation: serialize it with the user's others.
			s, err = lockScopeShared(c, tx, r.schema, r.user, "FOR UPDATE")
		} else {
			s, err = readScope(c, tx, r.schema, r.user)
		}
		if err != nil {
			return err
		}
		if err := scopeNotReady(s); err != nil {
			return err
		}
		if rot != nil {
			if err := h.rotateSource(c, tx, r, rot); err != nil {
				return err
			}
		}
		id := uuid.NewString()
		resp.SnapshotID = id
		resp.SnapshotBundleSeq = s.Latest
		resp.ExpiresAt = rfc3339(s.Now.Add(h.cfg.SnapshotSessionTTL))
		ownFrom := h.cfg.snapshotOwnTableRows
		if ownFrom <= 0 {
			ownFrom = snapshotOwnTableRows
		}
		if err := freezeSnapshot(c, tx, r, id, s, h.cfg.SnapshotSessionTTL, ownFrom, h.freezePlan(), parts, &resp); err != nil {
			return err
		}
		if m := h.cfg.MaxRowsPerSnapshot; m > 0 && resp.RowCount > m {
			return apiErr(http.StatusForbidden, "quota_exceeded", "snapshot of %d rows exceeds the limit of %d rows", resp.RowCount, m)
		}
		if m := h.cfg.MaxBytesPerSnapshot; m > 0 && resp.ByteCount > m {
			return apiErr(http.StatusForbidden, "quota_exceeded", "snapshot of %d bytes exceeds the limit of %d bytes", resp.ByteCount, m)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := parts.commit(c); err != nil {
		// The session committed without all of its rows: drop it.
		if _, derr := r.pool.Exec(context.WithoutCancel(c), deleteSessionsSQL(r.schema, "snapshot", `snapshot_id = $1`), resp.SnapshotID); derr != nil {
			err = errors.Join(err, derr)
		}
		return fmt.Errorf("commit snapshot parts: %w", err)
	}
	c.JSON(http.StatusOK, resp)
	return nil
}

// lockScopeShared reads an existing scope row with the given lock clause
// (a missing row is an uninitialized scope).
func lockScopeShared(c *gin.Context, tx pgx.Tx, schema, user, lock string) (*scopeState, error) {
	var s scopeState
	err := tx.QueryRow(c, `SELECT state, coalesce(initializer_source, ''), coalesce(initialization_id::text, ''),
		coalesce(lease_expires_at, 'epoch'), latest_bundle_seq, retained_floor, now()
		FROM `+ident(schema, "_sync_scope")+` WHERE user_id = $1 `+lock, user).
		Scan(&s.State, &s.Initializer, &s.InitID, &s.Lease, &s.Latest, &s.Floor, &s.Now)
	if errors.Is(err, pgx.ErrNoRows) {
		return &scopeState{State: stateUninitialized}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lock scope: %w", err)
	}
	if s.State == stateInitializing && !s.Lease.After(s.Now) {
		s.State = stateUninitialized
	}
	return &s, nil
}

// rotateSource applies a source_replacement (7.10 step 2). Caller holds the
// scope lock; the changes commit with the snapshot or not at all.
func (h *Handler) rotateSource(c *gin.Context, tx pgx.Tx, r *reqCtx, rot *sourceReplacement) error {
	switch {
	case rot.PreviousSourceID != r.source:
		return apiErr(http.StatusBadRequest, "snapshot_session_invalid", "source_replacement.previous_source_id must equal the Oversync-Source-ID header")
	case rot.NewSourceID == "":
		return apiErr(http.StatusBadRequest, "snapshot_session_invalid", "source_replacement.new_source_id is required")
	case rot.NewSourceID == rot.PreviousSourceID:
		return apiErr(http.StatusBadRequest, "snapshot_session_invalid", "source_replacement.new_source_id must differ from previous_source_id")
	case len(rot.NewSourceID) > maxSourceIDBytes:
		return apiErr(http.StatusBadRequest, "snapshot_session_invalid", "source_replacement.new_source_id must be at most %d bytes", maxSourceIDBytes)
	case !rotationReasons[rot.Reason]:
		return apiErr(http.StatusBadRequest, "snapshot_session_invalid", "source_replacement.reason %q is not supported", rot.Reason)
	}
	b := &pgx.Batch{}
	b.Queue(fmt.Sprintf(selectSourceSQL, r.t("_sync_source"))+" FOR UPDATE", r.user, rot.PreviousSourceID)
	b.Queue(fmt.Sprintf(selectSourceSQL, r.t("_sync_source"))+" FOR UPDATE", r.user, rot.NewSourceID)
	br := tx.SendBatch(c, b)
	prev, err := scanSource(br.QueryRow())
	if err != nil {
		br.Close()
		return err
	}
	next, err := scanSource(br.QueryRow())
	if err != nil {
		br.Close()
		return err
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("read sources: %w", err)
	}
	reserve := `INSERT INTO ` + r.t("_sync_source") + ` (user_id, source_id, state) VALUES ($1, $2, 'reserved')`
	if prev.State == "retired" {
		if prev.ReplacedBy != rot.NewSourceID {
			return sourceRetiredErr(r.user, rot.PreviousSourceID, prev.ReplacedBy)
		}
		if next.State == "retired" {
			return apiErr(http.StatusConflict, "source_replacement_invalid", "replacement source %s is retired", rot.NewSourceID)
		}
		if !next.Known {
			if _, err := tx.Exec(c, reserve, r.user, rot.NewSourceID); err != nil {
				return fmt.Errorf("reserve source: %w", err)
			}
		}
		return nil
	}
	if next.Known {
		return apiErr(http.StatusConflict, "source_replacement_invalid", "replacement source %s is already known for user %s", rot.NewSourceID, r.user)
	}
	b = &pgx.Batch{}
	b.Queue(reserve, r.user, rot.NewSourceID)
	b.Queue(`INSERT INTO `+r.t("_sync_source")+` (user_id, source_id, state, replaced_by_source_id, retire_reason)
		VALUES ($1, $2, 'retired', $3, $4)
		ON CONFLICT (user_id, source_id) DO UPDATE SET state = 'retired', replaced_by_source_id = EXCLUDED.replaced_by_source_id,
			retire_reason = EXCLUDED.retire_reason, last_seen_at = now()`, r.user, rot.PreviousSourceID, rot.NewSourceID, rot.Reason)
	if err := tx.SendBatch(c, b).Close(); err != nil {
		return fmt.Errorf("rotate source: %w", err)
	}
	return nil
}

// snapshotOwnTableRows is the default live-row count from which a snapshot
// session gets a rows table of its own (Config.snapshotOwnTableRows).
const snapshotOwnTableRows = 20000

// snapshotWorkMem is the sort and hash memory of a large freeze: its join
// and sort of every live row spill to disk at the default 4 MB.
const snapshotWorkMem = "64MB"

// snapshotRowsTable is the name of session id's own rows table.
func snapshotRowsTable(id string) string {
	return "_sync_snap_" + strings.ReplaceAll(id, "-", "")
}

// freezeSnapshot copies every live row of the user, with its row version and
// rendered payload, into the session in snapshot order (table name, then key
// bytes), in tx's consistent snapshot.
//
// Small snapshots go to the shared _sync_snapshot_row. A user with at least
// ownFrom live rows gets a table of its own instead, _sync_snap_<id>: filled
// without an index (which is built once afterwards, from sorted input) and
// dropped, not deleted row by row, with the session. A user with enough rows
// for several parts (plan) has them frozen by several connections at once
// (freezeOwnParts). Both kinds are unlogged (a session is a cache of the
// live tables); snapshotChunk detects rows lost in a crash against
// row_count.
func freezeSnapshot(c *gin.Context, tx pgx.Tx, r *reqCtx, id string, s *scopeState, ttl time.Duration, ownFrom int64,
	plan freezePlan, parts *freezeParts, resp *snapshotCreateResponse) error {
	var live int64
	if err := tx.QueryRow(c, `SELECT coalesce((SELECT live_rows FROM `+r.t("_sync_scope")+` WHERE user_id = $1), 0)`, r.user).Scan(&live); err != nil {
		return fmt.Errorf("read live rows: %w", err)
	}
	own := len(r.cat.tables) > 0 && live >= ownFrom
	var rowsTable *string
	if own {
		name := snapshotRowsTable(id)
		rowsTable = &name
	}
	if _, err := tx.Exec(c, `INSERT INTO `+r.t("_sync_snapshot_session")+` (snapshot_id, user_id, snapshot_bundle_seq, row_count, byte_count, expires_at, rows_table)
		VALUES ($1, $2, $3, 0, 0, now() + $4::interval, $5)`, id, r.user, s.Latest, ttl, rowsTable); err != nil {
		return fmt.Errorf("create snapshot session: %w", err)
	}
	if len(r.cat.tables) == 0 {
		return nil
	}
	var partRows []int64
	if own {
		var bounds []snapBound
		if k := plan.partsFor(live); k > 1 {
			var err error
			if bounds, err = sampleBounds(c, tx, r, live, k); err != nil {
				return err
			}
		}
		var err error
		if partRows, err = freezeOwnParts(c, tx, r, *rowsTable, bounds, parts, resp); err != nil {
			return err
		}
	} else {
		args := []any{r.user, id}
		q := `WITH ins AS (
			INSERT INTO ` + r.t("_sync_snapshot_row") + ` (snapshot_id, row_ordinal, table_name, key_text, row_version, payload)
			SELECT $2::uuid, ` + frozenRows(r, nil, nil, &args) + `
			RETURNING octet_length(payload) AS len
		) SELECT count(*), coalesce(sum(len), 0)::bigint FROM ins`
		if err := tx.QueryRow(c, q, args...).Scan(&resp.RowCount, &resp.ByteCount); err != nil {
			return fmt.Errorf("freeze snapshot rows: %w", err)
		}
	}
	if len(partRows) < 2 {
		partRows = nil // one part: the column stays NULL
	}
	if _, err := tx.Exec(c, `UPDATE `+r.t("_sync_snapshot_session")+` SET row_count = $2, byte_count = $3, part_rows = $4 WHERE snapshot_id = $1`,
		id, resp.RowCount, resp.ByteCount, partRows); err != nil {
		return fmt.Errorf("record snapshot size: %w", err)
	}
	return nil
}

// frozenRows is the select list and sources of the frozen rows in page
// order (row_ordinal from 1, table_name, key_text, row_version, payload),
// $1 the user, restricted to the snapshot order's range [lo, hi) (nil: no
// bound; a bound's table is always in the catalog, so some table is read).
// The bounds' keys are appended to args as parameters.
func frozenRows(r *reqCtx, lo, hi *snapBound, args *[]any) string {
	param := func(v string) string {
		*args = append(*args, v)
		return "$" + strconv.Itoa(len(*args))
	}
	var branches []string
	for _, t := range r.cat.tables {
		if lo != nil && t.ord < lo.tord || hi != nil && t.ord > hi.tord {
			continue
		}
		where := `t._sync_scope_id = $1`
		if lo != nil && t.ord == lo.tord {
			where += ` AND ` + t.keyCompare("t", ">=", param(lo.key))
		}
		if hi != nil && t.ord == hi.tord {
			where += ` AND ` + t.keyCompare("t", "<", param(hi.key))
		}
		branches = append(branches, `SELECT `+strconv.Itoa(t.ord)+` AS tord, '`+t.name+`'::text AS tname, t.`+col(t.keyCol)+`::text AS key_text, `+
			`t.`+col(versionColumn)+` AS row_version, `+t.snapshotPayloadExpr("t")+` AS payload FROM `+r.t(t.name)+` t WHERE `+where)
	}
	return `row_number() OVER (ORDER BY x.tord, x.key_text COLLATE "C") AS row_ordinal, x.tname AS table_name,
			x.key_text, x.row_version, x.payload
		FROM (` + strings.Join(branches, " UNION ALL ") + `) x`
}

// keyCompare is "alias.key op value" in the snapshot's key order (bytes:
// uuid order, text under COLLATE "C").
func (t *catTable) keyCompare(alias, op, value string) string {
	if t.keyUUID {
		return alias + `.` + col(t.keyCol) + ` ` + op + ` ` + value + `::uuid`
	}
	return alias + `.` + col(t.keyCol) + ` COLLATE "C" ` + op + ` ` + value
}

// parseSnapshotID returns the canonical id or a 404 (D5).
func parseSnapshotID(c *gin.Context) (string, error) {
	raw := c.Param("snapshot_id")
	id, err := uuid.Parse(raw)
	if err != nil || !isCanonicalUUID(strings.ToLower(raw)) {
		return "", apiErr(http.StatusNotFound, "snapshot_session_not_found", "snapshot session %s was not found", truncate(raw, 64))
	}
	return id.String(), nil
}

// snapshotChunk serves one page of a frozen snapshot (protocol 7.11).
func (h *Handler) snapshotChunk(c *gin.Context) error {
	r, err := h.req(c)
	if err != nil {
		return err
	}
	after, ok1 := queryInt(c, "after_row_ordinal", 0)
	maxRows, ok2 := queryInt(c, "max_rows", defaultRowsPerSnapshotPage)
	switch {
	case !ok1 || after < 0:
		return apiErr(http.StatusBadRequest, "snapshot_chunk_invalid", "after_row_ordinal must be an integer >= 0")
	case !ok2 || maxRows <= 0:
		return apiErr(http.StatusBadRequest, "snapshot_chunk_invalid", "max_rows must be an integer > 0")
	}
	maxRows = min(maxRows, maxRowsPerSnapshotPage)
	id, err := parseSnapshotID(c)
	if err != nil {
		return err
	}
	var owner string
	var seq, rowCount int64
	var expired bool
	var rowsTable *string
	var partRows []int64
	err = r.pool.QueryRow(c, `SELECT user_id, snapshot_bundle_seq, expires_at <= now(), row_count, rows_table, part_rows
		FROM `+r.t("_sync_snapshot_session")+` WHERE snapshot_id = $1`, id).Scan(&owner, &seq, &expired, &rowCount, &rowsTable, &partRows)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return apiErr(http.StatusNotFound, "snapshot_session_not_found", "snapshot session %s was not found", id)
	case err != nil:
		return fmt.Errorf("read snapshot session: %w", err)
	case owner != r.user:
		return apiErr(http.StatusForbidden, "snapshot_session_forbidden", "snapshot session %s belongs to another user", id)
	case expired:
		return apiErr(http.StatusGone, "snapshot_session_expired", "snapshot session %s has expired", id)
	}
	// Ordinals are dense, so the page is a bounded range and its size is
	// known: want rows, and has_more follows from row_count.
	want := max(0, min(maxRows, rowCount-after))
	w := getPageWriter()
	defer putPageWriter(w)
	w.WriteString(`{"snapshot_id":`)
	w.str(id)
	w.WriteString(`,"snapshot_bundle_seq":`)
	w.int(seq)
	w.WriteString(`,"rows":[`)
	var n int64
	if want > 0 {
		if n, err = readSnapshotPage(c, r, w, id, rowsTable, partRows, after, want); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "42P01" { // the session's table went with a concurrent delete
				return apiErr(http.StatusNotFound, "snapshot_session_not_found", "snapshot session %s was not found", id)
			}
			return fmt.Errorf("read snapshot rows: %w", err)
		}
	}
	if n != want {
		// Unlogged rows are gone after a crash or failover while the session
		// survived: end the session rather than serve a short snapshot.
		if _, err := r.pool.Exec(c, `UPDATE `+r.t("_sync_snapshot_session")+` SET expires_at = least(expires_at, now())
			WHERE snapshot_id = $1`, id); err != nil {
			return fmt.Errorf("expire lost snapshot session: %w", err)
		}
		return apiErr(http.StatusGone, "snapshot_session_expired", "snapshot session %s was lost by a server restart; create a new one", id)
	}
	w.WriteString(`],"next_row_ordinal":`)
	w.int(after + n)
	w.WriteString(`,"has_more":`)
	w.WriteString(strconv.FormatBool(after+n < rowCount))
	w.WriteByte('}')
	writeJSON(c, w)
	return nil
}

// readSnapshotPage writes the rows with ordinals after+1 … after+want of a
// session to w: from the shared table, the session's own table, or the
// parts of it those ordinals fall in (partRows: each part's row count).
func readSnapshotPage(c *gin.Context, r *reqCtx, w *jsonWriter, id string, rowsTable *string, partRows []int64, after, want int64) (int64, error) {
	if rowsTable == nil {
		return writeSnapshotRows(c, r, w, `SELECT table_name, key_text, row_version::text, payload FROM `+r.t("_sync_snapshot_row")+`
			WHERE snapshot_id = $1 AND row_ordinal > $2 AND row_ordinal <= $2 + $3 ORDER BY row_ordinal`, []any{id, after, want})
	}
	if len(partRows) == 0 {
		partRows = []int64{after + want} // one part: all of it
	}
	var n, offset int64
	for k, rows := range partRows {
		from, to := max(after, offset), min(after+want, offset+rows) // global ordinals (from, to]
		if from < to {
			m, err := writeSnapshotRows(c, r, w, `SELECT table_name, key_text, row_version::text, payload FROM `+r.t(snapshotPartTable(*rowsTable, k+1))+`
				WHERE row_ordinal > $1 AND row_ordinal <= $2 ORDER BY row_ordinal`, []any{from - offset, to - offset})
			n += m
			if err != nil {
				return n, err
			}
			if m != to-from {
				return n, nil // lost rows: the caller ends the session
			}
		}
		offset += rows
	}
	return n, nil
}

// writeSnapshotRows runs the page query q (table_name, key_text, row_version
// and payload, all as text) and writes its rows to w, comma-separated,
// straight from the wire buffers: a payload is served verbatim and the row
// object around it is assembled from bytes, with no per-row decoding or
// allocation.
func writeSnapshotRows(c *gin.Context, r *reqCtx, w *jsonWriter, q string, args []any) (int64, error) {
	rows, err := r.pool.Query(c, q, args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var n int64
	var prevTable []byte
	var head []byte // {"schema":..,"table":..,"key":{"<key column>": of prevTable
	for rows.Next() {
		v := rows.RawValues()
		if len(v) != 4 || v[0] == nil || v[1] == nil || v[2] == nil || v[3] == nil {
			return n, errors.New("unexpected snapshot row shape")
		}
		if head == nil || !bytes.Equal(prevTable, v[0]) {
			prevTable = append(prevTable[:0], v[0]...)
			head = snapshotRowHead(head[:0], r, string(v[0]))
		}
		if n > 0 || w.rows > 0 { // after the rows of an earlier part
			w.WriteByte(',')
		}
		w.Write(head)
		w.Write(appendJSONString(w.AvailableBuffer(), v[1]))
		w.WriteString(`},"row_version":`)
		w.Write(v[2])
		w.WriteString(`,"payload":`)
		w.Write(v[3])
		w.WriteByte('}')
		n++
	}
	w.rows += int(n)
	return n, rows.Err()
}

// snapshotRowHead appends the constant start of table's snapshot rows.
func snapshotRowHead(dst []byte, r *reqCtx, table string) []byte {
	keyCol := "id"
	if t := r.cat.byName[table]; t != nil {
		keyCol = t.keyCol
	}
	dst = append(dst, `{"schema":`...)
	dst = appendJSONString(dst, []byte(r.wire))
	dst = append(dst, `,"table":`...)
	dst = appendJSONString(dst, []byte(table))
	dst = append(dst, `,"key":{`...)
	dst = appendJSONString(dst, []byte(keyCol))
	return append(dst, ':')
}

// appendJSONString appends s as a JSON string, escaped as encoding/json
// escapes it (keys and names are nearly always plain ASCII: copied as is).
func appendJSONString(dst, s []byte) []byte {
	for _, b := range s {
		if b < 0x20 || b == '"' || b == '\\' || b == '<' || b == '>' || b == '&' || b >= 0x80 {
			out, _ := json.Marshal(string(s))
			return append(dst, out...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// pageWriters recycles page buffers: a 5,000-row page is about a megabyte.
var pageWriters = gosync.Pool{New: func() any { return &jsonWriter{} }}

func getPageWriter() *jsonWriter {
	w := pageWriters.Get().(*jsonWriter)
	w.Reset()
	w.rows = 0
	return w
}

func putPageWriter(w *jsonWriter) {
	if w.Cap() <= 8<<20 {
		pageWriters.Put(w)
	}
}

// deleteSnapshotSession drops a session (protocol 7.12); expired but not yet
// purged sessions are deleted too.
func (h *Handler) deleteSnapshotSession(c *gin.Context) error {
	r, err := h.req(c)
	if err != nil {
		return err
	}
	id, err := parseSnapshotID(c)
	if err != nil {
		return err
	}
	var owner string
	err = r.pool.QueryRow(c, `SELECT user_id FROM `+r.t("_sync_snapshot_session")+` WHERE snapshot_id = $1`, id).Scan(&owner)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return apiErr(http.StatusNotFound, "snapshot_session_not_found", "snapshot session %s was not found", id)
	case err != nil:
		return fmt.Errorf("read snapshot session: %w", err)
	case owner != r.user:
		return apiErr(http.StatusForbidden, "snapshot_session_forbidden", "snapshot session %s belongs to another user", id)
	}
	var n int64
	if err := r.pool.QueryRow(c, deleteSessionsSQL(r.schema, "snapshot", `snapshot_id = $1 AND user_id = $2`), id, r.user).Scan(&n); err != nil {
		return fmt.Errorf("delete snapshot session: %w", err)
	}
	if n == 0 {
		return apiErr(http.StatusNotFound, "snapshot_session_not_found", "snapshot session %s was not found", id)
	}
	c.Status(http.StatusNoContent)
	return nil
}
