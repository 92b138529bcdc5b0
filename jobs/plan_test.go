package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/covedata/cove"
	"github.com/covedata/cove/examples"
	"github.com/covedata/cove/ledger"
	"github.com/covedata/cove/policy"
	"github.com/covedata/cove/store"
)

// planEnv is a store with air-quality readings (dataset "air": the catalog's
// unit, one reading, unique per row) and people with several rows each
// ("visits": unit pid, not unique), a grant over both with a large ε cap,
// and a runner.
func planEnv(t *testing.T) *attackEnv {
	t.Helper()
	e := newAttackEnv(t)
	rec := airReadings(t, true)
	e.register(t, "air", rec, "station", "year", "month", "day", "hour")
	rec.Release()
	rec = visits(t)
	e.register(t, "visits", rec, "pid")
	rec.Release()
	if err := e.st.CreateGrant(context.Background(), policy.Grant{ID: "g", Operator: "op", Mode: policy.Scenario, Mechanisms: []string{policy.MechanismDP},
		Pricing: policy.Industry, Purposes: []string{"research"}, Datasets: []string{"air", "visits"},
		Columns: map[string][]string{policy.AnyDataset: {policy.AllColumns}}, EpsilonCap: map[string]float64{policy.AnyDataset: 1e9},
		ValidFrom: time.Now().Add(-time.Hour), ValidUntil: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return e
}

// visits is 40 people (pid) with 3 visits each, in 2 cities.
func visits(t *testing.T) arrow.RecordBatch {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{{Name: "pid", Type: arrow.PrimitiveTypes.Int64}, {Name: "city", Type: arrow.BinaryTypes.String},
		{Name: "cost", Type: arrow.PrimitiveTypes.Float64}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for v := range 3 {
		for p := range 40 {
			b.Field(0).(*array.Int64Builder).Append(int64(p))
			b.Field(1).(*array.StringBuilder).Append([]string{"north", "south"}[p%2])
			b.Field(2).(*array.Float64Builder).Append(float64(10*v + p))
		}
	}
	return b.NewRecordBatch()
}

const manifestPlan = `version: 1
name: pm-bands
grant: g
purpose: research
dataset: air
plan:
  where: "hour BETWEEN 6 AND 20"
  derive:
    - {name: band, expr: "CASE WHEN ` + "`PM2.5`" + ` >= 75 THEN 'high' ELSE 'low' END"}
outputs:
  - name: mean_pm
    aggregate: mean
    epsilon: 1000000
    bounds: [0, 1000]
    value: "` + "`PM2.5`" + `"
    group_by:
      - {column: station, values: [Dongsi, Tiantan]}
  - name: hours_by_band
    aggregate: count
    epsilon: 1000000
    where: "day = 15"
    group_by:
      - {column: band, values: [low, high]}
      - {expr: "hour % 2", name: odd, values: ["0", "1"]}
`

// TestPlanInManifest: a plan written in the manifest runs with no module;
// its results match an exact computation (noise negligible at ε 10^6); the
// job, the ledger and the store hold its canonical plan.
func TestPlanInManifest(t *testing.T) {
	e := planEnv(t)
	ctx := context.Background()
	rel, err := e.runner.Run(ctx, Submission{ID: "plan-1", Operator: "op", Manifest: []byte(manifestPlan)})
	if err != nil {
		t.Fatal(err)
	}
	// The exact answers, from the rows airReadings writes.
	rec := airReadings(t, true)
	defer rec.Release()
	st, hour, day, pm := rec.Column(0).(*array.String), rec.Column(4).(*array.Int64), rec.Column(3).(*array.Int64), rec.Column(5).(*array.Float64)
	sum, n := map[string]float64{}, map[string]float64{}
	bands := map[string]float64{}
	for i := range int(rec.NumRows()) {
		h := hour.Value(i)
		if h < 6 || h > 20 {
			continue
		}
		sum[st.Value(i)] += pm.Value(i)
		n[st.Value(i)]++
		if day.Value(i) == 15 {
			band := "low"
			if pm.Value(i) >= 75 {
				band = "high"
			}
			bands[band+"\x1f"+map[bool]string{true: "1", false: "0"}[h%2 == 1]]++
		}
	}
	for _, s := range []string{"Dongsi", "Tiantan"} {
		if got, want := value(rel, 0, s), sum[s]/n[s]; math.Abs(got-want) > 0.01 {
			t.Errorf("mean_pm %s = %v, want %v", s, got, want)
		}
	}
	for _, k := range []string{"low\x1f0", "low\x1f1", "high\x1f0", "high\x1f1"} {
		if got, want := value(rel, 1, k), bands[k]; math.Abs(got-want) > 0.5 {
			t.Errorf("hours_by_band %q = %v, want %v", k, got, want)
		}
	}
	j, err := e.st.Job(ctx, "plan-1")
	if err != nil {
		t.Fatal(err)
	}
	if j.Mode != ModePlan || j.PlanSHA256 == "" || !strings.Contains(j.Plan, "BETWEEN 6 AND 20") || j.ModuleSHA256 != "" {
		t.Fatalf("job record: mode %q, plan %q (%s), module %q", j.Mode, j.Plan, j.PlanSHA256, j.ModuleSHA256)
	}
	t.Logf("canonical plan %s:\n%s", j.PlanSHA256, j.Plan)
	found := false
	for en, err := range e.st.Entries(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if en.Kind == ledger.JobSubmitted && en.Subject == "plan-1" {
			var body store.Job
			if err := json.Unmarshal(en.Body, &body); err != nil {
				t.Fatal(err)
			}
			found = body.Plan == j.Plan && body.PlanSHA256 == j.PlanSHA256
		}
	}
	if !found {
		t.Fatal("the ledger's job.submitted entry does not hold the plan's text and hash")
	}
	canon, err := e.st.JobPlan(ctx, "plan-1")
	if err != nil || len(canon) == 0 || sha(canon) != j.PlanSHA256 {
		t.Fatalf("stored plan: %d bytes, sha %s, want %s (%v)", len(canon), sha(canon), j.PlanSHA256, err)
	}
}

// TestPlanRefusedWithEveryProblem: an invalid plan is refused at submission
// with every problem listed, and nothing is recorded.
func TestPlanRefusedWithEveryProblem(t *testing.T) {
	e := planEnv(t)
	deep := "hour"
	for range 40 {
		deep = "(" + deep + " + 1)"
	}
	bad := strings.NewReplacer(
		`where: "hour BETWEEN 6 AND 20"`, `where: "hours BETWEEN 6 AND 20"`, // unknown column
		`expr: "CASE WHEN`, `expr: "station + CASE WHEN`, // a type error
		"    value: \"`PM2.5`\"\n", "", // mean without a value
		`{expr: "hour % 2", name: odd`, `{expr: "`+deep+`", name: odd`, // too deep
	).Replace(manifestPlan)
	_, err := e.runner.Submit(context.Background(), Submission{ID: "bad-1", Operator: "op", Manifest: []byte(bad)})
	if !errors.Is(err, cove.ErrInvalid) {
		t.Fatalf("an invalid plan: %v", err)
	}
	msg := err.Error()
	for _, want := range []string{`"hours"`, "string", "value", "deep"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the refusal does not mention %q:\n%s", want, msg)
		}
	}
	t.Logf("refused:\n%s", msg)
	if _, err := e.st.Job(context.Background(), "bad-1"); !errors.Is(err, cove.ErrNotFound) {
		t.Fatalf("a refused plan was recorded: %v", err)
	}
	// A manifest plan and a module's planning call at once is refused too.
	_, err = e.runner.Submit(context.Background(), Submission{ID: "both-1", Operator: "op", Manifest: []byte(manifestPlan), Module: examples.AirQuality().Module})
	if !errors.Is(err, cove.ErrInvalid) || !strings.Contains(err.Error(), "not both") {
		t.Fatalf("a plan from both the manifest and the module: %v", err)
	}
}

// TestPlanFromModule: the Go example's planning call gives the plan (the
// SDK's fluent calls), the host runs it: the same means as a manifest plan.
func TestPlanFromModule(t *testing.T) {
	e := planEnv(t)
	ctx := context.Background()
	ex := examples.AirQuality()
	man := strings.NewReplacer("grant: g-acme-2026", "grant: g", "purpose: public-research", "purpose: research",
		"dataset: beijing-air-quality", "dataset: air", "epsilon: 0.5", "epsilon: 1000000", "values: [2013, 2014, 2015, 2016, 2017]", "values: [2015]").Replace(string(ex.Manifest))
	rel, err := e.runner.Run(ctx, Submission{ID: "mod-1", Operator: "op", Manifest: []byte(man), Module: ex.Module})
	if err != nil {
		t.Fatal(err)
	}
	j, _ := e.st.Job(ctx, "mod-1")
	if !strings.Contains(j.Plan, "IS NOT NULL") || j.ModuleSHA256 != sha(ex.Module) {
		t.Fatalf("plan from the module: %q (module %s)", j.Plan, j.ModuleSHA256)
	}
	rec := airReadings(t, true)
	defer rec.Release()
	st, pm := rec.Column(0).(*array.String), rec.Column(5).(*array.Float64)
	sum, n := map[string]float64{}, map[string]float64{}
	for i := range int(rec.NumRows()) {
		sum[st.Value(i)] += pm.Value(i)
		n[st.Value(i)]++
	}
	for _, s := range []string{"Dongsi", "Tiantan"} {
		if got, want := value(rel, 0, s+"\x1f2015"), sum[s]/n[s]; math.Abs(got-want) > 0.01 {
			t.Errorf("%s: %v, want %v", s, got, want)
		}
	}
}

// TestPlanBoundsUnits: where the unit is not one row (3 visits per person),
// the plan's contributions are bounded per unit (L0 = L∞ = 1: one visit per
// person counts); per_row is refused on such a dataset; where the unit is
// one row (air), each row counts.
func TestPlanBoundsUnits(t *testing.T) {
	e := planEnv(t)
	ctx := context.Background()
	man := `version: 1
name: visits
grant: g
purpose: research
dataset: visits
outputs:
  - name: people
    aggregate: count
    epsilon: 1000000
    group_by: [{column: city, values: [north, south]}]
`
	rel, err := e.runner.Run(ctx, Submission{ID: "v-1", Operator: "op", Manifest: []byte(man)})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"north", "south"} {
		if got := value(rel, 0, c); math.Abs(got-20) > 0.5 {
			t.Errorf("%s: %v people counted, want 20 (one contribution per person)", c, got)
		}
	}
	perRow := strings.Replace(man, "dataset: visits\n", "dataset: visits\nprivacy_unit: {per_row: true}\n", 1)
	_, err = e.runner.Submit(ctx, Submission{ID: "v-2", Operator: "op", Manifest: []byte(perRow)})
	var rej *policy.Rejection
	if !errors.As(err, &rej) || !strings.Contains(err.Error(), policy.CodePrivacyUnit) {
		t.Fatalf("per_row on a dataset whose unit is not a row: %v", err)
	}
	d, _ := e.st.Dataset(ctx, "air")
	v, _ := e.st.Dataset(ctx, "visits")
	if !d.UnitPerRow || v.UnitPerRow {
		t.Fatalf("unit per row: air %v (want true), visits %v (want false)", d.UnitPerRow, v.UnitPerRow)
	}
}
