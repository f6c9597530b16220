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
	doc, err := s.encodeAuth(tenantID, a)
	if err != nil {
		return err
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
	a, _, err := s.decodeAuth(tenantID, doc)
	if err != nil {
		return nil, time.Time{}, err
	}
	return a, updated, nil
}

// storedAuth is the stored form of AuthSettings: with a Sealer the HS256
// secrets are kept sealed in hs256_sealed and hs256_secrets stays empty.
// Rows written without a Sealer (or before sealing existed) hold them in
// hs256_secrets and are still read.
type storedAuth struct {
	AuthSettings
	HS256Sealed []string `json:"hs256_sealed,omitempty"`
}

// SetSealer makes the store seal HS256 secrets it writes with sl and open
// sealed ones it reads (nil: write them unsealed; sealed rows then fail to
// read with ErrSealKeyMissing).
func (s *Store) SetSealer(sl *Sealer) { s.sealer = sl }

// Sealing reports whether the store seals the secrets it writes.
func (s *Store) Sealing() bool { return s.sealer != nil }

func (s *Store) encodeAuth(tenantID int64, a AuthSettings) ([]byte, error) {
	st := storedAuth{AuthSettings: a}
	if s.sealer != nil && len(a.HS256Secrets) > 0 {
		st.HS256Secrets = nil
		st.HS256Sealed = make([]string, len(a.HS256Secrets))
		for i, secret := range a.HS256Secrets {
			var err error
			if st.HS256Sealed[i], err = s.sealer.seal(tenantID, secret); err != nil {
				return nil, err
			}
		}
	}
	doc, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("encode auth settings: %w", err)
	}
	return doc, nil
}

// decodeAuth reads a stored document; reseal reports whether writing it
// again would change how its secrets are kept (unsealed while the store
// seals, or sealed with a key other than the sealing one).
func (s *Store) decodeAuth(tenantID int64, doc []byte) (a *AuthSettings, reseal bool, err error) {
	var st storedAuth
	if err := json.Unmarshal(doc, &st); err != nil {
		return nil, false, fmt.Errorf("decode auth settings: %w", err)
	}
	if len(st.HS256Sealed) > 0 {
		st.HS256Secrets = make([]string, len(st.HS256Sealed))
		for i, v := range st.HS256Sealed {
			secret, stale, err := s.sealer.open(tenantID, v)
			if err != nil {
				return nil, false, fmt.Errorf("auth settings of tenant %d: %w", tenantID, err)
			}
			st.HS256Secrets[i] = secret
			reseal = reseal || stale
		}
	} else if s.sealer != nil && len(st.HS256Secrets) > 0 {
		reseal = true
	}
	return &st.AuthSettings, reseal, nil
}

// ResealAuth rewrites every tenant's stored auth settings whose HS256
// secrets are not sealed with the store's sealing key: unsealed ones (written
// before SYNCPLANE_SEAL_KEYS was set) and ones sealed with an older key. It
// returns how many it rewrote and how many it checked. Each row is rewritten
// in its own short transaction under a row lock, so concurrent console edits
// are neither lost nor blocked for long. A row that cannot be read (sealed
// with a key no longer configured) is left as it is and reported in the
// error, after the others are done. Without a sealer it refuses.
func (s *Store) ResealAuth(ctx context.Context) (resealed, checked int, err error) {
	if s.sealer == nil {
		return 0, 0, errors.New("reseal: no seal key configured (set SYNCPLANE_SEAL_KEYS)")
	}
	rows, err := s.db.Query(ctx, `SELECT tenant_id FROM syncplane.tenant_auth ORDER BY tenant_id`)
	if err != nil {
		return 0, 0, fmt.Errorf("list auth settings: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, 0, fmt.Errorf("list auth settings: %w", err)
	}
	var failed []error
	for _, id := range ids {
		changed := false
		err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
			var doc []byte
			err := tx.QueryRow(ctx, `SELECT settings FROM syncplane.tenant_auth WHERE tenant_id = $1 FOR UPDATE`, id).Scan(&doc)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil // deleted meanwhile
			}
			if err != nil {
				return err
			}
			a, reseal, err := s.decodeAuth(id, doc)
			if err != nil || !reseal {
				return err
			}
			if doc, err = s.encodeAuth(id, *a); err != nil {
				return err
			}
			// updated_at is left alone: the settings did not change, and the
			// gateway's cached verifiers stay valid.
			if _, err := tx.Exec(ctx, `UPDATE syncplane.tenant_auth SET settings = $2 WHERE tenant_id = $1`, id, doc); err != nil {
				return err
			}
			changed = true
			return nil
		})
		if err != nil {
			if ctx.Err() != nil {
				return resealed, checked, ctx.Err()
			}
			failed = append(failed, fmt.Errorf("tenant %d: %w", id, err))
			continue
		}
		checked++
		if changed {
			resealed++
		}
	}
	if len(failed) > 0 {
		return resealed, checked, fmt.Errorf("reseal: %d tenant(s) left as they were: %w", len(failed), errors.Join(failed...))
	}
	return resealed, checked, nil
}
