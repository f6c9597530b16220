package sync

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// 6 (capture): a changed key is a DELETE of the old key and an INSERT of
// the new; effects collapse per key (8.3).
func TestCaptureKeyChangeAndCollapse(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	c.push(1, row("tags", "INSERT", "old", 0, map[string]any{"name": "old"}),
		row("tags", "INSERT", "a", 0, map[string]any{"name": "a"}), row("tags", "INSERT", "b", 0, map[string]any{"name": "b"})).expect(t, 200, "")
	tags := ident(e.tenant.SchemaName(), "tags")
	ops := func(seq int64) map[string]string {
		_, rows := c.committedRows(seq)
		out := map[string]string{}
		for _, r := range rows {
			out[r["key"].(map[string]any)["name"].(string)] = r["op"].(string)
		}
		return out
	}
	res, err := e.h.ServerWriteTx(context.Background(), e.scope("u1"), "server:x", func(tx pgx.Tx) error {
		_, err := tx.Exec(context.Background(), `UPDATE `+tags+` SET name = 'new' WHERE name = 'old'`)
		return err
	})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"old": "DELETE", "new": "INSERT"}, ops(res.BundleSeq))
	// Several keys change in one statement, next to a plain update.
	res, err = e.h.ServerWriteTx(context.Background(), e.scope("u1"), "server:x", func(tx pgx.Tx) error {
		_, err := tx.Exec(context.Background(), `UPDATE `+tags+` SET name = CASE name WHEN 'new' THEN 'new' ELSE name || '2' END`)
		return err
	})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"a": "DELETE", "b": "DELETE", "a2": "INSERT", "b2": "INSERT", "new": "UPDATE"}, ops(res.BundleSeq))
	// Insert then delete within one write vanishes; delete then re-insert
	// is an UPDATE.
	res, err = e.h.ServerWriteTx(context.Background(), e.scope("u1"), "server:x", func(tx pgx.Tx) error {
		for _, q := range []string{`INSERT INTO ` + tags + ` (name) VALUES ('tmp')`, `DELETE FROM ` + tags + ` WHERE name = 'tmp'`,
			`DELETE FROM ` + tags + ` WHERE name = 'a2'`, `INSERT INTO ` + tags + ` (name, parent) VALUES ('a2', 'b2')`} {
			if _, err := tx.Exec(context.Background(), q); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"a2": "UPDATE"}, ops(res.BundleSeq))
}
