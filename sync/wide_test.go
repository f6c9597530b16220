package sync

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Tables wider than json_build_object's argument limit still serve wire
// payloads (snapshots, conflicts).
func TestWideTable(t *testing.T) {
	t.Parallel()
	cols := []string{`{"name": "id", "type": "text"}`, `{"name": "pic", "type": "blob", "nullable": true}`}
	payload := map[string]any{"pic": "AQID"}
	for i := 0; i < 60; i++ {
		cols = append(cols, fmt.Sprintf(`{"name": "c%d", "type": "integer", "nullable": true}`, i))
		payload[fmt.Sprintf("c%d", i)] = i
	}
	def := `{"tables": [{"name": "wide", "sync_key": "id", "columns": [` + strings.Join(cols, ",") + `]}]}`
	e := newEnv(t, withDefinition(def))
	c := e.client("u1", "a")
	c.attach()
	ins := map[string]any{"schema": "app", "table": "wide", "key": map[string]any{"id": "w1"}, "op": "INSERT", "payload": payload}
	c.push(1, ins).expect(t, 200, "")
	_, captured := c.committedRows(1)
	require.Len(t, captured, 1)
	require.Len(t, captured[0]["payload"], 62, "no hidden column in the captured after-image")
	snap := c.snapshotRows()
	require.Len(t, snap, 1)
	p := snap[0]["payload"].(map[string]any)
	require.Len(t, p, 62)
	require.Equal(t, "AQID", p["pic"])
	cf := c.push(2, ins).expect(t, 409, "push_conflict")
	require.Len(t, cf.JSON["conflict"].(map[string]any)["server_row"], 62)
}
