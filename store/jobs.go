package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/covedata/cove"
	"github.com/covedata/cove/ledger"
	"github.com/covedata/cove/policy"
)

const jobSchema = `
CREATE TABLE IF NOT EXISTS jobs (
	id TEXT PRIMARY KEY, operator TEXT NOT NULL, grant_id TEXT NOT NULL, dataset TEXT NOT NULL,
	state TEXT NOT NULL, epsilon REAL NOT NULL, delta REAL NOT NULL DEFAULT 0,
	manifest_sha256 TEXT NOT NULL, module_sha256 TEXT NOT NULL, shape_sha256 TEXT NOT NULL DEFAULT '',
	manifest BLOB, decision TEXT NOT NULL DEFAULT '{}', reason TEXT NOT NULL DEFAULT '',
	created TEXT NOT NULL, updated TEXT NOT NULL,
	mode TEXT NOT NULL DEFAULT '', plan_sha256 TEXT NOT NULL DEFAULT '', plan_text TEXT NOT NULL DEFAULT '',
	plan_json BLOB);
CREATE INDEX IF NOT EXISTS jobs_by_grant ON jobs (grant_id, state);
CREATE TABLE IF NOT EXISTS modules (sha256 TEXT PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS reservations (
	job_id TEXT PRIMARY KEY REFERENCES jobs(id), grant_id TEXT NOT NULL, dataset TEXT NOT NULL,
	period TEXT NOT NULL, epsilon REAL NOT NULL, delta REAL NOT NULL);
CREATE TABLE IF NOT EXISTS releases (job_id TEXT PRIMARY KEY REFERENCES jobs(id), body TEXT NOT NULL);
`

// Job states. A job holds a reservation exactly while it is in review,
// admitted or running.
const (
	StateSubmitted = "submitted"
	StateInReview  = "in_review"
	StateAdmitted  = "admitted"
	StateRunning   = "running"
	StateReleased  = "released"
	StateFailed    = "failed"
	StateRejected  = "rejected"
	StateCancelled = "cancelled"
)

// Job is the stored record of a job.
type Job struct {
	ID             string  `json:"id"`
	Operator       string  `json:"operator"`
	Grant          string  `json:"grant"`
	Dataset        string  `json:"dataset"`
	State          string  `json:"state"`
	Epsilon        float64 `json:"epsilon"`
	Delta          float64 `json:"delta"`
	ManifestSHA256 string  `json:"manifest_sha256"`
	ModuleSHA256   string  `json:"module_sha256"`
	ShapeSHA256    string  `json:"shape_sha256,omitempty"` // what the outputs ask, without the job's name and module
	// Mode is how the job runs on real data: plan, unit or block
	// (docs/privacy.md).
	Mode string `json:"mode,omitempty"`
	// PlanSHA256 and Plan are, for a plan-mode job, the hash of its
	// canonical plan (JSON) and the plan's canonical text: what the
	// reviewer reads and what runs.
	PlanSHA256 string          `json:"plan_sha256,omitempty"`
	Plan       string          `json:"plan,omitempty"`
	Decision   policy.Decision `json:"decision"`
	Reason     string          `json:"reason,omitempty"`
	Created    time.Time       `json:"created"`
	Updated    time.Time       `json:"updated"`
}

// Submission is a job as submitted: its record, manifest and module, and
// for a plan-mode job its canonical plan (JSON).
type Submission struct {
	Job      Job
	Manifest []byte
	Module   []byte
	PlanJSON []byte
}

// SubmitJob records a submitted job with its manifest and module. A job id
// already used is ErrExists: the caller looks up the stored job (and release)
// instead of running again.
func (s *Store) SubmitJob(ctx context.Context, sub Submission) error {
	j := sub.Job
	if !policy.ValidName(j.ID) {
		return fmt.Errorf("%w: job id %q is not a valid name", cove.ErrInvalid, j.ID)
	}
	j.State = StateSubmitted
	return s.update(ctx, func(t *tx) error {
		if err := t.absent(ctx, "jobs", "id", j.ID, "job"); err != nil {
			return err
		}
		at := t.now.UTC().Format(time.RFC3339Nano)
		if _, err := t.ExecContext(ctx, `INSERT INTO jobs (id, operator, grant_id, dataset, state, epsilon, delta,
			manifest_sha256, module_sha256, shape_sha256, manifest, created, updated, mode, plan_sha256, plan_text, plan_json)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, j.ID, j.Operator, j.Grant, j.Dataset, j.State, j.Epsilon, j.Delta,
			j.ManifestSHA256, j.ModuleSHA256, j.ShapeSHA256, sub.Manifest, at, at, j.Mode, j.PlanSHA256, j.Plan, sub.PlanJSON); err != nil {
			return err
		}
		if sub.Module != nil {
			if _, err := t.ExecContext(ctx, `INSERT OR IGNORE INTO modules (sha256, body) VALUES (?, ?)`, j.ModuleSHA256, sub.Module); err != nil {
				return err
			}
		}
		return t.log(ctx, ledger.JobSubmitted, j.ID, j)
	})
}

const jobColumns = `id, operator, grant_id, dataset, state, epsilon, delta, manifest_sha256, module_sha256, shape_sha256, decision, reason, created, updated, mode, plan_sha256, plan_text`

func scanJob(r scanner) (Job, error) {
	var j Job
	var decision, created, updated string
	err := r.Scan(&j.ID, &j.Operator, &j.Grant, &j.Dataset, &j.State, &j.Epsilon, &j.Delta, &j.ManifestSHA256, &j.ModuleSHA256,
		&j.ShapeSHA256, &decision, &j.Reason, &created, &updated, &j.Mode, &j.PlanSHA256, &j.Plan)
	if err != nil {
		return j, err
	}
	j.Created, _ = time.Parse(time.RFC3339Nano, created)
	j.Updated, _ = time.Parse(time.RFC3339Nano, updated)
	return j, json.Unmarshal([]byte(decision), &j.Decision)
}

// Job returns a stored job.
func (s *Store) Job(ctx context.Context, id string) (Job, error) {
	j, err := scanJob(s.db.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return j, fmt.Errorf("%w: job %s", cove.ErrNotFound, id)
	}
	return j, err
}

// JobFilter selects jobs; empty fields match all.
type JobFilter struct {
	Operator string
	Grant    string
	States   []string
}

// Jobs lists jobs in submission order.
func (s *Store) Jobs(ctx context.Context, f JobFilter) ([]Job, error) {
	q := `SELECT ` + jobColumns + ` FROM jobs WHERE (?1 = '' OR operator = ?1) AND (?2 = '' OR grant_id = ?2)`
	args := []any{f.Operator, f.Grant}
	if len(f.States) > 0 {
		q += ` AND state IN (?` + strings.Repeat(`, ?`, len(f.States)-1) + `)`
		for _, st := range f.States {
			args = append(args, st)
		}
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY created, id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// ModuleStored reports whether the store holds the module of this sha256.
func (s *Store) ModuleStored(ctx context.Context, sha256 string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM modules WHERE sha256 = ?`, sha256).Scan(&n)
	return n > 0, err
}

// JobPlan returns the canonical plan (JSON) a plan-mode job was admitted
// with, nil for other jobs.
func (s *Store) JobPlan(ctx context.Context, id string) ([]byte, error) {
	var plan []byte
	err := s.db.QueryRowContext(ctx, `SELECT plan_json FROM jobs WHERE id = ?`, id).Scan(&plan)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: job %s", cove.ErrNotFound, id)
	}
	return plan, err
}

// JobManifest returns the manifest a job was submitted with.
func (s *Store) JobManifest(ctx context.Context, id string) ([]byte, error) {
	var manifest []byte
	err := s.db.QueryRowContext(ctx, `SELECT manifest FROM jobs WHERE id = ?`, id).Scan(&manifest)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: job %s", cove.ErrNotFound, id)
	}
	return manifest, err
}

func (t *tx) setState(ctx context.Context, job string, from []string, to, reason string) error {
	var state string
	if err := t.QueryRowContext(ctx, `SELECT state FROM jobs WHERE id = ?`, job).Scan(&state); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: job %s", cove.ErrNotFound, job)
		}
		return err
	}
	if !slices.Contains(from, state) {
		return fmt.Errorf("%w: job %s is %s, not %v", cove.ErrInvalid, job, state, from)
	}
	_, err := t.ExecContext(ctx, `UPDATE jobs SET state = ?, reason = ?, updated = ? WHERE id = ?`,
		to, reason, t.now.UTC().Format(time.RFC3339Nano), job)
	return err
}

// nearIdenticalWindow and nearIdenticalRuns define the second linkage flag:
// the same operator asking the same outputs of the same dataset with
// different modules several times in a short while (differencing attacks
// vary one filter between otherwise identical jobs).
const (
	nearIdenticalWindow = 24 * time.Hour
	nearIdenticalRuns   = 3
)

// Admit checks the request against its grant, dataset, budget and job count
// and, in the same transaction, reserves the job's ε and δ (in review or
// admitted) or records the rejection. The error is a *policy.Rejection when
// the job is refused.
func (s *Store) Admit(ctx context.Context, req policy.Request) (policy.Decision, error) {
	var rejection error
	var dec policy.Decision
	err := s.update(ctx, func(t *tx) error {
		gs, err := grantStatus(ctx, t, req.Grant)
		var d policy.Dataset
		if err == nil {
			err = loadJSON(ctx, t, &d, "dataset "+req.Dataset, `SELECT body FROM datasets WHERE name = ?`, req.Dataset)
		}
		if err != nil {
			if !errors.Is(err, cove.ErrNotFound) {
				return err
			}
			// An unknown grant or dataset is itself a rejection, recorded as such.
			rej := &policy.Rejection{Violations: []policy.Violation{policy.NewViolation(cove.Code(err), err)}}
			rejection = rej
			return t.reject(ctx, req.Job, rej)
		}
		period := gs.PeriodStart(t.now)
		b, err := budget(ctx, t, gs.Grant, d.Name, period)
		if err != nil {
			return err
		}
		var used int
		if err := t.QueryRowContext(ctx, `SELECT count(*) FROM jobs WHERE grant_id = ? AND state IN (?, ?, ?, ?)`,
			gs.ID, StateInReview, StateAdmitted, StateRunning, StateReleased).Scan(&used); err != nil {
			return err
		}
		dec, rejection = policy.Admit(policy.Input{Grant: gs.Grant, Revoked: gs.RevokedAt != nil, Dataset: d, Budget: b,
			JobsUsed: used, Request: req, Now: t.now})
		if rejection != nil {
			var rej *policy.Rejection
			if !errors.As(rejection, &rej) {
				return rejection
			}
			return t.reject(ctx, req.Job, rej)
		}
		if flag, err := t.nearIdentical(ctx, req.Job); err != nil {
			return err
		} else if flag != "" {
			dec.Flags = append(dec.Flags, flag)
		}
		p := period.UTC().Format(time.RFC3339)
		eCap, dCap := gs.Caps(d.Name)
		if _, err := t.ExecContext(ctx, `INSERT OR IGNORE INTO budgets (grant_id, dataset, period, eps_cap, delta_cap) VALUES (?, ?, ?, ?, ?)`,
			gs.ID, d.Name, p, eCap, dCap); err != nil {
			return err
		}
		if _, err := t.ExecContext(ctx, `INSERT INTO reservations (job_id, grant_id, dataset, period, epsilon, delta) VALUES (?, ?, ?, ?, ?, ?)`,
			req.Job, gs.ID, d.Name, p, req.Epsilon, req.Delta); err != nil {
			return err
		}
		to := StateAdmitted
		if dec.Review {
			to = StateInReview
		}
		if err := t.setState(ctx, req.Job, []string{StateSubmitted}, to, ""); err != nil {
			return err
		}
		decJSON, _ := json.Marshal(dec)
		if _, err := t.ExecContext(ctx, `UPDATE jobs SET decision = ? WHERE id = ?`, string(decJSON), req.Job); err != nil {
			return err
		}
		kind := ledger.JobAdmitted
		if dec.Review {
			kind = ledger.JobQueued
		}
		return t.log(ctx, kind, req.Job, map[string]any{
			"grant": gs.ID, "dataset": d.Name, "epsilon_reserved": req.Epsilon, "delta_reserved": req.Delta,
			"period": p, "budget_before": b, "review": dec.Review, "flags": dec.Flags})
	})
	if err != nil {
		return dec, err
	}
	return dec, rejection
}

// nearIdentical flags a job whose outputs were asked of the same dataset by
// the same operator, with other modules, nearIdenticalRuns times or more
// within nearIdenticalWindow.
func (t *tx) nearIdentical(ctx context.Context, job string) (string, error) {
	var n int
	err := t.QueryRowContext(ctx, `SELECT count(*) FROM jobs o JOIN jobs j ON j.id = ?1
		WHERE o.id != j.id AND o.operator = j.operator AND o.dataset = j.dataset AND j.shape_sha256 != ''
		AND o.shape_sha256 = j.shape_sha256 AND o.module_sha256 != j.module_sha256 AND o.created >= ?2`,
		job, t.now.Add(-nearIdenticalWindow).UTC().Format(time.RFC3339Nano)).Scan(&n)
	if err != nil || n+1 < nearIdenticalRuns {
		return "", err
	}
	return fmt.Sprintf("%d jobs with the same outputs on this dataset and different modules within %s", n+1, nearIdenticalWindow), nil
}

func (t *tx) reject(ctx context.Context, job string, rej *policy.Rejection) error {
	if err := t.setState(ctx, job, []string{StateSubmitted}, StateRejected, rej.Error()); err != nil {
		return err
	}
	return t.log(ctx, ledger.JobRejected, job, rej)
}

// Review records the authority's decision on a job in review: approved jobs
// are admitted to run; rejected ones are refunded.
func (s *Store) Review(ctx context.Context, job string, approve bool, reviewer, reason string) error {
	return s.update(ctx, func(t *tx) error {
		body := map[string]any{"approved": approve, "reviewer": reviewer, "reason": reason}
		if !approve {
			if err := t.endJob(ctx, job, StateRejected, "rejected in review: "+reason, ledger.JobReviewed, body); err != nil {
				return err
			}
			return nil
		}
		if err := t.setState(ctx, job, []string{StateInReview}, StateAdmitted, ""); err != nil {
			return err
		}
		return t.log(ctx, ledger.JobReviewed, job, body)
	})
}

// Start marks an admitted job running. It fails if the grant was revoked or
// has expired since admission.
func (s *Store) Start(ctx context.Context, job string) error {
	return s.update(ctx, func(t *tx) error {
		if err := t.grantLive(ctx, job); err != nil {
			return err
		}
		return t.setState(ctx, job, []string{StateAdmitted}, StateRunning, "")
	})
}

// grantLive fails unless the job's grant is unrevoked and valid now.
func (t *tx) grantLive(ctx context.Context, job string) error {
	var grant string
	if err := t.QueryRowContext(ctx, `SELECT grant_id FROM jobs WHERE id = ?`, job).Scan(&grant); err != nil {
		return fmt.Errorf("%w: job %s", cove.ErrNotFound, job)
	}
	gs, err := grantStatus(ctx, t, grant)
	if err != nil {
		return err
	}
	if gs.RevokedAt != nil {
		return fmt.Errorf("%w: grant %s was revoked", cove.ErrGrantInactive, grant)
	}
	if t.now.Before(gs.ValidFrom) || !t.now.Before(gs.ValidUntil) {
		return fmt.Errorf("%w: grant %s is not valid now", cove.ErrGrantInactive, grant)
	}
	return nil
}

// Release commits a job's result: in one transaction it checks again that
// the grant is live, turns the job's reservation into spending, stores the
// release, marks the job released and appends the run's metering and the
// release to the ledger. A job that is not running is refused.
func (s *Store) Release(ctx context.Context, job string, metering any, release json.RawMessage) error {
	if !json.Valid(release) {
		return fmt.Errorf("%w: release of job %s is not JSON", cove.ErrInvalid, job)
	}
	err := s.update(ctx, func(t *tx) error {
		failpoint("release:begin")
		if err := t.grantLive(ctx, job); err != nil {
			return err
		}
		var grant, dataset, period string
		var eps, delta float64
		err := t.QueryRowContext(ctx, `SELECT grant_id, dataset, period, epsilon, delta FROM reservations WHERE job_id = ?`, job).
			Scan(&grant, &dataset, &period, &eps, &delta)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: job %s holds no reservation", cove.ErrInvalid, job)
		}
		if err != nil {
			return err
		}
		if err := t.setState(ctx, job, []string{StateRunning}, StateReleased, ""); err != nil {
			return err
		}
		if _, err := t.ExecContext(ctx, `DELETE FROM reservations WHERE job_id = ?`, job); err != nil {
			return err
		}
		if _, err := t.ExecContext(ctx, `UPDATE budgets SET eps_spent = eps_spent + ?, delta_spent = delta_spent + ?
			WHERE grant_id = ? AND dataset = ? AND period = ?`, eps, delta, grant, dataset, period); err != nil {
			return fmt.Errorf("%w: debit of job %s: %v", cove.ErrBudgetExceeded, job, err)
		}
		failpoint("release:after-debit")
		if _, err := t.ExecContext(ctx, `INSERT INTO releases (job_id, body) VALUES (?, ?)`, job, string(release)); err != nil {
			return err
		}
		failpoint("release:after-store")
		if err := t.log(ctx, ledger.JobRan, job, metering); err != nil {
			return err
		}
		if err := t.log(ctx, ledger.Released, job, map[string]any{
			"grant": grant, "dataset": dataset, "period": period, "epsilon_debited": eps, "delta_debited": delta, "release": release}); err != nil {
			return err
		}
		failpoint("release:after-ledger")
		return nil
	})
	if err == nil {
		failpoint("release:after-commit")
	}
	return err
}

// Fail ends a job without a release: its reservation is refunded and the
// failure recorded, in one transaction. reason must be safe to show the
// operator (no data values).
func (s *Store) Fail(ctx context.Context, job, reason string, metering any) error {
	return s.update(ctx, func(t *tx) error {
		return t.endJob(ctx, job, StateFailed, reason, ledger.JobFailed, map[string]any{"metering": metering})
	})
}

// Cancel ends a job at the operator's or the authority's request, refunded.
func (s *Store) Cancel(ctx context.Context, job, reason string) error {
	return s.update(ctx, func(t *tx) error {
		return t.endJob(ctx, job, StateCancelled, reason, ledger.JobCancelled, nil)
	})
}

// endJob moves a job holding a reservation to a final state, refunding it.
func (t *tx) endJob(ctx context.Context, job, state, reason string, kind ledger.Kind, body map[string]any) error {
	var eps, delta float64
	err := t.QueryRowContext(ctx, `SELECT epsilon, delta FROM reservations WHERE job_id = ?`, job).Scan(&eps, &delta)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if err := t.setState(ctx, job, []string{StateInReview, StateAdmitted, StateRunning}, state, reason); err != nil {
		return err
	}
	if _, err := t.ExecContext(ctx, `DELETE FROM reservations WHERE job_id = ?`, job); err != nil {
		return err
	}
	if body == nil {
		body = map[string]any{}
	}
	body["reason"], body["epsilon_refunded"], body["delta_refunded"] = reason, eps, delta
	return t.log(ctx, kind, job, body)
}

// Recover ends the jobs a crash left running: their guests are gone, so they
// fail and are refunded. Jobs admitted or in review keep their reservation
// and can still run. It returns the ids it failed.
func (s *Store) Recover(ctx context.Context) ([]string, error) {
	running, err := s.Jobs(ctx, JobFilter{States: []string{StateRunning}})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, j := range running {
		if err := s.Fail(ctx, j.ID, "interrupted: the service stopped while the job ran", nil); err != nil {
			return ids, err
		}
		ids = append(ids, j.ID)
	}
	return ids, nil
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

// Check answers what Admit would, without recording, reserving or spending
// anything: a dry run.
func (s *Store) Check(ctx context.Context, req policy.Request) (policy.Decision, error) {
	gs, err := grantStatus(ctx, s.db, req.Grant)
	var d policy.Dataset
	if err == nil {
		err = loadJSON(ctx, s.db, &d, "dataset "+req.Dataset, `SELECT body FROM datasets WHERE name = ?`, req.Dataset)
	}
	if err != nil {
		if errors.Is(err, cove.ErrNotFound) {
			return policy.Decision{}, &policy.Rejection{Violations: []policy.Violation{policy.NewViolation(cove.Code(err), err)}}
		}
		return policy.Decision{}, err
	}
	now := s.now()
	b, err := budget(ctx, s.db, gs.Grant, d.Name, gs.PeriodStart(now))
	if err != nil {
		return policy.Decision{}, err
	}
	var used int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM jobs WHERE grant_id = ? AND state IN (?, ?, ?, ?)`,
		gs.ID, StateInReview, StateAdmitted, StateRunning, StateReleased).Scan(&used); err != nil {
		return policy.Decision{}, err
	}
	return policy.Admit(policy.Input{Grant: gs.Grant, Revoked: gs.RevokedAt != nil, Dataset: d, Budget: b, JobsUsed: used, Request: req, Now: now})
}
