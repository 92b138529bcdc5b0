package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/covedata/cove"
	"github.com/covedata/cove/ledger"
	"github.com/covedata/cove/policy"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

const schema = `
CREATE TABLE IF NOT EXISTS datasets (name TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS grants (id TEXT PRIMARY KEY, operator TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS budgets (
	grant_id TEXT NOT NULL REFERENCES grants(id),
	dataset TEXT NOT NULL REFERENCES datasets(name),
	cap REAL NOT NULL,
	spent REAL NOT NULL DEFAULT 0 CHECK (spent <= cap + 1e-9),
	PRIMARY KEY (grant_id, dataset));
CREATE TABLE IF NOT EXISTS jobs (
	id TEXT PRIMARY KEY, operator TEXT NOT NULL, grant_id TEXT NOT NULL, dataset TEXT NOT NULL,
	state TEXT NOT NULL, epsilon REAL NOT NULL, manifest_sha256 TEXT NOT NULL, module_sha256 TEXT NOT NULL,
	reason TEXT NOT NULL DEFAULT '', created TEXT NOT NULL, updated TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reservations (
	job_id TEXT PRIMARY KEY REFERENCES jobs(id), grant_id TEXT NOT NULL, dataset TEXT NOT NULL, epsilon REAL NOT NULL);
CREATE TABLE IF NOT EXISTS releases (job_id TEXT PRIMARY KEY REFERENCES jobs(id), body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ledger (
	seq INTEGER PRIMARY KEY, time TEXT NOT NULL, kind TEXT NOT NULL, subject TEXT NOT NULL,
	body BLOB NOT NULL, hash BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS ledger_hashes (idx INTEGER PRIMARY KEY, hash BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS ledger_checkpoints (size INTEGER PRIMARY KEY, note TEXT NOT NULL);
`

// Job states.
const (
	StateSubmitted = "submitted"
	StateAdmitted  = "admitted"
	StateRejected  = "rejected"
	StateReleased  = "released"
	StateFailed    = "failed"
)

// Job is the stored record of a job.
type Job struct {
	ID             string  `json:"id"`
	Operator       string  `json:"operator"`
	Grant          string  `json:"grant"`
	Dataset        string  `json:"dataset"`
	State          string  `json:"state"`
	Epsilon        float64 `json:"epsilon"`
	ManifestSHA256 string  `json:"manifest_sha256"`
	ModuleSHA256   string  `json:"module_sha256"`
	Reason         string  `json:"reason,omitempty"`
}

// Store is Cove's state. Safe for concurrent use.
type Store struct {
	db  *sql.DB
	now func() time.Time
	lg  *ledgerLog
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
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: create schema in %s: %w", path, err)
	}
	s := &Store{db: db, now: time.Now}
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
	sqlTx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%w: begin: %v", cove.ErrLedger, err)
	}
	t := &tx{Tx: sqlTx, now: s.now(), lg: s.lg}
	if err := fn(t); err != nil {
		sqlTx.Rollback()
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

// RegisterDataset adds a catalog entry.
func (s *Store) RegisterDataset(ctx context.Context, d policy.Dataset) error {
	if err := d.Validate(); err != nil {
		return err
	}
	body, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return s.update(ctx, func(t *tx) error {
		if err := t.absent(ctx, "datasets", "name", d.Name, "dataset"); err != nil {
			return err
		}
		if _, err := t.ExecContext(ctx, `INSERT INTO datasets (name, body) VALUES (?, ?)`, d.Name, string(body)); err != nil {
			return err
		}
		return t.log(ctx, ledger.DatasetRegistered, d.Name, d)
	})
}

// absent fails with ErrExists when table already holds key in column col.
func (t *tx) absent(ctx context.Context, table, col, key, what string) error {
	var n int
	if err := t.QueryRowContext(ctx, "SELECT count(*) FROM "+table+" WHERE "+col+" = ?", key).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("%w: %s %s", cove.ErrExists, what, key)
	}
	return nil
}

// Dataset returns a catalog entry.
func (s *Store) Dataset(ctx context.Context, name string) (policy.Dataset, error) {
	var d policy.Dataset
	err := s.getJSON(ctx, &d, "dataset "+name, `SELECT body FROM datasets WHERE name = ?`, name)
	return d, err
}

// Datasets lists the catalog.
func (s *Store) Datasets(ctx context.Context) ([]policy.Dataset, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT body FROM datasets ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []policy.Dataset
	for rows.Next() {
		var body string
		var d policy.Dataset
		if err := rows.Scan(&body); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(body), &d); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func (s *Store) getJSON(ctx context.Context, v any, what, query string, args ...any) error {
	var body string
	err := s.db.QueryRowContext(ctx, query, args...).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: %s", cove.ErrNotFound, what)
	}
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(body), v)
}

// CreateGrant validates a grant against the catalog and stores it with a
// budget per dataset.
func (s *Store) CreateGrant(ctx context.Context, g policy.Grant) error {
	ds, err := s.Datasets(ctx)
	if err != nil {
		return err
	}
	lookup := func(name string) (policy.Dataset, bool) {
		for _, d := range ds {
			if d.Name == name {
				return d, true
			}
		}
		return policy.Dataset{}, false
	}
	if err := g.Validate(lookup); err != nil {
		return err
	}
	g.ValidFrom, g.ValidUntil = g.ValidFrom.UTC(), g.ValidUntil.UTC()
	body, err := json.Marshal(g)
	if err != nil {
		return err
	}
	return s.update(ctx, func(t *tx) error {
		if err := t.absent(ctx, "grants", "id", g.ID, "grant"); err != nil {
			return err
		}
		if _, err := t.ExecContext(ctx, `INSERT INTO grants (id, operator, body) VALUES (?, ?, ?)`, g.ID, g.Operator, string(body)); err != nil {
			return err
		}
		for _, name := range g.Datasets {
			if _, err := t.ExecContext(ctx, `INSERT INTO budgets (grant_id, dataset, cap) VALUES (?, ?, ?)`, g.ID, name, g.EpsilonCap[name]); err != nil {
				return err
			}
		}
		return t.log(ctx, ledger.GrantCreated, g.ID, g)
	})
}

// Grant returns a grant.
func (s *Store) Grant(ctx context.Context, id string) (policy.Grant, error) {
	var g policy.Grant
	err := s.getJSON(ctx, &g, "grant "+id, `SELECT body FROM grants WHERE id = ?`, id)
	return g, err
}

// Budget returns the budget of a (grant, dataset) pair.
func (s *Store) Budget(ctx context.Context, grant, dataset string) (policy.Budget, error) {
	return budget(ctx, s.db, grant, dataset)
}

type querier interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}

func budget(ctx context.Context, q querier, grant, dataset string) (policy.Budget, error) {
	var b policy.Budget
	err := q.QueryRowContext(ctx, `SELECT cap, spent,
		(SELECT coalesce(sum(epsilon), 0) FROM reservations WHERE grant_id = ?1 AND dataset = ?2)
		FROM budgets WHERE grant_id = ?1 AND dataset = ?2`, grant, dataset).Scan(&b.Cap, &b.Spent, &b.Reserved)
	if errors.Is(err, sql.ErrNoRows) {
		return b, fmt.Errorf("%w: no budget for dataset %s in grant %s", cove.ErrNotFound, dataset, grant)
	}
	return b, err
}
