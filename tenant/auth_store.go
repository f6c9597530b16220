package tenant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// SetAuth replaces a tenant's end-user token settings after validating them.
// The audit log records the redacted settings only.
func (s *Store) SetAuth(ctx context.Context, tenantID int64, a AuthSettings, by Actor) error {
	if err := a.Validate(); err != nil {
		return &ValidationError{Field: "auth", Message: err.Error()}
	}
	doc, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode auth settings: %w", err)
	}
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO syncplane.tenant_auth (tenant_id, settings)
			SELECT id, $2 FROM syncplane.tenants WHERE id = $1 AND state IN ('active', 'suspended')
			ON CONFLICT (tenant_id) DO UPDATE SET settings = EXCLUDED.settings, updated_at = now()`, tenantID, doc)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		return s.auditTx(ctx, tx, tenantID, by, "auth.set", string(a.Mode), a.Redacted())
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("set auth settings: %w", err)
	}
	return err
}

// Auth returns a tenant's end-user token settings and when they last
// changed; ErrNotFound when the tenant has none.
func (s *Store) Auth(ctx context.Context, tenantID int64) (*AuthSettings, time.Time, error) {
	var doc []byte
	var updated time.Time
	err := s.db.QueryRow(ctx, `SELECT settings, updated_at FROM syncplane.tenant_auth WHERE tenant_id = $1`, tenantID).
		Scan(&doc, &updated)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, time.Time{}, ErrNotFound
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("read auth settings: %w", err)
	}
	var a AuthSettings
	if err := json.Unmarshal(doc, &a); err != nil {
		return nil, time.Time{}, fmt.Errorf("decode auth settings: %w", err)
	}
	return &a, updated, nil
}
