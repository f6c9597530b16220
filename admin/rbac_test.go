package admin

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPolicyRoleAction covers every role × every action.
func TestPolicyRoleAction(t *testing.T) {
	p, err := NewPolicy()
	require.NoError(t, err)
	allow := map[Role][]Action{
		RoleViewer: {ActTenantRead, ActKeysRead, ActAuthRead, ActAuthTest, ActTablesRead, ActMembersRead, ActAuditRead, ActDevicesRead},
		RoleDeveloper: {ActTenantRead, ActKeysRead, ActAuthRead, ActAuthTest, ActTablesRead, ActMembersRead, ActAuditRead, ActDevicesRead,
			ActKeysWrite, ActAuthWrite, ActAuthMint, ActTablesWrite, ActDevicesWrite},
		RoleAdmin: {ActTenantRead, ActKeysRead, ActAuthRead, ActAuthTest, ActTablesRead, ActMembersRead, ActAuditRead, ActDevicesRead,
			ActKeysWrite, ActAuthWrite, ActAuthMint, ActTablesWrite, ActDevicesWrite, ActTenantSettings, ActMembersWrite},
		RoleOwner: Actions,
		RoleOperator: {ActTenantRead, ActKeysRead, ActAuthRead, ActAuthTest, ActTablesRead, ActMembersRead, ActAuditRead, ActDevicesRead,
			ActTenantSuspend},
		"": nil,
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
