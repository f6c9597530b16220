// Package sync is Syncplane's protocol engine: the oversqlite v1 sync
// protocol (shared/protocol/SYNC_PROTOCOL.md) served per tenant, with every
// piece of state kept in the tenant's own PostgreSQL schema t_<slug>.
//
// Other packages import it as syncx, since its name shadows the standard
// library's.
//
// Invariants the code relies on:
//   - A user's mutations (connect, push create/chunk/commit, rotation,
//     server-originated writes) lock the user's _sync_scope row FOR UPDATE
//     first, so they are serialized across replicas and nothing else is.
//   - Business-table writes happen only in transactions bound with
//     set_config('syncplane.user_id', user, true) (and the bundle being
//     built); the statement triggers of migrations/tenant append every
//     effect to that bundle's rows, which the committing transaction
//     collapses per key into exactly one bundle.
//   - Watch notifications are published after the commit, never inside it.
package sync
