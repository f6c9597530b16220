// Package data holds the data inspector: one user's rows per table and the
// timeline of their bundles.
package data

import (
	"time"

	"github.com/syncplane/syncplane/web/ui/layout"
)

// View is the data inspector page.
type View struct {
	Page    layout.Page
	Search  string
	Users   []string // users to pick from
	User    string   // the picked user; empty shows the picker only
	Tables  []Table
	Table   string // the table shown
	Rows    []string
	Offset  int
	More    bool
	Bundles []Bundle
	Before  int64 // pages the timeline
	Older   int64 // next page's "before"; 0 when none
}

// Table is a table tab.
type Table struct {
	Name string
}

// Bundle is one bundle of the timeline.
type Bundle struct {
	Seq            int64
	SourceID       string
	SourceBundleID int64
	RowCount       int
	CommittedAt    time.Time
	Rows           []BundleRow
}

// BundleRow is one row change of a bundle.
type BundleRow struct {
	Table   string
	Key     string
	Op      string
	Payload string
}
