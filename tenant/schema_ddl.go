package tenant

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"

	"github.com/jackc/pgx/v5"
)

// schemaScopeColumnDDL defines the hidden scope column: the owning user id,
// filled from the bound sync transaction's setting when an insert omits it.
const schemaScopeColumnDDL = `text NOT NULL DEFAULT current_setting('syncplane.user_id', true)`

// schemaVersionColumn is the hidden row-version column: the bundle_seq of
// the row's last change (tenant migration 000008). The sync core sets it in
// its own writes; 0 (the default) or an unchanged value on update is
// stamped by the _sync_stamp_* row triggers from the bound transaction.
const (
	schemaVersionColumn    = "_sync_row_version"
	schemaVersionColumnDDL = `bigint NOT NULL DEFAULT 0`
)

// TableStorageOptions are the storage parameters of every table of a tenant
// schema (business tables here, the sync tables in tenant migration
// 000007). PostgreSQL's defaults vacuum a table after 50 changed rows and
// analyze it after 50 plus 10 %: fine for a few big tables, but a platform
// has thousands of small ones, and every ANALYZE or VACUUM of a table
// invalidates the cached plans and relcache entries of every connection that
// used it. With 100 active tenants that kept autovacuum busy around the
// clock and connections re-planning (docs/performance.md, tenant count).
// Large tables are unaffected: the 10 % and 20 % scale factors dominate.
const TableStorageOptions = `autovacuum_vacuum_threshold = 1000, autovacuum_analyze_threshold = 5000`

// SQLType is the PostgreSQL type the column is stored as. The mapping keeps
// what clients push replay-equivalent (protocol 5.5): integers (and flags) as
// bigint, timestamps as checked text so nanoseconds and offsets survive.
func (c *Column) SQLType() string {
	switch c.Type {
	case ColumnText, ColumnTimestamp:
		return "text"
	case ColumnInteger:
		return "bigint"
	case ColumnReal:
		return "double precision"
	case ColumnBlob:
		return "bytea"
	case ColumnUUID:
		return "uuid"
	case ColumnJSON:
		return "jsonb"
	}
	return ""
}

// CreateDDL returns the statements that create every table of s in the
// PostgreSQL schema pgSchema: all CREATE TABLEs, then the foreign keys (as
// ALTER TABLE, so cycles work), the indexes and the capture triggers. The
// schema must exist and hold the sync core's trigger functions. Run the
// statements in order in one transaction.
func (s *Schema) CreateDDL(pgSchema string) []string {
	var stmts []string
	for _, t := range s.tables {
		stmts = append(stmts, schemaCreateTableSQL(pgSchema, t))
	}
	for _, t := range s.tables {
		for _, fk := range t.ForeignKeys {
			stmts = append(stmts, schemaAddFKSQL(pgSchema, t, fk)...)
		}
	}
	for _, t := range s.tables {
		for _, ix := range t.Indexes {
			stmts = append(stmts, schemaCreateIndexSQL(pgSchema, t, ix))
		}
	}
	for _, t := range s.tables {
		stmts = append(stmts, CaptureTriggerDDL(pgSchema, t)...)
	}
	return stmts
}

// CaptureTriggerDDL returns the statements that attach the sync core's
// capture triggers to table t in pgSchema: statement-level AFTER INSERT,
// UPDATE and DELETE triggers with transition tables calling
// _sync_capture(<sync key column>), and a BEFORE TRUNCATE trigger that
// refuses truncation, and the BEFORE INSERT / UPDATE row triggers that
// stamp _sync_row_version on writes that leave it unset. The functions are
// defined by the per-tenant migrations; this is the one place that knows
// how they are attached.
func CaptureTriggerDDL(pgSchema string, t *Table) []string {
	table := pgx.Identifier{pgSchema, t.Name}.Sanitize()
	capture := pgx.Identifier{pgSchema, "_sync_capture"}.Sanitize() + "(" + schemaQuoteLiteral(t.Key.Name) + ")"
	trigger := func(name string) string { return "CREATE TRIGGER " + pgx.Identifier{name}.Sanitize() }
	newTable, oldTable := pgx.Identifier{"_sync_new"}.Sanitize(), pgx.Identifier{"_sync_old"}.Sanitize()
	stamp := pgx.Identifier{pgSchema, "_sync_stamp_row_version"}.Sanitize() + "()"
	version := pgx.Identifier{schemaVersionColumn}.Sanitize()
	return []string{
		trigger("_sync_capture_ins") + " AFTER INSERT ON " + table +
			" REFERENCING NEW TABLE AS " + newTable +
			" FOR EACH STATEMENT EXECUTE FUNCTION " + capture,
		trigger("_sync_capture_upd") + " AFTER UPDATE ON " + table +
			" REFERENCING OLD TABLE AS " + oldTable + " NEW TABLE AS " + newTable +
			" FOR EACH STATEMENT EXECUTE FUNCTION " + capture,
		trigger("_sync_capture_del") + " AFTER DELETE ON " + table +
			" REFERENCING OLD TABLE AS " + oldTable +
			" FOR EACH STATEMENT EXECUTE FUNCTION " + capture,
		trigger("_sync_no_truncate") + " BEFORE TRUNCATE ON " + table +
			" FOR EACH STATEMENT EXECUTE FUNCTION " + pgx.Identifier{pgSchema, "_sync_reject_truncate"}.Sanitize() + "()",
		trigger("_sync_stamp_ins") + " BEFORE INSERT ON " + table + " FOR EACH ROW WHEN (NEW." + version + " = 0)" +
			" EXECUTE FUNCTION " + stamp,
		trigger("_sync_stamp_upd") + " BEFORE UPDATE ON " + table + " FOR EACH ROW WHEN (NEW." + version + " = OLD." + version + ")" +
			" EXECUTE FUNCTION " + stamp,
	}
}

func schemaCreateTableSQL(pgSchema string, t *Table) string {
	var b strings.Builder
	b.WriteString("CREATE TABLE ")
	b.WriteString(pgx.Identifier{pgSchema, t.Name}.Sanitize())
	b.WriteString(" (\n\t")
	b.WriteString(pgx.Identifier{schemaScopeColumn}.Sanitize())
	b.WriteString(" ")
	b.WriteString(schemaScopeColumnDDL)
	b.WriteString(",\n\t" + pgx.Identifier{schemaVersionColumn}.Sanitize() + " " + schemaVersionColumnDDL)
	for _, c := range t.Columns {
		b.WriteString(",\n\t")
		b.WriteString(schemaColumnSQL(c))
	}
	b.WriteString(",\n\tCONSTRAINT ")
	b.WriteString(pgx.Identifier{schemaPKeyName(t.Name)}.Sanitize())
	b.WriteString(" PRIMARY KEY (")
	b.WriteString(pgx.Identifier{schemaScopeColumn}.Sanitize())
	b.WriteString(", ")
	b.WriteString(pgx.Identifier{t.Key.Name}.Sanitize())
	b.WriteString(")\n) WITH (" + TableStorageOptions + ")")
	return b.String()
}

// schemaColumnSQL is a column definition as in CREATE TABLE or ADD COLUMN.
func schemaColumnSQL(c *Column) string {
	name := pgx.Identifier{c.Name}.Sanitize()
	s := name + " " + c.SQLType()
	if !c.Nullable {
		s += " NOT NULL"
	}
	if c.Default != nil {
		s += " DEFAULT " + schemaDefaultSQL(c)
	}
	if c.Type == ColumnTimestamp {
		s += " CHECK (" + name + " ~ " + schemaQuoteLiteral(schemaTimestampPattern) + ")"
	}
	return s
}

// schemaDefaultSQL renders a validated default as a quoted literal with an
// explicit cast. Nothing from the document reaches SQL except through
// schemaQuoteLiteral.
func schemaDefaultSQL(c *Column) string {
	var lit string
	switch c.Type {
	case ColumnText, ColumnUUID, ColumnTimestamp:
		var s string
		_ = json.Unmarshal(c.Default, &s) // validated by NewSchema
		lit = s
	case ColumnBlob:
		var s string
		_ = json.Unmarshal(c.Default, &s)
		raw, _ := base64.StdEncoding.DecodeString(s)
		lit = `\x` + hex.EncodeToString(raw)
	default: // integer, real, json: the normalized JSON text is valid input
		lit = string(c.Default)
	}
	return schemaQuoteLiteral(lit) + "::" + c.SQLType()
}

// schemaQuoteLiteral quotes s as an SQL string literal that reads the same
// whatever standard_conforming_strings is: an E” literal (backslashes
// doubled) when s contains a backslash, a plain one otherwise. Validation
// has already refused NUL characters.
func schemaQuoteLiteral(s string) string {
	s = strings.ReplaceAll(s, "'", "''")
	if strings.Contains(s, `\`) {
		return "E'" + strings.ReplaceAll(s, `\`, `\\`) + "'"
	}
	return "'" + s + "'"
}

// schemaAddFKSQL adds a scope-inclusive, deferrable foreign key and the index
// that keeps parent deletes and cascades from scanning the child table.
// SET NULL / SET DEFAULT name the column so the scope column is never touched
// (PostgreSQL 15).
func schemaAddFKSQL(pgSchema string, t *Table, fk ForeignKey) []string {
	scope := pgx.Identifier{schemaScopeColumn}.Sanitize()
	col := pgx.Identifier{fk.Column}.Sanitize()
	onDelete := schemaFKActionSQL(fk.OnDelete)
	if fk.OnDelete == FKSetNull || fk.OnDelete == FKSetDefault {
		onDelete += " (" + col + ")"
	}
	stmts := []string{"ALTER TABLE " + pgx.Identifier{pgSchema, t.Name}.Sanitize() +
		" ADD CONSTRAINT " + pgx.Identifier{fk.Name}.Sanitize() +
		" FOREIGN KEY (" + scope + ", " + col + ")" +
		" REFERENCES " + pgx.Identifier{pgSchema, fk.References}.Sanitize() +
		" (" + scope + ", " + pgx.Identifier{fk.ReferencedColumn}.Sanitize() + ")" +
		" ON DELETE " + onDelete + " ON UPDATE " + schemaFKActionSQL(fk.OnUpdate) +
		" DEFERRABLE INITIALLY DEFERRED"}
	if ix := schemaFKIndexName(t, fk); ix != "" {
		stmts = append(stmts, "CREATE INDEX "+pgx.Identifier{ix}.Sanitize()+
			" ON "+pgx.Identifier{pgSchema, t.Name}.Sanitize()+" ("+scope+", "+col+")")
	}
	return stmts
}

// schemaFKActionSQL renders a referential action. RESTRICT becomes NO
// ACTION: PostgreSQL checks RESTRICT at once even on a deferrable key, so a
// bundle deleting a parent before its children (or any order within a
// cycle) would fail mid-transaction, while the protocol (6, 8.1) judges only
// the state at commit — which NO ACTION, deferred, checks identically.
func schemaFKActionSQL(a FKAction) string {
	if a == FKRestrict {
		a = FKNoAction
	}
	return strings.ToUpper(string(a))
}

func schemaDropFKSQL(pgSchema string, t *Table, fk ForeignKey) []string {
	stmts := []string{"ALTER TABLE " + pgx.Identifier{pgSchema, t.Name}.Sanitize() +
		" DROP CONSTRAINT " + pgx.Identifier{fk.Name}.Sanitize()}
	if ix := schemaFKIndexName(t, fk); ix != "" {
		stmts = append(stmts, schemaDropIndexSQL(pgSchema, ix))
	}
	return stmts
}

func schemaCreateIndexSQL(pgSchema string, t *Table, ix Index) string {
	cols := make([]string, 0, len(ix.Columns)+1)
	if ix.Unique {
		cols = append(cols, pgx.Identifier{schemaScopeColumn}.Sanitize())
	}
	for _, c := range ix.Columns {
		cols = append(cols, pgx.Identifier{c}.Sanitize())
	}
	create := "CREATE INDEX "
	if ix.Unique {
		create = "CREATE UNIQUE INDEX "
	}
	return create + pgx.Identifier{ix.Name}.Sanitize() + " ON " + pgx.Identifier{pgSchema, t.Name}.Sanitize() +
		" (" + strings.Join(cols, ", ") + ")"
}

func schemaDropIndexSQL(pgSchema, name string) string {
	return "DROP INDEX " + pgx.Identifier{pgSchema, name}.Sanitize()
}
