// Package keys holds the API keys page.
package keys

import (
	"time"

	"github.com/syncplane/syncplane/web/ui/components"
	"github.com/syncplane/syncplane/web/ui/layout"
)

// ListView is the API keys page.
type ListView struct {
	Page      layout.Page
	Keys      []Key
	CanWrite  bool
	NewSecret string // the key just created, shown once
	NewKind   string
	Errors    components.FieldErrors
}

// Key is one key row.
type Key struct {
	ID       int64
	Display  string
	Kind     string
	Label    string
	Created  time.Time
	LastUsed *time.Time
	Revoked  bool
}
