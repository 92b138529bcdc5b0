package abi

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func oneRow(t *testing.T) arrow.RecordBatch {
	b := array.NewInt64Builder(memory.NewGoAllocator())
	defer b.Release()
	b.Append(7)
	a := b.NewArray()
	defer a.Release()
	return array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "v", Type: a.DataType()}}, nil), []arrow.Array{a}, 1)
}

// TestPlanningCallRefuses: during the planning call only output and plan
// answer; plan answers once, within its limit, and only then.
func TestPlanningCallRefuses(t *testing.T) {
	mem := make([]byte, 1<<17)
	copy(mem, "out")
	s := NewState(Limits{MaxEmits: 10, MaxKeyBytes: 16, MaxKeys: 10, MaxKeyTotalBytes: 100}, []string{"out"})
	if err := s.Plan(mem, 0, 3); err == nil {
		t.Error("plan outside the planning call answered")
	}
	s.Failure = nil
	s.BeginPlan()
	refused := map[string]error{}
	_, refused["key"] = s.Key(mem, 0, 1)
	refused["emit"] = s.Emit(mem, 0, 0, 0, 0, 0)
	_, refused["k_len"] = s.KLen(0)
	refused["k_emit"] = s.KEmit(0, 0, NoColumn)
	refused["column"] = s.Column(mem, 0, 0, 0)
	refused["result"] = s.Result(mem, 0, 0, 0)
	for name, err := range refused {
		if err == nil || !strings.Contains(err.Error(), "planning call") {
			t.Errorf("%s during the planning call: %v", name, err)
		}
	}
	if id, err := s.Output(mem, 0, 3); err != nil || id != 0 {
		t.Errorf("output during the planning call: %d, %v", id, err)
	}
	if err := s.Plan(mem, 0, MaxPlanBytes+1); err == nil {
		t.Error("a plan over the limit was taken")
	}
	if err := s.Plan(mem, 0, 3); err != nil {
		t.Fatal(err)
	}
	if err := s.Plan(mem, 0, 3); err == nil {
		t.Error("a second plan was taken")
	}
	mem[0] = 'x' // the plan is a copy
	if plan, ok := s.EndPlan(); !ok || string(plan) != "out" {
		t.Errorf("plan %q, %v", plan, ok)
	}
}

// TestGroupState: block outputs take one vector of their dimension per
// group and no contributions; ResetGroup puts the key table, the emit
// count and the failure back; host writes reach OnWrite.
func TestGroupState(t *testing.T) {
	mem := make([]byte, 1<<16)
	rec := oneRow(t)
	defer rec.Release()
	s := NewState(Limits{MaxEmits: 1, MaxKeyBytes: 16, MaxKeys: 10, MaxKeyTotalBytes: 100}, []string{"vec", "cnt"})
	s.SetVectors([]int{2, 0})
	copy(mem, "init")
	if _, err := s.Key(mem, 0, 4); err != nil { // a snapshot key
		t.Fatal(err)
	}
	var writes [][2]uint32
	s.OnWrite = func(off, n uint32) { writes = append(writes, [2]uint32{off, n}) }
	var got []float64
	for round := range 2 {
		s.BeginGroup(rec, func(*Emission) error { return nil }, func(o int, v []float64) error { got = append(got, v...); return nil })
		copy(mem[8:], "group")
		if id, err := s.Key(mem, 8, 5); err != nil || id != 1 {
			t.Fatalf("round %d: the group's first key has id %d (%v), want 1", round, id, err)
		}
		binary.LittleEndian.PutUint64(mem[64:], math.Float64bits(1.5))
		binary.LittleEndian.PutUint64(mem[72:], math.Float64bits(-2))
		if err := s.Result(mem, 1, 64, 2); err == nil {
			t.Error("a vector for a contribution output was taken")
		}
		if err := s.Result(mem, 0, 64, 3); err == nil {
			t.Error("a vector of the wrong length was taken")
		}
		if err := s.Result(mem, 0, 68, 2); err == nil {
			t.Error("a misaligned vector was taken")
		}
		if err := s.Result(mem, 0, 64, 2); err != nil || !s.Gave(0) {
			t.Fatalf("round %d: %v", round, err)
		}
		if err := s.Result(mem, 0, 64, 2); err == nil {
			t.Error("a second vector was taken")
		}
		if err := s.Emit(mem, 0, 128, 132, 136, 1); err == nil {
			t.Error("a contribution to a block output was taken")
		}
		if _, err := s.KSelect(mem, 128, 1); err != nil {
			t.Fatal(err)
		}
		if n, err := s.KRead(mem, 1, 0, 0, 256, 1); err != nil || n != 1 {
			t.Fatalf("k_read: %d, %v", n, err)
		}
		s.EndBatch()
		s.ResetGroup(1)
		if s.NumKeys() != 1 || s.Emits() != 0 || s.Failure != nil || s.Gave(0) {
			t.Errorf("round %d: after ResetGroup: %d keys, %d emits, failure %v", round, s.NumKeys(), s.Emits(), s.Failure)
		}
	}
	if len(got) != 4 || got[0] != 1.5 || got[1] != -2 {
		t.Errorf("vectors %v", got)
	}
	if len(writes) != 2 || writes[0] != [2]uint32{256, 4} {
		t.Errorf("writes %v, want k_read's [256,+4) twice", writes)
	}
	binary.LittleEndian.PutUint64(mem[64:], math.Float64bits(math.NaN()))
	s.BeginGroup(rec, func(*Emission) error { return nil }, func(int, []float64) error { return nil })
	if err := s.Result(mem, 0, 64, 2); err == nil {
		t.Error("a vector holding NaN was taken")
	}
}
