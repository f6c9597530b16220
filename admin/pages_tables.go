package admin

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/web/ui/pages/tables"
)

func (c *Console) tablesView(gc *gin.Context) (tables.View, error) {
	a := accessFrom(gc)
	ctx := gc.Request.Context()
	v := tables.View{Page: c.tenantPage(gc, "Tables", "tables"), CanWrite: c.allows(a, ActTablesWrite)}
	versions, err := c.store.TableVersions(ctx, a.Tenant.ID)
	if err != nil {
		return v, err
	}
	for i, tv := range versions {
		if i == 0 {
			cur := tv
			v.Current = &cur
		}
		v.History = append(v.History, tables.Version{Version: tv.Version, Tables: len(tv.Schema.Tables()),
			Breaking: tv.Breaking, AppliedBy: tv.AppliedBy, AppliedAt: tv.AppliedAt})
	}
	if v.Current != nil {
		b, err := json.MarshalIndent(v.Current.Schema.Definition(), "", "  ")
		if err != nil {
			return v, err
		}
		v.Draft = string(b)
	} else {
		v.Draft = starterDefinition
	}
	return v, nil
}

const starterDefinition = `{
  "tables": [
    {
      "name": "todos",
      "sync_key": "id",
      "columns": [
        {"name": "id", "type": "text"},
        {"name": "title", "type": "text"},
        {"name": "done", "type": "integer", "default": 0}
      ]
    }
  ]
}`

func (c *Console) tablesPage(gc *gin.Context) error {
	v, err := c.tablesView(gc)
	if err != nil {
		return err
	}
	return c.render(gc, http.StatusOK, tables.Editor(v))
}

// tablesSubmit previews (dry run) or applies the editor's definition.
func (c *Console) tablesSubmit(gc *gin.Context) error {
	a := accessFrom(gc)
	v, err := c.tablesView(gc)
	if err != nil {
		return err
	}
	v.Draft = gc.PostForm("definition")
	v.Breaking = gc.PostForm("allow_breaking") == "true"
	apply := gc.PostForm("op") == "apply"
	def, err := tenant.ParseDefinition([]byte(v.Draft))
	var res *tenant.ApplyResult
	if err == nil {
		res, err = c.store.ApplyTables(gc.Request.Context(), a.Tenant.ID, def,
			tenant.ApplyOptions{AllowBreaking: v.Breaking, DryRun: !apply}, c.actor(gc))
	}
	var de *tenant.DefinitionError
	var se *tenant.SchemaChangeError
	switch {
	case errors.As(err, &de):
		v.Problems = de.Problems
		if len(def.Tables) > 0 {
			// The document was read: show each problem by its table or column.
			v.Fields, v.Problems = tables.PlaceProblems(def, de.Problems)
		}
		return c.render(gc, http.StatusUnprocessableEntity, tables.Editor(v))
	case errors.As(err, &se):
		v.Error = se.Error()
		// Show the full diff so the refused or breaking lines are visible.
		if plan, perr := c.store.ApplyTables(gc.Request.Context(), a.Tenant.ID, def,
			tenant.ApplyOptions{AllowBreaking: true, DryRun: true}, c.actor(gc)); perr == nil {
			v.Plan = planOf(plan)
		} else {
			v.Plan = &tables.Plan{Changes: append(se.Refused, se.Breaking...)}
		}
		return c.render(gc, http.StatusUnprocessableEntity, tables.Editor(v))
	case err != nil:
		return err
	}
	if apply && res.Applied {
		c.flash(gc, "ok", "Applied table definition version "+itoa(res.Version)+".")
		return c.redirect(gc, "/console/t/"+string(a.Tenant.Slug)+"/tables")
	}
	if apply {
		c.flash(gc, "ok", "Nothing to apply: the definition equals the current version.")
		return c.redirect(gc, "/console/t/"+string(a.Tenant.Slug)+"/tables")
	}
	v.Plan = planOf(res)
	return c.render(gc, http.StatusOK, tables.Editor(v))
}

func planOf(r *tenant.ApplyResult) *tables.Plan {
	p := &tables.Plan{Changes: r.Changes, DDL: r.DDL}
	for _, ch := range r.Changes {
		p.Breaking = p.Breaking || ch.Breaking
		p.Refused = p.Refused || ch.Refused
	}
	return p
}
