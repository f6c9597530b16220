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

// BenchmarkDecodeChunk decodes and validates a full 5,000-row chunk of the
// shape BenchmarkPush10k sends.
func BenchmarkDecodeChunk(b *testing.B) {
	cat := testCatalog(b)
	body, err := json.Marshal(map[string]any{"start_row_ordinal": 0, "rows": benchRows(5000, "bench")})
	require.NoError(b, err)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, cerr := decodeChunk(body, "app", cat, 5000); cerr != nil {
			b.Fatal(cerr)
		}
	}
}

// FuzzDecodeChunkFastPath checks that scanChunk's reading of a body is
// encoding/json's: the same rows, or the same error, either way.
func FuzzDecodeChunkFastPath(f *testing.F) {
	cat := testCatalog(f)
	seeds := []string{
		`{"start_row_ordinal":0,"rows":[{"schema":"app","table":"users","key":{"id":"550e8400-e29b-41d4-a716-446655440000"},"op":"INSERT","payload":{"name":"a","id":"550e8400-e29b-41d4-a716-446655440000","age":3}}]}`,
		`{"start_row_ordinal":3,"rows":[{"schema":"app","table":"tags","key":{"name":"x"},"op":"DELETE","payload":null}]}`,
		`{"rows":[{"table":"users","key":{"id":"550e8400-e29b-41d4-a716-446655440000"},"op":"UPDATE","base_row_version":2,"payload":{"Name":"b","avatar":"AQID","score":1.5,"born":"2026-01-01T00:00:00Z","meta":{"a":[1]}}}]}`,
		`{"Rows":[{"table":"tags","key":{"name":"x"},"op":"insert","payload":{"name":"x","parent":null}}],"start_row_ordinal":-0}`,
		`{"rows":[{"table":"tags","table":"users","key":{"name":"x"},"op":"INSERT","payload":{"name":"x"}}]}`,
		`{"rows":[{"table":"tags","key":{"n\u0061me":"x"},"op":"INSERT","payload":{"n\u0061me":"x","NAME":"x"}}]}`,
		`{"start_row_ordinal":1e3,"rows":[]}`, `{"rows":[null]}`, `{"rows":null}`, `{}`, ` {"rows" : [ ] } `,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fs, fr, fe := decodeChunkWith(data, "app", cat, 5000, true)
		ss, sr, se := decodeChunkWith(data, "app", cat, 5000, false)
		require.Equal(t, se, fe)
		require.Equal(t, ss, fs)
		require.Equal(t, len(sr), len(fr))
		for i := range sr {
			require.Equal(t, sr[i].Table, fr[i].Table)
			require.Equal(t, sr[i].KeyText, fr[i].KeyText)
			require.Equal(t, sr[i].Op, fr[i].Op)
			require.Equal(t, sr[i].Base, fr[i].Base)
			require.Equal(t, sr[i].Cols, fr[i].Cols)
			require.Equal(t, string(sr[i].Payload), string(fr[i].Payload))
		}
	})
}
