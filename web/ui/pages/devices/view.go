// Package devices holds the devices page: every source that has synced.
package devices

import "github.com/syncplane/syncplane/web/ui/layout"

// View is the devices page.
type View struct {
	Page layout.Page
}
