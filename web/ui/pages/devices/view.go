// Package devices holds the devices page: every source that has synced.
package devices

import (
	"time"

	"github.com/syncplane/syncplane/web/ui/layout"
)

// View is the devices page.
type View struct {
	Page     layout.Page
	User     string // search
	Devices  []Device
	CanWrite bool
}

// Device is one source of one user.
type Device struct {
	UserID        string
	SourceID      string
	State         string
	FirstSeen     time.Time
	LastSeen      time.Time
	BundlesPushed int64
	LastBundleID  int64
	ReplacedBy    string
	RetireReason  string
	LastError     string
	LastErrorAt   *time.Time
}
