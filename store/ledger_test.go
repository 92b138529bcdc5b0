package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/covedata/cove"
	"github.com/covedata/cove/ledger"
)

// appendEntries appends n entries, batch per transaction.
func appendEntries(t *testing.T, s *Store, n, batch int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i += batch {
		err := s.update(ctx, func(tx *tx) error {
			for k := i; k < min(i+batch, n); k++ {
				if err := tx.log(ctx, ledger.JobSubmitted, fmt.Sprintf("job-%d", k), map[string]int{"k": k}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func openLedgerStore(t *testing.T, dir string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(dir, "cove.db"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestLedgerProofsFromStore writes 1,000 entries with a checkpoint every 10,
// then proves every entry against the latest checkpoint and every checkpoint
// consistent with the latest, all checked with the verifier key alone.
func TestLedgerProofsFromStore(t *testing.T) {
	ctx := context.Background()
	s := openLedgerStore(t, t.TempDir(), WithCheckpointEvery(10))
	appendEntries(t, s, 995, 7)
	log, err := s.VerifyLedger(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cps, err := s.Checkpoints(ctx)
	if err != nil || len(cps) != 99 || cps[98].Size != 990 {
		t.Fatalf("%d checkpoints (last %+v), %v; want 99 up to 990", len(cps), cps[len(cps)-1].Head, err)
	}
	latest, err := s.Checkpoint(ctx)
	if err != nil || latest.Head != log.Head() {
		t.Fatalf("Checkpoint = %+v, %v; want %+v", latest.Head, err, log.Head())
	}
	if again, err := s.Checkpoint(ctx); err != nil || string(again.Note) != string(latest.Note) {
		t.Fatalf("second Checkpoint at the same size: %v, %q", err, again.Note)
	}
	v, err := ledger.NewVerifier(s.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= latest.Size; seq++ {
		p, err := s.ProveEntry(ctx, seq, latest)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Verify(v); err != nil {
			t.Fatalf("entry %d: %v", seq, err)
		}
	}
	for _, cp := range cps {
		p, err := s.ProveConsistency(ctx, cp, latest)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := p.Verify(v); err != nil {
			t.Fatalf("checkpoint %d: %v", cp.Size, err)
		}
	}
	t.Logf("%d inclusion and %d consistency proofs verified from the store", latest.Size, len(cps))
}

// TestLedgerTamperDetected edits the database behind the store's back.
func TestLedgerTamperDetected(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		sql  string
		// rebuild: whoever did it also had the key and rebuilt the hashes
		// and checkpoints.
		rebuild bool
		// keptOnly: the stored log verifies on its own; only a checkpoint
		// kept elsewhere detects the change.
		keptOnly bool
	}{
		{name: "edit body", sql: `UPDATE ledger SET body = '{"k":-1}' WHERE seq = 17`},
		{name: "edit subject and its hash", sql: `UPDATE ledger SET subject = 'x' WHERE seq = 17`, rebuild: true, keptOnly: true},
		{name: "delete entry", sql: `DELETE FROM ledger WHERE seq = 17`},
		{name: "delete entry and rebuild", sql: `DELETE FROM ledger WHERE seq = 17; UPDATE ledger SET seq = seq - 1 WHERE seq > 17`, rebuild: true, keptOnly: true},
		{name: "truncate", sql: `DELETE FROM ledger WHERE seq > 40; DELETE FROM ledger_hashes WHERE idx >= 78; DELETE FROM ledger_checkpoints WHERE size > 40`, keptOnly: true},
		{name: "edit a tree hash", sql: `UPDATE ledger_hashes SET hash = zeroblob(32) WHERE idx = 5`},
		{name: "drop a tree hash", sql: `DELETE FROM ledger_hashes WHERE idx = 5`},
		{name: "edit a checkpoint", sql: `UPDATE ledger_checkpoints SET note = replace(note, 'tree' || char(10) || '20', 'tree' || char(10) || '21') WHERE size = 20`},
		{name: "move a checkpoint", sql: `UPDATE ledger_checkpoints SET size = 19 WHERE size = 20`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openLedgerStore(t, t.TempDir(), WithCheckpointEvery(10))
			appendEntries(t, s, 50, 5)
			kept, err := s.Checkpoint(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.db.ExecContext(ctx, tt.sql); err != nil {
				t.Fatal(err)
			}
			if tt.rebuild {
				rebuild(t, s)
			}
			log, err := s.VerifyLedger(ctx)
			switch {
			case tt.keptOnly && err != nil:
				t.Fatalf("changed log does not verify on its own: %v", err)
			case tt.keptOnly:
				if err := log.Check(kept.Head); !errors.Is(err, cove.ErrLedger) {
					t.Fatalf("changed log against the kept checkpoint: %v", err)
				}
			case !errors.Is(err, cove.ErrLedger):
				t.Fatalf("VerifyLedger = %v, want ErrLedger", err)
			}
		})
	}
}

// rebuild is the key holder covering their tracks: every entry hash, tree
// hash and checkpoint recomputed from the entries as they now are.
func rebuild(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	var es []ledger.Entry
	for e, err := range s.Entries(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		e.Hash = e.RecordHash()
		es = append(es, e)
	}
	log, err := ledger.Verify(ledger.Slice(es))
	if err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) {
		if _, err := s.db.ExecContext(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec(`DELETE FROM ledger_hashes`)
	exec(`DELETE FROM ledger_checkpoints`)
	for _, e := range es {
		exec(`UPDATE ledger SET hash = ? WHERE seq = ?`, e.Hash[:], e.Seq)
	}
	for i := range ledger.StoredHashCount(log.Size()) {
		h, _ := log.ReadHashes([]int64{i})
		exec(`INSERT INTO ledger_hashes (idx, hash) VALUES (?, ?)`, i, h[0][:])
	}
	if _, err := s.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestLedgerHashFailureFailsClosed makes the tree-hash and checkpoint writes
// fail, each in turn, and checks that no debit, release or state change
// happens, as TestLedgerFailureFailsClosed does for the entries.
func TestLedgerHashFailureFailsClosed(t *testing.T) {
	for _, table := range []string{"ledger_hashes", "ledger_checkpoints"} {
		t.Run(table, func(t *testing.T) {
			ctx := context.Background()
			s := newStore(t)
			lg := *s.lg
			lg.every = 1 // a checkpoint with every entry
			s.lg = &lg
			if err := submitAndAdmit(ctx, s, "j1", 0.5); err != nil {
				t.Fatal(err)
			}
			before, err := s.VerifyLedger(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.db.Exec(`CREATE TRIGGER full BEFORE INSERT ON ` + table + ` BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`); err != nil {
				t.Fatal(err)
			}
			if err := s.Release(ctx, "j1", nil, json.RawMessage(`{}`)); !errors.Is(err, cove.ErrLedger) {
				t.Fatalf("release with a broken ledger: %v", err)
			}
			if err := s.Fail(ctx, "j1", "x", nil); !errors.Is(err, cove.ErrLedger) {
				t.Fatalf("fail with a broken ledger: %v", err)
			}
			b, _ := s.Budget(ctx, "g1", "air")
			if b.Spent != 0 || b.Reserved != 0.5 {
				t.Fatalf("budget changed without a ledger record: %+v", b)
			}
			if _, err := s.StoredRelease(ctx, "j1"); !errors.Is(err, cove.ErrNotFound) {
				t.Fatalf("release stored without a ledger record: %v", err)
			}
			if j, _ := s.Job(ctx, "j1"); j.State != StateRunning {
				t.Fatalf("state changed without a ledger record: %s", j.State)
			}
			after, err := s.VerifyLedger(ctx)
			if err != nil || after.Head() != before.Head() {
				t.Fatalf("ledger moved: %+v -> %+v (%v)", before.Head(), after.Head(), err)
			}
		})
	}
}

func TestLedgerKeyFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openLedgerStore(t, dir, WithLedgerOrigin("example.org/cove"))
	vkey := s.VerifierKey()
	keyFile := filepath.Join(dir, DefaultLedgerKeyFile)
	fi, err := os.Stat(keyFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v; want mode 0600", fi, err)
	}
	appendEntries(t, s, 3, 3)
	if _, err := s.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()

	if again := openLedgerStore(t, dir); again.VerifierKey() != vkey {
		t.Fatalf("reopened with another key: %s, want %s", again.VerifierKey(), vkey)
	}
	open := func(opts ...Option) error {
		s, err := Open(ctx, filepath.Join(dir, "cove.db"), opts...)
		if err == nil {
			s.Close()
		}
		return err
	}
	if err := open(WithLedgerOrigin("other")); !errors.Is(err, cove.ErrLedger) {
		t.Errorf("other origin: %v", err)
	}
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := open(); !errors.Is(err, cove.ErrLedger) {
		t.Errorf("world-readable key: %v", err)
	}
	if err := os.Rename(keyFile, keyFile+".lost"); err != nil {
		t.Fatal(err)
	}
	if err := open(); !errors.Is(err, cove.ErrLedger) {
		t.Errorf("key lost after checkpoints were signed: %v", err)
	}
	custom := filepath.Join(t.TempDir(), "elsewhere.key")
	other := openLedgerStore(t, t.TempDir(), WithLedgerKey(custom))
	if _, err := os.Stat(custom); err != nil || other.VerifierKey() == vkey {
		t.Fatalf("WithLedgerKey: %v", err)
	}
}

// TestLegacyLedgerRefused opens a database holding the hash-chained ledger of
// earlier versions: it must be refused, not silently mixed with a tree.
func TestLegacyLedgerRefused(t *testing.T) {
	dir := t.TempDir()
	s := openLedgerStore(t, dir)
	if _, err := s.db.Exec(`DROP TABLE ledger; CREATE TABLE ledger (
		seq INTEGER PRIMARY KEY, time TEXT NOT NULL, kind TEXT NOT NULL, subject TEXT NOT NULL,
		body BLOB NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(context.Background(), filepath.Join(dir, "cove.db")); !errors.Is(err, cove.ErrLedger) {
		t.Fatalf("Open = %v, want ErrLedger", err)
	}
}
