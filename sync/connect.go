package sync

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

type connectRequest struct {
	HasLocalPendingRows bool `json:"has_local_pending_rows"`
}

type connectResponse struct {
	Resolution        string `json:"resolution"`
	InitializationID  string `json:"initialization_id,omitempty"`
	LeaseExpiresAt    string `json:"lease_expires_at,omitempty"`
	RetryAfterSeconds int    `json:"retry_after_seconds,omitempty"`
}

// connect resolves first authority for the user scope (protocol 7.2).
func (h *Handler) connect(c *gin.Context) error {
	r, err := h.req(c)
	if err != nil {
		return err
	}
	body, err := h.readBody(c)
	if err != nil {
		return err
	}
	var req connectRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return apiErr(http.StatusBadRequest, "invalid_request", "request body is not a valid connect request: %s", jsonProblem(err))
	}
	ttl := h.cfg.InitializationLeaseTTL
	var resp connectResponse
	err = inTx(c, r.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		s, err := lockScope(c, tx, r.schema, r.user)
		if err != nil {
			return err
		}
		// A new device beyond the tenant's device quota is refused here,
		// before it seeds or hydrates anything (a Syncplane extension).
		if err := checkDeviceQuota(c, tx, r.schema, r.scope.Tenant, r.scope.Limits, r.user, r.source, false); err != nil {
			return err
		}
		tbl := r.t("_sync_scope")
		switch {
		case s.State == stateInitialized:
			resp = connectResponse{Resolution: "remote_authoritative"}
			return nil
		case s.State == stateInitializing && s.Initializer != r.source:
			secs := int(math.Ceil(s.Lease.Sub(s.Now).Seconds()))
			resp = connectResponse{Resolution: "retry_later", RetryAfterSeconds: max(1, secs), LeaseExpiresAt: rfc3339(s.Lease)}
			return nil
		case !req.HasLocalPendingRows:
			// Uninitialized, or initializing by this source: empty start.
			resp = connectResponse{Resolution: "initialize_empty"}
			_, err := tx.Exec(c, `UPDATE `+tbl+` SET state = 'INITIALIZED', initializer_source = NULL,
				initialization_id = NULL, lease_expires_at = NULL, initialized_by = $2, updated_at = now()
				WHERE user_id = $1`, r.user, r.source)
			return err
		default:
			id := s.InitID
			if s.State != stateInitializing {
				id = uuid.NewString()
			}
			var lease = s.Now.Add(ttl)
			_, err := tx.Exec(c, `UPDATE `+tbl+` SET state = 'INITIALIZING', initializer_source = $2,
				initialization_id = $3, lease_expires_at = $4, updated_at = now() WHERE user_id = $1`,
				r.user, r.source, id, lease)
			resp = connectResponse{Resolution: "initialize_local", InitializationID: id, LeaseExpiresAt: rfc3339(lease)}
			return err
		}
	})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, resp)
	return nil
}

// readBody reads the request body within the configured limit.
func (h *Handler) readBody(c *gin.Context) ([]byte, error) {
	rd := http.MaxBytesReader(c.Writer, c.Request.Body, h.cfg.MaxBodyBytes)
	body, err := io.ReadAll(rd)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, apiErr(http.StatusRequestEntityTooLarge, "payload_too_large", "request body exceeds %d bytes", h.cfg.MaxBodyBytes)
		}
		return nil, apiErr(http.StatusBadRequest, "invalid_request", "request body could not be read")
	}
	return body, nil
}
