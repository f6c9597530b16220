// Package static embeds the console's assets: its stylesheet, its small
// script and htmx 2.0.11 (vendored from the npm package htmx.org, BSD
// 0-Clause licence).
package static

import "embed"

// FS holds the assets, served under /console/static/.
//
//go:embed *.css *.js
var FS embed.FS
