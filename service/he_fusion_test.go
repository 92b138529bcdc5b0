package service_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/covedata/cove"
	"github.com/covedata/cove/enclave/he"
	"github.com/covedata/cove/jobs"
	"github.com/covedata/cove/sdk/client"
)

// TestHEFusionThroughAPI: the multi-provider acceptance scenario over HTTP.
// The three holders of newHEAPI's collective key; env-east encrypts PM2.5
// of rows [0, 300) of the public table and env-west of rows [300, 600),
// each on its side, and each attaches its own segment (AttachHESegment);
// one HE job releases PM2.5 per year over all 600 rows after a share from
// each of the three holders. Refused on the way: a segment under another
// key, a job while env-west's segment is missing (failed, refunded, the
// reason names the column and the rows), an overlapping segment.
func TestHEFusionThroughAPI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	w := newHEAPI(t)
	const split = 300
	if _, err := w.auth.RegisterDataset(ctx, client.Dataset{Name: "air-seg", Title: "air, PM2.5 encrypted by two station groups", Domain: "environment",
		Provider: "env-east", Source: "test", Sharing: "conditional", Level: 2, Location: "datasets/air-he.parquet",
		Columns: []client.Column{{Name: "PM2.5", Type: "encrypted", Role: "sensitive"}, {Name: "PM2.5.present", Type: "encrypted", Role: "sensitive"}}}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := w.auth.CreateGrant(ctx, client.Grant{ID: "g-seg", Operator: "acme", Mode: "scenario", Purposes: []string{"research"},
		Mechanisms: []string{"he"}, Pricing: "public-welfare", Agreement: "test", Datasets: []string{"air-seg"},
		Columns:    map[string][]string{"air-seg": {"station", "year", "PM2.5", "PM2.5.present"}},
		EpsilonCap: map[string]float64{"air-seg": 20}, ValidFrom: now.Add(-time.Minute), ValidUntil: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// Each station group encrypts its own rows with the public keys.
	segment := func(from, to int) map[string]*he.Column {
		vals, present := make([]float64, to-from), make([]float64, to-from)
		for i := from; i < to; i++ {
			if v, ok := pm25(i); ok {
				vals[i-from], present[i-from] = v, 1
			}
		}
		enc := he.NewEncryptor(w.keys)
		col, err := enc.EncryptFloats(vals, 0, 500)
		if err != nil {
			t.Fatal(err)
		}
		pres, err := enc.EncryptFloats(present, 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		return map[string]*he.Column{"PM2.5": col, "PM2.5.present": pres}
	}
	attach := func(holder string, start int64, cols map[string]*he.Column) {
		t.Helper()
		for _, name := range []string{"PM2.5", "PM2.5.present"} {
			c, err := w.holders[holder].AttachHESegment(ctx, "air", "air-seg", name, start, cols[name], "zero")
			if err != nil {
				t.Fatalf("%s attaching %s: %v", holder, name, err)
			}
			if c.Provider != holder || c.Start != start || c.End != start+int64(cols[name].Rows()) {
				t.Fatalf("%s's segment of %s: %+v", holder, name, c)
			}
		}
	}
	attach("env-east", 0, segment(0, split))

	manifest := strings.NewReplacer("grant: g-he", "grant: g-seg", "dataset: air-he", "dataset: air-seg").Replace(fmt.Sprintf(heAPIManifest, w.recHash))
	submit := func(id string) {
		t.Helper()
		j, err := w.op.Submit(ctx, client.Submission{ID: id, Manifest: []byte(manifest), Module: w.module})
		if err != nil {
			t.Fatal(err)
		}
		if j.State != client.StateInReview {
			t.Fatalf("job %s is %s, want in review", id, j.State)
		}
		if _, err := w.auth.Review(ctx, id, true, "fused HE release of yearly PM2.5"); err != nil {
			t.Fatal(err)
		}
	}
	spent := func() float64 {
		bs, err := w.op.Budgets(ctx, "g-seg")
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bs {
			if b.Dataset == "air-seg" {
				return b.Budget.Spent
			}
		}
		return 0
	}

	t.Run("segment under another key refused", func(t *testing.T) {
		if _, err := w.auth.CreateHESetup(ctx, "solo", he.DefaultCKKS(), []string{"health"}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.holders["health"].ProviderKeygen(ctx, w.dirs["health"], "", "solo"); err != nil {
			t.Fatal(err)
		}
		solo, err := w.holders["health"].HEKeys(ctx, "solo")
		if err != nil {
			t.Fatal(err)
		}
		col, err := he.NewEncryptor(solo).EncryptFloats(make([]float64, heRows-split), 0, 500)
		if err != nil {
			t.Fatal(err)
		}
		_, err = w.holders["health"].AttachHESegment(ctx, "solo", "air-seg", "PM2.5", split, col, "zero")
		var ae *client.Error
		if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || !strings.Contains(err.Error(), "under keys") {
			t.Fatalf("segment under another key: %v", err)
		}
		t.Logf("refused: %v", err)
	})

	t.Run("gap fails the job, refunded", func(t *testing.T) {
		before := spent()
		submit("seg-gap")
		j, err := w.op.Wait(ctx, "seg-gap", nil)
		if err != nil || j.State != client.StateFailed {
			t.Fatalf("job with a gap: %+v %v", j, err)
		}
		want := fmt.Sprintf("encrypted column air-seg.PM2.5 does not cover rows [%d, %d)", split, heRows)
		if !strings.Contains(j.Reason, want) {
			t.Fatalf("reason %q, want it to name %q", j.Reason, want)
		}
		t.Logf("failed: %s", j.Reason)
		if s := spent(); s != before {
			t.Fatalf("ε spent %v, want %v (refunded)", s, before)
		}
		if _, err := w.op.Release(ctx, "seg-gap"); !errors.Is(err, cove.ErrNotFound) {
			t.Fatalf("release of the failed job: %v", err)
		}
	})

	attach("env-west", split, segment(split, heRows))

	t.Run("overlapping segment refused", func(t *testing.T) {
		col := segment(250, 350)["PM2.5"]
		_, err := w.holders["health"].AttachHESegment(ctx, "air", "air-seg", "PM2.5", 250, col, "zero")
		var ae *client.Error
		if !errors.As(err, &ae) || ae.Code != "exists" || !errors.Is(err, cove.ErrExists) {
			t.Fatalf("overlapping segment: %v", err)
		}
		t.Logf("refused: %v", err)
		// Nor does a whole-table attach go over the segments.
		if _, err := w.holders["health"].AttachHEColumn(ctx, "air", "air-seg", "PM2.5", segment(0, heRows)["PM2.5"], "zero"); !errors.Is(err, cove.ErrExists) {
			t.Fatalf("whole column over the segments: %v", err)
		}
	})

	t.Run("fused release", func(t *testing.T) {
		before := spent()
		submit("seg-1")
		sctx, stop := context.WithCancel(ctx)
		var mu sync.Mutex
		given := 0
		var wg sync.WaitGroup
		for _, h := range heHolders {
			wg.Add(1)
			go func() { defer wg.Done(); w.serveShares(sctx, h, &given, &mu) }()
		}
		j, err := w.op.Wait(ctx, "seg-1", nil)
		stop()
		wg.Wait()
		if err != nil || j.State != client.StateReleased {
			t.Fatalf("job: %+v %v", j, err)
		}
		if given != 6 {
			t.Fatalf("%d shares recorded, want 6 (2 outputs × 3 holders)", given)
		}
		rel, err := w.op.Release(ctx, "seg-1")
		if err != nil {
			t.Fatal(err)
		}
		opened, err := client.OpenHE(w.operator, rel)
		if err != nil {
			t.Fatal(err)
		}
		for i, exact := range [][]float64{w.exactSum, w.exactN} {
			o := opened.Outputs[i]
			tol := o.HE.Noise.Interval(1e-9)
			same := 0
			for g, row := range o.Rows {
				t.Logf("%s %v: released %.2f exact %.2f over all %d rows (95%% CI %.1f..%.1f; tolerance ±%.1f)", o.Name, row.Key, row.Value, exact[g], heRows, row.CILow, row.CIHigh, tol)
				if math.Abs(row.Value-exact[g]) > tol {
					t.Errorf("%s %v: released %v, exact %v, beyond ±%v", o.Name, row.Key, row.Value, exact[g], tol)
				}
				if row.Value == exact[g] {
					same++
				}
			}
			if same == len(o.Rows) {
				t.Errorf("%s: every released value is exact: no noise", o.Name)
			}
		}
		if s := spent(); math.Abs(s-before-1-jobs.DefaultFailureEpsilon) > 1e-9 {
			t.Fatalf("ε spent %v → %v, want one debit of 1 + %v (the noisy count of failed units)", before, s, jobs.DefaultFailureEpsilon)
		}
		// The ledger holds one he.column entry per segment, with its range and holder.
		es, err := w.auth.LedgerEntries(ctx, 1, 10000)
		if err != nil {
			t.Fatal(err)
		}
		var segs []string
		for _, e := range es {
			if e.Kind == "he.column" && e.Subject == "air-seg.PM2.5" {
				segs = append(segs, string(e.Body))
			}
		}
		if len(segs) != 2 || !strings.Contains(segs[0], `"provider":"env-east"`) || !strings.Contains(segs[0], `"end":300`) ||
			!strings.Contains(segs[1], `"provider":"env-west"`) || !strings.Contains(segs[1], `"start":300`) {
			t.Fatalf("he.column entries of air-seg.PM2.5: %v", segs)
		}
	})
}
