package sync

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"
)

// rawJSON is JSON text written verbatim into responses.
type rawJSON = json.RawMessage

var readOnlyRR = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}

// queryInt parses an optional integer query parameter.
func queryInt(c *gin.Context, name string, def int64) (int64, bool) {
	v, ok := c.GetQuery(name)
	if !ok {
		return def, true
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

// jsonWriter builds protocol responses without reflection: rows can number
// in the hundreds of thousands.
type jsonWriter struct {
	bytes.Buffer
	rows int // rows written, for metrics and usage
}

func (w *jsonWriter) str(s string) {
	b, _ := json.Marshal(s)
	w.Write(b)
}

func (w *jsonWriter) int(n int64) { w.WriteString(strconv.FormatInt(n, 10)) }

// row writes one bundle or snapshot row object. op "" omits op (snapshot
// rows); a nil payload omits payload (DELETE rows).
func (w *jsonWriter) row(wire string, t *catTable, table, key, op string, version int64, payload []byte) {
	w.rows++
	keyCol := "id"
	if t != nil {
		keyCol = t.keyCol
	}
	w.WriteString(`{"schema":`)
	w.str(wire)
	w.WriteString(`,"table":`)
	w.str(table)
	w.WriteString(`,"key":{`)
	w.str(keyCol)
	w.WriteByte(':')
	w.str(key)
	w.WriteByte('}')
	if op != "" {
		w.WriteString(`,"op":`)
		w.str(op)
	}
	w.WriteString(`,"row_version":`)
	w.int(version)
	if payload != nil {
		w.WriteString(`,"payload":`)
		w.Write(payload)
	}
	w.WriteByte('}')
}

func (w *jsonWriter) bundleMeta(b *BundleResult) {
	w.WriteString(`"bundle_seq":`)
	w.int(b.BundleSeq)
	w.WriteString(`,"source_id":`)
	w.str(b.SourceID)
	w.WriteString(`,"source_bundle_id":`)
	w.int(b.SourceBundleID)
	w.WriteString(`,"row_count":`)
	w.int(b.RowCount)
	w.WriteString(`,"bundle_hash":`)
	w.str(b.BundleHash)
}

func writeJSON(c *gin.Context, w *jsonWriter) {
	noteOut(c, w.rows, w.Len())
	c.Data(http.StatusOK, "application/json; charset=utf-8", w.Bytes())
}

// committedBundleRows serves one page of a retained bundle (protocol 7.7).
func (h *Handler) committedBundleRows(c *gin.Context) error {
	r, err := h.req(c)
	if err != nil {
		return err
	}
	seq, err1 := strconv.ParseInt(c.Param("bundle_seq"), 10, 64)
	after, ok2 := queryInt(c, "after_row_ordinal", -1)
	_, hasAfter := c.GetQuery("after_row_ordinal")
	maxRows, ok3 := queryInt(c, "max_rows", defaultRowsPerBundleChunk)
	switch {
	case err1 != nil || seq <= 0:
		return apiErr(http.StatusBadRequest, "committed_bundle_chunk_invalid", "bundle_seq must be a positive integer")
	case !ok2 || hasAfter && after < 0:
		return apiErr(http.StatusBadRequest, "committed_bundle_chunk_invalid", "after_row_ordinal must be an integer >= 0")
	case !ok3 || maxRows <= 0:
		return apiErr(http.StatusBadRequest, "committed_bundle_chunk_invalid", "max_rows must be an integer > 0")
	}
	maxRows = min(maxRows, maxRowsPerBundleChunk)
	w := &jsonWriter{}
	err = inTx(c, r.pool, readOnlyRR, func(tx pgx.Tx) error {
		w.Reset()
		s, err := readScope(c, tx, r.schema, r.user)
		if err != nil {
			return err
		}
		if seq <= s.Floor {
			return apiErr(http.StatusConflict, "history_pruned", "bundle %d is below the retained floor %d", seq, s.Floor)
		}
		b := BundleResult{BundleSeq: seq}
		err = tx.QueryRow(c, `SELECT source_id, source_bundle_id, row_count, bundle_hash FROM `+r.t("_sync_bundle")+
			` WHERE user_id = $1 AND bundle_seq = $2`, r.user, seq).Scan(&b.SourceID, &b.SourceBundleID, &b.RowCount, &b.BundleHash)
		if errors.Is(err, pgx.ErrNoRows) {
			return apiErr(http.StatusNotFound, "committed_bundle_not_found", "bundle %d was not found", seq)
		}
		if err != nil {
			return fmt.Errorf("read bundle: %w", err)
		}
		rows, err := tx.Query(c, `SELECT row_ordinal, table_name, key_text, op, payload FROM `+r.t("_sync_bundle_row")+`
			WHERE user_id = $1 AND bundle_seq = $2 AND row_ordinal > $3 ORDER BY row_ordinal LIMIT $4`, r.user, seq, after, maxRows+1)
		if err != nil {
			return fmt.Errorf("read bundle rows: %w", err)
		}
		defer rows.Close()
		w.WriteByte('{')
		w.bundleMeta(&b)
		w.WriteString(`,"rows":[`)
		var n, last int64 = 0, max(after, 0)
		hasMore := false
		for rows.Next() {
			var ord int64
			var table, key, op string
			var payload []byte
			if err := rows.Scan(&ord, &table, &key, &op, &payload); err != nil {
				return fmt.Errorf("read bundle rows: %w", err)
			}
			if n == maxRows {
				hasMore = true
				break
			}
			if n > 0 {
				w.WriteByte(',')
			}
			w.row(r.wire, r.cat.byName[table], table, key, op, seq, payload)
			last = ord
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read bundle rows: %w", err)
		}
		if n == 0 && !hasAfter {
			last = 0
		}
		w.WriteString(`],"next_row_ordinal":`)
		w.int(last)
		w.WriteString(`,"has_more":`)
		w.WriteString(strconv.FormatBool(hasMore))
		w.WriteByte('}')
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(c, w)
	return nil
}

// scopeNotReady maps a non-initialized scope to its 409.
func scopeNotReady(s *scopeState) error {
	switch s.State {
	case stateInitialized:
		return nil
	case stateInitializing:
		return apiErr(http.StatusConflict, "scope_initializing", "user scope is being initialized by another source")
	}
	return apiErr(http.StatusConflict, "scope_uninitialized", "user scope is not initialized; connect first")
}

// pull serves complete bundles after a checkpoint (protocol 7.8).
func (h *Handler) pull(c *gin.Context) error {
	r, err := h.req(c)
	if err != nil {
		return err
	}
	after, ok1 := queryInt(c, "after_bundle_seq", 0)
	maxB, ok2 := queryInt(c, "max_bundles", defaultBundlesPerPull)
	target, ok3 := queryInt(c, "target_bundle_seq", 0)
	switch {
	case !ok1 || after < 0:
		return apiErr(http.StatusBadRequest, "invalid_request", "after_bundle_seq must be an integer >= 0")
	case !ok2 || maxB < 1 || maxB > maxBundlesPerPull:
		return apiErr(http.StatusBadRequest, "invalid_request", "max_bundles must be between 1 and %d", maxBundlesPerPull)
	case !ok3 || target < 0:
		return apiErr(http.StatusBadRequest, "invalid_request", "target_bundle_seq must be an integer >= 0")
	}
	w := &jsonWriter{}
	err = inTx(c, r.pool, readOnlyRR, func(tx pgx.Tx) error {
		w.Reset()
		s, err := readScope(c, tx, r.schema, r.user)
		if err != nil {
			return err
		}
		if err := scopeNotReady(s); err != nil {
			return err
		}
		// D4: a zero checkpoint below a raised floor is pruned too.
		if s.Floor > 0 && after <= s.Floor || target > 0 && target <= s.Floor {
			return apiErr(http.StatusConflict, "history_pruned", "checkpoint is at or below the retained floor %d", s.Floor)
		}
		stable := s.Latest
		if target > 0 {
			stable = target
		}
		w.WriteString(`{"stable_bundle_seq":`)
		w.int(stable)
		w.WriteString(`,"bundles":[`)
		if after >= stable || after >= s.Latest {
			w.WriteString(`],"has_more":false}`)
			return nil
		}
		hi := min(stable, after+maxB, s.Latest)
		rows, err := tx.Query(c, `SELECT b.bundle_seq, b.source_id, b.source_bundle_id, b.row_count, b.bundle_hash,
				r.table_name, r.key_text, r.op, r.payload
			FROM `+r.t("_sync_bundle")+` b JOIN `+r.t("_sync_bundle_row")+` r ON r.user_id = b.user_id AND r.bundle_seq = b.bundle_seq
			WHERE b.user_id = $1 AND b.bundle_seq > $2 AND b.bundle_seq <= $3
			ORDER BY b.bundle_seq, r.row_ordinal`, r.user, after, hi)
		if err != nil {
			return fmt.Errorf("read bundles: %w", err)
		}
		defer rows.Close()
		var cur BundleResult
		var last int64 = after
		first := true
		for rows.Next() {
			var b BundleResult
			var table, key, op string
			var payload []byte
			if err := rows.Scan(&b.BundleSeq, &b.SourceID, &b.SourceBundleID, &b.RowCount, &b.BundleHash, &table, &key, &op, &payload); err != nil {
				return fmt.Errorf("read bundles: %w", err)
			}
			if b.BundleSeq != cur.BundleSeq {
				if cur.BundleSeq != 0 {
					w.WriteString(`]},`)
				}
				cur = b
				w.WriteByte('{')
				w.bundleMeta(&b)
				w.WriteString(`,"rows":[`)
				first = true
				last = b.BundleSeq
			}
			if !first {
				w.WriteByte(',')
			}
			first = false
			w.row(r.wire, r.cat.byName[table], table, key, op, b.BundleSeq, payload)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read bundles: %w", err)
		}
		if cur.BundleSeq != 0 {
			w.WriteString(`]}`)
		}
		if last != hi {
			// Bundles above the floor are gap-free up to latest (8.4); a hole
			// means the retained history is damaged, never a short page.
			return fmt.Errorf("pull of user bundles (%d, %d] ended at %d", after, hi, last)
		}
		w.WriteString(`],"has_more":`)
		w.WriteString(strconv.FormatBool(hi < min(stable, s.Latest)))
		w.WriteByte('}')
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(c, w)
	return nil
}
