package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/covedata/cove"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// schema holds the ledger: its entries, the Merkle tree's stored hashes
// (tlog.StoredHashes, at tlog.StoredHashIndex) and the signed checkpoints
// (see ledger.go); the catalog and jobs tables are in catalogSchema and
// jobSchema.
const schema = `
CREATE TABLE IF NOT EXISTS ledger (
	seq INTEGER PRIMARY KEY, time TEXT NOT NULL, kind TEXT NOT NULL, subject TEXT NOT NULL,
	body BLOB NOT NULL, hash BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS ledger_hashes (idx INTEGER PRIMARY KEY, hash BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS ledger_checkpoints (size INTEGER PRIMARY KEY, note TEXT NOT NULL);
`

// Store is Cove's state. Safe for concurrent use.
type Store struct {
	db   *sql.DB
	now  func() time.Time
	path string
	lg   *ledgerLog
	// writeMu serializes this process's write transactions: SQLite has one
	// writer anyway, and queueing here is fairer and cheaper than many
	// connections retrying on SQLITE_BUSY. Other processes still meet
	// busy_timeout.
	writeMu *sync.Mutex
}

// Open opens (creating if needed) the SQLite database at path, and the
// ledger's signer key (see WithLedgerKey).
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	for _, sc := range []string{schema, catalogSchema, jobSchema, heSchema} {
		if _, err := db.ExecContext(ctx, sc); err != nil {
			db.Close()
			return nil, fmt.Errorf("store: create schema in %s: %w", path, err)
		}
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: migrate %s: %w", path, err)
	}
	s := &Store{db: db, now: time.Now, path: path, writeMu: new(sync.Mutex)}
	if err := s.openLedger(ctx, path, opts); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// WithClock returns a copy of the store handle that reads time from now.
// It shares the database.
func (s *Store) WithClock(now func() time.Time) *Store {
	c := *s
	c.now = now
	return &c
}

// Now is the store's clock.
func (s *Store) Now() time.Time { return s.now() }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// update runs fn in a write transaction; the transaction commits only if fn
// and every ledger append in it succeed.
func (s *Store) update(ctx context.Context, fn func(*tx) error) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	sqlTx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%w: begin: %v", cove.ErrLedger, err)
	}
	t := &tx{Tx: sqlTx, now: s.now(), lg: s.lg}
	if err := fn(t); err != nil {
		sqlTx.Rollback()
		if cove.Code(err) == "internal" {
			// A storage failure (disk full, I/O error): the state change and
			// its ledger entry were rolled back together.
			return fmt.Errorf("%w: storage failed, nothing was recorded: %v", cove.ErrLedger, err)
		}
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("%w: commit: %v", cove.ErrLedger, err)
	}
	return nil
}

type tx struct {
	*sql.Tx
	now time.Time
	lg  *ledgerLog
}

// addedColumns are columns added to tables after their first release, with
// their definitions: a database made before them gets them on Open.
var addedColumns = []struct{ table, column, def string }{
	{"jobs", "mode", "TEXT NOT NULL DEFAULT ''"},
	{"jobs", "plan_sha256", "TEXT NOT NULL DEFAULT ''"},
	{"jobs", "plan_text", "TEXT NOT NULL DEFAULT ''"},
	{"jobs", "plan_json", "BLOB"},
}

func migrate(ctx context.Context, db *sql.DB) error {
	for _, c := range addedColumns {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info(?) WHERE name = ?`, c.table, c.column).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			if _, err := db.ExecContext(ctx, `ALTER TABLE `+c.table+` ADD COLUMN `+c.column+` `+c.def); err != nil {
				return err
			}
		}
	}
	return nil
}
