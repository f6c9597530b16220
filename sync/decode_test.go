package sync

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/tenant"
)

func testCatalog(tb testing.TB) *catalog {
	def, err := tenant.ParseDefinition([]byte(testDefinition))
	require.NoError(tb, err)
	s, err := tenant.NewSchema(def)
	require.NoError(tb, err)
	return catalogFor(s)
}

func TestDecodeChunkKeepsExactNumbersAndConvertsBlobs(t *testing.T) {
	cat := testCatalog(t)
	body := `{"start_row_ordinal":0,"rows":[{"schema":" APP ","table":"Users","key":{"id":"550e8400-e29b-41d4-a716-446655440000"},"op":" insert ",
		"payload":{"Name":"x","age":9223372036854775807,"score":1e-7,"avatar":"AQID"}}]}`
	start, rows, cerr := decodeChunk([]byte(body), "app", cat, 5000)
	require.Nil(t, cerr)
	require.EqualValues(t, 0, start)
	require.Len(t, rows, 1)
	require.Equal(t, "users", rows[0].Table)
	require.Equal(t, "INSERT", rows[0].Op)
	require.Equal(t, "age,avatar,id,name,score", rows[0].Cols)
	require.JSONEq(t, `{"age":9223372036854775807,"avatar":"\\x010203","id":"550e8400-e29b-41d4-a716-446655440000","name":"x","score":1e-7}`, string(rows[0].Payload))
	require.Contains(t, string(rows[0].Payload), "9223372036854775807")
}

func FuzzDecodeChunk(f *testing.F) {
	cat := testCatalog(f)
	seeds := []string{
		`{"start_row_ordinal":0,"rows":[{"schema":"app","table":"users","key":{"id":"550e8400-e29b-41d4-a716-446655440000"},"op":"INSERT","payload":{"name":"a"}}]}`,
		`{"start_row_ordinal":3,"rows":[{"schema":"app","table":"tags","key":{"name":"x"},"op":"DELETE","payload":null}]}`,
		`{"rows":[{"table":"users","key":{"id":1},"op":"UPDATE","base_row_version":2,"payload":{"avatar":"***"}}]}`,
		`{"rows":[]}`, `null`, `[]`, `{"rows":[{"payload":[]}]}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		start, rows, cerr := decodeChunk(data, "app", cat, 5000)
		if cerr != nil {
			require.Contains(t, []string{"invalid_request", "push_chunk_invalid"}, cerr.Code)
			return
		}
		require.GreaterOrEqual(t, start, int64(0))
		require.NotEmpty(t, rows)
		seen := map[string]bool{}
		for _, r := range rows {
			tbl, ok := cat.byName[r.Table]
			require.True(t, ok)
			require.False(t, seen[r.Table+"\x00"+r.KeyText])
			seen[r.Table+"\x00"+r.KeyText] = true
			if tbl.keyUUID {
				require.True(t, isCanonicalUUID(r.KeyText))
			}
			if r.Op == opDelete {
				require.Nil(t, r.Payload)
				continue
			}
			var obj map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(r.Payload, &obj))
			require.NotContains(t, obj, scopeColumn)
			var k string
			require.NoError(t, json.Unmarshal(obj[tbl.keyCol], &k))
			require.Equal(t, r.KeyText, k)
			for name := range obj {
				_, ok := tbl.cols[name]
				require.True(t, ok, name)
				require.Equal(t, strings.ToLower(name), name)
			}
		}
	})
}

func FuzzParseKey(f *testing.F) {
	cat := testCatalog(f)
	for _, s := range []string{`{"id":"550e8400-e29b-41d4-a716-446655440000"}`, `{"id":"550E8400-E29B-41D4-A716-446655440000"}`, `{"id":1}`, `{}`, `[]`, `{"name":"x"}`} {
		f.Add([]byte(s), "users")
		f.Add([]byte(s), "tags")
	}
	f.Fuzz(func(t *testing.T, data []byte, table string) {
		tbl, ok := cat.byName[table]
		if !ok {
			return
		}
		k, cerr := parseKey(data, "app", tbl)
		if cerr == nil && tbl.keyUUID {
			require.True(t, isCanonicalUUID(k))
		}
	})
}
