package sync

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/syncplane/syncplane/web/server"
)

// RetireSource retires a source of scope.UserID administratively (protocol
// 10, "Administrative retire"): the source is retired and a freshly
// generated replacement id is reserved, so the device's rotation (which
// adopts replaced_by_source_id) succeeds. Retiring an already retired source
// returns its recorded replacement. Serialized with the user's mutations.
func (h *Handler) RetireSource(ctx context.Context, scope *server.SyncScope, sourceID string) (replacement string, err error) {
	if scope == nil || scope.Tenant == nil || scope.UserID == "" || sourceID == "" {
		return "", apiErr(http.StatusBadRequest, "invalid_request", "user and source are required")
	}
	schema := scope.Tenant.SchemaName()
	err = inTx(ctx, scope.Pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if _, err := lockScope(ctx, tx, schema, scope.UserID); err != nil {
			return err
		}
		src, err := scanSource(tx.QueryRow(ctx, fmt.Sprintf(selectSourceSQL, ident(schema, "_sync_source"))+" FOR UPDATE", scope.UserID, sourceID))
		if err != nil {
			return err
		}
		if src.State == "retired" {
			replacement = src.ReplacedBy
			return nil
		}
		replacement = uuid.NewString()
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO `+ident(schema, "_sync_source")+` (user_id, source_id, state) VALUES ($1, $2, 'reserved')`, scope.UserID, replacement)
		b.Queue(`INSERT INTO `+ident(schema, "_sync_source")+` (user_id, source_id, state, replaced_by_source_id, retire_reason)
			VALUES ($1, $2, 'retired', $3, 'administrative')
			ON CONFLICT (user_id, source_id) DO UPDATE SET state = 'retired', replaced_by_source_id = EXCLUDED.replaced_by_source_id,
				retire_reason = EXCLUDED.retire_reason, last_seen_at = now()`, scope.UserID, sourceID, replacement)
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		var se *server.Error
		if errors.As(err, &se) {
			return "", err
		}
		return "", fmt.Errorf("retire source: %w", err)
	}
	return replacement, nil
}
