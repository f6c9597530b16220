package sync

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSmoke(t *testing.T) {
	e := newEnv(t)
	a := e.client("u1", "dev-a")
	a.attach()
	id := newUUID()
	r := a.push(1, row("users", "INSERT", id, 0, map[string]any{"id": id, "name": "Ada", "age": 36}))
	r.expect(t, 200, "")
	require.EqualValues(t, 1, r.num("bundle_seq"))
	bundles := a.pullAll(0)
	require.Len(t, bundles, 1)
	t.Logf("%s", r.Body)
}
