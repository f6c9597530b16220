package sync

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// 5.6: canonical JSON is encoding/json's re-encoding of a generic value.
func TestCanonicalJSON(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{"b":1,"a":[true,false,null]}`, `{"a":[true,false,null],"b":1}`},
		{`"Tom & Jerry <x>"`, `"Tom \u0026 Jerry \u003cx\u003e"`},
		{"\"line\u2028sep\u2029\"", `"line\u2028sep\u2029"`},
		{`"\u0001\n\r\t\b\f\"\\"`, `"\u0001\n\r\t\b\f\"\\"`},
		{`1e21`, `1e+21`},
		{`1e-7`, `1e-7`},
		{`0.000001`, `0.000001`},
		{`1.5e-7`, `1.5e-7`},
		{`9007199254740993`, `9007199254740992`},       // 2^53+1 rounds through a double
		{`9223372036854775807`, `9223372036854776000`}, // shortest digits, plain form (encoding/json),
		{`-0`, `-0`},
		{`143`, `143`},
		{`1.50`, `1.5`},
		{`{"é":"ü","a b":1}`, `{"a b":1,"é":"ü"}`},
	}
	for _, c := range cases {
		got, err := CanonicalJSON([]byte(c.in))
		require.NoError(t, err)
		require.Equal(t, c.want, string(got), "input %s", c.in)
	}
}

// 5.7: bundle_hash is SHA-256 over the canonical array of row objects.
func TestBundleHashMatchesSpecForm(t *testing.T) {
	b := newBundleHasher("business", 143)
	require.NoError(t, b.add(hashRow{Table: "users", KeyCol: "id", KeyText: "k1", Op: "UPDATE", Payload: []byte(`{"name": "A&B", "n": 1e21}`)}))
	require.NoError(t, b.add(hashRow{Table: "users", KeyCol: "id", KeyText: "k2", Op: "DELETE"}))
	want := `[{"key":{"id":"k1"},"op":"UPDATE","payload":{"n":1e+21,"name":"A\u0026B"},"row_ordinal":0,"row_version":143,"schema":"business","table":"users"},` +
		`{"key":{"id":"k2"},"op":"DELETE","payload":null,"row_ordinal":1,"row_version":143,"schema":"business","table":"users"}]`
	sum := sha256.Sum256([]byte(want))
	require.Equal(t, hex.EncodeToString(sum[:]), b.sum())
}

// FuzzCanonical checks the streaming canonicalizer against encoding/json.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{`{"b":1,"a":[true,false,null]}`, `"Tom & Jerry <x>"`, "\"\u2028\"", `1e21`, `1e-7`, `-0`,
		`{"a":{"z":1,"y":[1.5e300,-2.5e-300]},"a":2}`, `"\ud800"`, `"\u00e9\\n"`, `[]`, `{}`, `123456789012345678901234567890`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		want, err := CanonicalJSON(data)
		if err != nil {
			return
		}
		got, rest, err := appendCanonical(nil, data)
		require.NoError(t, err)
		require.Empty(t, skipSpace(rest))
		require.Equal(t, string(want), string(got))
	})
}

// BenchmarkBundleHash hashes a 10,000-row bundle of typical payloads, the
// Go-side cost a commit pays per bundle besides decoding.
func BenchmarkBundleHash(b *testing.B) {
	payloads := make([][]byte, 10000)
	for i := range payloads {
		payloads[i] = []byte(fmt.Sprintf(`{"id":"%08d-1c2d-4e5f-8a9b-0c1d2e3f4a5b","name":"bench-%d","age":%d,"score":%v,"meta":null,"born":"2026-03-24T18:02:00Z"}`,
			i, i, i, float64(i)/3))
	}
	b.ReportAllocs()
	for b.Loop() {
		h := newBundleHasher("business", 7)
		for i, p := range payloads {
			if err := h.add(hashRow{Table: "users", KeyCol: "id", KeyText: string(p[7:43]), Op: "INSERT", Payload: payloads[i]}); err != nil {
				b.Fatal(err)
			}
		}
		_ = h.sum()
	}
}
