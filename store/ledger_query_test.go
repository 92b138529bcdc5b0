package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/covedata/cove"
	"github.com/covedata/cove/ledger"
)

// TestEntriesBySubjectAndFrom: the subject index is used, and the queries
// return what a scan of the whole ledger finds.
func TestEntriesBySubjectAndFrom(t *testing.T) {
	ctx := context.Background()
	s := openLedgerStore(t, t.TempDir(), WithCheckpointEvery(10))
	appendEntries(t, s, 60, 7)
	// A second entry for job-3.
	if err := s.update(ctx, func(tx *tx) error { return tx.log(ctx, ledger.JobFailed, "job-3", map[string]int{}) }); err != nil {
		t.Fatal(err)
	}
	for range 2 { // idempotent
		if err := s.IndexLedgerSubjects(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var plan strings.Builder
	rows, err := s.db.QueryContext(ctx, `EXPLAIN QUERY PLAN SELECT seq FROM ledger WHERE subject = ? ORDER BY seq`, "job-3")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, parent, unused int
		var detail string
		rows.Scan(&id, &parent, &unused, &detail)
		plan.WriteString(detail + "\n")
	}
	rows.Close()
	if !strings.Contains(plan.String(), "ledger_by_subject") {
		t.Errorf("the subject query does not use the index:\n%s", plan.String())
	}
	var want, got []uint64
	for e, err := range s.Entries(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Subject == "job-3" {
			want = append(want, e.Seq)
		}
	}
	for e, err := range s.EntriesBySubject(ctx, "job-3") {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Seq)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || len(got) != 2 {
		t.Errorf("EntriesBySubject(job-3) = %v, want %v", got, want)
	}
	got = got[:0]
	for e, err := range s.EntriesFrom(ctx, 58, 3) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Seq)
	}
	if fmt.Sprint(got) != "[58 59 60]" {
		t.Errorf("EntriesFrom(58, 3) = %v", got)
	}
}

// TestExtendLedger: a verified log extended with new entries equals the
// whole ledger verified again; a tampered new tree hash or checkpoint is
// caught by the extension.
func TestExtendLedger(t *testing.T) {
	ctx := context.Background()
	s := openLedgerStore(t, t.TempDir(), WithCheckpointEvery(10))
	appendEntries(t, s, 25, 4)
	log, err := s.VerifyLedger(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checked, err := s.ExtendLedger(ctx, log, 20)
	if err != nil || checked != 20 || log.Size() != 25 {
		t.Fatalf("extension with nothing new: size %d, checked %d, %v", log.Size(), checked, err)
	}
	appendEntries(t, s, 38, 5)
	if checked, err = s.ExtendLedger(ctx, log, checked); err != nil || checked != 60 {
		t.Fatalf("extension: checked %d, %v", checked, err)
	}
	whole, err := s.VerifyLedger(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if log.Head() != whole.Head() {
		t.Fatalf("extended head %+v, whole %+v", log.Head(), whole.Head())
	}
	for _, tt := range []struct{ name, sql string }{
		{"edit a new tree hash", `UPDATE ledger_hashes SET hash = zeroblob(32) WHERE idx = (SELECT max(idx) FROM ledger_hashes)`},
		{"edit a new checkpoint", `UPDATE ledger_checkpoints SET note = replace(note, 'tree' || char(10) || '70', 'tree' || char(10) || '71') WHERE size = 70`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := openLedgerStore(t, t.TempDir(), WithCheckpointEvery(10))
			appendEntries(t, s, 63, 5)
			log, err := s.VerifyLedger(ctx)
			if err != nil {
				t.Fatal(err)
			}
			appendEntries(t, s, 10, 3)
			if _, err := s.db.ExecContext(ctx, tt.sql); err != nil {
				t.Fatal(err)
			}
			if _, err := s.ExtendLedger(ctx, log, 60); !errors.Is(err, cove.ErrLedger) {
				t.Fatalf("ExtendLedger after %s: %v, want ErrLedger", tt.name, err)
			}
		})
	}
}

// TestModuleUploads: bytes stored once, uploads per operator.
func TestModuleUploads(t *testing.T) {
	ctx := context.Background()
	s := openLedgerStore(t, t.TempDir())
	if err := s.PrepareModules(ctx); err != nil {
		t.Fatal(err)
	}
	body := []byte("\x00asm\x01\x00\x00\x00")
	sum := sha256.Sum256(body)
	h := hex.EncodeToString(sum[:])
	for _, op := range []string{"acme", "acme", "beta"} {
		if err := s.PutModule(ctx, op, h, body); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		op, sum string
		want    bool
	}{{"acme", h, true}, {"beta", h, true}, {"gamma", h, false}, {"acme", strings.Repeat("0", 64), false}} {
		if ok, err := s.HasModule(ctx, c.op, c.sum); err != nil || ok != c.want {
			t.Errorf("HasModule(%s, %.8s) = %v, %v; want %v", c.op, c.sum, ok, err, c.want)
		}
	}
	if b, err := s.Module(ctx, h); err != nil || string(b) != string(body) {
		t.Errorf("Module = %q, %v", b, err)
	}
	if _, err := s.Module(ctx, strings.Repeat("0", 64)); !errors.Is(err, cove.ErrNotFound) {
		t.Errorf("Module(unknown) = %v, want ErrNotFound", err)
	}
	var n int
	s.db.QueryRowContext(ctx, `SELECT count(*) FROM modules`).Scan(&n)
	if n != 1 {
		t.Errorf("%d module rows, want 1", n)
	}
	if err := s.PutModule(ctx, "", h, body); !errors.Is(err, cove.ErrInvalid) {
		t.Errorf("PutModule without operator: %v", err)
	}
}
