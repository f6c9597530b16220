package device

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/syncplane/syncplane/tenant"
)

var fastPayloads = []string{
	`{"id" : "00000000-0000-4000-8000-000000000001", "title" : "item 1", "body" : null, "n" : 1, "score" : 0.5, "updated_at" : "2026-03-24T18:02:00Z"}`,
	`{"id":"00000000-0000-4000-8000-000000000001","title":"caf\u00e9 \"q\"","body":"naïve","n":1.0,"score":1e3,"updated_at":"2026-03-24T18:02:00Z"}`,
	`{"id":"a","title":"t","body":"b","n":-0,"score":null,"updated_at":"x"}`,
	`{"id":"a","title":"t","body":"b","n":9223372036854775807,"score":-1.5E-3,"updated_at":"x"}`,
	`{"id":"a","title":"t","body":"b","n":9223372036854775808,"score":1,"updated_at":"x"}`,
	`{"id":"a","title":"t","body":"b","n":true,"score":1,"updated_at":"x"}`,
	`{"id":"a","title":"t","body":"b","n":"1","score":1,"updated_at":"x"}`,
	`{"id":"a","title":"t","body":"b","n":1,"score":1}`,
	`{"id":"a","title":"t","body":"b","n":1,"score":1,"updated_at":"x","extra":1}`,
	`{"id":"a","title":"t","body":"b","n":1,"score":1,"updated_at":"x","id":"b"}`,
	`{"id":"a","title":"t","body":"b","n":1,"score":1,"updated_at":"x",}`,
	`{"id":"a","title":"t","body":"b","n":01,"score":1,"updated_at":"x"}`,
	`{"id":"a","title":"t\x01","body":"b","n":1,"score":1,"updated_at":"x"}`,
	`{"id":"a","title":"t","body":"b\q","n":1,"score":1,"updated_at":"x"}`,
	`{"id":"a","title":["t"],"body":"b","n":1,"score":1,"updated_at":"x"}`,
	`{"\u0069d":"a","title":"t","body":"b","n":1,"score":1,"updated_at":"x"}`,
	`{"id":"a","title":"t","body":{"x":[1,2,{"y":null}]},"n":1,"score":1,"updated_at":"x"}`,
	`{"id":"a","title":"t","body":"b","n":1,"score":1,"updated_at":"x"} x`,
	`{"updated_at":"x","n":2,"id":"a","title":"t","body":null,"score":1.5}`,
	`{"id":"a","title":"t","body":"b","n":1,"updated_at":"x","score":1}`,
	`["id"]`, `{}`, `{`, ``, `null`,
}

func benchItems(t *testing.T) *tenant.Table {
	tb, ok := testSchemaFrom(t, benchTables).Table("items")
	if !ok {
		t.Fatal("no items table")
	}
	return tb
}

// The fast paths either agree with encoding/json or step aside.
func TestDecodePayloadFastAgrees(t *testing.T) {
	tb := benchItems(t)
	index := map[string]int{}
	for i, c := range tb.Columns {
		index[c.Name] = i
	}
	fast := 0
	for _, p := range fastPayloads {
		slow, slowErr := decodePayload(tb, json.RawMessage(p))
		got, ok := decodePayloadFast(tb, []byte(p), index)
		if !ok {
			continue
		}
		fast++
		if slowErr != nil || !reflect.DeepEqual(got, slow) {
			t.Errorf("%s: fast %#v, encoding/json %#v (%v)", p, got, slow, slowErr)
		}
	}
	if fast < 3 {
		t.Errorf("only %d payloads took the fast path", fast)
	}
}

func TestDecodeChunkFastAgrees(t *testing.T) {
	row := `{"schema":"app","table":"items","key":{"id" : "a"},"row_version":3,"payload":` + fastPayloads[0] + `}`
	for i, page := range []string{
		`{"snapshot_id":"s","snapshot_bundle_seq":7,"rows":[` + row + `,` + row + `],"next_row_ordinal":2,"has_more":true}`,
		` {"snapshot_id" : "s", "snapshot_bundle_seq" : 7, "rows" : [ ], "next_row_ordinal" : 0, "has_more" : false} `,
		`{"snapshot_id":"s","snapshot_bundle_seq":7,"rows":[` + row + `],"next_row_ordinal":1,"has_more":false,"extra":1}`,
		`{"snapshot_id":"s","snapshot_bundle_seq":7.5,"rows":[],"next_row_ordinal":0,"has_more":false}`,
		`{"snapshot_id":"s","snapshot_bundle_seq":7,"rows":[` + row + `,],"next_row_ordinal":1,"has_more":false}`,
		`{"snapshot_id":"s","snapshot_bundle_seq":7,"rows":[{"schema":"app","row_version":1,"row_version":2}],"next_row_ordinal":1,"has_more":false}`,
		`{"snapshot_id":"s","snapshot_bundle_seq":7,"rows":null,"next_row_ordinal":0,"has_more":false}`,
		`{"snapshot_id":"s","snapshot_bundle_seq":7,"rows":[],"next_row_ordinal":0,"has_more":false}{}`,
		`{"snapshot_id":"s","snapshot_bundle_seq":7,"rows":[{"key":{"id":"a"},"payload":{"id":"a",}}],"next_row_ordinal":0,"has_more":false}`,
	} {
		var slow snapshotChunk
		dec := json.NewDecoder(bytes.NewReader([]byte(page)))
		dec.UseNumber()
		slowErr := dec.Decode(&slow)
		got, ok := decodeChunkFast([]byte(page))
		if !ok {
			if i < 2 {
				t.Errorf("%s: not decoded by the fast path", page)
			}
			continue
		}
		if i >= 2 {
			t.Errorf("%s: decoded by the fast path", page)
		}
		if slowErr != nil || !reflect.DeepEqual(got, slow) {
			t.Errorf("%s: fast %+v, encoding/json %+v (%v)", page, got, slow, slowErr)
		}
	}
	tb := benchItems(t)
	for _, key := range []string{`{"id":"a"}`, `{ "id" : "a" }`, `{"id":"a","x":1}`, `{"x":1,"id":"a"}`, `{"id":1}`, `{"id":"\u0061"}`, `[]`, `{"id":"a"`} {
		slow, slowErr := parseKey(tb, json.RawMessage(key))
		got, ok := parseKeyFast(tb, []byte(key))
		if ok && (slowErr != nil || got != slow) {
			t.Errorf("key %s: fast %q, encoding/json %q (%v)", key, got, slow, slowErr)
		}
	}
}

func FuzzDecodePayloadFast(f *testing.F) {
	for _, p := range fastPayloads {
		f.Add(p)
	}
	def, _ := tenant.ParseDefinition([]byte(benchTables))
	s, _ := tenant.NewSchema(def)
	tb, _ := s.Table("items")
	index := map[string]int{}
	for i, c := range tb.Columns {
		index[c.Name] = i
	}
	f.Fuzz(func(t *testing.T, p string) {
		got, ok := decodePayloadFast(tb, []byte(p), index)
		if !ok {
			return
		}
		slow, err := decodePayload(tb, json.RawMessage(p))
		if err != nil || !reflect.DeepEqual(got, slow) {
			t.Fatalf("%q: fast %#v, encoding/json %#v (%v)", p, got, slow, err)
		}
	})
}

// pageRowsSlow decodes a page the way pageFast stands in for: decodeChunk,
// then d.row for each row up to the first with an error.
func pageRowsSlow(d *snapshotDecoder, page []byte) (snapshotChunk, int, []snapRow, error) {
	var ch snapshotChunk
	if err := decodeChunk(request{}, page, &ch); err != nil {
		return ch, 0, nil, err
	}
	var rows []snapRow
	for i := range ch.Rows {
		rows = append(rows, d.row(&ch.Rows[i]))
		if rows[len(rows)-1].err != nil {
			break
		}
	}
	n := len(ch.Rows)
	ch.Rows = nil
	return ch, n, rows, nil
}

func sameSnapRows(a, b []snapRow) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if (x.err == nil) != (y.err == nil) || x.err != nil && x.err.Error() != y.err.Error() {
			return false
		}
		if x.t != y.t || x.key != y.key || x.version != y.version || !reflect.DeepEqual(x.vals, y.vals) {
			return false
		}
	}
	return true
}

func testPageDecoder(tb testing.TB) *snapshotDecoder {
	s := testSchemaFrom(tb, benchTables)
	c := &Client{cfg: Config{WireSchema: "app"}, tables: s.Tables(), byName: map[string]*tenant.Table{}}
	for _, t := range c.tables {
		c.byName[t.Name] = t
	}
	return newSnapshotDecoder(c, 100)
}

var fastPages = func() []string {
	row := func(version, payload string) string {
		return `{"schema":"app","table":"items","key":{"id":"a"},"row_version":` + version + `,"payload":` + payload + `}`
	}
	var pages []string
	for _, p := range fastPayloads {
		pages = append(pages, `{"snapshot_id":"s","snapshot_bundle_seq":7,"rows":[`+row("3", strings.ReplaceAll(p, `"id":"00000000-0000-4000-8000-000000000001"`, `"id":"a"`))+`,`+row("4", fastPayloads[2])+`],"next_row_ordinal":2,"has_more":true}`)
	}
	return append(pages,
		`{"snapshot_id":"s","snapshot_bundle_seq":7,"rows":[`+row("0", fastPayloads[2])+`,`+row("1", fastPayloads[2])+`],"next_row_ordinal":2,"has_more":false}`,
		`{"snapshot_id":"s","snapshot_bundle_seq":7,"rows":[`+row("101", fastPayloads[2])+`],"next_row_ordinal":1,"has_more":false}`,
		`{"snapshot_id":"s","snapshot_bundle_seq":7,"rows":[`+row("1", `null`)+`,`+row("1", `{}`)+`],"next_row_ordinal":2,"has_more":false}`,
		`{"snapshot_id":"s","snapshot_bundle_seq":7,"rows":[`+row("1", `{"id":"b","title":"t","body":"b","n":1,"score":1,"updated_at":"x"}`)+`],"next_row_ordinal":1,"has_more":false}`,
		`{"snapshot_id":"s","snapshot_bundle_seq":7,"rows":[{"payload":`+fastPayloads[2]+`,"schema":"app","table":"items","key":{"id":"a"},"row_version":1}],"next_row_ordinal":1,"has_more":false}`,
		`{"snapshot_id":"s","snapshot_bundle_seq":7,"rows":[{"schema":"app","table":"nope","key":{"id":"a"},"row_version":1,"payload":`+fastPayloads[2]+`}],"next_row_ordinal":1,"has_more":false}`,
		`{"snapshot_id":"s","snapshot_bundle_seq":7,"rows":[{"schema":"other","table":"items","key":{"id":"a"},"row_version":1,"payload":`+fastPayloads[2]+`}],"next_row_ordinal":1,"has_more":false}`,
		`{"snapshot_id":"s","snapshot_bundle_seq":7,"rows":[{"schema":"app","table":"items","key":{"id":"a"},"row_version":1,"payload":`+fastPayloads[2]+`,"payload":`+fastPayloads[2]+`}],"next_row_ordinal":1,"has_more":false}`,
		`{"snapshot_id":"s","snapshot_bundle_seq":7,"rows":[{"schema":"app","table":"items","key":{"id":"a","x":1},"row_version":1,"payload":`+fastPayloads[2]+`}],"next_row_ordinal":1,"has_more":false}`,
		`{"snapshot_id":"s","snapshot_bundle_seq":7,"rows":[{"schema":"app","table":"items","op":"INSERT","key":{"id":"a"},"row_version":1,"payload":`+fastPayloads[2]+`}],"next_row_ordinal":1,"has_more":false}`,
		`{"rows":[`+row("2", fastPayloads[2])+`],"snapshot_id":"s","snapshot_bundle_seq":7,"next_row_ordinal":1,"has_more":false}`,
		`{"snapshot_id":"s","snapshot_bundle_seq":7,"rows":[`+row("2", fastPayloads[2])+`],"rows":[],"next_row_ordinal":1,"has_more":false}`,
		`{"snapshot_id":"s","snapshot_bundle_seq":7,"rows":[`+row("2", `{"id":"a","title":"t","body":"b","n":1,"score":1,"updated_at":"x"`)+`],"next_row_ordinal":1,"has_more":false}`,
		`{"snapshot_id":"s","snapshot_bundle_seq":7,"rows":[`+row("2", fastPayloads[2])+`],"next_row_ordinal":1,"has_more":false} x`,
		`{"snapshot_id":"s","snapshot_bundle_seq":7,"rows":[{"schema":"app","table":"items","key":{"id":"\u0061"},"row_version":1,"payload":`+fastPayloads[2]+`}],"next_row_ordinal":1,"has_more":false}`,
		`{"snapshot_id":"s","snapshot_bundle_seq":7,"rows":[{"schema":"app","table":"items","key":{"id":"a"}, "row_version":1,"payload":`+fastPayloads[2]+`}],"next_row_ordinal":1,"has_more":false}`,
		`{"snapshot_id":"s","snapshot_bundle_seq":7,"rows":[{"schema":"app","table":"items","key":{"id":"a"},"row_version":1 ,"payload":`+fastPayloads[2]+`}],"next_row_ordinal":1,"has_more":false}`,
		`{"snapshot_id":"s","snapshot_bundle_seq":7,"rows":[{"schema":"app","table":"items","key":{"id":"a"},"row_version":1,"payload":`+fastPayloads[2]+` }],"next_row_ordinal":1,"has_more":false}`,
		`{"snapshot_id":"s","snapshot_bundle_seq":7,"rows":[{"schema":"app","table":"items","key":{"id":"a"},"row_version":1,"payload":`+fastPayloads[2]+`,"op":"INSERT"}],"next_row_ordinal":1,"has_more":false}`,
	)
}()

// pageFast agrees with decodeChunk and row by row decoding, or steps aside.
func TestPageFastAgrees(t *testing.T) {
	d := testPageDecoder(t)
	fast := 0
	for _, page := range fastPages {
		ch, n, rows, ok := d.pageFast([]byte(page))
		if !ok {
			continue
		}
		fast++
		sch, sn, srows, err := pageRowsSlow(d, []byte(page))
		if err != nil || !reflect.DeepEqual(ch, sch) || n != sn || !sameSnapRows(rows, srows) {
			t.Errorf("%s:\nfast %+v %d %+v\nslow %+v %d %+v (%v)", page, ch, n, rows, sch, sn, srows, err)
		}
	}
	if fast < len(fastPages)/2 {
		t.Errorf("only %d of %d pages took the fast path", fast, len(fastPages))
	}
}

func FuzzPageFast(f *testing.F) {
	for _, p := range fastPages {
		f.Add(p)
	}
	d := testPageDecoder(f)
	f.Fuzz(func(t *testing.T, page string) {
		ch, n, rows, ok := d.pageFast([]byte(page))
		if !ok {
			return
		}
		sch, sn, srows, err := pageRowsSlow(d, []byte(page))
		if err != nil || !reflect.DeepEqual(ch, sch) || n != sn || !sameSnapRows(rows, srows) {
			t.Fatalf("%q:\nfast %+v %d %+v\nslow %+v %d %+v (%v)", page, ch, n, rows, sch, sn, srows, err)
		}
	})
}
