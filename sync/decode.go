package sync

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/syncplane/syncplane/tenant"
)

const (
	opInsert = "INSERT"
	opUpdate = "UPDATE"
	opDelete = "DELETE"

	scopeColumn = "_sync_scope_id"
)

var namePattern = regexp.MustCompile(`^[a-z0-9_]+$`)

// pushRowWire is a push row as sent (OpenAPI PushRequestRow).
type pushRowWire struct {
	Schema         string          `json:"schema"`
	Table          string          `json:"table"`
	Key            json.RawMessage `json:"key"`
	Op             string          `json:"op"`
	BaseRowVersion json.RawMessage `json:"base_row_version"`
	Payload        json.RawMessage `json:"payload"`
}

type pushChunkWire struct {
	StartRowOrdinal int64         `json:"start_row_ordinal"`
	Rows            []pushRowWire `json:"rows"`
}

// stagedRow is a validated push row ready for _sync_push_row.
type stagedRow struct {
	Table   string
	KeyText string
	Op      string
	Base    int64
	Cols    string // sorted, comma-joined payload columns
	Payload []byte // JSON object for the apply statement; nil for DELETE
}

// chunkError is a rejected chunk: Code is invalid_request (unparsable body)
// or push_chunk_invalid.
type chunkError struct {
	Code    string
	Message string
}

func (e *chunkError) Error() string { return e.Code + ": " + e.Message }

func invalidChunk(format string, args ...any) *chunkError {
	return &chunkError{Code: "push_chunk_invalid", Message: fmt.Sprintf(format, args...)}
}

// decodeChunk parses and validates a chunk body (protocol 7.4 steps 1-2)
// without touching the database. maxRows bounds len(rows).
func decodeChunk(body []byte, wireSchema string, cat *catalog, maxRows int) (int64, []stagedRow, *chunkError) {
	var req pushChunkWire
	if err := json.Unmarshal(body, &req); err != nil {
		return 0, nil, &chunkError{Code: "invalid_request", Message: "request body is not a valid push chunk: " + jsonProblem(err)}
	}
	if req.StartRowOrdinal < 0 {
		return 0, nil, invalidChunk("start_row_ordinal must be >= 0")
	}
	if len(req.Rows) == 0 {
		return 0, nil, invalidChunk("rows must not be empty")
	}
	if len(req.Rows) > maxRows {
		return 0, nil, invalidChunk("chunk has %d rows; at most %d are allowed", len(req.Rows), maxRows)
	}
	rows := make([]stagedRow, 0, len(req.Rows))
	seen := make(map[[2]string]struct{}, len(req.Rows))
	for i := range req.Rows {
		r, cerr := validateRow(&req.Rows[i], wireSchema, cat)
		if cerr != nil {
			return 0, nil, cerr
		}
		k := [2]string{r.Table, r.KeyText}
		if _, dup := seen[k]; dup {
			return 0, nil, invalidChunk("duplicate target row in push chunk: %s.%s %s", wireSchema, r.Table, r.KeyText)
		}
		seen[k] = struct{}{}
		rows = append(rows, r)
	}
	return req.StartRowOrdinal, rows, nil
}

// normalizeTarget applies protocol 5.1 to a row's schema and table.
func normalizeTarget(schema, table, wireSchema string, cat *catalog) (*catTable, *chunkError) {
	schema = strings.ToLower(strings.TrimSpace(schema))
	table = strings.ToLower(strings.TrimSpace(table))
	if schema == "" {
		schema = "public"
	}
	if !namePattern.MatchString(schema) {
		return nil, invalidChunk("invalid schema name %q", schema)
	}
	if !namePattern.MatchString(table) {
		return nil, invalidChunk("invalid table name %q", table)
	}
	t, ok := cat.byName[table]
	if schema != wireSchema || !ok {
		return nil, invalidChunk("table %s.%s is not registered", schema, table)
	}
	return t, nil
}

// parseKey checks a row key object (protocol 5.2) and returns the key text.
func parseKey(raw json.RawMessage, schema string, t *catTable) (string, *chunkError) {
	var key map[string]json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &key) != nil || key == nil {
		return "", invalidChunk("row key for %s.%s must be a JSON object", schema, t.name)
	}
	v, ok := key[t.keyCol]
	if !ok {
		return "", invalidChunk("row key for %s.%s must include %q", schema, t.name, t.keyCol)
	}
	var s string
	if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &s) != nil {
		return "", invalidChunk("row key %s.%s.%s must be a string", schema, t.name, t.keyCol)
	}
	if t.keyUUID && !isCanonicalUUID(s) {
		return "", invalidChunk("row key %s.%s.%s must use canonical dashed lowercase UUID text", schema, t.name, t.keyCol)
	}
	return s, nil
}

// isCanonicalUUID reports whether s is 36-character dashed lowercase hex.
func isCanonicalUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	return true
}

func validateRow(w *pushRowWire, wireSchema string, cat *catalog) (stagedRow, *chunkError) {
	t, cerr := normalizeTarget(w.Schema, w.Table, wireSchema, cat)
	if cerr != nil {
		return stagedRow{}, cerr
	}
	s := wireSchema
	op := strings.ToUpper(strings.TrimSpace(w.Op))
	if op != opInsert && op != opUpdate && op != opDelete {
		return stagedRow{}, invalidChunk("invalid op %q for %s.%s", w.Op, s, t.name)
	}
	keyText, cerr := parseKey(w.Key, s, t)
	if cerr != nil {
		return stagedRow{}, cerr
	}
	var base int64
	if len(w.BaseRowVersion) > 0 && string(w.BaseRowVersion) != "null" {
		n, err := strconv.ParseInt(string(w.BaseRowVersion), 10, 64)
		if err != nil {
			return stagedRow{}, invalidChunk("base_row_version for %s.%s must be an integer", s, t.name)
		}
		base = n
	}
	r := stagedRow{Table: t.name, KeyText: keyText, Op: op, Base: base}
	hasPayload := len(w.Payload) > 0 && string(w.Payload) != "null"
	if op == opDelete {
		if hasPayload {
			return stagedRow{}, invalidChunk("DELETE for %s.%s must not include payload", s, t.name)
		}
		return r, nil
	}
	if !hasPayload {
		return stagedRow{}, invalidChunk("%s for %s.%s requires payload", op, s, t.name)
	}
	payload, cols, cerr := normalizePayload(w.Payload, s, t, keyText)
	if cerr != nil {
		return stagedRow{}, cerr
	}
	r.Payload, r.Cols = payload, cols
	return r, nil
}

// normalizePayload validates an INSERT/UPDATE payload (protocol 5.4) and
// returns it in apply form: lowercase member names, the key column present,
// bytea values as PostgreSQL hex text, every other value byte-exact.
func normalizePayload(raw json.RawMessage, s string, t *catTable, keyText string) ([]byte, string, *chunkError) {
	if raw[0] != '{' {
		return nil, "", invalidChunk("payload for %s.%s must be a JSON object", s, t.name)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return nil, "", invalidChunk("payload for %s.%s must be a JSON object", s, t.name)
	}
	vals := make(map[string]json.RawMessage, len(obj)+1)
	for name, v := range obj {
		lc := strings.ToLower(name)
		if lc == scopeColumn {
			return nil, "", invalidChunk("payload for %s.%s must not include hidden scope column %q", s, t.name, scopeColumn)
		}
		if !namePattern.MatchString(lc) {
			return nil, "", invalidChunk("payload for %s.%s contains invalid column %q", s, t.name, name)
		}
		typ, ok := t.cols[lc]
		if !ok {
			return nil, "", invalidChunk("payload for %s.%s contains unknown column %q", s, t.name, lc)
		}
		if _, dup := vals[lc]; dup {
			return nil, "", invalidChunk("payload for %s.%s contains column %q more than once", s, t.name, lc)
		}
		if lc == t.keyCol {
			var ks string
			if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &ks) != nil || ks != keyText {
				return nil, "", invalidChunk("payload key %s.%s.%s must match request key", s, t.name, t.keyCol)
			}
		}
		nv, cerr := checkValue(v, typ, s, t.name, lc)
		if cerr != nil {
			return nil, "", cerr
		}
		vals[lc] = nv
	}
	if _, ok := vals[t.keyCol]; !ok {
		kb, _ := json.Marshal(keyText)
		vals[t.keyCol] = kb
	}
	names := make([]string, 0, len(vals))
	for n := range vals {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		b.WriteString(n) // ^[a-z0-9_]+$: needs no escaping
		b.WriteString(`":`)
		b.Write(vals[n])
	}
	b.WriteByte('}')
	return b.Bytes(), strings.Join(names, ","), nil
}

// checkValue validates one payload value against its column type and
// returns the value the apply statement reads.
func checkValue(v json.RawMessage, typ tenant.ColumnType, s, table, column string) (json.RawMessage, *chunkError) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return nil, invalidChunk("payload field %s.%s.%s is empty", s, table, column)
	}
	if string(v) == "null" {
		return v, nil
	}
	bad := func(want string) *chunkError {
		return invalidChunk("payload field %s.%s.%s must be %s", s, table, column, want)
	}
	switch typ {
	case tenant.ColumnText, tenant.ColumnTimestamp:
		if v[0] != '"' {
			return nil, bad("a string")
		}
	case tenant.ColumnInteger:
		if _, err := strconv.ParseInt(string(v), 10, 64); err != nil {
			return nil, bad("an integer in the 64-bit range")
		}
	case tenant.ColumnReal:
		if !isJSONNumber(v) {
			return nil, bad("a number")
		}
		if f, err := strconv.ParseFloat(string(v), 64); err != nil || f != f {
			return nil, bad("a finite number")
		}
	case tenant.ColumnUUID:
		var str string
		if v[0] != '"' || json.Unmarshal(v, &str) != nil {
			return nil, bad("a UUID string")
		}
		if _, err := uuid.Parse(str); err != nil || strings.HasPrefix(strings.ToLower(str), "urn:") {
			return nil, bad("a UUID string")
		}
	case tenant.ColumnBlob:
		var str string
		if v[0] != '"' || json.Unmarshal(v, &str) != nil {
			return nil, invalidChunk("payload binary field %s.%s.%s must be a base64 string", s, table, column)
		}
		raw, err := base64.StdEncoding.Strict().DecodeString(str)
		if err != nil {
			return nil, invalidChunk("payload binary field %s.%s.%s must be valid base64", s, table, column)
		}
		out, _ := json.Marshal(`\x` + hex.EncodeToString(raw))
		return out, nil
	case tenant.ColumnJSON:
		// any JSON value; stored as jsonb
	}
	return v, nil
}

func isJSONNumber(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	c := v[0]
	return c == '-' || c >= '0' && c <= '9'
}

// jsonProblem turns a decoding error into public text without echoing input.
func jsonProblem(err error) string {
	switch e := err.(type) {
	case *json.SyntaxError:
		return fmt.Sprintf("malformed JSON at byte %d", e.Offset)
	case *json.UnmarshalTypeError:
		if e.Field != "" {
			return fmt.Sprintf("field %s must be %s", e.Field, e.Type.String())
		}
		return "unexpected JSON type " + e.Value
	}
	return "malformed JSON"
}
