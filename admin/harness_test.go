package admin_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/admin"
	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/tenant/tenanttest"
	"github.com/syncplane/syncplane/web/server"
)

type harness struct {
	t       *testing.T
	store   *tenant.Store
	console *admin.Console
	srv     *httptest.Server
}

func newHarness(t *testing.T, mod ...func(*admin.Options)) *harness {
	t.Helper()
	return newHarnessWith(t, nil, mod...)
}

// newHarnessWith also lets mount add routes (e.g. the sync gateway) to the
// engine.
func newHarnessWith(t *testing.T, mount func(e *gin.Engine, store *tenant.Store), mod ...func(*admin.Options)) *harness {
	t.Helper()
	store := tenanttest.Store(t)
	opts := admin.Options{Store: store, Pool: store.DB(), Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		PublicURL: "http://console.test", Signup: admin.SignupOpen}
	for _, m := range mod {
		m(&opts)
	}
	c, err := admin.New(opts)
	require.NoError(t, err)
	// Some account always exists, so no test's sign-up is the bootstrap
	// operator.
	_, err = c.Accounts().CreateAccount(context.Background(), randomEmail("bootstrap"), "bootstrap-password")
	require.NoError(t, err)
	e := server.NewEngine(opts.Log)
	c.Mount(e)
	if mount != nil {
		mount(e, store)
	}
	h := &harness{t: t, store: store, console: c, srv: httptest.NewServer(e)}
	t.Cleanup(h.srv.Close)
	return h
}

func randomEmail(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:]) + "@example.com"
}

// client is one browser: a cookie jar, no automatic redirects, and the
// CSRF token of the last page it fetched.
type client struct {
	h     *harness
	hc    *http.Client
	token string
	Email string
}

func (h *harness) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{h: h, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

type page struct {
	Status   int
	Location string
	Doc      *goquery.Document
	Body     string
}

func (p *page) testid(id string) *goquery.Selection {
	return p.Doc.Find(`[data-testid="` + id + `"]`)
}

func (p *page) text(id string) string { return strings.TrimSpace(p.testid(id).Text()) }

func (c *client) do(req *http.Request) *page {
	c.h.t.Helper()
	resp, err := c.hc.Do(req)
	require.NoError(c.h.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(c.h.t, err)
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(string(b)))
	require.NoError(c.h.t, err)
	if tok, ok := doc.Find(`input[name="csrf_token"]`).First().Attr("value"); ok {
		c.token = tok
	}
	return &page{Status: resp.StatusCode, Location: resp.Header.Get("Location"), Doc: doc, Body: string(b)}
}

func (c *client) get(path string) *page {
	c.h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.h.srv.URL+path, nil)
	require.NoError(c.h.t, err)
	return c.do(req)
}

// post submits a form with the CSRF token of the last page fetched.
func (c *client) post(path string, form url.Values) *page {
	c.h.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf_token"]; !ok {
		if c.token == "" {
			c.get("/console/login")
		}
		form.Set("csrf_token", c.token)
	}
	return c.postRaw(path, form)
}

func (c *client) postRaw(path string, form url.Values) *page {
	c.h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.h.srv.URL+path, strings.NewReader(form.Encode()))
	require.NoError(c.h.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

// signup creates an account and leaves the client signed in.
func (h *harness) signup() *client {
	h.t.Helper()
	c := h.client()
	c.Email = randomEmail("user")
	c.get("/console/signup")
	p := c.post("/console/signup", url.Values{"email": {c.Email}, "password": {"correct horse battery"}})
	require.Equal(h.t, http.StatusSeeOther, p.Status, p.Body)
	require.Equal(h.t, "/console/tenants", p.Location)
	return c
}

// newTenant creates a tenant through the console and deletes it after the test.
func (c *client) newTenant(prefix string) string {
	c.h.t.Helper()
	slug := tenanttest.RandomSlug(prefix)
	c.get("/console/tenants/new")
	p := c.post("/console/tenants", url.Values{"slug": {slug}, "name": {"App " + slug}, "wire_schema": {"app"}})
	require.Equal(c.h.t, http.StatusSeeOther, p.Status, p.Body)
	require.Equal(c.h.t, "/console/t/"+slug, p.Location)
	c.h.t.Cleanup(func() { _ = c.h.store.DeleteTenant(context.Background(), slug, tenanttest.Actor) })
	return slug
}
