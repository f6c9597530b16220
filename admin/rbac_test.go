package admin

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPolicyRoleAction covers every role × every action.
func TestPolicyRoleAction(t *testing.T) {
	p, err := NewPolicy()
	require.NoError(t, err)
	reads := []Action{ActTenantRead, ActKeysRead, ActAuthRead, ActAuthTest, ActTablesRead, ActMembersRead, ActAuditRead,
		ActDevicesRead, ActQuotaRead, ActUsageRead}
	dev := append(reads[:len(reads):len(reads)], ActKeysWrite, ActAuthWrite, ActAuthMint, ActTablesWrite, ActDevicesWrite)
	adm := append(dev[:len(dev):len(dev)], ActTenantSettings, ActMembersWrite)
	allow := map[Role][]Action{
		RoleViewer:    reads,
		RoleDeveloper: dev,
		RoleAdmin:     adm,
		// Owners may do everything in their tenant except what belongs to
		// the platform: quotas and every tenant's usage.
		RoleOwner:    append(adm[:len(adm):len(adm)], ActTenantSuspend, ActTenantDelete),
		RoleOperator: append(reads[:len(reads):len(reads)], ActTenantSuspend, ActQuotaWrite, ActUsageAll),
		"":           nil,
	}
	for role, allowed := range allow {
		set := map[Action]bool{}
		for _, a := range allowed {
			set[a] = true
		}
		for _, act := range Actions {
			t.Run(string(role)+"/"+string(act), func(t *testing.T) {
				require.Equal(t, set[act], p.Allowed(role, act), "role %q action %q", role, act)
			})
		}
	}
}
