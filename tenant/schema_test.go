package tenant

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// schemaExampleJSON is the document from the definition format's description.
const schemaExampleJSON = `{"tables": [
  {"name": "users", "sync_key": "id",
   "columns": [{"name":"id","type":"uuid"},
               {"name":"name","type":"text","nullable":false,"default":""},
               {"name":"age","type":"integer","nullable":true}],
   "indexes": [{"name":"users_name_idx","columns":["name"],"unique":false}]},
  {"name": "posts", "sync_key": "id",
   "columns": [{"name":"id","type":"uuid"},{"name":"author_id","type":"uuid","nullable":true},{"name":"body","type":"text"}],
   "foreign_keys": [{"column":"author_id","references":"users","on_delete":"cascade","on_update":"no action"}]}
]}`

// schemaBaseDef returns a fresh valid definition for tests to break.
func schemaBaseDef() Definition {
	return Definition{Tables: []TableDef{
		{
			Name: "users", SyncKey: "id",
			Columns: []ColumnDef{
				{Name: "id", Type: ColumnUUID},
				{Name: "name", Type: ColumnText, Default: json.RawMessage(`""`)},
				{Name: "age", Type: ColumnInteger, Nullable: true},
				{Name: "avatar", Type: ColumnBlob, Nullable: true},
			},
			Indexes: []IndexDef{{Name: "users_name_idx", Columns: []string{"name"}}},
		},
		{
			Name: "posts", SyncKey: "id",
			Columns: []ColumnDef{
				{Name: "id", Type: ColumnUUID},
				{Name: "author_id", Type: ColumnUUID, Nullable: true},
				{Name: "editor_id", Type: ColumnUUID},
				{Name: "body", Type: ColumnText},
			},
			ForeignKeys: []ForeignKeyDef{{Column: "author_id", References: "users", OnDelete: FKSetNull}},
		},
	}}
}

func schemaMustNew(t *testing.T, def Definition) *Schema {
	t.Helper()
	s, err := NewSchema(def)
	require.NoError(t, err)
	return s
}

// schemaProblems returns the problems of a *DefinitionError, failing the test
// for any other result.
func schemaProblems(t *testing.T, err error) []FieldProblem {
	t.Helper()
	require.Error(t, err)
	var de *DefinitionError
	require.True(t, errors.As(err, &de), "want *DefinitionError, got %T: %v", err, err)
	require.NotEmpty(t, de.Problems)
	return de.Problems
}

func TestSchemaNewSchemaRefuses(t *testing.T) {
	long := strings.Repeat("a", 64)
	cases := []struct {
		name   string
		mutate func(d *Definition)
		path   string
		msg    string // substring of the message at path
	}{
		{"no tables", func(d *Definition) { d.Tables = nil }, "tables", "at least one table is required"},
		{"too many tables", func(d *Definition) {
			d.Tables = nil
			for i := range schemaMaxTables + 1 {
				d.Tables = append(d.Tables, TableDef{Name: fmt.Sprintf("t%d", i), SyncKey: "id",
					Columns: []ColumnDef{{Name: "id", Type: ColumnText}}})
			}
		}, "tables", "at most 200 tables"},
		{"table name upper case", func(d *Definition) { d.Tables[0].Name = "Users" },
			"tables[0].name", `invalid table name "Users": use lowercase letters`},
		{"table name too long", func(d *Definition) { d.Tables[0].Name = long }, "tables[0].name", "at most 63 characters"},
		{"table name starts with digit", func(d *Definition) { d.Tables[0].Name = "1users" }, "tables[0].name", "starting with a letter"},
		{"table name with dash", func(d *Definition) { d.Tables[0].Name = "my-users" }, "tables[0].name", "invalid table name"},
		{"table name empty", func(d *Definition) { d.Tables[1].Name = "" }, "tables[1].name", "table name is required"},
		{"table name _sync prefix", func(d *Definition) { d.Tables[0].Name = "_sync_users" },
			"tables[0].name", `names starting with "_" are reserved for Syncplane`},
		{"table name reserved word", func(d *Definition) { d.Tables[0].Name = "user" },
			"tables[0].name", `table name "user" is a reserved word in PostgreSQL`},
		{"table name reserved word (type class)", func(d *Definition) { d.Tables[0].Name = "join" },
			"tables[0].name", "reserved word"},
		{"table name of migrate's table", func(d *Definition) { d.Tables[0].Name = "schema_migrations" },
			"tables[0].name", "reserved for Syncplane"},
		{"duplicate table", func(d *Definition) { d.Tables[1].Name = "users" },
			"tables[1].name", `duplicate table name "users" (also tables[0])`},
		{"table collides with primary key index", func(d *Definition) { d.Tables[1].Name = "users_pkey" },
			"tables[0].name", `name "users_pkey" is already used by table users_pkey`},
		{"no columns", func(d *Definition) { d.Tables[0].Columns = nil }, "tables[0].columns", "at least one column is required"},
		{"too many columns", func(d *Definition) {
			for i := range schemaMaxColumns {
				d.Tables[0].Columns = append(d.Tables[0].Columns, ColumnDef{Name: fmt.Sprintf("c%d", i), Type: ColumnText})
			}
		}, "tables[0].columns", "at most 400 columns"},
		{"unknown type", func(d *Definition) { d.Tables[0].Columns[2].Type = "bool" },
			"tables[0].columns[2].type", `unknown type "bool"; use one of text, integer, real, blob, uuid, timestamp, json`},
		{"missing type", func(d *Definition) { d.Tables[0].Columns[2].Type = "" },
			"tables[0].columns[2].type", "type is required; use one of text, integer"},
		{"type in upper case", func(d *Definition) { d.Tables[0].Columns[2].Type = "INTEGER" },
			"tables[0].columns[2].type", `unknown type "INTEGER"`},
		{"column name reserved word", func(d *Definition) { d.Tables[0].Columns[2].Name = "select" },
			"tables[0].columns[2].name", `column name "select" is a reserved word`},
		{"hidden scope column declared", func(d *Definition) { d.Tables[0].Columns[2].Name = "_sync_scope_id" },
			"tables[0].columns[2].name", "reserved for Syncplane"},
		{"column name with space", func(d *Definition) { d.Tables[0].Columns[2].Name = "first name" },
			"tables[0].columns[2].name", "invalid column name"},
		{"duplicate column", func(d *Definition) { d.Tables[0].Columns[3].Name = "age" },
			"tables[0].columns[3].name", `duplicate column name "age" (also columns[2])`},
		{"sync key missing", func(d *Definition) { d.Tables[0].SyncKey = "" }, "tables[0].sync_key", "sync_key is required"},
		{"sync key not a column", func(d *Definition) { d.Tables[0].SyncKey = "uid" },
			"tables[0].sync_key", `sync key "uid" is not a column of table users`},
		{"sync key nullable", func(d *Definition) { d.Tables[0].Columns[0].Nullable = true },
			"tables[0].columns[0].nullable", `sync key column "id" must not be nullable`},
		{"sync key integer", func(d *Definition) { d.Tables[0].Columns[0].Type = ColumnInteger },
			"tables[0].columns[0].type", `sync key column "id" must be of type uuid or text, not integer`},
		{"sync key with default", func(d *Definition) {
			d.Tables[0].Columns[0].Default = json.RawMessage(`"00000000-0000-0000-0000-000000000000"`)
		}, "tables[0].columns[0].default", `sync key column "id" must not have a default`},
		{"fk to unknown table", func(d *Definition) { d.Tables[1].ForeignKeys[0].References = "authors" },
			"tables[1].foreign_keys[0].references", `table "authors" is not in the definition`},
		{"fk references missing", func(d *Definition) { d.Tables[1].ForeignKeys[0].References = "" },
			"tables[1].foreign_keys[0].references", "references is required"},
		{"fk unknown column", func(d *Definition) { d.Tables[1].ForeignKeys[0].Column = "writer_id" },
			"tables[1].foreign_keys[0].column", `unknown column "writer_id" in table posts`},
		{"fk type mismatch", func(d *Definition) { d.Tables[1].Columns[1].Type = ColumnText },
			"tables[1].foreign_keys[0].column", "column posts.author_id is text but users.id is uuid"},
		{"fk set null on not null column", func(d *Definition) { d.Tables[1].Columns[1].Nullable = false },
			"tables[1].foreign_keys[0].on_delete", `"set null" requires column posts.author_id to be nullable`},
		{"fk set default without default", func(d *Definition) { d.Tables[1].ForeignKeys[0].OnDelete = FKSetDefault },
			"tables[1].foreign_keys[0].on_delete", `"set default" requires column posts.author_id to have a default`},
		{"fk unknown on_delete", func(d *Definition) { d.Tables[1].ForeignKeys[0].OnDelete = "delete" },
			"tables[1].foreign_keys[0].on_delete", `unknown action "delete"; use one of no action, restrict, cascade, set null, set default`},
		{"fk on_update set null", func(d *Definition) { d.Tables[1].ForeignKeys[0].OnUpdate = FKSetNull },
			"tables[1].foreign_keys[0].on_update", `unsupported action "set null"; use one of no action, restrict, cascade`},
		{"fk twice on one column", func(d *Definition) {
			d.Tables[1].ForeignKeys = append(d.Tables[1].ForeignKeys, ForeignKeyDef{Column: "author_id", References: "posts"})
		}, "tables[1].foreign_keys[1].column", `column "author_id" already has a foreign key (foreign_keys[0])`},
		{"index unknown column", func(d *Definition) { d.Tables[0].Indexes[0].Columns = []string{"name", "email"} },
			"tables[0].indexes[0].columns[1]", `unknown column "email" in table users`},
		{"index repeats column", func(d *Definition) { d.Tables[0].Indexes[0].Columns = []string{"name", "name"} },
			"tables[0].indexes[0].columns[1]", `column "name" appears more than once`},
		{"index without columns", func(d *Definition) { d.Tables[0].Indexes[0].Columns = nil },
			"tables[0].indexes[0].columns", "at least one column is required"},
		{"index on blob", func(d *Definition) { d.Tables[0].Indexes[0].Columns = []string{"avatar"} },
			"tables[0].indexes[0].columns[0]", "blob and json columns cannot be indexed"},
		{"index on hidden scope column", func(d *Definition) { d.Tables[0].Indexes[0].Columns = []string{"_sync_scope_id"} },
			"tables[0].indexes[0].columns[0]", `unknown column "_sync_scope_id"`},
		{"index name invalid", func(d *Definition) { d.Tables[0].Indexes[0].Name = "Users-Name" },
			"tables[0].indexes[0].name", "invalid index name"},
		{"index name is a table", func(d *Definition) { d.Tables[0].Indexes[0].Name = "posts" },
			"tables[0].indexes[0].name", `name "posts" is already used by table posts`},
		{"index name used twice", func(d *Definition) {
			d.Tables[1].Indexes = []IndexDef{{Name: "users_name_idx", Columns: []string{"body"}}}
		}, "tables[1].indexes[0].name", `name "users_name_idx" is already used by index users_name_idx of table users`},
		{"index name collides with fk index", func(d *Definition) {
			d.Tables[1].Indexes = []IndexDef{{Name: "posts_author_id_fkey_idx", Columns: []string{"body"}}}
		}, "tables[1].indexes[0].name", "already used by the index of foreign key posts.author_id"},
		{"index defined twice", func(d *Definition) {
			d.Tables[0].Indexes = append(d.Tables[0].Indexes, IndexDef{Columns: []string{"name"}})
		}, "tables[0].indexes[1].columns", "same columns as indexes[0]"},
		{"default of wrong JSON type", func(d *Definition) { d.Tables[0].Columns[2].Default = json.RawMessage(`"7"`) },
			"tables[0].columns[2].default", "default of an integer column must be a number, not string"},
		{"integer default with fraction", func(d *Definition) { d.Tables[0].Columns[2].Default = json.RawMessage(`1.5`) },
			"tables[0].columns[2].default", "default 1.5 is not an integer"},
		{"integer default beyond int64", func(d *Definition) {
			d.Tables[0].Columns[2].Default = json.RawMessage(`9223372036854775808`)
		}, "tables[0].columns[2].default", "is not an integer between -9223372036854775808 and 9223372036854775807"},
		{"boolean default on integer", func(d *Definition) { d.Tables[0].Columns[2].Default = json.RawMessage(`true`) },
			"tables[0].columns[2].default", "booleans are stored as 0 and 1"},
		{"null default on not null column", func(d *Definition) { d.Tables[0].Columns[1].Default = json.RawMessage(`null`) },
			"tables[0].columns[1].default", "default null is only allowed on a nullable column"},
		{"text default with NUL", func(d *Definition) { d.Tables[0].Columns[1].Default = json.RawMessage(`"a\u0000b"`) },
			"tables[0].columns[1].default", "must not contain NUL"},
		{"text default not JSON", func(d *Definition) { d.Tables[0].Columns[1].Default = json.RawMessage(`'x'); DROP TABLE x; --`) },
			"tables[0].columns[1].default", "default is not valid JSON"},
		{"blob default not base64", func(d *Definition) { d.Tables[0].Columns[3].Default = json.RawMessage(`"not base64!"`) },
			"tables[0].columns[3].default", "standard base64"},
		{"blob default unpadded", func(d *Definition) { d.Tables[0].Columns[3].Default = json.RawMessage(`"aGk"`) },
			"tables[0].columns[3].default", "standard base64"},
		{"uuid default upper case", func(d *Definition) {
			d.Tables[1].Columns[2].Default = json.RawMessage(`"550E8400-E29B-41D4-A716-446655440000"`)
		}, "tables[1].columns[2].default", "not a canonical UUID"},
		{"timestamp default not a timestamp", func(d *Definition) {
			d.Tables[0].Columns = append(d.Tables[0].Columns, ColumnDef{Name: "seen_at", Type: ColumnTimestamp, Default: json.RawMessage(`"yesterday"`)})
		}, "tables[0].columns[4].default", `default "yesterday" is not an RFC 3339 timestamp`},
		{"real default out of range", func(d *Definition) {
			d.Tables[0].Columns = append(d.Tables[0].Columns, ColumnDef{Name: "score", Type: ColumnReal, Default: json.RawMessage(`1e400`)})
		}, "tables[0].columns[4].default", "out of range for a double precision"},
		{"real default underflow", func(d *Definition) {
			d.Tables[0].Columns = append(d.Tables[0].Columns, ColumnDef{Name: "score", Type: ColumnReal, Default: json.RawMessage(`1e-400`)})
		}, "tables[0].columns[4].default", "out of range for a double precision"},
		{"json default with NUL", func(d *Definition) {
			d.Tables[0].Columns = append(d.Tables[0].Columns, ColumnDef{Name: "meta", Type: ColumnJSON, Default: json.RawMessage(`{"a":"\u0000"}`)})
		}, "tables[0].columns[4].default", `must not contain NUL characters (\u0000)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			def := schemaBaseDef()
			tc.mutate(&def)
			s, err := NewSchema(def)
			assert.Nil(t, s)
			problems := schemaProblems(t, err)
			var at []string
			for _, p := range problems {
				if p.Path == tc.path {
					at = append(at, p.Message)
				}
			}
			require.NotEmpty(t, at, "no problem at %s; got %v", tc.path, problems)
			assert.Contains(t, strings.Join(at, " | "), tc.msg)
			assert.Contains(t, err.Error(), tc.path+": ")
		})
	}
}

func TestSchemaNewSchemaListsEveryProblem(t *testing.T) {
	def := schemaBaseDef()
	def.Tables[0].Name = "User"
	def.Tables[0].Columns[2].Type = "bool"
	def.Tables[1].ForeignKeys[0].References = "authors"
	def.Tables[1].Indexes = []IndexDef{{Columns: []string{"nope"}}}
	_, err := NewSchema(def)
	problems := schemaProblems(t, err)
	var paths []string
	for _, p := range problems {
		paths = append(paths, p.Path)
	}
	assert.ElementsMatch(t, []string{
		"tables[0].name", "tables[0].columns[2].type",
		"tables[1].foreign_keys[0].references", "tables[1].indexes[0].columns[0]",
	}, paths)
}

func TestSchemaNewSchemaAccepts(t *testing.T) {
	cases := []struct {
		name string
		def  Definition
	}{
		{"base", schemaBaseDef()},
		{"self reference", Definition{Tables: []TableDef{{
			Name: "categories", SyncKey: "id",
			Columns:     []ColumnDef{{Name: "id", Type: ColumnText}, {Name: "parent_id", Type: ColumnText, Nullable: true}},
			ForeignKeys: []ForeignKeyDef{{Column: "parent_id", References: "categories", OnDelete: "SET NULL", OnUpdate: "Cascade"}},
		}}}},
		{"two-table cycle", Definition{Tables: []TableDef{
			{Name: "teams", SyncKey: "id",
				Columns:     []ColumnDef{{Name: "id", Type: ColumnUUID}, {Name: "captain_id", Type: ColumnUUID, Nullable: true}},
				ForeignKeys: []ForeignKeyDef{{Column: "captain_id", References: "members", OnDelete: FKSetNull}}},
			{Name: "members", SyncKey: "id",
				Columns:     []ColumnDef{{Name: "id", Type: ColumnUUID}, {Name: "team_id", Type: ColumnUUID}},
				ForeignKeys: []ForeignKeyDef{{Column: "team_id", References: "teams", OnDelete: FKCascade}}},
		}}},
		{"key column references parent (1:1)", Definition{Tables: []TableDef{
			{Name: "users", SyncKey: "id", Columns: []ColumnDef{{Name: "id", Type: ColumnUUID}}},
			{Name: "profiles", SyncKey: "id", Columns: []ColumnDef{{Name: "id", Type: ColumnUUID}},
				ForeignKeys: []ForeignKeyDef{{Column: "id", References: "users", OnDelete: FKCascade, OnUpdate: FKCascade}}},
		}}},
		{"every type with defaults", Definition{Tables: []TableDef{{
			Name: "things", SyncKey: "id",
			Columns: []ColumnDef{
				{Name: "id", Type: ColumnText},
				{Name: "t", Type: ColumnText, Default: json.RawMessage(`"it's <a> \\ \"b\""`)},
				{Name: "i", Type: ColumnInteger, Default: json.RawMessage(`-9223372036854775808`)},
				{Name: "flag", Type: ColumnInteger, Default: json.RawMessage(`0`)},
				{Name: "r", Type: ColumnReal, Default: json.RawMessage(`1.5e300`)},
				{Name: "b", Type: ColumnBlob, Default: json.RawMessage(`"AAEC/w=="`)},
				{Name: "u", Type: ColumnUUID, Default: json.RawMessage(`"550e8400-e29b-41d4-a716-446655440000"`)},
				{Name: "ts", Type: ColumnTimestamp, Default: json.RawMessage(`"2026-03-24T18:02:00.123456789Z"`)},
				{Name: "j", Type: ColumnJSON, Default: json.RawMessage(`{"a": [1, 2.50, null]}`)},
				{Name: "n", Type: ColumnJSON, Nullable: true, Default: json.RawMessage(`null`)},
				{Name: "k", Type: ColumnText, Nullable: true, Default: json.RawMessage(`"root"`)},
			},
			ForeignKeys: []ForeignKeyDef{{Column: "k", References: "things", OnDelete: FKSetDefault}},
			Indexes: []IndexDef{
				{Columns: []string{"t", "i"}, Unique: true},
				{Columns: []string{"t", "i"}},
			},
		}}}},
		{"unreserved key words are fine", Definition{Tables: []TableDef{{
			Name: "events", SyncKey: "name",
			Columns: []ColumnDef{{Name: "name", Type: ColumnText}, {Name: "type", Type: ColumnText},
				{Name: "position", Type: ColumnInteger}, {Name: "timestamp", Type: ColumnTimestamp}, {Name: "value", Type: ColumnJSON}},
		}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewSchema(tc.def)
			require.NoError(t, err)
			// The normalized document round-trips to the same schema.
			again := schemaMustNew(t, s.Definition())
			assert.Equal(t, s.Definition(), again.Definition())
			assert.Equal(t, s.Tables(), again.Tables())
		})
	}
}

func TestSchemaAccessorsAndNormalization(t *testing.T) {
	def := schemaBaseDef()
	def.Tables[0].Columns[2].Default = json.RawMessage(` -0 `)
	def.Tables = append(def.Tables, TableDef{Name: "albums", SyncKey: "id",
		Columns: []ColumnDef{
			{Name: "id", Type: ColumnText},
			{Name: "title", Type: ColumnText, Default: json.RawMessage(`"<Tom & Jerry>"`)},
			{Name: "rating", Type: ColumnReal, Default: json.RawMessage(`10.50`)},
			{Name: "meta", Type: ColumnJSON, Default: json.RawMessage("{ \"a\" : [ 1 , 2 ] }")},
			{Name: "note", Type: ColumnText, Nullable: true, Default: json.RawMessage(`null`)},
		},
		Indexes: []IndexDef{{Columns: []string{"title"}, Unique: true}, {Columns: []string{"title", "rating"}}},
	})
	s := schemaMustNew(t, def)

	var names []string
	for _, tb := range s.Tables() {
		names = append(names, tb.Name)
	}
	assert.Equal(t, []string{"albums", "posts", "users"}, names)

	users, ok := s.Table("users")
	require.True(t, ok)
	_, ok = s.Table("nope")
	assert.False(t, ok)
	assert.Equal(t, "id", users.Key.Name)
	age, ok := users.Column("age")
	require.True(t, ok)
	assert.Equal(t, json.RawMessage(`0`), age.Default)
	_, ok = users.Column(schemaScopeColumn)
	assert.False(t, ok, "the scope column is not a visible column")

	albums, _ := s.Table("albums")
	col := func(name string) *Column { c, ok := albums.Column(name); require.True(t, ok); return c }
	assert.Equal(t, `"<Tom & Jerry>"`, string(col("title").Default))
	assert.Equal(t, `10.5`, string(col("rating").Default))
	assert.Equal(t, `{"a":[1,2]}`, string(col("meta").Default))
	assert.Nil(t, col("note").Default, "null default means none")
	assert.Equal(t, []Index{
		{Name: "albums_title_key", Columns: []string{"title"}, Unique: true},
		{Name: "albums_title_rating_idx", Columns: []string{"title", "rating"}},
	}, albums.Indexes)

	posts, _ := s.Table("posts")
	assert.Equal(t, []ForeignKey{{Name: "posts_author_id_fkey", Column: "author_id", References: "users",
		ReferencedColumn: "id", OnDelete: FKSetNull, OnUpdate: FKNoAction}}, posts.ForeignKeys)
	assert.Equal(t, []string{"id", "author_id", "editor_id", "body"}, func() []string {
		var n []string
		for _, c := range posts.Columns {
			n = append(n, c.Name)
		}
		return n
	}(), "columns keep declared order")

	// The stored document is explicit: names and actions filled in.
	d := s.Definition()
	assert.Equal(t, "albums", d.Tables[0].Name)
	assert.Equal(t, "albums_title_key", d.Tables[0].Indexes[0].Name)
	assert.Equal(t, FKNoAction, d.Tables[1].ForeignKeys[0].OnUpdate)
}

func TestSchemaGeneratedNamesFitPostgres(t *testing.T) {
	tbl := strings.Repeat("t", 60)
	c1, c2 := strings.Repeat("a", 40), strings.Repeat("a", 39)+"b"
	def := Definition{Tables: []TableDef{{Name: tbl, SyncKey: "id",
		Columns: []ColumnDef{{Name: "id", Type: ColumnText}, {Name: c1, Type: ColumnText, Nullable: true}, {Name: c2, Type: ColumnText, Nullable: true}},
		ForeignKeys: []ForeignKeyDef{
			{Column: c1, References: tbl},
			{Column: c2, References: tbl},
		},
		Indexes: []IndexDef{{Columns: []string{c1}}, {Columns: []string{c2}}},
	}}}
	s := schemaMustNew(t, def)
	tb, _ := s.Table(tbl)
	names := map[string]bool{schemaPKeyName(tbl): true}
	for _, ix := range tb.Indexes {
		names[ix.Name] = true
	}
	for _, fk := range tb.ForeignKeys {
		names[fk.Name] = true
		names[schemaFKIndexName(tb, fk)] = true
	}
	assert.Len(t, names, 7, "all generated names distinct")
	for n := range names {
		assert.LessOrEqual(t, len(n), 63, n)
		assert.Regexp(t, schemaNameRE, n)
	}
	// Deterministic: the same input gives the same names.
	assert.Equal(t, tb.Indexes, schemaMustNew(t, def).Tables()[0].Indexes)
	assert.Equal(t, "users_pkey", schemaPKeyName("users"))
}

func TestSchemaTimestampPattern(t *testing.T) {
	ok := []string{
		"2026-03-24T18:02:00.123456789Z", "2026-03-24T18:02:00+02:00", "2026-03-24T18:02:00Z",
		"2026-03-24 18:02:00", "2026-03-24T18:02", "2026-03-24t18:02:00z", "2026-03-24T18:02:00.5-0530",
		"2026-03-24T18:02:00.123456+00:00", "2016-12-31T23:59:60Z", "2026-03-24T18:02:00+02",
	}
	bad := []string{
		"yesterday", "", "2026-03-24", "2026-13-01T00:00:00Z", "2026-03-32T00:00:00Z", "2026-03-24T24:00:00Z",
		"2026-03-24T18:60:00Z", "2026-03-24T18:02:00.Z", "2026-03-24T18:02:00 UTC", "26-03-24T18:02:00Z",
		" 2026-03-24T18:02:00Z", "2026-03-24T18:02:00Z\n", "1711303320",
	}
	for _, v := range ok {
		assert.True(t, schemaTimestampRE.MatchString(v), v)
	}
	for _, v := range bad {
		assert.False(t, schemaTimestampRE.MatchString(v), v)
	}
}

func TestSchemaParseDefinition(t *testing.T) {
	def, err := ParseDefinition([]byte(schemaExampleJSON))
	require.NoError(t, err)
	s := schemaMustNew(t, def)
	posts, ok := s.Table("posts")
	require.True(t, ok)
	assert.Equal(t, FKCascade, posts.ForeignKeys[0].OnDelete)

	yamlDoc := `
tables:
  - name: users
    sync_key: id
    columns:
      - {name: id, type: uuid}
      - {name: name, type: text, nullable: false, default: ""}
      - {name: age, type: integer, nullable: true}
    indexes:
      - {name: users_name_idx, columns: [name], unique: false}
  - name: posts
    sync_key: id
    columns:
      - {name: id, type: uuid}
      - {name: author_id, type: uuid, nullable: true}
      - {name: body, type: text}
    foreign_keys:
      - {column: author_id, references: users, on_delete: cascade, on_update: no action}
`
	ydef, err := ParseDefinition([]byte(yamlDoc))
	require.NoError(t, err)
	assert.Equal(t, s.Definition(), schemaMustNew(t, ydef).Definition())

	// Defaults keep their exact text through parsing.
	def, err = ParseDefinition([]byte(`{"tables":[{"name":"t","sync_key":"id","columns":[
		{"name":"id","type":"text"},{"name":"n","type":"integer","default":9223372036854775807},
		{"name":"z","type":"text","nullable":true,"default":null}]}]}`))
	require.NoError(t, err)
	assert.Equal(t, "9223372036854775807", string(def.Tables[0].Columns[1].Default))
	assert.Equal(t, "null", string(def.Tables[0].Columns[2].Default))
}

func TestSchemaParseDefinitionRefuses(t *testing.T) {
	cases := []struct {
		name, doc, path, msg string
	}{
		{"unknown column field", `{"tables":[{"name":"t","sync_key":"id","columns":[{"name":"id","type":"text"},{"name":"x","type":"text","nulable":true}]}]}`,
			"tables[0].columns[1].nulable", `unknown field "nulable"; known fields are name, type, nullable, default`},
		{"unknown top-level field", `{"tables":[],"version":2}`, "version", `unknown field "version"`},
		{"field name in wrong case", `{"tables":[{"Name":"t"}]}`, "tables[0].Name", `unknown field "Name"`},
		{"unknown fk field", `{"tables":[{"name":"t","foreign_keys":[{"column":"a","table":"b"}]}]}`,
			"tables[0].foreign_keys[0].table", `unknown field "table"`},
		{"unknown field in yaml", "tables:\n  - name: t\n    primary_key: id\n", "tables[0].primary_key", `unknown field "primary_key"`},
		{"repeated field", `{"tables":[{"name":"a","name":"b"}]}`, "tables[0].name", `field "name" appears more than once`},
		{"bool as string", `{"tables":[{"name":"t","columns":[{"name":"a","type":"text","nullable":"yes"}]}]}`,
			"tables[0].columns[0].nullable", "must be true or false, not string"},
		{"name as number", `{"tables":[{"name":7}]}`, "tables[0].name", "must be a string, not number"},
		{"tables not an array", `{"tables":{"name":"t"}}`, "tables", "must be an array, not object"},
		{"table not an object", `{"tables":["users"]}`, "tables[0]", "must be an object, not string"},
		{"document is an array", `[{"name":"t"}]`, "", `document must be an object with a "tables" field, not array`},
		{"document is a scalar", `42`, "", "document must be an object"},
		{"invalid JSON", "{\"tables\": [\n  {\"name\": \"t\",}\n]}", "", "invalid JSON at line 2, column"},
		{"invalid YAML", "tables:\n  - name: t\n   bad: [\n", "", "invalid YAML"},
		{"empty", " \n", "", "document is empty"},
		{"too large", strings.Repeat(" ", schemaMaxDocumentBytes+1), "", "document is larger than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseDefinition([]byte(tc.doc))
			problems := schemaProblems(t, err)
			found := false
			for _, p := range problems {
				if p.Path == tc.path && strings.Contains(p.Message, tc.msg) {
					found = true
				}
			}
			assert.True(t, found, "want %q at %q, got %v", tc.msg, tc.path, problems)
		})
	}
}

func TestSchemaDefinitionJSONRoundTrip(t *testing.T) {
	def, err := ParseDefinition([]byte(schemaExampleJSON))
	require.NoError(t, err)
	s := schemaMustNew(t, def)
	doc, err := json.Marshal(s.Definition())
	require.NoError(t, err)
	back, err := ParseDefinition(doc)
	require.NoError(t, err)
	assert.Equal(t, s.Definition(), schemaMustNew(t, back).Definition())
	assert.NotContains(t, string(doc), schemaScopeColumn)
}

func TestSchemaDefinitionErrorMessage(t *testing.T) {
	err := &DefinitionError{Problems: []FieldProblem{
		{Path: "tables[0].name", Message: "bad"}, {Message: "document is empty"},
	}}
	assert.Equal(t, "invalid table definition: tables[0].name: bad; document is empty", err.Error())
}

// FuzzSchemaParseDefinition feeds arbitrary documents through parsing,
// validation and DDL generation: nothing may panic, and whatever validates
// must round-trip through its normalized document.
func FuzzSchemaParseDefinition(f *testing.F) {
	f.Add([]byte(schemaExampleJSON))
	f.Add([]byte("tables:\n  - name: t\n    sync_key: id\n    columns: [{name: id, type: text}]\n"))
	f.Add([]byte(`{"tables":[{"name":"t","sync_key":"id","columns":[{"name":"id","type":"text"},{"name":"b","type":"blob","default":"AA=="}]}]}`))
	f.Add([]byte(`{"tables":[{"name":"t","sync_key":"id","columns":[{"name":"id","type":"uuid"},{"name":"p","type":"uuid","nullable":true}],"foreign_keys":[{"column":"p","references":"t","on_delete":"set null"}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		def, err := ParseDefinition(data)
		if err != nil {
			var de *DefinitionError
			require.ErrorAs(t, err, &de)
			return
		}
		s, err := NewSchema(def)
		if err != nil {
			var de *DefinitionError
			require.ErrorAs(t, err, &de)
			return
		}
		require.NotEmpty(t, s.CreateDDL("t_fuzz"))
		again, err := NewSchema(s.Definition())
		require.NoError(t, err)
		require.Equal(t, s.Definition(), again.Definition())
		require.Empty(t, Diff(s, again))
	})
}
