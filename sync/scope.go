package sync

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Scope states (protocol 2).
const (
	stateUninitialized = "UNINITIALIZED"
	stateInitializing  = "INITIALIZING"
	stateInitialized   = "INITIALIZED"
)

// scopeState is a user's _sync_scope row as read by one transaction.
type scopeState struct {
	State       string
	Initializer string
	InitID      string
	Lease       time.Time
	Latest      int64
	Floor       int64
	LiveRows    int64     // the user's live rows (locked reads only)
	Now         time.Time // database clock at the read
}

// lockScope creates the user's scope row if missing, locks it FOR UPDATE
// (serializing the user's mutations across replicas, 8.5) and resets a
// lapsed initialization lease. Caller holds tx.
func lockScope(ctx context.Context, tx pgx.Tx, schema, user string) (*scopeState, error) {
	return lockScopeThen(ctx, tx, schema, user, nil, nil)
}

// lockScopeThen is lockScope with more statements (queued by extra) sent in
// the same round trip after the lock; read consumes their results.
func lockScopeThen(ctx context.Context, tx pgx.Tx, schema, user string, extra func(*pgx.Batch), read func(pgx.BatchResults) error) (*scopeState, error) {
	tbl := ident(schema, "_sync_scope")
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO `+tbl+` (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING`, user)
	b.Queue(`SELECT state, coalesce(initializer_source, ''), coalesce(initialization_id::text, ''),
		coalesce(lease_expires_at, 'epoch'), latest_bundle_seq, retained_floor, live_rows, now()
		FROM `+tbl+` WHERE user_id = $1 FOR UPDATE`, user)
	if extra != nil {
		extra(b)
	}
	res := tx.SendBatch(ctx, b)
	if _, err := res.Exec(); err != nil {
		res.Close()
		return nil, fmt.Errorf("create scope: %w", err)
	}
	var s scopeState
	if err := res.QueryRow().Scan(&s.State, &s.Initializer, &s.InitID, &s.Lease, &s.Latest, &s.Floor, &s.LiveRows, &s.Now); err != nil {
		res.Close()
		return nil, fmt.Errorf("lock scope: %w", err)
	}
	if read != nil {
		if err := read(res); err != nil {
			res.Close()
			return nil, err
		}
	}
	if err := res.Close(); err != nil {
		return nil, fmt.Errorf("lock scope: %w", err)
	}
	if s.State == stateInitializing && !s.Lease.After(s.Now) {
		if _, err := tx.Exec(ctx, `UPDATE `+tbl+` SET state = 'UNINITIALIZED', initializer_source = NULL,
			initialization_id = NULL, lease_expires_at = NULL, updated_at = now() WHERE user_id = $1`, user); err != nil {
			return nil, fmt.Errorf("reset lapsed lease: %w", err)
		}
		s.State, s.Initializer, s.InitID = stateUninitialized, "", ""
	}
	return &s, nil
}

// readScope reads the user's scope without locking; a missing row is an
// uninitialized scope and a lapsed lease reads as uninitialized.
func readScope(ctx context.Context, q pgx.Tx, schema, user string) (*scopeState, error) {
	var s scopeState
	err := q.QueryRow(ctx, `SELECT state, coalesce(initializer_source, ''), coalesce(initialization_id::text, ''),
		coalesce(lease_expires_at, 'epoch'), latest_bundle_seq, retained_floor, now()
		FROM `+ident(schema, "_sync_scope")+` WHERE user_id = $1`, user).
		Scan(&s.State, &s.Initializer, &s.InitID, &s.Lease, &s.Latest, &s.Floor, &s.Now)
	if err == pgx.ErrNoRows {
		var now time.Time
		if err := q.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
			return nil, fmt.Errorf("read clock: %w", err)
		}
		return &scopeState{State: stateUninitialized, Now: now}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read scope: %w", err)
	}
	if s.State == stateInitializing && !s.Lease.After(s.Now) {
		s.State = stateUninitialized
	}
	return &s, nil
}
