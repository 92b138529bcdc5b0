package service_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/covedata/cove"
	"github.com/covedata/cove/examples"
	"github.com/covedata/cove/sdk/client"
)

// TestEndToEndSDK: tokens, the demo datasets and grants through the API,
// both example jobs through the SDK (the Adult job waits for review and the
// authority approves it), waits, releases, budgets, ledger, reports.
func TestEndToEndSDK(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e := startServer(t, t.TempDir(), serviceOptions())
	e.issue(t)
	e.setupDemo(t)
	op := e.client(t, "operator")
	auth := e.client(t, "authority")

	var mu sync.Mutex
	seen := map[string][]string{}
	progress := func(j client.Job) {
		mu.Lock()
		defer mu.Unlock()
		if s := seen[j.ID]; len(s) == 0 || s[len(s)-1] != j.State {
			seen[j.ID] = append(seen[j.ID], j.State)
		}
	}
	// The authority approves what waits for review.
	go func() {
		for ctx.Err() == nil {
			js, err := auth.Reviews(ctx)
			if err == nil {
				for _, j := range js {
					auth.Review(ctx, j.ID, true, "aggregates only, public-research purpose")
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	for _, ex := range []examples.Job{examples.AirQuality(), examples.Adult()} {
		rel, err := op.SubmitAndWait(ctx, client.Submission{Manifest: ex.Manifest, Module: ex.Module}, progress)
		if err != nil {
			t.Fatalf("%s: %v", ex.Name, err)
		}
		if len(rel.Outputs) == 0 || len(rel.Outputs[0].Rows) == 0 {
			t.Fatalf("%s: empty release %+v", ex.Name, rel)
		}
		t.Logf("%s: job %s released %d outputs, states seen %v", ex.Name, rel.Job, len(rel.Outputs), seen[rel.Job])
	}
	aq, _ := mustRelease(t, op, "pm25_mean")
	r, ok := aq.Get("Dongsi", "2015")
	if !ok || r.Value <= 0 || r.Value > 1000 {
		t.Errorf("Dongsi 2015 mean PM2.5 = %+v, %v", r, ok)
	}
	// The same release as an Arrow record batch.
	rec, err := aq.Record(nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for i := range int(rec.NumRows()) {
		if rec.Column(0).ValueStr(i) == "Dongsi" && rec.Column(1).ValueStr(i) == "2015" {
			found = rec.Column(2).(*array.Float64).Value(i) == r.Value
		}
	}
	if int(rec.NumRows()) != len(aq.Rows) || rec.Schema().Field(0).Name != aq.GroupBy[0] || !found {
		t.Errorf("release as a record: %d rows of %d, first column %q, Dongsi 2015 found with its value %v", rec.NumRows(), len(aq.Rows), rec.Schema().Field(0).Name, found)
	}
	rec.Release()
	jobs, err := op.Jobs(ctx, client.JobFilter{})
	if err != nil || len(jobs) != 2 {
		t.Fatalf("operator's jobs: %v, %v", jobs, err)
	}
	var adultJob string
	for _, j := range jobs {
		if j.Dataset == "adult" {
			adultJob = j.ID
		}
	}
	if s := seen[adultJob]; len(s) < 2 || s[0] != client.StateInReview || s[len(s)-1] != client.StateReleased {
		t.Errorf("adult job states %v: want in_review first, released last", s)
	}
	ev, err := op.Events(ctx, adultJob)
	if err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, x := range ev {
		states = append(states, x.State)
	}
	t.Logf("adult job events: %v", states)
	checkLifecycle(t, states)

	// The other operator sees none of it.
	b := e.client(t, "operator-b")
	if _, err := b.Release(ctx, adultJob); !errors.Is(err, cove.ErrNotFound) {
		t.Errorf("operator B reading A's release: %v, want not_found", err)
	}
	if js, err := b.Jobs(ctx, client.JobFilter{}); err != nil || len(js) != 0 {
		t.Errorf("operator B's jobs: %v, %v", js, err)
	}

	budgets, err := op.Budgets(ctx, grantA)
	if err != nil {
		t.Fatal(err)
	}
	for _, bv := range budgets {
		if bv.Budget.Reserved != 0 || bv.Budget.Spent <= 0 {
			t.Errorf("budget %s: %+v", bv.Dataset, bv.Budget)
		}
	}
	sts, err := op.Statements(ctx, "", "")
	if err != nil || len(sts) != 1 || sts[0].Operator != operatorA || sts[0].Releases != 2 {
		t.Errorf("statements: %+v, %v", sts, err)
	}
	pub := e.client(t, "")
	d, err := pub.Disclosure(ctx)
	if err != nil || len(d.Products) != 2 || len(d.Grants) != 2 {
		t.Errorf("disclosure: %v products, %v", d, err)
	}
	// The public verifies a checkpoint exists and proves a grant's entry.
	if _, err := auth.SignCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
	cp, err := pub.LatestCheckpoint(ctx)
	if err != nil || cp.Size == 0 {
		t.Fatalf("latest checkpoint %+v: %v", cp, err)
	}
	if _, err := pub.InclusionProof(ctx, 1, 0); err != nil {
		t.Errorf("public inclusion proof of entry 1 (a registration): %v", err)
	}
	if _, err := pub.ConsistencyProof(ctx, cp.Size, 0); err != nil {
		t.Errorf("public consistency proof: %v", err)
	}
	// Resubmitting the same job under its id answers the stored job.
	ex := examples.AirQuality()
	j1, err := op.Submit(ctx, client.Submission{ID: "job-idem-1", Manifest: ex.Manifest, Module: ex.Module})
	if err != nil {
		t.Fatal(err)
	}
	j2, err := op.Submit(ctx, client.Submission{ID: "job-idem-1", Manifest: ex.Manifest, Module: ex.Module})
	if err != nil || j2.ID != j1.ID {
		t.Fatalf("resubmission: %+v, %v", j2, err)
	}
	if _, err := op.Wait(ctx, j1.ID, nil); err != nil {
		t.Fatal(err)
	}
	// A budget-busting job is rejected with its violations.
	_, err = op.Submit(ctx, client.Submission{Manifest: []byte(string(ex.Manifest) + "\n"), Module: ex.Module})
	for err == nil {
		_, err = op.Submit(ctx, client.Submission{Manifest: ex.Manifest, Module: ex.Module})
	}
	var ae *client.Error
	if !errors.As(err, &ae) || !errors.Is(err, cove.ErrBudgetExceeded) || !errors.Is(err, client.ErrRejected) || ae.Job == "" {
		t.Errorf("over budget: %v (%+v)", err, ae)
	}
}

func mustRelease(t *testing.T, c *client.Client, output string) (client.Output, *client.Release) {
	t.Helper()
	js, err := c.Jobs(context.Background(), client.JobFilter{State: client.StateReleased})
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range js {
		rel, err := c.Release(context.Background(), j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if o, ok := rel.Output(output); ok {
			return o, rel
		}
	}
	t.Fatalf("no release has output %s", output)
	return client.Output{}, nil
}
