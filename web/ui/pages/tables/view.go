// Package tables holds the table definition page: the current version, an
// editor for the next one, its diff and the version history.
package tables

import (
	"time"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/web/ui/layout"
)

// View is the tables page.
type View struct {
	Page     layout.Page
	Current  *tenant.TableVersion // nil when no version exists
	Draft    string               // the editor's text
	Problems []tenant.FieldProblem
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
