package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/web/ui/pages/data"
	"github.com/syncplane/syncplane/web/ui/pages/devices"
)

func (c *Console) devicesPage(gc *gin.Context) error {
	a := accessFrom(gc)
	v := devices.View{Page: c.tenantPage(gc, "Devices", "devices"), User: strings.TrimSpace(gc.Query("user")),
		CanWrite: c.allows(a, ActDevicesWrite)}
	srcs, err := c.sync.Sources(gc.Request.Context(), a.Tenant, SourceFilter{User: v.User})
	if err != nil {
		return err
	}
	for _, s := range srcs {
		v.Devices = append(v.Devices, devices.Device{UserID: s.UserID, SourceID: s.SourceID, State: s.State,
			FirstSeen: s.FirstSeen, LastSeen: s.LastSeen, BundlesPushed: s.BundlesPushed, LastBundleID: s.MaxBundleID,
			ReplacedBy: s.ReplacedBy, RetireReason: s.RetireReason, LastError: s.LastError, LastErrorAt: s.LastErrorAt})
	}
	return c.render(gc, http.StatusOK, devices.List(v))
}

func (c *Console) deviceRetire(gc *gin.Context) error { return c.deviceEnd(gc, true) }

func (c *Console) deviceRevoke(gc *gin.Context) error { return c.deviceEnd(gc, false) }

// deviceEnd retires a device (replace: it rotates to a reserved successor
// and keeps syncing) or revokes it (no successor: it is shut out).
func (c *Console) deviceEnd(gc *gin.Context, replace bool) error {
	a := accessFrom(gc)
	user, source := gc.PostForm("user"), gc.PostForm("source")
	by := c.actor(gc)
	verb, action, flash := "retired", "device.retire", " is retired; it moves to a new source id on its next sync."
	if !replace {
		verb, action, flash = "revoked", "device.revoke", " is revoked; it cannot sync again under this source id."
	}
	changed, err := c.sync.RetireSource(gc.Request.Context(), a.Tenant, user, source, verb+" in the console by "+by.Name, replace)
	if err != nil {
		return err
	}
	if changed {
		if err := c.auditOnly(gc, a.Tenant.ID, action, user+"/"+source); err != nil {
			return err
		}
	}
	c.flash(gc, "ok", "Device "+source+" of "+user+flash)
	return c.redirect(gc, "/console/t/"+string(a.Tenant.Slug)+"/devices")
}

const dataPageRows = 50

func (c *Console) dataPage(gc *gin.Context) error {
	ctx := gc.Request.Context()
	a := accessFrom(gc)
	v := data.View{Page: c.tenantPage(gc, "Data", "data"), User: strings.TrimSpace(gc.Query("user")),
		Table: gc.Query("table")}
	v.Offset, _ = strconv.Atoi(gc.Query("offset"))
	v.Offset = max(0, v.Offset)
	v.Before, _ = strconv.ParseInt(gc.Query("before"), 10, 64)
	users, err := c.sync.Users(ctx, a.Tenant, "", 50)
	if err != nil {
		return err
	}
	v.Users = users
	if v.User == "" {
		return c.render(gc, http.StatusOK, data.Inspector(v))
	}
	cur, err := c.store.CurrentTables(ctx, a.Tenant.ID)
	if err != nil && !errors.Is(err, tenant.ErrNoDefinition) {
		return err
	}
	if cur != nil {
		var table *tenant.Table
		for _, t := range cur.Schema.Tables() {
			v.Tables = append(v.Tables, data.Table{Name: t.Name})
			if t.Name == v.Table || (v.Table == "" && table == nil) {
				table = t
			}
		}
		if table != nil {
			v.Table = table.Name
			rows, err := c.sync.Rows(ctx, a.Tenant, table, v.User, v.Offset, dataPageRows+1)
			if err != nil {
				return err
			}
			if len(rows) > dataPageRows {
				v.More, rows = true, rows[:dataPageRows]
			}
			for _, r := range rows {
				v.Rows = append(v.Rows, compactJSON(r))
			}
		}
	}
	bundles, err := c.sync.Bundles(ctx, a.Tenant, v.User, v.Before, 26)
	if err != nil {
		return err
	}
	if len(bundles) > 25 {
		bundles = bundles[:25]
		v.Older = bundles[24].Seq
	}
	for _, b := range bundles {
		vb := data.Bundle{Seq: b.Seq, SourceID: b.SourceID, SourceBundleID: b.SourceBundleID, RowCount: b.RowCount,
			CommittedAt: b.CommittedAt}
		for _, r := range b.Rows {
			vb.Rows = append(vb.Rows, data.BundleRow{Table: r.Table, Key: r.Key, Op: r.Op, Payload: r.Payload})
		}
		v.Bundles = append(v.Bundles, vb)
	}
	return c.render(gc, http.StatusOK, data.Inspector(v))
}

func compactJSON(r json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, r); err != nil {
		return string(r)
	}
	return b.String()
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
