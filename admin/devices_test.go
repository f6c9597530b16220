package admin_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// seedSync writes sync metadata as the sync engine would after a device of
// user "alice" pushed one bundle.
func seedSync(t *testing.T, h *harness, slug string) {
	t.Helper()
	tn, err := h.store.Tenant(context.Background(), slug)
	require.NoError(t, err)
	pool, err := h.store.PoolFor(tn)
	require.NoError(t, err)
	id := func(table string) string { return pgx.Identifier{tn.SchemaName(), table}.Sanitize() }
	ctx := context.Background()
	for _, q := range []string{
		`INSERT INTO ` + id("_sync_scope") + ` (user_id, state, latest_bundle_seq) VALUES ('alice', 'INITIALIZED', 1)`,
		`INSERT INTO ` + id("_sync_source") + ` (user_id, source_id, state, max_source_bundle_id, bundles_pushed) VALUES ('alice', 'dev-a1', 'active', 1, 1)`,
		`INSERT INTO ` + id("_sync_source") + ` (user_id, source_id, state) VALUES ('bob', 'dev-b1', 'active')`,
		`INSERT INTO ` + id("_sync_bundle") + ` (user_id, bundle_seq, source_id, source_bundle_id, row_count, bundle_hash) VALUES ('alice', 1, 'dev-a1', 1, 2, 'h')`,
		`INSERT INTO ` + id("_sync_bundle_row") + ` (user_id, bundle_seq, row_ordinal, table_name, key_text, op, payload) VALUES
			('alice', 1, 0, 'notes', 'n1', 'INSERT', '{"id":"n1"}'), ('alice', 1, 1, 'notes', 'n2', 'INSERT', '{"id":"n2"}')`,
	} {
		_, err := pool.Exec(ctx, q)
		require.NoError(t, err, q)
	}
}

func TestDevicesDataOverview(t *testing.T) {
	h := newHarness(t)
	owner := h.signup()
	slug := owner.newTenant("devices")
	base := "/console/t/" + slug

	p := owner.get(base + "/devices")
	require.Equal(t, 1, p.testid("devices-empty").Length())
	p = owner.get(base + "/data")
	require.Equal(t, 1, p.testid("data-empty").Length())

	seedSync(t, h, slug)
	p = owner.get(base + "/devices")
	require.Equal(t, 2, p.testid("device-row").Length())
	p = owner.get(base + "/devices?user=ali")
	require.Equal(t, 1, p.testid("device-row").Length())
	require.Equal(t, "dev-a1", p.text("device-source"))

	// A viewer sees devices but cannot retire them.
	viewer := h.signup()
	require.NoError(t, h.console.Accounts().AddMember(context.Background(), mustTenantID(t, h, slug),
		mustAccountID(t, h, viewer.Email), "viewer", testActor))
	p = viewer.get(base + "/devices")
	require.Equal(t, 0, p.testid("device-retire").Length())
	require.Equal(t, http.StatusForbidden, viewer.post(base+"/devices/retire", url.Values{"user": {"alice"}, "source": {"dev-a1"}}).Status)

	p = owner.get(base + "/devices?user=alice")
	p = owner.post(base+"/devices/retire", url.Values{"user": {"alice"}, "source": {"dev-a1"}})
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	// The retired device gets a reserved replacement (protocol 10), so it
	// can rotate to it instead of being stranded.
	p = owner.get(base + "/devices?user=alice")
	require.Equal(t, "reservedretired", p.text("device-state"), "the new reserved source is listed first")
	tn, err := h.store.Tenant(context.Background(), slug)
	require.NoError(t, err)
	var replacement, state string
	require.NoError(t, h.store.DB().QueryRow(context.Background(), `SELECT r.source_id, r.state FROM `+
		pgx.Identifier{tn.SchemaName(), "_sync_source"}.Sanitize()+` o JOIN `+pgx.Identifier{tn.SchemaName(), "_sync_source"}.Sanitize()+
		` r ON r.user_id = o.user_id AND r.source_id = o.replaced_by_source_id
		WHERE o.user_id = 'alice' AND o.source_id = 'dev-a1' AND o.state = 'retired'`).Scan(&replacement, &state))
	require.Equal(t, "reserved", state)
	require.NotEmpty(t, replacement)
	require.Equal(t, http.StatusNotFound, owner.post(base+"/devices/retire", url.Values{"user": {"alice"}, "source": {"nope"}}).Status)

	// The last error a device was answered with is listed; a revoked device
	// gets no replacement.
	_, err = h.store.DB().Exec(context.Background(), `UPDATE `+pgx.Identifier{tn.SchemaName(), "_sync_source"}.Sanitize()+
		` SET last_error = 'quota_exceeded: row quota of 2 reached', last_error_at = now() WHERE source_id = 'dev-b1'`)
	require.NoError(t, err)
	p = owner.get(base + "/devices?user=bob")
	require.Contains(t, p.text("device-error"), "row quota of 2 reached")
	require.Equal(t, http.StatusForbidden, viewer.post(base+"/devices/revoke", url.Values{"user": {"bob"}, "source": {"dev-b1"}}).Status)
	p = owner.post(base+"/devices/revoke", url.Values{"user": {"bob"}, "source": {"dev-b1"}})
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	p = owner.get(base + "/devices?user=bob")
	require.Equal(t, "retired", p.text("device-state"), "revoked: no reserved successor")
	require.Equal(t, 1, owner.get(base+"/audit?action=device.revoke").testid("audit-row").Length())
	require.Equal(t, 1, owner.get(base+"/audit?action=device.retire").testid("audit-row").Length())

	// Data inspector: users, bundle timeline with rows.
	p = owner.get(base + "/data")
	require.Contains(t, p.text("data-users"), "alice")
	p = owner.get(base + "/data?user=alice")
	require.Equal(t, 1, p.testid("bundle-row").Length())
	require.Contains(t, p.text("bundles"), "notes/n2")

	// Overview: usage figures and charts.
	p = owner.get(base)
	require.Equal(t, "2", p.text("active-today"))
	require.Equal(t, "0", p.text("devices-count"), "alice's phone is retired, bob's revoked")
	require.Equal(t, 1, p.testid("chart-bundles").Length())
	require.Equal(t, 14, p.testid("chart-rows").Find("rect").Length())
	require.Equal(t, "free", p.text("quota-plan"))
	require.Equal(t, 8, p.testid("quota-row").Length())

	// Another tenant's member sees none of it.
	other := h.signup()
	require.Equal(t, http.StatusNotFound, other.get(base+"/devices").Status)
	require.Equal(t, http.StatusNotFound, other.get(base+"/data?user=alice").Status)
}
