package admin

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/tenant"
)

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"123", 123, true},
		{"512MiB", 512 << 20, true},
		{"1.5 GiB", 3 << 29, true},
		{"20gb", 20_000_000_000, true},
		{"2 KB", 2000, true},
		{"7B", 7, true},
		{"-1", -1, true},
		{"", 0, false},
		{"MiB", 0, false},
		{"12 parsecs", 0, false},
		{"99999999999TiB", 0, false},
		{"1e3", 0, false},
	} {
		got, ok := parseSize(c.in)
		require.Equal(t, c.ok, ok, c.in)
		if ok {
			require.Equal(t, c.want, got, c.in)
		}
	}
}

func fieldByKey(t *testing.T, key string) quotaField {
	t.Helper()
	for _, f := range quotaFields {
		if f.Key == key {
			return f
		}
	}
	t.Fatalf("no quota field %s", key)
	return quotaField{}
}

func TestQuotaFieldParse(t *testing.T) {
	for _, c := range []struct {
		key, in string
		bad     string // substring of the message; "" = accepted
	}{
		{"max_rows", "", ""},
		{"max_rows", "0", ""},
		{"max_rows", "1000", ""},
		{"max_rows", "1k", "whole number"},
		{"max_rows", "-3", "0 (unlimited) or positive"},
		{"max_storage_bytes", "2GiB", ""},
		{"max_storage_bytes", "lots", "size such as"},
		{"max_storage_bytes", "-1MiB", "positive"},
		{"requests_per_second", "12.5", ""},
		{"requests_per_second", "fast", "requests per second"},
		{"requests_per_second", "-1", "positive"},
		{"max_rows_per_chunk", "5000", ""},
		{"max_rows_per_chunk", "5001", "5000"},
	} {
		var o tenant.QuotaOverride
		msg := fieldByKey(t, c.key).parse(c.in, &o)
		if c.bad == "" {
			require.Empty(t, msg, "%s=%q", c.key, c.in)
			require.Equal(t, c.in != "", fieldByKey(t, c.key).override(o) != "", "%s=%q is set", c.key, c.in)
		} else {
			require.Contains(t, msg, c.bad, "%s=%q", c.key, c.in)
		}
	}
	var o tenant.QuotaOverride
	require.Empty(t, fieldByKey(t, "max_storage_bytes").parse("1GiB", &o))
	require.Equal(t, int64(1<<30), *o.MaxStorageBytes)
	require.Equal(t, "1073741824", fieldByKey(t, "max_storage_bytes").override(o))
}

func TestQuotaRows(t *testing.T) {
	plans := tenant.Plans{"free": {MaxActiveDevices: 10, MaxRows: 100, MaxStorageBytes: 1 << 20, MaxWatchers: 0}}
	five := int64(5)
	q := &tenant.Quota{Plan: "free", Override: tenant.QuotaOverride{MaxActiveDevices: &five}}
	q.Limits = q.Override.Apply(plans["free"])
	rows := quotaRows(q, plans, &tenant.Use{ActiveDevices: 4, Rows: 50, StorageBytes: 1 << 19, PeakWatchers: 3})
	require.Len(t, rows, len(quotaFields))
	by := map[string]int{}
	for i, r := range rows {
		by[r.Key] = i
	}
	dev := rows[by["max_active_devices"]]
	require.True(t, dev.Metered && dev.Near && dev.Overridden)
	require.Equal(t, 80, dev.Percent)
	require.Equal(t, "5", dev.Limit)
	require.Equal(t, "10", dev.PlanValue)
	require.False(t, rows[by["max_rows"]].Near)
	require.Equal(t, "512.0 KiB", rows[by["max_storage_bytes"]].Used)
	w := rows[by["max_watchers"]]
	require.False(t, w.Metered, "an unlimited quota has no bar")
	require.Equal(t, "unlimited", w.Limit)
	require.Equal(t, "3", w.Used)
	require.Equal(t, []string{"active_devices"}, nearLimit(tenant.Utilization(tenant.Use{ActiveDevices: 4}, q.Limits)))
	// Unknown use: no figures, no flags.
	for _, r := range quotaRows(q, plans, nil) {
		require.Empty(t, r.Used)
		require.False(t, r.Metered)
	}
}
