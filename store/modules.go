package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/covedata/cove"
)

// moduleSchema records who uploaded which module. The modules themselves are
// in jobSchema's modules table, keyed by sha256 and shared: the same bytes
// are stored once whoever sends them.
const moduleSchema = `
CREATE TABLE IF NOT EXISTS module_uploads (
	sha256 TEXT NOT NULL REFERENCES modules(sha256), operator TEXT NOT NULL, created TEXT NOT NULL,
	PRIMARY KEY (sha256, operator));
`

// PrepareModules creates the table of module uploads if it is missing. Call
// it once after Open, before PutModule or HasModule.
func (s *Store) PrepareModules(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, moduleSchema); err != nil {
		return fmt.Errorf("store: create module uploads table: %w", err)
	}
	return nil
}

// PutModule stores a module uploaded by operator under its sha256 (hex, as
// computed by the caller over body) and records the upload. The bytes are
// written only if no one stored them before; the upload is recorded once per
// operator. The caller has checked the module (it compiles).
func (s *Store) PutModule(ctx context.Context, operator, sha256 string, body []byte) error {
	if operator == "" || len(sha256) != 64 || len(body) == 0 {
		return fmt.Errorf("%w: a module upload needs an operator, a sha256 and bytes", cove.ErrInvalid)
	}
	return s.update(ctx, func(t *tx) error {
		var n int
		if err := t.QueryRowContext(ctx, `SELECT count(*) FROM modules WHERE sha256 = ?`, sha256).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			if _, err := t.ExecContext(ctx, `INSERT INTO modules (sha256, body) VALUES (?, ?)`, sha256, body); err != nil {
				return err
			}
		}
		_, err := t.ExecContext(ctx, `INSERT OR IGNORE INTO module_uploads (sha256, operator, created) VALUES (?, ?, ?)`,
			sha256, operator, t.now.UTC().Format(time.RFC3339Nano))
		return err
	})
}

// HasModule reports whether operator uploaded the module of this sha256. A
// module only another operator uploaded (or that only came with a job) is
// not operator's to name.
func (s *Store) HasModule(ctx context.Context, operator, sha256 string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM module_uploads WHERE sha256 = ? AND operator = ?`, sha256, operator).Scan(&n)
	return n > 0, err
}

// Module returns the stored bytes of the module of this sha256.
func (s *Store) Module(ctx context.Context, sha256 string) ([]byte, error) {
	var body []byte
	err := s.db.QueryRowContext(ctx, `SELECT body FROM modules WHERE sha256 = ?`, sha256).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: module %s", cove.ErrNotFound, sha256)
	}
	return body, err
}
