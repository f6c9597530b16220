package device

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/syncplane/syncplane/tenant"
)

// metadataDDL creates the client's own tables. _sync_state is a single row.
var metadataDDL = []string{
	`CREATE TABLE IF NOT EXISTS _sync_state (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	source_id TEXT NOT NULL,
	next_source_bundle_id INTEGER NOT NULL DEFAULT 1,
	last_bundle_seq_seen INTEGER NOT NULL DEFAULT 0,
	apply_mode INTEGER NOT NULL DEFAULT 0,
	attached INTEGER NOT NULL DEFAULT 0,
	initialization_id TEXT NOT NULL DEFAULT '',
	rebuild_required INTEGER NOT NULL DEFAULT 0,
	rotation_new_source_id TEXT NOT NULL DEFAULT '',
	rotation_reason TEXT NOT NULL DEFAULT '',
	wire_schema TEXT NOT NULL
) STRICT`,
	// One coalesced entry per changed key. op and base_row_version record
	// the intent as captured; the push recomputes both from the current row
	// and _sync_row_state when it freezes the outbox.
	`CREATE TABLE IF NOT EXISTS _sync_dirty (
	tbl TEXT NOT NULL,
	key TEXT NOT NULL,
	op TEXT NOT NULL,
	base_row_version INTEGER NOT NULL,
	ordinal INTEGER NOT NULL,
	PRIMARY KEY (tbl, key)
) STRICT`,
	// The triggers append at MAX(ordinal) + 1.
	`CREATE INDEX IF NOT EXISTS _sync_dirty_ordinal ON _sync_dirty (ordinal)`,
	// The server row version of every key the client has seen (deleted = a
	// tombstone, needed to re-insert a deleted key).
	`CREATE TABLE IF NOT EXISTS _sync_row_state (
	tbl TEXT NOT NULL,
	key TEXT NOT NULL,
	row_version INTEGER NOT NULL,
	deleted INTEGER NOT NULL,
	PRIMARY KEY (tbl, key)
) STRICT, WITHOUT ROWID`,
	// The frozen push in flight, in upload order; its source_bundle_id is
	// _sync_state.next_source_bundle_id.
	`CREATE TABLE IF NOT EXISTS _sync_outbox (
	ordinal INTEGER PRIMARY KEY,
	tbl TEXT NOT NULL,
	key TEXT NOT NULL,
	op TEXT NOT NULL,
	base_row_version INTEGER NOT NULL,
	payload TEXT,
	UNIQUE (tbl, key)
) STRICT`,
}

// qi quotes an identifier. Schema names are ^[a-z][a-z0-9_]*$.
func qi(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

// ql quotes a string literal.
func ql(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// sqliteType is the STRICT column type of a synced column.
func sqliteType(t tenant.ColumnType) string {
	switch t {
	case tenant.ColumnInteger:
		return "INTEGER"
	case tenant.ColumnReal:
		return "REAL"
	case tenant.ColumnBlob:
		return "BLOB"
	default: // text, uuid, timestamp, json
		return "TEXT"
	}
}

// sqliteDefault renders a column default (a normalized JSON literal) as a
// SQLite literal.
func sqliteDefault(c *tenant.Column) (string, error) {
	raw := c.Default
	if len(raw) == 0 {
		return "", nil
	}
	if isNullJSON(raw) {
		return "NULL", nil
	}
	switch c.Type {
	case tenant.ColumnText, tenant.ColumnUUID, tenant.ColumnTimestamp:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", err
		}
		return ql(s), nil
	case tenant.ColumnInteger, tenant.ColumnReal:
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return "", err
		}
		return string(n), nil
	case tenant.ColumnBlob:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", err
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return "", err
		}
		return "X'" + hex.EncodeToString(b) + "'", nil
	case tenant.ColumnJSON:
		return ql(string(raw)), nil
	}
	return "", fmt.Errorf("column %s: unknown type %q", c.Name, c.Type)
}

// TableDDL returns the statements that create the local table for t (the
// table, then its indexes). They are idempotent (IF NOT EXISTS).
func TableDDL(t *tenant.Table) ([]string, error) {
	var defs []string
	for _, c := range t.Columns {
		d := qi(c.Name) + " " + sqliteType(c.Type)
		if c == t.Key || c.Name == t.Key.Name {
			d += " NOT NULL PRIMARY KEY"
		} else if !c.Nullable {
			d += " NOT NULL"
		}
		if c.Type == tenant.ColumnUUID {
			// Canonical dashed lowercase UUID text, as the wire requires.
			d += fmt.Sprintf(" CHECK (%[1]s IS NULL OR (length(%[1]s) = 36 AND %[1]s = lower(%[1]s) AND "+
				"substr(%[1]s, 9, 1) = '-' AND substr(%[1]s, 14, 1) = '-' AND substr(%[1]s, 19, 1) = '-' AND "+
				"substr(%[1]s, 24, 1) = '-' AND NOT %[1]s GLOB '*[^0-9a-f-]*'))", qi(c.Name))
		}
		if c.Type == tenant.ColumnTimestamp {
			// The server checks RFC 3339 / ISO 8601 date-times with a regular
			// expression; SQLite has none, so check the fixed prefix every
			// valid value has and catch gross mistakes before they block a push.
			d += fmt.Sprintf(" CHECK (%[1]s IS NULL OR %[1]s GLOB '[0-9][0-9][0-9][0-9]-[01][0-9]-[0-3][0-9][Tt ][0-2][0-9]:[0-5][0-9]*')", qi(c.Name))
		}
		if c.Type == tenant.ColumnJSON {
			d += fmt.Sprintf(" CHECK (%[1]s IS NULL OR json_valid(%[1]s))", qi(c.Name))
		}
		def, err := sqliteDefault(c)
		if err != nil {
			return nil, fmt.Errorf("table %s column %s default: %w", t.Name, c.Name, err)
		}
		if def != "" {
			d += " DEFAULT " + def
		}
		defs = append(defs, d)
	}
	for _, fk := range t.ForeignKeys {
		d := fmt.Sprintf("FOREIGN KEY (%s) REFERENCES %s (%s)", qi(fk.Column), qi(fk.References), qi(fk.ReferencedColumn))
		// RESTRICT is checked immediately even when deferred in SQLite;
		// locally it becomes NO ACTION (the server enforces the real rule)
		// so authoritative bundles apply in any row order.
		if a := localAction(fk.OnDelete); a != "" {
			d += " ON DELETE " + a
		}
		if a := localAction(fk.OnUpdate); a != "" {
			d += " ON UPDATE " + a
		}
		d += " DEFERRABLE INITIALLY DEFERRED"
		defs = append(defs, d)
	}
	stmts := []string{fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (\n\t%s\n) STRICT", qi(t.Name), strings.Join(defs, ",\n\t"))}
	for _, ix := range t.Indexes {
		cols := make([]string, len(ix.Columns))
		for i, c := range ix.Columns {
			cols[i] = qi(c)
		}
		// Unique indexes are not reproduced: the server enforces them per
		// user at commit, and a local copy could reject an authoritative
		// bundle applied row by row.
		stmts = append(stmts, fmt.Sprintf("CREATE INDEX IF NOT EXISTS %s ON %s (%s)",
			qi("_sync_ix_"+t.Name+"_"+ix.Name), qi(t.Name), strings.Join(cols, ", ")))
	}
	return stmts, nil
}

func localAction(a tenant.FKAction) string {
	if a == "" || a == tenant.FKRestrict {
		return ""
	}
	return strings.ToUpper(string(a))
}

// TriggerDDL returns the statements that create the capture triggers of t.
// They record local changes into _sync_dirty unless the client is applying
// server rows (_sync_state.apply_mode = 1).
func TriggerDDL(t *tenant.Table) []string {
	tbl, k := ql(t.Name), qi(t.Key.Name)
	when := "WHEN COALESCE((SELECT apply_mode FROM _sync_state WHERE id = 1), 0) = 0"
	live := func(key string) string {
		return fmt.Sprintf("EXISTS (SELECT 1 FROM _sync_row_state WHERE tbl = %s AND key = %s AND deleted = 0)", tbl, key)
	}
	version := func(key string) string {
		return fmt.Sprintf("COALESCE((SELECT row_version FROM _sync_row_state WHERE tbl = %s AND key = %s), 0)", tbl, key)
	}
	nextOrdinal := "COALESCE((SELECT MAX(ordinal) FROM _sync_dirty), 0) + 1"
	// upsert records a live row: INSERT unless the server has it live.
	upsert := func(key string) string {
		return fmt.Sprintf(`INSERT INTO _sync_dirty (tbl, key, op, base_row_version, ordinal)
	VALUES (%s, %s, CASE WHEN %s THEN 'UPDATE' ELSE 'INSERT' END, %s, %s)
	ON CONFLICT (tbl, key) DO UPDATE SET op = excluded.op, base_row_version = excluded.base_row_version;`,
			tbl, key, live(key), version(key), nextOrdinal)
	}
	// remove records a deleted row: a DELETE when the server has the row
	// live or a push of it is in flight, otherwise nothing at all.
	remove := func(key, cond string) string {
		keep := fmt.Sprintf("(%s OR EXISTS (SELECT 1 FROM _sync_outbox WHERE tbl = %s AND key = %s))", live(key), tbl, key)
		return fmt.Sprintf(`DELETE FROM _sync_dirty WHERE tbl = %s AND key = %s AND NOT %s%s;
	INSERT INTO _sync_dirty (tbl, key, op, base_row_version, ordinal)
	SELECT %s, %s, 'DELETE', %s, %s WHERE %s%s
	ON CONFLICT (tbl, key) DO UPDATE SET op = 'DELETE', base_row_version = excluded.base_row_version;`,
			tbl, key, keep, cond, tbl, key, version(key), nextOrdinal, keep, cond)
	}
	name := func(suffix string) string { return qi("_sync_" + t.Name + "_" + suffix) }
	return []string{
		fmt.Sprintf("CREATE TRIGGER IF NOT EXISTS %s AFTER INSERT ON %s %s\nBEGIN\n\t%s\nEND",
			name("ai"), qi(t.Name), when, upsert("NEW."+k)),
		fmt.Sprintf("CREATE TRIGGER IF NOT EXISTS %s AFTER UPDATE ON %s %s\nBEGIN\n\t%s\n\t%s\nEND",
			name("au"), qi(t.Name), when, remove("OLD."+k, fmt.Sprintf(" AND OLD.%s IS NOT NEW.%s", k, k)), upsert("NEW."+k)),
		fmt.Sprintf("CREATE TRIGGER IF NOT EXISTS %s AFTER DELETE ON %s %s\nBEGIN\n\t%s\nEND",
			name("ad"), qi(t.Name), when, remove("OLD."+k, "")),
	}
}

// SchemaDDL returns every statement that prepares a database for s: the
// client's metadata tables, then each synced table with its indexes and
// capture triggers. They are idempotent.
func SchemaDDL(s *tenant.Schema) ([]string, error) {
	stmts := append([]string(nil), metadataDDL...)
	for _, t := range s.Tables() {
		ddl, err := TableDDL(t)
		if err != nil {
			return nil, err
		}
		stmts = append(stmts, ddl...)
	}
	for _, t := range s.Tables() {
		stmts = append(stmts, TriggerDDL(t)...)
	}
	return stmts, nil
}

// tableOrder returns the tables parents first (foreign key order, ignoring
// self-references; cycles are broken alphabetically).
func tableOrder(s *tenant.Schema) []*tenant.Table {
	tables := s.Tables()
	sort.Slice(tables, func(i, j int) bool { return tables[i].Name < tables[j].Name })
	done := map[string]bool{}
	var out []*tenant.Table
	for len(out) < len(tables) {
		progressed := false
		for _, t := range tables {
			if done[t.Name] {
				continue
			}
			ready := true
			for _, fk := range t.ForeignKeys {
				if fk.References != t.Name && !done[fk.References] {
					ready = false
					break
				}
			}
			if ready {
				done[t.Name] = true
				out = append(out, t)
				progressed = true
			}
		}
		if !progressed { // a cycle: take the first remaining table
			for _, t := range tables {
				if !done[t.Name] {
					done[t.Name] = true
					out = append(out, t)
					break
				}
			}
		}
	}
	return out
}
