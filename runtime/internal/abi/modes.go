package abi

import (
	"math"

	"github.com/apache/arrow-go/v18/arrow"
)

// MaxPlanBytes bounds the plan a guest hands through import plan.
const MaxPlanBytes = 64 << 10

// ResultFunc receives a block's vector for a block output (import result):
// a view into guest memory, valid only during the call.
type ResultFunc func(output int, values []float64) error

// modes is the State of the planning call and of block outputs.
type modes struct {
	planning bool   // inside cove_plan: only output and plan are allowed
	plan     []byte // what import plan handed, nil before
	planned  bool

	vectors []int      // per output: 0 takes contributions, d > 0 a block vector of d values
	result  ResultFunc // set during a group (BeginGroup)
	gave    []bool     // per output: the current group gave its vector
}

func planRefused(name string) *Error {
	return abiErr("%s call during the planning call (a plan cannot depend on data: only output and plan are allowed)", name)
}

// BeginPlan opens the planning call: until EndPlan only imports output and
// plan are allowed.
func (s *State) BeginPlan() { s.planning, s.plan, s.planned = true, nil, false }

// EndPlan closes the planning call and returns the plan the guest handed
// (ok false when it handed none).
func (s *State) EndPlan() (plan []byte, ok bool) {
	s.planning = false
	return s.plan, s.planned
}

// Plan takes the job's plan from guest memory [ptr,+n) (import plan):
// allowed once, during the planning call, at most MaxPlanBytes.
func (s *State) Plan(mem []byte, ptr, n uint32) error {
	if !s.planning {
		return s.fail(abiErr("plan call outside the planning call (cove_plan)"))
	}
	if s.planned {
		return s.fail(abiErr("plan handed twice in one planning call"))
	}
	if n > MaxPlanBytes {
		return s.fail(limitErr("plan of %d bytes exceeds the limit of %d bytes", n, MaxPlanBytes))
	}
	b, err := slice(mem, ptr, n, "plan")
	if err != nil {
		return s.fail(err)
	}
	s.plan, s.planned = append([]byte(nil), b...), true
	return nil
}

// SetVectors declares the block outputs: vectors[o] = d > 0 makes output o
// a block output whose vector of d values comes through import result (and
// refuses emit and k_emit to it); 0 leaves it taking contributions. nil: no
// block outputs.
func (s *State) SetVectors(vectors []int) {
	s.vectors = append([]int(nil), vectors...)
	s.gave = make([]bool, len(s.outputs))
}

func (s *State) isBlock(output uint32) bool {
	return int64(output) < int64(len(s.vectors)) && s.vectors[output] > 0
}

// BeginGroup opens a batch of rec's rows as one group of per-unit or block
// mode: contributions go to emit, block vectors to result.
func (s *State) BeginGroup(rec arrow.RecordBatch, emit EmitFunc, result ResultFunc) {
	s.BeginBatch(rec, emit)
	s.result = result
	clear(s.gave)
}

// Gave reports whether the current group gave the vector of output o.
func (s *State) Gave(o int) bool { return o < len(s.gave) && s.gave[o] }

// Result takes a block's vector for output from guest memory: count f64 at
// ptr, 8-aligned (import result). Allowed during a group, once per block
// output, with count its dimension; every value must be finite.
func (s *State) Result(mem []byte, output, ptr, count uint32) error {
	if s.planning {
		return s.fail(planRefused(ImportResult))
	}
	if !s.inBatch || s.result == nil {
		return s.fail(abiErr("result call outside a block call"))
	}
	if int64(output) >= int64(len(s.outputs)) {
		return s.fail(abiErr("result for output id %d, but %d outputs are declared", output, len(s.outputs)))
	}
	if !s.isBlock(output) {
		return s.fail(abiErr("result for output %d, which is not a block output", output))
	}
	if d := s.vectors[output]; int64(count) != int64(d) {
		return s.fail(abiErr("result for output %d has %d values, its dimension is %d", output, count, d))
	}
	if s.gave[output] {
		return s.fail(abiErr("result for output %d given twice in one block", output))
	}
	if ptr%8 != 0 {
		return s.fail(abiErr("result values are misaligned (need 8)"))
	}
	b, err := slice(mem, ptr, 8*count, "result values")
	if err != nil {
		return s.fail(err)
	}
	v := view[float64](b, int(count))
	for _, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return s.fail(abiErr("result for output %d holds a value that is not finite", output))
		}
	}
	s.gave[output] = true
	if err := s.result(int(output), v); err != nil {
		return s.fail(err)
	}
	return nil
}

// SetMaxEmits changes the emit limit (per group in per-unit and block
// modes, where ResetGroup zeroes the count).
func (s *State) SetMaxEmits(n int64) { s.limits.MaxEmits = n }

// ResetGroup makes the state what it was at the snapshot of a per-unit or
// block instance, before the next group: the key table back to its first
// keys keys (the guest's ids stay dense from there), no emits, no failure,
// no vectors given.
func (s *State) ResetGroup(keys int) {
	for _, k := range s.keys[keys:] {
		delete(s.keyIDs, k)
		s.keyBytes -= int64(len(k))
	}
	clear(s.keys[keys:])
	s.keys = s.keys[:keys]
	s.emits = 0
	s.Failure = nil
	s.result = nil
	clear(s.gave)
}

// wrote tells OnWrite of a host write into guest memory.
func (s *State) wrote(off, n uint32) {
	if s.OnWrite != nil && n > 0 {
		s.OnWrite(off, n)
	}
}
