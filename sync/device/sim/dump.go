package sim

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/syncplane/syncplane/sync/device"
	"github.com/syncplane/syncplane/tenant"
)

// Dump renders every synced table of a device as sorted text lines, for
// comparing devices.
func Dump(ctx context.Context, s *tenant.Schema, d *device.Client) (string, error) {
	var lines []string
	for _, t := range s.Tables() {
		rows, err := d.Rows(ctx, t.Name)
		if err != nil {
			return "", err
		}
		for _, r := range rows {
			var b strings.Builder
			b.WriteString(t.Name)
			for _, c := range t.Columns {
				b.WriteString(" " + c.Name + "=" + formatValue(r[c.Name]))
			}
			lines = append(lines, b.String())
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n"), nil
}

func formatValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case string:
		return strconv.Quote(x)
	case []byte:
		return "x'" + hex.EncodeToString(x) + "'"
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case int64:
		return strconv.FormatInt(x, 10)
	}
	return fmt.Sprintf("%v", v)
}

// PGVerifier compares device rows with the tenant's PostgreSQL rows.
type PGVerifier struct {
	Pool   *pgxpool.Pool
	Schema string // the tenant's PostgreSQL schema, e.g. t_<slug>
}

// NewPGVerifier connects to the tenant's database.
func NewPGVerifier(ctx context.Context, databaseURL, pgSchema string) (*PGVerifier, error) {
	pool, err := pgxpool.New(ctx, databaseURL)
	if err != nil {
		return nil, err
	}
	return &PGVerifier{Pool: pool, Schema: pgSchema}, nil
}

// Close closes the pool.
func (v *PGVerifier) Close() { v.Pool.Close() }

// Verify checks that the device's rows equal the server's rows of user,
// value by value with the column type's notion of equality.
func (v *PGVerifier) Verify(ctx context.Context, user string, s *tenant.Schema, d *device.Client) error {
	for _, t := range s.Tables() {
		local, err := d.Rows(ctx, t.Name)
		if err != nil {
			return err
		}
		byKey := make(map[string]device.Row, len(local))
		for _, r := range local {
			k, _ := r[t.Key.Name].(string)
			byKey[k] = r
		}
		cols := make([]string, len(t.Columns))
		for i, c := range t.Columns {
			cols[i] = quoteIdent(c.Name) + "::text"
		}
		q := fmt.Sprintf("SELECT %s FROM %s.%s WHERE _sync_scope_id = $1", strings.Join(cols, ", "), quoteIdent(v.Schema), quoteIdent(t.Name))
		rows, err := v.Pool.Query(ctx, q, user)
		if err != nil {
			return err
		}
		n := 0
		for rows.Next() {
			vals := make([]sql.NullString, len(t.Columns))
			ptrs := make([]any, len(vals))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				return err
			}
			n++
			key := vals[keyIndex(t)].String
			r, ok := byKey[key]
			if !ok {
				rows.Close()
				return fmt.Errorf("%s %q is on the server but not on the device", t.Name, key)
			}
			for i, c := range t.Columns {
				if why := sameValue(c, vals[i], r[c.Name]); why != "" {
					rows.Close()
					return fmt.Errorf("%s %q column %s: %s", t.Name, key, c.Name, why)
				}
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if n != len(local) {
			return fmt.Errorf("%s: server has %d rows of the user, the device %d", t.Name, n, len(local))
		}
	}
	return nil
}

func keyIndex(t *tenant.Table) int {
	for i, c := range t.Columns {
		if c.Name == t.Key.Name {
			return i
		}
	}
	return 0
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// sameValue compares a server value (PostgreSQL text form) with a device
// value; it returns why they differ, or "".
func sameValue(c *tenant.Column, server sql.NullString, local any) string {
	if !server.Valid || local == nil {
		if server.Valid != (local != nil) {
			return fmt.Sprintf("server %v, device %v", nullText(server), formatValue(local))
		}
		return ""
	}
	diff := func() string { return fmt.Sprintf("server %q, device %s", server.String, formatValue(local)) }
	switch c.Type {
	case tenant.ColumnInteger:
		if x, ok := local.(int64); !ok || strconv.FormatInt(x, 10) != server.String {
			return diff()
		}
	case tenant.ColumnReal:
		f, err := strconv.ParseFloat(server.String, 64)
		if x, ok := local.(float64); !ok || err != nil || x != f {
			return diff()
		}
	case tenant.ColumnBlob:
		if x, ok := local.([]byte); !ok || `\x`+hex.EncodeToString(x) != server.String {
			return diff()
		}
	case tenant.ColumnJSON:
		x, _ := local.(string)
		var a, b any
		da := json.NewDecoder(strings.NewReader(server.String))
		db := json.NewDecoder(bytes.NewReader([]byte(x)))
		if da.Decode(&a) != nil || db.Decode(&b) != nil || !reflect.DeepEqual(a, b) {
			return diff()
		}
	default:
		if x, ok := local.(string); !ok || x != server.String {
			return diff()
		}
	}
	return ""
}

func nullText(s sql.NullString) string {
	if !s.Valid {
		return "NULL"
	}
	return strconv.Quote(s.String)
}
