package device

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/syncplane/syncplane/tenant"
)

// Row is one row of a synced table as Go values, keyed by column name:
// string (text, uuid, timestamp, json text), int64, float64, []byte or nil.
type Row map[string]any

// encodeValue renders a local column value as its wire JSON (5.5).
func encodeValue(col *tenant.Column, v any) (json.RawMessage, error) {
	if v == nil {
		return json.RawMessage("null"), nil
	}
	switch col.Type {
	case tenant.ColumnInteger:
		switch x := v.(type) {
		case int64:
			return json.RawMessage(strconv.FormatInt(x, 10)), nil
		case float64:
			if x == math.Trunc(x) && math.Abs(x) < 1<<63 {
				return json.RawMessage(strconv.FormatInt(int64(x), 10)), nil
			}
		case bool:
			if x {
				return json.RawMessage("1"), nil
			}
			return json.RawMessage("0"), nil
		}
	case tenant.ColumnReal:
		switch x := v.(type) {
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, fmt.Errorf("column %s: %v cannot be sent as JSON", col.Name, x)
			}
			return json.Marshal(x)
		case int64:
			return json.RawMessage(strconv.FormatInt(x, 10)), nil
		}
	case tenant.ColumnBlob:
		switch x := v.(type) {
		case []byte:
			return json.Marshal(base64.StdEncoding.EncodeToString(x))
		case string:
			return json.Marshal(base64.StdEncoding.EncodeToString([]byte(x)))
		}
	case tenant.ColumnJSON:
		s, ok := textOf(v)
		if !ok {
			break
		}
		if json.Valid([]byte(s)) {
			var buf bytes.Buffer
			if err := json.Compact(&buf, []byte(s)); err != nil {
				return nil, err
			}
			return buf.Bytes(), nil
		}
		return json.Marshal(s)
	case tenant.ColumnUUID:
		if s, ok := textOf(v); ok {
			return json.Marshal(strings.ToLower(s))
		}
	default: // text, timestamp
		if s, ok := textOf(v); ok {
			return json.Marshal(s)
		}
	}
	return nil, fmt.Errorf("column %s (%s): unexpected local value of type %T", col.Name, col.Type, v)
}

func textOf(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case []byte:
		return string(x), true
	}
	return "", false
}

// decodeValue converts a wire JSON value to the local value of col.
// Integers are parsed exactly.
func decodeValue(col *tenant.Column, raw json.RawMessage) (any, error) {
	raw = trimSpace(raw)
	if isNullJSON(raw) {
		return nil, nil
	}
	bad := func() error {
		s := string(raw)
		if len(s) > 60 {
			s = s[:60] + "…"
		}
		return fmt.Errorf("column %s (%s): unexpected wire value %s", col.Name, col.Type, s)
	}
	switch col.Type {
	case tenant.ColumnInteger:
		switch string(raw) {
		case "true":
			return int64(1), nil
		case "false":
			return int64(0), nil
		}
		if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
			return n, nil
		}
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || f != math.Trunc(f) || math.Abs(f) >= 1<<63 {
			return nil, bad()
		}
		return int64(f), nil
	case tenant.ColumnReal:
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil {
			return nil, bad()
		}
		return f, nil
	case tenant.ColumnBlob:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, bad()
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, bad()
		}
		return b, nil
	case tenant.ColumnJSON:
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return nil, bad()
		}
		return buf.String(), nil
	default:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, bad()
		}
		return s, nil
	}
}

// decodePayload parses a wire payload into local values. It requires every
// column of the table and nothing else (5.5 column-set parity).
func decodePayload(t *tenant.Table, payload json.RawMessage) ([]any, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(payload, &obj); err != nil || obj == nil {
		return nil, fmt.Errorf("payload for %s must be a JSON object", t.Name)
	}
	if len(obj) != len(t.Columns) {
		return nil, fmt.Errorf("payload for %s must contain every table column (got %d members, want %d)", t.Name, len(obj), len(t.Columns))
	}
	vals := make([]any, len(t.Columns))
	for i, c := range t.Columns {
		raw, ok := obj[c.Name]
		if !ok {
			return nil, fmt.Errorf("payload for %s must contain every table column (missing %s)", t.Name, c.Name)
		}
		v, err := decodeValue(c, raw)
		if err != nil {
			return nil, fmt.Errorf("payload for %s: %w", t.Name, err)
		}
		vals[i] = v
	}
	return vals, nil
}

// encodePayload renders local column values (in table column order) as a
// wire payload object.
func encodePayload(t *tenant.Table, vals []any) (json.RawMessage, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, c := range t.Columns {
		if i > 0 {
			b.WriteByte(',')
		}
		name, _ := json.Marshal(c.Name)
		b.Write(name)
		b.WriteByte(':')
		v, err := encodeValue(c, vals[i])
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", t.Name, err)
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// rowToValues orders a Row by the table's columns; missing columns are nil.
func rowToValues(t *tenant.Table, r Row) ([]any, error) {
	vals := make([]any, len(t.Columns))
	for name := range r {
		if _, ok := t.Column(name); !ok {
			return nil, fmt.Errorf("table %s has no column %q", t.Name, name)
		}
	}
	for i, c := range t.Columns {
		vals[i] = r[c.Name]
		if x, ok := vals[i].(int); ok {
			vals[i] = int64(x)
		}
	}
	return vals, nil
}

func valuesToRow(t *tenant.Table, vals []any) Row {
	r := make(Row, len(t.Columns))
	for i, c := range t.Columns {
		r[c.Name] = vals[i]
	}
	return r
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// selectSQL returns "SELECT cols FROM t WHERE key = ?".
func selectSQL(t *tenant.Table) string {
	cols := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = qi(c.Name)
	}
	return fmt.Sprintf("SELECT %s FROM %s WHERE %s = ?", strings.Join(cols, ", "), qi(t.Name), qi(t.Key.Name))
}

// readLocal reads the local row with the given key; ok is false if absent.
func readLocal(ctx context.Context, q querier, t *tenant.Table, key string) ([]any, bool, error) {
	vals := make([]any, len(t.Columns))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	err := q.QueryRowContext(ctx, selectSQL(t), key).Scan(ptrs...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return vals, true, nil
}

// upsertColumns returns t's quoted columns, one "?" per column and the
// "col = excluded.col" assignments of its non-key columns, for upserts.
func upsertColumns(t *tenant.Table) (cols, marks, sets []string) {
	cols = make([]string, len(t.Columns))
	marks = make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i], marks[i] = qi(c.Name), "?"
		if c.Name != t.Key.Name {
			sets = append(sets, qi(c.Name)+" = excluded."+qi(c.Name))
		}
	}
	return cols, marks, sets
}

// upsertLocal writes a full row (INSERT or UPDATE of every column, never a
// delete-and-insert, so no cascade fires).
func upsertLocal(ctx context.Context, q querier, t *tenant.Table, vals []any) error {
	cols, marks, sets := upsertColumns(t)
	conflict := "DO NOTHING"
	if len(sets) > 0 {
		conflict = "DO UPDATE SET " + strings.Join(sets, ", ")
	}
	q2 := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s) ON CONFLICT (%s) %s", qi(t.Name),
		strings.Join(cols, ", "), strings.Join(marks, ", "), qi(t.Key.Name), conflict)
	_, err := q.ExecContext(ctx, q2, vals...)
	return err
}

func deleteLocal(ctx context.Context, q querier, t *tenant.Table, key string) error {
	_, err := q.ExecContext(ctx, fmt.Sprintf("DELETE FROM %s WHERE %s = ?", qi(t.Name), qi(t.Key.Name)), key)
	return err
}

// keyIndex returns the index of the key column in t.Columns.
func keyIndex(t *tenant.Table) int {
	for i, c := range t.Columns {
		if c.Name == t.Key.Name {
			return i
		}
	}
	return -1
}

// parseKey extracts the key string from a wire key object.
func parseKey(t *tenant.Table, raw json.RawMessage) (string, error) {
	var key map[string]json.RawMessage
	if err := json.Unmarshal(raw, &key); err != nil {
		return "", fmt.Errorf("row key for %s is not an object", t.Name)
	}
	v, ok := key[t.Key.Name]
	if !ok {
		return "", fmt.Errorf("row key for %s lacks %q", t.Name, t.Key.Name)
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", fmt.Errorf("row key %s.%s is not a string", t.Name, t.Key.Name)
	}
	return s, nil
}
