package sync

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func rotation(prev, next, reason string) map[string]any {
	return map[string]any{"source_replacement": map[string]any{"previous_source_id": prev, "new_source_id": next, "reason": reason}}
}

// 15.72: rotation field rules.
func TestConf72RotationInvalid(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	for _, body := range []map[string]any{rotation("other", "b", "history_pruned"), rotation("a", "", "history_pruned"),
		rotation("a", "  ", "history_pruned"), rotation("a", "a", "history_pruned"), rotation("a", "b", "because")} {
		c.do("POST", "/sync/snapshot-sessions", body).expect(t, 400, "snapshot_session_invalid")
	}
}

// 15.73: a rotation retires the old source and reserves the new one.
func TestConf73Rotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	c.push(1, userRow(newUUID(), "1")).expect(t, 200, "")
	c.do("POST", "/sync/snapshot-sessions", rotation(" a ", " b ", "source_sequence_out_of_order")).expect(t, 200, "")
	r := c.create(2, 1).expect(t, 409, "source_retired")
	require.Equal(t, "a", r.str("source_id"))
	require.Equal(t, "b", r.str("replaced_by_source_id"))
	// Atomic with the snapshot: a failed snapshot rotates nothing.
	e2 := newEnv(t)
	c2 := e2.client("u1", "a")
	c2.connect(true).expect(t, 200, "") // initializing: the snapshot fails
	e2.client("u1", "z").do("POST", "/sync/snapshot-sessions", rotation("z", "y", "history_pruned")).expect(t, 409, "scope_initializing")
	require.EqualValues(t, 0, e2.count("_sync_source"))
}

// 15.74: repeating a rotation succeeds; a different new id is refused.
func TestConf74RotationRetry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	c.do("POST", "/sync/snapshot-sessions", rotation("a", "b", "history_pruned")).expect(t, 200, "")
	c.do("POST", "/sync/snapshot-sessions", rotation("a", "b", "history_pruned")).expect(t, 200, "")
	r := c.do("POST", "/sync/snapshot-sessions", rotation("a", "c", "history_pruned")).expect(t, 409, "source_retired")
	require.Equal(t, "b", r.str("replaced_by_source_id"))
	// The retry still works after the new source became active.
	e.client("u1", "b").push(1, userRow(newUUID(), "x")).expect(t, 200, "")
	c.do("POST", "/sync/snapshot-sessions", rotation("a", "b", "history_pruned")).expect(t, 200, "")
}

// 15.75: the new id must be unknown for the user.
func TestConf75ReplacementKnown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.client("u1", "init").attach()
	e.client("u1", "active").push(1, userRow(newUUID(), "x")).expect(t, 200, "")
	e.client("u1", "r1").do("POST", "/sync/snapshot-sessions", rotation("r1", "reserved", "history_pruned")).expect(t, 200, "")
	e.client("u1", "old").do("POST", "/sync/snapshot-sessions", rotation("old", "old2", "history_pruned")).expect(t, 200, "")
	for _, next := range []string{"active", "reserved", "old"} {
		e.client("u1", "d").do("POST", "/sync/snapshot-sessions", rotation("d", next, "history_pruned")).expect(t, 409, "source_replacement_invalid")
	}
}

// 15.76: the reserved replacement starts at 1 and becomes active.
func TestConf76ReservedPushes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	c.push(1, userRow(newUUID(), "1")).expect(t, 200, "")
	c.push(2, userRow(newUUID(), "2")).expect(t, 200, "")
	c.do("POST", "/sync/snapshot-sessions", rotation("a", "b", "history_pruned")).expect(t, 200, "")
	b := e.client("u1", "b")
	b.create(2, 1).expect(t, 409, "source_sequence_out_of_order")
	b.push(1, userRow(newUUID(), "b1")).expect(t, 200, "")
	var state string
	require.NoError(t, e.pool.QueryRow(t.Context(), `SELECT state FROM `+ident(e.tenant.SchemaName(), "_sync_source")+
		` WHERE user_id = 'u1' AND source_id = 'b'`).Scan(&state))
	require.Equal(t, "active", state)
}

// 15.77: a retired source keeps its committed tuples and keep-source
// snapshots.
func TestConf77RetiredSourceReads(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	first := c.push(1, userRow(newUUID(), "1")).expect(t, 200, "")
	c.do("POST", "/sync/snapshot-sessions", rotation("a", "b", "source_retired")).expect(t, 200, "")
	again := c.create(1, 1).expect(t, 200, "")
	require.Equal(t, "already_committed", again.str("status"))
	require.Equal(t, first.str("bundle_hash"), again.str("bundle_hash"))
	c.do("POST", "/sync/snapshot-sessions", nil).expect(t, 200, "")
}

// 15.78: the same source id under two users is sequenced independently.
func TestConf78SourcePerUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := e.client("u1", "same"), e.client("u2", "same")
	a.attach()
	b.attach()
	a.push(1, userRow(newUUID(), "1")).expect(t, 200, "")
	a.push(2, userRow(newUUID(), "2")).expect(t, 200, "")
	b.create(2, 1).expect(t, 409, "source_sequence_out_of_order")
	r := b.push(1, userRow(newUUID(), "1")).expect(t, 200, "")
	require.EqualValues(t, 1, r.num("bundle_seq"))
}

// 10: an administrative retire reserves a replacement the device's rotation
// can adopt.
func TestAdministrativeRetire(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "dev")
	c.attach()
	c.push(1, userRow(newUUID(), "1")).expect(t, 200, "")
	repl, err := e.h.RetireSource(t.Context(), e.scope("u1"), "dev")
	require.NoError(t, err)
	again, err := e.h.RetireSource(t.Context(), e.scope("u1"), "dev")
	require.NoError(t, err)
	require.Equal(t, repl, again)
	r := c.create(2, 1).expect(t, 409, "source_retired")
	require.Equal(t, repl, r.str("replaced_by_source_id"))
	c.do("POST", "/sync/snapshot-sessions", rotation("dev", repl, "source_retired")).expect(t, 200, "")
	e.client("u1", repl).push(1, userRow(newUUID(), "2")).expect(t, 200, "")
}
