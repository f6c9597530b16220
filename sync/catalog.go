package sync

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	gosync "sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"

	"github.com/syncplane/syncplane/tenant"
)

// catalog is a tenant's registered tables as the protocol engine needs them,
// derived once per *tenant.Schema.
type catalog struct {
	tables []*catTable // sorted by name
	byName map[string]*catTable
}

type catTable struct {
	name    string
	ord     int // position in name order; snapshot order (protocol 6)
	keyCol  string
	keyUUID bool
	cols    map[string]tenant.ColumnType
	colList []string // declared order
	bytea   []string // bytea column names (see wireExpr)
	// sorted, types and rank index the columns by name order, the order of
	// a staged payload's members; keyRank is the key column's rank.
	sorted  []string
	types   []tenant.ColumnType
	rank    map[string]int
	keyRank int
	// deleteSpreads: deleting a row of this table can change rows of other
	// tables (a foreign key with ON DELETE CASCADE, SET NULL or SET
	// DEFAULT references it), so one push may touch a key twice.
	deleteSpreads bool
}

// indexColumns fills sorted, types, rank and keyRank from cols.
func (t *catTable) indexColumns() {
	t.sorted = slices.Sorted(maps.Keys(t.cols))
	t.types = make([]tenant.ColumnType, len(t.sorted))
	t.rank = make(map[string]int, len(t.sorted))
	for i, c := range t.sorted {
		t.types[i] = t.cols[c]
		t.rank[c] = i
	}
	t.keyRank = t.rank[t.keyCol]
}

// keyCast is the SQL cast that turns key text into the key column's type.
func (t *catTable) keyCast() string {
	if t.keyUUID {
		return "::uuid"
	}
	return "::text"
}

// wireExpr is the SQL expression of a row's wire payload (5.4) for the
// table aliased alias, as json text: every visible column in declared order,
// rendered by PostgreSQL's JSON output like to_jsonb would, bytea columns as
// standard base64 (encode wraps lines every 76 characters).
func (t *catTable) wireExpr(alias string) string {
	if len(t.colList) > 50 { // json_build_object takes at most 100 arguments
		e := `((to_jsonb(` + alias + `) - '{` + scopeColumn + `,` + versionColumn + `}'::text[])`
		for _, c := range t.bytea {
			e += ` || jsonb_build_object('` + c + `', translate(encode(` + alias + `.` + col(c) + `, 'base64'), E'\n', ''))`
		}
		return e + `)`
	}
	parts := make([]string, 0, len(t.colList))
	for _, c := range t.colList {
		v := alias + `.` + col(c)
		if t.cols[c] == tenant.ColumnBlob {
			v = `translate(encode(` + v + `, 'base64'), E'\n', '')`
		}
		parts = append(parts, `'`+c+`', `+v)
	}
	return `json_build_object(` + strings.Join(parts, ", ") + `)`
}

// catalogCache maps *tenant.Schema to its *catalog. Runtimes reloaded by
// the gateway bring new Schema values, so the cache is dropped whenever it
// grows past catalogCacheMax entries; rebuilding a catalog is cheap.
var (
	catalogCache     gosync.Map
	catalogCacheSize atomic.Int64
)

const catalogCacheMax = 4096

var emptyCatalog = &catalog{byName: map[string]*catTable{}}

// catalogFor returns the catalog of s (nil s: no registered tables).
func catalogFor(s *tenant.Schema) *catalog {
	if s == nil {
		return emptyCatalog
	}
	if c, ok := catalogCache.Load(s); ok {
		return c.(*catalog)
	}
	c := &catalog{byName: map[string]*catTable{}}
	for i, t := range s.Tables() {
		ct := &catTable{name: t.Name, ord: i, keyCol: t.Key.Name, keyUUID: t.Key.Type == tenant.ColumnUUID,
			cols: map[string]tenant.ColumnType{}}
		for _, col := range t.Columns {
			ct.cols[col.Name] = col.Type
			ct.colList = append(ct.colList, col.Name)
			if col.Type == tenant.ColumnBlob {
				ct.bytea = append(ct.bytea, col.Name)
			}
		}
		ct.indexColumns()
		c.tables = append(c.tables, ct)
		c.byName[t.Name] = ct
	}
	for _, t := range s.Tables() {
		for _, fk := range t.ForeignKeys {
			if ref, ok := c.byName[fk.References]; ok {
				switch fk.OnDelete {
				case tenant.FKCascade, tenant.FKSetNull, tenant.FKSetDefault:
					ref.deleteSpreads = true
				}
			}
		}
	}
	if catalogCacheSize.Add(1) > catalogCacheMax {
		catalogCache.Clear()
		catalogCacheSize.Store(1)
	}
	actual, _ := catalogCache.LoadOrStore(s, c)
	return actual.(*catalog)
}

// snapshotSharedOnly is the deleteSessionsSQL kind of snapshot sessions in a
// schema not yet at tenant migration 000006, whose rows are all in the
// shared table.
const snapshotSharedOnly = "snapshot_shared_only"

// deleteSessionsSQL deletes the sessions of kind ("push" or "snapshot")
// matching where, together with their staged or frozen rows (a snapshot's
// own rows table is dropped), and selects how many sessions went. The row
// tables have no foreign key to their sessions, so every session delete must
// go through here.
func deleteSessionsSQL(schema, kind, where string) string {
	sess, rows, id := ident(schema, "_sync_push_session"), ident(schema, "_sync_push_run"), "push_id"
	if kind == "snapshot" || kind == snapshotSharedOnly {
		sess, rows, id = ident(schema, "_sync_snapshot_session"), ident(schema, "_sync_snapshot_row"), "snapshot_id"
	}
	where = strings.ReplaceAll(where, "{sessions}", sess)
	if kind == "snapshot" {
		// A large session's rows are a table of its own: dropped, not deleted.
		return `WITH d AS (DELETE FROM ` + sess + ` WHERE ` + where + ` RETURNING snapshot_id, rows_table),
		r AS (DELETE FROM ` + rows + ` WHERE snapshot_id IN (SELECT snapshot_id FROM d WHERE rows_table IS NULL))
		SELECT count(*) FROM d WHERE rows_table IS NULL OR ` + ident(schema, "_sync_drop_snapshot_table") + `(rows_table)`
	}
	return `WITH d AS (DELETE FROM ` + sess + ` WHERE ` + where + ` RETURNING ` + id + `),
		r AS (DELETE FROM ` + rows + ` WHERE ` + id + ` IN (SELECT ` + id + ` FROM d))
		SELECT count(*) FROM d`
}

// expiredWhere selects up to n expired sessions nobody holds.
func expiredWhere(id string, n int) string {
	return id + ` IN (SELECT ` + id + ` FROM {sessions} WHERE expires_at < now() ORDER BY expires_at LIMIT ` +
		strconv.Itoa(n) + ` FOR UPDATE SKIP LOCKED)`
}

// ident quotes a schema-qualified name.
func ident(schema, name string) string { return pgx.Identifier{schema, name}.Sanitize() }

// col quotes a column name.
func col(name string) string { return pgx.Identifier{name}.Sanitize() }
