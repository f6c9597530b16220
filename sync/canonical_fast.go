package sync

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"sort"
	"strconv"
	"unicode/utf8"
)

// appendCanonical appends the canonical form (5.6) of the JSON value at the
// start of in to dst and returns the rest of in. It produces exactly what
// CanonicalJSON does, without building a generic value; FuzzCanonical
// checks the two agree.
func appendCanonical(dst, in []byte) ([]byte, []byte, error) {
	in = skipSpace(in)
	if len(in) == 0 {
		return nil, nil, errors.New("unexpected end of JSON")
	}
	switch c := in[0]; {
	case c == '{':
		return appendObject(dst, in[1:])
	case c == '[':
		in = skipSpace(in[1:])
		dst = append(dst, '[')
		if len(in) > 0 && in[0] == ']' {
			return append(dst, ']'), in[1:], nil
		}
		for {
			var err error
			dst, in, err = appendCanonical(dst, in)
			if err != nil {
				return nil, nil, err
			}
			in = skipSpace(in)
			if len(in) == 0 {
				return nil, nil, errors.New("unterminated array")
			}
			if in[0] == ']' {
				return append(dst, ']'), in[1:], nil
			}
			if in[0] != ',' {
				return nil, nil, errors.New("expected , in array")
			}
			dst = append(dst, ',')
			in = in[1:]
		}
	case c == '"':
		s, rest, err := scanString(in)
		if err != nil {
			return nil, nil, err
		}
		return appendString(dst, s), rest, nil
	case c == 't' && bytes.HasPrefix(in, []byte("true")):
		return append(dst, "true"...), in[4:], nil
	case c == 'f' && bytes.HasPrefix(in, []byte("false")):
		return append(dst, "false"...), in[5:], nil
	case c == 'n' && bytes.HasPrefix(in, []byte("null")):
		return append(dst, "null"...), in[4:], nil
	case c == '-' || c >= '0' && c <= '9':
		end := 1
		for end < len(in) && isNumberByte(in[end]) {
			end++
		}
		f, err := strconv.ParseFloat(string(in[:end]), 64)
		if err != nil {
			return nil, nil, err
		}
		return appendFloat(dst, f), in[end:], nil
	}
	return nil, nil, errors.New("invalid JSON value")
}

type member struct {
	key string
	val []byte
}

func appendObject(dst, in []byte) ([]byte, []byte, error) {
	var members []member
	in = skipSpace(in)
	if len(in) > 0 && in[0] == '}' {
		return append(dst, "{}"...), in[1:], nil
	}
	for {
		in = skipSpace(in)
		if len(in) == 0 || in[0] != '"' {
			return nil, nil, errors.New("expected object key")
		}
		k, rest, err := scanString(in)
		if err != nil {
			return nil, nil, err
		}
		in = skipSpace(rest)
		if len(in) == 0 || in[0] != ':' {
			return nil, nil, errors.New("expected :")
		}
		var v []byte
		v, in, err = appendCanonical(nil, in[1:])
		if err != nil {
			return nil, nil, err
		}
		// Later duplicates win, as in encoding/json's map decoding.
		replaced := false
		for i := range members {
			if members[i].key == k {
				members[i].val, replaced = v, true
			}
		}
		if !replaced {
			members = append(members, member{k, v})
		}
		in = skipSpace(in)
		if len(in) == 0 {
			return nil, nil, errors.New("unterminated object")
		}
		if in[0] == '}' {
			in = in[1:]
			break
		}
		if in[0] != ',' {
			return nil, nil, errors.New("expected , in object")
		}
		in = in[1:]
	}
	sort.Slice(members, func(i, j int) bool { return members[i].key < members[j].key })
	dst = append(dst, '{')
	for i, m := range members {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, m.key)
		dst = append(dst, ':')
		dst = append(dst, m.val...)
	}
	return append(dst, '}'), in, nil
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
		k, rest, err := scanString(in)
		if err != nil {
			return false
		}
		in = skipSpace(rest)
		if len(in) == 0 || in[0] != ':' {
			return false
		}
		in = skipSpace(in[1:])
		n := valueLen(in)
		if n <= 0 {
			return false
		}
		if !fn(k, in[:n]) {
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
