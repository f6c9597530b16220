package sync

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/syncplane/syncplane/web/server"
)

type pushCreateRequest struct {
	SourceBundleID   int64   `json:"source_bundle_id"`
	PlannedRowCount  int64   `json:"planned_row_count"`
	InitializationID *string `json:"initialization_id"`
}

type pushStagingResponse struct {
	PushID                 string `json:"push_id"`
	Status                 string `json:"status"`
	PlannedRowCount        int64  `json:"planned_row_count"`
	NextExpectedRowOrdinal int64  `json:"next_expected_row_ordinal"`
}

type pushCommittedResponse struct {
	Status string `json:"status"`
	BundleResult
}

// sourceRow is a _sync_source record (absent: Known false).
type sourceRow struct {
	Known      bool
	State      string
	MaxSBID    int64
	ReplacedBy string
}

func sourceRetiredErr(user, source, replacedBy string) *server.Error {
	msg := fmt.Sprintf("source %s for user %s was retired", source, user)
	extra := map[string]any{"source_id": source}
	if replacedBy != "" {
		msg += " and replaced by " + replacedBy
		extra["replaced_by_source_id"] = replacedBy
	}
	return &server.Error{Status: http.StatusConflict, Code: "source_retired", Message: msg, Extra: extra}
}

const selectSourceSQL = `SELECT state, max_source_bundle_id, coalesce(replaced_by_source_id, '') FROM %s WHERE user_id = $1 AND source_id = $2`

func scanSource(row pgx.Row) (sourceRow, error) {
	var s sourceRow
	err := row.Scan(&s.State, &s.MaxSBID, &s.ReplacedBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return sourceRow{}, nil
	}
	if err != nil {
		return sourceRow{}, fmt.Errorf("read source: %w", err)
	}
	s.Known = true
	return s, nil
}

// createPushSession opens a staging session (protocol 7.3).
func (h *Handler) createPushSession(c *gin.Context) error {
	r, err := h.req(c)
	if err != nil {
		return err
	}
	body, err := h.readBody(c)
	if err != nil {
		return err
	}
	var req pushCreateRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return apiErr(http.StatusBadRequest, "invalid_request", "request body is not a valid push session request: %s", jsonProblem(err))
	}
	if req.SourceBundleID <= 0 {
		return apiErr(http.StatusBadRequest, "push_session_invalid", "source_bundle_id must be > 0")
	}
	if req.PlannedRowCount <= 0 {
		return apiErr(http.StatusBadRequest, "push_session_invalid", "planned_row_count must be > 0")
	}
	initID := ""
	if req.InitializationID != nil {
		initID = strings.TrimSpace(*req.InitializationID)
	}
	var out any
	err = inTx(c, r.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		// Lock the scope, read the tuple's bundle and the source, and purge a
		// few expired sessions (12.2; the sweeper does the rest): one round
		// trip.
		var committed *BundleResult
		var src sourceRow
		s, err := lockScopeThen(c, tx, r.schema, r.user, func(b *pgx.Batch) {
			b.Queue(`SELECT bundle_seq, row_count, bundle_hash FROM `+r.t("_sync_bundle")+`
				WHERE user_id = $1 AND source_id = $2 AND source_bundle_id = $3`, r.user, r.source, req.SourceBundleID)
			b.Queue(fmt.Sprintf(selectSourceSQL, r.t("_sync_source")), r.user, r.source)
			b.Queue(deleteSessionsSQL(r.schema, "push", expiredWhere("push_id", 10)))
		}, func(res pgx.BatchResults) error {
			var bc BundleResult
			err := res.QueryRow().Scan(&bc.BundleSeq, &bc.RowCount, &bc.BundleHash)
			switch {
			case err == nil:
				bc.SourceID, bc.SourceBundleID = r.source, req.SourceBundleID
				committed = &bc
			case !errors.Is(err, pgx.ErrNoRows):
				return fmt.Errorf("read committed tuple: %w", err)
			}
			if src, err = scanSource(res.QueryRow()); err != nil {
				return err
			}
			if _, err := res.Exec(); err != nil {
				return fmt.Errorf("purge expired sessions: %w", err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if committed != nil && committed.BundleSeq <= s.Floor {
			committed = nil // pruned: no longer retained (8.6)
		}

		switch s.State {
		case stateUninitialized:
			if initID != "" {
				return apiErr(http.StatusGone, "initialization_expired", "initialization %s has expired", initID)
			}
			return apiErr(http.StatusConflict, "scope_uninitialized", "user scope is not initialized; connect first")
		case stateInitializing:
			if initID == "" {
				return apiErr(http.StatusBadRequest, "push_session_invalid", "initialization_id is required while the scope is initializing")
			}
			if s.Initializer != r.source || s.InitID != initID {
				return apiErr(http.StatusConflict, "initialization_stale", "initialization %s is not held by this source", initID)
			}
			if _, err := tx.Exec(c, `UPDATE `+r.t("_sync_scope")+` SET lease_expires_at = $2, updated_at = now() WHERE user_id = $1`,
				r.user, s.Now.Add(h.cfg.InitializationLeaseTTL)); err != nil {
				return fmt.Errorf("extend lease: %w", err)
			}
		case stateInitialized:
			// D3: a seed push whose commit response was lost is confirmed.
			if initID != "" && committed == nil {
				return apiErr(http.StatusBadRequest, "push_session_invalid", "initialization_id must be absent once the scope is initialized")
			}
		}
		if committed != nil {
			out = pushCommittedResponse{Status: "already_committed", BundleResult: *committed}
			return nil
		}
		if src.State == "retired" {
			return sourceRetiredErr(r.user, r.source, src.ReplacedBy)
		}
		expected := src.MaxSBID + 1
		if req.SourceBundleID < expected {
			return apiErr(http.StatusConflict, "history_pruned",
				"source_bundle_id %d of source %s was committed and is no longer retained", req.SourceBundleID, r.source)
		}
		if req.SourceBundleID > expected {
			return apiErr(http.StatusConflict, "source_sequence_out_of_order",
				"source %s expected source_bundle_id %d, got %d", r.source, expected, req.SourceBundleID)
		}
		pushID := uuid.NewString()
		var sessInit any
		if initID != "" {
			sessInit = initID
		}
		b := &pgx.Batch{}
		b.Queue(deleteSessionsSQL(r.schema, "push", `user_id = $1 AND source_id = $2 AND source_bundle_id = $3`),
			r.user, r.source, req.SourceBundleID)
		b.Queue(`INSERT INTO `+r.t("_sync_push_session")+` (push_id, user_id, source_id, source_bundle_id, planned_row_count,
			initialization_id, expires_at) VALUES ($1, $2, $3, $4, $5, $6, now() + $7::interval)`,
			pushID, r.user, r.source, req.SourceBundleID, req.PlannedRowCount, sessInit, h.cfg.PushSessionTTL)
		if err := tx.SendBatch(c, b).Close(); err != nil {
			return fmt.Errorf("create push session: %w", err)
		}
		out = pushStagingResponse{PushID: pushID, Status: "staging", PlannedRowCount: req.PlannedRowCount}
		return nil
	})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, out)
	return nil
}

// pushSession is a _sync_push_session row.
type pushSession struct {
	ID       string
	User     string
	Source   string
	SBID     int64
	Planned  int64
	Next     int64
	InitID   string
	Expired  bool
	NowAtRow time.Time
}

const selectSessionSQL = `SELECT user_id, source_id, source_bundle_id, planned_row_count, next_row_ordinal,
	coalesce(initialization_id::text, ''), expires_at <= now() FROM %s WHERE push_id = $1 FOR UPDATE`

// checkSession applies the session checks shared by chunk, commit and
// delete (7.4 step 3): 404, 403, 410.
func checkSession(r *reqCtx, id string, row pgx.Row) (*pushSession, error) {
	ps := &pushSession{ID: id}
	err := row.Scan(&ps.User, &ps.Source, &ps.SBID, &ps.Planned, &ps.Next, &ps.InitID, &ps.Expired)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, apiErr(http.StatusNotFound, "push_session_not_found", "push session %s was not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("read push session: %w", err)
	}
	if ps.User != r.user {
		return nil, apiErr(http.StatusForbidden, "push_session_forbidden", "push session %s belongs to another user", id)
	}
	if ps.Expired {
		return nil, apiErr(http.StatusGone, "push_session_expired", "push session %s has expired", id)
	}
	return ps, nil
}

// parsePushID returns the canonical id or a 404.
func parsePushID(c *gin.Context) (string, error) {
	raw := c.Param("push_id")
	id, err := uuid.Parse(raw)
	if err != nil || !isCanonicalUUID(strings.ToLower(raw)) {
		return "", apiErr(http.StatusNotFound, "push_session_not_found", "push session %s was not found", truncate(raw, 64))
	}
	return id.String(), nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// lockScopeAndSession locks the caller's scope and reads a push session in
// one round trip.
func lockScopeAndSession(c *gin.Context, tx pgx.Tx, r *reqCtx, id string) (*scopeState, *pushSession, error) {
	var ps *pushSession
	s, err := lockScopeThen(c, tx, r.schema, r.user, func(b *pgx.Batch) {
		b.Queue(fmt.Sprintf(selectSessionSQL, r.t("_sync_push_session")), id)
	}, func(br pgx.BatchResults) error {
		var err error
		ps, err = checkSession(r, id, br.QueryRow())
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return s, ps, nil
}

// checkSeedLease is 7.4 step 4: a seed session's lease must still be held
// by its source with its id.
func checkSeedLease(s *scopeState, ps *pushSession) error {
	if ps.InitID == "" {
		return nil
	}
	if s.State != stateInitializing || s.Initializer != ps.Source || s.InitID != ps.InitID {
		return apiErr(http.StatusConflict, "initialization_stale", "initialization %s is no longer held by this session", ps.InitID)
	}
	return nil
}

type chunkResponse struct {
	PushID                 string `json:"push_id"`
	NextExpectedRowOrdinal int64  `json:"next_expected_row_ordinal"`
}

// uploadChunk stages one chunk of rows (protocol 7.4).
func (h *Handler) uploadChunk(c *gin.Context) error {
	r, err := h.req(c)
	if err != nil {
		return err
	}
	body, err := h.readBody(c)
	if err != nil {
		return err
	}
	start, rows, cerr := decodeChunk(body, r.wire, r.cat, maxRowsPerPushChunk)
	if cerr != nil {
		return apiErr(http.StatusBadRequest, cerr.Code, "%s", cerr.Message)
	}
	if err := checkChunkQuota(r.scope, len(rows), len(body)); err != nil {
		return err
	}
	id, err := parsePushID(c)
	if err != nil {
		return err
	}
	var next int64
	err = inTx(c, r.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		s, ps, err := lockScopeAndSession(c, tx, r, id)
		if err != nil {
			return err
		}
		if err := checkSeedLease(s, ps); err != nil {
			return err
		}
		if start != ps.Next {
			return apiErr(http.StatusConflict, "push_chunk_out_of_order", "push session %s expected start_row_ordinal %d, got %d", id, ps.Next, start)
		}
		if start+int64(len(rows)) > ps.Planned {
			return apiErr(http.StatusBadRequest, "push_chunk_invalid", "chunk exceeds planned_row_count")
		}
		if _, err := tx.CopyFrom(c, pgx.Identifier{r.schema, "_sync_push_run"},
			[]string{"push_id", "first_ordinal", "row_count", "table_name", "op", "cols", "keys", "bases", "payloads"},
			pgx.CopyFromRows(stageRuns(id, start, rows))); err != nil {
			// A value PostgreSQL cannot store (NUL characters, invalid
			// UTF-8) is the chunk's fault, not the server's.
			var pe *pgconn.PgError
			if errors.As(err, &pe) && strings.HasPrefix(pe.Code, "22") {
				return &server.Error{Status: http.StatusBadRequest, Code: "push_chunk_invalid", Err: err,
					Message: "chunk contains a value that cannot be stored (SQLSTATE " + pe.Code + ")"}
			}
			return fmt.Errorf("stage rows: %w", err)
		}
		next = start + int64(len(rows))
		b := &pgx.Batch{}
		b.Queue(`UPDATE `+r.t("_sync_push_session")+` SET next_row_ordinal = $2, expires_at = now() + $3::interval WHERE push_id = $1`,
			id, next, h.cfg.PushSessionTTL)
		if ps.InitID != "" {
			b.Queue(`UPDATE `+r.t("_sync_scope")+` SET lease_expires_at = now() + $2::interval WHERE user_id = $1`,
				r.user, h.cfg.InitializationLeaseTTL)
		}
		if err := tx.SendBatch(c, b).Close(); err != nil {
			return fmt.Errorf("advance push session: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	noteIn(c, len(rows), len(body))
	c.JSON(http.StatusOK, chunkResponse{PushID: id, NextExpectedRowOrdinal: next})
	return nil
}

// stageRuns groups a chunk's rows (ordinals start, start+1, ...) into
// _sync_push_run records: one per run of consecutive rows with the same
// table, op and column set, with the run's keys, base versions and
// after-images as arrays.
func stageRuns(pushID string, start int64, rows []stagedRow) [][]any {
	var out [][]any
	for i := 0; i < len(rows); {
		first := rows[i]
		j := i + 1
		for j < len(rows) && rows[j].Table == first.Table && rows[j].Op == first.Op && rows[j].Cols == first.Cols {
			j++
		}
		keys := make([]string, 0, j-i)
		bases := make([]int64, 0, j-i)
		var payloads []byte
		if first.Op != opDelete {
			size := 2
			for _, row := range rows[i:j] {
				size += len(row.Payload) + 1
			}
			payloads = make([]byte, 0, size)
			payloads = append(payloads, '[')
		}
		for k, row := range rows[i:j] {
			keys = append(keys, row.KeyText)
			bases = append(bases, row.Base)
			if payloads != nil {
				if k > 0 {
					payloads = append(payloads, ',')
				}
				payloads = append(payloads, row.Payload...)
			}
		}
		var p any
		if payloads != nil {
			p = append(payloads, ']')
		}
		out = append(out, []any{pushID, start + int64(i), int32(j - i), first.Table, first.Op, first.Cols, keys, bases, p})
		i = j
	}
	return out
}

// deletePushSession abandons an uncommitted session (protocol 7.6).
func (h *Handler) deletePushSession(c *gin.Context) error {
	r, err := h.req(c)
	if err != nil {
		return err
	}
	id, err := parsePushID(c)
	if err != nil {
		return err
	}
	err = inTx(c, r.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if _, _, err := lockScopeAndSession(c, tx, r, id); err != nil {
			return err
		}
		_, err := tx.Exec(c, deleteSessionsSQL(r.schema, "push", `push_id = $1`), id)
		return err
	})
	if err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}
