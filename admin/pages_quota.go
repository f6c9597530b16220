package admin

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/web/ui/components"
	"github.com/syncplane/syncplane/web/ui/pages/tenants"
)

// Waiting for current use: a page renders without it rather than hang on a
// slow measurement (which still completes and is cached for the next view).
const (
	useWait = 5 * time.Second
	// useFresh is the age of use a single tenant's pages accept; lists
	// accept the cache's minute.
	useFresh     = 10 * time.Second
	listNearWait = 2 * time.Second
	// listNearMax bounds the tenants of one list view whose quotas are
	// checked; an operator's list of every tenant flags the first ones.
	listNearMax = 100
)

// currentUse is the tenant's cached use, waiting at most useWait.
func (c *Console) currentUse(ctx context.Context, t *tenant.Tenant) (tenant.Use, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, useWait)
	defer cancel()
	return c.uses.get(ctx, t, useFresh)
}

// tenantQuota reads t's quota and, unless ctx ends first, its use (nil
// when unknown; the failure is logged).
func (c *Console) tenantQuota(ctx context.Context, t *tenant.Tenant) (*tenant.Quota, *tenant.Use, time.Time, error) {
	q, err := c.store.Quota(ctx, t, c.store.Plans())
	if err != nil {
		return nil, nil, time.Time{}, err
	}
	use, at, err := c.currentUse(ctx, t)
	if err != nil {
		c.log.WarnContext(ctx, "measure tenant use", "tenant", string(t.Slug), "err", err)
		return q, nil, time.Time{}, nil
	}
	return q, &use, at, nil
}

func (c *Console) quotaView(gc *gin.Context) (tenants.QuotaView, error) {
	ctx := gc.Request.Context()
	a := accessFrom(gc)
	plans := c.store.Plans()
	q, use, at, err := c.tenantQuota(ctx, a.Tenant)
	if err != nil {
		return tenants.QuotaView{}, err
	}
	v := tenants.QuotaView{Page: c.tenantPage(gc, "Quotas", "quota"), Plan: q.Plan, Selected: q.Plan,
		Plans: planNames(plans), Rows: quotaRows(q, plans, use), Measured: at, CanWrite: c.allows(a, ActQuotaWrite)}
	if !slices.Contains(v.Plans, q.Plan) {
		// A plan the operator no longer configures stays selectable as "keep".
		v.Plans = append([]string{q.Plan}, v.Plans...)
	}
	if use == nil {
		v.UseError = "Current use is unavailable right now; try again in a moment."
	}
	return v, nil
}

func (c *Console) quotaPage(gc *gin.Context) error {
	v, err := c.quotaView(gc)
	if err != nil {
		return err
	}
	return c.render(gc, http.StatusOK, tenants.Quota(v))
}

// quotaSave changes a tenant's plan and overrides (platform operators).
func (c *Console) quotaSave(gc *gin.Context) error {
	a := accessFrom(gc)
	plans := c.store.Plans()
	var o tenant.QuotaOverride
	errs := components.FieldErrors{}
	for _, f := range quotaFields {
		if msg := f.parse(gc.PostForm(f.Key), &o); msg != "" {
			errs[f.Key] = msg
		}
	}
	plan := strings.TrimSpace(gc.PostForm("plan"))
	switch _, known := plans[plan]; {
	case plan == a.Tenant.Plan:
		plan = "" // keep, even if the operator no longer configures it
	case plan == "":
		errs["plan"] = "choose a plan"
	case !known:
		errs["plan"] = "choose one of the plans: " + strings.Join(planNames(plans), ", ")
	}
	if len(errs) == 0 {
		err := c.store.SetQuota(gc.Request.Context(), a.Tenant.ID, plan, o, plans, c.actor(gc))
		if errs = formErrors(err); errs == nil && err != nil {
			return err
		}
	}
	if len(errs) > 0 {
		v, err := c.quotaView(gc)
		if err != nil {
			return err
		}
		v.Errors = errs
		if p := strings.TrimSpace(gc.PostForm("plan")); p != "" {
			v.Selected = p
		}
		for i := range v.Rows {
			v.Rows[i].Override = strings.TrimSpace(gc.PostForm(v.Rows[i].Key))
		}
		return c.render(gc, http.StatusUnprocessableEntity, tenants.Quota(v))
	}
	msg := "Quotas saved."
	if plan != "" {
		msg = "Quotas saved: the tenant is on the " + plan + " plan."
	}
	c.flash(gc, "ok", msg)
	return c.redirect(gc, "/console/t/"+string(a.Tenant.Slug)+"/quota")
}

// nearLimits returns, for the first listNearMax of rows, the quotas at
// tenant.NearLimit or more, filling Row.NearLimit. Tenants whose use is not
// measured within listNearWait stay unflagged for this view.
func (c *Console) nearLimits(ctx context.Context, rows []tenants.Row, bySlug map[string]*tenant.Tenant) {
	ctx, cancel := context.WithTimeout(ctx, listNearWait)
	defer cancel()
	plans := c.store.Plans()
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range rows[:min(len(rows), listNearMax)] {
		t := bySlug[rows[i].Slug]
		if t == nil || (t.State != tenant.StateActive && t.State != tenant.StateSuspended) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				return
			}
			q, err := c.store.Quota(ctx, t, plans)
			if err != nil || len(tenant.Utilization(tenant.Use{}, q.Limits)) == 0 {
				return // unreadable, or nothing metered is limited
			}
			use, _, err := c.uses.get(ctx, t, time.Minute)
			if err != nil {
				return
			}
			if near := nearLimit(tenant.Utilization(use, q.Limits)); len(near) > 0 {
				rows[i].NearLimit = near
			}
		}()
	}
	wg.Wait()
}
