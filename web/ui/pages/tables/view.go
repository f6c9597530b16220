// Package tables holds the table definition page: the current version, an
// editor for the next one, its diff and the version history.
package tables

import (
	"fmt"
	"regexp"
	"time"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/web/ui/layout"
)

// View is the tables page.
type View struct {
	Page     layout.Page
	Current  *tenant.TableVersion  // nil when no version exists
	Draft    string                // the editor's text
	Problems []tenant.FieldProblem // problems not placed in Fields
	// Fields is the draft's tables and columns with the problems found on
	// each, shown next to them; empty when the draft could not be read.
	Fields   []Field
	Error    string // a non-field error (e.g. refused change)
	Plan     *Plan  // set after "preview"
	History  []Version
	CanWrite bool
	Breaking bool // the "allow breaking changes" box
}

// Plan is the preview of applying the draft.
type Plan struct {
	Changes  []tenant.Change
	DDL      []string
	Breaking bool
	Refused  bool
}

// Version is one row of the history.
type Version struct {
	Version   int
	Tables    int
	Breaking  bool
	AppliedBy string
	AppliedAt time.Time
}

// ChangeClass is the CSS class of a change line.
func ChangeClass(c tenant.Change) string {
	switch c.Kind {
	case tenant.ChangeAddTable, tenant.ChangeAddColumn, tenant.ChangeAddIndex, tenant.ChangeAddForeignKey:
		return "add"
	case tenant.ChangeDropTable, tenant.ChangeDropColumn, tenant.ChangeDropIndex, tenant.ChangeDropForeignKey:
		return "drop"
	}
	return "change"
}

// Field is a table or a column of the draft and its problems.
type Field struct {
	Path     string // e.g. "tables[0].columns[1]"
	Label    string // e.g. "notes.body (text)"
	Column   bool
	Problems []tenant.FieldProblem
}

var fieldPath = regexp.MustCompile(`^tables\[(\d+)\](?:\.columns\[(\d+)\])?`)

// PlaceProblems lays the draft out as fields and puts each problem next to
// the table or column its path names; the others are returned.
func PlaceProblems(def tenant.Definition, problems []tenant.FieldProblem) ([]Field, []tenant.FieldProblem) {
	var fields []Field
	index := map[string]int{}
	for i, t := range def.Tables {
		p := fmt.Sprintf("tables[%d]", i)
		index[p] = len(fields)
		fields = append(fields, Field{Path: p, Label: "table " + t.Name + " (key " + t.SyncKey + ")"})
		for j, c := range t.Columns {
			cp := fmt.Sprintf("%s.columns[%d]", p, j)
			index[cp] = len(fields)
			label := t.Name + "." + c.Name + " " + string(c.Type)
			if c.Nullable {
				label += " null"
			}
			fields = append(fields, Field{Path: cp, Label: label, Column: true})
		}
	}
	var rest []tenant.FieldProblem
	for _, pr := range problems {
		m := fieldPath.FindString(pr.Path)
		if i, ok := index[m]; ok && m != "" {
			fields[i].Problems = append(fields[i].Problems, pr)
			continue
		}
		rest = append(rest, pr)
	}
	return fields, rest
}

func hasProblems(fs []Field) bool {
	for _, f := range fs {
		if len(f.Problems) > 0 {
			return true
		}
	}
	return false
}
