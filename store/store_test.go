package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/covedata/cove"
	"github.com/covedata/cove/policy"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "cove.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	d := policy.Dataset{Name: "air", Location: "air.parquet", Sharing: policy.Open, Level: 1, Columns: []policy.Column{{Name: "station", Type: "utf8"}, {Name: "PM2.5", Type: "float64"}}}
	if err := s.RegisterDataset(ctx, d); err != nil {
		t.Fatal(err)
	}
	g := policy.Grant{ID: "g1", Operator: "acme", Mode: policy.Scenario, Mechanisms: []string{policy.MechanismDP}, Pricing: policy.Industry,
		Purposes: []string{"research"}, Datasets: []string{"air"},
		Columns: map[string][]string{"air": {"station", "PM2.5"}}, EpsilonCap: map[string]float64{"air": 1},
		ValidFrom: time.Now().Add(-time.Hour), ValidUntil: time.Now().Add(time.Hour)}
	if err := s.CreateGrant(ctx, g); err != nil {
		t.Fatal(err)
	}
	return s
}

// submitAndAdmit submits a job and admits it; an admitted job is started, as
// the runner would, so that it can be released.
func submitAndAdmit(ctx context.Context, s *Store, id string, eps float64) error {
	if err := s.SubmitJob(ctx, Submission{Job: Job{ID: id, Operator: "acme", Grant: "g1", Dataset: "air", Epsilon: eps, ManifestSHA256: "m", ModuleSHA256: "w"}}); err != nil {
		return err
	}
	if _, err := s.Admit(ctx, policy.Request{Job: id, Operator: "acme", Grant: "g1", Purpose: "research", Dataset: "air",
		Mechanism: policy.MechanismDP, Columns: []string{"PM2.5"}, UnitPerRow: true, Epsilon: eps}); err != nil {
		return err
	}
	return s.Start(ctx, id)
}

func TestReleaseDebitsAndIsRecorded(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	if err := submitAndAdmit(ctx, s, "j1", 0.4); err != nil {
		t.Fatal(err)
	}
	b, _ := s.Budget(ctx, "g1", "air")
	if b.Reserved != 0.4 || b.Spent != 0 {
		t.Fatalf("after admission: %+v", b)
	}
	if err := s.Release(ctx, "j1", map[string]int{"rows": 3}, json.RawMessage(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	b, _ = s.Budget(ctx, "g1", "air")
	if b.Reserved != 0 || b.Spent != 0.4 {
		t.Fatalf("after release: %+v", b)
	}
	// A second release of the same job is refused; the stored one stays.
	if err := s.Release(ctx, "j1", nil, json.RawMessage(`{"v":2}`)); err == nil {
		t.Fatal("second release accepted")
	}
	got, err := s.StoredRelease(ctx, "j1")
	if err != nil || string(got) != `{"v":1}` {
		t.Fatalf("stored release = %s, %v", got, err)
	}
	if err := s.SubmitJob(ctx, Submission{Job: Job{ID: "j1", Operator: "acme", Grant: "g1", Dataset: "air"}}); !errors.Is(err, cove.ErrExists) {
		t.Fatalf("resubmission: %v", err)
	}
	head, err := s.VerifyLedger(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// registered, granted, submitted, admitted, ran, released
	if head.Size() != 6 {
		t.Fatalf("ledger size %d, want 6", head.Size())
	}
}

func TestFailRefunds(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	if err := submitAndAdmit(ctx, s, "j1", 0.7); err != nil {
		t.Fatal(err)
	}
	if err := submitAndAdmit(ctx, s, "j2", 0.7); !errors.Is(err, cove.ErrBudgetExceeded) {
		t.Fatalf("overbooking admitted: %v", err)
	}
	if err := s.Fail(ctx, "j1", "guest trapped", nil); err != nil {
		t.Fatal(err)
	}
	b, _ := s.Budget(ctx, "g1", "air")
	if b.Reserved != 0 || b.Spent != 0 {
		t.Fatalf("after failure: %+v", b)
	}
	if err := submitAndAdmit(ctx, s, "j3", 0.7); err != nil {
		t.Fatalf("refunded budget not available: %v", err)
	}
	j, _ := s.Job(ctx, "j2")
	if j.State != StateRejected {
		t.Fatalf("j2 state %s", j.State)
	}
}

// TestLedgerFailureFailsClosed makes every ledger write fail (as a full disk
// would) and checks that no debit, release or state change happens.
func TestLedgerFailureFailsClosed(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	if err := submitAndAdmit(ctx, s, "j1", 0.5); err != nil {
		t.Fatal(err)
	}
	before, _ := s.VerifyLedger(ctx)
	if _, err := s.db.Exec(`CREATE TRIGGER ledger_full BEFORE INSERT ON ledger BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`); err != nil {
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
		t.Fatalf("budget changed without a ledger entry: %+v", b)
	}
	if _, err := s.StoredRelease(ctx, "j1"); !errors.Is(err, cove.ErrNotFound) {
		t.Fatalf("release stored without a ledger entry: %v", err)
	}
	if j, _ := s.Job(ctx, "j1"); j.State != StateRunning {
		t.Fatalf("state changed without a ledger entry: %s", j.State)
	}
	after, _ := s.VerifyLedger(ctx)
	if after.Head() != before.Head() {
		t.Fatalf("ledger moved: %+v -> %+v", before, after)
	}
}

// TestBudgetHammer admits, releases and fails jobs from many goroutines on
// one budget; the cap must never be exceeded and the final balance must be
// exactly what was released.
func TestBudgetHammer(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	// 16 × 320 jobs: each reserves, then commits (two in three) or is
	// refunded — over 10,000 budget operations — against a cap that runs out
	// (1 ε at 0.001 a job), so late reservations must be refused.
	const workers, perWorker, eps = 16, 320, 0.001
	var mu sync.Mutex
	var ops atomic.Int64
	released := 0
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				id := fmt.Sprintf("w%d-%d", w, i)
				ops.Add(1) // reserve
				if err := submitAndAdmit(ctx, s, id, eps); err != nil {
					if !errors.Is(err, cove.ErrBudgetExceeded) {
						t.Error(err)
					}
					continue
				}
				ops.Add(1) // commit or refund
				if i%3 == 0 {
					if err := s.Fail(ctx, id, "cancelled", nil); err != nil {
						t.Error(err)
					}
					continue
				}
				if err := s.Release(ctx, id, nil, json.RawMessage(`{}`)); err != nil {
					t.Error(err)
					continue
				}
				mu.Lock()
				released++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	b, err := s.Budget(ctx, "g1", "air")
	if err != nil {
		t.Fatal(err)
	}
	if b.Spent > b.Cap+1e-9 {
		t.Fatalf("overspent: %+v", b)
	}
	if want := float64(released) * eps; b.Spent < want-1e-9 || b.Spent > want+1e-9 || b.Reserved != 0 {
		t.Fatalf("balance %+v, want spent %g from %d releases", b, want, released)
	}
	if _, err := s.VerifyLedger(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d jobs, %d budget operations: released %d, spent %.3f of %.3f, overspend 0", workers*perWorker, ops.Load(), released, b.Spent, b.Cap)
}
