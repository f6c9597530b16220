package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/syncplane/syncplane/tenant"
)

// Role is a member's role in one tenant.
type Role string

// The tenant roles, most powerful first, and the platform operator role,
// which no membership grants.
const (
	RoleOwner     Role = "owner"
	RoleAdmin     Role = "admin"
	RoleDeveloper Role = "developer"
	RoleViewer    Role = "viewer"
	RoleOperator  Role = "operator"
)

// TenantRoles are the roles a membership may carry.
var TenantRoles = []Role{RoleOwner, RoleAdmin, RoleDeveloper, RoleViewer}

// ParseRole validates a membership role.
func ParseRole(s string) (Role, error) {
	for _, r := range TenantRoles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", &tenant.ValidationError{Field: "role", Message: fmt.Sprintf("role %q is invalid: use owner, admin, developer or viewer", s)}
}

// Account is a console user.
type Account struct {
	ID        int64
	Email     string
	Operator  bool
	CreatedAt time.Time
	// PasswordChangedAt versions the password: a session remembers the
	// version it signed in with and ends when the password changes.
	PasswordChangedAt time.Time
}

// Membership is an account's role in a tenant.
type Membership struct {
	TenantID  int64
	AccountID int64
	Email     string
	Role      Role
	CreatedAt time.Time
}

// Invitation is a pending invitation link.
type Invitation struct {
	ID        int64
	Email     string
	TenantID  int64 // 0: a sign-up invitation only
	Role      Role
	CreatedAt time.Time
	ExpiresAt time.Time
	Accepted  bool
}

// AccessToken is a personal access token's stored record.
type AccessToken struct {
	ID         int64
	AccountID  int64
	Label      string
	Display    string
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// Errors of the account store.
var (
	ErrEmailTaken         = errors.New("an account with this email exists")
	ErrBadCredentials     = errors.New("wrong email or password")
	ErrInvitationInvalid  = errors.New("invitation unknown, used or expired")
	ErrLastOwner          = errors.New("a tenant keeps at least one owner")
	ErrInvalidAccessToken = errors.New("invalid access token")
)

// Accounts is the store of console accounts, memberships, invitations and
// personal access tokens, in the control plane.
type Accounts struct {
	db  *pgxpool.Pool
	now func() time.Time
}

// NewAccounts returns the account store over the control-plane pool.
func NewAccounts(db *pgxpool.Pool) *Accounts { return &Accounts{db: db, now: time.Now} }

// NormalizeEmail validates and lower-cases an email address.
func NormalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || len(s) > 254 {
		return "", &tenant.ValidationError{Field: "email", Message: "enter a valid email address, such as ada@example.com"}
	}
	return strings.ToLower(s), nil
}

// ValidatePassword checks a new password's length.
func ValidatePassword(p string) error {
	switch {
	case len(p) < MinPasswordLen:
		return &tenant.ValidationError{Field: "password", Message: fmt.Sprintf("use at least %d characters", MinPasswordLen)}
	case len(p) > MaxPasswordLen:
		return &tenant.ValidationError{Field: "password", Message: fmt.Sprintf("use at most %d characters", MaxPasswordLen)}
	}
	return nil
}

const accountColumns = `a.id, a.email, a.created_at, a.password_changed_at,
	EXISTS (SELECT 1 FROM syncplane.platform_operators o WHERE o.account_id = a.id)`

func scanAccount(row pgx.Row) (*Account, error) {
	var a Account
	err := row.Scan(&a.ID, &a.Email, &a.CreatedAt, &a.PasswordChangedAt, &a.Operator)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, tenant.ErrNotFound
	}
	return &a, err
}

// CreateAccount signs up a new account.
func (s *Accounts) CreateAccount(ctx context.Context, email, password string) (*Account, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	if err := ValidatePassword(password); err != nil {
		return nil, err
	}
	hash, err := HashPassword(password)
	if err != nil {
		return nil, err
	}
	a := &Account{Email: email}
	err = s.db.QueryRow(ctx, `INSERT INTO syncplane.accounts (email, password_hash) VALUES ($1, $2)
		RETURNING id, created_at, password_changed_at`, email, hash).Scan(&a.ID, &a.CreatedAt, &a.PasswordChangedAt)
	if isUnique(err) {
		return nil, ErrEmailTaken
	}
	if err != nil {
		return nil, fmt.Errorf("create account: %w", err)
	}
	return a, nil
}

// Authenticate checks an email and password. Unknown emails cost the same
// as wrong passwords and fail the same way.
func (s *Accounts) Authenticate(ctx context.Context, email, password string) (*Account, error) {
	if len(password) > MaxPasswordLen {
		return nil, ErrBadCredentials
	}
	var hash string
	a, err := scanAccountWithHash(s.db.QueryRow(ctx, `SELECT `+accountColumns+`, a.password_hash FROM syncplane.accounts a
		WHERE lower(a.email) = lower($1)`, strings.TrimSpace(email)), &hash)
	if errors.Is(err, tenant.ErrNotFound) {
		_, _ = CheckPassword(dummyHash, password)
		return nil, ErrBadCredentials
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	ok, err := CheckPassword(hash, password)
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	if !ok {
		return nil, ErrBadCredentials
	}
	return a, nil
}

func scanAccountWithHash(row pgx.Row, hash *string) (*Account, error) {
	var a Account
	err := row.Scan(&a.ID, &a.Email, &a.CreatedAt, &a.PasswordChangedAt, &a.Operator, hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, tenant.ErrNotFound
	}
	return &a, err
}

// Account returns an account by id.
func (s *Accounts) Account(ctx context.Context, id int64) (*Account, error) {
	a, err := scanAccount(s.db.QueryRow(ctx, `SELECT `+accountColumns+` FROM syncplane.accounts a WHERE a.id = $1`, id))
	if err != nil && !errors.Is(err, tenant.ErrNotFound) {
		return nil, fmt.Errorf("get account: %w", err)
	}
	return a, err
}

// AccountByEmail returns an account by email.
func (s *Accounts) AccountByEmail(ctx context.Context, email string) (*Account, error) {
	a, err := scanAccount(s.db.QueryRow(ctx, `SELECT `+accountColumns+` FROM syncplane.accounts a WHERE lower(a.email) = lower($1)`, email))
	if err != nil && !errors.Is(err, tenant.ErrNotFound) {
		return nil, fmt.Errorf("get account: %w", err)
	}
	return a, err
}

// ChangePassword replaces an account's password after checking the current
// one. Every other session of the account ends (see
// Account.PasswordChangedAt); the new version is returned.
func (s *Accounts) ChangePassword(ctx context.Context, id int64, current, next string) (time.Time, error) {
	var hash string
	if err := s.db.QueryRow(ctx, `SELECT password_hash FROM syncplane.accounts WHERE id = $1`, id).Scan(&hash); err != nil {
		return time.Time{}, fmt.Errorf("change password: %w", err)
	}
	ok, err := CheckPassword(hash, current)
	if err != nil {
		return time.Time{}, fmt.Errorf("change password: %w", err)
	}
	if !ok {
		return time.Time{}, &tenant.ValidationError{Field: "current_password", Message: "the current password is wrong"}
	}
	if err := ValidatePassword(next); err != nil {
		return time.Time{}, &tenant.ValidationError{Field: "new_password", Message: err.(*tenant.ValidationError).Message}
	}
	nh, err := HashPassword(next)
	if err != nil {
		return time.Time{}, err
	}
	var changed time.Time
	if err := s.db.QueryRow(ctx, `UPDATE syncplane.accounts SET password_hash = $2, password_changed_at = clock_timestamp()
		WHERE id = $1 RETURNING password_changed_at`, id, nh).Scan(&changed); err != nil {
		return time.Time{}, fmt.Errorf("change password: %w", err)
	}
	return changed, nil
}

// SetOperator grants or withdraws the platform operator role.
func (s *Accounts) SetOperator(ctx context.Context, id int64, on bool) error {
	q := `INSERT INTO syncplane.platform_operators (account_id) VALUES ($1) ON CONFLICT DO NOTHING`
	if !on {
		q = `DELETE FROM syncplane.platform_operators WHERE account_id = $1`
	}
	if _, err := s.db.Exec(ctx, q, id); err != nil {
		return fmt.Errorf("set operator: %w", err)
	}
	return nil
}

// Role returns accountID's role in tenantID, or "" when it has none.
func (s *Accounts) Role(ctx context.Context, tenantID, accountID int64) (Role, error) {
	var r string
	err := s.db.QueryRow(ctx, `SELECT role FROM syncplane.memberships WHERE tenant_id = $1 AND account_id = $2`,
		tenantID, accountID).Scan(&r)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read membership: %w", err)
	}
	return Role(r), nil
}

// TenantRoles returns the ids and roles of every tenant accountID belongs to.
func (s *Accounts) TenantRoles(ctx context.Context, accountID int64) (map[int64]Role, error) {
	rows, err := s.db.Query(ctx, `SELECT tenant_id, role FROM syncplane.memberships WHERE account_id = $1`, accountID)
	if err != nil {
		return nil, fmt.Errorf("list memberships: %w", err)
	}
	defer rows.Close()
	out := map[int64]Role{}
	for rows.Next() {
		var id int64
		var r string
		if err := rows.Scan(&id, &r); err != nil {
			return nil, err
		}
		out[id] = Role(r)
	}
	return out, rows.Err()
}

// Members lists a tenant's members by email.
func (s *Accounts) Members(ctx context.Context, tenantID int64) ([]Membership, error) {
	rows, err := s.db.Query(ctx, `SELECT m.tenant_id, m.account_id, a.email, m.role, m.created_at
		FROM syncplane.memberships m JOIN syncplane.accounts a ON a.id = m.account_id
		WHERE m.tenant_id = $1 ORDER BY a.email`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Membership, error) {
		var m Membership
		var role string
		err := r.Scan(&m.TenantID, &m.AccountID, &m.Email, &role, &m.CreatedAt)
		m.Role = Role(role)
		return m, err
	})
}

// AddMember grants accountID role in tenantID (replacing any role), auditing it.
func (s *Accounts) AddMember(ctx context.Context, tenantID, accountID int64, role Role, by tenant.Actor) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var email string
		if err := tx.QueryRow(ctx, `SELECT email FROM syncplane.accounts WHERE id = $1`, accountID).Scan(&email); err != nil {
			return fmt.Errorf("add member: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO syncplane.memberships (tenant_id, account_id, role) VALUES ($1, $2, $3)
			ON CONFLICT (tenant_id, account_id) DO UPDATE SET role = EXCLUDED.role`, tenantID, accountID, string(role)); err != nil {
			return fmt.Errorf("add member: %w", err)
		}
		return audit(ctx, tx, tenantID, by, "member.add", email, map[string]string{"role": string(role)})
	})
}

// SetRole changes a member's role; the last owner cannot be demoted.
func (s *Accounts) SetRole(ctx context.Context, tenantID, accountID int64, role Role, by tenant.Actor) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var old, email string
		err := tx.QueryRow(ctx, `SELECT m.role, a.email FROM syncplane.memberships m JOIN syncplane.accounts a ON a.id = m.account_id
			WHERE m.tenant_id = $1 AND m.account_id = $2 FOR UPDATE OF m`, tenantID, accountID).Scan(&old, &email)
		if errors.Is(err, pgx.ErrNoRows) {
			return tenant.ErrNotFound
		}
		if err != nil {
			return err
		}
		if Role(old) == RoleOwner && role != RoleOwner {
			if err := checkOtherOwner(ctx, tx, tenantID, accountID); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE syncplane.memberships SET role = $3 WHERE tenant_id = $1 AND account_id = $2`,
			tenantID, accountID, string(role)); err != nil {
			return err
		}
		return audit(ctx, tx, tenantID, by, "member.role", email, map[string]string{"from": old, "to": string(role)})
	})
}

// RemoveMember removes a member; the last owner cannot be removed.
func (s *Accounts) RemoveMember(ctx context.Context, tenantID, accountID int64, by tenant.Actor) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var old, email string
		err := tx.QueryRow(ctx, `SELECT m.role, a.email FROM syncplane.memberships m JOIN syncplane.accounts a ON a.id = m.account_id
			WHERE m.tenant_id = $1 AND m.account_id = $2 FOR UPDATE OF m`, tenantID, accountID).Scan(&old, &email)
		if errors.Is(err, pgx.ErrNoRows) {
			return tenant.ErrNotFound
		}
		if err != nil {
			return err
		}
		if Role(old) == RoleOwner {
			if err := checkOtherOwner(ctx, tx, tenantID, accountID); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM syncplane.memberships WHERE tenant_id = $1 AND account_id = $2`, tenantID, accountID); err != nil {
			return err
		}
		return audit(ctx, tx, tenantID, by, "member.remove", email, map[string]string{"role": old})
	})
}

func checkOtherOwner(ctx context.Context, tx pgx.Tx, tenantID, accountID int64) error {
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM syncplane.memberships WHERE tenant_id = $1 AND role = 'owner' AND account_id <> $2`,
		tenantID, accountID).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return ErrLastOwner
	}
	return nil
}

// audit appends to syncplane.audit_log inside tx (the same table and shape
// tenant.Store writes).
func audit(ctx context.Context, tx pgx.Tx, tenantID int64, by tenant.Actor, action, target string, detail any) error {
	var tid *int64
	if tenantID != 0 {
		tid = &tenantID
	}
	if detail == nil {
		detail = map[string]string{}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO syncplane.audit_log (tenant_id, actor, action, target, detail, remote_addr)
		VALUES ($1, $2, $3, $4, $5, $6)`, tid, by.Name, action, target, detail, by.RemoteAddr); err != nil {
		return fmt.Errorf("append audit log: %w", err)
	}
	return nil
}

// newToken returns a random token with prefix and its stored hash.
func newToken(prefix string) (string, []byte, error) {
	b := make([]byte, 30)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("generate token: %w", err)
	}
	tok := prefix + base64.RawURLEncoding.EncodeToString(b)
	return tok, hashToken(tok), nil
}

func hashToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// InvitationTTL is how long an invitation link stays valid.
const InvitationTTL = 7 * 24 * time.Hour

// CreateInvitation creates an invitation link token for email; tenantID 0
// makes a sign-up-only invitation.
func (s *Accounts) CreateInvitation(ctx context.Context, email string, tenantID int64, role Role, invitedBy int64, by tenant.Actor) (string, *Invitation, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return "", nil, err
	}
	tok, hash, err := newToken("inv_")
	if err != nil {
		return "", nil, err
	}
	inv := &Invitation{Email: email, TenantID: tenantID, Role: role, ExpiresAt: s.now().Add(InvitationTTL)}
	var tid *int64
	var r *string
	if tenantID != 0 {
		tid = &tenantID
		rs := string(role)
		r = &rs
	}
	var inviter *int64
	if invitedBy != 0 {
		inviter = &invitedBy
	}
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO syncplane.invitations (token_hash, email, tenant_id, role, invited_by, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, created_at`, hash, email, tid, r, inviter, inv.ExpiresAt).
			Scan(&inv.ID, &inv.CreatedAt); err != nil {
			return err
		}
		return audit(ctx, tx, tenantID, by, "member.invite", email, map[string]string{"role": string(role)})
	})
	if err != nil {
		return "", nil, fmt.Errorf("create invitation: %w", err)
	}
	return tok, inv, nil
}

// Invitation returns the pending invitation of a link token.
func (s *Accounts) Invitation(ctx context.Context, tok string) (*Invitation, error) {
	var inv Invitation
	var tid *int64
	var role *string
	err := s.db.QueryRow(ctx, `SELECT id, email, tenant_id, role, created_at, expires_at FROM syncplane.invitations
		WHERE token_hash = $1 AND accepted_at IS NULL AND expires_at > now()`, hashToken(tok)).
		Scan(&inv.ID, &inv.Email, &tid, &role, &inv.CreatedAt, &inv.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrInvitationInvalid
	}
	if err != nil {
		return nil, fmt.Errorf("read invitation: %w", err)
	}
	if tid != nil {
		inv.TenantID = *tid
	}
	if role != nil {
		inv.Role = Role(*role)
	}
	return &inv, nil
}

// AcceptInvitation marks an invitation used and, for a tenant invitation,
// grants accountID its role.
func (s *Accounts) AcceptInvitation(ctx context.Context, tok string, accountID int64, by tenant.Actor) (*Invitation, error) {
	var inv Invitation
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var tid *int64
		var role *string
		err := tx.QueryRow(ctx, `UPDATE syncplane.invitations SET accepted_at = now()
			WHERE token_hash = $1 AND accepted_at IS NULL AND expires_at > now()
			RETURNING id, email, tenant_id, role`, hashToken(tok)).Scan(&inv.ID, &inv.Email, &tid, &role)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrInvitationInvalid
		}
		if err != nil {
			return err
		}
		if tid == nil {
			return nil
		}
		inv.TenantID, inv.Role = *tid, Role(*role)
		if _, err := tx.Exec(ctx, `INSERT INTO syncplane.memberships (tenant_id, account_id, role) VALUES ($1, $2, $3)
			ON CONFLICT (tenant_id, account_id) DO NOTHING`, inv.TenantID, accountID, *role); err != nil {
			return err
		}
		return audit(ctx, tx, inv.TenantID, by, "member.join", inv.Email, map[string]string{"role": *role})
	})
	if err != nil {
		if errors.Is(err, ErrInvitationInvalid) {
			return nil, err
		}
		return nil, fmt.Errorf("accept invitation: %w", err)
	}
	return &inv, nil
}

// PendingInvitations lists a tenant's unaccepted, unexpired invitations.
func (s *Accounts) PendingInvitations(ctx context.Context, tenantID int64) ([]Invitation, error) {
	rows, err := s.db.Query(ctx, `SELECT id, email, role, created_at, expires_at FROM syncplane.invitations
		WHERE tenant_id = $1 AND accepted_at IS NULL AND expires_at > now() ORDER BY id DESC`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list invitations: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Invitation, error) {
		var inv Invitation
		var role string
		err := r.Scan(&inv.ID, &inv.Email, &role, &inv.CreatedAt, &inv.ExpiresAt)
		inv.TenantID, inv.Role = tenantID, Role(role)
		return inv, err
	})
}

// CancelInvitation withdraws a pending invitation of tenantID.
func (s *Accounts) CancelInvitation(ctx context.Context, tenantID, id int64, by tenant.Actor) error {
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var email string
		err := tx.QueryRow(ctx, `DELETE FROM syncplane.invitations WHERE id = $1 AND tenant_id = $2 AND accepted_at IS NULL
			RETURNING email`, id, tenantID).Scan(&email)
		if errors.Is(err, pgx.ErrNoRows) {
			return tenant.ErrNotFound
		}
		if err != nil {
			return err
		}
		return audit(ctx, tx, tenantID, by, "member.uninvite", email, nil)
	})
	if err != nil && !errors.Is(err, tenant.ErrNotFound) {
		return fmt.Errorf("cancel invitation: %w", err)
	}
	return err
}

// CreateAccessToken issues a personal access token; the token text is
// returned once and only its hash is stored.
func (s *Accounts) CreateAccessToken(ctx context.Context, accountID int64, label string) (string, *AccessToken, error) {
	if len(label) > 100 {
		return "", nil, &tenant.ValidationError{Field: "label", Message: "label must be at most 100 characters"}
	}
	tok, hash, err := newToken(AccessTokenPrefix)
	if err != nil {
		return "", nil, err
	}
	t := &AccessToken{AccountID: accountID, Label: label, Display: tok[:len(AccessTokenPrefix)+4] + "…"}
	if err := s.db.QueryRow(ctx, `INSERT INTO syncplane.access_tokens (account_id, label, hash, display) VALUES ($1, $2, $3, $4)
		RETURNING id, created_at`, accountID, label, hash, t.Display).Scan(&t.ID, &t.CreatedAt); err != nil {
		return "", nil, fmt.Errorf("create access token: %w", err)
	}
	return tok, t, nil
}

// AccessTokenPrefix starts every personal access token.
const AccessTokenPrefix = "sp_pat_"

// AccessTokens lists an account's tokens, newest first.
func (s *Accounts) AccessTokens(ctx context.Context, accountID int64) ([]AccessToken, error) {
	rows, err := s.db.Query(ctx, `SELECT id, account_id, label, display, created_at, last_used_at, revoked_at
		FROM syncplane.access_tokens WHERE account_id = $1 ORDER BY id DESC`, accountID)
	if err != nil {
		return nil, fmt.Errorf("list access tokens: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (AccessToken, error) {
		var t AccessToken
		err := r.Scan(&t.ID, &t.AccountID, &t.Label, &t.Display, &t.CreatedAt, &t.LastUsedAt, &t.RevokedAt)
		return t, err
	})
}

// RevokeAccessToken revokes one of accountID's tokens.
func (s *Accounts) RevokeAccessToken(ctx context.Context, accountID, id int64) error {
	tag, err := s.db.Exec(ctx, `UPDATE syncplane.access_tokens SET revoked_at = coalesce(revoked_at, now())
		WHERE id = $1 AND account_id = $2`, id, accountID)
	if err != nil {
		return fmt.Errorf("revoke access token: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return tenant.ErrNotFound
	}
	return nil
}

// LookupAccessToken resolves a presented token to its account.
func (s *Accounts) LookupAccessToken(ctx context.Context, tok string) (*Account, error) {
	if !strings.HasPrefix(tok, AccessTokenPrefix) || len(tok) > 100 {
		return nil, ErrInvalidAccessToken
	}
	var id int64
	err := s.db.QueryRow(ctx, `UPDATE syncplane.access_tokens SET last_used_at = now()
		WHERE hash = $1 AND revoked_at IS NULL RETURNING account_id`, hashToken(tok)).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrInvalidAccessToken
	}
	if err != nil {
		return nil, fmt.Errorf("look up access token: %w", err)
	}
	return s.Account(ctx, id)
}

func isUnique(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}
