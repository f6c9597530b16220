package tenant

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
)

// ChangeKind classifies one difference between two schemas.
type ChangeKind string

// The kinds of change Diff reports. ChangeColumnType and ChangeSyncKey are
// always refused; the others are compatible or breaking as documented on
// Diff.
const (
	ChangeAddTable        ChangeKind = "add_table"
	ChangeDropTable       ChangeKind = "drop_table"
	ChangeAddColumn       ChangeKind = "add_column"
	ChangeDropColumn      ChangeKind = "drop_column"
	ChangeColumnType      ChangeKind = "column_type"
	ChangeColumnNullable  ChangeKind = "column_nullable"
	ChangeColumnDefault   ChangeKind = "column_default"
	ChangeSyncKey         ChangeKind = "sync_key"
	ChangeAddIndex        ChangeKind = "add_index"
	ChangeDropIndex       ChangeKind = "drop_index"
	ChangeAlterIndex      ChangeKind = "alter_index"
	ChangeAddForeignKey   ChangeKind = "add_foreign_key"
	ChangeDropForeignKey  ChangeKind = "drop_foreign_key"
	ChangeAlterForeignKey ChangeKind = "alter_foreign_key"
)

// Change is one difference between two schemas. Column is set for column and
// foreign key changes (the foreign key's column), Index for index changes.
type Change struct {
	Kind   ChangeKind `json:"kind"`
	Table  string     `json:"table"`
	Column string     `json:"column,omitempty"`
	Index  string     `json:"index,omitempty"`
	// Breaking changes are applied only when explicitly allowed.
	Breaking bool `json:"breaking"`
	// Refused changes are never applied (column type, sync key).
	Refused bool `json:"refused,omitempty"`
	// Description is a human summary without the +/-/~ sign, e.g.
	// "column users.age integer null".
	Description string `json:"description"`
}

// String renders the change as one line of Describe.
func (c Change) String() string {
	sign := "~"
	switch c.Kind {
	case ChangeAddTable, ChangeAddColumn, ChangeAddIndex, ChangeAddForeignKey:
		sign = "+"
	case ChangeDropTable, ChangeDropColumn, ChangeDropIndex, ChangeDropForeignKey:
		sign = "-"
	}
	s := sign + " " + c.Description
	switch {
	case c.Refused:
		s += " (refused: add a new table instead)"
	case c.Breaking:
		s += " (breaking)"
	}
	return s
}

// Describe renders changes as a human diff, one line each, such as
// "+ table posts (key id, 3 columns)", "+ column users.age integer null" or
// "- index users_name_idx on users (breaking)".
func Describe(changes []Change) string {
	lines := make([]string, len(changes))
	for i, c := range changes {
		lines[i] = c.String()
	}
	return strings.Join(lines, "\n")
}

// Diff lists the changes that turn schema from into schema to, ordered by
// table name; from (or to) may be nil for "no tables".
//
// Compatible: adding a table, a nullable or defaulted column or an index,
// and changing a default. Breaking: dropping a table, column or index,
// changing an index, adding a NOT NULL column without default, changing
// nullability, and adding, removing or changing a foreign key. Refused:
// changing a column's type or a table's sync key.
//
// "Compatible" is about the server's data: per the protocol's column-set
// parity (5.5) clients that do not know a new column reject rows carrying
// it, so app releases must still be rolled out before columns are added.
func Diff(from, to *Schema) []Change {
	fromTables, toTables := schemaTableMap(from), schemaTableMap(to)
	names := make([]string, 0, len(fromTables)+len(toTables))
	for n := range fromTables {
		names = append(names, n)
	}
	for n := range toTables {
		if _, ok := fromTables[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)

	var changes []Change
	for _, name := range names {
		ft, tt := fromTables[name], toTables[name]
		switch {
		case ft == nil:
			changes = append(changes, Change{Kind: ChangeAddTable, Table: name,
				Description: fmt.Sprintf("table %s (key %s, %d columns)", name, tt.Key.Name, len(tt.Columns))})
		case tt == nil:
			changes = append(changes, Change{Kind: ChangeDropTable, Table: name, Breaking: true,
				Description: "table " + name})
		default:
			changes = append(changes, schemaDiffTable(ft, tt)...)
		}
	}
	return changes
}

func schemaTableMap(s *Schema) map[string]*Table {
	if s == nil {
		return nil
	}
	return s.byName
}

func schemaDiffTable(ft, tt *Table) []Change {
	var changes []Change
	name := tt.Name
	if ft.Key.Name != tt.Key.Name {
		changes = append(changes, Change{Kind: ChangeSyncKey, Table: name, Column: tt.Key.Name, Breaking: true, Refused: true,
			Description: fmt.Sprintf("table %s sync key %s → %s", name, ft.Key.Name, tt.Key.Name)})
	}

	for _, tc := range tt.Columns {
		fc, ok := ft.byName[tc.Name]
		qual := name + "." + tc.Name
		if !ok {
			changes = append(changes, Change{Kind: ChangeAddColumn, Table: name, Column: tc.Name,
				Breaking:    !tc.Nullable && tc.Default == nil,
				Description: "column " + qual + " " + schemaDescribeColumn(tc)})
			continue
		}
		if fc.Type != tc.Type {
			changes = append(changes, Change{Kind: ChangeColumnType, Table: name, Column: tc.Name, Breaking: true, Refused: true,
				Description: fmt.Sprintf("column %s type %s → %s", qual, fc.Type, tc.Type)})
		}
		if fc.Nullable != tc.Nullable {
			changes = append(changes, Change{Kind: ChangeColumnNullable, Table: name, Column: tc.Name, Breaking: true,
				Description: fmt.Sprintf("column %s %s → %s", qual, schemaNullWord(fc.Nullable), schemaNullWord(tc.Nullable))})
		}
		if !bytes.Equal(fc.Default, tc.Default) {
			changes = append(changes, Change{Kind: ChangeColumnDefault, Table: name, Column: tc.Name,
				Description: fmt.Sprintf("column %s default %s → %s", qual, schemaDescribeDefault(fc.Default), schemaDescribeDefault(tc.Default))})
		}
	}
	for _, fc := range ft.Columns {
		if _, ok := tt.byName[fc.Name]; !ok {
			changes = append(changes, Change{Kind: ChangeDropColumn, Table: name, Column: fc.Name, Breaking: true,
				Description: "column " + name + "." + fc.Name})
		}
	}

	for _, tfk := range tt.ForeignKeys {
		ffk, ok := schemaFindFK(ft, tfk.Column)
		switch {
		case !ok:
			changes = append(changes, Change{Kind: ChangeAddForeignKey, Table: name, Column: tfk.Column, Breaking: true,
				Description: schemaDescribeFK(name, tfk)})
		case ffk != tfk:
			changes = append(changes, Change{Kind: ChangeAlterForeignKey, Table: name, Column: tfk.Column, Breaking: true,
				Description: schemaDescribeFK(name, ffk) + " → " + schemaDescribeFKTarget(tfk)})
		}
	}
	for _, ffk := range ft.ForeignKeys {
		if _, ok := schemaFindFK(tt, ffk.Column); !ok {
			changes = append(changes, Change{Kind: ChangeDropForeignKey, Table: name, Column: ffk.Column, Breaking: true,
				Description: schemaDescribeFK(name, ffk)})
		}
	}

	for _, tix := range tt.Indexes {
		fix, ok := schemaFindIndex(ft, tix.Name)
		switch {
		case !ok:
			changes = append(changes, Change{Kind: ChangeAddIndex, Table: name, Index: tix.Name,
				Description: schemaDescribeIndex(name, tix)})
		case fix.Unique != tix.Unique || !slices.Equal(fix.Columns, tix.Columns):
			changes = append(changes, Change{Kind: ChangeAlterIndex, Table: name, Index: tix.Name, Breaking: true,
				Description: schemaDescribeIndex(name, fix) + " → " + schemaDescribeIndexColumns(tix)})
		}
	}
	for _, fix := range ft.Indexes {
		if _, ok := schemaFindIndex(tt, fix.Name); !ok {
			changes = append(changes, Change{Kind: ChangeDropIndex, Table: name, Index: fix.Name, Breaking: true,
				Description: "index " + fix.Name + " on " + name})
		}
	}
	return changes
}

func schemaFindFK(t *Table, column string) (ForeignKey, bool) {
	for _, fk := range t.ForeignKeys {
		if fk.Column == column {
			return fk, true
		}
	}
	return ForeignKey{}, false
}

func schemaFindIndex(t *Table, name string) (Index, bool) {
	for _, ix := range t.Indexes {
		if ix.Name == name {
			return ix, true
		}
	}
	return Index{}, false
}

func schemaNullWord(nullable bool) string {
	if nullable {
		return "null"
	}
	return "not null"
}

func schemaDescribeColumn(c *Column) string {
	s := string(c.Type) + " " + schemaNullWord(c.Nullable)
	if c.Default != nil {
		s += " default " + string(c.Default)
	}
	return s
}

func schemaDescribeDefault(d []byte) string {
	if d == nil {
		return "none"
	}
	return string(d)
}

func schemaDescribeFK(table string, fk ForeignKey) string {
	return "foreign key " + table + "." + fk.Column + " " + schemaDescribeFKTarget(fk)
}

func schemaDescribeFKTarget(fk ForeignKey) string {
	return fmt.Sprintf("references %s on delete %s on update %s", fk.References, fk.OnDelete, fk.OnUpdate)
}

func schemaDescribeIndex(table string, ix Index) string {
	return "index " + ix.Name + " on " + table + " " + schemaDescribeIndexColumns(ix)
}

func schemaDescribeIndexColumns(ix Index) string {
	s := "(" + strings.Join(ix.Columns, ", ") + ")"
	if ix.Unique {
		s = "unique " + s
	}
	return s
}

// SchemaChangeError is MigrationDDL's refusal: Refused lists changes that are
// never applied; otherwise Breaking lists the breaking changes that were not
// allowed. Its message is safe to show to the tenant.
type SchemaChangeError struct {
	Refused  []Change
	Breaking []Change
}

// Error names every refused or unallowed breaking change.
func (e *SchemaChangeError) Error() string {
	list := func(cs []Change) string {
		parts := make([]string, len(cs))
		for i, c := range cs {
			parts[i] = c.Description
		}
		return strings.Join(parts, "; ")
	}
	if len(e.Refused) > 0 {
		return "table definition change refused: " + list(e.Refused) +
			": a column's type and a table's sync key cannot change; add a new table instead"
	}
	return "table definition change is breaking (old clients cannot follow it); allow breaking changes to apply it: " +
		list(e.Breaking)
}

// MigrationDDL returns the statements that migrate pgSchema from schema from
// (nil: no tables yet) to schema to. It returns a *SchemaChangeError when a
// change is refused, or breaking and allowBreaking is false. The statements
// must run in order in one transaction: drops first (foreign keys, indexes,
// tables, columns), then column changes, new tables, new columns, foreign
// keys, indexes and the new tables' capture triggers. Steps that depend on
// data (SET NOT NULL, a new NOT NULL column without default, a foreign key
// or unique index over existing rows) fail in PostgreSQL when the data does
// not fit, rolling the whole migration back.
func MigrationDDL(pgSchema string, from, to *Schema, allowBreaking bool) ([]string, error) {
	changes := Diff(from, to)
	var refused, breaking []Change
	for _, c := range changes {
		if c.Refused {
			refused = append(refused, c)
		} else if c.Breaking {
			breaking = append(breaking, c)
		}
	}
	if len(refused) > 0 {
		return nil, &SchemaChangeError{Refused: refused, Breaking: breaking}
	}
	if len(breaking) > 0 && !allowBreaking {
		return nil, &SchemaChangeError{Breaking: breaking}
	}

	const (
		phaseDropFK = iota
		phaseDropIndex
		phaseDropTable
		phaseDropColumn
		phaseAlterColumn
		phaseCreateTable
		phaseAddColumn
		phaseAddFK
		phaseCreateIndex
		phaseTriggers
		phaseCount
	)
	var phases [phaseCount][]string
	emit := func(p int, stmts ...string) { phases[p] = append(phases[p], stmts...) }
	var dropTables []string
	fromTables, toTables := schemaTableMap(from), schemaTableMap(to)

	for _, c := range changes {
		ft, tt := fromTables[c.Table], toTables[c.Table]
		switch c.Kind {
		case ChangeAddTable:
			emit(phaseCreateTable, schemaCreateTableSQL(pgSchema, tt))
			for _, fk := range tt.ForeignKeys {
				emit(phaseAddFK, schemaAddFKSQL(pgSchema, tt, fk)...)
			}
			for _, ix := range tt.Indexes {
				emit(phaseCreateIndex, schemaCreateIndexSQL(pgSchema, tt, ix))
			}
			emit(phaseTriggers, CaptureTriggerDDL(pgSchema, tt)...)
		case ChangeDropTable:
			dropTables = append(dropTables, pgx.Identifier{pgSchema, c.Table}.Sanitize())
		case ChangeAddColumn:
			col, _ := tt.Column(c.Column)
			emit(phaseAddColumn, schemaAlterTable(pgSchema, c.Table)+" ADD COLUMN "+schemaColumnSQL(col))
		case ChangeDropColumn:
			emit(phaseDropColumn, schemaAlterTable(pgSchema, c.Table)+" DROP COLUMN "+pgx.Identifier{c.Column}.Sanitize())
		case ChangeColumnNullable:
			col, _ := tt.Column(c.Column)
			action := " SET NOT NULL"
			if col.Nullable {
				action = " DROP NOT NULL"
			}
			emit(phaseAlterColumn, schemaAlterColumn(pgSchema, c.Table, c.Column)+action)
		case ChangeColumnDefault:
			col, _ := tt.Column(c.Column)
			action := " DROP DEFAULT"
			if col.Default != nil {
				action = " SET DEFAULT " + schemaDefaultSQL(col)
			}
			emit(phaseAlterColumn, schemaAlterColumn(pgSchema, c.Table, c.Column)+action)
		case ChangeAddForeignKey:
			fk, _ := schemaFindFK(tt, c.Column)
			emit(phaseAddFK, schemaAddFKSQL(pgSchema, tt, fk)...)
		case ChangeDropForeignKey:
			fk, _ := schemaFindFK(ft, c.Column)
			emit(phaseDropFK, schemaDropFKSQL(pgSchema, ft, fk)...)
		case ChangeAlterForeignKey:
			// Same column, so the same supporting index: swap the constraint only.
			oldFK, _ := schemaFindFK(ft, c.Column)
			newFK, _ := schemaFindFK(tt, c.Column)
			emit(phaseDropFK, schemaDropFKSQL(pgSchema, ft, oldFK)[0])
			emit(phaseAddFK, schemaAddFKSQL(pgSchema, tt, newFK)[0])
		case ChangeAddIndex:
			ix, _ := schemaFindIndex(tt, c.Index)
			emit(phaseCreateIndex, schemaCreateIndexSQL(pgSchema, tt, ix))
		case ChangeDropIndex:
			emit(phaseDropIndex, schemaDropIndexSQL(pgSchema, c.Index))
		case ChangeAlterIndex:
			ix, _ := schemaFindIndex(tt, c.Index)
			emit(phaseDropIndex, schemaDropIndexSQL(pgSchema, c.Index))
			emit(phaseCreateIndex, schemaCreateIndexSQL(pgSchema, tt, ix))
		}
	}
	if len(dropTables) > 0 {
		// One statement, so foreign keys among the dropped tables need no order.
		emit(phaseDropTable, "DROP TABLE "+strings.Join(dropTables, ", "))
	}
	var stmts []string
	for _, p := range phases {
		stmts = append(stmts, p...)
	}
	return stmts, nil
}

func schemaAlterTable(pgSchema, table string) string {
	return "ALTER TABLE " + pgx.Identifier{pgSchema, table}.Sanitize()
}

func schemaAlterColumn(pgSchema, table, column string) string {
	return schemaAlterTable(pgSchema, table) + " ALTER COLUMN " + pgx.Identifier{column}.Sanitize()
}
