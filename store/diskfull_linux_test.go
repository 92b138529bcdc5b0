package store

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/covedata/cove"
	"github.com/covedata/cove/policy"
)

// TestRealDiskFull puts the state on a 4 MiB tmpfs, fills the file system,
// and asks for a release: it must fail, and once space is back nothing may
// have changed — no debit, no release, no ledger entry. It needs root (to
// mount); CI runs as root.
func TestRealDiskFull(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=4m"); err != nil {
		if os.Getenv("CI") != "" && os.Geteuid() == 0 {
			t.Fatalf("mount tmpfs: %v", err)
		}
		t.Skipf("cannot mount a small tmpfs here (%v): run as root to test a real full disk", err)
	}
	defer syscall.Unmount(dir, syscall.MNT_DETACH)
	ctx := context.Background()
	path := filepath.Join(dir, "cove.db")
	key := filepath.Join(t.TempDir(), "ledger.key")
	s, err := Open(ctx, path, WithLedgerKey(key))
	if err != nil {
		t.Fatal(err)
	}
	d := policy.Dataset{Name: "air", Location: "air.parquet", Sharing: policy.Open, Level: 1, Columns: []policy.Column{{Name: "PM2.5", Type: "float64"}}}
	if err := s.RegisterDataset(ctx, d); err != nil {
		t.Fatal(err)
	}
	g := policy.Grant{ID: "g1", Operator: "acme", Mode: policy.Scenario, Mechanisms: []string{policy.MechanismDP}, Pricing: policy.Industry,
		Purposes: []string{"research"}, Datasets: []string{"air"}, Columns: map[string][]string{"air": {"PM2.5"}},
		EpsilonCap: map[string]float64{"air": 1}, ValidFrom: time.Now().Add(-time.Hour), ValidUntil: time.Now().Add(time.Hour)}
	if err := s.CreateGrant(ctx, g); err != nil {
		t.Fatal(err)
	}
	if err := submitAndAdmit(ctx, s, "j1", 0.5); err != nil {
		t.Fatal(err)
	}
	before, err := s.VerifyLedger(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Fill the file system.
	filler, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := filler.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling: %v", err)
			}
			break
		}
	}
	filler.Sync()
	// A release big enough that SQLite must grow its files.
	big, _ := json.Marshal(map[string]string{"pad": string(make([]byte, 512<<10))})
	err = s.Release(ctx, "j1", map[string]int{"rows": 1}, big)
	if err == nil {
		t.Fatal("a release was recorded on a full disk")
	}
	t.Logf("release on a full disk: %v (code %s)", err, cove.Code(err))
	if !errors.Is(err, cove.ErrLedger) {
		t.Errorf("a storage failure is not reported as a ledger failure: %v", err)
	}
	filler.Close()
	os.Remove(filepath.Join(dir, "filler"))
	s.Close()

	// A restarted store sees the state as it was before.
	s, err = Open(ctx, path, WithLedgerKey(key))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	after, err := s.VerifyLedger(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.Head() != before.Head() {
		t.Fatalf("ledger moved on a failed release: %+v -> %+v", before.Head(), after.Head())
	}
	b, _ := s.Budget(ctx, "g1", "air")
	if b.Spent != 0 || b.Reserved != 0.5 {
		t.Fatalf("budget changed without a record: %+v", b)
	}
	if _, err := s.StoredRelease(ctx, "j1"); !errors.Is(err, cove.ErrNotFound) {
		t.Fatalf("release stored without a record: %v", err)
	}
	// With space back, the release goes through.
	if err := s.Release(ctx, "j1", nil, json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
}
