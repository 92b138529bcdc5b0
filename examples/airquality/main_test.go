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
	guest.LocalString("station", []string{"Aotizhongxin", "Aotizhongxin", "Dongsi", "Dongsi"}, nil),
	guest.LocalInt64("year", []int64{2013, 2014, 2014, 2014}, nil),
	guest.LocalFloat64("PM2.5", []float64{4, 9, 0, 7.5}, []bool{true, true, false, true}),
}

var outputs = []string{"pm25_mean"}

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
		{Output: "pm25_mean", Row: 0, Key: "Aotizhongxin\x1f2013", Value: 4},
		{Output: "pm25_mean", Row: 1, Key: "Aotizhongxin\x1f2014", Value: 9},
		{Output: "pm25_mean", Row: 3, Key: "Dongsi\x1f2014", Value: 7.5},
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
