// Package device is Syncplane's reference device client: a pure-Go SQLite
// database that syncs with a Syncplane tenant over the oversqlite v1
// protocol (shared/protocol/SYNC_PROTOCOL.md), following the protocol's
// "Client flows" (section 13) step by step. It is what the end-to-end tests,
// the scenario runner and the load generator drive, and it documents how a
// well-behaved client acts. It talks to the server over HTTP only and is
// never imported by server code.
//
// # The model
//
// One Client owns one SQLite file (one installed app). Open creates, from the
// tenant's table definition (a *tenant.Schema), one local table per synced
// table with the same lowercase column names (the protocol requires column
// parity, 5.5):
//
//	text, timestamp, json, uuid -> TEXT (uuids canonical lowercase, json as JSON text)
//	integer                     -> INTEGER (exact 64-bit)
//	real                        -> REAL
//	blob                        -> BLOB (base64 on the wire)
//
// Tables are STRICT; uuid columns must hold canonical lowercase UUID text and
// timestamp columns something shaped like an RFC 3339 date-time, so values the
// server would refuse fail at the app's INSERT rather than in a push. Foreign
// keys reference the parent's sync key and are DEFERRABLE INITIALLY DEFERRED,
// with the definition's ON DELETE / ON UPDATE actions (RESTRICT, which SQLite
// never defers, becomes NO ACTION locally). Indexes are created non-unique:
// uniqueness is the server's job, enforced per user at commit.
//
// Open creates missing tables but does not migrate existing ones: a device
// whose table definition changed needs a new database (or its own migration
// that keeps every column the server sends).
//
// The app reads and writes those tables with plain SQL through DB(). Triggers
// capture every local INSERT, UPDATE and DELETE into a coalesced dirty set,
// one entry per (table, key): insert then update is one INSERT, insert then
// delete of a row the server never saw is nothing, and deleting a synced row
// is a DELETE based on the row version last seen. A change of a row's key is
// a delete of the old key plus an insert of the new one. Triggers are
// suppressed while the client applies server rows.
//
// Metadata lives in tables prefixed _sync_: the persisted source id and next
// source_bundle_id, the checkpoint (last_bundle_seq_seen), the server row
// version of every key seen, the frozen outbox of the push in flight, the
// attachment and initialization state and recovery flags. Everything the
// client learns is written in the same SQLite transaction as the rows it
// applies, so a crash at any point resumes correctly.
//
// # Operations
//
//   - Attach: capabilities, then connect with has_local_pending_rows.
//     initialize_local seeds the server from the local rows (a push carrying
//     the initialization id); initialize_empty attaches at checkpoint 0;
//     remote_authoritative hydrates from a snapshot, replacing local rows;
//     retry_later returns a *RetryLaterError.
//   - Push: freezes the dirty set into the outbox as one logical push with
//     the next source_bundle_id (upserts parents first, deletes children
//     first), uploads it in chunks (Config.ChunkSize, default 1000), commits,
//     fetches the committed bundle, verifies row_count and bundle_hash,
//     applies the server's rows as authoritative and advances
//     source_bundle_id, and the checkpoint when the bundle is the next one.
//   - Pull: freezes the ceiling (stable_bundle_seq) and applies each bundle in
//     its own transaction, skipping rows whose local version is already
//     newer; only runs when nothing is pending locally.
//   - Sync: push then pull.
//   - Watch: keeps GET /sync/watch open and syncs on every event, reconnecting
//     as needed; polls when the server does not offer watch.
//   - Detach: pushes what is pending, then clears all synced data so another
//     user can Attach (the source id is kept, as the protocol says).
//   - DiscardLocalChanges: drops unsent local changes and restores the
//     server's rows from a snapshot; the way out of a push the server refuses
//     for good (e.g. a value violating a server constraint).
//
// Conflicts (409 push_conflict) go to Config.Resolver, which accepts the
// server's row, keeps the local intent or supplies a merged row; the intent is
// rebased on the server version and pushed again with the same
// source_bundle_id, at most twice automatically. history_pruned from pull or
// from fetching a just-committed bundle rebuilds from a snapshot keeping the
// source; history_pruned at push create, source_sequence_out_of_order,
// source_sequence_changed and source_retired rotate the source: a snapshot
// with source_replacement, after which the client re-applies its unsent local
// intent, switches to the replacement id and pushes as source_bundle_id 1.
// (A seed push refused as out of order, which happens when a device switches
// to a new user with local rows while its counter is still ahead, cannot
// rotate before the scope exists: the client ends its initialization lease
// empty, then pushes and rotates normally.)
// Requests are retried with short exponential backoff on 429, 502, 503, 504
// and network errors (three attempts; a Retry-After header of up to 5 s is
// honoured). A push whose commit answer was lost is confirmed through
// already_committed: the committed rows must be replay-equivalent to the
// frozen outbox, otherwise the push fails with *ReplayMismatchError and the
// outbox is kept for inspection.
//
// See package sim for the end-to-end scenario suite built on this client.
//
// Integers are carried exactly (JSON numbers decoded as json.Number), blobs as
// standard base64, and bundle hashes are checked with the canonical JSON of
// protocol 5.6 (see CanonicalJSON and BundleHash).
package device
