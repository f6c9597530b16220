package sync

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
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
	// versionColumn holds a business row's row version (tenant migration
	// 000008), hidden from the wire like scopeColumn.
	versionColumn = "_sync_row_version"
)

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

// stagedRow is a validated push row, staged in a _sync_push_run.
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
	return decodeChunkWith(body, wireSchema, cat, maxRows, true)
}

// decodeChunkWith is decodeChunk; fast = false skips scanChunk, so that a
// test can hold both readings of a body side by side.
func decodeChunkWith(body []byte, wireSchema string, cat *catalog, maxRows int, fast bool) (int64, []stagedRow, *chunkError) {
	var req pushChunkWire
	scanned := false
	if fast && json.Valid(body) {
		req.StartRowOrdinal, req.Rows, scanned = scanChunk(body)
	}
	if !scanned {
		req = pushChunkWire{}
		if err := json.Unmarshal(body, &req); err != nil {
			return 0, nil, &chunkError{Code: "invalid_request", Message: "request body is not a valid push chunk: " + jsonProblem(err)}
		}
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
	pb := payloadBuilder{arenaSize: len(body) + len(body)/8}
	for i := range req.Rows {
		r, cerr := validateRow(&req.Rows[i], wireSchema, cat, &pb)
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
	if !isName(schema) {
		return nil, invalidChunk("invalid schema name %q", schema)
	}
	if !isName(table) {
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
	var v []byte
	found, bad := false, false
	if len(raw) == 0 || !forEachMemberRaw(raw, func(q []byte, simple bool, val []byte) bool {
		match := simple && string(q[1:len(q)-1]) == t.keyCol
		if !simple {
			k, err := memberName(q, false)
			if bad = err != nil; bad {
				return false
			}
			match = k == t.keyCol
		}
		if match {
			v, found = val, true // later duplicates win, as with a map
		}
		return true
	}) || bad {
		return "", invalidChunk("row key for %s.%s must be a JSON object", schema, t.name)
	}
	if !found {
		return "", invalidChunk("row key for %s.%s must include %q", schema, t.name, t.keyCol)
	}
	s, ok := jsonString(v)
	if !ok {
		return "", invalidChunk("row key %s.%s.%s must be a string", schema, t.name, t.keyCol)
	}
	if t.keyUUID && !isCanonicalUUID(s) {
		return "", invalidChunk("row key %s.%s.%s must use canonical dashed lowercase UUID text", schema, t.name, t.keyCol)
	}
	return s, nil
}

// jsonString decodes a raw JSON string value.
func jsonString(v []byte) (string, bool) {
	if len(v) == 0 || v[0] != '"' {
		return "", false
	}
	s, rest, err := scanString(v)
	return s, err == nil && len(skipSpace(rest)) == 0
}

// isCanonicalUUID reports whether s is 36-character dashed lowercase hex.
func isCanonicalUUID[T string | []byte](s T) bool {
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

func validateRow(w *pushRowWire, wireSchema string, cat *catalog, pb *payloadBuilder) (stagedRow, *chunkError) {
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
	payload, cols, cerr := pb.normalize(w.Payload, s, t, keyText)
	if cerr != nil {
		return stagedRow{}, cerr
	}
	r.Payload, r.Cols = payload, cols
	return r, nil
}

// normalizePayload validates an INSERT/UPDATE payload (protocol 5.4) and
// returns it in apply form: lowercase member names in name order, the key
// column present, bytea values as PostgreSQL hex text, every other value
// byte-exact. Cols is the comma-joined member names.
func normalizePayload(raw json.RawMessage, s string, t *catTable, keyText string) ([]byte, string, *chunkError) {
	var pb payloadBuilder
	return pb.normalize(raw, s, t, keyText)
}

// payloadBuilder normalizes the payloads of one chunk. The payloads it
// returns share large arena blocks, and consecutive rows with the same
// columns share one cols string.
type payloadBuilder struct {
	arenaSize int      // size of a new arena block (at least 64 KiB)
	arena     []byte   // the current block, up to its used length
	slots     [][]byte // values by column rank, for the current row
	names     []byte
	cols      string
	key       []byte
}

func (p *payloadBuilder) normalize(raw json.RawMessage, s string, t *catTable, keyText string) ([]byte, string, *chunkError) {
	if cap(p.slots) < len(t.sorted) {
		p.slots = make([][]byte, len(t.sorted))
	}
	slots := p.slots[:len(t.sorted)]
	clear(slots)
	var lower [64]byte
	var cerr *chunkError
	ok := forEachMemberRaw(raw, func(q []byte, simple bool, v []byte) bool {
		rank := -1
		if name := q[1 : len(q)-1]; simple && len(name) <= len(lower) {
			lc := lower[:len(name)]
			for i, b := range name {
				if 'A' <= b && b <= 'Z' {
					b += 'a' - 'A'
				}
				lc[i] = b
			}
			if r, known := t.rank[string(lc)]; known {
				rank = r
			}
		}
		if rank < 0 {
			if rank, cerr = columnRank(q, simple, s, t); cerr != nil {
				return false
			}
		}
		lc := t.sorted[rank]
		if slots[rank] != nil {
			cerr = invalidChunk("payload for %s.%s contains column %q more than once", s, t.name, lc)
			return false
		}
		if rank == t.keyRank && !isJSONStringOf(v, keyText) {
			cerr = invalidChunk("payload key %s.%s.%s must match request key", s, t.name, t.keyCol)
			return false
		}
		nv, e := checkValue(v, t.types[rank], s, t.name, lc, rank == t.keyRank)
		if e != nil {
			cerr = e
			return false
		}
		slots[rank] = nv
		return true
	})
	if cerr != nil {
		return nil, "", cerr
	}
	if !ok {
		return nil, "", invalidChunk("payload for %s.%s must be a JSON object", s, t.name)
	}
	if slots[t.keyRank] == nil {
		p.key = appendString(p.key[:0], keyText)
		slots[t.keyRank] = p.key
	}
	size := 2
	for rank, v := range slots {
		if v != nil {
			size += len(t.sorted[rank]) + len(v) + 4
		}
	}
	b := p.alloc(size)
	p.names = p.names[:0]
	b = append(b, '{')
	for rank, v := range slots {
		if v == nil {
			continue
		}
		if len(p.names) > 0 {
			b = append(b, ',')
			p.names = append(p.names, ',')
		}
		name := t.sorted[rank]
		b = append(b, '"')
		b = append(b, name...) // ^[a-z0-9_]+$: needs no escaping
		b = append(b, '"', ':')
		b = append(b, v...)
		p.names = append(p.names, name...)
	}
	b = append(b, '}')
	if string(p.names) != p.cols {
		p.cols = string(p.names)
	}
	return b, p.cols, nil
}

// alloc returns an empty slice with capacity n from the arena.
func (p *payloadBuilder) alloc(n int) []byte {
	used := len(p.arena)
	if cap(p.arena)-used < n {
		p.arena = make([]byte, 0, max(p.arenaSize, 64<<10, n))
		used = 0
	}
	p.arena = p.arena[:used+n]
	return p.arena[used : used : used+n]
}

// columnRank resolves a member name the general way: decoded, lowercased
// with Unicode rules, and checked against the hidden scope column and the
// table's columns.
func columnRank(q []byte, simple bool, s string, t *catTable) (int, *chunkError) {
	name, err := memberName(q, simple)
	if err != nil {
		return 0, invalidChunk("payload for %s.%s must be a JSON object", s, t.name)
	}
	lc := name
	if !isName(lc) {
		lc = strings.ToLower(name)
	}
	if lc == scopeColumn {
		return 0, invalidChunk("payload for %s.%s must not include hidden scope column %q", s, t.name, scopeColumn)
	}
	if !isName(lc) {
		return 0, invalidChunk("payload for %s.%s contains invalid column %q", s, t.name, name)
	}
	rank, known := t.rank[lc]
	if !known {
		return 0, invalidChunk("payload for %s.%s contains unknown column %q", s, t.name, lc)
	}
	return rank, nil
}

// isJSONStringOf reports whether the raw JSON value v is the string s.
func isJSONStringOf(v []byte, s string) bool {
	if len(v) == len(s)+2 && v[0] == '"' && string(v[1:len(v)-1]) == s && isPlainText(s) {
		return true // the same bytes, and no escapes or non-ASCII to decode
	}
	ks, isStr := jsonString(v)
	return isStr && ks == s
}

// isPlainText reports whether s is printable ASCII without backslashes,
// which a JSON string holds verbatim.
func isPlainText(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\\' || c < 0x20 || c >= 0x80 {
			return false
		}
	}
	return true
}

// checkValue validates one payload value against its column type and
// returns the value the apply statement reads.
// isKey says v is the row's key, already checked to match the request key.
func checkValue(v json.RawMessage, typ tenant.ColumnType, s, table, column string, isKey bool) (json.RawMessage, *chunkError) {
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
		if isKey || len(v) == 38 && v[0] == '"' && isCanonicalUUID([]byte(v[1:37])) {
			return v, nil // canonical text (a UUID key is, by parseKey)
		}
		str, isStr := jsonString(v)
		if !isStr {
			return nil, bad("a UUID string")
		}
		if _, err := uuid.Parse(str); err != nil || strings.HasPrefix(strings.ToLower(str), "urn:") {
			return nil, bad("a UUID string")
		}
	case tenant.ColumnBlob:
		str, isStr := jsonString(v)
		if !isStr {
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
