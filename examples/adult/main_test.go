package main

import (
	"os"
	"strings"
	"testing"

	"github.com/covedata/cove/sdk/guest"
)

// The dataset's columns the manifest lists; values for RunLocal (PlanLocal
// reads only names and types).
var cols = []guest.LocalColumn{
	guest.LocalString("education", []string{"Bachelors", "HS-grad", "Masters"}, nil),
	guest.LocalString("occupation", []string{"Sales", "", "Tech-support"}, []bool{true, false, true}),
	guest.LocalInt64("hours-per-week", []int64{40, 38, 50}, nil),
	guest.LocalString("income", []string{">50K", "<=50K", ">50K"}, nil),
}

var outputs = []string{"high_income_count", "hours_mean"}

func TestPlan(t *testing.T) {
	plan, err := guest.PlanLocal(process, outputs, cols...)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("plan.golden.json")
	if err != nil {
		t.Fatal(err)
	}
	if string(plan) != strings.TrimSpace(string(want)) {
		t.Errorf("plan\n%s\nwant (plan.golden.json)\n%s", plan, want)
	}
}

// TestBatch: the same handler on host kernels (batch mode, mock data).
func TestBatch(t *testing.T) {
	got, err := guest.RunLocal(process, outputs, cols...)
	if err != nil {
		t.Fatal(err)
	}
	want := []guest.Contribution{
		{Output: "high_income_count", Row: 0, Key: "Bachelors", Value: 1},
		{Output: "high_income_count", Row: 2, Key: "Masters", Value: 1},
		{Output: "hours_mean", Row: 0, Key: "Sales", Value: 40},
		{Output: "hours_mean", Row: 2, Key: "Tech-support", Value: 50},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("contribution %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}
