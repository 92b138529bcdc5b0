package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/covedata/cove"
	"github.com/covedata/cove/connectors"
	"github.com/covedata/cove/demodata"
	"github.com/covedata/cove/enclave"
	"github.com/covedata/cove/enclave/dpaudit"
)

const dpUsage = `usage:
  cove dp audit [-aggregates count,sum,mean] [-epsilon E] [-mechanism laplace|gaussian -delta D]
                [-samples N] [-alpha A] [-education LEVEL]

Releases each aggregate of age over the Adult rows with the given education
(one privacy unit per row) N times, and N times without the oldest person (a
neighbouring dataset), then bounds the ε really spent from below with
confidence 1 − A (see package enclave/dpaudit). The check passes when every
empirical ε is at most the declared ε.
`

// dpCmd runs "cove dp ...".
func dpCmd(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 || args[0] != "audit" {
		return errors.New("dp: audit?\n" + dpUsage)
	}
	fs := flag.NewFlagSet("dp audit", flag.ContinueOnError)
	fs.SetOutput(out)
	aggs := fs.String("aggregates", "count,sum,mean", "aggregates to audit (count, sum, mean, variance, stddev)")
	eps := fs.Float64("epsilon", 1, "declared ε of each aggregate")
	mech := fs.String("mechanism", enclave.MechanismLaplace, "laplace or gaussian")
	delta := fs.Float64("delta", 0, "declared δ (gaussian)")
	samples := fs.Int("samples", 100_000, "releases per dataset")
	alpha := fs.Float64("alpha", 0.05, "1 − confidence of the lower bounds")
	edu := fs.String("education", "Doctorate", "Adult education level selecting the rows")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	a, err := adultAges(*edu)
	if err != nil {
		return err
	}
	if len(a) < 2 {
		return fmt.Errorf("%w: dp audit: education %q selects %d rows", cove.ErrInvalid, *edu, len(a))
	}
	b, removed := dpaudit.WorstNeighbour(a)
	fmt.Fprintf(out, "Adult, education %s: %d rows (units); neighbour without row %d (age %g)\n",
		*edu, len(a), removed, a[indexOf(a, removed)].Value)
	fmt.Fprintf(out, "%d releases per dataset, %.0f%% confidence\n\n", *samples, 100*(1-*alpha))

	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "aggregate\tmechanism\tdeclared ε\tδ\tempirical ε ≥\tevent\tp1\tp2\tresult\t")
	failed := 0
	for _, agg := range strings.Split(*aggs, ",") {
		spec := enclave.Spec{Output: "age", Aggregate: enclave.Aggregate(agg), Mechanism: *mech, Epsilon: *eps, Delta: *delta,
			MaxPartitions: 1, MaxContributions: 1, Partitions: []string{"all"}}
		if spec.Aggregate != enclave.Count {
			spec.Lower, spec.Upper = 0, 100
		}
		r, err := dpaudit.Audit(ctx, spec, a, b, dpaudit.Options{Samples: *samples, Alpha: *alpha})
		if err != nil {
			return err
		}
		verdict := "ok"
		if r.LowerBound > r.Declared {
			verdict, failed = "EXCEEDS", failed+1
		}
		op := "<"
		if r.Above {
			op = ">"
		}
		fmt.Fprintf(tw, "%s\t%s\t%g\t%g\t%.3f\t%s %.6g on %s\t%.4g\t%.4g\t%s\t\n",
			agg, spec.Mechanism, r.Declared, r.Delta, r.LowerBound, op, r.Threshold, r.First, r.P1, r.P2, verdict)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%w: dp audit: %d aggregate(s) spend more than their declared ε", cove.ErrPrivacy, failed)
	}
	return nil
}

func indexOf(d []dpaudit.Contribution, unit uint64) int {
	for i, c := range d {
		if c.Unit == unit {
			return i
		}
	}
	return 0
}

// adultAges returns the Adult rows with the given education: one unit per
// row (its number), key "all", value age.
func adultAges(education string) ([]dpaudit.Contribution, error) {
	b, err := demodata.Open(demodata.Adult)
	if err != nil {
		return nil, err
	}
	rd, err := connectors.OpenBytes("adult.parquet", b, connectors.Options{Columns: []string{"age", "education"}})
	if err != nil {
		return nil, err
	}
	defer rd.Release()
	var out []dpaudit.Contribution
	var row uint64
	for rd.Next() {
		rec := rd.RecordBatch()
		age, ok1 := rec.Column(0).(*array.Int64)
		edu, ok2 := rec.Column(1).(*array.String)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%w: adult columns are %s, %s", cove.ErrInvalid, rec.Column(0).DataType(), rec.Column(1).DataType())
		}
		for i := range int(rec.NumRows()) {
			if edu.IsValid(i) && edu.Value(i) == education && age.IsValid(i) {
				out = append(out, dpaudit.Contribution{Unit: row, Key: "all", Value: float64(age.Value(i))})
			}
			row++
		}
	}
	return out, rd.Err()
}
