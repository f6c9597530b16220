DROP TABLE IF EXISTS syncplane.sessions;
DROP TABLE IF EXISTS syncplane.access_tokens;
DROP TABLE IF EXISTS syncplane.invitations;
DROP TABLE IF EXISTS syncplane.memberships;
DROP TABLE IF EXISTS syncplane.platform_operators;
DROP TABLE IF EXISTS syncplane.accounts;
