// Package audit holds the audit log page.
package audit

import (
	"net/url"
	"strconv"
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
	Older   int64 // "before" of the next page; 0 when there is none
}

// OlderURL links to the next page of older entries, keeping the filters.
func (v View) OlderURL() string {
	q := url.Values{"before": {strconv.FormatInt(v.Older, 10)}}
	if v.Action != "" {
		q.Set("action", v.Action)
	}
	if v.Actor != "" {
		q.Set("actor", v.Actor)
	}
	return "/console/t/" + v.Page.Tenant.Slug + "/audit?" + q.Encode()
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
