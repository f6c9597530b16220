package admin

import (
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/web/ui/components"
	"github.com/syncplane/syncplane/web/ui/layout"
	"github.com/syncplane/syncplane/web/ui/pages/tenants"
)

func (c *Console) mountTenantPages(u *gin.RouterGroup) {
	u.GET("/tenants", c.page(c.tenantList))
	u.GET("/tenants/new", c.page(c.tenantNewPage))
	u.POST("/tenants", c.page(c.tenantCreate))

	t := u.Group("/t/:slug")
	can := func(act Action) gin.HandlerFunc { return c.authorize(act, c.pageRefusal) }
	t.GET("", can(ActTenantRead), c.page(c.tenantOverview))
	t.GET("/settings", can(ActTenantRead), c.page(c.tenantSettings))
	t.POST("/settings", can(ActTenantSettings), c.page(c.tenantSettingsSave))
	t.POST("/suspend", can(ActTenantSuspend), c.page(c.tenantSetState(tenant.StateSuspended)))
	t.POST("/resume", can(ActTenantSuspend), c.page(c.tenantSetState(tenant.StateActive)))
	t.POST("/delete", can(ActTenantDelete), c.page(c.tenantDelete))

	t.GET("/keys", can(ActKeysRead), c.page(c.keysPage))
	t.POST("/keys", can(ActKeysWrite), c.page(c.keyCreate))
	t.POST("/keys/:id/revoke", can(ActKeysWrite), c.page(c.keyRevoke))

	t.GET("/auth", can(ActAuthRead), c.page(c.authPage))
	t.POST("/auth", can(ActAuthWrite), c.page(c.authSave))
	t.POST("/auth/test", can(ActAuthTest), c.page(c.authTest))
	t.POST("/auth/mint", can(ActAuthMint), c.page(c.authMint))

	t.GET("/tables", can(ActTablesRead), c.page(c.tablesPage))
	t.POST("/tables", can(ActTablesWrite), c.page(c.tablesSubmit))

	t.GET("/members", can(ActMembersRead), c.page(c.membersPage))
	t.POST("/members/invite", can(ActMembersWrite), c.page(c.memberInvite))
	t.POST("/members/:account/role", can(ActMembersWrite), c.page(c.memberRole))
	t.POST("/members/:account/remove", can(ActMembersWrite), c.page(c.memberRemove))
	t.POST("/invitations/:id/cancel", can(ActMembersWrite), c.page(c.invitationCancel))

	t.GET("/quota", can(ActQuotaRead), c.page(c.quotaPage))
	t.POST("/quota", can(ActQuotaWrite), c.page(c.quotaSave))
	t.GET("/usage", can(ActUsageRead), c.page(c.usagePage))
	t.GET("/usage/export", can(ActUsageRead), c.page(c.consoleUsageExport))

	t.GET("/audit", can(ActAuditRead), c.page(c.auditPage))
	t.GET("/devices", can(ActDevicesRead), c.page(c.devicesPage))
	t.POST("/devices/retire", can(ActDevicesWrite), c.page(c.deviceRetire))
	t.POST("/devices/revoke", can(ActDevicesWrite), c.page(c.deviceRevoke))
	t.GET("/data", can(ActDevicesRead), c.page(c.dataPage))
}

// tenantPage is the shell props of a page inside the request's tenant.
func (c *Console) tenantPage(gc *gin.Context, title, section string) layout.Page {
	a := accessFrom(gc)
	return layout.Page{Title: title + " · " + a.Tenant.Name, Section: section, Flashes: c.popFlashes(gc),
		Tenant: &layout.TenantNav{Slug: string(a.Tenant.Slug), Name: a.Tenant.Name, State: string(a.Tenant.State), Role: a.label()}}
}

func (c *Console) tenantList(gc *gin.Context) error {
	ctx := gc.Request.Context()
	p := principalFrom(gc)
	all, err := c.store.ListTenants(ctx)
	if err != nil {
		return err
	}
	roles, err := c.accounts.TenantRoles(ctx, p.Account.ID)
	if err != nil {
		return err
	}
	v := tenants.ListView{Query: strings.TrimSpace(gc.Query("q")), Sort: gc.DefaultQuery("sort", "slug"), Flashes: c.popFlashes(gc)}
	q := strings.ToLower(v.Query)
	bySlug := map[string]*tenant.Tenant{}
	for i, t := range all {
		role := string(roles[t.ID])
		if role == "" {
			if !p.Account.Operator {
				continue
			}
			role = string(RoleOperator)
		}
		if q != "" && !strings.Contains(string(t.Slug), q) && !strings.Contains(strings.ToLower(t.Name), q) {
			continue
		}
		v.Rows = append(v.Rows, tenants.Row{Slug: string(t.Slug), Name: t.Name, State: string(t.State),
			WireSchema: t.WireSchema, Role: role, Created: t.CreatedAt})
		bySlug[string(t.Slug)] = &all[i]
	}
	sort.SliceStable(v.Rows, func(i, j int) bool {
		switch v.Sort {
		case "name":
			return strings.ToLower(v.Rows[i].Name) < strings.ToLower(v.Rows[j].Name)
		case "created":
			return v.Rows[i].Created.After(v.Rows[j].Created)
		}
		return v.Rows[i].Slug < v.Rows[j].Slug
	})
	c.nearLimits(ctx, v.Rows, bySlug)
	return c.render(gc, http.StatusOK, tenants.List(v))
}

func (c *Console) tenantNewPage(gc *gin.Context) error {
	return c.render(gc, http.StatusOK, tenants.New(tenants.NewView{WireSchema: "app"}))
}

func (c *Console) tenantCreate(gc *gin.Context) error {
	ctx := gc.Request.Context()
	p := principalFrom(gc)
	v := tenants.NewView{Slug: strings.TrimSpace(gc.PostForm("slug")), Name: strings.TrimSpace(gc.PostForm("name")),
		WireSchema: strings.TrimSpace(gc.PostForm("wire_schema"))}
	t, err := c.createTenant(gc, v.Slug, v.Name, v.WireSchema, p)
	if err != nil {
		if v.Errors = formErrors(err); v.Errors == nil {
			return err
		}
		return c.render(gc, http.StatusUnprocessableEntity, tenants.New(v))
	}
	_ = ctx
	c.flash(gc, "ok", "Tenant "+t.Name+" is ready. Next: create an API key.")
	return c.redirect(gc, "/console/t/"+string(t.Slug))
}

// createTenant provisions a tenant and makes its creator the owner.
func (c *Console) createTenant(gc *gin.Context, slug, name, wire string, p *principal) (*tenant.Tenant, error) {
	if p == nil || p.Account == nil {
		return nil, errForbidden
	}
	if name == "" {
		return nil, &tenant.ValidationError{Field: "name", Message: "enter a name, such as My App"}
	}
	t, err := c.store.CreateTenant(gc.Request.Context(), tenant.NewTenant{Slug: slug, Name: name, WireSchema: wire}, c.actor(gc))
	if err != nil {
		return nil, err
	}
	if err := c.accounts.AddMember(gc.Request.Context(), t.ID, p.Account.ID, RoleOwner, c.actor(gc)); err != nil {
		return nil, err
	}
	return t, nil
}

func (c *Console) tenantOverview(gc *gin.Context) error {
	ctx := gc.Request.Context()
	a := accessFrom(gc)
	v := tenants.OverviewView{Page: c.tenantPage(gc, "Overview", "overview"), WireSchema: a.Tenant.WireSchema,
		Plan: a.Tenant.Plan, Created: a.Tenant.CreatedAt, GatewayPrefix: c.opts.PublicURL + "/k/"}
	keys, err := c.store.ListKeys(ctx, a.Tenant.ID)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.RevokedAt == nil {
			v.ActiveKeys++
		}
	}
	if s, _, err := c.store.Auth(ctx, a.Tenant.ID); err == nil {
		v.AuthMode = string(s.Mode)
	} else if !errors.Is(err, tenant.ErrNotFound) {
		return err
	}
	if cur, err := c.store.CurrentTables(ctx, a.Tenant.ID); err == nil {
		v.TableVersion, v.Tables = cur.Version, len(cur.Schema.Tables())
	} else if !errors.Is(err, tenant.ErrNoDefinition) && !errors.Is(err, tenant.ErrNotFound) {
		return err
	}
	if u, err := c.sync.Usage(ctx, a.Tenant, 14, c.now()); err != nil {
		c.log.WarnContext(ctx, "read tenant usage", "tenant", string(a.Tenant.Slug), "err", err)
		v.UsageError = "Usage is unavailable right now."
	} else {
		v.ActiveToday, v.Active30d, v.Devices, v.Storage = u.ActiveToday, u.Active30d, u.Devices, humanBytes(u.StorageBytes)
		for _, d := range u.Days {
			label := d.Day.Format("02")
			v.BundleBars = append(v.BundleBars, components.Bar{Label: label, Value: d.Bundles})
			v.RowBars = append(v.RowBars, components.Bar{Label: label, Value: d.Rows})
		}
	}
	if q, use, _, err := c.tenantQuota(ctx, a.Tenant); err != nil {
		c.log.WarnContext(ctx, "read tenant quota", "tenant", string(a.Tenant.Slug), "err", err)
	} else {
		v.QuotaPlan, v.Quotas = q.Plan, quotaRows(q, c.store.Plans(), use)
	}
	return c.render(gc, http.StatusOK, tenants.Overview(v))
}

func (c *Console) settingsView(gc *gin.Context) tenants.SettingsView {
	a := accessFrom(gc)
	return tenants.SettingsView{Page: c.tenantPage(gc, "Settings", "settings"), Slug: string(a.Tenant.Slug),
		Name: a.Tenant.Name, State: string(a.Tenant.State), WireSchema: a.Tenant.WireSchema, Placement: a.Tenant.Placement,
		Plan: a.Tenant.Plan, WatchEnabled: a.Tenant.WatchEnabled, RetainedBundles: strconv.Itoa(a.Tenant.RetainedBundles),
		CanEdit: c.allows(a, ActTenantSettings), CanSuspend: c.allows(a, ActTenantSuspend), CanDelete: c.allows(a, ActTenantDelete)}
}

func (c *Console) tenantSettings(gc *gin.Context) error {
	return c.render(gc, http.StatusOK, tenants.Settings(c.settingsView(gc)))
}

// tenantSettingsSave changes name, watch and retention (owners, admins).
func (c *Console) tenantSettingsSave(gc *gin.Context) error {
	a := accessFrom(gc)
	name := strings.TrimSpace(gc.PostForm("name"))
	// The form sends a hidden "false" before the checkbox: the last wins.
	watchVals := gc.PostFormArray("watch_enabled")
	watch := len(watchVals) > 0 && (watchVals[len(watchVals)-1] == "true" || watchVals[len(watchVals)-1] == "on")
	rawRetained := strings.TrimSpace(gc.PostForm("retained_bundles"))
	errs := components.FieldErrors{}
	retained, err := strconv.Atoi(rawRetained)
	if err != nil {
		errs["retained_bundles"] = "enter a whole number of bundles between 100 and 1000000"
	}
	if len(errs) == 0 {
		var in tenant.Settings
		if name != a.Tenant.Name {
			in.Name = &name
		}
		if watch != a.Tenant.WatchEnabled {
			in.WatchEnabled = &watch
		}
		if retained != a.Tenant.RetainedBundles {
			in.RetainedBundles = &retained
		}
		if in == (tenant.Settings{}) {
			c.flash(gc, "ok", "Nothing changed.")
			return c.redirect(gc, "/console/t/"+string(a.Tenant.Slug)+"/settings")
		}
		_, err := c.store.UpdateTenant(gc.Request.Context(), string(a.Tenant.Slug), in, c.actor(gc))
		if errs = formErrors(err); errs == nil && err != nil {
			return err
		}
	}
	if len(errs) > 0 {
		v := c.settingsView(gc)
		v.Name, v.WatchEnabled, v.RetainedBundles, v.Errors = name, watch, rawRetained, errs
		return c.render(gc, http.StatusUnprocessableEntity, tenants.Settings(v))
	}
	c.flash(gc, "ok", "Settings saved; every replica applies them within seconds.")
	return c.redirect(gc, "/console/t/"+string(a.Tenant.Slug)+"/settings")
}

func (c *Console) tenantSetState(state tenant.State) func(gc *gin.Context) error {
	return func(gc *gin.Context) error {
		a := accessFrom(gc)
		if _, err := c.store.SetState(gc.Request.Context(), string(a.Tenant.Slug), state, c.actor(gc)); err != nil {
			return err
		}
		msg := "Tenant suspended: sync traffic is refused until it is resumed."
		if state == tenant.StateActive {
			msg = "Tenant resumed."
		}
		c.flash(gc, "ok", msg)
		return c.redirect(gc, "/console/t/"+string(a.Tenant.Slug)+"/settings")
	}
}

func (c *Console) tenantDelete(gc *gin.Context) error {
	a := accessFrom(gc)
	if strings.TrimSpace(gc.PostForm("confirm")) != string(a.Tenant.Slug) {
		v := c.settingsView(gc)
		v.Errors = components.FieldErrors{"confirm": "type the slug " + string(a.Tenant.Slug) + " exactly to delete"}
		return c.render(gc, http.StatusUnprocessableEntity, tenants.Settings(v))
	}
	if err := c.store.DeleteTenant(gc.Request.Context(), string(a.Tenant.Slug), c.actor(gc)); err != nil {
		return err
	}
	c.flash(gc, "ok", "Tenant "+string(a.Tenant.Slug)+" was deleted.")
	return c.redirect(gc, "/console/tenants")
}
