// Package admin is Syncplane's web console (/console) and management API
// (/api/v1): accounts and sessions, tenant roles enforced with casbin, and
// the pages and JSON routes through which app developers manage their
// tenants.
//
// # Accounts and sessions
//
// People sign up with an email and a password (argon2id). Sessions are
// server-side (scs) in syncplane.sessions, behind an HttpOnly, SameSite=Lax
// cookie that is Secure unless the console is served over plain HTTP. Every
// form carries a gorilla/csrf token. Logins are rate limited per address and
// per email. Changing a password signs out every other session. With
// SYNCPLANE_SIGNUP=closed, accounts are created only through invitation
// links (tenant invitations, or sign-up links from platform operators); the
// very first account can always sign up and becomes a platform operator.
//
// # Roles
//
// A membership gives an account one role in one tenant. The embedded casbin
// model and policy (rbac_model.conf, rbac_policy.csv) decide what a role may
// do; authorize is the single check for console pages and API routes alike:
//
//	action            viewer developer admin owner operator
//	tenant.read         x       x       x     x      x
//	keys/auth/tables/
//	members/audit/
//	devices/quota/
//	usage .read         x       x       x     x      x
//	auth.test           x       x       x     x      x
//	keys/auth/tables/
//	devices .write,
//	auth.mint                   x       x     x
//	tenant.settings,
//	members.write                       x     x
//	tenant.suspend                            x      x
//	tenant.delete                             x
//	quota.write,
//	usage.all                                        x
//
// Platform operators see every tenant (with the operator role where they
// are not members), may suspend one, change its plan and limits
// (quota.write), and export every tenant's usage for billing (usage.all).
// Someone with no relation to a tenant gets 404, exactly as for a tenant
// that does not exist. On the API, a tenant secret key acts as a developer
// of its own tenant and a personal access token acts as its account.
//
// # Quotas and usage
//
// The quota page and GET /api/v1/tenants/{slug}/quota show every limit of
// the tenant's plan and overrides with the current use beside it
// (tenant.Store.CurrentUse, measured at most once every 10 seconds per
// tenant and shared between requests); limits at tenant.NearLimit are
// flagged there, on the overview and on the tenant list. Only platform
// operators change plan and overrides. The usage page charts the hourly
// metering per day and per hour; GET /api/v1/tenants/{slug}/usage and, for
// operators, GET /api/v1/usage export it as JSON or billing CSV.
//
// # Sync data
//
// The devices, data and overview pages read the sync engine's metadata
// (_sync_source, _sync_scope, _sync_bundle, _sync_bundle_row and the synced
// tables in t_<slug>) through the SyncData interface; retiring a device is
// its only write.
package admin
