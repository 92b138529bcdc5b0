package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/covedata/cove"
	"github.com/covedata/cove/ledger"
	"github.com/covedata/cove/policy"
)

// SubmitJob records a submitted job. A job id already used is ErrExists: the
// caller looks up the stored job (and release) instead of running again.
func (s *Store) SubmitJob(ctx context.Context, j Job) error {
	if !policy.ValidName(j.ID) {
		return fmt.Errorf("%w: job id %q is not a valid name", cove.ErrInvalid, j.ID)
	}
	j.State = StateSubmitted
	return s.update(ctx, func(t *tx) error {
		if err := t.absent(ctx, "jobs", "id", j.ID, "job"); err != nil {
			return err
		}
		at := t.now.UTC().Format(time.RFC3339Nano)
		if _, err := t.ExecContext(ctx, `INSERT INTO jobs (id, operator, grant_id, dataset, state, epsilon, manifest_sha256, module_sha256, created, updated)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, j.ID, j.Operator, j.Grant, j.Dataset, j.State, j.Epsilon, j.ManifestSHA256, j.ModuleSHA256, at, at); err != nil {
			return err
		}
		return t.log(ctx, ledger.JobSubmitted, j.ID, j)
	})
}

// Job returns a stored job.
func (s *Store) Job(ctx context.Context, id string) (Job, error) {
	var j Job
	err := s.db.QueryRowContext(ctx, `SELECT id, operator, grant_id, dataset, state, epsilon, manifest_sha256, module_sha256, reason FROM jobs WHERE id = ?`, id).
		Scan(&j.ID, &j.Operator, &j.Grant, &j.Dataset, &j.State, &j.Epsilon, &j.ManifestSHA256, &j.ModuleSHA256, &j.Reason)
	if errors.Is(err, sql.ErrNoRows) {
		return j, fmt.Errorf("%w: job %s", cove.ErrNotFound, id)
	}
	return j, err
}

func (t *tx) setState(ctx context.Context, job, from, to, reason string) error {
	res, err := t.ExecContext(ctx, `UPDATE jobs SET state = ?, reason = ?, updated = ? WHERE id = ? AND state = ?`,
		to, reason, t.now.UTC().Format(time.RFC3339Nano), job, from)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("%w: job %s is not %s", cove.ErrInvalid, job, from)
	}
	return nil
}

// Admit checks the request against its grant, dataset and budget and, in the
// same transaction, reserves the job's ε (admitted) or records the rejection.
// The error is a *policy.Rejection when the job is refused.
func (s *Store) Admit(ctx context.Context, req policy.Request) error {
	var rejection error
	err := s.update(ctx, func(t *tx) error {
		var g policy.Grant
		var d policy.Dataset
		var b policy.Budget
		err := loadJSON(ctx, t, &g, "grant "+req.Grant, `SELECT body FROM grants WHERE id = ?`, req.Grant)
		if err == nil {
			err = loadJSON(ctx, t, &d, "dataset "+req.Dataset, `SELECT body FROM datasets WHERE name = ?`, req.Dataset)
		}
		if err != nil {
			// An unknown grant or dataset is itself a rejection, recorded as such.
			rejection = &policy.Rejection{Violations: []policy.Violation{{Code: cove.Code(err), Message: err.Error()}}}
			return s.reject(ctx, t, req.Job, rejection.(*policy.Rejection))
		}
		if b, err = budget(ctx, t, g.ID, d.Name); err != nil && !errors.Is(err, cove.ErrNotFound) {
			return err
		}
		if rejection = policy.Admit(g, d, b, req, t.now); rejection != nil {
			var rej *policy.Rejection
			if !errors.As(rejection, &rej) {
				return rejection
			}
			return s.reject(ctx, t, req.Job, rej)
		}
		if _, err := t.ExecContext(ctx, `INSERT INTO reservations (job_id, grant_id, dataset, epsilon) VALUES (?, ?, ?, ?)`,
			req.Job, g.ID, d.Name, req.Epsilon); err != nil {
			return err
		}
		if err := t.setState(ctx, req.Job, StateSubmitted, StateAdmitted, ""); err != nil {
			return err
		}
		return t.log(ctx, ledger.JobAdmitted, req.Job, map[string]any{
			"grant": g.ID, "dataset": d.Name, "epsilon_reserved": req.Epsilon, "budget_before": b})
	})
	if err != nil {
		return err
	}
	return rejection
}

func (s *Store) reject(ctx context.Context, t *tx, job string, rej *policy.Rejection) error {
	if err := t.setState(ctx, job, StateSubmitted, StateRejected, rej.Error()); err != nil {
		return err
	}
	return t.log(ctx, ledger.JobRejected, job, rej)
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

// Release commits a job's result: in one transaction it turns the job's
// reservation into spending, stores the release, marks the job released and
// appends the run's metering and the release to the ledger. A job without a
// reservation (already released, failed or never admitted) is refused.
func (s *Store) Release(ctx context.Context, job string, metering any, release json.RawMessage) error {
	if !json.Valid(release) {
		return fmt.Errorf("%w: release of job %s is not JSON", cove.ErrInvalid, job)
	}
	return s.update(ctx, func(t *tx) error {
		var grant, dataset string
		var eps float64
		err := t.QueryRowContext(ctx, `SELECT grant_id, dataset, epsilon FROM reservations WHERE job_id = ?`, job).Scan(&grant, &dataset, &eps)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: job %s holds no reservation", cove.ErrInvalid, job)
		}
		if err != nil {
			return err
		}
		if _, err := t.ExecContext(ctx, `DELETE FROM reservations WHERE job_id = ?`, job); err != nil {
			return err
		}
		if _, err := t.ExecContext(ctx, `UPDATE budgets SET spent = spent + ? WHERE grant_id = ? AND dataset = ?`, eps, grant, dataset); err != nil {
			return fmt.Errorf("%w: debit of job %s: %v", cove.ErrBudgetExceeded, job, err)
		}
		if _, err := t.ExecContext(ctx, `INSERT INTO releases (job_id, body) VALUES (?, ?)`, job, string(release)); err != nil {
			return err
		}
		if err := t.setState(ctx, job, StateAdmitted, StateReleased, ""); err != nil {
			return err
		}
		if err := t.log(ctx, ledger.JobRan, job, metering); err != nil {
			return err
		}
		return t.log(ctx, ledger.Released, job, map[string]any{
			"grant": grant, "dataset": dataset, "epsilon_debited": eps, "release": release})
	})
}

// Fail ends an admitted job without a release: its reservation is refunded
// and the failure recorded, in one transaction. reason must be safe to show
// the operator (no data values).
func (s *Store) Fail(ctx context.Context, job, reason string, metering any) error {
	return s.update(ctx, func(t *tx) error {
		var eps float64
		err := t.QueryRowContext(ctx, `SELECT epsilon FROM reservations WHERE job_id = ?`, job).Scan(&eps)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if _, err := t.ExecContext(ctx, `DELETE FROM reservations WHERE job_id = ?`, job); err != nil {
			return err
		}
		if err := t.setState(ctx, job, StateAdmitted, StateFailed, reason); err != nil {
			return err
		}
		return t.log(ctx, ledger.JobFailed, job, map[string]any{"reason": reason, "epsilon_refunded": eps, "metering": metering})
	})
}

// StoredRelease returns the release of a released job.
func (s *Store) StoredRelease(ctx context.Context, job string) (json.RawMessage, error) {
	var body string
	err := s.db.QueryRowContext(ctx, `SELECT body FROM releases WHERE job_id = ?`, job).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: release of job %s", cove.ErrNotFound, job)
	}
	return json.RawMessage(body), err
}

// Entries iterates over the ledger in order.
func (s *Store) Entries(ctx context.Context) iter.Seq2[ledger.Entry, error] {
	return func(yield func(ledger.Entry, error) bool) {
		rows, err := s.db.QueryContext(ctx, `SELECT seq, time, kind, subject, body, prev, hash FROM ledger ORDER BY seq`)
		if err != nil {
			yield(ledger.Entry{}, err)
			return
		}
		defer rows.Close()
		for rows.Next() {
			if !yield(scanEntry(rows)) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(ledger.Entry{}, err)
		}
	}
}

// VerifyLedger verifies the whole ledger.
func (s *Store) VerifyLedger(ctx context.Context) (ledger.Head, error) {
	return ledger.Verify(s.Entries(ctx))
}
