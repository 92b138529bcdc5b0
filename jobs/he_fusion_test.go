package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/covedata/cove"
	"github.com/covedata/cove/enclave"
	"github.com/covedata/cove/enclave/he"
	"github.com/covedata/cove/ledger"
	"github.com/covedata/cove/policy"
	"github.com/covedata/cove/store"
)

// airAll writes the public table of all twelve stations (station, year;
// the air-quality table's order: by station) and two providers' tables:
// env-east holds PM2.5 of the first six stations, env-west of the other
// six. It returns the row where env-west's stations begin and the exact
// clamped PM2.5 sums and value counts per year over every row.
func airAll(t *testing.T, public, east, west string) (split int, sum, n []float64) {
	t.Helper()
	builders := []*array.RecordBuilder{array.NewRecordBuilder(memory.DefaultAllocator, airSchema), array.NewRecordBuilder(memory.DefaultAllocator, airSchema)}
	defer builders[0].Release()
	defer builders[1].Release()
	stations := 0
	sum, n = airRows(t, func(_ string, k int) *array.RecordBuilder {
		if k == 7 && stations < 7 {
			split = builders[0].Field(0).Len()
		}
		stations = k
		return builders[min(k-1, 11)/6]
	})
	if stations != 12 {
		t.Fatalf("%d stations, want 12", stations)
	}
	recE, recW := builders[0].NewRecordBatch(), builders[1].NewRecordBatch()
	defer recE.Release()
	defer recW.Release()
	writeParquet(t, east, recE)
	writeParquet(t, west, recW)
	// The public table: both halves' station and year, in order.
	pb := array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema(airSchema.Fields()[:2], nil))
	defer pb.Release()
	for _, rec := range []arrow.RecordBatch{recE, recW} {
		st, yr := rec.Column(0).(*array.String), rec.Column(1).(*array.Int64)
		for i := range int(rec.NumRows()) {
			pb.Field(0).(*array.StringBuilder).Append(st.Value(i))
			pb.Field(1).(*array.Int64Builder).Append(yr.Value(i))
		}
	}
	pub := pb.NewRecordBatch()
	defer pub.Release()
	writeParquet(t, public, pub)
	return split, sum, n
}

// TestHEFusion is the multi-provider acceptance scenario: three key holders
// (two station groups, a health department) hold the collective key;
// env-east encrypts PM2.5 of stations 1–6 and env-west of stations 7–12,
// each on its side, and each attaches its own segment of the twelve-station
// table; one HE job releases PM2.5 per year over all twelve stations, with
// every holder's share. Before that: a segment under another key is
// refused, a job on a column with a gap fails (refunded, the error names
// the column and the rows missing), an overlapping segment is refused.
func TestHEFusion(t *testing.T) {
	w := newHEWorld(t)
	ctx := context.Background()
	t0 := time.Now()
	root := t.TempDir()
	eastTable, westTable := filepath.Join(root, "east.parquet"), filepath.Join(root, "west.parquet")
	split, exactSum, exactN := airAll(t, filepath.Join(w.dataDir, "air-all.parquet"), eastTable, westTable)
	const total = 420768
	d := policy.Dataset{Name: "air-all", Location: "air-all.parquet", Provider: "env-east", Sharing: policy.Conditional, Level: 2,
		Columns: []policy.Column{{Name: "station", Type: "utf8"}, {Name: "year", Type: "int64"},
			{Name: "PM2.5", Type: "float64", Role: policy.Sensitive}, {Name: "PM2.5.present", Type: "float64", Role: policy.Sensitive}}}
	if err := w.st.RegisterDataset(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := w.st.CreateGrant(ctx, policy.Grant{ID: "g-all", Operator: "acme", Mode: policy.Scenario, Mechanisms: []string{policy.MechanismHE},
		Pricing: policy.PublicWelfare, Purposes: []string{"research"}, Datasets: []string{"air-all"},
		Columns:    map[string][]string{"air-all": {"station", "year", "PM2.5", "PM2.5.present"}},
		EpsilonCap: map[string]float64{"air-all": 10}, ValidFrom: time.Now().Add(-time.Hour), ValidUntil: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	reg, err := w.st.HEKeysOfSetup(ctx, "air-fusion")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := LoadHEKeys(ctx, w.st, w.dataDir, reg.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	// Each station group encrypts its own table (nulls as 0, with the
	// presence indicator) with the public keys only.
	encrypt := func(table string) map[string][]byte {
		col, present, err := EncryptColumn(keys, table, "PM2.5", EncryptOptions{Lo: 0, Hi: 1000, Nulls: NullsZero})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]byte{}
		for name, c := range map[string]*he.Column{"PM2.5": col, "PM2.5.present": present} {
			if out[name], err = c.MarshalBinary(); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	attach := func(provider string, cols map[string][]byte, start int64) error {
		for _, name := range []string{"PM2.5", "PM2.5.present"} {
			file := fmt.Sprintf("air-all.%s.%s.he", name, provider)
			if err := AttachColumn(ctx, w.st, keys, cols[name], filepath.Join(w.dataDir, file), file,
				store.HEColumn{Dataset: "air-all", Column: name, Provider: provider, Nulls: NullsZero, Start: start, End: SegmentToEnd}); err != nil {
				return err
			}
		}
		return nil
	}
	east, west := encrypt(eastTable), encrypt(westTable)
	if err := attach("env-east", east, 0); err != nil {
		t.Fatal(err)
	}
	t.Logf("twelve stations, %d rows; env-east's segment [0, %d), env-west's [%d, %d); encryption and attachment %v",
		total, split, split, total, time.Since(t0).Round(time.Millisecond))

	manifest := strings.NewReplacer("grant: g-he", "grant: g-all", "dataset: air-he", "dataset: air-all").Replace(fmt.Sprintf(heManifest, w.recHash))
	submit := func(r *Runner, id string) {
		t.Helper()
		job, err := r.Submit(ctx, Submission{ID: id, Operator: "acme", Manifest: []byte(manifest)})
		if err != nil {
			t.Fatal(err)
		}
		if job.State != store.StateInReview {
			t.Fatalf("job %s is %s, want in review", id, job.State)
		}
		if err := r.Review(ctx, id, true, "authority", "fused HE release of yearly PM2.5"); err != nil {
			t.Fatal(err)
		}
	}
	spent := func() policy.Budget {
		b, err := w.st.Budget(ctx, "g-all", "air-all")
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	t.Run("segment under another key refused", func(t *testing.T) {
		// The health department alone makes another key (setup "solo").
		params, _ := json.Marshal(he.DefaultCKKS())
		su, err := w.st.RegisterHESetup(ctx, store.HESetup{Name: "solo", Params: params, Providers: []string{"health"}})
		if err != nil {
			t.Fatal(err)
		}
		sh, err := ProviderKeygen(w.provDirs["health"], "", su)
		if err != nil {
			t.Fatal(err)
		}
		solo, sums, err := CombineKeys(su, map[string][]byte{"health": sh})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := RegisterKeys(ctx, w.st, su, solo, sums, filepath.Join(w.dataDir, "solo.keys"), "solo.keys"); err != nil {
			t.Fatal(err)
		}
		col, err := he.NewEncryptor(solo).EncryptFloats(make([]float64, 1000), 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := col.MarshalBinary()
		err = AttachColumn(ctx, w.st, solo, b, filepath.Join(w.dataDir, "solo.he"), "solo.he",
			store.HEColumn{Dataset: "air-all", Column: "PM2.5", Provider: "health", Nulls: NullsZero, Start: int64(split), End: SegmentToEnd})
		if !errors.Is(err, cove.ErrInvalid) || !strings.Contains(err.Error(), "under keys") {
			t.Fatalf("segment under another key: %v", err)
		}
		t.Logf("refused: %v", err)
	})

	t.Run("gap fails the job, refunded", func(t *testing.T) {
		src := &recordingSource{inner: w.dirSource()}
		r := w.runner(src)
		before := spent()
		submit(r, "fusion-gap")
		_, err := r.Execute(ctx, "fusion-gap")
		want := fmt.Sprintf("encrypted column air-all.PM2.5 does not cover rows [%d, %d)", split, total)
		if !errors.Is(err, cove.ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Fatalf("job on a column with a gap: %v, want invalid naming %q", err, want)
		}
		t.Logf("refused: %v", err)
		for _, v := range append(exactSum, exactN...) {
			if strings.Contains(err.Error(), fmt.Sprint(v)) || strings.Contains(err.Error(), fmt.Sprintf("%.0f", v)) {
				t.Errorf("the error holds an aggregate of the data (%v)", v)
			}
		}
		if job, _ := w.st.Job(ctx, "fusion-gap"); job.State != store.StateFailed {
			t.Fatalf("job is %s, want failed", job.State)
		}
		if b := spent(); b.Spent != before.Spent || b.Reserved != 0 {
			t.Fatalf("budget not refunded: before %+v after %+v", before, b)
		}
		if countEntries(t, w.st, ledger.JobFailed, "fusion-gap") != 1 || countEntries(t, w.st, ledger.HEApproved, "fusion-gap") != 0 || len(src.requests) != 0 {
			t.Fatal("the failure is not in the ledger, or a release was approved or a share asked for")
		}
	})

	// env-west attaches its segment: the column now covers the table.
	if err := attach("env-west", west, int64(split)); err != nil {
		t.Fatal(err)
	}

	t.Run("overlapping segment refused", func(t *testing.T) {
		col, err := he.NewEncryptor(keys).EncryptFloats(make([]float64, 20000), 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := col.MarshalBinary()
		err = AttachColumn(ctx, w.st, keys, b, filepath.Join(w.dataDir, "overlap.he"), "overlap.he",
			store.HEColumn{Dataset: "air-all", Column: "PM2.5", Provider: "health", Nulls: NullsZero, Start: int64(split) - 10000, End: SegmentToEnd})
		if !errors.Is(err, cove.ErrExists) || !strings.Contains(err.Error(), "overlap") {
			t.Fatalf("overlapping segment: %v", err)
		}
		t.Logf("refused: %v", err)
	})

	t.Run("fused release", func(t *testing.T) {
		segs, err := w.st.HEColumnSegments(ctx, "air-all", "PM2.5")
		if err != nil || len(segs) != 2 || segs[0].Provider != "env-east" || segs[0].End != int64(split) || segs[1].Provider != "env-west" || segs[1].End != total {
			t.Fatalf("segments: %+v %v", segs, err)
		}
		// Each segment is in the ledger with its range and provider.
		var recorded []string
		for e, err := range w.st.Entries(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			if e.Kind == ledger.HEColumn && e.Subject == "air-all.PM2.5" {
				var c store.HEColumn
				if err := json.Unmarshal(e.Body, &c); err != nil {
					t.Fatal(err)
				}
				recorded = append(recorded, fmt.Sprintf("%s [%d, %d)", c.Provider, c.Start, c.End))
			}
		}
		if want := fmt.Sprintf("[env-east [0, %d) env-west [%d, %d)]", split, split, total); fmt.Sprint(recorded) != want {
			t.Fatalf("he.column entries %v, want %s", recorded, want)
		}
		src := &recordingSource{inner: w.dirSource()}
		r := w.runner(src)
		before := spent()
		submit(r, "fusion-1")
		t0 := time.Now()
		if _, err := r.Execute(ctx, "fusion-1"); err != nil {
			t.Fatal(err)
		}
		t.Logf("execute (guest over %d rows, 2 outputs × 2 segments fused, noise, 6 shares): %v", total, time.Since(t0).Round(time.Millisecond))
		if src.given != 6 || len(src.requests) != 3 {
			t.Fatalf("%d shares from %d holders, want 6 from 3", src.given, len(src.requests))
		}
		stored, err := r.Release(ctx, "fusion-1")
		if err != nil {
			t.Fatal(err)
		}
		opened, err := OpenHE(w.operator, stored)
		if err != nil {
			t.Fatal(err)
		}
		for i, exact := range [][]float64{exactSum, exactN} {
			o := opened.Outputs[i]
			nz := o.HE.Noise
			tol := nz.Interval(1e-9)
			t.Logf("%s: DP std %.4g (ε %v, L0 %d, L∞ %v), flooding std %.3g, grid %.3g; tolerance ±%.4g", o.Name, nz.Std, nz.Epsilon, nz.L0, nz.LInf, nz.FloodStdOut, nz.Rounding, tol)
			if nz.L0 != 1 || nz.LInf != []float64{1000, 1}[i] {
				t.Errorf("%s: sensitivity L0 %d L∞ %v: not one row's", o.Name, nz.L0, nz.LInf)
			}
			same := 0
			for g, row := range o.Rows {
				t.Logf("  %s: released %.2f exact %.2f (%+.3f%%)", strings.Join(row.Key, ""), row.Value, exact[g], 100*(row.Value-exact[g])/exact[g])
				if math.Abs(row.Value-exact[g]) > tol {
					t.Errorf("%s %v: released %v, exact %v over all twelve stations, beyond ±%v", o.Name, row.Key, row.Value, exact[g], tol)
				}
				if row.Value == exact[g] {
					same++
				}
			}
			if same == len(o.Rows) {
				t.Errorf("%s: every released value is exact: no noise", o.Name)
			}
		}
		// One release, one debit, one approval per output, one share per holder and output.
		if b := spent(); math.Abs(b.Spent-before.Spent-1) > 1e-12 || b.Reserved != 0 {
			t.Fatalf("budget: before %+v after %+v, want one debit of ε 1", before, b)
		}
		if n := countEntries(t, w.st, ledger.HEApproved, "fusion-1"); n != 2 {
			t.Errorf("%d approvals, want 2", n)
		}
		if n := countEntries(t, w.st, ledger.KeyShareGiven, "fusion-1"); n != 6 {
			t.Errorf("%d shares in the ledger, want 6", n)
		}
		if n := countEntries(t, w.st, ledger.Released, "fusion-1"); n != 1 {
			t.Errorf("%d release entries, want 1", n)
		}
		if _, err := w.st.VerifyLedger(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// TestHEWeightBounds: the HE weights are bounded like contributions: a row
// weighs once per group and in at most max_partitions groups, a non-finite
// weight is dropped; what passes the bound is dropped, never reported (a
// refusal would tell the operator something of the row).
func TestHEWeightBounds(t *testing.T) {
	specs := []enclave.Spec{{Output: "pm", Partitions: []string{"2013", "2014"}, MaxPartitions: 1}}
	a := newHEWeights(specs, 10)
	p13, _ := a.partition(0, "2013")
	p14, _ := a.partition(0, "2014")
	if p, _ := a.partition(0, "1999"); p != -1 || p13 != 0 || p14 != 1 {
		t.Fatalf("partitions %d %d, unknown key %d", p13, p14, p)
	}
	steps := []struct {
		part int
		row  int64
		w    float64
	}{
		{p13, 3, 2},           // kept
		{p13, 3, 5},           // the same row again in 2013: dropped
		{p14, 3, 7},           // a second group: past max_partitions 1, dropped
		{p14, 4, math.Inf(1)}, // not finite: dropped
		{p14, 5, 1},           // kept
		{p14, 99, 1},          // past the encrypted rows: counted by the pass, dropped here
	}
	for _, s := range steps {
		if err := a.unit(0, 0, s.row, s.part, s.w); err != nil {
			t.Fatalf("weight %+v refused: %v", s, err)
		}
	}
	want := map[[2]int]float64{{0, 3}: 2, {1, 5}: 1}
	for p := range 2 {
		for i := range 10 {
			if got := a.weights[0][p][i]; got != want[[2]int{p, i}] {
				t.Errorf("weight of row %d in partition %d = %v, want %v", i, p, got, want[[2]int{p, i}])
			}
		}
	}
	// Plan rows: one contribution per row, weight 1 without a value.
	b := newHEWeights(specs, 4)
	if err := b.rows(0, 1, []int32{0, -1, 1}, nil); err != nil {
		t.Fatal(err)
	}
	if b.weights[0][0][1] != 1 || b.weights[0][1][3] != 1 || b.weights[0][0][2] != 0 {
		t.Fatalf("plan weights %v", b.weights[0])
	}
	if err := b.units(0, []uint64{1}, []int32{0}, nil); !errors.Is(err, cove.ErrInvalid) {
		t.Fatalf("units on the HE path: %v", err)
	}
}
