package admin

import (
	_ "embed"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/web/server"
)

//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI returns the management API's OpenAPI 3 document.
func OpenAPI() []byte { return openAPIDoc }

// The management API: the console's operations as JSON under /api/v1,
// authenticated with a personal access token or a tenant secret key, and
// authorized by the same middleware and policy as the console.
func (c *Console) mountAPI(g *gin.RouterGroup) {
	g.GET("/openapi.json", func(gc *gin.Context) { gc.Data(http.StatusOK, "application/json", openAPIDoc) })
	a := g.Group("", c.apiAuth)
	a.GET("/tenants", c.api(c.apiListTenants))
	a.POST("/tenants", c.api(c.apiCreateTenant))
	a.GET("/usage", c.api(c.apiAllUsage))
	can := func(act Action) gin.HandlerFunc { return c.authorize(act, c.apiRefusal) }
	t := a.Group("/tenants/:slug")
	t.GET("", can(ActTenantRead), c.api(c.apiGetTenant))
	t.PATCH("", can(ActTenantSettings), c.api(c.apiPatchTenant))
	t.DELETE("", can(ActTenantDelete), c.api(c.apiDeleteTenant))
	t.POST("/suspend", can(ActTenantSuspend), c.api(c.apiSetState(tenant.StateSuspended)))
	t.POST("/resume", can(ActTenantSuspend), c.api(c.apiSetState(tenant.StateActive)))
	t.GET("/keys", can(ActKeysRead), c.api(c.apiListKeys))
	t.POST("/keys", can(ActKeysWrite), c.api(c.apiCreateKey))
	t.DELETE("/keys/:id", can(ActKeysWrite), c.api(c.apiRevokeKey))
	t.GET("/auth", can(ActAuthRead), c.api(c.apiGetAuth))
	t.PUT("/auth", can(ActAuthWrite), c.api(c.apiPutAuth))
	t.POST("/auth/test", can(ActAuthTest), c.api(c.apiTestToken))
	t.GET("/tables", can(ActTablesRead), c.api(c.apiGetTables))
	t.POST("/tables", can(ActTablesWrite), c.api(c.apiApplyTables))
	t.GET("/tables/versions", can(ActTablesRead), c.api(c.apiTableVersions))
	t.GET("/members", can(ActMembersRead), c.api(c.apiListMembers))
	t.PUT("/members/:account", can(ActMembersWrite), c.api(c.apiSetRole))
	t.DELETE("/members/:account", can(ActMembersWrite), c.api(c.apiRemoveMember))
	t.POST("/invitations", can(ActMembersWrite), c.api(c.apiInvite))
	t.GET("/quota", can(ActQuotaRead), c.api(c.apiGetQuota))
	t.PUT("/quota", can(ActQuotaWrite), c.api(c.apiPutQuota))
	t.GET("/usage", can(ActUsageRead), c.api(c.apiTenantUsage))
	t.GET("/audit", can(ActAuditRead), c.api(c.apiAudit))
	t.GET("/devices", can(ActDevicesRead), c.api(c.apiListDevices))
	t.POST("/devices/retire", can(ActDevicesWrite), c.api(c.apiEndDevice(true)))
	t.POST("/devices/revoke", can(ActDevicesWrite), c.api(c.apiEndDevice(false)))
}

// apiAuth resolves the bearer token: a personal access token (sp_pat_) or
// a tenant secret key (sp_sk_). Publishable keys never reach this API.
func (c *Console) apiAuth(gc *gin.Context) {
	raw, ok := strings.CutPrefix(gc.GetHeader("Authorization"), "Bearer ")
	raw = strings.TrimSpace(raw)
	if !ok || raw == "" {
		server.RenderError(gc, server.NewError(http.StatusUnauthorized, "unauthenticated",
			"send a personal access token or a tenant secret key as Authorization: Bearer <token>"))
		return
	}
	ctx := gc.Request.Context()
	switch {
	case strings.HasPrefix(raw, AccessTokenPrefix):
		a, err := c.accounts.LookupAccessToken(ctx, raw)
		if err != nil {
			if errors.Is(err, ErrInvalidAccessToken) || errors.Is(err, tenant.ErrNotFound) {
				server.RenderError(gc, server.NewError(http.StatusUnauthorized, "unauthenticated", "the access token is unknown or revoked"))
				return
			}
			server.Abort(gc, "internal_error", err)
			return
		}
		gc.Set(principalKey, &principal{Account: a})
	case tenant.KeyKindOf(raw) == tenant.KeySecret:
		rec, err := c.store.LookupKey(ctx, raw)
		if err != nil && !errors.Is(err, tenant.ErrInvalidAPIKey) {
			server.Abort(gc, "internal_error", err)
			return
		}
		if err != nil || rec.Revoked {
			server.RenderError(gc, server.NewError(http.StatusUnauthorized, "unauthenticated", "the secret key is unknown or revoked"))
			return
		}
		gc.Set(principalKey, &principal{KeyTenantID: rec.TenantID, KeyDisplay: tenant.KeyDisplay(raw)})
	case tenant.KeyKindOf(raw) == tenant.KeyPublishable:
		server.RenderError(gc, server.NewError(http.StatusUnauthorized, "unauthenticated",
			"publishable keys only identify a tenant to the sync API; use a secret key or a personal access token"))
		return
	default:
		server.RenderError(gc, server.NewError(http.StatusUnauthorized, "unauthenticated", "the token is not a Syncplane access token or secret key"))
		return
	}
	gc.Next()
}

func (c *Console) apiRefusal(gc *gin.Context, err error) {
	switch {
	case errors.Is(err, errNoTenant):
		server.RenderError(gc, server.NewError(http.StatusNotFound, "not_found", "no such tenant"))
	case errors.Is(err, errForbidden):
		server.RenderError(gc, server.NewError(http.StatusForbidden, "forbidden", "your role in this tenant does not allow this"))
	default:
		server.Abort(gc, "internal_error", err)
	}
}

// api adapts a JSON handler; domain errors map to statuses in one place.
func (c *Console) api(h func(gc *gin.Context) error) gin.HandlerFunc {
	return func(gc *gin.Context) {
		err := h(gc)
		if err == nil {
			return
		}
		var ve *tenant.ValidationError
		var de *tenant.DefinitionError
		var se *tenant.SchemaChangeError
		switch {
		case errors.As(err, &ve):
			e := server.NewError(http.StatusUnprocessableEntity, "invalid", ve.Message)
			e.Extra = map[string]any{"field": ve.Field}
			err = e
		case errors.As(err, &de):
			e := server.NewError(http.StatusUnprocessableEntity, "invalid_definition", "the table definition has problems")
			e.Extra = map[string]any{"problems": de.Problems}
			err = e
		case errors.As(err, &se):
			err = server.NewError(http.StatusConflict, "change_refused", se.Error())
		case errors.Is(err, tenant.ErrNotFound):
			err = server.NewError(http.StatusNotFound, "not_found", "not found")
		case errors.Is(err, tenant.ErrTenantExists):
			e := server.NewError(http.StatusConflict, "tenant_exists", "a tenant with this slug exists")
			e.Extra = map[string]any{"field": "slug"}
			err = e
		case errors.Is(err, ErrLastOwner):
			err = server.NewError(http.StatusConflict, "last_owner", "a tenant keeps at least one owner")
		case errors.Is(err, errForbidden):
			err = server.NewError(http.StatusForbidden, "forbidden", "not allowed")
		}
		server.Abort(gc, "internal_error", err)
	}
}

// bind decodes a JSON body, naming the problem.
func bind(gc *gin.Context, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(gc.Writer, gc.Request.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return server.NewError(http.StatusBadRequest, "bad_request", "invalid JSON body: "+strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

type apiTenant struct {
	Slug            string    `json:"slug"`
	Name            string    `json:"name"`
	State           string    `json:"state"`
	WireSchema      string    `json:"wire_schema"`
	Placement       string    `json:"placement"`
	Plan            string    `json:"plan"`
	WatchEnabled    bool      `json:"watch_enabled"`
	RetainedBundles int       `json:"retained_bundles"`
	Role            string    `json:"role,omitempty"`
	CreatedAt       time.Time `json:"created_at"`
}

func toAPITenant(t *tenant.Tenant, role string) apiTenant {
	return apiTenant{Slug: string(t.Slug), Name: t.Name, State: string(t.State), WireSchema: t.WireSchema,
		Placement: t.Placement, Plan: t.Plan, WatchEnabled: t.WatchEnabled, RetainedBundles: t.RetainedBundles,
		Role: role, CreatedAt: t.CreatedAt}
}

func (c *Console) apiListTenants(gc *gin.Context) error {
	ctx := gc.Request.Context()
	p := principalFrom(gc)
	out := []apiTenant{}
	if p.Account == nil {
		t, err := c.store.TenantByID(ctx, p.KeyTenantID)
		if err != nil {
			return err
		}
		out = append(out, toAPITenant(t, string(secretKeyRole)))
		gc.JSON(http.StatusOK, gin.H{"tenants": out})
		return nil
	}
	all, err := c.store.ListTenants(ctx)
	if err != nil {
		return err
	}
	roles, err := c.accounts.TenantRoles(ctx, p.Account.ID)
	if err != nil {
		return err
	}
	for i := range all {
		role := string(roles[all[i].ID])
		if role == "" {
			if !p.Account.Operator {
				continue
			}
			role = string(RoleOperator)
		}
		out = append(out, toAPITenant(&all[i], role))
	}
	gc.JSON(http.StatusOK, gin.H{"tenants": out})
	return nil
}

func (c *Console) apiCreateTenant(gc *gin.Context) error {
	var in struct {
		Slug       string `json:"slug"`
		Name       string `json:"name"`
		WireSchema string `json:"wire_schema"`
	}
	if err := bind(gc, &in); err != nil {
		return err
	}
	p := principalFrom(gc)
	if p.Account == nil {
		return server.NewError(http.StatusForbidden, "forbidden", "tenants are created with a personal access token, not a secret key")
	}
	if in.Name == "" {
		in.Name = in.Slug
	}
	t, err := c.createTenant(gc, in.Slug, in.Name, in.WireSchema, p)
	if err != nil {
		return err
	}
	gc.JSON(http.StatusCreated, toAPITenant(t, string(RoleOwner)))
	return nil
}

func (c *Console) apiGetTenant(gc *gin.Context) error {
	a := accessFrom(gc)
	gc.JSON(http.StatusOK, toAPITenant(a.Tenant, a.label()))
	return nil
}

// apiPatchTenant changes the given settings (owners, admins).
func (c *Console) apiPatchTenant(gc *gin.Context) error {
	var in tenant.Settings
	if err := bind(gc, &in); err != nil {
		return err
	}
	if in == (tenant.Settings{}) {
		return server.NewError(http.StatusUnprocessableEntity, "invalid", "send at least one of name, watch_enabled, retained_bundles")
	}
	if in.Name != nil {
		name := strings.TrimSpace(*in.Name)
		in.Name = &name
	}
	a := accessFrom(gc)
	t, err := c.store.UpdateTenant(gc.Request.Context(), string(a.Tenant.Slug), in, c.actor(gc))
	if err != nil {
		return err
	}
	gc.JSON(http.StatusOK, toAPITenant(t, a.label()))
	return nil
}

func (c *Console) apiDeleteTenant(gc *gin.Context) error {
	if err := c.store.DeleteTenant(gc.Request.Context(), string(accessFrom(gc).Tenant.Slug), c.actor(gc)); err != nil {
		return err
	}
	gc.Status(http.StatusNoContent)
	return nil
}

func (c *Console) apiSetState(state tenant.State) func(gc *gin.Context) error {
	return func(gc *gin.Context) error {
		a := accessFrom(gc)
		t, err := c.store.SetState(gc.Request.Context(), string(a.Tenant.Slug), state, c.actor(gc))
		if err != nil {
			return err
		}
		gc.JSON(http.StatusOK, toAPITenant(t, a.label()))
		return nil
	}
}

type apiKey struct {
	ID         int64      `json:"id"`
	Kind       string     `json:"kind"`
	Label      string     `json:"label"`
	Display    string     `json:"display"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

func toAPIKey(k *tenant.APIKey) apiKey {
	return apiKey{ID: k.ID, Kind: string(k.Kind), Label: k.Label, Display: k.Display, CreatedAt: k.CreatedAt,
		LastUsedAt: k.LastUsedAt, RevokedAt: k.RevokedAt}
}

func (c *Console) apiListKeys(gc *gin.Context) error {
	keys, err := c.store.ListKeys(gc.Request.Context(), accessFrom(gc).Tenant.ID)
	if err != nil {
		return err
	}
	out := make([]apiKey, len(keys))
	for i := range keys {
		out[i] = toAPIKey(&keys[i])
	}
	gc.JSON(http.StatusOK, gin.H{"keys": out})
	return nil
}

func (c *Console) apiCreateKey(gc *gin.Context) error {
	var in struct {
		Kind  string `json:"kind"`
		Label string `json:"label"`
	}
	if err := bind(gc, &in); err != nil {
		return err
	}
	secret, k, err := c.store.CreateKey(gc.Request.Context(), accessFrom(gc).Tenant.ID, tenant.KeyKind(in.Kind), in.Label, c.actor(gc))
	if err != nil {
		return err
	}
	gc.JSON(http.StatusCreated, gin.H{"key": toAPIKey(k), "secret": secret})
	return nil
}

func (c *Console) apiRevokeKey(gc *gin.Context) error {
	id, err := strconv.ParseInt(gc.Param("id"), 10, 64)
	if err != nil {
		return tenant.ErrNotFound
	}
	if err := c.store.RevokeKey(gc.Request.Context(), accessFrom(gc).Tenant.ID, id, c.actor(gc)); err != nil {
		return err
	}
	gc.Status(http.StatusNoContent)
	return nil
}

func (c *Console) apiGetAuth(gc *gin.Context) error {
	s, updated, err := c.store.Auth(gc.Request.Context(), accessFrom(gc).Tenant.ID)
	if errors.Is(err, tenant.ErrNotFound) {
		return server.NewError(http.StatusNotFound, "not_found", "end-user auth is not configured")
	}
	if err != nil {
		return err
	}
	gc.JSON(http.StatusOK, gin.H{"settings": s.Redacted(), "updated_at": updated})
	return nil
}

func (c *Console) apiPutAuth(gc *gin.Context) error {
	var s tenant.AuthSettings
	if err := bind(gc, &s); err != nil {
		return err
	}
	a := accessFrom(gc)
	if err := c.store.SetAuth(gc.Request.Context(), a.Tenant.ID, s, c.actor(gc)); err != nil {
		return err
	}
	return c.apiGetAuth(gc)
}

func (c *Console) apiTestToken(gc *gin.Context) error {
	var in struct {
		Token string `json:"token"`
	}
	if err := bind(gc, &in); err != nil {
		return err
	}
	s, _, err := c.store.Auth(gc.Request.Context(), accessFrom(gc).Tenant.ID)
	if errors.Is(err, tenant.ErrNotFound) {
		return server.NewError(http.StatusConflict, "not_configured", "configure end-user auth before testing tokens")
	}
	if err != nil {
		return err
	}
	ok, msg := c.testToken(gc.Request.Context(), s, in.Token)
	gc.JSON(http.StatusOK, gin.H{"accepted": ok, "message": msg})
	return nil
}

type apiVersion struct {
	Version    int               `json:"version"`
	Definition tenant.Definition `json:"definition"`
	Breaking   bool              `json:"breaking"`
	AppliedBy  string            `json:"applied_by"`
	AppliedAt  time.Time         `json:"applied_at"`
}

func toAPIVersion(v *tenant.TableVersion) apiVersion {
	return apiVersion{Version: v.Version, Definition: v.Schema.Definition(), Breaking: v.Breaking, AppliedBy: v.AppliedBy, AppliedAt: v.AppliedAt}
}

func (c *Console) apiGetTables(gc *gin.Context) error {
	v, err := c.store.CurrentTables(gc.Request.Context(), accessFrom(gc).Tenant.ID)
	if errors.Is(err, tenant.ErrNoDefinition) {
		return server.NewError(http.StatusNotFound, "not_found", "no table definition applied yet")
	}
	if err != nil {
		return err
	}
	gc.JSON(http.StatusOK, toAPIVersion(v))
	return nil
}

func (c *Console) apiTableVersions(gc *gin.Context) error {
	vs, err := c.store.TableVersions(gc.Request.Context(), accessFrom(gc).Tenant.ID)
	if err != nil {
		return err
	}
	out := make([]apiVersion, len(vs))
	for i := range vs {
		out[i] = toAPIVersion(&vs[i])
	}
	gc.JSON(http.StatusOK, gin.H{"versions": out})
	return nil
}

func (c *Console) apiApplyTables(gc *gin.Context) error {
	var in struct {
		Definition    json.RawMessage `json:"definition"`
		AllowBreaking bool            `json:"allow_breaking"`
		DryRun        bool            `json:"dry_run"`
	}
	if err := bind(gc, &in); err != nil {
		return err
	}
	def, err := tenant.ParseDefinition(in.Definition)
	if err != nil {
		return err
	}
	res, err := c.store.ApplyTables(gc.Request.Context(), accessFrom(gc).Tenant.ID, def,
		tenant.ApplyOptions{AllowBreaking: in.AllowBreaking, DryRun: in.DryRun}, c.actor(gc))
	if err != nil {
		return err
	}
	changes := res.Changes
	if changes == nil {
		changes = []tenant.Change{}
	}
	ddl := res.DDL
	if ddl == nil {
		ddl = []string{}
	}
	gc.JSON(http.StatusOK, gin.H{"version": res.Version, "applied": res.Applied, "changes": changes, "ddl": ddl})
	return nil
}

type apiMember struct {
	AccountID int64     `json:"account_id"`
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

func (c *Console) apiListMembers(gc *gin.Context) error {
	ms, err := c.accounts.Members(gc.Request.Context(), accessFrom(gc).Tenant.ID)
	if err != nil {
		return err
	}
	out := make([]apiMember, len(ms))
	for i, m := range ms {
		out[i] = apiMember{AccountID: m.AccountID, Email: m.Email, Role: string(m.Role), CreatedAt: m.CreatedAt}
	}
	gc.JSON(http.StatusOK, gin.H{"members": out})
	return nil
}

func (c *Console) apiSetRole(gc *gin.Context) error {
	var in struct {
		Role string `json:"role"`
	}
	if err := bind(gc, &in); err != nil {
		return err
	}
	a := accessFrom(gc)
	id, err := strconv.ParseInt(gc.Param("account"), 10, 64)
	if err != nil {
		return tenant.ErrNotFound
	}
	role, err := ParseRole(in.Role)
	if err != nil {
		return err
	}
	if err := c.canGrant(a, role); err != nil {
		return err
	}
	if err := c.guardOwner(gc, a, id); err != nil {
		return err
	}
	if err := c.accounts.SetRole(gc.Request.Context(), a.Tenant.ID, id, role, c.actor(gc)); err != nil {
		return err
	}
	return c.apiListMembers(gc)
}

func (c *Console) apiRemoveMember(gc *gin.Context) error {
	a := accessFrom(gc)
	id, err := strconv.ParseInt(gc.Param("account"), 10, 64)
	if err != nil {
		return tenant.ErrNotFound
	}
	if err := c.guardOwner(gc, a, id); err != nil {
		return err
	}
	if err := c.accounts.RemoveMember(gc.Request.Context(), a.Tenant.ID, id, c.actor(gc)); err != nil {
		return err
	}
	gc.Status(http.StatusNoContent)
	return nil
}

func (c *Console) apiInvite(gc *gin.Context) error {
	var in struct {
		Email string `json:"email"`
		Role  string `json:"role"`
	}
	if err := bind(gc, &in); err != nil {
		return err
	}
	a := accessFrom(gc)
	role, err := ParseRole(in.Role)
	if err != nil {
		return err
	}
	if err := c.canGrant(a, role); err != nil {
		return err
	}
	var inviter int64
	if p := principalFrom(gc); p.Account != nil {
		inviter = p.Account.ID
	}
	tok, inv, err := c.accounts.CreateInvitation(gc.Request.Context(), in.Email, a.Tenant.ID, role, inviter, c.actor(gc))
	if err != nil {
		return err
	}
	gc.JSON(http.StatusCreated, gin.H{"email": inv.Email, "role": string(inv.Role), "expires_at": inv.ExpiresAt,
		"url": c.opts.PublicURL + "/console/invite/" + tok})
	return nil
}

type apiAuditEntry struct {
	ID         int64           `json:"id"`
	At         time.Time       `json:"at"`
	Actor      string          `json:"actor"`
	Action     string          `json:"action"`
	Target     string          `json:"target"`
	Detail     json.RawMessage `json:"detail"`
	RemoteAddr string          `json:"remote_addr"`
}

func (c *Console) apiAudit(gc *gin.Context) error {
	limit, _ := strconv.Atoi(gc.Query("limit"))
	before, _ := strconv.ParseInt(gc.Query("before"), 10, 64)
	es, err := c.auditEntries(gc, accessFrom(gc).Tenant.ID, AuditFilter{Action: gc.Query("action"), Actor: gc.Query("actor"),
		Before: before, Limit: limit})
	if err != nil {
		return err
	}
	out := make([]apiAuditEntry, len(es))
	for i, e := range es {
		out[i] = apiAuditEntry{ID: e.ID, At: e.At, Actor: e.Actor, Action: e.Action, Target: e.Target, Detail: e.Detail, RemoteAddr: e.RemoteAddr}
	}
	gc.JSON(http.StatusOK, gin.H{"entries": out})
	return nil
}

type apiDevice struct {
	UserID        string     `json:"user_id"`
	SourceID      string     `json:"source_id"`
	State         string     `json:"state"`
	FirstSeenAt   time.Time  `json:"first_seen_at"`
	LastSeenAt    time.Time  `json:"last_seen_at"`
	BundlesPushed int64      `json:"bundles_pushed"`
	ReplacedBy    string     `json:"replaced_by_source_id,omitempty"`
	RetireReason  string     `json:"retire_reason,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	LastErrorAt   *time.Time `json:"last_error_at,omitempty"`
}

func (c *Console) apiListDevices(gc *gin.Context) error {
	srcs, err := c.sync.Sources(gc.Request.Context(), accessFrom(gc).Tenant, SourceFilter{User: gc.Query("user")})
	if err != nil {
		return err
	}
	out := make([]apiDevice, len(srcs))
	for i, s := range srcs {
		out[i] = apiDevice{UserID: s.UserID, SourceID: s.SourceID, State: s.State, FirstSeenAt: s.FirstSeen,
			LastSeenAt: s.LastSeen, BundlesPushed: s.BundlesPushed, ReplacedBy: s.ReplacedBy, RetireReason: s.RetireReason,
			LastError: s.LastError, LastErrorAt: s.LastErrorAt}
	}
	gc.JSON(http.StatusOK, gin.H{"devices": out})
	return nil
}

// apiEndDevice retires (replace) or revokes a device.
func (c *Console) apiEndDevice(replace bool) func(gc *gin.Context) error {
	return func(gc *gin.Context) error { return c.apiEndDeviceWith(gc, replace) }
}

func (c *Console) apiEndDeviceWith(gc *gin.Context, replace bool) error {
	var in struct {
		UserID   string `json:"user_id"`
		SourceID string `json:"source_id"`
	}
	if err := bind(gc, &in); err != nil {
		return err
	}
	a := accessFrom(gc)
	by := c.actor(gc)
	verb, action := "retired", "device.retire"
	if !replace {
		verb, action = "revoked", "device.revoke"
	}
	changed, err := c.sync.RetireSource(gc.Request.Context(), a.Tenant, in.UserID, in.SourceID, verb+" through the API by "+by.Name, replace)
	if err != nil {
		return err
	}
	if changed {
		if err := c.auditOnly(gc, a.Tenant.ID, action, in.UserID+"/"+in.SourceID); err != nil {
			return err
		}
	}
	gc.Status(http.StatusNoContent)
	return nil
}
