package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/covedata/cove"
)

var (
	now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	air = Dataset{Name: "air", Location: "air.parquet", Columns: []Column{
		{"station", "utf8"}, {"year", "int64"}, {"PM2.5", "float64"}, {"TEMP", "float64"}}}
	grant = Grant{
		ID: "g1", Operator: "acme", Purposes: []string{"research"}, Datasets: []string{"air"},
		Columns:    map[string][]string{"air": {"station", "year", "PM2.5"}},
		EpsilonCap: map[string]float64{"air": 1},
		ValidFrom:  now.Add(-time.Hour), ValidUntil: now.Add(time.Hour),
	}
	okReq = Request{Operator: "acme", Grant: "g1", Purpose: "research", Dataset: "air",
		Columns: []string{"station", "PM2.5"}, UnitColumns: []string{"station", "year"}, Epsilon: 0.5}
)

func TestAdmit(t *testing.T) {
	tests := []struct {
		name   string
		grant  func(*Grant)
		budget Budget
		req    func(*Request)
		now    time.Time
		codes  []string
		is     error
	}{
		{name: "admitted", budget: Budget{Cap: 1}},
		{name: "exactly the budget left", budget: Budget{Cap: 1, Spent: 0.3, Reserved: 0.2}},
		{name: "budget", budget: Budget{Cap: 1, Spent: 0.6}, codes: []string{CodeBudget}, is: cove.ErrBudgetExceeded},
		{name: "reservations count", budget: Budget{Cap: 1, Reserved: 0.6}, codes: []string{CodeBudget}, is: cove.ErrBudgetExceeded},
		{name: "expired", budget: Budget{Cap: 1}, now: now.Add(2 * time.Hour), codes: []string{CodeGrantInactive}, is: cove.ErrGrantInactive},
		{name: "not yet valid", budget: Budget{Cap: 1}, now: now.Add(-2 * time.Hour), codes: []string{CodeGrantInactive}, is: cove.ErrGrantInactive},
		{name: "column outside grant", budget: Budget{Cap: 1}, req: func(r *Request) { r.Columns = append(r.Columns, "TEMP") },
			codes: []string{CodeColumn}, is: cove.ErrOutOfScope},
		{name: "unknown column", budget: Budget{Cap: 1}, req: func(r *Request) { r.Columns = append(r.Columns, "nope") },
			codes: []string{CodeUnknownColumn}, is: cove.ErrInvalid},
		{name: "other operator", budget: Budget{Cap: 1}, req: func(r *Request) { r.Operator = "evil" }, codes: []string{CodeOperator}, is: cove.ErrOutOfScope},
		{name: "bad epsilon", budget: Budget{Cap: 1}, req: func(r *Request) { r.Epsilon = 0 }, codes: []string{CodeInvalidParameter}, is: cove.ErrInvalid},
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
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, r := grant, okReq
			g.Datasets = slices.Clone(g.Datasets)
			r.Columns = slices.Clone(r.Columns)
			if tc.grant != nil {
				tc.grant(&g)
			}
			if tc.req != nil {
				tc.req(&r)
			}
			at := tc.now
			if at.IsZero() {
				at = now
			}
			err := Admit(g, air, tc.budget, r, at)
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

func TestGrantValidate(t *testing.T) {
	lookup := func(n string) (Dataset, bool) { return air, n == "air" }
	if err := grant.Validate(lookup); err != nil {
		t.Fatalf("valid grant: %v", err)
	}
	bad := grant
	bad.ID = "Bad ID"
	bad.Columns = map[string][]string{"air": {"nope"}}
	bad.EpsilonCap = map[string]float64{"air": -1}
	bad.ValidUntil = bad.ValidFrom
	err := bad.Validate(lookup)
	if !errors.Is(err, cove.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	for _, want := range []string{"id must match", `column "nope"`, "epsilon cap", "valid_until"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestDatasetValidate(t *testing.T) {
	if err := air.Validate(); err != nil {
		t.Fatal(err)
	}
	d := air
	d.Name, d.Location = "", ""
	d.Columns = []Column{{"a", "x"}, {"a", "x"}}
	if err := d.Validate(); !errors.Is(err, cove.ErrInvalid) || !strings.Contains(err.Error(), "duplicate") {
		t.Fatalf("err = %v", err)
	}
}
