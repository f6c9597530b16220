package sync

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/syncplane/syncplane/tenant"
	"github.com/syncplane/syncplane/web/server"
)

// BundleResult describes one committed bundle.
type BundleResult struct {
	BundleSeq      int64  `json:"bundle_seq"`
	SourceID       string `json:"source_id"`
	SourceBundleID int64  `json:"source_bundle_id"`
	RowCount       int64  `json:"row_count"`
	BundleHash     string `json:"bundle_hash"`
}

// errNoEffects: the transaction's effects collapsed to nothing (8.3).
var errNoEffects = errors.New("no captured business-table effects")

// bindTx binds tx to (user, source, source_bundle_id) and to the bundle
// being built (bundle_seq, next row ordinal), so the capture triggers accept
// its writes and append them to that bundle, and defers all deferrable
// constraints. Caller holds the user's scope lock.
func bindTx(ctx context.Context, tx pgx.Tx, user, source string, sbid, bundleSeq int64) error {
	b := &pgx.Batch{}
	queueBind(b, user, source, sbid, bundleSeq)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("bind sync transaction: %w", err)
	}
	return nil
}

// queueBind queues bindTx's statements on b (to share a round trip).
func queueBind(b *pgx.Batch, user, source string, sbid, bundleSeq int64) {
	b.Queue(`SELECT set_config('syncplane.user_id', $1, true), set_config('syncplane.source_id', $2, true),
		set_config('syncplane.source_bundle_id', $3, true), set_config('syncplane.bundle_seq', $4, true),
		set_config('syncplane.row_ordinal', '0', true)`, user, source, fmt.Sprint(sbid), fmt.Sprint(bundleSeq))
	b.Queue(`SET CONSTRAINTS ALL DEFERRED`)
}

// bundleSpec is what finishBundle needs to seal a bound transaction.
type bundleSpec struct {
	schema   string // t_<slug>
	wire     string
	user     string
	source   string
	sbid     int64
	scope    *scopeState // locked by this transaction
	cat      *catalog
	retained int64  // retained window W
	pushID   string // session to delete, "" for server-originated writes
	seed     bool   // a seed push: the scope becomes INITIALIZED
	tenant   *tenant.Tenant
	limits   tenant.Limits // quotas checked before the bundle is written
	// distinctKeys: the caller knows every key was changed at most once
	// (a push without duplicate targets whose deletes cannot spread), so
	// there is nothing to collapse.
	distinctKeys bool
	// newKeys: every captured key is known to be new (a push of inserts
	// with base version 0 that passed the conflict check), so the bundle
	// deletes nothing and writes no tombstones.
	newKeys bool
}

// collapseSQL collapses the bundle rows the capture triggers appended
// (protocol 8.3) when a key was changed more than once; it does nothing in
// the common case of one effect per key. Per key, following the changes in
// order: first INSERT and last DELETE drop the key; last DELETE is a DELETE;
// first INSERT an INSERT with the final after-image; else an UPDATE. Rows
// are renumbered by each key's first change.
const collapseSQL = `
WITH dup AS (
    SELECT EXISTS (SELECT 1 FROM %[1]s WHERE user_id = $1 AND bundle_seq = $2
                   GROUP BY table_name, key_text HAVING count(*) > 1) AS found
), c AS (
    DELETE FROM %[1]s WHERE user_id = $1 AND bundle_seq = $2 AND (SELECT found FROM dup)
    RETURNING row_ordinal AS seq, table_name, key_text, op, payload
), k AS (
    -- One sort: every window shares partition and order.
    SELECT table_name, key_text, op AS last_op, payload,
           first_value(op) OVER w AS first_op, first_value(seq) OVER w AS first_seq, lead(seq) OVER w AS next_seq
    FROM c WINDOW w AS (PARTITION BY table_name COLLATE "C", key_text COLLATE "C" ORDER BY seq)
)
INSERT INTO %[1]s (user_id, bundle_seq, row_ordinal, table_name, key_text, op, payload)
SELECT $1, $2, (row_number() OVER (ORDER BY first_seq) - 1)::integer, table_name, key_text,
       CASE WHEN last_op = 'DELETE' THEN 'DELETE' WHEN first_op = 'INSERT' THEN 'INSERT' ELSE 'UPDATE' END,
       CASE WHEN last_op = 'DELETE' THEN NULL ELSE payload END
FROM k WHERE next_seq IS NULL AND NOT (first_op = 'INSERT' AND last_op = 'DELETE')`

// tombstoneSQL records the bundle's deletes in row state (8.3): a live
// row's version is on the row itself (_sync_row_version, set as it was
// written), so row state keeps only the version of each deleted key.
const tombstoneSQL = `
INSERT INTO %[2]s (user_id, table_name, key_text, row_version, deleted)
SELECT $1, table_name, key_text, $2, true FROM %[1]s WHERE user_id = $1 AND bundle_seq = $2 AND op = 'DELETE'
ON CONFLICT (user_id, table_name, key_text)
DO UPDATE SET row_version = EXCLUDED.row_version, deleted = true`

// finishBundle seals a bound transaction whose business-table writes are
// done: it collapses the captured effects into bundle latest+1, writes the
// bundle, row state, source state, scope head and retention, and deletes the
// push session. Caller holds tx and the scope lock; tx must then commit.
func finishBundle(ctx context.Context, tx pgx.Tx, sp bundleSpec) (BundleResult, error) {
	seq := sp.scope.Latest + 1
	rowsTbl := ident(sp.schema, "_sync_bundle_row")
	b := &pgx.Batch{}
	if !sp.distinctKeys {
		b.Queue(fmt.Sprintf(collapseSQL, rowsTbl), sp.user, seq)
	}
	// A push of fresh inserts deletes nothing (inserts set off no
	// referential action).
	tombstones := !(sp.newKeys && sp.distinctKeys)
	if tombstones {
		b.Queue(fmt.Sprintf(tombstoneSQL, rowsTbl, ident(sp.schema, "_sync_row_state")), sp.user, seq)
	}
	b.Queue(`SELECT table_name, key_text, op, payload FROM `+rowsTbl+` WHERE user_id = $1 AND bundle_seq = $2 ORDER BY row_ordinal`, sp.user, seq)
	br := tx.SendBatch(ctx, b)
	defer br.Close()
	if !sp.distinctKeys {
		if _, err := br.Exec(); err != nil {
			return BundleResult{}, fmt.Errorf("collapse captured effects: %w", err)
		}
	}
	if tombstones {
		if _, err := br.Exec(); err != nil {
			return BundleResult{}, fmt.Errorf("record tombstones: %w", err)
		}
	}
	rows, err := br.Query()
	if err != nil {
		return BundleResult{}, fmt.Errorf("read bundle rows: %w", err)
	}
	hasher := newBundleHasher(sp.wire, seq)
	// live: the change in the user's live rows. After collapsing, an
	// INSERT is a key that had no row before the bundle and a DELETE one
	// that has none after it; without collapsing, every key changed once.
	var n, bytes, live int64
	for rows.Next() {
		var table, key, op string
		var payload []byte
		if err := rows.Scan(&table, &key, &op, &payload); err != nil {
			rows.Close()
			return BundleResult{}, fmt.Errorf("read bundle row: %w", err)
		}
		keyCol := "id"
		if t, ok := sp.cat.byName[table]; ok {
			keyCol = t.keyCol
		}
		if err := hasher.add(hashRow{Table: table, KeyCol: keyCol, KeyText: key, Op: op, Payload: payload}); err != nil {
			rows.Close()
			return BundleResult{}, err
		}
		n++
		bytes += int64(len(payload))
		switch op {
		case opInsert:
			live++
		case opDelete:
			live--
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return BundleResult{}, fmt.Errorf("read bundle rows: %w", err)
	}
	if err := br.Close(); err != nil {
		return BundleResult{}, fmt.Errorf("read bundle rows: %w", err)
	}
	if n == 0 {
		return BundleResult{}, errNoEffects
	}
	if err := checkCommitQuota(ctx, tx, sp, bytes, live); err != nil {
		return BundleResult{}, err
	}
	res := BundleResult{BundleSeq: seq, SourceID: sp.source, SourceBundleID: sp.sbid, RowCount: n, BundleHash: hasher.sum()}

	// Retention (8.6): the floor rises by at most one prune batch per commit.
	floor := sp.scope.Floor
	w := sp.retained
	if w <= 0 {
		w = defaultRetainedBundles
	}
	if target := seq - w; target > floor {
		floor = min(target, floor+pruneBatch)
	}

	b = &pgx.Batch{}
	b.Queue(`INSERT INTO `+ident(sp.schema, "_sync_bundle")+` (user_id, bundle_seq, source_id, source_bundle_id, row_count, bundle_hash, byte_count)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, sp.user, seq, sp.source, sp.sbid, n, res.BundleHash, bytes)
	b.Queue(`INSERT INTO `+ident(sp.schema, "_sync_source")+` (user_id, source_id, state, max_source_bundle_id, bundles_pushed)
		VALUES ($1, $2, 'active', $3, 1)
		ON CONFLICT (user_id, source_id) DO UPDATE SET state = 'active', max_source_bundle_id = EXCLUDED.max_source_bundle_id,
			bundles_pushed = `+ident(sp.schema, "_sync_source")+`.bundles_pushed + 1, last_seen_at = now()`, sp.user, sp.source, sp.sbid)
	if sp.seed || sp.scope.State != stateInitialized {
		b.Queue(`UPDATE `+ident(sp.schema, "_sync_scope")+` SET latest_bundle_seq = $2, retained_floor = $3, state = 'INITIALIZED',
			initializer_source = NULL, initialization_id = NULL, lease_expires_at = NULL,
			initialized_by = coalesce(initialized_by, $4), live_rows = live_rows + $5, updated_at = now() WHERE user_id = $1`,
			sp.user, seq, floor, sp.source, live)
	} else {
		b.Queue(`UPDATE `+ident(sp.schema, "_sync_scope")+` SET latest_bundle_seq = $2, retained_floor = $3, live_rows = live_rows + $4,
			updated_at = now() WHERE user_id = $1`, sp.user, seq, floor, live)
	}
	if floor > sp.scope.Floor {
		b.Queue(`DELETE FROM `+ident(sp.schema, "_sync_bundle_row")+` WHERE user_id = $1 AND bundle_seq <= $2`, sp.user, floor)
		b.Queue(`DELETE FROM `+ident(sp.schema, "_sync_bundle")+` WHERE user_id = $1 AND bundle_seq <= $2`, sp.user, floor)
	}
	if sp.pushID != "" {
		b.Queue(deleteSessionsSQL(sp.schema, "push", `push_id = $1`), sp.pushID)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return BundleResult{}, fmt.Errorf("write bundle: %w", err)
	}
	return res, nil
}

// commitError maps a failure of the apply/commit step to the protocol: a
// constraint or value error is the pushed data's fault (400 with code).
func commitError(err error, code string) error {
	var se *server.Error
	if errors.As(err, &se) {
		return err
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	switch {
	case pe.Code == "23502":
		return &server.Error{Status: http.StatusBadRequest, Code: code, Err: err,
			Message: fmt.Sprintf("column %s of table %s must not be null", pe.ColumnName, pe.TableName)}
	case len(pe.Code) == 5 && pe.Code[:2] == "23":
		return &server.Error{Status: http.StatusBadRequest, Code: code, Err: err,
			Message: fmt.Sprintf("commit violates constraint %s on table %s", pe.ConstraintName, pe.TableName)}
	case len(pe.Code) == 5 && pe.Code[:2] == "22":
		return &server.Error{Status: http.StatusBadRequest, Code: code, Err: err,
			Message: "a pushed value does not fit its column type (SQLSTATE " + pe.Code + ")"}
	case pe.Code == "42501":
		return &server.Error{Status: http.StatusBadRequest, Code: code, Err: err,
			Message: "the write touches rows outside the user scope"}
	}
	return err
}
