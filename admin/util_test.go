package admin_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/tenant/tenanttest"
)

type goquerySelection = goquery.Selection

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }

func mustTenantID(t *testing.T, h *harness, slug string) int64 {
	t.Helper()
	tn, err := h.store.Tenant(context.Background(), slug)
	require.NoError(t, err)
	return tn.ID
}

func mustAccountID(t *testing.T, h *harness, email string) int64 {
	t.Helper()
	a, err := h.console.Accounts().AccountByEmail(context.Background(), email)
	require.NoError(t, err)
	return a.ID
}

var testActor = tenanttest.Actor
