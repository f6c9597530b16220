package tenant

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// CreateKey issues a new API key for a tenant. The returned secret is the
// only time the full key exists outside its holder; only its hash is stored.
func (s *Store) CreateKey(ctx context.Context, tenantID int64, kind KeyKind, label string, by Actor) (string, *APIKey, error) {
	if _, err := ParseKeyKind(string(kind)); err != nil {
		return "", nil, err
	}
	if len(label) > 100 {
		return "", nil, &ValidationError{Field: "label", Message: "label must be at most 100 characters"}
	}
	secret, err := NewKeySecret(kind)
	if err != nil {
		return "", nil, err
	}
	k := &APIKey{TenantID: tenantID, Kind: kind, Label: label, Display: KeyDisplay(secret)}
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO syncplane.api_keys (tenant_id, kind, label, hash, display)
			SELECT id, $2, $3, $4, $5 FROM syncplane.tenants WHERE id = $1 AND state IN ('active', 'suspended')
			RETURNING id, created_at`, tenantID, string(kind), label, KeyHash(secret), k.Display).Scan(&k.ID, &k.CreatedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, tenantID, by, "key.create", k.Display, map[string]string{"kind": string(kind), "label": label})
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return "", nil, err
		}
		return "", nil, fmt.Errorf("create key: %w", err)
	}
	return secret, k, nil
}

// ListKeys lists a tenant's keys, newest first, revoked ones included.
func (s *Store) ListKeys(ctx context.Context, tenantID int64) ([]APIKey, error) {
	rows, err := s.db.Query(ctx, `SELECT id, tenant_id, kind, label, display, created_at, last_used_at, revoked_at
		FROM syncplane.api_keys WHERE tenant_id = $1 ORDER BY id DESC`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (APIKey, error) {
		var k APIKey
		var kind string
		err := r.Scan(&k.ID, &k.TenantID, &kind, &k.Label, &k.Display, &k.CreatedAt, &k.LastUsedAt, &k.RevokedAt)
		k.Kind = KeyKind(kind)
		return k, err
	})
}

// RevokeKey revokes a key; every replica refuses it within a second.
func (s *Store) RevokeKey(ctx context.Context, tenantID, keyID int64, by Actor) error {
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var display string
		err := tx.QueryRow(ctx, `UPDATE syncplane.api_keys SET revoked_at = coalesce(revoked_at, now())
			WHERE id = $1 AND tenant_id = $2 RETURNING display`, keyID, tenantID).Scan(&display)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		return s.auditTx(ctx, tx, tenantID, by, "key.revoke", display, nil)
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("revoke key: %w", err)
	}
	return err
}

// KeyRecord is what a key look-up resolves to.
type KeyRecord struct {
	ID       int64
	TenantID int64
	Kind     KeyKind
	Revoked  bool
}

// LookupKey resolves a presented key by its hash. A malformed key is
// ErrInvalidAPIKey without touching the database.
func (s *Store) LookupKey(ctx context.Context, key string) (KeyRecord, error) {
	if KeyKindOf(key) == "" {
		return KeyRecord{}, ErrInvalidAPIKey
	}
	var r KeyRecord
	var kind string
	var revoked *time.Time
	err := s.db.QueryRow(ctx, `SELECT id, tenant_id, kind, revoked_at FROM syncplane.api_keys WHERE hash = $1`,
		KeyHash(key)).Scan(&r.ID, &r.TenantID, &kind, &revoked)
	if errors.Is(err, pgx.ErrNoRows) {
		return KeyRecord{}, ErrInvalidAPIKey
	}
	if err != nil {
		return KeyRecord{}, fmt.Errorf("look up key: %w", err)
	}
	r.Kind, r.Revoked = KeyKind(kind), revoked != nil
	return r, nil
}

// TouchKeys records last-use times in one statement; callers batch uses in
// memory and flush periodically instead of writing per request.
func (s *Store) TouchKeys(ctx context.Context, used map[int64]time.Time) error {
	if len(used) == 0 {
		return nil
	}
	ids := make([]int64, 0, len(used))
	ats := make([]time.Time, 0, len(used))
	for id, at := range used {
		ids = append(ids, id)
		ats = append(ats, at)
	}
	_, err := s.db.Exec(ctx, `UPDATE syncplane.api_keys k SET last_used_at = u.at
		FROM unnest($1::bigint[], $2::timestamptz[]) AS u(id, at)
		WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)`, ids, ats)
	if err != nil {
		return fmt.Errorf("record key use: %w", err)
	}
	return nil
}
