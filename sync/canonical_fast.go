package sync

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"unicode/utf8"
)

// appendCanonical appends the canonical form (5.6) of the JSON value at the
// start of in to dst and returns the rest of in. It produces exactly what
// CanonicalJSON does, without building a generic value; FuzzCanonical
// checks the two agree.
func appendCanonical(dst, in []byte) ([]byte, []byte, error) {
	var c canonicalizer
	return c.append(dst, in)
}

// canonicalizer holds the scratch space of appendCanonical, so that a
// caller canonicalizing many documents (the bundle hasher) reuses it and
// allocates nothing per document in the common case.
type canonicalizer struct {
	buf     []byte      // canonical output, with nested objects' scratch before it
	members []memberRef // the open objects' members, innermost last
}

// memberRef is one object member: its decoded name and the span of its
// canonical value in canonicalizer.buf.
type memberRef struct {
	key        []byte
	start, end int
}

func (c *canonicalizer) append(dst, in []byte) ([]byte, []byte, error) {
	c.buf = dst
	c.members = c.members[:0]
	start, rest, err := c.value(in)
	if err != nil {
		c.buf = nil
		return nil, nil, err
	}
	// An object leaves its members' scratch before its output: move the
	// output down to where dst ended.
	n := copy(c.buf[len(dst):], c.buf[start:])
	out := c.buf[:len(dst)+n]
	c.buf = nil
	return out, rest, nil
}

// value appends the canonical form of the value at the start of in to c.buf
// and returns where that form starts (anything between the previous end
// of c.buf and start is scratch).
func (c *canonicalizer) value(in []byte) (int, []byte, error) {
	in = skipSpace(in)
	start := len(c.buf)
	if len(in) == 0 {
		return 0, nil, errors.New("unexpected end of JSON")
	}
	switch ch := in[0]; {
	case ch == '{':
		return c.object(in[1:])
	case ch == '[':
		in = skipSpace(in[1:])
		c.buf = append(c.buf, '[')
		if len(in) > 0 && in[0] == ']' {
			c.buf = append(c.buf, ']')
			return start, in[1:], nil
		}
		for {
			elem := len(c.buf)
			s, rest, err := c.value(in)
			if err != nil {
				return 0, nil, err
			}
			if s != elem {
				// A nested object wrote scratch first: keep only its output.
				n := copy(c.buf[elem:], c.buf[s:])
				c.buf = c.buf[:elem+n]
			}
			in = skipSpace(rest)
			if len(in) == 0 {
				return 0, nil, errors.New("unterminated array")
			}
			if in[0] == ']' {
				c.buf = append(c.buf, ']')
				return start, in[1:], nil
			}
			if in[0] != ',' {
				return 0, nil, errors.New("expected , in array")
			}
			c.buf = append(c.buf, ',')
			in = in[1:]
		}
	case ch == '"':
		raw, simple, rest, err := scanStringRaw(in)
		if err != nil {
			return 0, nil, err
		}
		if simple {
			c.buf = appendSimpleString(c.buf, raw)
			return start, rest, nil
		}
		s, err := decodeString(in[:len(in)-len(rest)])
		if err != nil {
			return 0, nil, err
		}
		c.buf = appendString(c.buf, s)
		return start, rest, nil
	case ch == 't' && bytes.HasPrefix(in, []byte("true")):
		c.buf = append(c.buf, "true"...)
		return start, in[4:], nil
	case ch == 'f' && bytes.HasPrefix(in, []byte("false")):
		c.buf = append(c.buf, "false"...)
		return start, in[5:], nil
	case ch == 'n' && bytes.HasPrefix(in, []byte("null")):
		c.buf = append(c.buf, "null"...)
		return start, in[4:], nil
	case ch == '-' || ch >= '0' && ch <= '9':
		end := 1
		digits := ch != '-'
		for end < len(in) && isNumberByte(in[end]) {
			digits = digits && in[end] >= '0' && in[end] <= '9'
			end++
		}
		// A plain integer of at most 15 digits is exact as a double and
		// its shortest form is itself (JSON has no leading zeros).
		if n := end; digits && n <= 15 && (n == 1 || in[0] != '0') {
			c.buf = append(c.buf, in[:end]...)
			return start, in[end:], nil
		}
		f, err := strconv.ParseFloat(string(in[:end]), 64)
		if err != nil {
			return 0, nil, err
		}
		c.buf = appendFloat(c.buf, f)
		return start, in[end:], nil
	}
	return 0, nil, errors.New("invalid JSON value")
}

// object canonicalizes the members of the object whose '{' has been read.
func (c *canonicalizer) object(in []byte) (int, []byte, error) {
	m0 := len(c.members)
	defer func() { c.members = c.members[:m0] }()
	in = skipSpace(in)
	if len(in) > 0 && in[0] == '}' {
		start := len(c.buf)
		c.buf = append(c.buf, "{}"...)
		return start, in[1:], nil
	}
	for {
		in = skipSpace(in)
		if len(in) == 0 || in[0] != '"' {
			return 0, nil, errors.New("expected object key")
		}
		raw, simple, rest, err := scanStringRaw(in)
		if err != nil {
			return 0, nil, err
		}
		key := raw
		if !simple {
			s, err := decodeString(in[:len(in)-len(rest)])
			if err != nil {
				return 0, nil, err
			}
			key = []byte(s)
		}
		in = skipSpace(rest)
		if len(in) == 0 || in[0] != ':' {
			return 0, nil, errors.New("expected :")
		}
		start, rest, err := c.value(in[1:])
		if err != nil {
			return 0, nil, err
		}
		in = rest
		// Later duplicates win, as in encoding/json's map decoding.
		replaced := false
		for i := m0; i < len(c.members); i++ {
			if bytes.Equal(c.members[i].key, key) {
				c.members[i].start, c.members[i].end, replaced = start, len(c.buf), true
			}
		}
		if !replaced {
			c.members = append(c.members, memberRef{key: key, start: start, end: len(c.buf)})
		}
		in = skipSpace(in)
		if len(in) == 0 {
			return 0, nil, errors.New("unterminated object")
		}
		if in[0] == '}' {
			in = in[1:]
			break
		}
		if in[0] != ',' {
			return 0, nil, errors.New("expected , in object")
		}
		in = in[1:]
	}
	ms := c.members[m0:]
	// Insertion sort: objects are small, and rows rendered by PostgreSQL
	// come in an order that is often nearly sorted.
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && bytes.Compare(ms[j].key, ms[j-1].key) < 0; j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
	start := len(c.buf)
	c.buf = append(c.buf, '{')
	for i, m := range ms {
		if i > 0 {
			c.buf = append(c.buf, ',')
		}
		c.buf = appendString(c.buf, string(m.key))
		c.buf = append(c.buf, ':')
		c.buf = append(c.buf, c.buf[m.start:m.end]...)
	}
	c.buf = append(c.buf, '}')
	return start, in, nil
}

func skipSpace(in []byte) []byte {
	for len(in) > 0 && (in[0] == ' ' || in[0] == '\t' || in[0] == '\n' || in[0] == '\r') {
		in = in[1:]
	}
	return in
}

func isNumberByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'
}

// scanStringRaw scans the JSON string at the start of in. When simple, raw is
// its content, which needs no decoding: ASCII without escapes.
func scanStringRaw(in []byte) (raw []byte, simple bool, rest []byte, err error) {
	simple = true
	for i := 1; i < len(in); i++ {
		switch c := in[i]; {
		case c == '"':
			return in[1:i], simple, in[i+1:], nil
		case c == '\\':
			simple = false
			i++
		case c < 0x20:
			return nil, false, nil, errors.New("control character in string")
		case c >= utf8.RuneSelf:
			simple = false
		}
	}
	return nil, false, nil, errors.New("unterminated string")
}

// decodeString decodes the quoted JSON string q as encoding/json does.
func decodeString(q []byte) (string, error) {
	var s string
	err := json.Unmarshal(q, &s)
	return s, err
}

// appendSimpleString writes a simple string (see scanStringRaw) the way
// appendString does: only <, > and & need escaping.
func appendSimpleString(dst, raw []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i, b := range raw {
		if b == '<' || b == '>' || b == '&' {
			dst = append(dst, raw[start:i]...)
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			start = i + 1
		}
	}
	dst = append(dst, raw[start:]...)
	return append(dst, '"')
}

// scanString decodes the JSON string at the start of in.
func scanString(in []byte) (string, []byte, error) {
	simple := true
	for i := 1; i < len(in); i++ {
		switch c := in[i]; {
		case c == '"':
			if simple {
				return string(in[1:i]), in[i+1:], nil
			}
			var s string
			if err := json.Unmarshal(in[:i+1], &s); err != nil {
				return "", nil, err
			}
			return s, in[i+1:], nil
		case c == '\\':
			simple = false
			i++
		case c < 0x20:
			return "", nil, errors.New("control character in string")
		case c >= utf8.RuneSelf:
			simple = false
		}
	}
	return "", nil, errors.New("unterminated string")
}

const hexDigits = "0123456789abcdef"

// appendString writes s the way encoding/json does with HTML escaping.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendFloat formats f as encoding/json does for float64.
func appendFloat(dst []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// forEachMember calls fn for each member of the JSON object raw, with the
// member's decoded name and raw value. raw must be valid JSON (it comes from
// a json.RawMessage); it reports false when raw is not an object.
func forEachMember(raw []byte, fn func(key string, val []byte) bool) bool {
	bad := false
	ok := forEachMemberRaw(raw, func(q []byte, simple bool, val []byte) bool {
		k, err := memberName(q, simple)
		if err != nil {
			bad = true
			return false
		}
		return fn(k, val)
	})
	return ok && !bad
}

// forEachMemberRaw is forEachMember without decoding names: fn gets each
// name quoted as it appears, and whether it is simple (see scanStringRaw),
// so that its content q[1:len(q)-1] is the name itself.
func forEachMemberRaw(raw []byte, fn func(q []byte, simple bool, val []byte) bool) bool {
	in := skipSpace(raw)
	if len(in) == 0 || in[0] != '{' {
		return false
	}
	in = skipSpace(in[1:])
	if len(in) > 0 && in[0] == '}' {
		return true
	}
	for {
		in = skipSpace(in)
		if len(in) == 0 || in[0] != '"' {
			return false
		}
		content, simple, rest, err := scanStringRaw(in)
		if err != nil {
			return false
		}
		q := in[:len(content)+2]
		in = skipSpace(rest)
		if len(in) == 0 || in[0] != ':' {
			return false
		}
		in = skipSpace(in[1:])
		n := valueLen(in)
		if n <= 0 {
			return false
		}
		if !fn(q, simple, in[:n]) {
			return true
		}
		in = skipSpace(in[n:])
		if len(in) == 0 {
			return false
		}
		if in[0] == '}' {
			return true
		}
		if in[0] != ',' {
			return false
		}
		in = in[1:]
	}
}

// memberName decodes a quoted member name from forEachMemberRaw.
func memberName(q []byte, simple bool) (string, error) {
	if simple {
		return string(q[1 : len(q)-1]), nil
	}
	return decodeString(q)
}

// valueLen is the length of the valid JSON value at the start of in.
func valueLen(in []byte) int {
	if len(in) == 0 {
		return 0
	}
	switch c := in[0]; {
	case c == '"':
		for i := 1; i < len(in); i++ {
			switch in[i] {
			case '\\':
				i++
			case '"':
				return i + 1
			}
		}
		return 0
	case c == '{' || c == '[':
		depth := 0
		for i := 0; i < len(in); i++ {
			switch in[i] {
			case '"':
				n := valueLen(in[i:])
				if n == 0 {
					return 0
				}
				i += n - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return 0
	default:
		i := 0
		for i < len(in) && (isNumberByte(in[i]) || in[i] >= 'a' && in[i] <= 'z') {
			i++
		}
		return i
	}
}

// isName reports whether s matches ^[a-z0-9_]+$.
func isName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
