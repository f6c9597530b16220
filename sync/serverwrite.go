package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"

	"github.com/syncplane/syncplane/web/server"
)

// WriteOp is one change of a server-originated write (protocol 11).
type WriteOp struct {
	// Table is a registered table name.
	Table string `json:"table"`
	// Op is "upsert" (insert, or assign the supplied columns of an existing
	// row) or "delete".
	Op string `json:"op"`
	// Key is the row's sync key value.
	Key string `json:"key"`
	// Payload holds the columns to write for an upsert (wire encoding: blobs
	// as base64); the key column may be omitted.
	Payload json.RawMessage `json:"payload,omitempty"`
}

// writeCode is the error code of rejected server-originated writes.
const writeCode = "write_invalid"

// ServerWrite applies ops for user scope.UserID as writer writerID in one
// transaction, captured as exactly one bundle (protocol 11). Errors meant for
// the caller are *server.Error.
func (h *Handler) ServerWrite(ctx context.Context, scope *server.SyncScope, writerID string, ops []WriteOp) (BundleResult, error) {
	if scope == nil || scope.Tenant == nil {
		return BundleResult{}, errors.New("server write without a tenant")
	}
	cat := catalogFor(scope.Schema)
	wire := scope.Tenant.WireSchema
	type prepared struct {
		t       *catTable
		delete  bool
		key     string
		cols    []string
		payload []byte
	}
	if len(ops) == 0 {
		return BundleResult{}, apiErr(http.StatusBadRequest, writeCode, "a write needs at least one op")
	}
	preps := make([]prepared, 0, len(ops))
	for i, op := range ops {
		t, cerr := normalizeTarget(wire, op.Table, wire, cat)
		if cerr != nil {
			return BundleResult{}, apiErr(http.StatusBadRequest, writeCode, "ops[%d]: %s", i, cerr.Message)
		}
		kb, _ := json.Marshal(map[string]string{t.keyCol: op.Key})
		key, cerr := parseKey(kb, wire, t)
		if cerr != nil {
			return BundleResult{}, apiErr(http.StatusBadRequest, writeCode, "ops[%d]: %s", i, cerr.Message)
		}
		switch strings.ToLower(strings.TrimSpace(op.Op)) {
		case "delete":
			preps = append(preps, prepared{t: t, delete: true, key: key})
		case "upsert":
			if len(op.Payload) == 0 || string(op.Payload) == "null" {
				op.Payload = json.RawMessage(`{}`)
			}
			payload, cols, cerr := normalizePayload(op.Payload, wire, t, key)
			if cerr != nil {
				return BundleResult{}, apiErr(http.StatusBadRequest, writeCode, "ops[%d]: %s", i, cerr.Message)
			}
			preps = append(preps, prepared{t: t, key: key, cols: strings.Split(cols, ","), payload: payload})
		default:
			return BundleResult{}, apiErr(http.StatusBadRequest, writeCode, "ops[%d]: op must be upsert or delete", i)
		}
	}
	return h.ServerWriteTx(ctx, scope, writerID, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, p := range preps {
			tbl := ident(scope.Tenant.SchemaName(), p.t.name)
			key := col(p.t.keyCol)
			if p.delete {
				b.Queue(`DELETE FROM `+tbl+` WHERE _sync_scope_id = $1 AND `+key+` = $2`+p.t.keyCast(), scope.UserID, p.key)
				continue
			}
			names := make([]string, len(p.cols))
			sel := make([]string, len(p.cols))
			for i, n := range p.cols {
				names[i], sel[i] = col(n), "x."+col(n)
			}
			// Update the supplied columns of an existing row, else insert:
			// NOT NULL is checked before ON CONFLICT, so a partial upsert
			// cannot be an INSERT ... ON CONFLICT. The scope lock keeps the
			// key from appearing in between.
			var update string
			if len(p.cols) > 1 {
				assign := make([]string, 0, len(p.cols))
				for _, n := range p.cols {
					if n != p.t.keyCol {
						assign = append(assign, col(n)+" = x."+col(n))
					}
				}
				update = `UPDATE ` + tbl + ` AS t SET ` + strings.Join(assign, ", ") + ` FROM jsonb_populate_record(NULL::` + tbl + `, $1::jsonb) x
					WHERE t._sync_scope_id = $2 AND t.` + key + ` = x.` + key + ` RETURNING 1`
			} else {
				update = `SELECT 1 FROM ` + tbl + ` t, jsonb_populate_record(NULL::` + tbl + `, $1::jsonb) x
					WHERE t._sync_scope_id = $2 AND t.` + key + ` = x.` + key
			}
			b.Queue(`WITH u AS (`+update+`) INSERT INTO `+tbl+` (`+strings.Join(names, ", ")+`) SELECT `+strings.Join(sel, ", ")+
				` FROM jsonb_populate_record(NULL::`+tbl+`, $1::jsonb) x WHERE NOT EXISTS (SELECT 1 FROM u)`, string(p.payload), scope.UserID)
		}
		return tx.SendBatch(ctx, b).Close()
	})
}

// ServerWriteTx runs fn in a transaction bound to (user, writerID, next
// source_bundle_id) and seals everything fn wrote to registered tables of
// that user into one bundle (protocol 11). fn may touch several tables and
// rely on cascades; writes to other users' rows are refused by the
// database. An uninitialized scope becomes initialized by the writer; an
// initializing one fails with 409 scope_initializing.
func (h *Handler) ServerWriteTx(ctx context.Context, scope *server.SyncScope, writerID string, fn func(tx pgx.Tx) error) (BundleResult, error) {
	writerID = strings.TrimSpace(writerID)
	if writerID == "" || len(writerID) > maxSourceIDBytes {
		return BundleResult{}, apiErr(http.StatusBadRequest, writeCode, "writer id must be 1-%d bytes", maxSourceIDBytes)
	}
	if scope.UserID == "" {
		return BundleResult{}, apiErr(http.StatusBadRequest, writeCode, "user id is required")
	}
	schema := scope.Tenant.SchemaName()
	var res BundleResult
	err := inTx(ctx, scope.Pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		s, err := lockScope(ctx, tx, schema, scope.UserID)
		if err != nil {
			return err
		}
		if s.State == stateInitializing {
			return apiErr(http.StatusConflict, "scope_initializing", "user scope is being initialized by a device")
		}
		src, err := scanSource(tx.QueryRow(ctx, fmt.Sprintf(selectSourceSQL, ident(schema, "_sync_source")), scope.UserID, writerID))
		if err != nil {
			return err
		}
		if src.State == "retired" {
			return sourceRetiredErr(scope.UserID, writerID, src.ReplacedBy)
		}
		sbid := src.MaxSBID + 1
		if err := bindTx(ctx, tx, scope.UserID, writerID, sbid, s.Latest+1); err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			return commitError(err, writeCode)
		}
		res, err = finishBundle(ctx, tx, bundleSpec{schema: schema, wire: scope.Tenant.WireSchema, user: scope.UserID,
			source: writerID, sbid: sbid, scope: s, cat: catalogFor(scope.Schema), retained: int64(scope.Tenant.RetainedBundles),
			tenant: scope.Tenant, limits: scope.Limits})
		if errors.Is(err, errNoEffects) {
			return apiErr(http.StatusBadRequest, writeCode, "the write produced no captured business-table effects")
		}
		return err
	})
	if err != nil {
		return BundleResult{}, commitError(err, writeCode)
	}
	h.publish(scope.Pool, schema, scope.UserID, res)
	return res, nil
}

type serverWriteRequest struct {
	WriterID string    `json:"writer_id"`
	Ops      []WriteOp `json:"ops"`
}

// RegisterServerWrites mounts POST /v1/users/:user_id/writes on r, which
// must authenticate the tenant's secret key and set the request's
// SyncScope (UserID is taken from the path).
func (h *Handler) RegisterServerWrites(r gin.IRouter) {
	r.POST("/v1/users/:user_id/writes", server.Handle("server_write_failed", func(c *gin.Context) error {
		sc := server.ScopeFrom(c)
		if sc == nil || sc.Tenant == nil || sc.Pool == nil {
			return errors.New("server write route without a resolved tenant")
		}
		body, err := h.readBody(c)
		if err != nil {
			return err
		}
		var req serverWriteRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return apiErr(http.StatusBadRequest, "invalid_request", "request body is not a valid write: %s", jsonProblem(err))
		}
		if req.WriterID == "" {
			req.WriterID = "server:api"
		}
		scope := *sc
		scope.UserID = c.Param("user_id")
		res, err := h.ServerWrite(c, &scope, req.WriterID, req.Ops)
		if err != nil {
			h.cfg.Metrics.ObserveError(string(scope.Tenant.Slug), errorCode(err))
			return err
		}
		h.cfg.Metrics.ObserveCommit(string(scope.Tenant.Slug), int(res.RowCount))
		if u := h.cfg.Usage; u != nil {
			u.Pushed(scope.Tenant.ID, 1, res.RowCount)
		}
		c.JSON(http.StatusOK, res)
		return nil
	}))
}
