package admin

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/web/ui/components"
	auditpage "github.com/syncplane/syncplane/web/ui/pages/audit"
	"github.com/syncplane/syncplane/web/ui/pages/members"
)

func roleNames() []string {
	out := make([]string, len(TenantRoles))
	for i, r := range TenantRoles {
		out[i] = string(r)
	}
	return out
}

func (c *Console) membersView(gc *gin.Context) (members.View, error) {
	a := accessFrom(gc)
	ctx := gc.Request.Context()
	v := members.View{Page: c.tenantPage(gc, "Members", "members"), CanWrite: c.allows(a, ActMembersWrite), Roles: roleNames()}
	ms, err := c.accounts.Members(ctx, a.Tenant.ID)
	if err != nil {
		return v, err
	}
	p := principalFrom(gc)
	for _, m := range ms {
		v.Members = append(v.Members, members.Member{AccountID: m.AccountID, Email: m.Email, Role: string(m.Role),
			Since: m.CreatedAt, You: p.Account != nil && p.Account.ID == m.AccountID})
	}
	if v.CanWrite {
		inv, err := c.accounts.PendingInvitations(ctx, a.Tenant.ID)
		if err != nil {
			return v, err
		}
		for _, i := range inv {
			v.Pending = append(v.Pending, members.Pending{ID: i.ID, Email: i.Email, Role: string(i.Role), Expires: i.ExpiresAt})
		}
	}
	return v, nil
}

func (c *Console) membersPage(gc *gin.Context) error {
	v, err := c.membersView(gc)
	if err != nil {
		return err
	}
	return c.render(gc, http.StatusOK, members.List(v))
}

// canGrant refuses granting owner to anyone by a non-owner.
func (c *Console) canGrant(a access, role Role) error {
	if role == RoleOwner && a.Role != RoleOwner {
		return &tenant.ValidationError{Field: "role", Message: "only an owner can make someone owner"}
	}
	return nil
}

func (c *Console) memberInvite(gc *gin.Context) error {
	a := accessFrom(gc)
	role, err := ParseRole(gc.PostForm("role"))
	if err == nil {
		err = c.canGrant(a, role)
	}
	var tok string
	if err == nil {
		tok, _, err = c.accounts.CreateInvitation(gc.Request.Context(), gc.PostForm("email"), a.Tenant.ID, role,
			principalFrom(gc).Account.ID, c.actor(gc))
	}
	errs := formErrors(err)
	if err != nil && errs == nil {
		return err
	}
	v, verr := c.membersView(gc)
	if verr != nil {
		return verr
	}
	if err != nil {
		v.Errors, v.Email = errs, gc.PostForm("email")
		return c.render(gc, http.StatusUnprocessableEntity, members.List(v))
	}
	v.InviteLink = c.opts.PublicURL + "/console/invite/" + tok
	return c.render(gc, http.StatusOK, members.List(v))
}

func (c *Console) memberTarget(gc *gin.Context) (int64, error) {
	id, err := strconv.ParseInt(gc.Param("account"), 10, 64)
	if err != nil {
		return 0, notFoundPage
	}
	return id, nil
}

func (c *Console) memberFail(gc *gin.Context, err error) error {
	errs := formErrors(err)
	if errs == nil {
		return err
	}
	v, verr := c.membersView(gc)
	if verr != nil {
		return verr
	}
	v.Errors = components.FieldErrors{"member": errs[firstKey(errs)]}
	return c.render(gc, http.StatusUnprocessableEntity, members.List(v))
}

func firstKey(m components.FieldErrors) string {
	for k := range m {
		return k
	}
	return ""
}

func (c *Console) memberRole(gc *gin.Context) error {
	a := accessFrom(gc)
	id, err := c.memberTarget(gc)
	if err != nil {
		return err
	}
	role, err := ParseRole(gc.PostForm("role"))
	if err == nil {
		err = c.canGrant(a, role)
	}
	if err == nil {
		err = c.guardOwner(gc, a, id)
	}
	if err == nil {
		err = c.accounts.SetRole(gc.Request.Context(), a.Tenant.ID, id, role, c.actor(gc))
	}
	if err != nil {
		return c.memberFail(gc, err)
	}
	c.flash(gc, "ok", "Role changed to "+string(role)+".")
	return c.redirect(gc, "/console/t/"+string(a.Tenant.Slug)+"/members")
}

// guardOwner keeps non-owners from changing or removing an owner.
func (c *Console) guardOwner(gc *gin.Context, a access, accountID int64) error {
	r, err := c.accounts.Role(gc.Request.Context(), a.Tenant.ID, accountID)
	if err != nil {
		return err
	}
	if r == "" {
		return tenant.ErrNotFound
	}
	if r == RoleOwner && a.Role != RoleOwner {
		return &tenant.ValidationError{Field: "member", Message: "only an owner can change or remove an owner"}
	}
	return nil
}

func (c *Console) memberRemove(gc *gin.Context) error {
	a := accessFrom(gc)
	id, err := c.memberTarget(gc)
	if err != nil {
		return err
	}
	if err := c.guardOwner(gc, a, id); err != nil {
		return c.memberFail(gc, err)
	}
	if err := c.accounts.RemoveMember(gc.Request.Context(), a.Tenant.ID, id, c.actor(gc)); err != nil {
		return c.memberFail(gc, err)
	}
	c.flash(gc, "ok", "Member removed.")
	if p := principalFrom(gc); p.Account != nil && p.Account.ID == id {
		return c.redirect(gc, "/console/tenants")
	}
	return c.redirect(gc, "/console/t/"+string(a.Tenant.Slug)+"/members")
}

// auditActions are the action filters offered on the audit page.
var auditActions = []string{"tenant.create", "tenant.suspend", "tenant.resume", "key.create", "key.revoke", "auth.set",
	"auth.mint", "tables.apply", "member.invite", "member.uninvite", "member.join", "member.add", "member.role",
	"member.remove", "device.retire"}

func (c *Console) invitationCancel(gc *gin.Context) error {
	a := accessFrom(gc)
	id, err := strconv.ParseInt(gc.Param("id"), 10, 64)
	if err != nil {
		return notFoundPage
	}
	if err := c.accounts.CancelInvitation(gc.Request.Context(), a.Tenant.ID, id, c.actor(gc)); err != nil {
		return err
	}
	c.flash(gc, "ok", "The invitation was withdrawn; its link no longer works.")
	return c.redirect(gc, "/console/t/"+string(a.Tenant.Slug)+"/members")
}

// auditPage is how many audit entries one console page shows.
const auditPage = 100

// AuditFilter selects audit entries.
type AuditFilter struct {
	Action string
	Actor  string
	Before int64 // only entries with a smaller id (paging); 0: newest
	Limit  int
}

// auditEntries reads a tenant's audit log, filtered in SQL.
func (c *Console) auditEntries(gc *gin.Context, tenantID int64, f AuditFilter) ([]tenant.AuditEntry, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 200
	}
	rows, err := c.opts.Pool.Query(gc.Request.Context(), `SELECT id, at, actor, action, target, detail, remote_addr
		FROM syncplane.audit_log
		WHERE tenant_id = $1 AND ($2 = '' OR action = $2) AND ($3 = '' OR strpos(lower(actor), lower($3)) > 0)
			AND ($5 = 0 OR id < $5)
		ORDER BY id DESC LIMIT $4`, tenantID, f.Action, f.Actor, f.Limit, f.Before)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []tenant.AuditEntry
	for rows.Next() {
		var e tenant.AuditEntry
		if err := rows.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.Target, &e.Detail, &e.RemoteAddr); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func (c *Console) auditPage(gc *gin.Context) error {
	a := accessFrom(gc)
	v := auditpage.View{Page: c.tenantPage(gc, "Audit log", "audit"), Action: gc.Query("action"), Actor: gc.Query("actor"),
		Actions: auditActions}
	before, _ := strconv.ParseInt(gc.Query("before"), 10, 64)
	es, err := c.auditEntries(gc, a.Tenant.ID, AuditFilter{Action: v.Action, Actor: v.Actor, Before: before, Limit: auditPage + 1})
	if err != nil {
		return err
	}
	if len(es) > auditPage {
		es = es[:auditPage]
		v.Older = es[auditPage-1].ID
	}
	for _, e := range es {
		d := string(e.Detail)
		if d == "{}" {
			d = ""
		}
		v.Entries = append(v.Entries, auditpage.Entry{At: e.At, Actor: e.Actor, Action: e.Action, Target: e.Target,
			Detail: d, RemoteAddr: e.RemoteAddr})
	}
	return c.render(gc, http.StatusOK, auditpage.List(v))
}
