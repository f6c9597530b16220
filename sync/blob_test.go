package sync

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Blobs longer than one base64 line (PostgreSQL's encode wraps at 76
// characters) come back as one unwrapped standard base64 string from
// committed rows, pulls, snapshots and conflicts.
func TestLargeBlobRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client("u1", "a")
	c.attach()
	raw := make([]byte, 1000)
	for i := range raw {
		raw[i] = byte(i * 7)
	}
	b64 := base64.StdEncoding.EncodeToString(raw)
	k := newUUID()
	c.push(1, row("users", "INSERT", k, 0, map[string]any{"id": k, "name": "blob", "avatar": b64})).expect(t, 200, "")
	_, rows := c.committedRows(1)
	require.Equal(t, b64, rows[0]["payload"].(map[string]any)["avatar"])
	require.Equal(t, b64, c.pullAll(0)[0]["rows"].([]any)[0].(map[string]any)["payload"].(map[string]any)["avatar"])
	require.Equal(t, b64, c.snapshotRows()[0]["payload"].(map[string]any)["avatar"])
	cf := c.push(2, userRow(k, "again")).expect(t, 409, "push_conflict")
	require.Equal(t, b64, cf.JSON["conflict"].(map[string]any)["server_row"].(map[string]any)["avatar"])
	require.False(t, strings.Contains(string(cf.Body), `\n`))
	// Updates are captured the same way.
	c.push(2, row("users", "UPDATE", k, 1, map[string]any{"id": k, "name": "blob2", "avatar": b64})).expect(t, 200, "")
	_, rows = c.committedRows(2)
	require.Equal(t, b64, rows[0]["payload"].(map[string]any)["avatar"])
}
