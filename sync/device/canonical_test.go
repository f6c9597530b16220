package device

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
)

func TestCanonicalJSON(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{"b":1,"a":[true,false,null]}`, `{"a":[true,false,null],"b":1}`},
		{`"<a> & b"`, `"\u003ca\u003e \u0026 b"`},
		{"\"line\u2028sep\u2029\"", `"line\u2028sep\u2029"`},
		{`"\n\r\t\b\f\u0001\"\\/"`, `"\n\r\t\b\f\u0001\"\\/"`},
		{`1e21`, `1e+21`},
		{`1e20`, `100000000000000000000`},
		{`1e-7`, `1e-7`},
		{`0.000001`, `0.000001`},
		{`1.5e-7`, `1.5e-7`},
		{`-0`, `-0`},
		{`-0.0`, `-0`},
		{`9007199254740993`, `9007199254740992`},       // 2^53+1 rounds to a double
		{`9223372036854775807`, `9223372036854776000`}, // Go: shortest digits, zero padded
		{`143`, `143`},
		{`1.50`, `1.5`},
		{`"héllo 😀"`, `"héllo 😀"`},
		{"{\"z\":{\"y\":1,\"x\":2},\"é\":0,\"e\":0}", `{"e":0,"z":{"x":2,"y":1},"é":0}`},
	}
	for _, c := range cases {
		got, err := CanonicalJSON([]byte(c.in))
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		if string(got) != c.want {
			t.Errorf("CanonicalJSON(%s) = %s, want %s", c.in, got, c.want)
		}
	}
	// Invalid UTF-8 becomes U+FFFD.
	got, err := CanonicalJSON([]byte("\"a\xffb\""))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "\"a\ufffdb\"" {
		t.Errorf("invalid UTF-8: got %q", got)
	}
}

func TestBundleHash(t *testing.T) {
	rows := []HashRow{
		{Schema: "app", Table: "users", Key: json.RawMessage(`{"id":"550e8400-e29b-41d4-a716-446655440000"}`), Op: "INSERT", RowVersion: 143,
			Payload: json.RawMessage(`{"name":"Tom & Jerry <3>","n":9007199254740993,"id":"550e8400-e29b-41d4-a716-446655440000"}`)},
		{Schema: "app", Table: "notes", Key: json.RawMessage(`{"id":"x"}`), Op: "DELETE", RowVersion: 143},
	}
	want := `[{"key":{"id":"550e8400-e29b-41d4-a716-446655440000"},"op":"INSERT",` +
		`"payload":{"id":"550e8400-e29b-41d4-a716-446655440000","n":9007199254740992,"name":"Tom \u0026 Jerry \u003c3\u003e"},` +
		`"row_ordinal":0,"row_version":143,"schema":"app","table":"users"},` +
		`{"key":{"id":"x"},"op":"DELETE","payload":null,"row_ordinal":1,"row_version":143,"schema":"app","table":"notes"}]`
	sum := sha256.Sum256([]byte(want))
	got, err := BundleHash(rows)
	if err != nil {
		t.Fatal(err)
	}
	if got != hex.EncodeToString(sum[:]) {
		t.Errorf("BundleHash = %s, want %s", got, hex.EncodeToString(sum[:]))
	}
	// An explicit null payload hashes like an absent one.
	rows[1].Payload = json.RawMessage(`null`)
	if again, _ := BundleHash(rows); again != got {
		t.Errorf("null payload changed the hash")
	}
	empty, _ := BundleHash(nil)
	if e := sha256.Sum256([]byte(`[]`)); empty != hex.EncodeToString(e[:]) {
		t.Errorf("empty bundle hash %s", empty)
	}
}

func TestReplayDiff(t *testing.T) {
	dec := func(s string) any {
		var v any
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	same := [][2]string{
		{`{"a":1,"b":"x"}`, `{"b":"x","a":1.0}`},
		{`{"t":"2026-03-24T18:02:00.123Z"}`, `{"t":"2026-03-24T18:02:00.123+00:00"}`},
		{`{"j":{"x":[1,2]}}`, `{"j":{"x":[1,2]}}`},
	}
	for _, p := range same {
		if why := replayDiff(dec(p[0]), dec(p[1])); why != "" {
			t.Errorf("%s vs %s: %s", p[0], p[1], why)
		}
	}
	diff := [][2]string{
		{`{"a":1}`, `{"a":true}`},
		{`{"a":null}`, `{"a":""}`},
		{`{"a":"x"}`, `{"a":"X"}`},
		{`{"a":1}`, `{"a":1,"b":2}`},
	}
	for _, p := range diff {
		if why := replayDiff(dec(p[0]), dec(p[1])); why == "" {
			t.Errorf("%s vs %s: want a difference", p[0], p[1])
		}
	}
}
