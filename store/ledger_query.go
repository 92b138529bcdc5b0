package store

import (
	"context"
	"fmt"
	"iter"

	"github.com/covedata/cove"
	"github.com/covedata/cove/ledger"
)

// ledgerQuerySchema indexes the ledger by subject (a job, grant or dataset),
// for a job's events and visibility checks without a scan of the ledger.
const ledgerQuerySchema = `CREATE INDEX IF NOT EXISTS ledger_by_subject ON ledger (subject, seq);`

// IndexLedgerSubjects creates the ledger's index by subject if it is missing.
// EntriesBySubject works without it, by a scan of the ledger.
func (s *Store) IndexLedgerSubjects(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, ledgerQuerySchema); err != nil {
		return fmt.Errorf("%w: indexing the ledger by subject: %v", cove.ErrLedger, err)
	}
	return nil
}

// EntriesBySubject iterates over the entries of one subject, in order.
func (s *Store) EntriesBySubject(ctx context.Context, subject string) iter.Seq2[ledger.Entry, error] {
	return s.queryEntries(ctx, `SELECT seq, time, kind, subject, body, hash FROM ledger WHERE subject = ? ORDER BY seq`, subject)
}

// EntriesFrom iterates over the entries from sequence number from on, in
// order, at most limit of them (0: no limit).
func (s *Store) EntriesFrom(ctx context.Context, from, limit uint64) iter.Seq2[ledger.Entry, error] {
	if limit == 0 {
		return s.queryEntries(ctx, `SELECT seq, time, kind, subject, body, hash FROM ledger WHERE seq >= ? ORDER BY seq`, from)
	}
	return s.queryEntries(ctx, `SELECT seq, time, kind, subject, body, hash FROM ledger WHERE seq >= ? ORDER BY seq LIMIT ?`, from, limit)
}

func (s *Store) queryEntries(ctx context.Context, q string, args ...any) iter.Seq2[ledger.Entry, error] {
	return func(yield func(ledger.Entry, error) bool) {
		rows, err := s.db.QueryContext(ctx, q, args...)
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

// ExtendLedger extends log, a Log that VerifyLedger returned (or that an
// earlier ExtendLedger extended), with the entries stored after it, checked
// as VerifyLedger checks them: each entry recomputed into the tree, the
// stored tree hashes of the new entries equal to the recomputed ones, and
// the checkpoints larger than checked (the largest checkpoint size checked
// before) signed by the log's key and matching the tree. It returns the new
// largest checkpoint size checked. On an error log may hold some of the new
// entries: verify the whole ledger again before trusting it.
//
// Entries before log's size are not read again: a change to them shows at
// the next VerifyLedger, not here.
func (s *Store) ExtendLedger(ctx context.Context, log *ledger.Log, checked uint64) (uint64, error) {
	old := log.Size()
	for e, err := range s.EntriesFrom(ctx, old+1, 0) {
		if err != nil {
			return checked, fmt.Errorf("%w: reading entry %d: %v", cove.ErrLedger, log.Size()+1, err)
		}
		if err := log.Append(e); err != nil {
			return checked, err
		}
	}
	size := log.Size()
	if size == old {
		return s.checkCheckpoints(ctx, log, checked)
	}
	from, to := ledger.StoredHashCount(old), ledger.StoredHashCount(size)
	rows, err := s.db.QueryContext(ctx, `SELECT idx, hash FROM ledger_hashes WHERE idx >= ? AND idx < ? ORDER BY idx`, from, to)
	if err != nil {
		return checked, fmt.Errorf("%w: reading tree hashes: %v", cove.ErrLedger, err)
	}
	defer rows.Close()
	n := from
	for rows.Next() {
		var idx int64
		var h []byte
		if err := rows.Scan(&idx, &h); err != nil {
			return checked, fmt.Errorf("%w: reading tree hashes: %v", cove.ErrLedger, err)
		}
		got, err := log.ReadHashes([]int64{idx})
		if err != nil || idx != n || string(h) != string(got[0][:]) {
			return checked, fmt.Errorf("%w: stored tree hash %d does not match the entries", cove.ErrLedger, idx)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return checked, fmt.Errorf("%w: reading tree hashes: %v", cove.ErrLedger, err)
	}
	if n != to {
		return checked, fmt.Errorf("%w: %d tree hashes stored for %d entries, want %d", cove.ErrLedger, n, size, to)
	}
	rows.Close()
	return s.checkCheckpoints(ctx, log, checked)
}

// checkCheckpoints checks the stored checkpoints larger than checked and no
// larger than log against log, and returns the largest size checked.
func (s *Store) checkCheckpoints(ctx context.Context, log *ledger.Log, checked uint64) (uint64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT size, note FROM ledger_checkpoints WHERE size > ? AND size <= ? ORDER BY size`, checked, log.Size())
	if err != nil {
		return checked, fmt.Errorf("%w: reading checkpoints: %v", cove.ErrLedger, err)
	}
	defer rows.Close()
	for rows.Next() {
		var size uint64
		var msg string
		if err := rows.Scan(&size, &msg); err != nil {
			return checked, fmt.Errorf("%w: reading checkpoints: %v", cove.ErrLedger, err)
		}
		cp, err := openStored(size, msg, s.lg.verifier)
		if err != nil {
			return checked, err
		}
		if err := log.Check(cp.Head); err != nil {
			return checked, fmt.Errorf("checkpoint %d: %w", cp.Size, err)
		}
		checked = size
	}
	if err := rows.Err(); err != nil {
		return checked, fmt.Errorf("%w: reading checkpoints: %v", cove.ErrLedger, err)
	}
	return checked, nil
}
