package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/covedata/cove"
)

var (
	now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	air = Dataset{Name: "air", Domain: "environment", Sharing: Open, Level: 1, Location: "air.parquet", Columns: []Column{
		{Name: "station", Type: "utf8", Role: QuasiIdentifier}, {Name: "year", Type: "int64", Role: QuasiIdentifier},
		{Name: "PM2.5", Type: "float64"}, {Name: "TEMP", Type: "float64"}, {Name: "sensor_id", Type: "utf8", Role: DirectIdentifier}}}
	grant = Grant{
		ID: "g1", Operator: "acme", Mode: Scenario, Purposes: []string{"research"}, Datasets: []string{"air"},
		Columns:    map[string][]string{"air": {"station", "year", "PM2.5"}},
		Mechanisms: []string{MechanismDP}, Pricing: Industry,
		EpsilonCap: map[string]float64{"air": 1},
		ValidFrom:  now.Add(-time.Hour), ValidUntil: now.Add(time.Hour),
	}
	okReq = Request{Operator: "acme", Grant: "g1", Purpose: "research", Dataset: "air", Mechanism: MechanismDP,
		Columns: []string{"station", "PM2.5"}, UnitColumns: []string{"station", "sensor_id"}, Epsilon: 0.5}
)

// withUnit makes station and year the dataset's privacy unit, unique per
// row or not.
func withUnit(perRow bool) func(*Dataset) {
	return func(d *Dataset) {
		d.Columns = slices.Clone(d.Columns)
		for i := range d.Columns {
			if n := d.Columns[i].Name; n == "station" || n == "year" {
				d.Columns[i].Role = PrivacyUnitRole
			}
		}
		d.UnitPerRow = perRow
	}
}

func admit(g Grant, d Dataset, b Budget, r Request, at time.Time) (Decision, error) {
	return Admit(Input{Grant: g, Dataset: d, Budget: b, Request: r, Now: at})
}

func TestAdmit(t *testing.T) {
	tests := []struct {
		name    string
		grant   func(*Grant)
		dataset func(*Dataset)
		in      func(*Input)
		budget  Budget
		req     func(*Request)
		now     time.Time
		codes   []string
		is      error
	}{
		{name: "admitted", budget: Budget{Cap: 1}},
		{name: "exactly the budget left", budget: Budget{Cap: 1, Spent: 0.3, Reserved: 0.2}},
		{name: "budget", budget: Budget{Cap: 1, Spent: 0.6}, codes: []string{CodeBudget}, is: cove.ErrBudgetExceeded},
		{name: "reservations count", budget: Budget{Cap: 1, Reserved: 0.6}, codes: []string{CodeBudget}, is: cove.ErrBudgetExceeded},
		{name: "delta budget", budget: Budget{Cap: 1, DeltaCap: 1e-6, DeltaSpent: 1e-6}, req: func(r *Request) { r.Delta = 1e-7 },
			codes: []string{CodeDeltaBudget}, is: cove.ErrBudgetExceeded},
		{name: "expired", budget: Budget{Cap: 1}, now: now.Add(2 * time.Hour), codes: []string{CodeGrantInactive}, is: cove.ErrGrantInactive},
		{name: "not yet valid", budget: Budget{Cap: 1}, now: now.Add(-2 * time.Hour), codes: []string{CodeGrantInactive}, is: cove.ErrGrantInactive},
		{name: "revoked", budget: Budget{Cap: 1}, in: func(in *Input) { in.Revoked = true }, codes: []string{CodeGrantRevoked}, is: cove.ErrGrantInactive},
		{name: "column outside grant", budget: Budget{Cap: 1}, req: func(r *Request) { r.Columns = append(r.Columns, "TEMP") },
			codes: []string{CodeColumn}, is: cove.ErrOutOfScope},
		{name: "direct identifier read by guest", budget: Budget{Cap: 1}, req: func(r *Request) { r.Columns = append(r.Columns, "sensor_id") },
			codes: []string{CodeDirectIdentifier}, is: cove.ErrOutOfScope},
		{name: "all columns still hides direct identifiers", budget: Budget{Cap: 1},
			grant: func(g *Grant) { g.Columns = map[string][]string{"air": {AllColumns}} },
			req:   func(r *Request) { r.Columns = []string{"TEMP", "sensor_id"} }, codes: []string{CodeDirectIdentifier}},
		{name: "unknown column", budget: Budget{Cap: 1}, req: func(r *Request) { r.Columns = append(r.Columns, "nope") },
			codes: []string{CodeUnknownColumn}, is: cove.ErrInvalid},
		{name: "other operator", budget: Budget{Cap: 1}, req: func(r *Request) { r.Operator = "evil" }, codes: []string{CodeOperator}, is: cove.ErrOutOfScope},
		{name: "mechanism not granted", budget: Budget{Cap: 1}, req: func(r *Request) { r.Mechanism = MechanismHE }, codes: []string{CodeMechanism}},
		{name: "bad epsilon", budget: Budget{Cap: 1}, req: func(r *Request) { r.Epsilon = 0 }, codes: []string{CodeInvalidParameter}, is: cove.ErrInvalid},
		{name: "max jobs", budget: Budget{Cap: 1}, grant: func(g *Grant) { g.MaxJobs = 3 }, in: func(in *Input) { in.JobsUsed = 3 },
			codes: []string{CodeMaxJobs}},
		{name: "not shared", budget: Budget{Cap: 1}, dataset: func(d *Dataset) { d.Sharing = NotShared }, codes: []string{CodeNotShared}},
		{
			name: "five at once", budget: Budget{Cap: 1, Spent: 1}, now: now.Add(2 * time.Hour),
			req: func(r *Request) {
				r.Operator, r.Purpose = "evil", "marketing"
				r.Columns = append(r.Columns, "TEMP")
			},
			codes: []string{CodeGrantInactive, CodeOperator, CodePurpose, CodeColumn, CodeBudget},
		},
		{name: "dataset not granted", budget: Budget{Cap: 1}, grant: func(g *Grant) { g.Datasets = []string{"other"} },
			codes: []string{CodeDataset}, is: cove.ErrOutOfScope},
		{name: "the catalog's unit", budget: Budget{Cap: 1}, dataset: withUnit(false), req: func(r *Request) { r.UnitColumns = []string{"station", "year"} }},
		{name: "a coarser unit", budget: Budget{Cap: 1}, dataset: withUnit(false), req: func(r *Request) { r.UnitColumns = []string{"station"} }},
		{name: "a finer unit", budget: Budget{Cap: 1}, dataset: withUnit(false), req: func(r *Request) { r.UnitColumns = []string{"station", "year", "TEMP"} },
			codes: []string{CodePrivacyUnit}, is: cove.ErrOutOfScope},
		{name: "per row where the unit is not a row", budget: Budget{Cap: 1}, dataset: withUnit(false),
			req: func(r *Request) { r.UnitColumns, r.UnitPerRow = nil, true }, codes: []string{CodePrivacyUnit}, is: cove.ErrOutOfScope},
		{name: "per row where the unit is a row", budget: Budget{Cap: 1}, dataset: withUnit(true),
			req: func(r *Request) { r.UnitColumns, r.UnitPerRow = nil, true }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, r, d := grant, okReq, air
			g.Datasets = slices.Clone(g.Datasets)
			r.Columns = slices.Clone(r.Columns)
			if tc.grant != nil {
				tc.grant(&g)
			}
			if tc.dataset != nil {
				tc.dataset(&d)
			}
			if tc.req != nil {
				tc.req(&r)
			}
			in := Input{Grant: g, Dataset: d, Budget: tc.budget, Request: r, Now: tc.now}
			if in.Now.IsZero() {
				in.Now = now
			}
			if tc.in != nil {
				tc.in(&in)
			}
			_, err := Admit(in)
			if len(tc.codes) == 0 {
				if err != nil {
					t.Fatalf("unexpected rejection: %v", err)
				}
				return
			}
			var rej *Rejection
			if !errors.As(err, &rej) {
				t.Fatalf("err = %v, want *Rejection", err)
			}
			if !slices.Equal(rej.Codes(), tc.codes) {
				t.Fatalf("codes = %v, want %v", rej.Codes(), tc.codes)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("errors.Is(%v, %v) = false", err, tc.is)
			}
			for _, v := range rej.Violations {
				if v.Message == "" || cove.Code(v.err) == "internal" {
					t.Errorf("violation %s lacks message or category", v.Code)
				}
			}
		})
	}
}

// TestDecisionMatrix walks grant modes × sharing attributes × mechanisms ×
// levels and asserts each decision: admitted or not, and whether the job
// waits for review.
func TestDecisionMatrix(t *testing.T) {
	modes := []Mode{Whole, ByDomain, Scenario}
	shares := []Sharing{Open, Unconditional, Conditional, NotShared}
	mechs := []string{MechanismDP, MechanismHE}
	n := 0
	for _, mode := range modes {
		for _, sh := range shares {
			for _, mech := range mechs {
				for level := 1; level <= 4; level++ {
					name := fmt.Sprintf("%s/%s/%s/L%d", mode, sh, mech, level)
					d := air
					d.Sharing, d.Level = sh, level
					g := grant
					g.Mode, g.Mechanisms = mode, []string{MechanismDP} // the grant allows dp only
					if mode == ByDomain {
						g.Datasets, g.Domain = nil, "environment"
						g.Columns = map[string][]string{AnyDataset: {"station", "year", "PM2.5"}}
						g.EpsilonCap = map[string]float64{AnyDataset: 1}
					}
					r := okReq
					r.Mechanism = mech
					dec, err := admit(g, d, Budget{Cap: 1}, r, now)

					wantAdmit := sh != NotShared && mech == MechanismDP
					wantReview := wantAdmit && (sh == Conditional || level >= 3)
					if (err == nil) != wantAdmit {
						t.Errorf("%s: admitted=%v (%v), want %v", name, err == nil, err, wantAdmit)
					}
					if err == nil && dec.Review != wantReview {
						t.Errorf("%s: review=%v, want %v", name, dec.Review, wantReview)
					}
					var rej *Rejection
					if errors.As(err, &rej) {
						if sh == NotShared && !slices.Contains(rej.Codes(), CodeNotShared) {
							t.Errorf("%s: codes %v lack %s", name, rej.Codes(), CodeNotShared)
						}
						if mech != MechanismDP && !slices.Contains(rej.Codes(), CodeMechanism) {
							t.Errorf("%s: codes %v lack %s", name, rej.Codes(), CodeMechanism)
						}
					}
					n++
				}
			}
		}
	}
	t.Logf("%d decisions asserted", n)
}

func TestLinkageFlag(t *testing.T) {
	r := okReq
	r.GroupBy = []string{"station", "year"}
	dec, err := admit(grant, air, Budget{Cap: 1}, r, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(dec.Flags) != 1 || !strings.Contains(dec.Flags[0], "quasi-identifiers") {
		t.Fatalf("flags = %v", dec.Flags)
	}
	r.GroupBy = []string{"station", "PM2.5"}
	if dec, _ := admit(grant, air, Budget{Cap: 1}, r, now); len(dec.Flags) != 0 {
		t.Fatalf("one quasi-identifier flagged: %v", dec.Flags)
	}
}

func TestGrantValidate(t *testing.T) {
	lookup := func(n string) (Dataset, bool) { return air, n == "air" }
	if err := grant.Validate(lookup); err != nil {
		t.Fatalf("valid grant: %v", err)
	}
	bad := grant
	bad.ID = "Bad ID"
	bad.Columns = map[string][]string{"air": {"nope", "sensor_id"}}
	bad.EpsilonCap = map[string]float64{"air": -1}
	bad.ValidUntil = bad.ValidFrom
	bad.Mechanisms = []string{"magic"}
	bad.Pricing = "free"
	err := bad.Validate(lookup)
	if !errors.Is(err, cove.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	for _, want := range []string{"id must match", `column "nope"`, "direct identifier", "epsilon cap", "valid_until", "magic", "pricing"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	ns := air
	ns.Sharing = NotShared
	if err := grant.Validate(func(string) (Dataset, bool) { return ns, true }); err == nil || !strings.Contains(err.Error(), "not-shared") {
		t.Fatalf("granting not-shared data: %v", err)
	}
	dom := grant
	dom.Mode, dom.Datasets, dom.Domain = ByDomain, nil, "environment"
	if err := dom.Validate(lookup); err == nil || !strings.Contains(err.Error(), `default epsilon cap`) {
		t.Fatalf("domain grant without defaults: %v", err)
	}
}

func TestDatasetValidate(t *testing.T) {
	if err := air.Validate(); err != nil {
		t.Fatal(err)
	}
	d := air
	d.Name, d.Location, d.Sharing, d.Level = "", "", "secret", 7
	d.Columns = []Column{{Name: "a", Role: "boss"}, {Name: "a"}}
	err := d.Validate()
	for _, want := range []string{"duplicate", "sharing", "level 7", "boss", "no location"} {
		if !strings.Contains(fmt.Sprint(err), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
}

func TestPeriodStart(t *testing.T) {
	g := grant
	at := time.Date(2026, 11, 26, 15, 4, 5, 0, time.UTC)
	if got := g.PeriodStart(at); !got.Equal(g.ValidFrom) {
		t.Errorf("no refresh: %v", got)
	}
	g.Period = Monthly
	if got := g.PeriodStart(at); !got.Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("monthly: %v", got)
	}
	g.Period = Daily
	if got := g.PeriodStart(at); !got.Equal(time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("daily: %v", got)
	}
}
