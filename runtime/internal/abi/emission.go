package abi

import "math/bits"

// Run is a range of rows [Start, End) of a batch whose contributing rows
// go to the key interned as Key.
type Run struct{ Start, End, Key uint32 }

// Emission is the contributions of one emit or k_emit call to output
// Output, in one of two forms.
//
// Listed (import emit, and kernels over a selection the guest listed out of
// order): contribution j is (Rows[j], Keys[j], Values[j]).
//
// Ranged (Runs non-nil; host kernels): for each run, every row r in
// [Start, End) whose bit is set in Select (bit r%64 of word r/64)
// contributes ByRow[r] (1 when ByRow is nil) to key Run.Key. Runs are
// ascending and disjoint; no contribution exists per row in memory, and
// ByRow is usually the value column's own Arrow buffer.
//
// Every slice is a view valid only during the emit callback.
type Emission struct {
	Output int
	Rows   []uint32
	Keys   []uint32
	Values []float64
	Runs   []Run
	Select []uint64
	ByRow  []float64
}

// Len is the number of contributions in e.
func (e *Emission) Len() int64 {
	if e.Runs == nil {
		return int64(len(e.Rows))
	}
	return CountRuns(e.Select, e.Runs)
}

// CountRuns counts the bits of sel set inside the runs.
func CountRuns(sel []uint64, runs []Run) int64 {
	var n int64
	for _, r := range runs {
		n += int64(countRange(sel, int(r.Start), int(r.End)))
	}
	return n
}

// countRange counts the set bits of b in [from, to).
func countRange(b []uint64, from, to int) int {
	if from >= to {
		return 0
	}
	fw, tw := from>>6, (to-1)>>6
	lo := ^uint64(0) << uint(from&63)
	hi := ^uint64(0) >> uint(63-(to-1)&63)
	if fw == tw {
		return bits.OnesCount64(b[fw] & lo & hi)
	}
	n := bits.OnesCount64(b[fw] & lo)
	for w := fw + 1; w < tw; w++ {
		n += bits.OnesCount64(b[w])
	}
	return n + bits.OnesCount64(b[tw]&hi)
}
