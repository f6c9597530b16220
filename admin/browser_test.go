package admin_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/tenant/tenanttest"
)

// EnvBrowser enables the headless Chromium tests (scripts/test.sh's
// browser step sets it after installing Debian's chromium).
const EnvBrowser = "SYNCPLANE_BROWSER_TESTS"

// browser is a headless Chromium tab; every JavaScript console error,
// uncaught exception and browser-log error is collected and fails the test.
type browser struct {
	t         *testing.T
	ctx       context.Context
	mu        sync.Mutex
	jsErrors  []string
	shots     string
	shotCount int
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	if os.Getenv(EnvBrowser) == "" {
		t.Skip(EnvBrowser + " is not set; run ./scripts/test.sh (its browser step installs chromium)")
	}
	path, err := exec.LookPath("chromium")
	require.NoError(t, err, "chromium is not installed (apt-get install chromium)")
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.NoFirstRun, chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })

	dir := os.Getenv("SYNCPLANE_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	b := &browser{t: t, ctx: ctx, shots: filepath.Join(dir, "browser", t.Name())}
	require.NoError(t, os.MkdirAll(b.shots, 0o755))

	// Console and Events start the browser and subscribe before any page loads.
	messages := chromedp.Console(ctx)
	dialogs := chromedp.Events(ctx, cdppage.JavascriptDialogOpening)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			// 422 answers to invalid forms are expected: the browser logs
			// them as network errors, which are not JavaScript errors.
			if m.Source == "network" && strings.Contains(m.Text, "status of 422") {
				continue
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				b.addError(m.String())
			}
		}
	}()
	go func() {
		// Accept every data-confirm dialog, as a person would.
		for _, err := range dialogs {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(ctx, cdppage.HandleJavaScriptDialog, cdppage.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if len(b.jsErrors) > 0 {
			t.Errorf("JavaScript console errors:\n%s", strings.Join(b.jsErrors, "\n"))
		}
		t.Logf("screenshots in %s", b.shots)
	})
	return b
}

func (b *browser) addError(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.jsErrors = append(b.jsErrors, s)
}

// step runs actions with a time limit, then saves a full-page screenshot
// named after the step.
func (b *browser) step(name string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		html, _ := chromedp.Run(b.ctx, chromedp.OuterHTML(chromedp.CSS("body")))
		b.t.Fatalf("step %s: %v\npage:\n%s", name, err, html)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(b.t, err)
	b.shotCount++
	require.NoError(b.t, os.WriteFile(filepath.Join(b.shots, fmt.Sprintf("%02d-%s.png", b.shotCount, name)), png, 0o644))
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(b.t, err)
	return strings.TrimSpace(s)
}

func (b *browser) strings(expr string) []string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](expr))
	require.NoError(b.t, err)
	return v
}

func tid(id string) chromedp.CSS { return chromedp.CSS(`[data-testid="` + id + `"]`) }

func css(s string) chromedp.CSS { return chromedp.CSS(s) }

// TestBrowserJourney walks the main console journey in headless Chromium:
// sign up, create a tenant, create a key, configure HS256 auth, mint and
// test a token, define two tables, and read the audit log.
func TestBrowserJourney(t *testing.T) {
	b := newBrowser(t)
	h := newHarnessWith(t, mountSync(t))
	base := h.srv.URL
	email := randomEmail("browser")
	slug := tenanttest.RandomSlug("web")
	t.Cleanup(func() { _ = h.store.DeleteTenant(context.Background(), slug, tenanttest.Actor) })

	b.step("signup",
		chromedp.Navigate(base+"/console/signup"),
		chromedp.WaitVisible(css(`#email`)),
		chromedp.SendKeys(css(`#email`), email),
		chromedp.SendKeys(css(`#password`), "correct horse battery"),
		chromedp.Click(tid("signup-submit")),
		chromedp.WaitVisible(tid("tenants-empty")),
	)

	b.step("create-tenant",
		chromedp.Click(tid("tenant-new")),
		chromedp.WaitVisible(css(`#slug`)),
		chromedp.SendKeys(css(`#slug`), slug),
		chromedp.SendKeys(css(`#name`), "Browser App"),
		chromedp.Click(tid("tenant-create")),
		chromedp.WaitVisible(tid("overview")),
	)

	b.step("create-key",
		chromedp.Click(tid("nav-keys")),
		chromedp.WaitVisible(tid("key-form")),
		chromedp.SetValue(css(`#kind`), "publishable"),
		chromedp.SendKeys(css(`#label`), "iOS app"),
		chromedp.Click(tid("key-create")),
		chromedp.WaitVisible(tid("new-key")),
	)
	key := b.text(`[data-testid="new-key"]`)
	require.True(t, strings.HasPrefix(key, "sp_pk_"), key)

	b.step("configure-auth",
		chromedp.Click(tid("nav-auth")),
		chromedp.WaitVisible(tid("auth-form")),
		chromedp.SetValue(css(`#mode`), "hs256"),
		chromedp.SendKeys(css(`#hs256_secrets`), hsSecret),
		chromedp.Click(tid("auth-save")),
		chromedp.WaitVisible(tid("flash-ok")),
		chromedp.WaitVisible(tid("auth-mint-form")),
	)

	b.step("mint-token",
		chromedp.SendKeys(css(`#sub`), "user-1"),
		chromedp.Click(tid("auth-mint")),
		chromedp.WaitVisible(tid("minted-token")),
	)
	token := b.text(`[data-testid="minted-token"]`)
	require.True(t, strings.HasPrefix(token, "eyJ"), token)
	b.step("test-token",
		chromedp.SetValue(css(`#token`), token),
		chromedp.Click(tid("auth-test")),
		chromedp.WaitVisible(tid("auth-test-result")),
	)
	result := b.text(`[data-testid="auth-test-result"]`)
	require.Contains(t, result, `Accepted`)
	require.Contains(t, result, `"user-1"`)

	def := `{"tables": [
  {"name": "users", "sync_key": "id", "columns": [{"name": "id", "type": "uuid"}, {"name": "name", "type": "text"}]},
  {"name": "notes", "sync_key": "id", "columns": [{"name": "id", "type": "uuid"}, {"name": "user_id", "type": "uuid"}, {"name": "body", "type": "text", "nullable": true}],
   "foreign_keys": [{"column": "user_id", "references": "users", "on_delete": "cascade"}]}
]}`
	bad := `{"tables": [{"name": "users", "sync_key": "id", "columns": [{"name": "id", "type": "uuid"}, {"name": "age", "type": "number"}]}]}`
	b.step("tables-invalid",
		chromedp.Click(tid("nav-tables")),
		chromedp.WaitVisible(css(`#definition`)),
		chromedp.SetValue(css(`#definition`), bad),
		chromedp.Click(tid("tables-preview")),
		chromedp.WaitVisible(tid("tables-problem")),
	)
	require.Contains(t, b.text(`tr.invalid[data-testid="tables-field"]`), "users.age number")
	b.step("preview-tables",
		chromedp.WaitVisible(css(`#definition`)),
		chromedp.SetValue(css(`#definition`), def),
		chromedp.Click(tid("tables-preview")),
		chromedp.WaitVisible(tid("tables-diff")),
	)
	diff := b.text(`[data-testid="tables-diff"]`)
	require.Contains(t, diff, "users")
	require.Contains(t, diff, "notes")
	b.step("apply-tables",
		chromedp.Click(tid("tables-apply")),
		chromedp.WaitVisible(tid("tables-version")),
	)
	require.Len(t, b.strings(`Array.from(document.querySelectorAll('[data-testid="table-row"]')).map(e => e.textContent)`), 2)

	// A real device syncs through the gateway with the key and the token
	// the console handed out.
	source := syncDevice(t, h, slug, base+"/k/"+key, token)
	b.step("device-appears",
		chromedp.Click(tid("nav-devices")),
		chromedp.WaitVisible(tid("device-row")),
	)
	require.Equal(t, source, b.text(`[data-testid="device-source"]`))
	require.Equal(t, "active", b.text(`[data-testid="device-state"]`))
	b.step("data-inspector",
		chromedp.Click(tid("nav-data")),
		chromedp.WaitVisible(tid("data-users")),
		chromedp.Click(css(`[data-testid="data-users"] a`)),
		chromedp.WaitVisible(tid("bundles")),
		chromedp.Click(css(`a[href*="table=users"]`)),
		chromedp.WaitVisible(tid("data-rows")),
	)
	require.Len(t, b.strings(`Array.from(document.querySelectorAll('[data-testid="data-row"]')).map(e => e.textContent)`), 1)
	b.step("retire-device",
		chromedp.Click(tid("nav-devices")),
		chromedp.WaitVisible(tid("device-retire")),
		chromedp.Click(tid("device-retire")),
		chromedp.WaitVisible(tid("flash-ok")),
	)
	// The retired device and the replacement reserved for it (protocol 10).
	require.ElementsMatch(t, []string{"retired", "reserved"},
		b.strings(`Array.from(document.querySelectorAll('[data-testid="device-state"]')).map(e => e.textContent.trim())`))

	// Quotas, usage and settings.
	b.step("quotas",
		chromedp.Click(tid("nav-quota")),
		chromedp.WaitVisible(tid("quotas")),
		chromedp.WaitVisible(tid("quota-readonly")),
	)
	require.Len(t, b.strings(`Array.from(document.querySelectorAll('[data-testid="quota-meter"]')).map(e => e.value+"")`), 4)
	// This harness does not meter the gateway: the usage page is empty.
	b.step("usage",
		chromedp.Click(tid("nav-usage")),
		chromedp.WaitVisible(tid("usage-empty")),
		chromedp.Click(tid("usage-by-hour")),
		chromedp.WaitVisible(css(`[data-testid="usage-by-hour"].active`)),
	)
	b.step("settings",
		chromedp.Click(tid("nav-settings")),
		chromedp.WaitVisible(tid("settings-form")),
		chromedp.SetValue(css(`#name`), "Browser App 2"),
		chromedp.Click(tid("settings-save")),
		chromedp.WaitVisible(tid("flash-ok")),
	)
	require.Equal(t, "Browser App 2", b.text(`[data-testid="nav-tenant"]`))

	b.step("audit",
		chromedp.Click(tid("nav-audit")),
		chromedp.WaitVisible(tid("audit")),
	)
	actions := b.strings(`Array.from(document.querySelectorAll('[data-testid="audit-action"]')).map(e => e.textContent)`)
	for _, want := range []string{"tenant.create", "member.add", "key.create", "auth.set", "auth.mint", "tables.apply", "device.retire", "tenant.settings"} {
		require.Contains(t, actions, want)
	}

	// Tables sort by a clicked column, in the browser.
	b.step("audit-sorted",
		chromedp.Click(css(`[data-testid="audit"] thead th:nth-child(3)`)),
		chromedp.WaitVisible(css(`[data-testid="audit"] th[aria-sort="ascending"]`)),
	)
	sorted := b.strings(`Array.from(document.querySelectorAll('[data-testid="audit-action"]')).map(e => e.textContent)`)
	want := append([]string(nil), actions...)
	slices.Sort(want)
	require.Equal(t, want, sorted)
}
