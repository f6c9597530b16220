package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/admin"
	"github.com/syncplane/syncplane/tenant/tenanttest"
)

// apiClient calls the management API and validates every request and
// response against the served OpenAPI document.
type apiClient struct {
	t      *testing.T
	h      *harness
	router routers.Router
}

func newAPIClient(t *testing.T, h *harness) *apiClient {
	t.Helper()
	resp, err := http.Get(h.srv.URL + "/api/v1/openapi.json")
	require.NoError(t, err)
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, admin.OpenAPI(), raw)

	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(raw)
	require.NoError(t, err)
	require.NoError(t, doc.Validate(context.Background()), "the OpenAPI document is invalid")
	doc.Servers = openapi3.Servers{{URL: h.srv.URL + "/api/v1"}}
	router, err := gorillamux.NewRouter(doc)
	require.NoError(t, err)
	return &apiClient{t: t, h: h, router: router}
}

type apiResult struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    []byte
}

func (r apiResult) str(key string) string {
	s, _ := r.Body[key].(string)
	return s
}

func (a *apiClient) call(token, method, path string, body any) apiResult {
	a.t.Helper()
	var payload []byte
	if body != nil {
		var err error
		payload, err = json.Marshal(body)
		require.NoError(a.t, err)
	}
	newReq := func() *http.Request {
		req, err := http.NewRequest(method, a.h.srv.URL+"/api/v1"+path, bytes.NewReader(payload))
		require.NoError(a.t, err)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return req
	}
	req := newReq()
	route, params, err := a.router.FindRoute(req)
	require.NoError(a.t, err, "%s %s is not in the OpenAPI document", method, path)
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true}}
	// Deliberately invalid requests are allowed, but then must be refused.
	reqErr := openapi3filter.ValidateRequest(context.Background(), in)

	resp, err := http.DefaultClient.Do(newReq())
	require.NoError(a.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(a.t, err)
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode,
		Header: resp.Header, Body: io.NopCloser(bytes.NewReader(raw)), Options: in.Options}
	require.NoError(a.t, openapi3filter.ValidateResponse(context.Background(), out),
		"%s %s → %d %s does not match the document", method, path, resp.StatusCode, raw)
	if reqErr != nil {
		require.GreaterOrEqual(a.t, resp.StatusCode, 400, "request outside the document was accepted: %v", reqErr)
	}
	res := apiResult{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &res.Body)
	}
	return res
}

func (h *harness) accountWithToken(t *testing.T) (email, token string) {
	t.Helper()
	email = randomEmail("api")
	a, err := h.console.Accounts().CreateAccount(context.Background(), email, "correct horse battery")
	require.NoError(t, err)
	token, _, err = h.console.Accounts().CreateAccessToken(context.Background(), a.ID, "test")
	require.NoError(t, err)
	return email, token
}

func TestManagementAPI(t *testing.T) {
	h := newHarness(t)
	api := newAPIClient(t, h)
	_, owner := h.accountWithToken(t)
	slug := tenanttest.RandomSlug("api")
	t.Cleanup(func() { _ = h.store.DeleteTenant(context.Background(), slug, tenanttest.Actor) })

	// Refusals of authentication.
	require.Equal(t, http.StatusUnauthorized, api.call("", "GET", "/tenants", nil).Status)
	require.Equal(t, http.StatusUnauthorized, api.call("sp_pat_nope", "GET", "/tenants", nil).Status)
	require.Equal(t, http.StatusUnauthorized, api.call("garbage", "GET", "/tenants", nil).Status)

	r := api.call(owner, "POST", "/tenants", map[string]any{"slug": slug, "name": "API app", "wire_schema": "app"})
	require.Equal(t, http.StatusCreated, r.Status, string(r.Raw))
	require.Equal(t, "owner", r.str("role"))
	r = api.call(owner, "POST", "/tenants", map[string]any{"slug": slug})
	require.Equal(t, http.StatusConflict, r.Status)
	r = api.call(owner, "POST", "/tenants", map[string]any{"slug": "Bad"})
	require.Equal(t, http.StatusUnprocessableEntity, r.Status)
	require.Equal(t, "slug", r.str("field"))
	r = api.call(owner, "GET", "/tenants", nil)
	require.Contains(t, string(r.Raw), `"slug":"`+slug+`"`)
	require.Equal(t, http.StatusOK, api.call(owner, "GET", "/tenants/"+slug, nil).Status)

	base := "/tenants/" + slug
	r = api.call(owner, "POST", base+"/keys", map[string]any{"kind": "secret", "label": "backend"})
	require.Equal(t, http.StatusCreated, r.Status)
	secret := r.str("secret")
	require.True(t, strings.HasPrefix(secret, "sp_sk_"))
	r = api.call(owner, "POST", base+"/keys", map[string]any{"kind": "publishable"})
	publishable := r.str("secret")
	require.Equal(t, http.StatusUnprocessableEntity, api.call(owner, "POST", base+"/keys", map[string]any{"kind": "wrong"}).Status)
	require.Equal(t, http.StatusBadRequest, api.call(owner, "POST", base+"/keys", map[string]any{"kind": "secret", "extra": 1}).Status)
	require.Equal(t, http.StatusUnauthorized, api.call(publishable, "GET", "/tenants", nil).Status)

	// The secret key acts as a developer of its own tenant.
	r = api.call(secret, "GET", "/tenants", nil)
	require.Equal(t, http.StatusOK, r.Status)
	require.Len(t, r.Body["tenants"], 1)
	require.Equal(t, http.StatusOK, api.call(secret, "GET", base+"/keys", nil).Status)
	require.Equal(t, http.StatusForbidden, api.call(secret, "POST", base+"/invitations", map[string]any{"email": "x@example.com", "role": "viewer"}).Status)
	require.Equal(t, http.StatusForbidden, api.call(secret, "POST", "/tenants", map[string]any{"slug": "nope_nope"}).Status)

	// Auth.
	require.Equal(t, http.StatusNotFound, api.call(secret, "GET", base+"/auth", nil).Status)
	require.Equal(t, http.StatusConflict, api.call(secret, "POST", base+"/auth/test", map[string]any{"token": "x"}).Status)
	r = api.call(secret, "PUT", base+"/auth", map[string]any{"mode": "hs256", "hs256_secrets": []string{"short"}})
	require.Equal(t, http.StatusUnprocessableEntity, r.Status)
	r = api.call(secret, "PUT", base+"/auth", map[string]any{"mode": "hs256", "hs256_secrets": []string{hsSecret}})
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	require.NotContains(t, string(r.Raw), hsSecret, "secrets are redacted")
	r = api.call(secret, "POST", base+"/auth/test", map[string]any{"token": "a.b.c"})
	require.Equal(t, false, r.Body["accepted"])
	require.Contains(t, r.str("message"), "Refused")

	// Tables.
	require.Equal(t, http.StatusNotFound, api.call(secret, "GET", base+"/tables", nil).Status)
	def := map[string]any{"tables": []any{map[string]any{"name": "notes", "sync_key": "id",
		"columns": []any{map[string]any{"name": "id", "type": "uuid"}, map[string]any{"name": "body", "type": "text", "nullable": true}}}}}
	r = api.call(secret, "POST", base+"/tables", map[string]any{"definition": def, "dry_run": true})
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	require.Equal(t, false, r.Body["applied"])
	r = api.call(secret, "POST", base+"/tables", map[string]any{"definition": def})
	require.Equal(t, true, r.Body["applied"])
	require.EqualValues(t, 1, r.Body["version"])
	bad := map[string]any{"tables": []any{map[string]any{"name": "notes", "sync_key": "id", "columns": []any{map[string]any{"name": "id", "type": "nope"}}}}}
	r = api.call(secret, "POST", base+"/tables", map[string]any{"definition": bad})
	require.Equal(t, http.StatusUnprocessableEntity, r.Status)
	require.Contains(t, string(r.Raw), "tables[0].columns[0].type")
	drop := map[string]any{"tables": []any{map[string]any{"name": "notes", "sync_key": "id", "columns": []any{map[string]any{"name": "id", "type": "uuid"}}}}}
	require.Equal(t, http.StatusConflict, api.call(secret, "POST", base+"/tables", map[string]any{"definition": drop}).Status)
	require.Equal(t, http.StatusOK, api.call(secret, "GET", base+"/tables", nil).Status)
	r = api.call(secret, "GET", base+"/tables/versions", nil)
	require.Len(t, r.Body["versions"], 1)

	// Members and invitations.
	r = api.call(owner, "POST", base+"/invitations", map[string]any{"email": randomEmail("inv"), "role": "viewer"})
	require.Equal(t, http.StatusCreated, r.Status)
	require.Contains(t, r.str("url"), "/console/invite/inv_")
	r = api.call(owner, "GET", base+"/members", nil)
	require.Len(t, r.Body["members"], 1)
	ownerID := int64(r.Body["members"].([]any)[0].(map[string]any)["account_id"].(float64))
	require.Equal(t, http.StatusConflict, api.call(owner, "DELETE", base+"/members/"+itoa64(ownerID), nil).Status)
	require.Equal(t, http.StatusConflict, api.call(owner, "PUT", base+"/members/"+itoa64(ownerID), map[string]any{"role": "viewer"}).Status)

	// Keys: revoke; an id of another tenant is not found.
	keys := api.call(owner, "GET", base+"/keys", nil).Body["keys"].([]any)
	pkID := int64(keys[0].(map[string]any)["id"].(float64))
	require.Equal(t, http.StatusNoContent, api.call(owner, "DELETE", base+"/keys/"+itoa64(pkID), nil).Status)

	// Devices.
	seedSync(t, h, slug)
	r = api.call(secret, "GET", base+"/devices?user=alice", nil)
	require.Equal(t, http.StatusOK, r.Status)
	require.Len(t, r.Body["devices"], 1)
	require.Equal(t, http.StatusNoContent, api.call(secret, "POST", base+"/devices/retire", map[string]any{"user_id": "alice", "source_id": "dev-a1"}).Status)
	require.Equal(t, http.StatusNotFound, api.call(secret, "POST", base+"/devices/retire", map[string]any{"user_id": "alice", "source_id": "nope"}).Status)
	r = api.call(secret, "GET", base+"/devices?user=alice", nil)
	require.Contains(t, string(r.Raw), `"state":"retired"`)
	require.Equal(t, http.StatusNoContent, api.call(secret, "POST", base+"/devices/revoke", map[string]any{"user_id": "bob", "source_id": "dev-b1"}).Status)
	r = api.call(secret, "GET", base+"/devices?user=bob", nil)
	require.Len(t, r.Body["devices"], 1, "a revoked device gets no reserved successor")
	require.Contains(t, string(r.Raw), `"state":"retired"`)

	r = api.call(owner, "GET", base+"/audit?action=key.create", nil)
	require.Len(t, r.Body["entries"], 2)
	require.Equal(t, http.StatusOK, api.call(owner, "POST", base+"/suspend", nil).Status)
	require.Equal(t, http.StatusOK, api.call(owner, "POST", base+"/resume", nil).Status)

	// Another tenant's secret key and another account see nothing here.
	_, stranger := h.accountWithToken(t)
	require.Equal(t, http.StatusNotFound, api.call(stranger, "GET", base, nil).Status)
	require.Equal(t, http.StatusNotFound, api.call(stranger, "POST", base+"/keys", map[string]any{"kind": "secret"}).Status)
	require.Equal(t, http.StatusNotFound, api.call(stranger, "DELETE", base, nil).Status)

	// Revoked keys stop working.
	secretID := int64(keys[1].(map[string]any)["id"].(float64))
	require.Equal(t, http.StatusNoContent, api.call(owner, "DELETE", base+"/keys/"+itoa64(secretID), nil).Status)
	require.Equal(t, http.StatusUnauthorized, api.call(secret, "GET", "/tenants", nil).Status)

	require.Equal(t, http.StatusNoContent, api.call(owner, "DELETE", base, nil).Status)
	require.Equal(t, http.StatusNotFound, api.call(owner, "GET", base, nil).Status)
}

// TestAPIRoleMatrix checks, over HTTP, every role against representative
// actions: allowed ones succeed, denied ones answer 403 (members) or 404
// (no relation to the tenant).
func TestAPIRoleMatrix(t *testing.T) {
	h := newHarness(t)
	api := newAPIClient(t, h)
	_, owner := h.accountWithToken(t)
	slug := tenanttest.RandomSlug("matrix")
	t.Cleanup(func() { _ = h.store.DeleteTenant(context.Background(), slug, tenanttest.Actor) })
	require.Equal(t, http.StatusCreated, api.call(owner, "POST", "/tenants", map[string]any{"slug": slug}).Status)
	tid := mustTenantID(t, h, slug)
	base := "/tenants/" + slug

	tokens := map[admin.Role]string{admin.RoleOwner: owner}
	for _, role := range []admin.Role{admin.RoleAdmin, admin.RoleDeveloper, admin.RoleViewer} {
		email, tok := h.accountWithToken(t)
		require.NoError(t, h.console.Accounts().AddMember(context.Background(), tid, mustAccountID(t, h, email), role, tenanttest.Actor))
		tokens[role] = tok
	}
	_, tokens["none"] = h.accountWithToken(t)
	opEmail, opTok := h.accountWithToken(t)
	require.NoError(t, h.console.Accounts().SetOperator(context.Background(), mustAccountID(t, h, opEmail), true))
	tokens[admin.RoleOperator] = opTok

	type call struct {
		name, method, path string
		body               any
	}
	calls := []call{
		{"tenant.read", "GET", base, nil},
		{"tenant.settings", "PATCH", base, map[string]any{"watch_enabled": true}},
		{"keys.read", "GET", base + "/keys", nil},
		{"keys.write", "POST", base + "/keys", map[string]any{"kind": "publishable"}},
		{"auth.write", "PUT", base + "/auth", map[string]any{"mode": "hs256", "hs256_secrets": []string{hsSecret}}},
		{"tables.read", "GET", base + "/tables/versions", nil},
		{"members.read", "GET", base + "/members", nil},
		{"members.write", "POST", base + "/invitations", map[string]any{"email": "m@example.com", "role": "viewer"}},
		{"audit.read", "GET", base + "/audit", nil},
		{"tenant.suspend", "POST", base + "/resume", nil},
		{"quota.read", "GET", base + "/quota", nil},
		{"usage.read", "GET", base + "/usage?format=csv", nil},
		{"quota.write", "PUT", base + "/quota", map[string]any{"overrides": map[string]any{}}},
	}
	allowed := map[admin.Role][]string{
		admin.RoleOwner:     {"tenant.settings", "tenant.read", "keys.read", "keys.write", "auth.write", "tables.read", "members.read", "members.write", "audit.read", "tenant.suspend", "quota.read", "usage.read"},
		admin.RoleAdmin:     {"tenant.settings", "tenant.read", "keys.read", "keys.write", "auth.write", "tables.read", "members.read", "members.write", "audit.read", "quota.read", "usage.read"},
		admin.RoleDeveloper: {"tenant.read", "keys.read", "keys.write", "auth.write", "tables.read", "members.read", "audit.read", "quota.read", "usage.read"},
		admin.RoleViewer:    {"tenant.read", "keys.read", "tables.read", "members.read", "audit.read", "quota.read", "usage.read"},
		admin.RoleOperator:  {"tenant.read", "keys.read", "tables.read", "members.read", "audit.read", "tenant.suspend", "quota.read", "quota.write", "usage.read"},
		"none":              nil,
	}
	for role, ok := range allowed {
		set := map[string]bool{}
		for _, n := range ok {
			set[n] = true
		}
		for _, c := range calls {
			r := api.call(tokens[role], c.method, c.path, c.body)
			switch {
			case set[c.name]:
				require.Less(t, r.Status, 300, "%s should be allowed %s: %s", role, c.name, r.Raw)
			case role == "none":
				require.Equal(t, http.StatusNotFound, r.Status, "%s %s", role, c.name)
			default:
				require.Equal(t, http.StatusForbidden, r.Status, "%s should be denied %s", role, c.name)
			}
		}
		if role != admin.RoleOwner {
			r := api.call(tokens[role], "DELETE", base, nil)
			require.Contains(t, []int{http.StatusForbidden, http.StatusNotFound}, r.Status, "%s must not delete", role)
		}
	}
}
