package admin_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/admin"
	"github.com/syncplane/syncplane/tenant"
)

func TestSignupLoginLogout(t *testing.T) {
	h := newHarness(t)
	c := h.signup()

	p := c.get("/console/tenants")
	require.Equal(t, http.StatusOK, p.Status)
	require.Contains(t, p.text("flash-ok"), "Welcome")
	require.Equal(t, 1, p.testid("tenants-empty").Length())
	require.Equal(t, c.Email, p.text("nav-account"))

	p = c.post("/console/logout", nil)
	require.Equal(t, http.StatusSeeOther, p.Status)
	p = c.get("/console/tenants")
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.True(t, strings.HasPrefix(p.Location, "/console/login"), p.Location)

	c.get("/console/login")
	p = c.post("/console/login", url.Values{"email": {c.Email}, "password": {"wrong password!"}})
	require.Equal(t, http.StatusUnauthorized, p.Status)
	require.Contains(t, p.text("login-error"), "Wrong email or password")

	p = c.post("/console/login?next=/console/account", url.Values{"email": {strings.ToUpper(c.Email)}, "password": {"correct horse battery"}})
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.Equal(t, "/console/account", p.Location)

	// An open redirect is refused.
	c.post("/console/logout", nil)
	c.get("/console/login")
	p = c.post("/console/login?next=//evil.example", url.Values{"email": {c.Email}, "password": {"correct horse battery"}})
	require.Equal(t, "/console/tenants", p.Location)

	// Sign-up refusals are shown next to the field.
	d := h.client()
	d.get("/console/signup")
	p = d.post("/console/signup", url.Values{"email": {c.Email}, "password": {"correct horse battery"}})
	require.Equal(t, http.StatusUnprocessableEntity, p.Status)
	require.Contains(t, p.text("error-email"), "exists")
	p = d.post("/console/signup", url.Values{"email": {"not-an-email"}, "password": {"short"}})
	require.Equal(t, http.StatusUnprocessableEntity, p.Status)
	require.NotEmpty(t, p.text("error-email"))
}

func TestSessionCookieFlags(t *testing.T) {
	h := newHarness(t, func(o *admin.Options) { o.SecureCookies = true })
	c := h.client()
	req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/console/signup", nil)
	resp, err := c.hc.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	var csrfCookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "syncplane_csrf" {
			csrfCookie = ck
		}
	}
	require.NotNil(t, csrfCookie)
	require.True(t, csrfCookie.Secure)
	require.True(t, csrfCookie.HttpOnly)

	// Sign in directly through the handler to see the session cookie.
	email := randomEmail("flags")
	_, err = h.console.Accounts().CreateAccount(context.Background(), email, "correct horse battery")
	require.NoError(t, err)
	c.get("/console/login")
	form := url.Values{"email": {email}, "password": {"correct horse battery"}, "csrf_token": {c.token}}
	req, _ = http.NewRequest(http.MethodPost, h.srv.URL+"/console/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Referer", "https://"+req.Host+"/console/login")
	req.Header.Set("Origin", "https://"+strings.TrimPrefix(h.srv.URL, "http://"))
	// The test server is plain HTTP, so the Secure cookies are not sent back
	// by the jar: add the CSRF cookie by hand.
	req.AddCookie(csrfCookie)
	resp, err = c.hc.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	var sess *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "syncplane_session" {
			sess = ck
		}
	}
	require.NotNil(t, sess)
	require.True(t, sess.Secure)
	require.True(t, sess.HttpOnly)
	require.Equal(t, http.SameSiteLaxMode, sess.SameSite)
}

func TestCSRFRefused(t *testing.T) {
	h := newHarness(t)
	c := h.signup()
	c.get("/console/tenants/new")
	form := url.Values{"slug": {"csrf_never"}, "name": {"x"}, "wire_schema": {"app"}}
	p := c.postRaw("/console/tenants", form)
	require.Equal(t, http.StatusForbidden, p.Status)
	require.Contains(t, p.text("error-message"), "CSRF")

	form.Set("csrf_token", "bm90IGEgcmVhbCB0b2tlbg"+strings.Repeat("A", 60))
	p = c.postRaw("/console/tenants", form)
	require.Equal(t, http.StatusForbidden, p.Status)

	// A token from another browser does not work either.
	other := h.client()
	other.get("/console/login")
	form.Set("csrf_token", other.token)
	p = c.postRaw("/console/tenants", form)
	require.Equal(t, http.StatusForbidden, p.Status)

	_, err := h.store.Tenant(context.Background(), "csrf_never")
	require.ErrorIs(t, err, tenant.ErrNotFound)

	// Logging out needs the token too.
	p = c.postRaw("/console/logout", url.Values{})
	require.Equal(t, http.StatusForbidden, p.Status)
}

func TestLoginRateLimit(t *testing.T) {
	h := newHarness(t, func(o *admin.Options) { o.LoginLimit = 3 })
	c := h.client()
	c.get("/console/login")
	email := randomEmail("limited")
	for i := 0; i < 3; i++ {
		p := c.post("/console/login", url.Values{"email": {email}, "password": {"wrong password"}})
		require.Equal(t, http.StatusUnauthorized, p.Status)
	}
	p := c.post("/console/login", url.Values{"email": {email}, "password": {"wrong password"}})
	require.Equal(t, http.StatusTooManyRequests, p.Status)
	require.Contains(t, p.text("login-error"), "Too many")
}
