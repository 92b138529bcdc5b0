package client

import (
	"errors"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/covedata/cove"
)

func TestOutputRecord(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	out := Output{Name: "q", Aggregate: "quantiles", Mechanism: "laplace", Epsilon: 1, Delta: 1e-6, GroupBy: []string{"station"},
		Rows: []Row{{Key: []string{"a", "0.5"}, Value: 1, NoiseStdDev: 2, CILow: 3, CIHigh: 4}, {Key: []string{"b", "0.9"}, Value: 5}}}
	rec, err := out.Record(mem)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	s := rec.Schema()
	var names []string
	for _, f := range s.Fields() {
		names = append(names, f.Name)
	}
	if got := names; len(got) != 6 || got[0] != "key_0" || got[1] != "key_1" || got[2] != "value" || got[5] != "ci95_high" {
		t.Errorf("columns %v", got)
	}
	if v, _ := s.Metadata().GetValue("cove.delta"); v != "1e-06" {
		t.Errorf("metadata δ %q", v)
	}
	if rec.NumRows() != 2 || rec.Column(1).(*array.String).Value(1) != "0.9" || rec.Column(3).(*array.Float64).Value(0) != 2 || rec.Column(2).(*array.Float64).Value(1) != 5 {
		t.Errorf("record %v", rec)
	}

	bad := out
	bad.Rows = append([]Row{}, out.Rows...)
	bad.Rows[1].Key = []string{"b"}
	if _, err := bad.Record(mem); !errors.Is(err, cove.ErrInvalid) {
		t.Errorf("ragged keys: %v", err)
	}
	if _, err := (Output{Name: "h", HE: &HEOutput{}}).Record(mem); !errors.Is(err, cove.ErrInvalid) {
		t.Errorf("unopened HE output: %v", err)
	}
	empty, err := (Output{Name: "e", GroupBy: []string{"g"}}).Record(mem)
	if err != nil || empty.NumRows() != 0 || empty.NumCols() != 5 {
		t.Errorf("empty output: %v %v", empty, err)
	}
	if empty != nil {
		empty.Release()
	}
}
