-- Console: accounts, tenant memberships, platform operators, invitations,
-- personal access tokens and the session store of the web console.

CREATE TABLE syncplane.accounts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    password_changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX accounts_email_key ON syncplane.accounts (lower(email));

-- Platform operators see every tenant and may suspend one.
CREATE TABLE syncplane.platform_operators (
    account_id bigint PRIMARY KEY REFERENCES syncplane.accounts (id) ON DELETE CASCADE,
    granted_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE syncplane.memberships (
    tenant_id  bigint NOT NULL REFERENCES syncplane.tenants (id) ON DELETE CASCADE,
    account_id bigint NOT NULL REFERENCES syncplane.accounts (id) ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('owner', 'admin', 'developer', 'viewer')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, account_id)
);
CREATE INDEX memberships_account_idx ON syncplane.memberships (account_id);

-- An invitation is a link: with a tenant it grants a membership, without one
-- it only lets its holder sign up while open sign-up is closed.
CREATE TABLE syncplane.invitations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash  bytea NOT NULL UNIQUE,
    email       text NOT NULL,
    tenant_id   bigint REFERENCES syncplane.tenants (id) ON DELETE CASCADE,
    role        text CHECK (role IN ('owner', 'admin', 'developer', 'viewer')),
    invited_by  bigint REFERENCES syncplane.accounts (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    accepted_at timestamptz,
    CHECK ((tenant_id IS NULL) = (role IS NULL))
);
CREATE INDEX invitations_tenant_idx ON syncplane.invitations (tenant_id);

-- Personal access tokens authenticate the management API as their account.
CREATE TABLE syncplane.access_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id   bigint NOT NULL REFERENCES syncplane.accounts (id) ON DELETE CASCADE,
    label        text NOT NULL DEFAULT '',
    hash         bytea NOT NULL UNIQUE,
    display      text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX access_tokens_account_idx ON syncplane.access_tokens (account_id);

-- Console sessions (the scs store layout; tokens are stored hashed).
CREATE TABLE syncplane.sessions (
    token  text PRIMARY KEY,
    data   bytea NOT NULL,
    expiry timestamptz NOT NULL
);
CREATE INDEX sessions_expiry_idx ON syncplane.sessions (expiry);
