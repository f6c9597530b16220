package device

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// RetryLaterError is Attach's answer when another device of the user holds
// the initialization lease (connect answered retry_later).
type RetryLaterError struct {
	After          time.Duration
	LeaseExpiresAt string
}

func (e *RetryLaterError) Error() string {
	return fmt.Sprintf("device: another device is initializing this account; retry in %s", e.After)
}

// ErrNoLifecycle means the server lacks the connect lifecycle API.
var ErrNoLifecycle = errors.New("device: server does not offer the connect lifecycle (capabilities connect_lifecycle)")

// Capabilities fetches GET /sync/capabilities and reports the feature flags.
func (c *Client) Capabilities(ctx context.Context) (map[string]bool, error) {
	caps, err := c.fetchCaps(ctx)
	if err != nil {
		return nil, err
	}
	return caps.Features, nil
}

func (c *Client) fetchCaps(ctx context.Context) (*capabilities, error) {
	var caps capabilities
	if err := c.call(ctx, request{method: http.MethodGet, path: "/sync/capabilities"}, &caps); err != nil {
		return nil, err
	}
	c.capsMu.Lock()
	c.caps = &caps
	c.capsMu.Unlock()
	return &caps, nil
}

// Attach signs the device in for the user whose token Config.Token returns
// (13.1): capabilities, then connect. With local rows and an uninitialized
// account it seeds the server from them; with an initialized account it
// replaces local rows with a snapshot of the server's. Attaching an
// attached device does nothing.
func (c *Client) Attach(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.attach(ctx, 0)
}

func (c *Client) attach(ctx context.Context, depth int) error {
	st, err := c.state(ctx)
	if err != nil {
		return err
	}
	if st.attached {
		if st.initID != "" {
			return c.push(ctx, depth) // finish the seed push
		}
		return nil
	}
	caps, err := c.fetchCaps(ctx)
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && (ae.Status == 404 || ae.Status == 405 || ae.Status == 501) {
			return fmt.Errorf("%w: %v", ErrNoLifecycle, err)
		}
		return err
	}
	if caps.ProtocolVersion != "v1" || !caps.Features["connect_lifecycle"] {
		return ErrNoLifecycle
	}
	pending, err := c.pending(ctx, c.db)
	if err != nil {
		return err
	}
	var cr connectResponse
	err = c.call(ctx, request{method: http.MethodPost, path: "/sync/connect", sourceID: st.sourceID,
		body: map[string]bool{"has_local_pending_rows": pending}}, &cr)
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && (ae.Status == 404 || ae.Status == 405 || ae.Status == 501) {
			return fmt.Errorf("%w: %v", ErrNoLifecycle, err)
		}
		return err
	}
	c.logf("device: connect (pending %v): %s", pending, cr.Resolution)
	switch cr.Resolution {
	case "initialize_local":
		if cr.InitializationID == "" {
			return errors.New("device: initialize_local without initialization_id")
		}
		if err := c.setState(ctx, `attached = 1, initialization_id = ?`, cr.InitializationID); err != nil {
			return err
		}
		return c.push(ctx, depth)
	case "initialize_empty":
		return c.setState(ctx, `attached = 1, initialization_id = ''`)
	case "remote_authoritative":
		s, err := c.createSnapshot(ctx, st.sourceID, nil)
		if err != nil {
			return err
		}
		// Local anonymous rows are discarded in favour of the server's.
		return c.rebuild(ctx, st.sourceID, s, false, func(tx *txn) error {
			_, err := tx.ExecContext(ctx, `UPDATE _sync_state SET attached = 1, initialization_id = '' WHERE id = 1`)
			return err
		})
	case "retry_later":
		return &RetryLaterError{After: time.Duration(max(cr.RetryAfterSeconds, 1)) * time.Second, LeaseExpiresAt: cr.LeaseExpiresAt}
	}
	return fmt.Errorf("device: connect answered unknown resolution %q", cr.Resolution)
}

// Sync pushes local changes, then pulls (13.5).
func (c *Client) Sync(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sync(ctx)
}

func (c *Client) sync(ctx context.Context) error {
	var err error
	for range 3 {
		if err = c.push(ctx, 0); err != nil {
			return err
		}
		if err = c.pull(ctx, true); !errors.Is(err, ErrPendingChanges) {
			return err
		}
	}
	return err
}

// Detach signs the user out (13.7): it pushes what is pending, then clears
// every synced table and the sync state of that user. The source id and its
// counter are kept; Attach can then sign in another user.
func (c *Client) Detach(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, err := c.state(ctx)
	if err != nil {
		return err
	}
	if st.attached {
		for i := 0; ; i++ {
			pending, err := c.pending(ctx, c.db)
			if err != nil {
				return err
			}
			if !pending {
				break
			}
			if i == 3 {
				return ErrPendingChanges
			}
			if err := c.push(ctx, 0); err != nil {
				return fmt.Errorf("device: detach: %w", err)
			}
		}
	}
	return c.applyTx(ctx, func(tx *txn) error {
		for _, q := range []string{`DELETE FROM _sync_outbox`, `DELETE FROM _sync_dirty`, `DELETE FROM _sync_row_state`} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		for i := len(c.tables) - 1; i >= 0; i-- {
			if _, err := tx.ExecContext(ctx, "DELETE FROM "+qi(c.tables[i].Name)); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `UPDATE _sync_state SET attached = 0, initialization_id = '', last_bundle_seq_seen = 0,
			rebuild_required = 0, rotation_new_source_id = '', rotation_reason = '' WHERE id = 1`)
		return err
	})
}

// DiscardLocalChanges throws away every local change the server has not
// accepted (the frozen push and all captured changes) and restores the
// server's rows from a snapshot, keeping the source. It is the way out of a
// push the server refuses for good (e.g. 400 push_commit_invalid for a row
// that violates a server constraint).
func (c *Client) DiscardLocalChanges(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, err := c.state(ctx)
	if err != nil {
		return err
	}
	if !st.attached {
		return ErrNotAttached
	}
	s, err := c.createSnapshot(ctx, st.sourceID, nil)
	if err != nil {
		return err
	}
	return c.rebuild(ctx, st.sourceID, s, false, nil)
}

// initializeEmpty ends this source's initialization lease without seeding:
// connect with has_local_pending_rows false answers initialize_empty for the
// lease holder (7.2). Local rows stay pending and are pushed normally.
func (c *Client) initializeEmpty(ctx context.Context, sourceID string) error {
	var cr connectResponse
	if err := c.call(ctx, request{method: http.MethodPost, path: "/sync/connect", sourceID: sourceID,
		body: map[string]bool{"has_local_pending_rows": false}}, &cr); err != nil {
		return err
	}
	c.logf("device: connect to end the seed: %s", cr.Resolution)
	switch cr.Resolution {
	case "initialize_empty", "remote_authoritative":
		return c.setState(ctx, `initialization_id = ''`)
	}
	return fmt.Errorf("device: connect to end the initialization answered %q", cr.Resolution)
}
