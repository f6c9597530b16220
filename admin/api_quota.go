package admin

import (
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/web/server"
)

// apiQuota is a tenant's quota as the management API shows it.
type apiQuota struct {
	Plan       string               `json:"plan"`
	Plans      []string             `json:"plans"`
	Limits     tenant.Limits        `json:"limits"`
	PlanLimits tenant.Limits        `json:"plan_limits"`
	Overrides  tenant.QuotaOverride `json:"overrides"`
	// Use is nil when it could not be measured in time.
	Use           *tenant.Use        `json:"use"`
	UseMeasuredAt *time.Time         `json:"use_measured_at"`
	Utilization   map[string]float64 `json:"utilization"`
	NearLimit     []string           `json:"near_limit"`
}

func (c *Console) apiGetQuota(gc *gin.Context) error {
	ctx := gc.Request.Context()
	t := accessFrom(gc).Tenant
	plans := c.store.Plans()
	q, use, at, err := c.tenantQuota(ctx, t)
	if err != nil {
		return err
	}
	planLimits, _ := plans.Limits(q.Plan)
	out := apiQuota{Plan: q.Plan, Plans: planNames(plans), Limits: q.Limits, PlanLimits: planLimits, Overrides: q.Override,
		Utilization: map[string]float64{}, NearLimit: []string{}}
	if use != nil {
		out.Use, out.UseMeasuredAt = use, &at
		out.Utilization = tenant.Utilization(*use, q.Limits)
		out.NearLimit = nearLimit(out.Utilization)
	}
	gc.JSON(http.StatusOK, out)
	return nil
}

// apiPutQuota replaces a tenant's overrides and, when plan is given, its
// plan (platform operators only). Every refused field is named.
func (c *Console) apiPutQuota(gc *gin.Context) error {
	var in struct {
		Plan      string               `json:"plan"`
		Overrides tenant.QuotaOverride `json:"overrides"`
	}
	if err := bind(gc, &in); err != nil {
		return err
	}
	a := accessFrom(gc)
	plans := c.store.Plans()
	var problems []tenant.FieldProblem
	if _, ok := plans[in.Plan]; in.Plan != "" && in.Plan != a.Tenant.Plan && !ok {
		problems = append(problems, tenant.FieldProblem{Path: "plan",
			Message: "unknown plan " + in.Plan + "; plans: " + strings.Join(planNames(plans), ", ")})
	}
	errs := checkOverride(in.Overrides)
	for _, f := range quotaFields {
		if msg := errs[f.Key]; msg != "" {
			problems = append(problems, tenant.FieldProblem{Path: "overrides." + f.Key, Message: f.Key + " " + msg})
		}
	}
	if len(problems) > 0 {
		e := server.NewError(http.StatusUnprocessableEntity, "invalid", problems[0].Message)
		e.Extra = map[string]any{"field": problems[0].Path, "problems": problems}
		return e
	}
	if in.Plan == a.Tenant.Plan {
		in.Plan = "" // keep, even if the operator no longer configures it
	}
	if err := c.store.SetQuota(gc.Request.Context(), a.Tenant.ID, in.Plan, in.Overrides, plans, c.actor(gc)); err != nil {
		return err
	}
	t, err := c.store.TenantByID(gc.Request.Context(), a.Tenant.ID)
	if err != nil {
		return err
	}
	a.Tenant = t
	gc.Set(accessKey, a)
	return c.apiGetQuota(gc)
}
