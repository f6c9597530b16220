package admin_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/admin"
	"github.com/syncplane/syncplane/tenant/tenanttest"
)

func TestTenantSettingsPage(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	owner := h.signup()
	slug := owner.newTenant("settings")
	base := "/console/t/" + slug
	tid := mustTenantID(t, h, slug)

	p := owner.get(base + "/settings")
	require.Equal(t, 1, p.testid("settings-form").Length())
	before, err := h.store.Tenant(ctx, slug)
	require.NoError(t, err)
	require.Equal(t, itoa64(int64(before.RetainedBundles)), p.text("tenant-retained"))

	// Refusals are shown next to the field, with what was typed.
	p = owner.post(base+"/settings", url.Values{"name": {"  "}, "watch_enabled": {"false"}, "retained_bundles": {"5000"}})
	require.Equal(t, http.StatusUnprocessableEntity, p.Status)
	require.Contains(t, p.text("error-name"), "1 to 200")
	p = owner.post(base+"/settings", url.Values{"name": {"Renamed"}, "watch_enabled": {"false"}, "retained_bundles": {"50"}})
	require.Equal(t, http.StatusUnprocessableEntity, p.Status)
	require.Contains(t, p.text("error-retained_bundles"), "between 100 and 1000000")
	v, _ := p.Doc.Find(`#retained_bundles`).Attr("value")
	require.Equal(t, "50", v)
	p = owner.post(base+"/settings", url.Values{"name": {"Renamed"}, "watch_enabled": {"false"}, "retained_bundles": {"many"}})
	require.Equal(t, http.StatusUnprocessableEntity, p.Status)
	require.Contains(t, p.text("error-retained_bundles"), "whole number")

	// Saved: name, watch (checkbox after the hidden false) and retention.
	p = owner.post(base+"/settings", url.Values{"name": {"Renamed app"}, "watch_enabled": {"false", "true"}, "retained_bundles": {"2500"}})
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	p = owner.get(base + "/settings")
	require.Contains(t, p.text("flash-ok"), "Settings saved")
	require.Equal(t, "Renamed app", p.text("nav-tenant"))
	require.Equal(t, "enabled", p.text("tenant-watch"))
	require.Equal(t, "2500", p.text("tenant-retained"))
	_, checked := p.testid("settings-watch").Attr("checked")
	require.True(t, checked)
	after, err := h.store.Tenant(ctx, slug)
	require.NoError(t, err)
	require.Equal(t, "Renamed app", after.Name)
	require.True(t, after.WatchEnabled)
	require.Equal(t, 2500, after.RetainedBundles)
	// Unchecking sends only the hidden false.
	p = owner.post(base+"/settings", url.Values{"name": {"Renamed app"}, "watch_enabled": {"false"}, "retained_bundles": {"2500"}})
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.Equal(t, "disabled", owner.get(base+"/settings").text("tenant-watch"))
	// Saving unchanged settings writes nothing.
	p = owner.post(base+"/settings", url.Values{"name": {"Renamed app"}, "watch_enabled": {"false"}, "retained_bundles": {"2500"}})
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.Contains(t, owner.get(base+"/settings").text("flash-ok"), "Nothing changed")
	require.Equal(t, 2, owner.get(base+"/audit?action=tenant.settings").testid("audit-row").Length())

	// An admin edits; a developer and a viewer read only; strangers see nothing.
	roles := map[admin.Role]*client{}
	for _, role := range []admin.Role{admin.RoleAdmin, admin.RoleDeveloper, admin.RoleViewer} {
		c := h.signup()
		require.NoError(t, h.console.Accounts().AddMember(ctx, tid, mustAccountID(t, h, c.Email), role, testActor))
		roles[role] = c
	}
	// A fresh form each time: post adds the client's CSRF token to it.
	form := func() url.Values {
		return url.Values{"name": {"By admin"}, "watch_enabled": {"false"}, "retained_bundles": {"2500"}}
	}
	for _, role := range []admin.Role{admin.RoleDeveloper, admin.RoleViewer} {
		c := roles[role]
		p = c.get(base + "/settings")
		require.Equal(t, 0, p.testid("settings-form").Length(), role)
		p = c.post(base+"/settings", form())
		require.Equal(t, http.StatusForbidden, p.Status, role)
		require.Contains(t, p.Body, "does not allow", role)
	}
	op := h.operator()
	require.Equal(t, 0, op.get(base+"/settings").testid("settings-form").Length())
	p = op.post(base+"/settings", form())
	require.Equal(t, http.StatusForbidden, p.Status)
	require.Contains(t, p.Body, "does not allow")
	stranger := h.signup()
	stranger.get("/console/tenants")
	require.Equal(t, http.StatusNotFound, stranger.post(base+"/settings", form()).Status)
	roles[admin.RoleAdmin].get(base + "/settings")
	require.Equal(t, http.StatusSeeOther, roles[admin.RoleAdmin].post(base+"/settings", form()).Status)
	require.Equal(t, "By admin", owner.get(base+"/settings").text("nav-tenant"))
}

func TestTenantSettingsAPI(t *testing.T) {
	h := newHarness(t)
	api := newAPIClient(t, h)
	ctx := context.Background()
	_, owner := h.accountWithToken(t)
	slug := tenanttest.RandomSlug("apiset")
	t.Cleanup(func() { _ = h.store.DeleteTenant(context.Background(), slug, tenanttest.Actor) })
	require.Equal(t, http.StatusCreated, api.call(owner, "POST", "/tenants", map[string]any{"slug": slug}).Status)
	tid := mustTenantID(t, h, slug)
	tokens := map[admin.Role]string{}
	for _, role := range []admin.Role{admin.RoleAdmin, admin.RoleDeveloper, admin.RoleViewer} {
		email, tok := h.accountWithToken(t)
		require.NoError(t, h.console.Accounts().AddMember(ctx, tid, mustAccountID(t, h, email), role, testActor))
		tokens[role] = tok
	}
	secret := api.call(owner, "POST", "/tenants/"+slug+"/keys", map[string]any{"kind": "secret"}).str("secret")
	_, stranger := h.accountWithToken(t)
	path := "/tenants/" + slug

	r := api.call(owner, "PATCH", path, map[string]any{"name": "Patched", "watch_enabled": true, "retained_bundles": 300})
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	require.Equal(t, "Patched", r.str("name"))
	require.Equal(t, true, r.Body["watch_enabled"])
	require.EqualValues(t, 300, r.Body["retained_bundles"])
	// Absent fields stay.
	r = api.call(tokens[admin.RoleAdmin], "PATCH", path, map[string]any{"watch_enabled": false})
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	require.Equal(t, "Patched", r.str("name"))
	require.Equal(t, false, r.Body["watch_enabled"])
	require.EqualValues(t, 300, api.call(tokens[admin.RoleViewer], "GET", path, nil).Body["retained_bundles"])

	// Refusals, each naming the field.
	for _, c := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"name": " "}, "name"},
		{map[string]any{"retained_bundles": 99}, "retained_bundles"},
		{map[string]any{"retained_bundles": 2_000_000}, "retained_bundles"},
	} {
		r = api.call(owner, "PATCH", path, c.body)
		require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%v", c.body)
		require.Equal(t, c.field, r.str("field"))
	}
	require.Equal(t, http.StatusUnprocessableEntity, api.call(owner, "PATCH", path, map[string]any{}).Status)
	require.Equal(t, http.StatusBadRequest, api.call(owner, "PATCH", path, map[string]any{"slug": "other"}).Status)
	require.Equal(t, http.StatusBadRequest, api.call(owner, "PATCH", path, map[string]any{"retained_bundles": "lots"}).Status)
	for name, tok := range map[string]string{"developer": tokens[admin.RoleDeveloper], "viewer": tokens[admin.RoleViewer], "secret key": secret} {
		require.Equal(t, http.StatusForbidden, api.call(tok, "PATCH", path, map[string]any{"name": "x"}).Status, name)
	}
	require.Equal(t, http.StatusNotFound, api.call(stranger, "PATCH", path, map[string]any{"name": "x"}).Status)
	require.Equal(t, http.StatusUnauthorized, api.call("", "PATCH", path, map[string]any{"name": "x"}).Status)
	require.Len(t, api.call(owner, "GET", path+"/audit?action=tenant.settings", nil).Body["entries"], 2)
}
