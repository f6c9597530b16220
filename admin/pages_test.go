package admin_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/admin"
)

const hsSecret = "a-very-long-shared-secret-of-at-least-32-bytes"

func TestTenantPages(t *testing.T) {
	h := newHarness(t)
	c := h.signup()
	slug := c.newTenant("pages")
	base := "/console/t/" + slug

	p := c.get(base)
	require.Equal(t, http.StatusOK, p.Status)
	require.Contains(t, p.text("flash-ok"), "is ready")
	require.Equal(t, 1, p.testid("overview").Length())

	// Tenant list shows it with the owner role.
	p = c.get("/console/tenants?q=" + slug)
	require.Equal(t, 1, p.testid("tenant-"+slug).Length())
	require.Contains(t, p.testid("tenant-row").Text(), "owner")
	p = c.get("/console/tenants?q=zzzz_nothing")
	require.Equal(t, 1, p.testid("tenants-empty").Length())

	// Creating a tenant with a bad slug or a taken slug shows the error by the field.
	c.get("/console/tenants/new")
	p = c.post("/console/tenants", url.Values{"slug": {"Bad-Slug"}, "name": {"x"}, "wire_schema": {"app"}})
	require.Equal(t, http.StatusUnprocessableEntity, p.Status)
	require.Contains(t, p.text("error-slug"), "invalid")
	p = c.post("/console/tenants", url.Values{"slug": {slug}, "name": {"x"}, "wire_schema": {"app"}})
	require.Equal(t, http.StatusUnprocessableEntity, p.Status)
	require.Contains(t, p.text("error-slug"), "taken")

	// API keys: empty state, create (shown once), list, revoke.
	p = c.get(base + "/keys")
	require.Equal(t, 1, p.testid("keys-empty").Length())
	p = c.post(base+"/keys", url.Values{"kind": {"publishable"}, "label": {"iOS"}})
	require.Equal(t, http.StatusOK, p.Status)
	secret := p.text("new-key")
	require.True(t, strings.HasPrefix(secret, "sp_pk_"), secret)
	require.Equal(t, 1, p.testid("new-key-copy").Length())
	p = c.get(base + "/keys")
	require.NotContains(t, p.Body, secret, "a key is shown only once")
	require.Equal(t, 1, p.testid("key-row").Length())
	require.Contains(t, p.testid("key-row").Text(), secret[:10])
	p = c.post(base+"/keys", url.Values{"kind": {"nonsense"}})
	require.Equal(t, http.StatusUnprocessableEntity, p.Status)
	require.NotEmpty(t, p.text("error-kind"))

	keyID := keyIDs(t, h, slug)[0]
	p = c.post(base+"/keys/"+keyID+"/revoke", nil)
	require.Equal(t, http.StatusSeeOther, p.Status)
	p = c.get(base + "/keys")
	require.Contains(t, p.testid("key-row").Text(), "revoked")

	// End-user auth: a short secret is refused next to its field.
	p = c.get(base + "/auth")
	p = c.post(base+"/auth", url.Values{"mode": {"hs256"}, "hs256_secrets": {"short"}})
	require.Equal(t, http.StatusUnprocessableEntity, p.Status)
	require.Contains(t, p.text("error-hs256_secrets"), "at least 32 bytes")
	p = c.post(base+"/auth", url.Values{"mode": {"hs256"}, "hs256_secrets": {hsSecret}, "issuer": {"https://issuer.test"}})
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)

	// Mint, then test: accepted with the subject; garbage refused with a reason.
	c.get(base + "/auth")
	p = c.post(base+"/auth/mint", url.Values{"sub": {"user-42"}})
	require.Equal(t, http.StatusOK, p.Status)
	tok := p.text("minted-token")
	require.NotEmpty(t, tok)
	p = c.post(base+"/auth/test", url.Values{"token": {tok}})
	require.Contains(t, p.text("auth-test-result"), `Accepted`)
	require.Contains(t, p.text("auth-test-result"), `"user-42"`)
	p = c.post(base+"/auth/test", url.Values{"token": {"not.a.token"}})
	require.Contains(t, p.text("auth-test-result"), "Refused: ")

	// Tables: problems next to the path, preview diff, apply, history.
	p = c.get(base + "/tables")
	require.Equal(t, 1, p.testid("tables-empty").Length())
	bad := `{"tables":[{"name":"notes","sync_key":"id","columns":[{"name":"id","type":"nope"}]}]}`
	p = c.post(base+"/tables", url.Values{"definition": {bad}, "op": {"preview"}})
	require.Equal(t, http.StatusUnprocessableEntity, p.Status)
	require.Contains(t, p.text("tables-problems"), "tables[0].columns[0].type")
	// The problem sits next to its column.
	field := p.Doc.Find(`tr.invalid[data-testid="tables-field"]`)
	require.Equal(t, 1, field.Length())
	require.Contains(t, field.Text(), "notes.id nope")
	require.Contains(t, field.Find(`[data-testid="tables-problem"]`).Text(), "tables[0].columns[0].type")
	good := `{"tables":[{"name":"notes","sync_key":"id","columns":[{"name":"id","type":"uuid"},{"name":"body","type":"text","nullable":true}]}]}`
	p = c.post(base+"/tables", url.Values{"definition": {good}, "op": {"preview"}})
	require.Equal(t, http.StatusOK, p.Status, p.Body)
	require.Contains(t, p.text("tables-diff"), "notes")
	p = c.post(base+"/tables", url.Values{"definition": {good}, "op": {"apply"}})
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	p = c.get(base + "/tables")
	require.Contains(t, p.text("flash-ok"), "version 1")
	require.Equal(t, 1, p.testid("tables-version").Length())
	require.Equal(t, 1, p.testid("table-row").Length())
	// Dropping a column is breaking: refused unless allowed.
	drop := `{"tables":[{"name":"notes","sync_key":"id","columns":[{"name":"id","type":"uuid"}]}]}`
	p = c.post(base+"/tables", url.Values{"definition": {drop}, "op": {"apply"}})
	require.Equal(t, http.StatusUnprocessableEntity, p.Status)
	require.Contains(t, p.text("tables-error"), "breaking")

	// Settings: delete needs the typed slug.
	p = c.get(base + "/settings")
	require.Equal(t, "active", p.text("tenant-state"))
	p = c.post(base+"/delete", url.Values{"confirm": {"wrong"}})
	require.Equal(t, http.StatusUnprocessableEntity, p.Status)
	require.NotEmpty(t, p.text("error-confirm"))
	p = c.post(base+"/suspend", nil)
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.Equal(t, "suspended", c.get(base+"/settings").text("tenant-state"))
	c.post(base+"/resume", nil)

	// Audit log shows the changes, filterable by action.
	p = c.get(base + "/audit")
	actions := p.testid("audit-action").Map(func(_ int, s *goquerySelection) string { return s.Text() })
	for _, want := range []string{"tenant.create", "member.add", "key.create", "key.revoke", "auth.set", "auth.mint", "tables.apply", "tenant.suspend", "tenant.resume"} {
		require.Contains(t, actions, want)
	}
	p = c.get(base + "/audit?action=key.create")
	require.Equal(t, 1, p.testid("audit-row").Length())
	require.Contains(t, p.testid("audit-row").Text(), "user:"+c.Email)

	p = c.post(base+"/delete", url.Values{"confirm": {slug}})
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.Equal(t, http.StatusNotFound, c.get(base).Status)
}

func keyIDs(t *testing.T, h *harness, slug string) []string {
	t.Helper()
	tn, err := h.store.Tenant(context.Background(), slug)
	require.NoError(t, err)
	keys, err := h.store.ListKeys(context.Background(), tn.ID)
	require.NoError(t, err)
	var out []string
	for _, k := range keys {
		out = append(out, itoa64(k.ID))
	}
	return out
}

func TestMembersAndRoles(t *testing.T) {
	h := newHarness(t)
	owner := h.signup()
	slug := owner.newTenant("members")
	base := "/console/t/" + slug

	viewer := h.signup()
	// Not a member yet: the tenant does not exist for them.
	require.Equal(t, http.StatusNotFound, viewer.get(base).Status)

	owner.get(base + "/members")
	p := owner.post(base+"/members/invite", url.Values{"email": {viewer.Email}, "role": {"viewer"}})
	require.Equal(t, http.StatusOK, p.Status, p.Body)
	link := p.text("invite-link")
	require.True(t, strings.HasPrefix(link, "http://console.test/console/invite/inv_"), link)
	path := strings.TrimPrefix(link, "http://console.test")

	// A second invitation is withdrawn: its link stops working.
	p = owner.post(base+"/members/invite", url.Values{"email": {randomEmail("gone")}, "role": {"viewer"}})
	gonePath := strings.TrimPrefix(p.text("invite-link"), "http://console.test")
	p = owner.get(base + "/members")
	require.Equal(t, 2, p.testid("invitation-row").Length())
	var goneID string
	p.testid("invitation-row").Each(func(i int, s *goquerySelection) {
		if strings.Contains(s.Text(), "gone-") {
			act, _ := s.Find("form").Attr("action")
			goneID = strings.TrimSuffix(strings.TrimPrefix(act, base+"/invitations/"), "/cancel")
		}
	})
	require.NotEmpty(t, goneID)
	require.Equal(t, http.StatusSeeOther, owner.post(base+"/invitations/"+goneID+"/cancel", nil).Status)
	require.Equal(t, http.StatusNotFound, h.client().get(gonePath).Status)
	require.Equal(t, http.StatusNotFound, owner.post(base+"/invitations/"+goneID+"/cancel", nil).Status)

	// Someone else cannot accept it.
	stranger := h.signup()
	stranger.get(path)
	p = stranger.post(path, nil)
	require.Equal(t, http.StatusForbidden, p.Status)

	// Signed out, the link leads to a login that comes back to it.
	viewer.post("/console/logout", nil)
	p = viewer.get(path)
	require.Equal(t, http.StatusSeeOther, p.Status)
	p = viewer.get(p.Location)
	action, _ := p.testid("login-form").Attr("action")
	require.Contains(t, action, url.QueryEscape(path))
	p = viewer.post(action, url.Values{"email": {viewer.Email}, "password": {"correct horse battery"}})
	require.Equal(t, path, p.Location)

	p = viewer.get(path)
	require.Equal(t, 1, p.testid("invite-accept").Length())
	p = viewer.post(path, nil)
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.Equal(t, base, p.Location)
	// Used once.
	require.Equal(t, http.StatusNotFound, viewer.get(path).Status)

	// A viewer reads but cannot write.
	p = viewer.get(base + "/keys")
	require.Equal(t, http.StatusOK, p.Status)
	require.Equal(t, 0, p.testid("key-form").Length())
	p = viewer.post(base+"/keys", url.Values{"kind": {"secret"}})
	require.Equal(t, http.StatusForbidden, p.Status)
	require.Empty(t, keyIDs(t, h, slug))
	require.Equal(t, http.StatusForbidden, viewer.post(base+"/auth", url.Values{"mode": {"hs256"}, "hs256_secrets": {hsSecret}}).Status)
	require.Equal(t, http.StatusForbidden, viewer.post(base+"/tables", url.Values{"definition": {"{}"}}).Status)
	require.Equal(t, http.StatusForbidden, viewer.post(base+"/members/invite", url.Values{"email": {"x@example.com"}, "role": {"owner"}}).Status)
	require.Equal(t, http.StatusForbidden, viewer.post(base+"/delete", url.Values{"confirm": {slug}}).Status)

	// The owner promotes the viewer to developer, who may then create keys.
	ms, err := h.console.Accounts().Members(context.Background(), mustTenantID(t, h, slug))
	require.NoError(t, err)
	var viewerID, ownerID string
	for _, m := range ms {
		if m.Email == viewer.Email {
			viewerID = itoa64(m.AccountID)
		} else {
			ownerID = itoa64(m.AccountID)
		}
	}
	owner.get(base + "/members")
	p = owner.post(base+"/members/"+viewerID+"/role", url.Values{"role": {"developer"}})
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	viewer.get(base + "/keys")
	require.Equal(t, http.StatusOK, viewer.post(base+"/keys", url.Values{"kind": {"secret"}}).Status)
	// A developer cannot manage members; an owner cannot remove the last owner.
	require.Equal(t, http.StatusForbidden, viewer.post(base+"/members/"+ownerID+"/remove", nil).Status)
	p = owner.post(base+"/members/"+ownerID+"/remove", nil)
	require.Equal(t, http.StatusUnprocessableEntity, p.Status)
	require.Contains(t, p.text("error-member"), "at least one owner")

	p = owner.post(base+"/members/"+viewerID+"/remove", nil)
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.Equal(t, http.StatusNotFound, viewer.get(base).Status)

	audit := owner.get(base + "/audit?action=member.role")
	require.Equal(t, 1, audit.testid("audit-row").Length())
}

// TestCrossTenant: a member of tenant A cannot see or touch tenant B by
// changing an id in a URL or a form.
func TestCrossTenant(t *testing.T) {
	h := newHarness(t)
	a := h.signup()
	b := h.signup()
	slugA := a.newTenant("cross_a")
	slugB := b.newTenant("cross_b")
	b.get("/console/t/" + slugB + "/keys")
	b.post("/console/t/"+slugB+"/keys", url.Values{"kind": {"publishable"}})
	keyB := keyIDs(t, h, slugB)[0]

	for _, path := range []string{"", "/keys", "/auth", "/tables", "/members", "/audit", "/settings", "/devices"} {
		require.Equal(t, http.StatusNotFound, a.get("/console/t/"+slugB+path).Status, path)
	}
	a.get("/console/t/" + slugA + "/keys")
	require.Equal(t, http.StatusNotFound, a.post("/console/t/"+slugB+"/keys", url.Values{"kind": {"secret"}}).Status)
	require.Equal(t, http.StatusNotFound, a.post("/console/t/"+slugB+"/delete", url.Values{"confirm": {slugB}}).Status)
	// B's key id under A's tenant URL: not found, and not revoked.
	require.Equal(t, http.StatusNotFound, a.post("/console/t/"+slugA+"/keys/"+keyB+"/revoke", nil).Status)
	p := b.get("/console/t/" + slugB + "/keys")
	require.NotContains(t, p.testid("key-row").Text(), "revoked")
	// B's member id under A's tenant: not found.
	ms, err := h.console.Accounts().Members(context.Background(), mustTenantID(t, h, slugB))
	require.NoError(t, err)
	require.Equal(t, http.StatusNotFound, a.post("/console/t/"+slugA+"/members/"+itoa64(ms[0].AccountID)+"/remove", nil).Status)
	// A's list does not show B.
	require.Equal(t, 0, a.get("/console/tenants").testid("tenant-"+slugB).Length())
}

func TestOperatorSeesAndSuspends(t *testing.T) {
	h := newHarness(t)
	owner := h.signup()
	slug := owner.newTenant("oper")
	op := h.signup()
	require.NoError(t, h.console.Accounts().SetOperator(context.Background(), mustAccountID(t, h, op.Email), true))

	p := op.get("/console/tenants?q=" + slug)
	require.Contains(t, p.testid("tenant-row").Text(), "operator")
	require.Equal(t, http.StatusOK, op.get("/console/t/"+slug+"/keys").Status)
	op.get("/console/t/" + slug + "/settings")
	require.Equal(t, http.StatusSeeOther, op.post("/console/t/"+slug+"/suspend", nil).Status)
	require.Equal(t, "suspended", op.get("/console/t/"+slug+"/settings").text("tenant-state"))
	// Operators do not get write access to tenant data.
	require.Equal(t, http.StatusForbidden, op.post("/console/t/"+slug+"/keys", url.Values{"kind": {"secret"}}).Status)
	require.Equal(t, http.StatusForbidden, op.post("/console/t/"+slug+"/delete", url.Values{"confirm": {slug}}).Status)
}

func TestSignupClosedAndInvite(t *testing.T) {
	h := newHarness(t, func(o *admin.Options) { o.Signup = admin.SignupClosed })
	c := h.client()
	p := c.get("/console/signup")
	require.Equal(t, 1, p.testid("signup-closed").Length())
	p = c.post("/console/signup", url.Values{"email": {randomEmail("closed")}, "password": {"correct horse battery"}})
	require.Equal(t, http.StatusForbidden, p.Status)
	require.Equal(t, 0, c.get("/console/login").testid("signup-link").Length())

	// An owner invites a new person, who signs up through the link.
	ownerEmail := randomEmail("owner")
	_, err := h.console.Accounts().CreateAccount(context.Background(), ownerEmail, "correct horse battery")
	require.NoError(t, err)
	owner := h.client()
	owner.get("/console/login")
	require.Equal(t, http.StatusSeeOther, owner.post("/console/login", url.Values{"email": {ownerEmail}, "password": {"correct horse battery"}}).Status)
	slug := owner.newTenant("closed")
	owner.get("/console/t/" + slug + "/members")
	newEmail := randomEmail("invitee")
	p = owner.post("/console/t/"+slug+"/members/invite", url.Values{"email": {newEmail}, "role": {"developer"}})
	path := strings.TrimPrefix(p.text("invite-link"), "http://console.test")
	require.NotEmpty(t, path)

	// A platform operator hands out a sign-up-only link.
	require.NoError(t, h.console.Accounts().SetOperator(context.Background(), mustAccountID(t, h, ownerEmail), true))
	p = owner.get("/console/account")
	require.Equal(t, 1, p.testid("operator-invite").Length())
	soloEmail := randomEmail("solo")
	p = owner.post("/console/account/invitations", url.Values{"email": {soloEmail}})
	soloPath := strings.TrimPrefix(p.text("signup-link"), "http://console.test")
	require.NotEmpty(t, soloPath)
	solo := h.client()
	solo.get(soloPath)
	require.Equal(t, http.StatusSeeOther, solo.post(soloPath+"/signup", url.Values{"password": {"correct horse battery"}}).Status)
	require.Equal(t, 1, solo.get("/console/tenants").testid("tenants-empty").Length())
	// Non-operators cannot create sign-up links.
	require.Equal(t, http.StatusForbidden, solo.post("/console/account/invitations", url.Values{"email": {randomEmail("x")}}).Status)

	p = c.get(path)
	require.Equal(t, http.StatusOK, p.Status)
	email, _ := p.Doc.Find(`input[name="email"]`).Attr("value")
	require.Equal(t, newEmail, email)
	p = c.post(path+"/signup", url.Values{"password": {"correct horse battery"}})
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	p = c.get("/console/tenants")
	require.Contains(t, p.testid("tenant-row").Text(), "developer")
}

func TestPasswordChangeAndTokens(t *testing.T) {
	h := newHarness(t)
	c := h.signup()
	// A second session of the same account.
	other := h.client()
	other.get("/console/login")
	require.Equal(t, http.StatusSeeOther, other.post("/console/login", url.Values{"email": {c.Email}, "password": {"correct horse battery"}}).Status)
	require.Equal(t, http.StatusOK, other.get("/console/tenants").Status)

	c.get("/console/account")
	p := c.post("/console/account/password", url.Values{"current_password": {"wrong"}, "new_password": {"another long password"}})
	require.Equal(t, http.StatusUnprocessableEntity, p.Status)
	require.NotEmpty(t, p.text("error-current_password"))
	p = c.post("/console/account/password", url.Values{"current_password": {"correct horse battery"}, "new_password": {"short"}})
	require.Equal(t, http.StatusUnprocessableEntity, p.Status)
	require.NotEmpty(t, p.text("error-new_password"))
	p = c.post("/console/account/password", url.Values{"current_password": {"correct horse battery"}, "new_password": {"another long password"}})
	require.Equal(t, http.StatusSeeOther, p.Status)
	_, err := h.console.Accounts().Authenticate(context.Background(), c.Email, "another long password")
	require.NoError(t, err)
	// This session goes on; the other one is signed out.
	require.Equal(t, http.StatusOK, c.get("/console/tenants").Status)
	require.Equal(t, http.StatusSeeOther, other.get("/console/tenants").Status)

	p = c.get("/console/account")
	require.Equal(t, 1, p.testid("tokens-empty").Length())
	p = c.post("/console/account/tokens", url.Values{"label": {"ci"}})
	tok := p.text("new-token")
	require.True(t, strings.HasPrefix(tok, "sp_pat_"))
	a, err := h.console.Accounts().LookupAccessToken(context.Background(), tok)
	require.NoError(t, err)
	require.Equal(t, c.Email, a.Email)
}
