package admin

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/web/ui/pages/keys"
)

func (c *Console) keysView(gc *gin.Context) (keys.ListView, error) {
	a := accessFrom(gc)
	list, err := c.store.ListKeys(gc.Request.Context(), a.Tenant.ID)
	if err != nil {
		return keys.ListView{}, err
	}
	v := keys.ListView{Page: c.tenantPage(gc, "API keys", "keys"), CanWrite: c.allows(a, ActKeysWrite)}
	for _, k := range list {
		v.Keys = append(v.Keys, keys.Key{ID: k.ID, Display: k.Display, Kind: string(k.Kind), Label: k.Label,
			Created: k.CreatedAt, LastUsed: k.LastUsedAt, Revoked: k.RevokedAt != nil})
	}
	return v, nil
}

func (c *Console) keysPage(gc *gin.Context) error {
	v, err := c.keysView(gc)
	if err != nil {
		return err
	}
	return c.render(gc, http.StatusOK, keys.List(v))
}

func (c *Console) keyCreate(gc *gin.Context) error {
	a := accessFrom(gc)
	secret, k, err := c.store.CreateKey(gc.Request.Context(), a.Tenant.ID, tenant.KeyKind(gc.PostForm("kind")),
		strings.TrimSpace(gc.PostForm("label")), c.actor(gc))
	errs := formErrors(err)
	if err != nil && errs == nil {
		return err
	}
	// Rendered directly rather than redirected: the secret exists only in
	// this response.
	v, verr := c.keysView(gc)
	if verr != nil {
		return verr
	}
	v.Errors = errs
	if err != nil {
		return c.render(gc, http.StatusUnprocessableEntity, keys.List(v))
	}
	v.NewSecret, v.NewKind = secret, string(k.Kind)
	return c.render(gc, http.StatusOK, keys.List(v))
}

func (c *Console) keyRevoke(gc *gin.Context) error {
	a := accessFrom(gc)
	id, err := strconv.ParseInt(gc.Param("id"), 10, 64)
	if err != nil {
		return notFoundPage
	}
	// RevokeKey matches the key id and the tenant id together: a key of
	// another tenant is not found.
	if err := c.store.RevokeKey(gc.Request.Context(), a.Tenant.ID, id, c.actor(gc)); err != nil {
		return err
	}
	c.flash(gc, "ok", "The key was revoked; every replica refuses it within a second.")
	return c.redirect(gc, "/console/t/"+string(a.Tenant.Slug)+"/keys")
}
