package device

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/syncplane/syncplane/tenant"
)

// DefaultChunkSize is the number of rows per push chunk when
// Config.ChunkSize is zero (the Go reference client's default).
const DefaultChunkSize = 1000

// DefaultPullBundles is max_bundles per pull request.
const DefaultPullBundles = 1000

// Config configures a Client.
type Config struct {
	// Path is the SQLite database file. It is created if missing.
	Path string
	// BaseURL is the tenant's base URL, e.g. http://host/k/sp_pk_...; the
	// client appends /sync/... to it.
	BaseURL string
	// Token returns the end user's bearer token (a JWT for the tenant). It
	// is called for every request, so it can refresh tokens or switch users
	// between Detach and Attach.
	Token func(ctx context.Context) (string, error)
	// Schema is the tenant's table definition; the local tables are created
	// from it.
	Schema *tenant.Schema
	// WireSchema is the tenant's wire schema name (e.g. "app").
	WireSchema string
	// HTTPClient sends the requests; nil means a client with a 120 s timeout
	// (which also bounds each watch stream; the client reconnects).
	HTTPClient *http.Client
	// ChunkSize is the number of rows per push chunk (1..5000); 0 means
	// DefaultChunkSize.
	ChunkSize int
	// PullBundles is max_bundles per pull request; 0 means 1000.
	PullBundles int
	// Resolver decides push conflicts; nil means AcceptServer.
	Resolver Resolver
	// Logf, if set, receives a line for each notable step.
	Logf func(format string, args ...any)
}

// Client is one device: a local SQLite database and its sync state. Its
// methods are safe for concurrent use; sync operations run one at a time.
type Client struct {
	cfg     Config
	db      *sql.DB
	base    string
	http    *http.Client
	schema  *tenant.Schema
	tables  []*tenant.Table // parents first
	byName  map[string]*tenant.Table
	mu      sync.Mutex // serializes sync operations
	capsMu  sync.Mutex
	caps    *capabilities
	closeMu sync.Mutex
	closed  bool
	bg      sync.WaitGroup // work after an operation (later)
}

// Open opens (creating if needed) the device database at cfg.Path and
// prepares its tables, triggers and metadata. A new database gets a fresh
// random source id.
func Open(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Path == "" {
		return nil, errors.New("device: Config.Path is required")
	}
	if cfg.Schema == nil {
		return nil, errors.New("device: Config.Schema is required")
	}
	if cfg.WireSchema == "" {
		return nil, errors.New("device: Config.WireSchema is required")
	}
	if cfg.ChunkSize == 0 {
		cfg.ChunkSize = DefaultChunkSize
	}
	if cfg.ChunkSize < 1 || cfg.ChunkSize > 5000 {
		return nil, fmt.Errorf("device: ChunkSize %d is outside 1..5000", cfg.ChunkSize)
	}
	if cfg.PullBundles == 0 {
		cfg.PullBundles = DefaultPullBundles
	}
	if cfg.PullBundles < 1 || cfg.PullBundles > 5000 {
		return nil, fmt.Errorf("device: PullBundles %d is outside 1..5000", cfg.PullBundles)
	}
	if cfg.Resolver == nil {
		cfg.Resolver = AcceptServer
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 120 * time.Second}
	}
	dsn := "file:" + (&url.URL{Path: cfg.Path}).EscapedPath() +
		"?_pragma=foreign_keys(1)&_pragma=busy_timeout(30000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("device: open %s: %w", cfg.Path, err)
	}
	db.SetMaxOpenConns(4)
	c := &Client{
		cfg:    cfg,
		db:     db,
		base:   strings.TrimRight(cfg.BaseURL, "/"),
		http:   hc,
		schema: cfg.Schema,
		tables: tableOrder(cfg.Schema),
		byName: map[string]*tenant.Table{},
	}
	for _, t := range c.tables {
		c.byName[t.Name] = t
	}
	if err := c.init(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return c, nil
}

func (c *Client) init(ctx context.Context) error {
	stmts, err := SchemaDDL(c.schema)
	if err != nil {
		return fmt.Errorf("device: %w", err)
	}
	return c.tx(ctx, func(tx *txn) error {
		for _, s := range stmts[:len(metadataDDL)] {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("device: prepare database: %w\n%s", err, s)
			}
		}
		var wire string
		err := tx.QueryRowContext(ctx, `SELECT wire_schema FROM _sync_state WHERE id = 1`).Scan(&wire)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if _, err := tx.ExecContext(ctx, `INSERT INTO _sync_state (id, source_id, wire_schema) VALUES (1, ?, ?)`,
				uuid.NewString(), c.cfg.WireSchema); err != nil {
				return err
			}
		case err != nil:
			return err
		case wire != c.cfg.WireSchema:
			return fmt.Errorf("device: database %s is bound to wire schema %q, not %q", c.cfg.Path, wire, c.cfg.WireSchema)
		}
		for _, s := range stmts[len(metadataDDL):] {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("device: prepare database: %w\n%s", err, s)
			}
		}
		return nil
	})
}

// DB returns the device database. Apps read and write the synced tables
// with ordinary SQL; the capture triggers record the changes. Tables whose
// names start with _sync_ belong to the client and must not be written.
func (c *Client) DB() *sql.DB { return c.db }

// Schema returns the table definition the database was opened with.
func (c *Client) Schema() *tenant.Schema { return c.schema }

// Close closes the database. It does not wait for a running Watch.
func (c *Client) Close() error {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	c.bg.Wait()
	return c.db.Close()
}

// later runs fn on a goroutine of its own, unless the client is closed;
// Close waits for it.
func (c *Client) later(fn func()) {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.closed {
		return
	}
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		fn()
	}()
}

// checkpointLater copies the WAL into the database file in the background
// (a PASSIVE checkpoint: it never blocks readers or writers).
func (c *Client) checkpointLater() {
	c.later(func() {
		_, _ = c.db.ExecContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`)
	})
}

// State is a snapshot of the client's sync metadata.
type State struct {
	SourceID           string
	NextSourceBundleID int64
	Checkpoint         int64 // last_bundle_seq_seen
	Attached           bool
	InitializationID   string // set while a seed push is pending
	RebuildRequired    bool
	RotationPending    string // replacement source id of an unfinished rotation
	Dirty              int    // captured changes not yet frozen
	Outbox             int    // rows of the frozen push in flight
}

// State returns the current sync metadata.
func (c *Client) State(ctx context.Context) (State, error) {
	var st State
	var attached, rebuild int64
	err := c.db.QueryRowContext(ctx, `SELECT source_id, next_source_bundle_id, last_bundle_seq_seen, attached,
		initialization_id, rebuild_required, rotation_new_source_id,
		(SELECT COUNT(*) FROM _sync_dirty), (SELECT COUNT(*) FROM _sync_outbox)
		FROM _sync_state WHERE id = 1`).Scan(&st.SourceID, &st.NextSourceBundleID, &st.Checkpoint, &attached,
		&st.InitializationID, &rebuild, &st.RotationPending, &st.Dirty, &st.Outbox)
	st.Attached, st.RebuildRequired = attached != 0, rebuild != 0
	return st, err
}

// SourceID returns the device's current source id.
func (c *Client) SourceID() string {
	st, _ := c.State(context.Background())
	return st.SourceID
}

// Checkpoint returns last_bundle_seq_seen: every bundle up to it is applied.
func (c *Client) Checkpoint() int64 {
	st, _ := c.State(context.Background())
	return st.Checkpoint
}

// PendingChanges returns how many local changes are not yet on the server
// (captured plus frozen rows).
func (c *Client) PendingChanges(ctx context.Context) (int, error) {
	st, err := c.State(ctx)
	return st.Dirty + st.Outbox, err
}

// RowVersion returns the server row version the device last saw for a key
// (0 if none) and whether that version is a deletion.
func (c *Client) RowVersion(ctx context.Context, table, key string) (int64, bool, error) {
	var v, del int64
	err := c.db.QueryRowContext(ctx, `SELECT row_version, deleted FROM _sync_row_state WHERE tbl = ? AND key = ?`, table, key).Scan(&v, &del)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return v, del != 0, err
}

func (c *Client) logf(format string, args ...any) {
	if c.cfg.Logf != nil {
		c.cfg.Logf(format, args...)
	}
}

// txn is a transaction that caches its prepared statements: applying a
// bundle runs the same few statements for every row.
type txn struct {
	*sql.Tx
	stmts map[string]*sql.Stmt
	// Hints for applyServerRow, set by callers that know them: no key is
	// dirty, no row state exists (a table rebuild).
	noDirty, noRowState bool
}

func (t *txn) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if s, ok := t.stmts[query]; ok {
		return s, nil
	}
	s, err := t.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	t.stmts[query] = s
	return s, nil
}

// ExecContext runs a cached prepared statement.
func (t *txn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	s, err := t.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(ctx, args...)
}

// QueryRowContext runs a cached prepared statement.
func (t *txn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	s, err := t.stmt(ctx, query)
	if err != nil {
		return t.Tx.QueryRowContext(ctx, query, args...) // reports err
	}
	return s.QueryRowContext(ctx, args...)
}

// tx runs fn in one IMMEDIATE transaction.
func (c *Client) tx(ctx context.Context, fn func(tx *txn) error) error {
	return c.txOn(ctx, c.db, fn)
}

// txBeginner is a *sql.DB or a *sql.Conn.
type txBeginner interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// txOn is tx on b: any connection of the pool, or one held by the caller.
func (c *Client) txOn(ctx context.Context, b txBeginner, fn func(tx *txn) error) error {
	sqlTx, err := b.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	tx := &txn{Tx: sqlTx, stmts: map[string]*sql.Stmt{}}
	defer func() {
		for _, s := range tx.stmts {
			s.Close()
		}
	}()
	if err := fn(tx); err != nil {
		sqlTx.Rollback()
		return err
	}
	return sqlTx.Commit()
}

// applyTx runs fn in a transaction with capture suppressed and foreign keys
// deferred: the way every server row is written locally.
func (c *Client) applyTx(ctx context.Context, fn func(tx *txn) error) error {
	return c.applyTxOn(ctx, c.db, fn)
}

// applyTxOn is applyTx on b (txOn).
func (c *Client) applyTxOn(ctx context.Context, b txBeginner, fn func(tx *txn) error) error {
	return c.txOn(ctx, b, func(tx *txn) error {
		if _, err := tx.ExecContext(ctx, `PRAGMA defer_foreign_keys = ON`); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE _sync_state SET apply_mode = 1 WHERE id = 1`); err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE _sync_state SET apply_mode = 0 WHERE id = 1`)
		return err
	})
}

type stateRow struct {
	sourceID  string
	nextSBID  int64
	cp        int64
	attached  bool
	initID    string
	rebuild   bool
	rotNew    string
	rotReason string
}

func loadState(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}) (stateRow, error) {
	var s stateRow
	var att, reb int64
	err := q.QueryRowContext(ctx, `SELECT source_id, next_source_bundle_id, last_bundle_seq_seen, attached,
		initialization_id, rebuild_required, rotation_new_source_id, rotation_reason FROM _sync_state WHERE id = 1`).
		Scan(&s.sourceID, &s.nextSBID, &s.cp, &att, &s.initID, &reb, &s.rotNew, &s.rotReason)
	s.attached, s.rebuild = att != 0, reb != 0
	return s, err
}

func (c *Client) state(ctx context.Context) (stateRow, error) { return loadState(ctx, c.db) }

// setState runs an UPDATE of _sync_state outside any other transaction.
func (c *Client) setState(ctx context.Context, set string, args ...any) error {
	_, err := c.db.ExecContext(ctx, `UPDATE _sync_state SET `+set+` WHERE id = 1`, args...)
	return err
}

// Rows returns every row of a synced table, ordered by sync key (byte
// order).
func (c *Client) Rows(ctx context.Context, table string) ([]Row, error) {
	t, ok := c.byName[table]
	if !ok {
		return nil, fmt.Errorf("device: no synced table %q", table)
	}
	q := strings.Replace(selectSQL(t), " WHERE "+qi(t.Key.Name)+" = ?", "", 1) + " ORDER BY " + qi(t.Key.Name)
	rows, err := c.db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Row
	for rows.Next() {
		vals := make([]any, len(t.Columns))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		out = append(out, valuesToRow(t, vals))
	}
	return out, rows.Err()
}
