package tenant

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// schemaChangeSummary is the part of a Change the diff tests compare.
type schemaChangeSummary struct {
	Kind              ChangeKind
	Table, Col, Index string
	Breaking, Refused bool
}

func schemaSummaries(changes []Change) []schemaChangeSummary {
	out := []schemaChangeSummary{}
	for _, c := range changes {
		out = append(out, schemaChangeSummary{c.Kind, c.Table, c.Column, c.Index, c.Breaking, c.Refused})
	}
	return out
}

func TestSchemaDiff(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(d *Definition)
		want   []schemaChangeSummary
	}{
		{"identical", func(d *Definition) {}, []schemaChangeSummary{}},
		{"reordered tables and explicit defaults change nothing", func(d *Definition) {
			d.Tables[0], d.Tables[1] = d.Tables[1], d.Tables[0]
			d.Tables[0].ForeignKeys[0].OnUpdate = "NO ACTION"
		}, []schemaChangeSummary{}},
		{"add table", func(d *Definition) {
			d.Tables = append(d.Tables, TableDef{Name: "tags", SyncKey: "id", Columns: []ColumnDef{{Name: "id", Type: ColumnText}}})
		}, []schemaChangeSummary{{Kind: ChangeAddTable, Table: "tags"}}},
		{"add nullable column", func(d *Definition) {
			d.Tables[0].Columns = append(d.Tables[0].Columns, ColumnDef{Name: "bio", Type: ColumnText, Nullable: true})
		}, []schemaChangeSummary{{Kind: ChangeAddColumn, Table: "users", Col: "bio"}}},
		{"add defaulted column", func(d *Definition) {
			d.Tables[0].Columns = append(d.Tables[0].Columns, ColumnDef{Name: "flag", Type: ColumnInteger, Default: json.RawMessage(`0`)})
		}, []schemaChangeSummary{{Kind: ChangeAddColumn, Table: "users", Col: "flag"}}},
		{"add required column without default", func(d *Definition) {
			d.Tables[0].Columns = append(d.Tables[0].Columns, ColumnDef{Name: "flag", Type: ColumnInteger})
		}, []schemaChangeSummary{{Kind: ChangeAddColumn, Table: "users", Col: "flag", Breaking: true}}},
		{"add index", func(d *Definition) {
			d.Tables[1].Indexes = []IndexDef{{Columns: []string{"body"}, Unique: true}}
		}, []schemaChangeSummary{{Kind: ChangeAddIndex, Table: "posts", Index: "posts_body_key"}}},
		{"change default", func(d *Definition) { d.Tables[0].Columns[1].Default = json.RawMessage(`"x"`) },
			[]schemaChangeSummary{{Kind: ChangeColumnDefault, Table: "users", Col: "name"}}},
		{"drop default", func(d *Definition) { d.Tables[0].Columns[1].Default = nil },
			[]schemaChangeSummary{{Kind: ChangeColumnDefault, Table: "users", Col: "name"}}},
		{"drop table", func(d *Definition) {
			d.Tables = d.Tables[:1]
		}, []schemaChangeSummary{{Kind: ChangeDropTable, Table: "posts", Breaking: true}}},
		{"drop referenced table", func(d *Definition) {
			d.Tables = d.Tables[1:]
			d.Tables[0].ForeignKeys = nil
		}, []schemaChangeSummary{
			{Kind: ChangeDropForeignKey, Table: "posts", Col: "author_id", Breaking: true},
			{Kind: ChangeDropTable, Table: "users", Breaking: true},
		}},
		{"drop column", func(d *Definition) { d.Tables[0].Columns = d.Tables[0].Columns[:3] },
			[]schemaChangeSummary{{Kind: ChangeDropColumn, Table: "users", Col: "avatar", Breaking: true}}},
		{"drop index", func(d *Definition) { d.Tables[0].Indexes = nil },
			[]schemaChangeSummary{{Kind: ChangeDropIndex, Table: "users", Index: "users_name_idx", Breaking: true}}},
		{"change index", func(d *Definition) { d.Tables[0].Indexes[0].Unique = true },
			[]schemaChangeSummary{{Kind: ChangeAlterIndex, Table: "users", Index: "users_name_idx", Breaking: true}}},
		{"make column required", func(d *Definition) { d.Tables[0].Columns[2].Nullable = false },
			[]schemaChangeSummary{{Kind: ChangeColumnNullable, Table: "users", Col: "age", Breaking: true}}},
		{"make column nullable", func(d *Definition) { d.Tables[0].Columns[1].Nullable = true },
			[]schemaChangeSummary{{Kind: ChangeColumnNullable, Table: "users", Col: "name", Breaking: true}}},
		{"add foreign key", func(d *Definition) {
			d.Tables[1].ForeignKeys = append(d.Tables[1].ForeignKeys, ForeignKeyDef{Column: "editor_id", References: "users"})
		}, []schemaChangeSummary{{Kind: ChangeAddForeignKey, Table: "posts", Col: "editor_id", Breaking: true}}},
		{"remove foreign key", func(d *Definition) { d.Tables[1].ForeignKeys = nil },
			[]schemaChangeSummary{{Kind: ChangeDropForeignKey, Table: "posts", Col: "author_id", Breaking: true}}},
		{"change foreign key action", func(d *Definition) { d.Tables[1].ForeignKeys[0].OnDelete = FKCascade },
			[]schemaChangeSummary{{Kind: ChangeAlterForeignKey, Table: "posts", Col: "author_id", Breaking: true}}},
		{"change foreign key target", func(d *Definition) { d.Tables[1].ForeignKeys[0].References = "posts" },
			[]schemaChangeSummary{{Kind: ChangeAlterForeignKey, Table: "posts", Col: "author_id", Breaking: true}}},
		{"change column type", func(d *Definition) { d.Tables[0].Columns[2].Type = ColumnReal },
			[]schemaChangeSummary{{Kind: ChangeColumnType, Table: "users", Col: "age", Breaking: true, Refused: true}}},
		{"change sync key", func(d *Definition) {
			d.Tables[1].SyncKey = "editor_id"
		}, []schemaChangeSummary{{Kind: ChangeSyncKey, Table: "posts", Col: "editor_id", Breaking: true, Refused: true}}},
		{"drop and re-add a column with another type", func(d *Definition) {
			d.Tables[0].Columns[3] = ColumnDef{Name: "avatar", Type: ColumnText, Nullable: true}
		}, []schemaChangeSummary{{Kind: ChangeColumnType, Table: "users", Col: "avatar", Breaking: true, Refused: true}}},
	}
	from := schemaMustNew(t, schemaBaseDef())
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			def := schemaBaseDef()
			tc.mutate(&def)
			to := schemaMustNew(t, def)
			changes := Diff(from, to)
			assert.Equal(t, tc.want, schemaSummaries(changes))
			for _, c := range changes {
				assert.NotEmpty(t, c.Description)
			}

			ddl, err := MigrationDDL("t_acme", from, to, false)
			var ce *SchemaChangeError
			switch {
			case len(tc.want) > 0 && tc.want[0].Refused:
				require.ErrorAs(t, err, &ce)
				assert.Contains(t, err.Error(), "add a new table instead")
				_, err = MigrationDDL("t_acme", from, to, true)
				require.ErrorAs(t, err, &ce, "refused even when breaking changes are allowed")
				assert.NotEmpty(t, ce.Refused)
			case len(tc.want) > 0 && tc.want[0].Breaking:
				require.ErrorAs(t, err, &ce)
				assert.Equal(t, changes, ce.Breaking)
				assert.Contains(t, err.Error(), "allow breaking changes")
				ddl, err = MigrationDDL("t_acme", from, to, true)
				require.NoError(t, err)
				assert.NotEmpty(t, ddl)
			case len(tc.want) > 0:
				require.NoError(t, err)
				assert.NotEmpty(t, ddl)
			default:
				require.NoError(t, err)
				assert.Empty(t, ddl)
			}
		})
	}
}

func TestSchemaDiffFromNothing(t *testing.T) {
	s := schemaMustNew(t, schemaBaseDef())
	assert.Equal(t, []schemaChangeSummary{
		{Kind: ChangeAddTable, Table: "posts"}, {Kind: ChangeAddTable, Table: "users"},
	}, schemaSummaries(Diff(nil, s)))
	ddl, err := MigrationDDL("t_acme", nil, s, false)
	require.NoError(t, err)
	assert.Equal(t, s.CreateDDL("t_acme"), ddl, "a first migration is the create DDL")

	assert.Equal(t, []schemaChangeSummary{
		{Kind: ChangeDropTable, Table: "posts", Breaking: true}, {Kind: ChangeDropTable, Table: "users", Breaking: true},
	}, schemaSummaries(Diff(s, nil)))
	ddl, err = MigrationDDL("t_acme", s, nil, true)
	require.NoError(t, err)
	assert.Equal(t, []string{`DROP TABLE "t_acme"."posts", "t_acme"."users"`}, ddl)
	assert.Empty(t, Diff(nil, nil))
}

func TestSchemaMigrationDDLOrder(t *testing.T) {
	from := schemaMustNew(t, schemaBaseDef())
	def := schemaBaseDef()
	// Every phase at once: posts.author_id moves to a new table "authors"
	// and posts loses editor_id; users loses its index and age, gains a
	// column, changes a default and nullability.
	def.Tables = append(def.Tables, TableDef{Name: "authors", SyncKey: "id",
		Columns: []ColumnDef{{Name: "id", Type: ColumnUUID}}})
	def.Tables[1].ForeignKeys[0].References = "authors"
	def.Tables[1].Columns = []ColumnDef{def.Tables[1].Columns[0], def.Tables[1].Columns[1], def.Tables[1].Columns[3]}
	def.Tables[1].Indexes = []IndexDef{{Name: "users_name_idx", Columns: []string{"body"}}}
	def.Tables[0].Indexes = nil
	def.Tables[0].Columns = []ColumnDef{
		def.Tables[0].Columns[0],
		{Name: "name", Type: ColumnText, Nullable: true, Default: json.RawMessage(`"n"`)},
		def.Tables[0].Columns[3],
		{Name: "bio", Type: ColumnText, Default: json.RawMessage(`"it's"`)},
	}
	to := schemaMustNew(t, def)
	ddl, err := MigrationDDL("t_acme", from, to, true)
	require.NoError(t, err)
	assert.Equal(t, []string{
		`ALTER TABLE "t_acme"."posts" DROP CONSTRAINT "posts_author_id_fkey"`,
		`DROP INDEX "t_acme"."users_name_idx"`,
		`ALTER TABLE "t_acme"."posts" DROP COLUMN "editor_id"`,
		`ALTER TABLE "t_acme"."users" DROP COLUMN "age"`,
		`ALTER TABLE "t_acme"."users" ALTER COLUMN "name" DROP NOT NULL`,
		`ALTER TABLE "t_acme"."users" ALTER COLUMN "name" SET DEFAULT 'n'::text`,
		"CREATE TABLE \"t_acme\".\"authors\" (\n\t\"_sync_scope_id\" text NOT NULL DEFAULT current_setting('syncplane.user_id', true),\n" +
			"\t\"_sync_row_version\" bigint NOT NULL DEFAULT 0,\n\t\"id\" uuid NOT NULL,\n\tCONSTRAINT \"authors_pkey\" PRIMARY KEY (\"_sync_scope_id\", \"id\")\n) WITH (" + TableStorageOptions + ")",
		`ALTER TABLE "t_acme"."users" ADD COLUMN "bio" text NOT NULL DEFAULT 'it''s'::text`,
		`ALTER TABLE "t_acme"."posts" ADD CONSTRAINT "posts_author_id_fkey" FOREIGN KEY ("_sync_scope_id", "author_id") ` +
			`REFERENCES "t_acme"."authors" ("_sync_scope_id", "id") ON DELETE SET NULL ("author_id") ON UPDATE NO ACTION DEFERRABLE INITIALLY DEFERRED`,
		`CREATE INDEX "users_name_idx" ON "t_acme"."posts" ("body")`,
		`CREATE TRIGGER "_sync_capture_ins" AFTER INSERT ON "t_acme"."authors" REFERENCING NEW TABLE AS "_sync_new" FOR EACH STATEMENT EXECUTE FUNCTION "t_acme"."_sync_capture"('id')`,
		`CREATE TRIGGER "_sync_capture_upd" AFTER UPDATE ON "t_acme"."authors" REFERENCING OLD TABLE AS "_sync_old" NEW TABLE AS "_sync_new" FOR EACH STATEMENT EXECUTE FUNCTION "t_acme"."_sync_capture"('id')`,
		`CREATE TRIGGER "_sync_capture_del" AFTER DELETE ON "t_acme"."authors" REFERENCING OLD TABLE AS "_sync_old" FOR EACH STATEMENT EXECUTE FUNCTION "t_acme"."_sync_capture"('id')`,
		`CREATE TRIGGER "_sync_no_truncate" BEFORE TRUNCATE ON "t_acme"."authors" FOR EACH STATEMENT EXECUTE FUNCTION "t_acme"."_sync_reject_truncate"()`,
		`CREATE TRIGGER "_sync_stamp_ins" BEFORE INSERT ON "t_acme"."authors" FOR EACH ROW WHEN (NEW."_sync_row_version" = 0) EXECUTE FUNCTION "t_acme"."_sync_stamp_row_version"()`,
		`CREATE TRIGGER "_sync_stamp_upd" BEFORE UPDATE ON "t_acme"."authors" FOR EACH ROW WHEN (NEW."_sync_row_version" = OLD."_sync_row_version") EXECUTE FUNCTION "t_acme"."_sync_stamp_row_version"()`,
	}, ddl)
}

func TestSchemaDropForeignKeyDropsItsIndex(t *testing.T) {
	from := schemaMustNew(t, schemaBaseDef())
	def := schemaBaseDef()
	def.Tables[1].ForeignKeys = nil
	ddl, err := MigrationDDL("t_acme", from, schemaMustNew(t, def), true)
	require.NoError(t, err)
	assert.Equal(t, []string{
		`ALTER TABLE "t_acme"."posts" DROP CONSTRAINT "posts_author_id_fkey"`,
		`DROP INDEX "t_acme"."posts_author_id_fkey_idx"`,
	}, ddl)
}

func TestSchemaDescribe(t *testing.T) {
	from := schemaMustNew(t, schemaBaseDef())
	def := schemaBaseDef()
	def.Tables = append(def.Tables, TableDef{Name: "tags", SyncKey: "id",
		Columns: []ColumnDef{{Name: "id", Type: ColumnText}, {Name: "label", Type: ColumnText}}})
	def.Tables[0].Columns[2] = ColumnDef{Name: "age", Type: ColumnText, Nullable: true}
	def.Tables[0].Columns = append(def.Tables[0].Columns,
		ColumnDef{Name: "bio", Type: ColumnText, Nullable: true},
		ColumnDef{Name: "rank", Type: ColumnInteger, Default: json.RawMessage(`1`)})
	def.Tables[0].Indexes = nil
	def.Tables[1].ForeignKeys[0].OnDelete = FKCascade
	to := schemaMustNew(t, def)
	assert.Equal(t, strings.Join([]string{
		"~ foreign key posts.author_id references users on delete set null on update no action → references users on delete cascade on update no action (breaking)",
		"+ table tags (key id, 2 columns)",
		"~ column users.age type integer → text (refused: add a new table instead)",
		"+ column users.bio text null",
		"+ column users.rank integer not null default 1",
		"- index users_name_idx on users (breaking)",
	}, "\n"), Describe(Diff(from, to)))

	_, err := MigrationDDL("t_acme", from, to, true)
	assert.EqualError(t, err, "table definition change refused: column users.age type integer → text: "+
		"a column's type and a table's sync key cannot change; add a new table instead")
	var ce *SchemaChangeError
	require.True(t, errors.As(err, &ce))
	assert.Len(t, ce.Breaking, 2)
}
