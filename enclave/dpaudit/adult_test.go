package dpaudit_test

import (
	"context"
	"flag"
	"fmt"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/covedata/cove/connectors"
	"github.com/covedata/cove/demodata"
	"github.com/covedata/cove/enclave"
	"github.com/covedata/cove/enclave/dpaudit"
)

// auditSamples: CI uses 8,000 releases per dataset (about 15 s on 2 cores);
// the command `cove dp audit` defaults to 100,000.
var auditSamples = flag.Int("audit.samples", 8000, "releases per dataset in TestEmpiricalEpsilon")

// adult returns the Adult rows with the given education as contributions:
// one privacy unit per row (the row number), key "all", value age.
func adult(t testing.TB, education string) []dpaudit.Contribution {
	t.Helper()
	b, err := demodata.Open(demodata.Adult)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := connectors.OpenBytes("adult.parquet", b, connectors.Options{Columns: []string{"age", "education"}})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	var out []dpaudit.Contribution
	var row uint64
	for rd.Next() {
		rec := rd.RecordBatch()
		age, ok1 := rec.Column(0).(*array.Int64)
		edu, ok2 := rec.Column(1).(*array.String)
		if !ok1 || !ok2 {
			t.Fatalf("adult columns are %s, %s", rec.Column(0).DataType(), rec.Column(1).DataType())
		}
		for i := range int(rec.NumRows()) {
			if edu.IsValid(i) && edu.Value(i) == education && age.IsValid(i) {
				out = append(out, dpaudit.Contribution{Unit: row, Key: "all", Value: float64(age.Value(i))})
			}
			row++
		}
	}
	if err := rd.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAdultLoads(t *testing.T) {
	d := adult(t, "Doctorate")
	if len(d) != 413 {
		t.Fatalf("%d Doctorate rows, want 413", len(d))
	}
}

// TestEmpiricalEpsilon: on Adult-derived neighbouring datasets (the 413
// Doctorate rows, one unit per row, and the same without its oldest person),
// the empirical lower bound on ε of count, sum and mean of age stays below
// the declared ε; a mechanism spending twice its declared ε is caught.
func TestEmpiricalEpsilon(t *testing.T) {
	samples := *auditSamples
	if raceEnabled {
		samples = 400 // exercises the code paths only; the bound is loose
	}
	a := adult(t, "Doctorate")
	b, _ := dpaudit.WorstNeighbour(a)
	for _, tc := range []struct {
		agg     enclave.Aggregate
		spent   float64 // ε the mechanism is given
		control bool
	}{
		{agg: enclave.Count, spent: 1},
		{agg: enclave.Sum, spent: 1},
		{agg: enclave.Mean, spent: 1},
		{agg: enclave.Count, spent: 2, control: true},
		{agg: enclave.Sum, spent: 2, control: true},
	} {
		name := fmt.Sprintf("%s spent %g", tc.agg, tc.spent)
		t.Run(name, func(t *testing.T) {
			spec := enclave.Spec{Output: "age", Aggregate: tc.agg, Epsilon: tc.spent, MaxPartitions: 1, MaxContributions: 1,
				Partitions: []string{"all"}}
			if tc.agg != enclave.Count {
				spec.Lower, spec.Upper = 0, 100
			}
			r, err := dpaudit.Audit(context.Background(), spec, a, b, dpaudit.Options{Samples: samples})
			if err != nil {
				t.Fatal(err)
			}
			const declared = 1.0
			t.Logf("declared ε %g, spent %g: ε ≥ %.3f (95%%; %d samples per dataset; event %s %v on %s, p1 %.4g, p2 %.4g)",
				declared, tc.spent, r.LowerBound, r.Samples, map[bool]string{true: ">", false: "<"}[r.Above], r.Threshold, r.First, r.P1, r.P2)
			if raceEnabled {
				return
			}
			if !tc.control && r.LowerBound > declared {
				t.Errorf("empirical ε %.3f exceeds the declared %g", r.LowerBound, declared)
			}
			if tc.control && r.LowerBound <= declared {
				t.Errorf("control: a mechanism spending ε %g audited at %.3f ≤ declared %g: the audit has no power", tc.spent, r.LowerBound, declared)
			}
		})
	}
}
