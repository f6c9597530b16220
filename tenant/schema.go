package tenant

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// ColumnType is the declared type of a synced column. The set is fixed; each
// type maps to a PostgreSQL type chosen so that a value a client pushes comes
// back replay-equivalent (protocol 5.5).
type ColumnType string

// The column types a definition may use. Booleans are integers, as in SQLite.
const (
	ColumnText      ColumnType = "text"
	ColumnInteger   ColumnType = "integer"
	ColumnReal      ColumnType = "real"
	ColumnBlob      ColumnType = "blob"
	ColumnUUID      ColumnType = "uuid"
	ColumnTimestamp ColumnType = "timestamp"
	ColumnJSON      ColumnType = "json"
)

// schemaColumnTypes lists the column types in the order messages name them.
var schemaColumnTypes = []ColumnType{
	ColumnText, ColumnInteger, ColumnReal, ColumnBlob, ColumnUUID, ColumnTimestamp, ColumnJSON,
}

// FKAction is a foreign key's referential action (ON DELETE / ON UPDATE).
type FKAction string

// The referential actions a foreign key may declare. ON UPDATE accepts only
// FKNoAction, FKRestrict and FKCascade.
const (
	FKNoAction   FKAction = "no action"
	FKRestrict   FKAction = "restrict"
	FKCascade    FKAction = "cascade"
	FKSetNull    FKAction = "set null"
	FKSetDefault FKAction = "set default"
)

var (
	schemaOnDeleteActions = []FKAction{FKNoAction, FKRestrict, FKCascade, FKSetNull, FKSetDefault}
	schemaOnUpdateActions = []FKAction{FKNoAction, FKRestrict, FKCascade}
)

// Limits on a definition. PostgreSQL allows 1600 columns and 32 index columns;
// ours are lower so one definition stays cheap to validate, diff and apply.
const (
	schemaMaxDocumentBytes = 4 << 20
	schemaMaxTables        = 200
	schemaMaxColumns       = 400
	schemaMaxIndexes       = 64
	schemaMaxIndexColumns  = 31 // 32 (INDEX_MAX_KEYS) minus the scope column of unique indexes
	schemaMaxDefaultBytes  = 64 << 10
	schemaMaxNameBytes     = 63 // NAMEDATALEN - 1
)

// schemaScopeColumn is the hidden ownership column of every registered table
// (protocol 5.2, 6.2); it is never declared by a tenant and never on the wire.
const schemaScopeColumn = "_sync_scope_id"

// schemaTimestampPattern is what a timestamp column accepts: an RFC 3339 /
// ISO-8601 date-time ("T", "t" or space between date and time, optional
// seconds, fraction and zone). It is used both in Go (defaults) and in the
// column's CHECK constraint, so it must mean the same in RE2 and in
// PostgreSQL's ARE: plain groups, bracket classes and counts only.
const schemaTimestampPattern = `^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt ]` +
	`([01][0-9]|2[0-3]):[0-5][0-9](:([0-5][0-9]|60)([.,][0-9]+)?)?` +
	`([Zz]|[+-]([01][0-9]|2[0-3])(:?[0-5][0-9])?)?$`

var (
	schemaNameRE      = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	schemaTimestampRE = regexp.MustCompile(schemaTimestampPattern)
	schemaUUIDRE      = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
)

// schemaReservedWords are PostgreSQL's reserved key words (pg_get_keywords()
// catcode R and T in PostgreSQL 15, plus system_user, reserved since 16).
// Generated SQL quotes every identifier, but tenants' own SQL, the console and
// ad-hoc queries should never have to.
var schemaReservedWords = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`
		all analyse analyze and any array as asc asymmetric both case cast check collate column
		constraint create current_catalog current_date current_role current_time current_timestamp
		current_user default deferrable desc distinct do else end except false fetch for foreign
		from grant group having in initially intersect into lateral leading limit localtime
		localtimestamp not null offset on only or order placing primary references returning
		select session_user some symmetric system_user table then to trailing true union unique
		user using variadic when where window with
		authorization binary collation concurrently cross current_schema freeze full ilike inner is
		isnull join left like natural notnull outer overlaps right similar tablesample verbose`) {
		schemaReservedWords[w] = true
	}
}

// schemaReservedTables are relation names the tenant schema already uses
// outside the _sync prefix (golang-migrate's default version table).
var schemaReservedTables = map[string]bool{"schema_migrations": true}

// Definition is a tenant's table definition document: the tables its app
// syncs. It is what tenants write (JSON or YAML) and what is stored; a
// Definition is unvalidated until NewSchema accepts it.
type Definition struct {
	Tables []TableDef `json:"tables"`
}

// TableDef declares one synced table.
type TableDef struct {
	Name        string          `json:"name"`
	SyncKey     string          `json:"sync_key"`
	Columns     []ColumnDef     `json:"columns"`
	ForeignKeys []ForeignKeyDef `json:"foreign_keys,omitempty"`
	Indexes     []IndexDef      `json:"indexes,omitempty"`
}

// ColumnDef declares one visible column. Columns are NOT NULL unless Nullable.
// Default is a JSON literal of the column's type (base64 text for blobs);
// absent means no default.
type ColumnDef struct {
	Name     string          `json:"name"`
	Type     ColumnType      `json:"type"`
	Nullable bool            `json:"nullable,omitempty"`
	Default  json.RawMessage `json:"default,omitempty"`
}

// ForeignKeyDef declares that Column references the sync key of the table
// References (which must be in the same definition). Empty actions mean
// "no action".
type ForeignKeyDef struct {
	Column     string   `json:"column"`
	References string   `json:"references"`
	OnDelete   FKAction `json:"on_delete,omitempty"`
	OnUpdate   FKAction `json:"on_update,omitempty"`
}

// IndexDef declares an index on columns of its table. An empty Name is
// replaced by a generated one.
type IndexDef struct {
	Name    string   `json:"name,omitempty"`
	Columns []string `json:"columns"`
	Unique  bool     `json:"unique,omitempty"`
}

// FieldProblem is one thing wrong with a definition document. Path names the
// field the way the document is written, e.g. "tables[1].columns[2].type";
// it is empty for the document as a whole.
type FieldProblem struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

// String renders the problem as "path: message".
func (p FieldProblem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// DefinitionError lists every problem found in a definition document. Its
// messages are written for the tenant and are safe to show publicly.
type DefinitionError struct {
	Problems []FieldProblem
}

// Error joins all problems.
func (e *DefinitionError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return "invalid table definition: " + strings.Join(parts, "; ")
}

// Schema is a validated Definition: every rule the protocol places on
// registered tables holds (section 6), and DDL can be generated from it.
// A Schema and everything reachable from it must not be modified.
type Schema struct {
	tables []*Table
	byName map[string]*Table
}

// Table is a validated synced table.
type Table struct {
	Name string
	// Key is the sync key column (uuid or text, NOT NULL, no default); it is
	// one of Columns.
	Key *Column
	// Columns are the visible columns in declared order; the hidden scope
	// column is not among them.
	Columns     []*Column
	ForeignKeys []ForeignKey
	Indexes     []Index

	byName map[string]*Column
}

// Column is a validated visible column.
type Column struct {
	Name     string
	Type     ColumnType
	Nullable bool
	// Default is the normalized JSON literal of the default, nil if none.
	Default json.RawMessage
}

// ForeignKey is a validated, scope-inclusive foreign key: (scope, Column)
// references (scope, key of table References).
type ForeignKey struct {
	// Name is the constraint name.
	Name       string
	Column     string
	References string
	// ReferencedColumn is the sync key column of References.
	ReferencedColumn string
	OnDelete         FKAction
	OnUpdate         FKAction
}

// Index is a validated index. Unique indexes are created on the scope column
// followed by Columns (protocol 6.3); others on Columns as given.
type Index struct {
	Name    string
	Columns []string
	Unique  bool
}

// ParseDefinition decodes a definition document in JSON or YAML. Unknown
// fields and values of the wrong JSON type are refused with a
// *DefinitionError naming each field. It does not validate the tables; see
// NewSchema.
func ParseDefinition(data []byte) (Definition, error) {
	if len(data) > schemaMaxDocumentBytes {
		return Definition{}, schemaDocumentProblem(fmt.Sprintf("document is larger than %d bytes", schemaMaxDocumentBytes))
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return Definition{}, schemaDocumentProblem("document is empty")
	}
	js := data
	if !json.Valid(data) {
		if t := bytes.TrimSpace(data); t[0] == '{' || t[0] == '[' {
			// Meant as JSON: report the JSON error, not YAML's reading of it.
			var v any
			err := json.Unmarshal(data, &v)
			return Definition{}, schemaDocumentProblem(schemaJSONSyntaxMessage(data, err))
		}
		var err error
		js, err = yaml.YAMLToJSON(data)
		if err != nil {
			return Definition{}, schemaDocumentProblem("invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: "))
		}
	}

	var problems []FieldProblem
	schemaCheckShape(js, reflect.TypeFor[Definition](), "", &problems)
	if len(problems) > 0 {
		return Definition{}, &DefinitionError{Problems: problems}
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	var def Definition
	if err := dec.Decode(&def); err != nil {
		// schemaCheckShape should have caught everything the decoder refuses.
		return Definition{}, schemaDocumentProblem("invalid document: " + strings.TrimPrefix(err.Error(), "json: "))
	}
	return def, nil
}

func schemaDocumentProblem(msg string) *DefinitionError {
	return &DefinitionError{Problems: []FieldProblem{{Message: msg}}}
}

// schemaJSONSyntaxMessage turns a JSON syntax error into "invalid JSON at
// line L, column C: …".
func schemaJSONSyntaxMessage(data []byte, err error) string {
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return "invalid JSON: " + strings.TrimPrefix(err.Error(), "json: ")
	}
	off := min(int(se.Offset), len(data))
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	col := off - bytes.LastIndexByte(data[:off], '\n')
	return fmt.Sprintf("invalid JSON at line %d, column %d: %s", line, col, se.Error())
}

var schemaRawMessageType = reflect.TypeFor[json.RawMessage]()

// schemaCheckShape walks raw (valid JSON) against the Go type t and records
// unknown or repeated fields and values of the wrong JSON type, with their
// paths. Field names must match their tags exactly (encoding/json would
// accept any case).
func schemaCheckShape(raw json.RawMessage, t reflect.Type, path string, problems *[]FieldProblem) {
	add := func(p, msg string) { *problems = append(*problems, FieldProblem{Path: p, Message: msg}) }
	raw = bytes.TrimSpace(raw)
	if t == schemaRawMessageType || len(raw) == 0 {
		return
	}
	kind := schemaJSONKind(raw)
	if kind == "null" && t.Kind() != reflect.Struct {
		return // null leaves a field at its zero value, as encoding/json does
	}
	switch t.Kind() {
	case reflect.Struct:
		if kind != "object" {
			if path == "" {
				add(path, fmt.Sprintf("document must be an object with a \"tables\" field, not %s", kind))
			} else {
				add(path, "must be an object, not "+kind)
			}
			return
		}
		fields := map[string]reflect.Type{}
		var names []string
		for f := range t.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			fields[name] = f.Type
			names = append(names, name)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		_, _ = dec.Token() // '{'
		seen := map[string]bool{}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return
			}
			key, _ := tok.(string)
			var val json.RawMessage
			if err := dec.Decode(&val); err != nil {
				return
			}
			fp := schemaJoinPath(path, key)
			ft, ok := fields[key]
			switch {
			case !ok:
				add(fp, fmt.Sprintf("unknown field %q; known fields are %s", key, strings.Join(names, ", ")))
			case seen[key]:
				add(fp, fmt.Sprintf("field %q appears more than once", key))
			default:
				schemaCheckShape(val, ft, fp, problems)
			}
			seen[key] = true
		}
	case reflect.Slice:
		if kind != "array" {
			add(path, "must be an array, not "+kind)
			return
		}
		var elems []json.RawMessage
		if err := json.Unmarshal(raw, &elems); err != nil {
			return
		}
		for i, e := range elems {
			schemaCheckShape(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), problems)
		}
	case reflect.String:
		if kind != "string" {
			add(path, "must be a string, not "+kind)
		}
	case reflect.Bool:
		if kind != "boolean" {
			add(path, "must be true or false, not "+kind)
		}
	}
}

func schemaJoinPath(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// schemaJSONKind names the JSON type of a valid, trimmed JSON value.
func schemaJSONKind(raw []byte) string {
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// NewSchema validates def against every rule for registered tables and
// returns the Schema, or a *DefinitionError listing every problem found. The
// paths in problems refer to def as given.
func NewSchema(def Definition) (*Schema, error) {
	v := &schemaValidator{}
	s := v.build(def)
	if len(v.problems) > 0 {
		return nil, &DefinitionError{Problems: v.problems}
	}
	return s, nil
}

type schemaValidator struct {
	problems []FieldProblem
	// relations maps every relation name the schema will create (tables,
	// primary key and other indexes; they share one namespace in
	// PostgreSQL) to a description of its owner.
	relations map[string]string
	// declaredTables holds every table name in the document, valid or not,
	// so a reference to a table with its own problems is not reported twice.
	declaredTables map[string]bool
}

func (v *schemaValidator) add(path, format string, args ...any) {
	v.problems = append(v.problems, FieldProblem{Path: path, Message: fmt.Sprintf(format, args...)})
}

// claimRelation reserves a relation name, reporting a collision at path.
func (v *schemaValidator) claimRelation(name, owner, path string) bool {
	if prev, ok := v.relations[name]; ok {
		v.add(path, "name %q is already used by %s", name, prev)
		return false
	}
	v.relations[name] = owner
	return true
}

// checkName validates a table, column or index name; what is "table",
// "column" or "index".
func (v *schemaValidator) checkName(path, what, name string) bool {
	switch {
	case name == "":
		v.add(path, "%s name is required", what)
	case strings.HasPrefix(name, "_"):
		v.add(path, "invalid %s name %q: names starting with \"_\" are reserved for Syncplane", what, name)
	case !schemaNameRE.MatchString(name):
		v.add(path, "invalid %s name %q: use lowercase letters, digits and underscores, starting with a letter, at most %d characters", what, name, schemaMaxNameBytes)
	case schemaReservedWords[name]:
		v.add(path, "%s name %q is a reserved word in PostgreSQL; choose another name", what, name)
	default:
		return true
	}
	return false
}

// schemaTableState carries a table through validation: its document index,
// its definition and the table being built (nil when its name is invalid or
// taken, so nothing else is checked against it).
type schemaTableState struct {
	idx   int
	def   TableDef
	table *Table
}

func (v *schemaValidator) build(def Definition) *Schema {
	v.relations = map[string]string{}
	switch {
	case len(def.Tables) == 0:
		v.add("tables", "at least one table is required")
		return nil
	case len(def.Tables) > schemaMaxTables:
		v.add("tables", "at most %d tables are allowed, got %d", schemaMaxTables, len(def.Tables))
		return nil
	}

	v.declaredTables = map[string]bool{}
	for _, td := range def.Tables {
		v.declaredTables[td.Name] = true
	}
	s := &Schema{byName: map[string]*Table{}}
	var states []*schemaTableState
	firstIdx := map[string]int{}
	for i, td := range def.Tables {
		path := fmt.Sprintf("tables[%d]", i)
		t := v.buildTable(path, td)
		nameOK := v.checkName(path+".name", "table", td.Name)
		if nameOK && schemaReservedTables[td.Name] {
			v.add(path+".name", "table name %q is reserved for Syncplane", td.Name)
			nameOK = false
		}
		if nameOK {
			if j, dup := firstIdx[td.Name]; dup {
				v.add(path+".name", "duplicate table name %q (also tables[%d])", td.Name, j)
				nameOK = false
			} else {
				firstIdx[td.Name] = i
				v.claimRelation(td.Name, "table "+td.Name, path+".name")
			}
		}
		st := &schemaTableState{idx: i, def: td}
		if nameOK {
			st.table = t
			s.tables = append(s.tables, t)
			s.byName[t.Name] = t
		}
		states = append(states, st)
	}
	// Derived relation names come after all table names, so that a clash is
	// reported at the derived name whichever table is declared first.
	for _, st := range states {
		if st.table != nil {
			v.claimRelation(schemaPKeyName(st.table.Name), "the primary key of table "+st.table.Name,
				fmt.Sprintf("tables[%d].name", st.idx))
		}
	}
	for _, st := range states {
		if st.table != nil {
			v.buildForeignKeys(st, s)
		}
	}
	for _, st := range states {
		if st.table != nil {
			v.buildIndexes(st)
		}
	}
	sort.Slice(s.tables, func(i, j int) bool { return s.tables[i].Name < s.tables[j].Name })
	return s
}

// buildTable validates a table's columns and sync key. It returns the table
// with every column whose name and type are valid.
func (v *schemaValidator) buildTable(path string, td TableDef) *Table {
	t := &Table{Name: td.Name, byName: map[string]*Column{}}
	switch {
	case len(td.Columns) == 0:
		v.add(path+".columns", "at least one column is required")
	case len(td.Columns) > schemaMaxColumns:
		v.add(path+".columns", "at most %d columns are allowed per table, got %d", schemaMaxColumns, len(td.Columns))
		return t
	}
	keyIdx := -1
	firstIdx := map[string]int{}
	for j, cd := range td.Columns {
		cpath := fmt.Sprintf("%s.columns[%d]", path, j)
		nameOK := v.checkName(cpath+".name", "column", cd.Name)
		if nameOK {
			if k, dup := firstIdx[cd.Name]; dup {
				v.add(cpath+".name", "duplicate column name %q (also columns[%d])", cd.Name, k)
				nameOK = false
			} else {
				firstIdx[cd.Name] = j
			}
		}
		typeOK := slices.Contains(schemaColumnTypes, cd.Type)
		if !typeOK {
			if cd.Type == "" {
				v.add(cpath+".type", "type is required; use one of %s", schemaTypeList())
			} else {
				v.add(cpath+".type", "unknown type %q; use one of %s", cd.Type, schemaTypeList())
			}
		}
		c := &Column{Name: cd.Name, Type: cd.Type, Nullable: cd.Nullable}
		if typeOK {
			d, msg := schemaNormalizeDefault(cd.Type, cd.Nullable, cd.Default)
			if msg != "" {
				v.add(cpath+".default", "%s", msg)
			}
			c.Default = d
		}
		if cd.Name == td.SyncKey && td.SyncKey != "" {
			keyIdx = j
		}
		if nameOK && typeOK {
			t.Columns = append(t.Columns, c)
			t.byName[c.Name] = c
		}
	}

	switch {
	case td.SyncKey == "":
		v.add(path+".sync_key", "sync_key is required: name the uuid or text column that identifies a row")
	case keyIdx < 0:
		v.add(path+".sync_key", "sync key %q is not a column of table %s", td.SyncKey, td.Name)
	default:
		cd := td.Columns[keyIdx]
		cpath := fmt.Sprintf("%s.columns[%d]", path, keyIdx)
		if cd.Type != ColumnUUID && cd.Type != ColumnText && slices.Contains(schemaColumnTypes, cd.Type) {
			v.add(cpath+".type", "sync key column %q must be of type uuid or text, not %s", cd.Name, cd.Type)
		}
		if cd.Nullable {
			v.add(cpath+".nullable", "sync key column %q must not be nullable", cd.Name)
		}
		if len(cd.Default) > 0 {
			v.add(cpath+".default", "sync key column %q must not have a default", cd.Name)
		}
		t.Key = t.byName[cd.Name]
	}
	return t
}

func (v *schemaValidator) buildForeignKeys(st *schemaTableState, s *Schema) {
	t := st.table
	firstIdx := map[string]int{}
	for k, fd := range st.def.ForeignKeys {
		path := fmt.Sprintf("tables[%d].foreign_keys[%d]", st.idx, k)
		ok := true

		col, colOK := t.byName[fd.Column]
		switch {
		case fd.Column == "":
			v.add(path+".column", "column is required")
			ok = false
		case !colOK:
			if _, declared := schemaFindColumnDef(st.def, fd.Column); !declared {
				v.add(path+".column", "unknown column %q in table %s", fd.Column, t.Name)
			}
			ok = false // an invalid column is reported at the column
		default:
			if j, dup := firstIdx[fd.Column]; dup {
				v.add(path+".column", "column %q already has a foreign key (foreign_keys[%d])", fd.Column, j)
				ok = false
			}
			firstIdx[fd.Column] = k
		}

		parent, parentOK := s.byName[fd.References]
		switch {
		case fd.References == "":
			v.add(path+".references", "references is required: name the parent table")
			ok = false
		case !parentOK:
			if !v.declaredTables[fd.References] {
				v.add(path+".references", "table %q is not in the definition; foreign keys may only reference tables of the same definition", fd.References)
			}
			ok = false
		case parent.Key == nil:
			ok = false // the parent's key problem is reported there
		case colOK && col.Type != parent.Key.Type:
			v.add(path+".column", "column %s.%s is %s but %s.%s is %s; a foreign key column must have the type of the parent's sync key",
				t.Name, col.Name, col.Type, parent.Name, parent.Key.Name, parent.Key.Type)
			ok = false
		}

		onDelete := schemaNormalizeAction(fd.OnDelete)
		switch {
		case !slices.Contains(schemaOnDeleteActions, onDelete):
			v.add(path+".on_delete", "unknown action %q; use one of %s", fd.OnDelete, schemaActionList(schemaOnDeleteActions))
			ok = false
		case onDelete == FKSetNull && colOK && !col.Nullable:
			v.add(path+".on_delete", "\"set null\" requires column %s.%s to be nullable", t.Name, col.Name)
			ok = false
		case onDelete == FKSetDefault && colOK && col.Default == nil:
			v.add(path+".on_delete", "\"set default\" requires column %s.%s to have a default", t.Name, col.Name)
			ok = false
		}
		onUpdate := schemaNormalizeAction(fd.OnUpdate)
		if !slices.Contains(schemaOnUpdateActions, onUpdate) {
			v.add(path+".on_update", "unsupported action %q; use one of %s", fd.OnUpdate, schemaActionList(schemaOnUpdateActions))
			ok = false
		}
		if !ok {
			continue
		}
		fk := ForeignKey{
			Name:             schemaTruncName(t.Name + "_" + col.Name + "_fkey"),
			Column:           col.Name,
			References:       parent.Name,
			ReferencedColumn: parent.Key.Name,
			OnDelete:         onDelete,
			OnUpdate:         onUpdate,
		}
		if ix := schemaFKIndexName(t, fk); ix != "" {
			v.claimRelation(ix, fmt.Sprintf("the index of foreign key %s.%s", t.Name, col.Name), path+".column")
		}
		t.ForeignKeys = append(t.ForeignKeys, fk)
	}
}

func schemaFindColumnDef(td TableDef, name string) (ColumnDef, bool) {
	for _, c := range td.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return ColumnDef{}, false
}

func (v *schemaValidator) buildIndexes(st *schemaTableState) {
	t := st.table
	if len(st.def.Indexes) > schemaMaxIndexes {
		v.add(fmt.Sprintf("tables[%d].indexes", st.idx), "at most %d indexes are allowed per table, got %d", schemaMaxIndexes, len(st.def.Indexes))
		return
	}
	seen := map[string]int{} // unique flag + columns → index position
	for k, id := range st.def.Indexes {
		path := fmt.Sprintf("tables[%d].indexes[%d]", st.idx, k)
		ok := true
		switch {
		case len(id.Columns) == 0:
			v.add(path+".columns", "at least one column is required")
			ok = false
		case len(id.Columns) > schemaMaxIndexColumns:
			v.add(path+".columns", "at most %d columns are allowed per index, got %d", schemaMaxIndexColumns, len(id.Columns))
			ok = false
		}
		inIndex := map[string]bool{}
		for m, name := range id.Columns {
			cpath := fmt.Sprintf("%s.columns[%d]", path, m)
			c, found := t.byName[name]
			switch {
			case !found:
				if _, declared := schemaFindColumnDef(st.def, name); !declared {
					v.add(cpath, "unknown column %q in table %s", name, t.Name)
				}
				ok = false
			case inIndex[name]:
				v.add(cpath, "column %q appears more than once", name)
				ok = false
			case c.Type == ColumnBlob || c.Type == ColumnJSON:
				v.add(cpath, "column %q is %s; blob and json columns cannot be indexed (large values would make pushes fail)", name, c.Type)
				ok = false
			}
			inIndex[name] = true
		}
		name := id.Name
		if name != "" {
			if !v.checkName(path+".name", "index", name) {
				ok = false
			}
		} else if ok {
			suffix := "_idx"
			if id.Unique {
				suffix = "_key"
			}
			name = schemaTruncName(t.Name + "_" + strings.Join(id.Columns, "_") + suffix)
		}
		if !ok {
			continue
		}
		sig := fmt.Sprint(id.Unique, id.Columns)
		if j, dup := seen[sig]; dup {
			v.add(path+".columns", "index has the same columns as indexes[%d]", j)
			continue
		}
		seen[sig] = k
		namePath := path + ".name"
		if !v.claimRelation(name, "index "+name+" of table "+t.Name, namePath) {
			continue
		}
		t.Indexes = append(t.Indexes, Index{Name: name, Columns: slices.Clone(id.Columns), Unique: id.Unique})
	}
}

func schemaTypeList() string {
	names := make([]string, len(schemaColumnTypes))
	for i, t := range schemaColumnTypes {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

func schemaActionList(actions []FKAction) string {
	names := make([]string, len(actions))
	for i, a := range actions {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}

// schemaNormalizeAction accepts actions in any case and spacing ("NO ACTION",
// "set  null"); empty means no action.
func schemaNormalizeAction(a FKAction) FKAction {
	s := strings.Join(strings.Fields(strings.ToLower(string(a))), " ")
	if s == "" {
		return FKNoAction
	}
	return FKAction(s)
}

// schemaTruncName keeps a generated name within PostgreSQL's 63 bytes. A
// longer name is cut and suffixed with a hash of the whole name, so two long
// names that share a prefix stay distinct and the result is deterministic.
func schemaTruncName(name string) string {
	if len(name) <= schemaMaxNameBytes {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	h := hex.EncodeToString(sum[:4])
	return name[:schemaMaxNameBytes-len(h)-1] + "_" + h
}

func schemaPKeyName(table string) string { return schemaTruncName(table + "_pkey") }

// schemaFKIndexName is the index created for a foreign key column so that
// cascades and parent deletes do not scan the child table; "" when the sync
// key is the column (the primary key serves).
func schemaFKIndexName(t *Table, fk ForeignKey) string {
	if t.Key != nil && fk.Column == t.Key.Name {
		return ""
	}
	return schemaTruncName(t.Name + "_" + fk.Column + "_fkey_idx")
}

// schemaNormalizeDefault validates a column default against the column's type
// and returns its normalized JSON form (nil for none), or a problem message.
func schemaNormalizeDefault(typ ColumnType, nullable bool, raw json.RawMessage) (json.RawMessage, string) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, ""
	}
	if len(raw) > schemaMaxDefaultBytes {
		return nil, fmt.Sprintf("default is larger than %d bytes", schemaMaxDefaultBytes)
	}
	if !json.Valid(raw) {
		return nil, "default is not valid JSON"
	}
	kind := schemaJSONKind(raw)
	if kind == "null" {
		if !nullable {
			return nil, "default null is only allowed on a nullable column"
		}
		return nil, ""
	}
	var str string
	switch typ {
	case ColumnText, ColumnUUID, ColumnTimestamp, ColumnBlob:
		if kind != "string" {
			return nil, fmt.Sprintf("default of a %s column must be a JSON string, not %s", typ, kind)
		}
		if err := json.Unmarshal(raw, &str); err != nil {
			return nil, "default is not a valid JSON string"
		}
		if strings.ContainsRune(str, 0) {
			return nil, "default must not contain NUL characters"
		}
	}
	switch typ {
	case ColumnText:
		return schemaMarshal(str), ""
	case ColumnUUID:
		if !schemaUUIDRE.MatchString(str) {
			return nil, fmt.Sprintf("default %q is not a canonical UUID (lowercase hex, dashed, 36 characters)", str)
		}
		return schemaMarshal(str), ""
	case ColumnTimestamp:
		if !schemaTimestampRE.MatchString(str) {
			return nil, fmt.Sprintf("default %q is not an RFC 3339 timestamp such as 2026-03-24T18:02:00Z", str)
		}
		return schemaMarshal(str), ""
	case ColumnBlob:
		if _, err := base64.StdEncoding.Strict().DecodeString(str); err != nil {
			return nil, "default of a blob column must be standard base64 text with padding"
		}
		return schemaMarshal(str), ""
	case ColumnInteger:
		if kind == "boolean" {
			return nil, "default of an integer column must be a number; booleans are stored as 0 and 1"
		}
		if kind != "number" {
			return nil, fmt.Sprintf("default of an integer column must be a number, not %s", kind)
		}
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return nil, fmt.Sprintf("default %s is not an integer between %d and %d", raw, int64(-1<<63), int64(1<<63-1))
		}
		return json.RawMessage(strconv.FormatInt(n, 10)), ""
	case ColumnReal:
		if kind != "number" {
			return nil, fmt.Sprintf("default of a real column must be a number, not %s", kind)
		}
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || (f == 0 && strings.ContainsAny(schemaMantissa(string(raw)), "123456789")) {
			return nil, fmt.Sprintf("default %s is out of range for a double precision number", raw)
		}
		return schemaMarshal(f), ""
	case ColumnJSON:
		var val any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&val); err != nil {
			return nil, "default is not valid JSON"
		}
		if schemaJSONHasNUL(val) {
			return nil, "default must not contain NUL characters (\\u0000)"
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return nil, "default is not valid JSON"
		}
		return json.RawMessage(buf.Bytes()), ""
	}
	return nil, fmt.Sprintf("unknown type %q", typ)
}

// schemaMantissa returns the part of a JSON number before its exponent.
func schemaMantissa(num string) string {
	if i := strings.IndexAny(num, "eE"); i >= 0 {
		return num[:i]
	}
	return num
}

func schemaJSONHasNUL(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.ContainsRune(v, 0)
	case []any:
		return slices.ContainsFunc(v, schemaJSONHasNUL)
	case map[string]any:
		for k, e := range v {
			if strings.ContainsRune(k, 0) || schemaJSONHasNUL(e) {
				return true
			}
		}
	}
	return false
}

// schemaMarshal encodes v as compact JSON without HTML escaping.
func schemaMarshal(v any) json.RawMessage {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("tenant: marshal %T: %v", v, err)) // only strings and finite floats reach here
	}
	return json.RawMessage(bytes.TrimRight(buf.Bytes(), "\n"))
}

// Tables returns the tables sorted by name.
func (s *Schema) Tables() []*Table { return slices.Clone(s.tables) }

// Table returns the table with the given name.
func (s *Schema) Table(name string) (*Table, bool) {
	t, ok := s.byName[name]
	return t, ok
}

// Definition returns the normalized document for storage: tables sorted by
// name, generated index names and default actions filled in, defaults in
// canonical JSON. It round-trips through NewSchema to an equal Schema.
func (s *Schema) Definition() Definition {
	def := Definition{Tables: make([]TableDef, 0, len(s.tables))}
	for _, t := range s.tables {
		td := TableDef{Name: t.Name, SyncKey: t.Key.Name}
		for _, c := range t.Columns {
			td.Columns = append(td.Columns, ColumnDef{
				Name: c.Name, Type: c.Type, Nullable: c.Nullable, Default: slices.Clone(c.Default),
			})
		}
		for _, fk := range t.ForeignKeys {
			td.ForeignKeys = append(td.ForeignKeys, ForeignKeyDef{
				Column: fk.Column, References: fk.References, OnDelete: fk.OnDelete, OnUpdate: fk.OnUpdate,
			})
		}
		for _, ix := range t.Indexes {
			td.Indexes = append(td.Indexes, IndexDef{Name: ix.Name, Columns: slices.Clone(ix.Columns), Unique: ix.Unique})
		}
		def.Tables = append(def.Tables, td)
	}
	return def
}

// Column returns the visible column with the given name.
func (t *Table) Column(name string) (*Column, bool) {
	c, ok := t.byName[name]
	return c, ok
}
