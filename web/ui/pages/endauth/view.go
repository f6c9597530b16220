// Package endauth holds the end-user auth page: how a tenant's users'
// tokens are verified, a token tester and an HS256 token minter.
package endauth

import (
	"time"

	"github.com/syncplane/syncplane/web/ui/components"
	"github.com/syncplane/syncplane/web/ui/layout"
)

// View is the end-user auth page.
type View struct {
	Page      layout.Page
	Mode      string // "" when not configured
	Secrets   string // hs256: one secret per line (shown to writers only)
	PEM       string // public_keys: PEM blocks
	JWKSURL   string
	Issuer    string
	Audience  string
	Leeway    string
	Updated   time.Time
	CanWrite  bool
	CanMint   bool
	Errors    components.FieldErrors
	TestToken string
	TestOK    bool
	TestMsg   string // result of "test a token"
	MintSub   string
	Minted    string // a freshly minted token
}
