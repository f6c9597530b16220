package sync

import "strconv"

// scanChunk reads a push chunk body in the form clients send: members named
// exactly as in the protocol, each at most once, rows as objects, and
// schema, table and op as ASCII strings without escapes. It walks the body
// once without reflection, and the rows' key, base_row_version and payload
// alias body. For any other form, valid or not, it reports ok = false and
// decodeChunk reads the body with encoding/json, whose rules (names matched
// case-insensitively, the last duplicate wins, its error messages) stay the
// definition of a chunk. body must be valid JSON.
func scanChunk(body []byte) (start int64, rows []pushRowWire, ok bool) {
	c := chunkCursor{in: body}
	if !c.take('{') {
		return 0, nil, false
	}
	haveStart, haveRows := false, false
	if !c.take('}') {
		for {
			name, ok := c.name()
			if !ok {
				return 0, nil, false
			}
			switch string(name) {
			case "start_row_ordinal":
				if haveStart {
					return 0, nil, false
				}
				haveStart = true
				if start, ok = c.integer(); !ok {
					return 0, nil, false
				}
			case "rows":
				if haveRows {
					return 0, nil, false
				}
				haveRows = true
				if rows, ok = c.rows(); !ok {
					return 0, nil, false
				}
			default:
				return 0, nil, false
			}
			if c.take(',') {
				continue
			}
			if c.take('}') {
				break
			}
			return 0, nil, false
		}
	}
	if len(skipSpace(c.in)) != 0 {
		return 0, nil, false
	}
	return start, rows, true
}

// chunkCursor is scanChunk's position in the body, with the last schema,
// table and op seen, so that the rows of a chunk share their strings.
type chunkCursor struct {
	in                []byte
	schema, table, op string
}

// take consumes b after optional white space.
func (c *chunkCursor) take(b byte) bool {
	c.in = skipSpace(c.in)
	if len(c.in) > 0 && c.in[0] == b {
		c.in = c.in[1:]
		return true
	}
	return false
}

// plain reads a string without escapes or non-ASCII bytes.
func (c *chunkCursor) plain() ([]byte, bool) {
	c.in = skipSpace(c.in)
	if len(c.in) == 0 || c.in[0] != '"' {
		return nil, false
	}
	raw, simple, rest, err := scanStringRaw(c.in)
	if err != nil || !simple {
		return nil, false
	}
	c.in = rest
	return raw, true
}

// name reads a member name and its colon.
func (c *chunkCursor) name() ([]byte, bool) {
	n, ok := c.plain()
	return n, ok && c.take(':')
}

// value reads any JSON value.
func (c *chunkCursor) value() ([]byte, bool) {
	c.in = skipSpace(c.in)
	n := valueLen(c.in)
	if n <= 0 {
		return nil, false
	}
	v := c.in[:n]
	c.in = c.in[n:]
	return v, true
}

// integer reads a number written as an optionally signed run of digits
// that fits an int64.
func (c *chunkCursor) integer() (int64, bool) {
	v, ok := c.value()
	if !ok || len(v) == 0 {
		return 0, false
	}
	digits := v
	if digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 {
		return 0, false
	}
	for _, b := range digits {
		if b < '0' || b > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	return n, err == nil
}

// str reads a plain string, reusing last when it is the same text.
func (c *chunkCursor) str(last *string) bool {
	raw, ok := c.plain()
	if !ok {
		return false
	}
	if string(raw) != *last {
		*last = string(raw)
	}
	return true
}

func (c *chunkCursor) rows() ([]pushRowWire, bool) {
	if !c.take('[') {
		return nil, false
	}
	rows := make([]pushRowWire, 0, 256)
	if c.take(']') {
		return rows, true
	}
	for {
		r, ok := c.row()
		if !ok {
			return nil, false
		}
		rows = append(rows, r)
		if c.take(',') {
			continue
		}
		return rows, c.take(']')
	}
}

func (c *chunkCursor) row() (pushRowWire, bool) {
	var r pushRowWire
	if !c.take('{') {
		return r, false
	}
	if c.take('}') {
		return r, true
	}
	var seen uint8
	for {
		name, ok := c.name()
		if !ok {
			return r, false
		}
		var bit uint8
		switch string(name) {
		case "schema":
			bit, ok = 1, c.str(&c.schema)
			r.Schema = c.schema
		case "table":
			bit, ok = 2, c.str(&c.table)
			r.Table = c.table
		case "op":
			bit, ok = 4, c.str(&c.op)
			r.Op = c.op
		case "key":
			bit = 8
			r.Key, ok = c.value()
		case "base_row_version":
			bit = 16
			r.BaseRowVersion, ok = c.value()
		case "payload":
			bit = 32
			r.Payload, ok = c.value()
		}
		if !ok || bit == 0 || seen&bit != 0 {
			return r, false
		}
		seen |= bit
		if c.take(',') {
			continue
		}
		return r, c.take('}')
	}
}
