// Package members holds the tenant members page.
package members

import (
	"time"

	"github.com/syncplane/syncplane/web/ui/components"
	"github.com/syncplane/syncplane/web/ui/layout"
)

// View is the members page.
type View struct {
	Page       layout.Page
	Members    []Member
	Pending    []Pending
	Roles      []string
	CanWrite   bool
	InviteLink string // shown once after inviting
	Errors     components.FieldErrors
	Email      string
}

// Member is one member row.
type Member struct {
	AccountID int64
	Email     string
	Role      string
	Since     time.Time
	You       bool
}

// Pending is an unaccepted invitation.
type Pending struct {
	ID      int64
	Email   string
	Role    string
	Expires time.Time
}
