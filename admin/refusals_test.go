package admin_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestConsoleRefusals: every tenant route refuses the signed-out (login
// redirect), strangers (404, as if the tenant did not exist) and members
// whose role lacks the action (403).
func TestConsoleRefusals(t *testing.T) {
	h := newHarness(t)
	owner := h.signup()
	slug := owner.newTenant("refuse")
	base := "/console/t/" + slug
	viewer := h.signup()
	require.NoError(t, h.console.Accounts().AddMember(context.Background(), mustTenantID(t, h, slug),
		mustAccountID(t, h, viewer.Email), "viewer", testActor))
	stranger := h.signup()
	anon := h.client()
	anon.get("/console/login")
	ownerID := itoa64(mustAccountID(t, h, owner.Email))

	type route struct {
		method, path string
		form         url.Values
		viewerOK     bool
	}
	routes := []route{
		{"GET", "", nil, true},
		{"GET", "/settings", nil, true},
		{"GET", "/keys", nil, true},
		{"GET", "/auth", nil, true},
		{"GET", "/tables", nil, true},
		{"GET", "/members", nil, true},
		{"GET", "/audit", nil, true},
		{"GET", "/devices", nil, true},
		{"GET", "/data", nil, true},
		{"POST", "/suspend", nil, false},
		{"POST", "/resume", nil, false},
		{"POST", "/delete", url.Values{"confirm": {slug}}, false},
		{"POST", "/keys", url.Values{"kind": {"secret"}}, false},
		{"POST", "/keys/1/revoke", nil, false},
		{"POST", "/auth", url.Values{"mode": {"hs256"}, "hs256_secrets": {hsSecret}}, false},
		{"POST", "/auth/mint", url.Values{"sub": {"u"}}, false},
		{"POST", "/tables", url.Values{"definition": {"{}"}, "op": {"apply"}}, false},
		{"POST", "/members/invite", url.Values{"email": {"a@example.com"}, "role": {"viewer"}}, false},
		{"POST", "/members/" + ownerID + "/role", url.Values{"role": {"viewer"}}, false},
		{"POST", "/members/" + ownerID + "/remove", nil, false},
		{"POST", "/devices/retire", url.Values{"user": {"u"}, "source": {"s"}}, false},
		{"POST", "/devices/revoke", url.Values{"user": {"u"}, "source": {"s"}}, false},
		{"POST", "/invitations/1/cancel", nil, false},
	}
	for _, r := range routes {
		do := func(c *client) *page {
			if r.method == "GET" {
				return c.get(base + r.path)
			}
			form := url.Values{}
			for k, v := range r.form {
				form[k] = v
			}
			return c.post(base+r.path, form)
		}
		t.Run(r.method+r.path, func(t *testing.T) {
			p := do(anon)
			require.Equal(t, http.StatusSeeOther, p.Status)
			require.True(t, strings.HasPrefix(p.Location, "/console/login"), p.Location)
			require.Equal(t, http.StatusNotFound, do(stranger).Status)
			p = do(viewer)
			if r.viewerOK {
				require.Equal(t, http.StatusOK, p.Status)
			} else {
				require.Equal(t, http.StatusForbidden, p.Status)
				require.Equal(t, "Not allowed", p.text("error-title"))
			}
		})
	}
	// Nothing changed.
	p := owner.get(base + "/settings")
	require.Equal(t, "active", p.text("tenant-state"))
	require.Empty(t, keyIDs(t, h, slug))

	// Personal access tokens belong to their account only.
	owner.get("/console/account")
	owner.post("/console/account/tokens", url.Values{"label": {"mine"}})
	toks, err := h.console.Accounts().AccessTokens(context.Background(), mustAccountID(t, h, owner.Email))
	require.NoError(t, err)
	require.Len(t, toks, 1)
	stranger.get("/console/account")
	require.Equal(t, http.StatusNotFound, stranger.post("/console/account/tokens/"+itoa64(toks[0].ID)+"/revoke", nil).Status)
	require.Equal(t, http.StatusSeeOther, owner.post("/console/account/tokens/"+itoa64(toks[0].ID)+"/revoke", nil).Status)
	p = owner.get("/console/account")
	require.Contains(t, p.testid("tokens").Text(), "revoked")
}

func TestAuditPaging(t *testing.T) {
	h := newHarness(t)
	owner := h.signup()
	slug := owner.newTenant("auditpg")
	_, err := h.store.DB().Exec(context.Background(), `INSERT INTO syncplane.audit_log (tenant_id, actor, action, target)
		SELECT $1, 'test', 'key.create', 'k' || g FROM generate_series(1, 120) g`, mustTenantID(t, h, slug))
	require.NoError(t, err)
	p := owner.get("/console/t/" + slug + "/audit?action=key.create")
	require.Equal(t, 100, p.testid("audit-row").Length())
	older, ok := p.testid("audit-older").Attr("href")
	require.True(t, ok)
	require.Contains(t, older, "action=key.create")
	p = owner.get(older)
	require.Equal(t, 20, p.testid("audit-row").Length())
	require.Equal(t, 0, p.testid("audit-older").Length())
}
