// Package account holds the sign-in, sign-up, invitation and account
// settings pages.
package account

import (
	"net/url"
	"time"

	"github.com/syncplane/syncplane/web/ui/components"
)

// LoginView is the login form.
type LoginView struct {
	Email      string
	Error      string
	SignupOpen bool
	Flashes    []components.Flash
	// Next is where to go after logging in (a console path).
	Next string
}

// LoginAction is the login form's target, carrying Next.
func (v LoginView) LoginAction() string {
	if v.Next == "" {
		return "/console/login"
	}
	return "/console/login?next=" + url.QueryEscape(v.Next)
}

// SignupView is the sign-up form, also used to accept an invitation.
type SignupView struct {
	Email       string
	EmailLocked bool   // the invitation fixes the email
	Invite      string // invitation token; empty for open sign-up
	Action      string
	Errors      components.FieldErrors
}

// InviteView offers a signed-in person to accept an invitation.
type InviteView struct {
	Token      string
	Email      string
	TenantName string
	Role       string
}

// SettingsView is the account page: password change and access tokens.
type SettingsView struct {
	Email    string
	Errors   components.FieldErrors
	Tokens   []Token
	NewToken string // shown once, right after creation
	Flashes  []components.Flash
	// InviteLink is a sign-up invitation an operator just created.
	InviteLink string
}

// Token is a personal access token row.
type Token struct {
	ID       int64
	Label    string
	Display  string
	Created  time.Time
	LastUsed *time.Time
	Revoked  bool
}
