package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/covedata/cove"
	"github.com/covedata/cove/ledger"
	"github.com/covedata/cove/policy"
)

const catalogSchema = `
CREATE TABLE IF NOT EXISTS datasets (name TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS grants (
	id TEXT PRIMARY KEY, operator TEXT NOT NULL, body TEXT NOT NULL,
	revoked_at TEXT, revoke_reason TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS budgets (
	grant_id TEXT NOT NULL REFERENCES grants(id),
	dataset TEXT NOT NULL REFERENCES datasets(name),
	period TEXT NOT NULL,
	eps_cap REAL NOT NULL,
	eps_spent REAL NOT NULL DEFAULT 0 CHECK (eps_spent <= eps_cap + 1e-9),
	delta_cap REAL NOT NULL,
	delta_spent REAL NOT NULL DEFAULT 0 CHECK (delta_spent <= delta_cap + 1e-15),
	PRIMARY KEY (grant_id, dataset, period));
`

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

type querier interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}

func loadJSON(ctx context.Context, q querier, v any, what, query string, args ...any) error {
	var body string
	err := q.QueryRowContext(ctx, query, args...).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: %s", cove.ErrNotFound, what)
	}
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(body), v)
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

// Dataset returns a catalog entry.
func (s *Store) Dataset(ctx context.Context, name string) (policy.Dataset, error) {
	var d policy.Dataset
	err := loadJSON(ctx, s.db, &d, "dataset "+name, `SELECT body FROM datasets WHERE name = ?`, name)
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

// CreateGrant validates a grant against the catalog and stores it. Budgets
// are opened per dataset and period when first used.
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
		return t.log(ctx, ledger.GrantCreated, g.ID, g)
	})
}

// GrantStatus is a stored grant with its revocation.
type GrantStatus struct {
	policy.Grant
	RevokedAt    *time.Time `json:"revoked_at,omitempty"`
	RevokeReason string     `json:"revoke_reason,omitempty"`
}

// Grant returns a grant.
func (s *Store) Grant(ctx context.Context, id string) (GrantStatus, error) {
	return grantStatus(ctx, s.db, id)
}

func grantStatus(ctx context.Context, q querier, id string) (GrantStatus, error) {
	var gs GrantStatus
	var body string
	var revoked sql.NullString
	err := q.QueryRowContext(ctx, `SELECT body, revoked_at, revoke_reason FROM grants WHERE id = ?`, id).Scan(&body, &revoked, &gs.RevokeReason)
	if errors.Is(err, sql.ErrNoRows) {
		return gs, fmt.Errorf("%w: grant %s", cove.ErrNotFound, id)
	}
	if err != nil {
		return gs, err
	}
	if err := json.Unmarshal([]byte(body), &gs.Grant); err != nil {
		return gs, err
	}
	if revoked.Valid {
		at, err := time.Parse(time.RFC3339Nano, revoked.String)
		if err != nil {
			return gs, err
		}
		gs.RevokedAt = &at
	}
	return gs, nil
}

// Grants lists every grant.
func (s *Store) Grants(ctx context.Context) ([]GrantStatus, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM grants ORDER BY id`)
	if err != nil {
		return nil, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	out := make([]GrantStatus, 0, len(ids))
	for _, id := range ids {
		g, err := s.Grant(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}

// RevokeGrant revokes a grant: no job is admitted or released under it
// afterwards. Jobs of the grant that hold a reservation are cancelled and
// refunded in the same transaction; the returned ids are those jobs, so the
// caller can stop any that is running.
func (s *Store) RevokeGrant(ctx context.Context, id, reason string) ([]string, error) {
	var cancelled []string
	err := s.update(ctx, func(t *tx) error {
		gs, err := grantStatus(ctx, t, id)
		if err != nil {
			return err
		}
		if gs.RevokedAt != nil {
			return fmt.Errorf("%w: grant %s was revoked at %s", cove.ErrGrantInactive, id, gs.RevokedAt.Format(time.RFC3339))
		}
		if _, err := t.ExecContext(ctx, `UPDATE grants SET revoked_at = ?, revoke_reason = ? WHERE id = ?`,
			t.now.UTC().Format(time.RFC3339Nano), reason, id); err != nil {
			return err
		}
		if err := t.log(ctx, ledger.GrantRevoked, id, map[string]string{"reason": reason}); err != nil {
			return err
		}
		rows, err := t.QueryContext(ctx, `SELECT job_id FROM reservations WHERE grant_id = ? ORDER BY job_id`, id)
		if err != nil {
			return err
		}
		for rows.Next() {
			var j string
			if err := rows.Scan(&j); err != nil {
				rows.Close()
				return err
			}
			cancelled = append(cancelled, j)
		}
		rows.Close()
		for _, j := range cancelled {
			if err := t.endJob(ctx, j, StateCancelled, "grant "+id+" revoked", ledger.JobCancelled, nil); err != nil {
				return err
			}
		}
		return nil
	})
	return cancelled, err
}

// Budget returns the budget of a (grant, dataset) pair in the period that
// holds the store's current time.
func (s *Store) Budget(ctx context.Context, grant, dataset string) (policy.Budget, error) {
	gs, err := s.Grant(ctx, grant)
	if err != nil {
		return policy.Budget{}, err
	}
	return budget(ctx, s.db, gs.Grant, dataset, gs.PeriodStart(s.now()))
}

func budget(ctx context.Context, q querier, g policy.Grant, dataset string, period time.Time) (policy.Budget, error) {
	b := policy.Budget{Period: period}
	p := period.UTC().Format(time.RFC3339)
	err := q.QueryRowContext(ctx, `SELECT eps_cap, eps_spent, delta_cap, delta_spent,
		(SELECT coalesce(sum(epsilon), 0) FROM reservations WHERE grant_id = ?1 AND dataset = ?2 AND period = ?3),
		(SELECT coalesce(sum(delta), 0) FROM reservations WHERE grant_id = ?1 AND dataset = ?2 AND period = ?3)
		FROM budgets WHERE grant_id = ?1 AND dataset = ?2 AND period = ?3`, g.ID, dataset, p).
		Scan(&b.Cap, &b.Spent, &b.DeltaCap, &b.DeltaSpent, &b.Reserved, &b.DeltaReserved)
	if errors.Is(err, sql.ErrNoRows) {
		// Not used yet in this period: the whole cap is left.
		b.Cap, b.DeltaCap = g.Caps(dataset)
		return b, nil
	}
	return b, err
}

// Path is the database file.
func (s *Store) Path() string { return s.path }
