package device

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/syncplane/syncplane/tenant"
)

// Fast paths for decoding snapshot pages, which hold up to 5,000 rows each.
// Each handles only the common shape of its input (exact member names, no
// escapes in names, no duplicates, nothing unknown) and reports ok = false
// for anything else, so the caller can fall back to encoding/json and get
// exactly its result or error. Every value they step over is validated as
// strict JSON.

// skipWS returns the index of the first non-whitespace byte at or after i.
func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// scanString returns the end (one past the closing quote) of the JSON string
// starting at b[i] == '"', and whether it contains an escape or a non-ASCII
// byte (so its contents cannot be used as they are).
func scanString(b []byte, i int) (end int, complex bool, ok bool) {
	i++ // opening quote
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			return i + 1, complex, true
		case c == '\\':
			complex = true
			if i+1 >= len(b) {
				return 0, false, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return 0, false, false
				}
				for _, h := range b[i+2 : i+6] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return 0, false, false
					}
				}
				i += 6
			default:
				return 0, false, false
			}
		case c < 0x20:
			return 0, false, false
		case c >= utf8.RuneSelf:
			complex = true
			i++
		default:
			i++
		}
	}
	return 0, false, false
}

// scanNumber returns the end of the JSON number starting at b[i].
func scanNumber(b []byte, i int) (int, bool) {
	digits := func(i int) (int, bool) {
		j := i
		for j < len(b) && '0' <= b[j] && b[j] <= '9' {
			j++
		}
		return j, j > i
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i, _ = digits(i)
	default:
		return 0, false
	}
	var ok bool
	if i < len(b) && b[i] == '.' {
		if i, ok = digits(i + 1); !ok {
			return 0, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i, ok = digits(i); !ok {
			return 0, false
		}
	}
	return i, true
}

// scanValue returns the end of the JSON value starting at b[i] (no leading
// whitespace), checking its syntax.
func scanValue(b []byte, i int) (int, bool) {
	return scanValueDepth(b, i, 0)
}

func scanValueDepth(b []byte, i, depth int) (int, bool) {
	if i >= len(b) || depth > 1000 {
		return 0, false
	}
	switch c := b[i]; {
	case c == '"':
		end, _, ok := scanString(b, i)
		return end, ok
	case c == '{' || c == '[':
		close := byte('}')
		if c == '[' {
			close = ']'
		}
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == close {
			return i + 1, true
		}
		for {
			var ok bool
			if c == '{' {
				if i >= len(b) || b[i] != '"' {
					return 0, false
				}
				if i, _, ok = scanString(b, i); !ok {
					return 0, false
				}
				if i = skipWS(b, i); i >= len(b) || b[i] != ':' {
					return 0, false
				}
				i = skipWS(b, i+1)
			}
			if i, ok = scanValueDepth(b, i, depth+1); !ok {
				return 0, false
			}
			i = skipWS(b, i)
			switch {
			case i < len(b) && b[i] == ',':
				i = skipWS(b, i+1)
			case i < len(b) && b[i] == close:
				return i + 1, true
			default:
				return 0, false
			}
		}
	case c == '-' || '0' <= c && c <= '9':
		return scanNumber(b, i)
	default:
		for _, lit := range []string{"true", "false", "null"} {
			if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
				return i + len(lit), true
			}
		}
		return 0, false
	}
}

// eachMember calls fn for each member of the JSON object that is exactly b
// (surrounding whitespace allowed), with the raw member name (without
// quotes) and raw value. It reports false if b is not a well-formed object
// or a name has an escape or non-ASCII byte, or fn returned false.
func eachMember(b []byte, fn func(name, value []byte) bool) bool {
	end, ok := eachMemberAt(b, skipWS(b, 0), fn)
	return ok && skipWS(b, end) == len(b)
}

// eachMemberAt is eachMember for the object starting at b[i]; it returns
// the object's end.
func eachMemberAt(b []byte, i int, fn func(name, value []byte) bool) (int, bool) {
	return membersAt(b, i, func(name []byte, v int) (int, bool) {
		end, ok := scanValue(b, v)
		return end, ok && fn(name, b[v:end])
	})
}

// membersAt walks the object starting at b[i] as eachMemberAt does, but
// leaves each value to fn: it gets the raw member name and the index of the
// value (whitespace skipped), reads the value and returns its end. It
// returns the object's end.
func membersAt(b []byte, i int, fn func(name []byte, v int) (int, bool)) (int, bool) {
	if i >= len(b) || b[i] != '{' {
		return 0, false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, false
		}
		end, complex, ok := scanString(b, i)
		if !ok || complex {
			return 0, false
		}
		name := b[i+1 : end-1]
		if i = skipWS(b, end); i >= len(b) || b[i] != ':' {
			return 0, false
		}
		i = skipWS(b, i+1)
		vend, ok := fn(name, i)
		if !ok || vend <= i {
			return 0, false
		}
		i = skipWS(b, vend)
		switch {
		case i < len(b) && b[i] == ',':
			i = skipWS(b, i+1)
		case i < len(b) && b[i] == '}':
			return i + 1, true
		default:
			return 0, false
		}
	}
}

// simpleString returns the contents of a JSON string value without escapes
// or non-ASCII bytes.
func simpleString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	end, complex, ok := scanString(raw, 0)
	if !ok || complex || end != len(raw) {
		return "", false
	}
	return string(raw[1 : len(raw)-1]), true
}

// fastInt parses a JSON integer the way encoding/json fills an int64.
func fastInt(raw []byte) (int64, bool) {
	if len(raw) == 0 || !(raw[0] == '-' || '0' <= raw[0] && raw[0] <= '9') {
		return 0, false
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	return n, err == nil
}

// decodeChunkFast decodes a snapshot page as encoding/json would decode it
// into a snapshotChunk (Key and Payload then alias data).
func decodeChunkFast(data []byte) (snapshotChunk, bool) {
	var ch snapshotChunk
	var seen [5]bool
	first := func(k int) bool {
		if seen[k] {
			return false
		}
		seen[k] = true
		return true
	}
	ok := eachMember(data, func(name, v []byte) bool {
		var ok bool
		switch string(name) {
		case "snapshot_id":
			ch.SnapshotID, ok = simpleString(v)
			return ok && first(0)
		case "snapshot_bundle_seq":
			ch.SnapshotBundleSeq, ok = fastInt(v)
			return ok && first(1)
		case "next_row_ordinal":
			ch.NextRowOrdinal, ok = fastInt(v)
			return ok && first(2)
		case "has_more":
			ch.HasMore = string(v) == "true"
			return (ch.HasMore || string(v) == "false") && first(3)
		case "rows":
			ch.Rows, ok = decodeRowsFast(v)
			return ok && first(4)
		}
		return false
	})
	return ch, ok
}

func decodeRowsFast(b []byte) ([]wireRow, bool) {
	if len(b) == 0 || b[0] != '[' {
		return nil, false
	}
	rows := make([]wireRow, 0, 64)
	i := skipWS(b, 1)
	if i < len(b) && b[i] == ']' {
		return rows, i+1 == len(b)
	}
	for {
		r, end, ok := decodeRowFast(b, i)
		if !ok {
			return nil, false
		}
		rows = append(rows, r)
		i = skipWS(b, end)
		switch {
		case i < len(b) && b[i] == ',':
			i = skipWS(b, i+1)
		case i < len(b) && b[i] == ']':
			return rows, i+1 == len(b)
		default:
			return nil, false
		}
	}
}

// decodeRowFast decodes the row object starting at b[i] and returns its end.
func decodeRowFast(b []byte, i int) (wireRow, int, bool) {
	var r wireRow
	var seen [6]bool
	first := func(k int) bool {
		if seen[k] {
			return false
		}
		seen[k] = true
		return true
	}
	end, ok := eachMemberAt(b, i, func(name, v []byte) bool {
		var ok bool
		switch string(name) {
		case "schema":
			r.Schema, ok = simpleString(v)
			return ok && first(0)
		case "table":
			r.Table, ok = simpleString(v)
			return ok && first(1)
		case "op":
			r.Op, ok = simpleString(v)
			return ok && first(2)
		case "row_version":
			r.RowVersion, ok = fastInt(v)
			return ok && first(3)
		case "key":
			r.Key = json.RawMessage(v)
			return first(4)
		case "payload":
			r.Payload = json.RawMessage(v)
			return first(5)
		}
		return false
	})
	return r, end, ok
}

// parseKeyFast is parseKey for a key object of one simple string member.
func parseKeyFast(t *tenant.Table, raw []byte) (string, bool) {
	var key string
	n := 0
	ok := eachMember(raw, func(name, v []byte) bool {
		n++
		var ok bool
		key, ok = simpleString(v)
		return ok && n == 1 && string(name) == t.Key.Name
	})
	return key, ok && n == 1
}

// decodePayloadFast is decodePayload for a payload whose members are
// exactly the table's columns, each once, with valid values.
func decodePayloadFast(t *tenant.Table, payload []byte, index map[string]int) ([]any, bool) {
	vals := make([]any, len(t.Columns))
	var set uint64
	if len(t.Columns) > 64 {
		return nil, false
	}
	n := 0
	ok := eachMember(payload, func(name, v []byte) bool {
		i, ok := index[string(name)]
		if !ok || set&(1<<i) != 0 {
			return false
		}
		set |= 1 << i
		n++
		x, err := decodeValueFast(t.Columns[i], v)
		if err != nil {
			return false
		}
		vals[i] = x
		return true
	})
	return vals, ok && n == len(t.Columns)
}

// decodeValueFast is decodeValue with a shortcut for plain strings.
func decodeValueFast(col *tenant.Column, raw []byte) (any, error) {
	switch col.Type {
	case tenant.ColumnText, tenant.ColumnUUID, tenant.ColumnTimestamp:
		if s, ok := simpleString(raw); ok {
			return s, nil
		}
	case tenant.ColumnInteger:
		if n, ok := fastInt(raw); ok {
			return n, nil
		}
	}
	return decodeValue(col, raw)
}

// pageFast decodes a snapshot page as decodeChunkFast followed by d.row for
// each of its rows (up to the first with an error) would, in one pass: each
// payload is decoded where it is read when its row names the table first,
// as the server's rows do. It returns the page without Rows, how many rows
// it holds and the decoded rows; ok = false when decodeChunkFast would
// step aside.
func (d *snapshotDecoder) pageFast(data []byte) (ch snapshotChunk, n int, rows []snapRow, ok bool) {
	var seen [5]bool
	first := func(k int) bool {
		if seen[k] {
			return false
		}
		seen[k] = true
		return true
	}
	end, ok := membersAt(data, skipWS(data, 0), func(name []byte, v int) (int, bool) {
		if string(name) == "rows" {
			end, ok := d.rowsFast(data, v, &n, &rows)
			return end, ok && first(4)
		}
		end, ok := scanValue(data, v)
		if !ok {
			return 0, false
		}
		raw := data[v:end]
		switch string(name) {
		case "snapshot_id":
			ch.SnapshotID, ok = simpleString(raw)
			return end, ok && first(0)
		case "snapshot_bundle_seq":
			ch.SnapshotBundleSeq, ok = fastInt(raw)
			return end, ok && first(1)
		case "next_row_ordinal":
			ch.NextRowOrdinal, ok = fastInt(raw)
			return end, ok && first(2)
		case "has_more":
			ch.HasMore = string(raw) == "true"
			return end, (ch.HasMore || string(raw) == "false") && first(3)
		}
		return 0, false
	})
	return ch, n, rows, ok && skipWS(data, end) == len(data)
}

// rowsFast reads the rows array starting at b[i], counting its rows in *n
// and appending the decoded ones to *rows, and returns the array's end.
func (d *snapshotDecoder) rowsFast(b []byte, i int, n *int, rows *[]snapRow) (int, bool) {
	if i >= len(b) || b[i] != '[' {
		return 0, false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, true
	}
	if *rows == nil {
		*rows = make([]snapRow, 0, min(snapshotPageRows, len(b)/64+1))
	}
	decode := true
	for {
		var r snapRow
		var end int
		ok := false
		if decode {
			r, end, ok = d.rowInLayout(b, i)
		}
		if !ok {
			if r, end, ok = d.rowFast(b, i, decode); !ok {
				return 0, false
			}
		}
		*n++
		if decode {
			*rows = append(*rows, r)
			decode = r.err == nil // rows after an error are only read
		}
		i = skipWS(b, end)
		switch {
		case i < len(b) && b[i] == ',':
			i = skipWS(b, i+1)
		case i < len(b) && b[i] == ']':
			return i + 1, true
		default:
			return 0, false
		}
	}
}

// rowHead is the constant start of a table's rows as the server writes
// them: {"schema":<wire schema>,"table":<table>,"key":{<key column>:
type rowHead struct {
	t    *tenant.Table
	key  int // index of the key column
	head []byte
}

// rowHeads returns the row heads of c's tables whose names need no escape.
func rowHeads(c *Client) []rowHead {
	plain := func(s string) bool {
		for i := 0; i < len(s); i++ {
			if s[i] < 0x20 || s[i] >= 0x7f || s[i] == '"' || s[i] == '\\' {
				return false
			}
		}
		return true
	}
	var heads []rowHead
	for _, t := range c.tables {
		if plain(c.cfg.WireSchema) && plain(t.Name) && plain(t.Key.Name) {
			heads = append(heads, rowHead{t: t, key: keyIndex(t),
				head: []byte(`{"schema":"` + c.cfg.WireSchema + `","table":"` + t.Name + `","key":{"` + t.Key.Name + `":`)})
		}
	}
	return heads
}

// rowInLayout decodes the row object starting at b[i] if it is laid out
// exactly as the server writes rows (a row head, the key, row_version, the
// payload with its columns in order, no whitespace) and has none of the
// errors d.row reports; otherwise it returns ok = false and rowFast reads
// the row. Its result is then the one rowFast would return.
func (d *snapshotDecoder) rowInLayout(b []byte, i int) (snapRow, int, bool) {
	rest := b[i:]
	h := d.head
	if h == nil || !bytes.HasPrefix(rest, h.head) {
		h = nil
		for k := range d.heads {
			if bytes.HasPrefix(rest, d.heads[k].head) {
				h = &d.heads[k]
				break
			}
		}
		if h == nil {
			return snapRow{}, 0, false
		}
		d.head = h
	}
	j := i + len(h.head)
	if j >= len(b) || b[j] != '"' {
		return snapRow{}, 0, false
	}
	kend, complex, ok := scanString(b, j)
	if !ok || complex {
		return snapRow{}, 0, false
	}
	key := b[j+1 : kend-1]
	const version, payload = `},"row_version":`, `,"payload":`
	if !bytes.HasPrefix(b[kend:], []byte(version)) {
		return snapRow{}, 0, false
	}
	j = kend + len(version)
	vend, ok := scanNumber(b, j)
	if !ok {
		return snapRow{}, 0, false
	}
	v, ok := fastInt(b[j:vend])
	if !ok || v <= 0 || v > d.maxSeq || !bytes.HasPrefix(b[vend:], []byte(payload)) {
		return snapRow{}, 0, false
	}
	vals, end, ok := d.payloadInOrder(h.t, b, vend+len(payload))
	if !ok || end >= len(b) || b[end] != '}' {
		return snapRow{}, 0, false
	}
	k, _ := vals[h.key].(string)
	if k != string(key) {
		return snapRow{}, 0, false
	}
	return snapRow{t: h.t, key: k, vals: vals, version: v}, end + 1, true
}

// rowFast reads the row object starting at b[i] as decodeRowFast does and,
// if decode, returns it decoded as d.row would.
func (d *snapshotDecoder) rowFast(b []byte, i int, decode bool) (snapRow, int, bool) {
	var r wireRow
	var seen [6]bool
	first := func(k int) bool {
		if seen[k] {
			return false
		}
		seen[k] = true
		return true
	}
	var pt *tenant.Table // the table the payload was decoded for
	var vals []any
	end, ok := membersAt(b, i, func(name []byte, v int) (int, bool) {
		if string(name) == "payload" && decode && seen[0] && seen[1] && r.Schema == d.c.cfg.WireSchema {
			if t := d.c.byName[r.Table]; t != nil {
				x, end, ok := d.payloadInOrder(t, b, v)
				if !ok {
					x, end, ok = d.payloadAt(t, b, v)
				}
				if ok {
					pt, vals, r.Payload = t, x, json.RawMessage(b[v:end])
					return end, first(5)
				}
			}
		}
		end, ok := scanValue(b, v)
		if !ok {
			return 0, false
		}
		raw := b[v:end]
		switch string(name) {
		case "schema":
			r.Schema, ok = simpleString(raw)
			return end, ok && first(0)
		case "table":
			r.Table, ok = simpleString(raw)
			return end, ok && first(1)
		case "op":
			r.Op, ok = simpleString(raw)
			return end, ok && first(2)
		case "row_version":
			r.RowVersion, ok = fastInt(raw)
			return end, ok && first(3)
		case "key":
			r.Key = json.RawMessage(raw)
			return end, first(4)
		case "payload":
			r.Payload = json.RawMessage(raw)
			return end, first(5)
		}
		return 0, false
	})
	if !ok || !decode {
		return snapRow{}, end, ok
	}
	return d.decoded(&r, pt, vals), end, true
}

// payloadAt decodes the payload object starting at b[i] for t as
// decodePayloadFast does, reading each value once, and returns its end.
func (d *snapshotDecoder) payloadAt(t *tenant.Table, b []byte, i int) ([]any, int, bool) {
	if len(t.Columns) > 64 {
		return nil, 0, false
	}
	index := d.columns[t]
	vals := d.values(len(t.Columns))
	var set uint64
	n := 0
	end, ok := membersAt(b, i, func(name []byte, v int) (int, bool) {
		k, ok := index[string(name)]
		if !ok || set&(1<<k) != 0 {
			return 0, false
		}
		set |= 1 << k
		n++
		x, end, ok := decodeValueAt(t.Columns[k], b, v)
		vals[k] = x
		return end, ok
	})
	return vals, end, ok && n == len(t.Columns)
}

// payloadInOrder is payloadAt for the usual payload, whose members are the
// table's columns in order (as the server builds them): it matches each
// name where it is expected instead of looking it up.
func (d *snapshotDecoder) payloadInOrder(t *tenant.Table, b []byte, i int) ([]any, int, bool) {
	if i >= len(b) || b[i] != '{' {
		return nil, 0, false
	}
	i = skipWS(b, i+1)
	vals := d.values(len(t.Columns))
	last := len(t.Columns) - 1
	for k, col := range t.Columns {
		// Column names are plain ASCII, so a literal match is the name
		// scanString would read.
		n := len(col.Name)
		if i+n+2 > len(b) || b[i] != '"' || string(b[i+1:i+1+n]) != col.Name || b[i+1+n] != '"' {
			return nil, 0, false
		}
		if i = skipWS(b, i+n+2); i >= len(b) || b[i] != ':' {
			return nil, 0, false
		}
		x, end, ok := decodeValueAt(col, b, skipWS(b, i+1))
		if !ok {
			return nil, 0, false
		}
		vals[k] = x
		switch i = skipWS(b, end); {
		case i < len(b) && k < last && b[i] == ',':
			i = skipWS(b, i+1)
		case i < len(b) && k == last && b[i] == '}':
			return vals, i + 1, true
		default:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// values returns a slice of n values, carved from a larger allocation.
func (d *snapshotDecoder) values(n int) []any {
	if len(d.block) < n {
		d.block = make([]any, n*256)
	}
	v := d.block[:n:n]
	d.block = d.block[n:]
	return v
}

// decodeValueAt is decodeValueFast for the value starting at b[i]; it
// returns the value's end.
func decodeValueAt(col *tenant.Column, b []byte, i int) (any, int, bool) {
	if i >= len(b) {
		return nil, 0, false
	}
	var end int
	var ok bool
	switch c := b[i]; {
	case c == '"' && (col.Type == tenant.ColumnText || col.Type == tenant.ColumnUUID || col.Type == tenant.ColumnTimestamp):
		var complex bool
		if end, complex, ok = scanString(b, i); ok && !complex {
			return string(b[i+1 : end-1]), end, true
		}
	case (c == '-' || '0' <= c && c <= '9') && col.Type == tenant.ColumnInteger:
		if end, ok = scanNumber(b, i); ok {
			if n, ok := fastInt(b[i:end]); ok {
				return n, end, true
			}
		}
	default:
		end, ok = scanValue(b, i)
	}
	if !ok {
		return nil, 0, false
	}
	x, err := decodeValue(col, b[i:end])
	return x, end, err == nil
}
