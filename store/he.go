package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/covedata/cove"
	"github.com/covedata/cove/ledger"
	"github.com/covedata/cove/policy"
)

// heSchema holds the homomorphic path's state: setups, collective keys,
// encrypted columns, operators' recipient keys, release approvals and the key
// shares received. Large blobs (keys, columns) stay in files, named here by
// path and SHA-256. Rows are only ever inserted: an approval or a share is
// never replaced. Encrypted columns are kept by segment (he_segments, one
// row per attached row range); he_columns is the table of stores written
// before segments existed, one whole-table column per row, which heReady
// moves into he_segments.
const heSchema = `
CREATE TABLE IF NOT EXISTS he_setups (name TEXT PRIMARY KEY, body TEXT NOT NULL, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS he_keys (
	fingerprint TEXT PRIMARY KEY, setup TEXT NOT NULL REFERENCES he_setups(name), path TEXT NOT NULL, sha256 TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS he_columns (
	dataset TEXT NOT NULL REFERENCES datasets(name), col TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (dataset, col));
CREATE TABLE IF NOT EXISTS he_segments (
	dataset TEXT NOT NULL REFERENCES datasets(name), col TEXT NOT NULL, row_start INTEGER NOT NULL, row_end INTEGER NOT NULL,
	provider TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (dataset, col, row_start), CHECK (row_start >= 0 AND row_end > row_start));
CREATE TABLE IF NOT EXISTS he_recipients (hash TEXT PRIMARY KEY, operator TEXT NOT NULL, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS he_approvals (
	job_id TEXT NOT NULL REFERENCES jobs(id), output TEXT NOT NULL, ciphertext TEXT NOT NULL UNIQUE,
	recipient TEXT NOT NULL, session TEXT NOT NULL UNIQUE, seq INTEGER NOT NULL, PRIMARY KEY (job_id, output));
CREATE TABLE IF NOT EXISTS he_shares (
	provider TEXT NOT NULL, ciphertext TEXT NOT NULL, job_id TEXT NOT NULL, session TEXT NOT NULL,
	share_sha256 TEXT NOT NULL, PRIMARY KEY (provider, ciphertext));
`

// heReady creates the HE tables if needed (they are created on first use,
// so stores opened before the HE path existed keep working).
func (s *Store) heReady(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, heSchema+heAPISchema); err != nil {
		return fmt.Errorf("%w: creating HE tables: %v", cove.ErrLedger, err)
	}
	return s.migrateHEColumns(ctx)
}

// migrateHEColumns moves the encrypted columns of a store written before
// segments existed (he_columns: one whole-table column per dataset column)
// into he_segments as segments [0, rows), in one transaction, and empties
// he_columns. Their ledger entries stay as they are: an he.column entry
// without a range is a whole-table column. Nothing to move costs one read.
func (s *Store) migrateHEColumns(ctx context.Context) error {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM he_columns LIMIT 1)`).Scan(&n); err != nil {
		return fmt.Errorf("%w: reading HE columns: %v", cove.ErrLedger, err)
	}
	if n == 0 {
		return nil
	}
	return s.update(ctx, func(t *tx) error {
		rows, err := t.QueryContext(ctx, `SELECT body FROM he_columns`)
		if err != nil {
			return err
		}
		var old []HEColumn
		for rows.Next() {
			var body string
			var c HEColumn
			if err := rows.Scan(&body); err != nil {
				rows.Close()
				return err
			}
			if err := json.Unmarshal([]byte(body), &c); err != nil {
				rows.Close()
				return fmt.Errorf("%w: migrating encrypted columns: %v", cove.ErrLedger, err)
			}
			old = append(old, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, c := range old {
			c.whole()
			body, _ := json.Marshal(c)
			if _, err := t.ExecContext(ctx, `INSERT OR IGNORE INTO he_segments (dataset, col, row_start, row_end, provider, body) VALUES (?, ?, ?, ?, ?, ?)`,
				c.Dataset, c.Column, c.Start, c.End, c.Provider, string(body)); err != nil {
				return fmt.Errorf("%w: migrating encrypted column %s.%s: %v", cove.ErrLedger, c.Dataset, c.Column, err)
			}
		}
		_, err = t.ExecContext(ctx, `DELETE FROM he_columns`)
		return err
	})
}

// HESetup is what the key holders of a collective key agree on publicly:
// the parameters, who holds a share, and the seed of the common reference
// string. Registering it in the ledger binds the seed to the log.
type HESetup struct {
	Name      string          `json:"name"`
	Params    json.RawMessage `json:"params"` // an he.ParamsLiteral
	Providers []string        `json:"providers"`
	Seed      []byte          `json:"seed"`
	Seq       uint64          `json:"ledger_seq,omitempty"` // the he.setup entry
}

// RegisterHESetup records a setup and its ledger entry in one transaction.
// An empty seed is drawn here (32 random bytes); the stored setup, with the
// entry's sequence number, is returned. A name already used is ErrExists.
func (s *Store) RegisterHESetup(ctx context.Context, su HESetup) (HESetup, error) {
	if !policy.ValidName(su.Name) {
		return su, fmt.Errorf("%w: HE setup name %q is not a valid name", cove.ErrInvalid, su.Name)
	}
	if len(su.Providers) == 0 || !json.Valid(su.Params) {
		return su, fmt.Errorf("%w: HE setup %s needs parameters and providers", cove.ErrInvalid, su.Name)
	}
	for i, p := range su.Providers {
		if !policy.ValidName(p) || slices.Contains(su.Providers[:i], p) {
			return su, fmt.Errorf("%w: HE setup %s: provider %q is not a valid name or is repeated", cove.ErrInvalid, su.Name, p)
		}
	}
	if len(su.Seed) == 0 {
		su.Seed = make([]byte, 32)
		if _, err := rand.Read(su.Seed); err != nil {
			return su, err
		}
	}
	if len(su.Seed) < 32 {
		return su, fmt.Errorf("%w: HE setup %s: seed of %d bytes, need ≥ 32", cove.ErrInvalid, su.Name, len(su.Seed))
	}
	if err := s.heReady(ctx); err != nil {
		return su, err
	}
	err := s.update(ctx, func(t *tx) error {
		if err := t.absent(ctx, "he_setups", "name", su.Name, "HE setup"); err != nil {
			return err
		}
		su.Seq = 0
		if err := t.log(ctx, ledger.HESetup, su.Name, su); err != nil {
			return err
		}
		seq, err := t.head(ctx)
		if err != nil {
			return err
		}
		su.Seq = seq
		body, _ := json.Marshal(su)
		_, err = t.ExecContext(ctx, `INSERT INTO he_setups (name, body, seq) VALUES (?, ?, ?)`, su.Name, string(body), seq)
		return err
	})
	return su, err
}

// head is the sequence number of the last ledger entry in the transaction.
func (t *tx) head(ctx context.Context) (uint64, error) {
	var seq uint64
	if err := t.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM ledger`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("%w: reading ledger head: %v", cove.ErrLedger, err)
	}
	return seq, nil
}

// HESetupByName returns a registered setup.
func (s *Store) HESetupByName(ctx context.Context, name string) (HESetup, error) {
	var su HESetup
	if err := s.heReady(ctx); err != nil {
		return su, err
	}
	err := loadJSON(ctx, s.db, &su, "HE setup "+name, `SELECT body FROM he_setups WHERE name = ?`, name)
	return su, err
}

// HEKeys names a collective key set: its fingerprint (hex of
// he.PublicKeys.Fingerprint), the setup it came from, and the file holding
// its serialized public and Galois keys.
type HEKeys struct {
	Fingerprint string `json:"fingerprint"`
	Setup       string `json:"setup"`
	Path        string `json:"path"`
	SHA256      string `json:"sha256"`
	// KeygenShares are the SHA-256 of each holder's keygen share, by holder.
	KeygenShares map[string]string `json:"keygen_shares"`
}

// RegisterHEKeys records a collective key set of a registered setup, with
// one keygen share hash per holder of the setup.
func (s *Store) RegisterHEKeys(ctx context.Context, k HEKeys) error {
	if !isHex(k.Fingerprint, 32) || !isHex(k.SHA256, 32) || k.Path == "" {
		return fmt.Errorf("%w: HE keys need a fingerprint, a path and a SHA-256", cove.ErrInvalid)
	}
	su, err := s.HESetupByName(ctx, k.Setup)
	if err != nil {
		return err
	}
	for _, p := range su.Providers {
		if !isHex(k.KeygenShares[p], 32) {
			return fmt.Errorf("%w: HE keys %s: no keygen share hash from provider %s", cove.ErrInvalid, k.Fingerprint, p)
		}
	}
	if len(k.KeygenShares) != len(su.Providers) {
		return fmt.Errorf("%w: HE keys %s: keygen shares from holders outside setup %s", cove.ErrInvalid, k.Fingerprint, su.Name)
	}
	return s.update(ctx, func(t *tx) error {
		if err := t.absent(ctx, "he_keys", "fingerprint", k.Fingerprint, "HE keys"); err != nil {
			return err
		}
		if _, err := t.ExecContext(ctx, `INSERT INTO he_keys (fingerprint, setup, path, sha256) VALUES (?, ?, ?, ?)`,
			k.Fingerprint, k.Setup, k.Path, k.SHA256); err != nil {
			return err
		}
		return t.log(ctx, ledger.HEKeys, k.Fingerprint, k)
	})
}

// HEKeysByFingerprint returns a registered key set.
func (s *Store) HEKeysByFingerprint(ctx context.Context, fingerprint string) (HEKeys, error) {
	k := HEKeys{Fingerprint: fingerprint}
	if err := s.heReady(ctx); err != nil {
		return k, err
	}
	err := s.db.QueryRowContext(ctx, `SELECT setup, path, sha256 FROM he_keys WHERE fingerprint = ?`, fingerprint).Scan(&k.Setup, &k.Path, &k.SHA256)
	if errors.Is(err, sql.ErrNoRows) {
		return k, fmt.Errorf("%w: HE keys %s", cove.ErrNotFound, fingerprint)
	}
	return k, err
}

// HEColumn is one segment of an encrypted column attached to a dataset:
// the rows [Start, End) of the dataset's (public) table, encrypted by
// Provider; row Start+i of the table is row i of the segment. A column
// attached whole is one segment [0, rows). Every segment of a column is
// under the same collective keys, with the same bounds and nulls policy,
// and segments do not overlap; a job runs only on a column whose segments
// cover every row of the table. Lo and Hi are the providers' public
// clamping bounds; they size the DP noise.
type HEColumn struct {
	Dataset  string  `json:"dataset"`
	Column   string  `json:"column"`
	Provider string  `json:"provider"`
	Keys     string  `json:"keys"` // fingerprint
	Path     string  `json:"path"`
	SHA256   string  `json:"sha256"`
	Rows     int64   `json:"rows"` // End − Start
	Start    int64   `json:"start"`
	End      int64   `json:"end"`
	Lo       float64 `json:"lo"`
	Hi       float64 `json:"hi"`
	// Nulls says how the provider entered missing values ("refuse": there
	// were none; "zero": entered as 0).
	Nulls string `json:"nulls"`
}

// whole fills the range of a registration that has none (recorded before
// segments existed, or attached without a range): the whole table.
func (c *HEColumn) whole() {
	if c.Start == 0 && c.End == 0 {
		c.End = c.Rows
	}
}

// RegisterHEColumn attaches an encrypted column, or one segment of it, to a
// dataset. The column must be in the dataset's catalog entry (so grants can
// name it), must not be a direct identifier, and its keys must be
// registered. Without a range (Start = End = 0) the segment is the whole
// table [0, Rows). A segment must lie within the table's rows when the
// catalog knows them, match the column's other segments in keys, bounds and
// nulls (ErrInvalid) and overlap none of them (ErrExists). The segment and
// its ledger entry (he.column, with the range and the provider) are
// recorded in one transaction.
func (s *Store) RegisterHEColumn(ctx context.Context, c HEColumn) error {
	if err := s.heReady(ctx); err != nil {
		return err
	}
	d, err := s.Dataset(ctx, c.Dataset)
	if err != nil {
		return err
	}
	wholeTable := c.Start == 0 && c.End == 0
	c.whole()
	col, ok := d.Column(c.Column)
	switch {
	case !ok:
		return fmt.Errorf("%w: column %q is not in the catalog entry of dataset %s", cove.ErrInvalid, c.Column, d.Name)
	case col.Role == policy.DirectIdentifier:
		return fmt.Errorf("%w: column %q of dataset %s is a direct identifier", cove.ErrOutOfScope, c.Column, d.Name)
	case !isHex(c.SHA256, 32) || c.Path == "" || c.Rows < 1:
		return fmt.Errorf("%w: encrypted column %s.%s needs a path, a SHA-256 and rows", cove.ErrInvalid, d.Name, c.Column)
	case !policy.ValidName(c.Provider):
		return fmt.Errorf("%w: encrypted column %s.%s: provider %q is not a valid name", cove.ErrInvalid, d.Name, c.Column, c.Provider)
	case !(c.Lo <= c.Hi) || math.IsInf(c.Lo, 0) || math.IsInf(c.Hi, 0):
		return fmt.Errorf("%w: encrypted column %s.%s: bounds [%v, %v]", cove.ErrInvalid, d.Name, c.Column, c.Lo, c.Hi)
	case c.Start < 0 || c.End-c.Start != c.Rows:
		return fmt.Errorf("%w: encrypted column %s.%s: rows [%d, %d) for a segment of %d rows", cove.ErrInvalid, d.Name, c.Column, c.Start, c.End, c.Rows)
	case wholeTable && d.Rows > 0 && d.Rows != c.Rows:
		return fmt.Errorf("%w: encrypted column %s.%s has %d rows, the dataset %d", cove.ErrInvalid, d.Name, c.Column, c.Rows, d.Rows)
	case d.Rows > 0 && c.End > d.Rows:
		return fmt.Errorf("%w: encrypted column %s.%s: rows [%d, %d) beyond the dataset's %d rows", cove.ErrInvalid, d.Name, c.Column, c.Start, c.End, d.Rows)
	}
	if _, err := s.HEKeysByFingerprint(ctx, c.Keys); err != nil {
		return err
	}
	body, _ := json.Marshal(c)
	return s.update(ctx, func(t *tx) error {
		segs, err := heSegments(ctx, t, c.Dataset, c.Column)
		if err != nil {
			return err
		}
		for _, o := range segs {
			switch {
			case o.Start < c.End && c.Start < o.End:
				return fmt.Errorf("%w: encrypted column %s.%s: rows [%d, %d) overlap the segment [%d, %d) attached by %s",
					cove.ErrExists, c.Dataset, c.Column, c.Start, c.End, o.Start, o.End, o.Provider)
			case o.Keys != c.Keys:
				return fmt.Errorf("%w: encrypted column %s.%s: the segment is under keys %.16s, the column's other segments under %.16s",
					cove.ErrInvalid, c.Dataset, c.Column, c.Keys, o.Keys)
			case o.Lo != c.Lo || o.Hi != c.Hi:
				return fmt.Errorf("%w: encrypted column %s.%s: the segment has bounds [%v, %v], the column's other segments [%v, %v]",
					cove.ErrInvalid, c.Dataset, c.Column, c.Lo, c.Hi, o.Lo, o.Hi)
			case o.Nulls != c.Nulls:
				return fmt.Errorf("%w: encrypted column %s.%s: the segment's nulls are %q, the column's other segments' %q",
					cove.ErrInvalid, c.Dataset, c.Column, c.Nulls, o.Nulls)
			}
		}
		if _, err := t.ExecContext(ctx, `INSERT INTO he_segments (dataset, col, row_start, row_end, provider, body) VALUES (?, ?, ?, ?, ?, ?)`,
			c.Dataset, c.Column, c.Start, c.End, c.Provider, string(body)); err != nil {
			return err
		}
		return t.log(ctx, ledger.HEColumn, c.Dataset+"."+c.Column, c)
	})
}

// rowsQuerier is what heSegments reads through: the database or a
// transaction.
type rowsQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// heSegments returns the segments of dataset.column by row.
func heSegments(ctx context.Context, q rowsQuerier, dataset, column string) ([]HEColumn, error) {
	rows, err := q.QueryContext(ctx, `SELECT body FROM he_segments WHERE dataset = ? AND col = ? ORDER BY row_start`, dataset, column)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []HEColumn
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, err
		}
		var c HEColumn
		if err := json.Unmarshal([]byte(body), &c); err != nil {
			return nil, fmt.Errorf("%w: encrypted column %s.%s: %v", cove.ErrLedger, dataset, column, err)
		}
		c.whole()
		out = append(out, c)
	}
	return out, rows.Err()
}

// HEColumnSegments returns the segments of the encrypted column attached to
// dataset.column, ordered by their first row (ErrNotFound if none). Whether
// they cover the table is the caller's check: the table's rows are known
// when it is read.
func (s *Store) HEColumnSegments(ctx context.Context, dataset, column string) ([]HEColumn, error) {
	if err := s.heReady(ctx); err != nil {
		return nil, err
	}
	segs, err := heSegments(ctx, s.db, dataset, column)
	if err == nil && len(segs) == 0 {
		err = fmt.Errorf("%w: encrypted column %s.%s", cove.ErrNotFound, dataset, column)
	}
	return segs, err
}

// HEColumnOf returns the segment of dataset.column that starts at row 0:
// the whole column when it was attached whole.
func (s *Store) HEColumnOf(ctx context.Context, dataset, column string) (HEColumn, error) {
	return s.HEColumnSegment(ctx, dataset, column, 0)
}

// HEColumnSegment returns the segment of dataset.column that starts at row
// start.
func (s *Store) HEColumnSegment(ctx context.Context, dataset, column string, start int64) (HEColumn, error) {
	var c HEColumn
	if err := s.heReady(ctx); err != nil {
		return c, err
	}
	err := loadJSON(ctx, s.db, &c, fmt.Sprintf("encrypted column %s.%s from row %d", dataset, column, start),
		`SELECT body FROM he_segments WHERE dataset = ? AND col = ? AND row_start = ?`, dataset, column, start)
	c.whole()
	return c, err
}

// RegisterHERecipient records an operator's public key (serialized
// he.OperatorKey) under hash, the hex SHA-256 an approval names as the
// recipient. The key itself is public.
func (s *Store) RegisterHERecipient(ctx context.Context, operator, hash string, key []byte) error {
	if !policy.ValidName(operator) || !isHex(hash, 32) || len(key) == 0 {
		return fmt.Errorf("%w: recipient key needs an operator, a hash and the key", cove.ErrInvalid)
	}
	if err := s.heReady(ctx); err != nil {
		return err
	}
	return s.update(ctx, func(t *tx) error {
		if err := t.absent(ctx, "he_recipients", "hash", hash, "recipient key"); err != nil {
			return err
		}
		if _, err := t.ExecContext(ctx, `INSERT INTO he_recipients (hash, operator, body) VALUES (?, ?, ?)`, hash, operator, key); err != nil {
			return err
		}
		return t.log(ctx, ledger.HERecipient, hash, map[string]any{"operator": operator, "bytes": len(key)})
	})
}

// HERecipientKey returns a registered recipient key and its operator.
func (s *Store) HERecipientKey(ctx context.Context, hash string) (operator string, key []byte, err error) {
	if err := s.heReady(ctx); err != nil {
		return "", nil, err
	}
	err = s.db.QueryRowContext(ctx, `SELECT operator, body FROM he_recipients WHERE hash = ?`, hash).Scan(&operator, &key)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil, fmt.Errorf("%w: recipient key %s", cove.ErrNotFound, hash)
	}
	return operator, key, err
}

// HEApproval is the policy's approval of one release: job's output, as the
// ciphertext with that SHA-256, re-encrypted to the recipient key with that
// SHA-256, in the key-switch session with that id (all hex).
type HEApproval struct {
	Job        string `json:"job"`
	Output     string `json:"output"`
	Ciphertext string `json:"ciphertext_sha256"`
	Recipient  string `json:"recipient_sha256"`
	Session    string `json:"session"`
	Keys       string `json:"keys"`
}

// ApproveHERelease records the approval of a release and its ledger entry
// in one transaction, and returns the entry's sequence number (the token
// key holders check). It is refused unless the job is running under a live
// grant and the recipient is the job's operator's key; and a job's output is
// approved at most once, so a retry cannot have a second ciphertext of the
// same output decrypted (fresh noise needs a new job and new budget).
func (s *Store) ApproveHERelease(ctx context.Context, a HEApproval) (uint64, error) {
	if !isHex(a.Ciphertext, 32) || !isHex(a.Recipient, 32) || !isHex(a.Session, 32) || a.Output == "" {
		return 0, fmt.Errorf("%w: approval of job %s is incomplete", cove.ErrInvalid, a.Job)
	}
	if err := s.heReady(ctx); err != nil {
		return 0, err
	}
	var seq uint64
	err := s.update(ctx, func(t *tx) error {
		if err := t.grantLive(ctx, a.Job); err != nil {
			return err
		}
		var state, operator, recOperator string
		if err := t.QueryRowContext(ctx, `SELECT state, operator FROM jobs WHERE id = ?`, a.Job).Scan(&state, &operator); err != nil {
			return fmt.Errorf("%w: job %s", cove.ErrNotFound, a.Job)
		}
		if state != StateRunning {
			return fmt.Errorf("%w: job %s is %s: no release can be approved", cove.ErrPrivacy, a.Job, state)
		}
		err := t.QueryRowContext(ctx, `SELECT operator FROM he_recipients WHERE hash = ?`, a.Recipient).Scan(&recOperator)
		if err != nil || recOperator != operator {
			return fmt.Errorf("%w: recipient key %s is not registered for operator %s", cove.ErrPrivacy, a.Recipient, operator)
		}
		var n int
		if err := t.QueryRowContext(ctx, `SELECT count(*) FROM he_approvals WHERE (job_id = ? AND output = ?) OR ciphertext = ? OR session = ?`,
			a.Job, a.Output, a.Ciphertext, a.Session).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: output %s of job %s was approved for release before; a new release needs a new job", cove.ErrPrivacy, a.Output, a.Job)
		}
		if err := t.log(ctx, ledger.HEApproved, a.Job, a); err != nil {
			return err
		}
		if seq, err = t.head(ctx); err != nil {
			return err
		}
		_, err = t.ExecContext(ctx, `INSERT INTO he_approvals (job_id, output, ciphertext, recipient, session, seq) VALUES (?, ?, ?, ?, ?, ?)`,
			a.Job, a.Output, a.Ciphertext, a.Recipient, a.Session, seq)
		return err
	})
	return seq, err
}

// HEShare records a key holder's key-switch share received by the sandbox.
type HEShare struct {
	Job         string `json:"job"`
	Output      string `json:"output"`
	Provider    string `json:"provider"`
	Ciphertext  string `json:"ciphertext_sha256"`
	Session     string `json:"session"`
	ShareSHA256 string `json:"share_sha256"`
}

// RecordHEShare records a received share and its ledger entry (he.share)
// in one transaction, before the share is used: a share that cannot be
// recorded is not combined (fail closed). It is refused unless the release
// was approved (same job, output, ciphertext and session) and the job still
// runs, and for a second share of a ciphertext from the same holder.
func (s *Store) RecordHEShare(ctx context.Context, sh HEShare) error {
	if !isHex(sh.ShareSHA256, 32) || sh.Provider == "" {
		return fmt.Errorf("%w: share record of job %s is incomplete", cove.ErrInvalid, sh.Job)
	}
	if err := s.heReady(ctx); err != nil {
		return err
	}
	return s.update(ctx, func(t *tx) error {
		var state string
		if err := t.QueryRowContext(ctx, `SELECT state FROM jobs WHERE id = ?`, sh.Job).Scan(&state); err != nil {
			return fmt.Errorf("%w: job %s", cove.ErrNotFound, sh.Job)
		}
		if state != StateRunning {
			return fmt.Errorf("%w: job %s is %s", cove.ErrPrivacy, sh.Job, state)
		}
		var n int
		if err := t.QueryRowContext(ctx, `SELECT count(*) FROM he_approvals WHERE job_id = ? AND output = ? AND ciphertext = ? AND session = ?`,
			sh.Job, sh.Output, sh.Ciphertext, sh.Session).Scan(&n); err != nil {
			return err
		}
		if n != 1 {
			return fmt.Errorf("%w: no approval of output %s of job %s for this ciphertext and session", cove.ErrPrivacy, sh.Output, sh.Job)
		}
		if err := t.QueryRowContext(ctx, `SELECT count(*) FROM he_shares WHERE provider = ? AND ciphertext = ?`, sh.Provider, sh.Ciphertext).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: provider %s already gave a share of this ciphertext", cove.ErrPrivacy, sh.Provider)
		}
		if _, err := t.ExecContext(ctx, `INSERT INTO he_shares (provider, ciphertext, job_id, session, share_sha256) VALUES (?, ?, ?, ?, ?)`,
			sh.Provider, sh.Ciphertext, sh.Job, sh.Session, sh.ShareSHA256); err != nil {
			return err
		}
		return t.log(ctx, ledger.KeyShareGiven, sh.Job, sh)
	})
}

// HESharesGiven counts the shares recorded for a ciphertext (hex SHA-256).
func (s *Store) HESharesGiven(ctx context.Context, ciphertext string) (int, error) {
	if err := s.heReady(ctx); err != nil {
		return 0, err
	}
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM he_shares WHERE ciphertext = ?`, ciphertext).Scan(&n)
	return n, err
}

// CheckHEApproval is a key holder's check, from the ledger alone: it
// verifies the whole ledger, then requires entry seq to be an he.approved
// entry naming job, ciphertext and recipient (hex SHA-256), and no entry
// to end the job (failed, cancelled, rejected or released). A holder
// that cannot verify the ledger gives no share.
func (s *Store) CheckHEApproval(ctx context.Context, job, ciphertext, recipient string, seq uint64) error {
	if _, err := s.VerifyLedger(ctx); err != nil {
		return fmt.Errorf("%w: the sandbox's ledger does not verify: %v", cove.ErrPrivacy, err)
	}
	found := false
	for e, err := range s.Entries(ctx) {
		if err != nil {
			return fmt.Errorf("%w: reading the ledger: %v", cove.ErrLedger, err)
		}
		if e.Subject != job {
			continue
		}
		switch e.Kind {
		case ledger.HEApproved:
			if e.Seq != seq {
				continue
			}
			var a HEApproval
			if err := json.Unmarshal(e.Body, &a); err != nil {
				return fmt.Errorf("%w: approval entry %d: %v", cove.ErrLedger, e.Seq, err)
			}
			if a.Job != job || a.Ciphertext != ciphertext || a.Recipient != recipient {
				return fmt.Errorf("%w: ledger entry %d approves another ciphertext or recipient", cove.ErrPrivacy, e.Seq)
			}
			found = true
		case ledger.JobFailed, ledger.JobCancelled, ledger.JobRejected, ledger.Released:
			return fmt.Errorf("%w: job %s ended (ledger entry %d, %s)", cove.ErrPrivacy, job, e.Seq, e.Kind)
		}
	}
	if !found {
		return fmt.Errorf("%w: the ledger records no approval %d for job %s", cove.ErrPrivacy, seq, job)
	}
	return nil
}

func isHex(s string, n int) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == n && s == strings.ToLower(s)
}
