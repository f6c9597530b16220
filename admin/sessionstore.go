package admin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// sessionStore is an scs.CtxStore over syncplane.sessions. It follows
// github.com/alexedwards/scs/pgxstore, which cannot be used as is: it names
// an unqualified "sessions" table and so depends on the search_path, which
// Syncplane never relies on.
type sessionStore struct {
	db *pgxpool.Pool
}

const (
	sessionFindSQL   = `SELECT data FROM syncplane.sessions WHERE token = $1 AND now() < expiry`
	sessionCommitSQL = `INSERT INTO syncplane.sessions (token, data, expiry) VALUES ($1, $2, $3)
		ON CONFLICT (token) DO UPDATE SET data = EXCLUDED.data, expiry = EXCLUDED.expiry`
	sessionDeleteSQL  = `DELETE FROM syncplane.sessions WHERE token = $1`
	sessionExpiredSQL = `DELETE FROM syncplane.sessions WHERE expiry < now()`
)

func (s *sessionStore) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	var b []byte
	err := s.db.QueryRow(ctx, sessionFindSQL, token).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("find session: %w", err)
	}
	return b, true, nil
}

func (s *sessionStore) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	if _, err := s.db.Exec(ctx, sessionCommitSQL, token, b, expiry); err != nil {
		return fmt.Errorf("save session: %w", err)
	}
	return nil
}

func (s *sessionStore) DeleteCtx(ctx context.Context, token string) error {
	if _, err := s.db.Exec(ctx, sessionDeleteSQL, token); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

func (s *sessionStore) AllCtx(ctx context.Context) (map[string][]byte, error) {
	rows, err := s.db.Query(ctx, `SELECT token, data FROM syncplane.sessions WHERE now() < expiry`)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	out := map[string][]byte{}
	for rows.Next() {
		var tok string
		var b []byte
		if err := rows.Scan(&tok, &b); err != nil {
			return nil, err
		}
		out[tok] = b
	}
	return out, rows.Err()
}

func (s *sessionStore) Find(token string) ([]byte, bool, error) {
	return s.FindCtx(context.Background(), token)
}

func (s *sessionStore) Commit(token string, b []byte, expiry time.Time) error {
	return s.CommitCtx(context.Background(), token, b, expiry)
}

func (s *sessionStore) Delete(token string) error { return s.DeleteCtx(context.Background(), token) }

func (s *sessionStore) All() (map[string][]byte, error) { return s.AllCtx(context.Background()) }

// deleteExpired removes expired sessions; the console runs it periodically.
func (s *sessionStore) deleteExpired(ctx context.Context) error {
	_, err := s.db.Exec(ctx, sessionExpiredSQL)
	return err
}
