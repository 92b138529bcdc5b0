package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/covedata/cove"
	"github.com/covedata/cove/ledger"
	"github.com/covedata/cove/policy"
)

// heAPISchema is the state the API adds to the homomorphic path: keygen
// shares received from the key holders, and operators' encrypted queries
// with their (encrypted) replies, kept so that a retry returns the stored
// reply instead of drawing noise again.
const heAPISchema = `
CREATE TABLE IF NOT EXISTS he_keygen_shares (
	setup TEXT NOT NULL REFERENCES he_setups(name), provider TEXT NOT NULL, sha256 TEXT NOT NULL,
	path TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (setup, provider));
CREATE TABLE IF NOT EXISTS he_queries (
	id TEXT PRIMARY KEY, operator TEXT NOT NULL, body TEXT NOT NULL, reply BLOB NOT NULL, seq INTEGER NOT NULL);
`

// HEKeygenShare is a key holder's keygen share received by the sandbox:
// the file holding it (relative to the data directory) and its SHA-256.
type HEKeygenShare struct {
	Setup    string `json:"setup"`
	Provider string `json:"provider"`
	SHA256   string `json:"sha256"`
	Path     string `json:"path"`
	Seq      uint64 `json:"ledger_seq,omitempty"`
}

// RecordHEKeygenShare records a holder's keygen share and its ledger entry
// (he.keygen_share) in one transaction. It is refused for a provider
// outside the setup, for a second share of the same holder (ErrExists: a
// holder gives one keygen share per setup), and once the setup's keys are
// built.
func (s *Store) RecordHEKeygenShare(ctx context.Context, sh HEKeygenShare) (HEKeygenShare, error) {
	if !isHex(sh.SHA256, 32) || sh.Path == "" {
		return sh, fmt.Errorf("%w: keygen share of %s needs a path and a SHA-256", cove.ErrInvalid, sh.Provider)
	}
	su, err := s.HESetupByName(ctx, sh.Setup)
	if err != nil {
		return sh, err
	}
	if !slices.Contains(su.Providers, sh.Provider) {
		return sh, fmt.Errorf("%w: provider %s holds no share of HE setup %s", cove.ErrOutOfScope, sh.Provider, sh.Setup)
	}
	err = s.update(ctx, func(t *tx) error {
		var n int
		if err := t.QueryRowContext(ctx, `SELECT count(*) FROM he_keys WHERE setup = ?`, sh.Setup).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: the keys of HE setup %s are built", cove.ErrExists, sh.Setup)
		}
		if err := t.QueryRowContext(ctx, `SELECT count(*) FROM he_keygen_shares WHERE setup = ? AND provider = ?`, sh.Setup, sh.Provider).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: provider %s already gave its keygen share for HE setup %s", cove.ErrExists, sh.Provider, sh.Setup)
		}
		sh.Seq = 0
		if err := t.log(ctx, ledger.HEKeygenShare, sh.Setup, sh); err != nil {
			return err
		}
		seq, err := t.head(ctx)
		if err != nil {
			return err
		}
		sh.Seq = seq
		_, err = t.ExecContext(ctx, `INSERT INTO he_keygen_shares (setup, provider, sha256, path, seq) VALUES (?, ?, ?, ?, ?)`,
			sh.Setup, sh.Provider, sh.SHA256, sh.Path, seq)
		return err
	})
	return sh, err
}

// HEKeygenShares returns the keygen shares received for a setup.
func (s *Store) HEKeygenShares(ctx context.Context, setup string) ([]HEKeygenShare, error) {
	if err := s.heReady(ctx); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT setup, provider, sha256, path, seq FROM he_keygen_shares WHERE setup = ? ORDER BY provider`, setup)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []HEKeygenShare
	for rows.Next() {
		var sh HEKeygenShare
		if err := rows.Scan(&sh.Setup, &sh.Provider, &sh.SHA256, &sh.Path, &sh.Seq); err != nil {
			return nil, err
		}
		out = append(out, sh)
	}
	return out, rows.Err()
}

// HEKeysOfSetup returns the collective keys built for a setup.
func (s *Store) HEKeysOfSetup(ctx context.Context, setup string) (HEKeys, error) {
	k := HEKeys{Setup: setup}
	if err := s.heReady(ctx); err != nil {
		return k, err
	}
	err := s.db.QueryRowContext(ctx, `SELECT fingerprint, path, sha256 FROM he_keys WHERE setup = ?`, setup).Scan(&k.Fingerprint, &k.Path, &k.SHA256)
	if errors.Is(err, sql.ErrNoRows) {
		return k, fmt.Errorf("%w: the keys of HE setup %s are not built yet", cove.ErrNotFound, setup)
	}
	return k, err
}

// HEApprovalRecord is an approval with the sequence number of its ledger
// entry.
type HEApprovalRecord struct {
	HEApproval
	Seq uint64 `json:"ledger_seq"`
}

// HEApprovalBySession returns the approval of the key-switch session (hex).
func (s *Store) HEApprovalBySession(ctx context.Context, session string) (HEApprovalRecord, error) {
	var a HEApprovalRecord
	if err := s.heReady(ctx); err != nil {
		return a, err
	}
	err := s.db.QueryRowContext(ctx, `SELECT job_id, output, ciphertext, recipient, session, seq FROM he_approvals WHERE session = ?`, session).
		Scan(&a.Job, &a.Output, &a.Ciphertext, &a.Recipient, &a.Session, &a.Seq)
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("%w: no approved release has key-switch session %.16s", cove.ErrNotFound, session)
	}
	return a, err
}

// HEShareGiven reports whether provider gave a key-switch share of the
// ciphertext (hex SHA-256).
func (s *Store) HEShareGiven(ctx context.Context, provider, ciphertext string) (bool, error) {
	if err := s.heReady(ctx); err != nil {
		return false, err
	}
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM he_shares WHERE provider = ? AND ciphertext = ?`, provider, ciphertext).Scan(&n)
	return n > 0, err
}

// HEQuery is an operator's encrypted query as the sandbox records it:
// never the vector (the sandbox cannot read it), only hashes, the public
// spec and the privacy cost. The privacy cost does not depend on the
// vector: the sandbox noises the aggregate the vector is applied to.
type HEQuery struct {
	ID            string    `json:"id"`
	Operator      string    `json:"operator"`
	Grant         string    `json:"grant"`
	Dataset       string    `json:"dataset"`
	Purpose       string    `json:"purpose"`
	Spec          any       `json:"spec"`           // the public part of the request (columns, groups, bounds, mechanism) and the noise on X (sensitivities, scales)
	RequestSHA256 string    `json:"request_sha256"` // of the whole request, encrypted query included
	QuerySHA256   string    `json:"query_sha256"`   // of the encrypted query
	ReplySHA256   string    `json:"reply_sha256"`
	Recipient     string    `json:"recipient_sha256"` // the operator's registered key the query is under
	Epsilon       float64   `json:"epsilon"`
	Delta         float64   `json:"delta"`
	Period        string    `json:"period"`
	Time          time.Time `json:"time"`
	Seq           uint64    `json:"ledger_seq,omitempty"`
}

// RecordHEQuery stores an answered query's reply, debits its (ε, δ) from
// the grant's budget on the dataset and appends he.query to the ledger, in
// one transaction: if any part fails, nothing is recorded and the reply
// must not be given out. The grant must be live and the operator's; the
// budget left must pay for the query. An id already used is ErrExists
// (HEQueryByID returns the stored reply).
func (s *Store) RecordHEQuery(ctx context.Context, q HEQuery, reply []byte) (HEQuery, error) {
	if !policy.ValidName(q.ID) || !isHex(q.RequestSHA256, 32) || len(reply) == 0 {
		return q, fmt.Errorf("%w: query record needs an id, a request hash and a reply", cove.ErrInvalid)
	}
	if !(q.Epsilon > 0) || math.IsInf(q.Epsilon, 0) || !(q.Delta >= 0 && q.Delta < 1) {
		return q, fmt.Errorf("%w: query %s: (ε %g, δ %g) out of range", cove.ErrInvalid, q.ID, q.Epsilon, q.Delta)
	}
	if err := s.heReady(ctx); err != nil {
		return q, err
	}
	err := s.update(ctx, func(t *tx) error {
		if err := t.absent(ctx, "he_queries", "id", q.ID, "HE query"); err != nil {
			return err
		}
		gs, err := grantStatus(ctx, t, q.Grant)
		if err != nil {
			return err
		}
		switch {
		case gs.Operator != q.Operator:
			return fmt.Errorf("%w: grant %s is not operator %s's", cove.ErrOutOfScope, q.Grant, q.Operator)
		case gs.RevokedAt != nil:
			return fmt.Errorf("%w: grant %s was revoked", cove.ErrGrantInactive, q.Grant)
		case t.now.Before(gs.ValidFrom) || !t.now.Before(gs.ValidUntil):
			return fmt.Errorf("%w: grant %s is not valid now", cove.ErrGrantInactive, q.Grant)
		}
		period := gs.PeriodStart(t.now)
		b, err := budget(ctx, t, gs.Grant, q.Dataset, period)
		if err != nil {
			return err
		}
		if b.Spent+b.Reserved+q.Epsilon > b.Cap+1e-12 {
			return fmt.Errorf("%w: query %s needs ε %g; grant %s has %g left on dataset %s", cove.ErrBudgetExceeded, q.ID, q.Epsilon, q.Grant, b.Cap-b.Spent-b.Reserved, q.Dataset)
		}
		if b.DeltaSpent+b.DeltaReserved+q.Delta > b.DeltaCap+1e-15 && q.Delta > 0 {
			return fmt.Errorf("%w: query %s needs δ %g; grant %s has %g left on dataset %s", cove.ErrBudgetExceeded, q.ID, q.Delta, q.Grant, b.DeltaCap-b.DeltaSpent-b.DeltaReserved, q.Dataset)
		}
		q.Period, q.Time = period.UTC().Format(time.RFC3339), t.now.UTC()
		eCap, dCap := gs.Caps(q.Dataset)
		if _, err := t.ExecContext(ctx, `INSERT OR IGNORE INTO budgets (grant_id, dataset, period, eps_cap, delta_cap) VALUES (?, ?, ?, ?, ?)`,
			gs.ID, q.Dataset, q.Period, eCap, dCap); err != nil {
			return err
		}
		if _, err := t.ExecContext(ctx, `UPDATE budgets SET eps_spent = eps_spent + ?, delta_spent = delta_spent + ?
			WHERE grant_id = ? AND dataset = ? AND period = ?`, q.Epsilon, q.Delta, gs.ID, q.Dataset, q.Period); err != nil {
			return fmt.Errorf("%w: debit of query %s: %v", cove.ErrBudgetExceeded, q.ID, err)
		}
		q.Seq = 0
		if err := t.log(ctx, ledger.HEQuery, q.ID, q); err != nil {
			return err
		}
		if q.Seq, err = t.head(ctx); err != nil {
			return err
		}
		body, _ := json.Marshal(q)
		_, err = t.ExecContext(ctx, `INSERT INTO he_queries (id, operator, body, reply, seq) VALUES (?, ?, ?, ?, ?)`, q.ID, q.Operator, string(body), reply, q.Seq)
		return err
	})
	return q, err
}

// HEQueryByID returns a recorded query and its reply.
func (s *Store) HEQueryByID(ctx context.Context, id string) (HEQuery, []byte, error) {
	var q HEQuery
	if err := s.heReady(ctx); err != nil {
		return q, nil, err
	}
	var body string
	var reply []byte
	err := s.db.QueryRowContext(ctx, `SELECT body, reply FROM he_queries WHERE id = ?`, id).Scan(&body, &reply)
	if errors.Is(err, sql.ErrNoRows) {
		return q, nil, fmt.Errorf("%w: HE query %s", cove.ErrNotFound, id)
	}
	if err != nil {
		return q, nil, err
	}
	if err := json.Unmarshal([]byte(body), &q); err != nil {
		return q, nil, fmt.Errorf("%w: HE query %s: %v", cove.ErrLedger, id, err)
	}
	return q, reply, nil
}
