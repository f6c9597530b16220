package admin

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/web/ui/components"
	"github.com/syncplane/syncplane/web/ui/pages/account"
)

func (c *Console) mountPages(g *gin.RouterGroup) {
	g.GET("", func(gc *gin.Context) { gc.Redirect(http.StatusSeeOther, "/console/tenants") })
	g.GET("/login", c.page(c.loginPage))
	g.POST("/login", c.page(c.login))
	g.GET("/signup", c.page(c.signupPage))
	g.POST("/signup", c.page(c.signup))
	g.POST("/logout", c.page(c.logout))
	g.GET("/invite/:token", c.page(c.invitePage))
	g.POST("/invite/:token", c.requireUser, c.page(c.acceptInvite))
	g.POST("/invite/:token/signup", c.page(c.inviteSignup))

	u := g.Group("", c.requireUser)
	u.GET("/account", c.page(c.accountPage))
	u.POST("/account/password", c.page(c.changePassword))
	u.POST("/account/tokens", c.page(c.createToken))
	u.POST("/account/tokens/:id/revoke", c.page(c.revokeToken))
	u.POST("/account/invitations", c.page(c.createSignupInvite))
	c.mountTenantPages(u)
}

func (c *Console) signupAllowed(ctx context.Context) (bool, error) {
	if c.opts.Signup == SignupOpen {
		return true, nil
	}
	n, err := c.accountCount(ctx)
	return n == 0, err
}

func (c *Console) accountCount(ctx context.Context) (int, error) {
	var n int
	err := c.opts.Pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM syncplane.accounts LIMIT 1) s`).Scan(&n)
	return n, err
}

func (c *Console) loginPage(gc *gin.Context) error {
	if principalFrom(gc) != nil {
		return c.redirect(gc, safeNext(gc.Query("next")))
	}
	open, err := c.signupAllowed(gc.Request.Context())
	if err != nil {
		return err
	}
	return c.render(gc, http.StatusOK, account.Login(account.LoginView{SignupOpen: open, Flashes: c.popFlashes(gc),
		Next: nextParam(gc)}))
}

func (c *Console) login(gc *gin.Context) error {
	ctx := gc.Request.Context()
	email, password := gc.PostForm("email"), gc.PostForm("password")
	open, err := c.signupAllowed(ctx)
	if err != nil {
		return err
	}
	v := account.LoginView{Email: email, SignupOpen: open, Next: nextParam(gc)}
	if !c.limiter.allow(c.now(), "ip:"+gc.ClientIP(), "email:"+normalizeForLimit(email)) {
		v.Error = "Too many login attempts. Wait a minute and try again."
		return c.render(gc, http.StatusTooManyRequests, account.Login(v))
	}
	a, err := c.accounts.Authenticate(ctx, email, password)
	if errors.Is(err, ErrBadCredentials) {
		v.Error = "Wrong email or password."
		return c.render(gc, http.StatusUnauthorized, account.Login(v))
	}
	if err != nil {
		return err
	}
	if err := c.startSession(ctx, a); err != nil {
		return err
	}
	return c.redirect(gc, safeNext(gc.Query("next")))
}

// startSession signs a in with a fresh session token (no fixation).
func (c *Console) startSession(ctx context.Context, a *Account) error {
	if err := c.sessions.RenewToken(ctx); err != nil {
		return err
	}
	c.sessions.Put(ctx, sessionAccountKey, a.ID)
	c.sessions.Put(ctx, sessionPasswordKey, a.PasswordChangedAt.UnixNano())
	return nil
}

func (c *Console) logout(gc *gin.Context) error {
	if err := c.sessions.Destroy(gc.Request.Context()); err != nil {
		return err
	}
	return c.redirect(gc, "/console/login")
}

func (c *Console) signupPage(gc *gin.Context) error {
	open, err := c.signupAllowed(gc.Request.Context())
	if err != nil {
		return err
	}
	if !open {
		return c.render(gc, http.StatusOK, account.SignupClosed())
	}
	return c.render(gc, http.StatusOK, account.Signup(account.SignupView{Action: "/console/signup"}))
}

func (c *Console) signup(gc *gin.Context) error {
	ctx := gc.Request.Context()
	open, err := c.signupAllowed(ctx)
	if err != nil {
		return err
	}
	if !open {
		return c.render(gc, http.StatusForbidden, account.SignupClosed())
	}
	first, err := c.accountCount(ctx)
	if err != nil {
		return err
	}
	if !c.limiter.allow(c.now(), "signup:"+gc.ClientIP()) {
		return &pageError{http.StatusTooManyRequests, "Slow down", "Too many sign-ups from your address. Wait a minute."}
	}
	v := account.SignupView{Email: gc.PostForm("email"), Action: "/console/signup"}
	a, err := c.accounts.CreateAccount(ctx, v.Email, gc.PostForm("password"))
	if err != nil {
		if v.Errors = formErrors(err); v.Errors == nil {
			return err
		}
		return c.render(gc, http.StatusUnprocessableEntity, account.Signup(v))
	}
	if first == 0 {
		// The first account bootstraps the platform: it becomes an operator.
		if err := c.accounts.SetOperator(ctx, a.ID, true); err != nil {
			return err
		}
	}
	if err := c.startSession(ctx, a); err != nil {
		return err
	}
	c.flash(gc, "ok", "Welcome to Syncplane! Create a tenant for your app to begin.")
	return c.redirect(gc, "/console/tenants")
}

// formErrors maps validation errors to form fields; nil when err is not a
// validation error.
func formErrors(err error) components.FieldErrors {
	var ve *tenant.ValidationError
	switch {
	case errors.As(err, &ve):
		f := ve.Field
		if f == "" {
			f = "form"
		}
		return components.FieldErrors{f: ve.Message}
	case errors.Is(err, ErrEmailTaken):
		return components.FieldErrors{"email": "an account with this email exists; log in instead"}
	case errors.Is(err, tenant.ErrTenantExists):
		return components.FieldErrors{"slug": "this slug is taken; choose another"}
	case errors.Is(err, ErrLastOwner):
		return components.FieldErrors{"member": "a tenant keeps at least one owner: make someone else owner first"}
	}
	return nil
}

func (c *Console) invitePage(gc *gin.Context) error {
	ctx := gc.Request.Context()
	tok := gc.Param("token")
	inv, err := c.accounts.Invitation(ctx, tok)
	if errors.Is(err, ErrInvitationInvalid) {
		return c.render(gc, http.StatusNotFound, account.InviteInvalid())
	}
	if err != nil {
		return err
	}
	if p := principalFrom(gc); p != nil {
		if inv.TenantID == 0 {
			return c.redirect(gc, "/console/tenants")
		}
		t, err := c.store.TenantByID(ctx, inv.TenantID)
		if err != nil {
			return err
		}
		return c.render(gc, http.StatusOK, account.Invite(account.InviteView{Token: tok, Email: inv.Email,
			TenantName: t.Name, Role: string(inv.Role)}))
	}
	if _, err := c.accounts.AccountByEmail(ctx, inv.Email); err == nil {
		c.flash(gc, "ok", "Log in as "+inv.Email+" to accept the invitation.")
		return c.redirect(gc, "/console/login?next="+urlQueryEscape("/console/invite/"+tok))
	} else if !errors.Is(err, tenant.ErrNotFound) {
		return err
	}
	return c.render(gc, http.StatusOK, account.Signup(account.SignupView{Email: inv.Email, EmailLocked: true,
		Invite: tok, Action: "/console/invite/" + tok + "/signup"}))
}

func (c *Console) acceptInvite(gc *gin.Context) error {
	ctx := gc.Request.Context()
	p := principalFrom(gc)
	inv, err := c.accounts.Invitation(ctx, gc.Param("token"))
	if errors.Is(err, ErrInvitationInvalid) {
		return c.render(gc, http.StatusNotFound, account.InviteInvalid())
	}
	if err != nil {
		return err
	}
	if !equalFoldEmail(inv.Email, p.Account.Email) {
		return &pageError{http.StatusForbidden, "Wrong account", "This invitation is for " + inv.Email + ". Log in with that account to accept it."}
	}
	inv, err = c.accounts.AcceptInvitation(ctx, gc.Param("token"), p.Account.ID, c.actor(gc))
	if errors.Is(err, ErrInvitationInvalid) {
		return c.render(gc, http.StatusNotFound, account.InviteInvalid())
	}
	if err != nil {
		return err
	}
	if inv.TenantID == 0 {
		return c.redirect(gc, "/console/tenants")
	}
	t, err := c.store.TenantByID(ctx, inv.TenantID)
	if err != nil {
		return err
	}
	c.flash(gc, "ok", "You joined "+t.Name+" as "+string(inv.Role)+".")
	return c.redirect(gc, "/console/t/"+string(t.Slug))
}

func (c *Console) inviteSignup(gc *gin.Context) error {
	ctx := gc.Request.Context()
	tok := gc.Param("token")
	inv, err := c.accounts.Invitation(ctx, tok)
	if errors.Is(err, ErrInvitationInvalid) {
		return c.render(gc, http.StatusNotFound, account.InviteInvalid())
	}
	if err != nil {
		return err
	}
	v := account.SignupView{Email: inv.Email, EmailLocked: true, Invite: tok, Action: "/console/invite/" + tok + "/signup"}
	a, err := c.accounts.CreateAccount(ctx, inv.Email, gc.PostForm("password"))
	if err != nil {
		if v.Errors = formErrors(err); v.Errors == nil {
			return err
		}
		return c.render(gc, http.StatusUnprocessableEntity, account.Signup(v))
	}
	gc.Set(principalKey, &principal{Account: a})
	if _, err := c.accounts.AcceptInvitation(ctx, tok, a.ID, c.actor(gc)); err != nil && !errors.Is(err, ErrInvitationInvalid) {
		return err
	}
	if err := c.startSession(ctx, a); err != nil {
		return err
	}
	c.flash(gc, "ok", "Welcome to Syncplane!")
	return c.redirect(gc, "/console/tenants")
}

func (c *Console) accountView(gc *gin.Context) (account.SettingsView, error) {
	p := principalFrom(gc)
	toks, err := c.accounts.AccessTokens(gc.Request.Context(), p.Account.ID)
	if err != nil {
		return account.SettingsView{}, err
	}
	v := account.SettingsView{Email: p.Account.Email, Flashes: c.popFlashes(gc)}
	for _, t := range toks {
		v.Tokens = append(v.Tokens, account.Token{ID: t.ID, Label: t.Label, Display: t.Display, Created: t.CreatedAt,
			LastUsed: t.LastUsedAt, Revoked: t.RevokedAt != nil})
	}
	return v, nil
}

func (c *Console) accountPage(gc *gin.Context) error {
	v, err := c.accountView(gc)
	if err != nil {
		return err
	}
	return c.render(gc, http.StatusOK, account.Settings(v))
}

func (c *Console) changePassword(gc *gin.Context) error {
	ctx := gc.Request.Context()
	p := principalFrom(gc)
	if !c.limiter.allow(c.now(), "pw:"+strconv.FormatInt(p.Account.ID, 10)) {
		return &pageError{http.StatusTooManyRequests, "Slow down", "Too many attempts. Wait a minute and try again."}
	}
	changed, err := c.accounts.ChangePassword(ctx, p.Account.ID, gc.PostForm("current_password"), gc.PostForm("new_password"))
	if err != nil {
		errs := formErrors(err)
		if errs == nil {
			return err
		}
		v, verr := c.accountView(gc)
		if verr != nil {
			return verr
		}
		v.Errors = errs
		return c.render(gc, http.StatusUnprocessableEntity, account.Settings(v))
	}
	if err := c.sessions.RenewToken(ctx); err != nil {
		return err
	}
	c.sessions.Put(ctx, sessionPasswordKey, changed.UnixNano())
	c.flash(gc, "ok", "Your password was changed; your other sessions are signed out.")
	return c.redirect(gc, "/console/account")
}

func (c *Console) createToken(gc *gin.Context) error {
	p := principalFrom(gc)
	tok, _, err := c.accounts.CreateAccessToken(gc.Request.Context(), p.Account.ID, gc.PostForm("label"))
	errs := formErrors(err)
	if err != nil && errs == nil {
		return err
	}
	v, verr := c.accountView(gc)
	if verr != nil {
		return verr
	}
	v.Errors, v.NewToken = errs, tok
	status := http.StatusOK
	if errs != nil {
		status = http.StatusUnprocessableEntity
	}
	return c.render(gc, status, account.Settings(v))
}

func (c *Console) revokeToken(gc *gin.Context) error {
	id, err := strconv.ParseInt(gc.Param("id"), 10, 64)
	if err != nil {
		return notFoundPage
	}
	if err := c.accounts.RevokeAccessToken(gc.Request.Context(), principalFrom(gc).Account.ID, id); err != nil {
		return err
	}
	c.flash(gc, "ok", "The token was revoked.")
	return c.redirect(gc, "/console/account")
}

// createSignupInvite lets a platform operator invite someone to sign up
// while open sign-up is closed.
func (c *Console) createSignupInvite(gc *gin.Context) error {
	p := principalFrom(gc)
	if !p.Account.Operator {
		return errForbidden
	}
	tok, _, err := c.accounts.CreateInvitation(gc.Request.Context(), gc.PostForm("email"), 0, "", p.Account.ID, c.actor(gc))
	errs := formErrors(err)
	if err != nil && errs == nil {
		return err
	}
	v, verr := c.accountView(gc)
	if verr != nil {
		return verr
	}
	if err != nil {
		v.Errors = errs
		return c.render(gc, http.StatusUnprocessableEntity, account.Settings(v))
	}
	v.InviteLink = c.opts.PublicURL + "/console/invite/" + tok
	return c.render(gc, http.StatusOK, account.Settings(v))
}

// nextParam is the request's post-login destination, if it is a console path.
func nextParam(gc *gin.Context) string {
	if n := gc.Query("next"); safeNext(n) == n {
		return n
	}
	return ""
}
