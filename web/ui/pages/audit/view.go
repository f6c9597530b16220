// Package audit holds the audit log page.
package audit

import (
	"time"

	"github.com/syncplane/syncplane/web/ui/layout"
)

// View is the audit log page.
type View struct {
	Page    layout.Page
	Entries []Entry
	Action  string // filter: action prefix, e.g. "key."
	Actor   string // filter: actor substring
	Actions []string
}

// Entry is one audit record.
type Entry struct {
	At         time.Time
	Actor      string
	Action     string
	Target     string
	Detail     string
	RemoteAddr string
}
