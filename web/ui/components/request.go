// Package components holds the console's shared templ components (forms,
// tables, flash messages, empty states) and the per-request values they read.
package components

import "context"

// Request carries the cross-cutting values of one console request: the CSRF
// token for forms and the signed-in person.
type Request struct {
	CSRFField string // form field name of the CSRF token
	CSRFToken string
	Email     string // signed-in account; empty when signed out
	Operator  bool
}

type requestKey struct{}

// WithRequest returns ctx carrying r.
func WithRequest(ctx context.Context, r Request) context.Context {
	return context.WithValue(ctx, requestKey{}, r)
}

// RequestFrom returns the request values stored in ctx.
func RequestFrom(ctx context.Context) Request {
	r, _ := ctx.Value(requestKey{}).(Request)
	return r
}

// Flash is a one-time message shown at the top of the next page.
type Flash struct {
	Kind    string // "ok" or "error"
	Message string
}

// FieldErrors maps a form field name to the message shown next to it.
type FieldErrors map[string]string

// Invalid reports whether field has an error, for the input's class.
func (f FieldErrors) Invalid(field string) string {
	if f[field] != "" {
		return "invalid"
	}
	return ""
}
