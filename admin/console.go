package admin

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/alexedwards/scs/v2"
	"github.com/gin-gonic/gin"
	"github.com/gorilla/csrf"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/web/server"
	"github.com/syncplane/syncplane/web/static"
	"github.com/syncplane/syncplane/web/ui/components"
	uierrors "github.com/syncplane/syncplane/web/ui/pages/errors"
)

// Sign-up modes.
const (
	SignupOpen   = "open"
	SignupClosed = "closed"
)

// Options configure the console.
type Options struct {
	Store *tenant.Store
	Pool  *pgxpool.Pool // control plane
	Log   *slog.Logger
	// PublicURL is the external base URL, used in rendered links.
	PublicURL string
	// Signup is SignupOpen or SignupClosed (invitation links only). The
	// very first account can always sign up, and becomes a platform operator.
	Signup string
	// Secret keys the CSRF cookie; at least 32 bytes. Replicas behind one
	// load balancer must share it. Empty: a random per-process key.
	Secret []byte
	// SecureCookies marks cookies Secure (HTTPS only). Off only for plain
	// HTTP development setups.
	SecureCookies bool
	// SessionLifetime bounds a session; zero means 12 hours.
	SessionLifetime time.Duration
	// VerifierOptions are passed to the "test a token" verifier.
	VerifierOptions []server.VerifierOption
	// LoginLimit is the login attempts allowed per minute per address and
	// per email; zero means 10.
	LoginLimit int
	// SyncData reads tenants' sync metadata; nil means SQL over the
	// tenant schemas.
	SyncData SyncData
}

// Console serves the web console under /console and the management API
// under /api/v1.
type Console struct {
	opts     Options
	store    *tenant.Store
	accounts *Accounts
	policy   *Policy
	sessions *scs.SessionManager
	sstore   *sessionStore
	csrf     func(http.Handler) http.Handler
	limiter  *loginLimiter
	sync     SyncData
	uses     *useCache
	log      *slog.Logger
	now      func() time.Time
}

// New builds the console.
func New(opts Options) (*Console, error) {
	if opts.Store == nil || opts.Pool == nil {
		return nil, errors.New("admin: Store and Pool are required")
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	switch opts.Signup {
	case "":
		opts.Signup = SignupOpen
	case SignupOpen, SignupClosed:
	default:
		return nil, fmt.Errorf("admin: signup mode %q: want open or closed", opts.Signup)
	}
	if len(opts.Secret) == 0 {
		opts.Secret = make([]byte, 32)
		if _, err := rand.Read(opts.Secret); err != nil {
			return nil, err
		}
	} else if len(opts.Secret) < 32 {
		return nil, errors.New("admin: the session secret must be at least 32 bytes")
	}
	if opts.SessionLifetime == 0 {
		opts.SessionLifetime = 12 * time.Hour
	}
	if opts.LoginLimit == 0 {
		opts.LoginLimit = 10
	}
	policy, err := NewPolicy()
	if err != nil {
		return nil, err
	}
	c := &Console{opts: opts, store: opts.Store, accounts: NewAccounts(opts.Pool), policy: policy,
		sstore: &sessionStore{db: opts.Pool}, log: opts.Log, now: time.Now,
		limiter: newLoginLimiter(opts.LoginLimit, time.Minute), sync: opts.SyncData,
		uses: newUseCache(opts.Store, time.Minute, 4)}
	if c.sync == nil {
		c.sync = &pgSyncData{store: opts.Store}
	}
	sm := scs.New()
	sm.Store = c.sstore
	sm.Lifetime = opts.SessionLifetime
	sm.IdleTimeout = 2 * time.Hour
	sm.HashTokenInStore = true
	sm.Cookie.Name = "syncplane_session"
	sm.Cookie.Path = "/"
	sm.Cookie.HttpOnly = true
	sm.Cookie.Secure = opts.SecureCookies
	sm.Cookie.SameSite = http.SameSiteLaxMode
	c.sessions = sm
	// The CSRF key is derived from the secret so the two never coincide.
	key := deriveKey(opts.Secret, "csrf")
	c.csrf = csrf.Protect(key,
		csrf.Secure(opts.SecureCookies), csrf.HttpOnly(true), csrf.Path("/console"),
		csrf.SameSite(csrf.SameSiteLaxMode), csrf.CookieName("syncplane_csrf"), csrf.FieldName(csrfField),
		csrf.RequestHeader("X-CSRF-Token"), csrf.ErrorHandler(http.HandlerFunc(c.csrfFailed)))
	return c, nil
}

const csrfField = "csrf_token"

// Accounts is the console's account store.
func (c *Console) Accounts() *Accounts { return c.accounts }

// Policy is the console's role policy.
func (c *Console) Policy() *Policy { return c.policy }

// Run removes expired sessions until ctx ends.
func (c *Console) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := c.sstore.deleteExpired(ctx); err != nil && ctx.Err() == nil {
				c.log.Warn("delete expired console sessions", "err", err)
			}
		}
	}
}

// Mount registers the console, its assets and the management API on e.
func (c *Console) Mount(e *gin.Engine) {
	e.StaticFS("/console/static", http.FS(static.FS))
	e.GET("/", func(gc *gin.Context) { gc.Redirect(http.StatusSeeOther, "/console") })
	g := e.Group("/console", noStore, c.sessionMW, c.csrfMW, c.loadUser)
	c.mountPages(g)
	api := e.Group("/api/v1")
	c.mountAPI(api)
}

func noStore(gc *gin.Context) {
	gc.Header("Cache-Control", "no-store")
	gc.Header("X-Frame-Options", "DENY")
	gc.Header("X-Content-Type-Options", "nosniff")
	gc.Header("Referrer-Policy", "same-origin")
	gc.Next()
}

// sessionWriter commits the session and writes its cookie just before the
// response headers go out, as scs's LoadAndSave does for net/http.
type sessionWriter struct {
	gin.ResponseWriter
	c    *Console
	ctx  context.Context
	done bool
	err  error
}

func (w *sessionWriter) commit() {
	if w.done {
		return
	}
	w.done = true
	sm := w.c.sessions
	switch sm.Status(w.ctx) {
	case scs.Modified:
		tok, exp, err := sm.Commit(w.ctx)
		if err != nil {
			w.err = err
			w.c.log.Error("commit console session", "err", err)
			return
		}
		sm.WriteSessionCookie(w.ctx, w.ResponseWriter, tok, exp)
	case scs.Destroyed:
		sm.WriteSessionCookie(w.ctx, w.ResponseWriter, "", time.Time{})
	}
	w.Header().Add("Vary", "Cookie")
}

func (w *sessionWriter) WriteHeader(code int) {
	if code > 0 {
		w.commit()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *sessionWriter) WriteHeaderNow() {
	w.commit()
	w.ResponseWriter.WriteHeaderNow()
}

func (w *sessionWriter) Write(b []byte) (int, error) {
	w.commit()
	return w.ResponseWriter.Write(b)
}

func (w *sessionWriter) WriteString(s string) (int, error) {
	w.commit()
	return w.ResponseWriter.WriteString(s)
}

func (w *sessionWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (c *Console) sessionMW(gc *gin.Context) {
	var token string
	if ck, err := gc.Request.Cookie(c.sessions.Cookie.Name); err == nil {
		token = ck.Value
	}
	ctx, err := c.sessions.Load(gc.Request.Context(), token)
	if err != nil {
		c.fail(gc, fmt.Errorf("load session: %w", err))
		return
	}
	gc.Request = gc.Request.WithContext(ctx)
	sw := &sessionWriter{ResponseWriter: gc.Writer, c: c, ctx: ctx}
	gc.Writer = sw
	gc.Next()
	sw.commit()
}

// csrfMW runs gorilla/csrf on every console request: it refuses unsafe
// methods without a valid token and offers the token to templates.
func (c *Console) csrfMW(gc *gin.Context) {
	passed := false
	h := c.csrf(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		passed = true
		gc.Request = r
		gc.Next()
	}))
	r := gc.Request
	if !c.opts.SecureCookies {
		r = csrf.PlaintextHTTPRequest(r)
	}
	h.ServeHTTP(gc.Writer, r)
	if !passed {
		gc.Abort()
	}
}

func (c *Console) csrfFailed(w http.ResponseWriter, r *http.Request) {
	c.log.Info("console request refused: CSRF check failed", "path", r.URL.Path, "reason", csrf.FailureReason(r))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusForbidden)
	_ = uierrors.Error(http.StatusForbidden, "Request refused",
		"The form was stale or did not come from this console (CSRF check failed). Go back, reload the page and try again.").
		Render(r.Context(), w)
}

// principal is who makes a request: a signed-in account (console session
// or personal access token) or a tenant secret key.
type principal struct {
	Account *Account
	// KeyTenantID is set for a tenant secret key, which acts only on its
	// own tenant with the role secretKeyRole.
	KeyTenantID int64
	KeyDisplay  string
}

// secretKeyRole is the role a tenant's secret key has in its own tenant.
const secretKeyRole = RoleDeveloper

func (p *principal) actorName() string {
	if p.Account != nil {
		return "user:" + p.Account.Email
	}
	return "key:" + p.KeyDisplay
}

const principalKey = "syncplane.admin.principal"

func principalFrom(gc *gin.Context) *principal {
	v, _ := gc.Get(principalKey)
	p, _ := v.(*principal)
	return p
}

func (c *Console) actor(gc *gin.Context) tenant.Actor {
	name := "anonymous"
	if p := principalFrom(gc); p != nil {
		name = p.actorName()
	}
	return tenant.Actor{Name: name, RemoteAddr: gc.ClientIP()}
}

const (
	sessionAccountKey  = "account_id"
	sessionPasswordKey = "password_version"
)

// loadUser resolves the session's account and stores the per-request
// values templates read.
func (c *Console) loadUser(gc *gin.Context) {
	ctx := gc.Request.Context()
	req := components.Request{CSRFField: csrfField, CSRFToken: csrf.Token(gc.Request)}
	if id := c.sessions.GetInt64(ctx, sessionAccountKey); id != 0 {
		a, err := c.accounts.Account(ctx, id)
		switch {
		case err == nil && c.sessions.GetInt64(ctx, sessionPasswordKey) != a.PasswordChangedAt.UnixNano():
			// The password changed since this session signed in.
			_ = c.sessions.Destroy(ctx)
		case err == nil:
			gc.Set(principalKey, &principal{Account: a})
			req.Email, req.Operator = a.Email, a.Operator
		case errors.Is(err, tenant.ErrNotFound):
			_ = c.sessions.Destroy(ctx)
		default:
			c.fail(gc, err)
			return
		}
	}
	gc.Request = gc.Request.WithContext(components.WithRequest(ctx, req))
	gc.Next()
}

// requireUser sends signed-out visitors to the login page.
func (c *Console) requireUser(gc *gin.Context) {
	if principalFrom(gc) == nil {
		next := gc.Request.URL.Path
		if gc.Request.Method != http.MethodGet {
			next = "/console/tenants"
		}
		gc.Redirect(http.StatusSeeOther, "/console/login?next="+urlQueryEscape(next))
		gc.Abort()
		return
	}
	gc.Next()
}

// access is what a principal may do in one tenant.
type access struct {
	Tenant   *tenant.Tenant
	Role     Role // membership role, or secretKeyRole for a secret key
	Operator bool
}

// label is the role shown in the navigation.
func (a access) label() string {
	if a.Role != "" {
		return string(a.Role)
	}
	if a.Operator {
		return string(RoleOperator)
	}
	return ""
}

// allows reports whether the access permits act: the member role's grants
// plus, for platform operators, the operator role's.
func (c *Console) allows(a access, act Action) bool {
	return c.policy.Allowed(a.Role, act) || a.Operator && c.policy.Allowed(RoleOperator, act)
}

const accessKey = "syncplane.admin.access"

func accessFrom(gc *gin.Context) access {
	v, _ := gc.Get(accessKey)
	a, _ := v.(access)
	return a
}

// errNoTenant and errForbidden are the two refusals of authorize.
var (
	errNoTenant  = errors.New("no such tenant")
	errForbidden = errors.New("role does not allow this")
)

// resolveAccess loads the :slug tenant and the principal's access to it.
// A principal with no relation to the tenant gets errNoTenant, exactly as
// for a tenant that does not exist, so ids and slugs reveal nothing.
func (c *Console) resolveAccess(ctx context.Context, p *principal, slug string) (access, error) {
	if p == nil {
		return access{}, errNoTenant
	}
	t, err := c.store.Tenant(ctx, slug)
	if errors.Is(err, tenant.ErrNotFound) {
		return access{}, errNoTenant
	}
	if err != nil {
		return access{}, err
	}
	a := access{Tenant: t}
	switch {
	case p.Account != nil:
		if a.Role, err = c.accounts.Role(ctx, t.ID, p.Account.ID); err != nil {
			return access{}, err
		}
		a.Operator = p.Account.Operator
	case p.KeyTenantID == t.ID:
		a.Role = secretKeyRole
	}
	if a.Role == "" && !a.Operator {
		return access{}, errNoTenant
	}
	return a, nil
}

// authorize is the one access check of the console and the management API:
// it resolves the principal's role in the :slug tenant and asks the policy
// whether that role may perform act. onErr renders the refusal.
func (c *Console) authorize(act Action, onErr func(gc *gin.Context, err error)) gin.HandlerFunc {
	return func(gc *gin.Context) {
		a, err := c.resolveAccess(gc.Request.Context(), principalFrom(gc), gc.Param("slug"))
		if err == nil && !c.allows(a, act) {
			err = errForbidden
		}
		if err != nil {
			onErr(gc, err)
			gc.Abort()
			return
		}
		gc.Set(accessKey, a)
		gc.Next()
	}
}

// render writes a templ component as the HTML response.
func (c *Console) render(gc *gin.Context, status int, comp templ.Component) error {
	gc.Header("Content-Type", "text/html; charset=utf-8")
	gc.Status(status)
	return comp.Render(gc.Request.Context(), gc.Writer)
}

// pageError is a console error with a public title and message.
type pageError struct {
	Status  int
	Title   string
	Message string
}

func (e *pageError) Error() string { return e.Title + ": " + e.Message }

var notFoundPage = &pageError{http.StatusNotFound, "Not found", "There is no such page, or you do not have access to it."}

// page adapts a console handler: a returned error renders the error page.
func (c *Console) page(h func(gc *gin.Context) error) gin.HandlerFunc {
	return func(gc *gin.Context) {
		if err := h(gc); err != nil {
			c.fail(gc, err)
		}
	}
}

// fail renders err as the console's HTML error page.
func (c *Console) fail(gc *gin.Context, err error) {
	var pe *pageError
	switch {
	case errors.As(err, &pe):
	case errors.Is(err, tenant.ErrNotFound), errors.Is(err, errNoTenant):
		pe = notFoundPage
	case errors.Is(err, errForbidden):
		pe = &pageError{http.StatusForbidden, "Not allowed", "Your role in this tenant does not allow this."}
	default:
		c.log.ErrorContext(gc.Request.Context(), "console request failed", "method", gc.Request.Method,
			"route", gc.FullPath(), "err", err)
		pe = &pageError{http.StatusInternalServerError, "Something went wrong", "The request was not completed. Try again in a moment."}
	}
	if gc.Writer.Written() {
		gc.Abort()
		return
	}
	_ = c.render(gc, pe.Status, uierrors.Error(pe.Status, pe.Title, pe.Message))
	gc.Abort()
}

func (c *Console) pageRefusal(gc *gin.Context, err error) { c.fail(gc, err) }

// flash stores a message for the next page.
func (c *Console) flash(gc *gin.Context, kind, msg string) {
	c.sessions.Put(gc.Request.Context(), "flash", kind+"|"+msg)
}

func (c *Console) popFlashes(gc *gin.Context) []components.Flash {
	s := c.sessions.PopString(gc.Request.Context(), "flash")
	if s == "" {
		return nil
	}
	kind, msg, _ := strings.Cut(s, "|")
	return []components.Flash{{Kind: kind, Message: msg}}
}

func (c *Console) redirect(gc *gin.Context, to string) error {
	gc.Redirect(http.StatusSeeOther, to)
	return nil
}
