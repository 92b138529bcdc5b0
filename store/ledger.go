package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/covedata/cove"
	"github.com/covedata/cove/ledger"
)

// Defaults for the ledger's options.
const (
	DefaultLedgerKeyFile   = "ledger.key" // next to the database
	DefaultLedgerOrigin    = "cove-ledger"
	DefaultCheckpointEvery = 100
)

// Option configures Open.
type Option func(*options)

type options struct {
	keyFile   string
	origin    string
	originSet bool
	every     uint64
}

// WithLedgerKey keeps the ledger's Ed25519 signer key in file path instead of
// DefaultLedgerKeyFile in the database's directory. Open creates the key,
// with mode 0600, if the file does not exist and no checkpoint was signed yet.
func WithLedgerKey(path string) Option { return func(o *options) { o.keyFile = path } }

// WithLedgerOrigin names the log (the key's name, printed on every checkpoint)
// when Open creates its key; an existing key of another name is an error.
func WithLedgerOrigin(name string) Option {
	return func(o *options) { o.origin, o.originSet = name, true }
}

// WithCheckpointEvery signs a checkpoint, in the same transaction, whenever
// the log's size becomes a multiple of n (0: only when Checkpoint is called).
func WithCheckpointEvery(n uint64) Option {
	return func(o *options) { o.every = n }
}

// ledgerLog is the log's signing state, shared by copies of a Store.
type ledgerLog struct {
	signer   note.Signer
	verifier note.Verifier
	vkey     string
	every    uint64
}

// openLedger loads (or, for a new log, creates) the signer key.
func (s *Store) openLedger(ctx context.Context, dbPath string, opts []Option) error {
	o := options{keyFile: filepath.Join(filepath.Dir(dbPath), DefaultLedgerKeyFile), origin: DefaultLedgerOrigin, every: DefaultCheckpointEvery}
	for _, opt := range opts {
		opt(&o)
	}
	var legacy int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('ledger') WHERE name = 'prev'`).Scan(&legacy); err != nil {
		return fmt.Errorf("%w: reading ledger schema: %v", cove.ErrLedger, err)
	}
	if legacy > 0 {
		return fmt.Errorf("%w: %s holds a hash-chained ledger of an earlier version; start a new data directory", cove.ErrLedger, dbPath)
	}
	skey, err := os.ReadFile(o.keyFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		var signed int
		if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM ledger_checkpoints`).Scan(&signed); err != nil {
			return fmt.Errorf("%w: reading checkpoints: %v", cove.ErrLedger, err)
		}
		if signed > 0 {
			// A new key would start a new identity for an old log.
			return fmt.Errorf("%w: ledger key %s is missing but %d checkpoints were signed with it", cove.ErrLedger, o.keyFile, signed)
		}
		if skey, err = createKey(o.keyFile, o.origin); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("%w: reading ledger key: %v", cove.ErrLedger, err)
	default:
		if fi, err := os.Stat(o.keyFile); err == nil && runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
			return fmt.Errorf("%w: ledger key %s is readable by others (mode %v); chmod 600 it", cove.ErrLedger, o.keyFile, fi.Mode().Perm())
		}
	}
	signer, err := note.NewSigner(string(skey))
	if err != nil {
		return fmt.Errorf("%w: ledger key %s is malformed", cove.ErrLedger, o.keyFile)
	}
	if o.originSet && signer.Name() != o.origin {
		return fmt.Errorf("%w: ledger key %s names log %q, not %q", cove.ErrLedger, o.keyFile, signer.Name(), o.origin)
	}
	vkey, err := ledger.VerifierKey(string(skey))
	if err != nil {
		return err
	}
	verifier, err := ledger.NewVerifier(vkey)
	if err != nil {
		return err
	}
	s.lg = &ledgerLog{signer: signer, verifier: verifier, vkey: vkey, every: o.every}
	return nil
}

// createKey writes a new signer key to path, mode 0600, durably. If another
// process created it first, that key is used.
func createKey(path, origin string) ([]byte, error) {
	skey, _, err := ledger.GenerateKey(origin)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: creating ledger key: %v", cove.ErrLedger, err)
	}
	_, err = f.WriteString(skey)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("%w: writing ledger key: %v", cove.ErrLedger, err)
	}
	return []byte(skey), nil
}

// VerifierKey is the log's public key: what a verifier needs, with the log
// and a checkpoint. Publish it somewhere the operator cannot change later.
func (s *Store) VerifierKey() string { return s.lg.vkey }

// Verifier is VerifierKey parsed.
func (s *Store) Verifier() note.Verifier { return s.lg.verifier }

// log appends a ledger entry and its stored hashes inside the transaction,
// and a signed checkpoint when one is due. Any failure fails the transaction:
// an action whose record cannot be written does not happen.
func (t *tx) log(ctx context.Context, kind ledger.Kind, subject string, body any) error {
	var last uint64
	if err := t.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM ledger`).Scan(&last); err != nil {
		return fmt.Errorf("%w: reading ledger head: %v", cove.ErrLedger, err)
	}
	e, err := ledger.New(last+1, t.now, kind, subject, body)
	if err != nil {
		return err
	}
	if _, err := t.ExecContext(ctx, `INSERT INTO ledger (seq, time, kind, subject, body, hash) VALUES (?, ?, ?, ?, ?, ?)`,
		e.Seq, e.Time.Format(time.RFC3339Nano), string(e.Kind), e.Subject, []byte(e.Body), e.Hash[:]); err != nil {
		return fmt.Errorf("%w: appending %s: %v", cove.ErrLedger, kind, err)
	}
	first, hashes, err := ledger.StoredHashes(e, hashReader{ctx, t})
	if err != nil {
		return err
	}
	for i, h := range hashes {
		if _, err := t.ExecContext(ctx, `INSERT INTO ledger_hashes (idx, hash) VALUES (?, ?)`, first+int64(i), h[:]); err != nil {
			return fmt.Errorf("%w: storing tree hash of entry %d: %v", cove.ErrLedger, e.Seq, err)
		}
	}
	if t.lg.every > 0 && e.Seq%t.lg.every == 0 {
		if _, err := t.checkpoint(ctx); err != nil {
			return err
		}
	}
	return nil
}

// checkpoint signs the tree head of the log as it stands in the transaction,
// computed from the hashes stored when the entries were appended (not from
// the entries as they are now), and stores it. A checkpoint of that size
// already stored is returned instead.
func (t *tx) checkpoint(ctx context.Context) (ledger.Checkpoint, error) {
	var size uint64
	if err := t.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM ledger`).Scan(&size); err != nil {
		return ledger.Checkpoint{}, fmt.Errorf("%w: reading ledger head: %v", cove.ErrLedger, err)
	}
	var msg string
	err := t.QueryRowContext(ctx, `SELECT note FROM ledger_checkpoints WHERE size = ?`, size).Scan(&msg)
	if err == nil {
		return openStored(size, msg, t.lg.verifier)
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return ledger.Checkpoint{}, fmt.Errorf("%w: reading checkpoint %d: %v", cove.ErrLedger, size, err)
	}
	head, err := ledger.TreeHead(size, hashReader{ctx, t})
	if err != nil {
		return ledger.Checkpoint{}, err
	}
	cp, err := ledger.Sign(t.lg.signer, head)
	if err != nil {
		return ledger.Checkpoint{}, err
	}
	if _, err := t.ExecContext(ctx, `INSERT INTO ledger_checkpoints (size, note) VALUES (?, ?)`, size, string(cp.Note)); err != nil {
		return ledger.Checkpoint{}, fmt.Errorf("%w: storing checkpoint %d: %v", cove.ErrLedger, size, err)
	}
	return cp, nil
}

// Checkpoint signs and stores the current tree head (or returns the stored
// checkpoint of the current size).
func (s *Store) Checkpoint(ctx context.Context) (ledger.Checkpoint, error) {
	var cp ledger.Checkpoint
	err := s.update(ctx, func(t *tx) error {
		var err error
		cp, err = t.checkpoint(ctx)
		return err
	})
	return cp, err
}

// Checkpoints returns every stored checkpoint, smallest first, each with its
// signature checked.
func (s *Store) Checkpoints(ctx context.Context) ([]ledger.Checkpoint, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT size, note FROM ledger_checkpoints ORDER BY size`)
	if err != nil {
		return nil, fmt.Errorf("%w: reading checkpoints: %v", cove.ErrLedger, err)
	}
	defer rows.Close()
	var out []ledger.Checkpoint
	for rows.Next() {
		var size uint64
		var msg string
		if err := rows.Scan(&size, &msg); err != nil {
			return nil, fmt.Errorf("%w: reading checkpoints: %v", cove.ErrLedger, err)
		}
		cp, err := openStored(size, msg, s.lg.verifier)
		if err != nil {
			return nil, err
		}
		out = append(out, cp)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%w: reading checkpoints: %v", cove.ErrLedger, err)
	}
	return out, nil
}

// LatestCheckpoint returns the stored checkpoint of the largest tree, or
// ErrNotFound if none was signed yet.
func (s *Store) LatestCheckpoint(ctx context.Context) (ledger.Checkpoint, error) {
	var size uint64
	var msg string
	err := s.db.QueryRowContext(ctx, `SELECT size, note FROM ledger_checkpoints ORDER BY size DESC LIMIT 1`).Scan(&size, &msg)
	if errors.Is(err, sql.ErrNoRows) {
		return ledger.Checkpoint{}, fmt.Errorf("%w: no ledger checkpoint yet", cove.ErrNotFound)
	}
	if err != nil {
		return ledger.Checkpoint{}, fmt.Errorf("%w: reading checkpoint: %v", cove.ErrLedger, err)
	}
	return openStored(size, msg, s.lg.verifier)
}

func openStored(size uint64, msg string, v note.Verifier) (ledger.Checkpoint, error) {
	cp, err := ledger.OpenCheckpoint([]byte(msg), v)
	if err != nil {
		return cp, fmt.Errorf("stored checkpoint %d: %w", size, err)
	}
	if cp.Size != size {
		return cp, fmt.Errorf("%w: checkpoint stored as size %d signs size %d", cove.ErrLedger, size, cp.Size)
	}
	return cp, nil
}

// Entries iterates over the ledger in order.
func (s *Store) Entries(ctx context.Context) iter.Seq2[ledger.Entry, error] {
	return func(yield func(ledger.Entry, error) bool) {
		rows, err := s.db.QueryContext(ctx, `SELECT seq, time, kind, subject, body, hash FROM ledger ORDER BY seq`)
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

// Entry returns entry seq.
func (s *Store) Entry(ctx context.Context, seq uint64) (ledger.Entry, error) {
	e, err := scanEntry(s.db.QueryRowContext(ctx, `SELECT seq, time, kind, subject, body, hash FROM ledger WHERE seq = ?`, seq))
	if errors.Is(err, sql.ErrNoRows) {
		return e, fmt.Errorf("%w: ledger entry %d", cove.ErrNotFound, seq)
	}
	return e, err
}

type scanner interface{ Scan(...any) error }

func scanEntry(r scanner) (ledger.Entry, error) {
	var e ledger.Entry
	var at, kind string
	var body, hash []byte
	if err := r.Scan(&e.Seq, &at, &kind, &e.Subject, &body, &hash); err != nil {
		return e, err
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return e, fmt.Errorf("entry %d time %q: %v", e.Seq, at, err)
	}
	if len(hash) != tlog.HashSize {
		return e, fmt.Errorf("entry %d hash has %d bytes", e.Seq, len(hash))
	}
	e.Time, e.Kind, e.Body = t, ledger.Kind(kind), json.RawMessage(body)
	copy(e.Hash[:], hash)
	return e, nil
}

// VerifyLedger verifies the whole ledger as stored: every entry recomputed
// into a Merkle tree, every stored tree hash equal to the recomputed one, and
// every stored checkpoint signed by the log's key and matching the tree of
// its size. The returned Log holds the recomputed tree (Head, proofs).
func (s *Store) VerifyLedger(ctx context.Context) (*ledger.Log, error) {
	// Checkpoints first: each covers entries already committed, so the
	// entries read after it include them all.
	cps, err := s.Checkpoints(ctx)
	if err != nil {
		return nil, err
	}
	log, err := ledger.Verify(s.Entries(ctx))
	if err != nil {
		return nil, err
	}
	if err := s.checkStoredHashes(ctx, log); err != nil {
		return nil, err
	}
	for _, cp := range cps {
		if err := log.Check(cp.Head); err != nil {
			return nil, fmt.Errorf("checkpoint %d: %w", cp.Size, err)
		}
	}
	return log, nil
}

// checkStoredHashes compares the stored tree hashes of log's entries with the
// recomputed ones; proofs are served from the stored ones.
func (s *Store) checkStoredHashes(ctx context.Context, log *ledger.Log) error {
	want := ledger.StoredHashCount(log.Size())
	rows, err := s.db.QueryContext(ctx, `SELECT idx, hash FROM ledger_hashes WHERE idx < ? ORDER BY idx`, want)
	if err != nil {
		return fmt.Errorf("%w: reading tree hashes: %v", cove.ErrLedger, err)
	}
	defer rows.Close()
	var n int64
	for rows.Next() {
		var idx int64
		var h []byte
		if err := rows.Scan(&idx, &h); err != nil {
			return fmt.Errorf("%w: reading tree hashes: %v", cove.ErrLedger, err)
		}
		got, err := log.ReadHashes([]int64{idx})
		if err != nil || idx != n || string(h) != string(got[0][:]) {
			return fmt.Errorf("%w: stored tree hash %d does not match the entries", cove.ErrLedger, idx)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%w: reading tree hashes: %v", cove.ErrLedger, err)
	}
	if n != want {
		return fmt.Errorf("%w: %d tree hashes stored for %d entries, want %d", cove.ErrLedger, n, log.Size(), want)
	}
	return nil
}

// ProveEntry returns the inclusion proof of entry seq in the tree of
// checkpoint cp, served from the stored tree hashes.
func (s *Store) ProveEntry(ctx context.Context, seq uint64, cp ledger.Checkpoint) (ledger.InclusionProof, error) {
	e, err := s.Entry(ctx, seq)
	if err != nil {
		return ledger.InclusionProof{}, err
	}
	proof, err := ledger.ProveEntry(seq, cp.Size, hashReader{ctx, s.db})
	if err != nil {
		return ledger.InclusionProof{}, err
	}
	return ledger.InclusionProof{Entry: e, Checkpoint: string(cp.Note), Proof: proof}, nil
}

// ProveConsistency returns the proof that the tree of checkpoint newer
// extends that of older.
func (s *Store) ProveConsistency(ctx context.Context, older, newer ledger.Checkpoint) (ledger.ConsistencyProof, error) {
	proof, err := ledger.ProveConsistency(older.Size, newer.Size, hashReader{ctx, s.db})
	if err != nil {
		return ledger.ConsistencyProof{}, err
	}
	return ledger.ConsistencyProof{Old: string(older.Note), New: string(newer.Note), Proof: proof}, nil
}

type rowQuerier interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}

// hashReader reads stored tree hashes for tlog.
type hashReader struct {
	ctx context.Context
	q   rowQuerier
}

func (r hashReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		var h []byte
		if err := r.q.QueryRowContext(r.ctx, `SELECT hash FROM ledger_hashes WHERE idx = ?`, x).Scan(&h); err != nil {
			return nil, fmt.Errorf("%w: reading tree hash %d: %v", cove.ErrLedger, x, err)
		}
		if len(h) != tlog.HashSize {
			return nil, fmt.Errorf("%w: tree hash %d has %d bytes", cove.ErrLedger, x, len(h))
		}
		copy(out[i][:], h)
	}
	return out, nil
}
