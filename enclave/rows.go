package enclave

import (
	"fmt"
	"math"

	"github.com/covedata/cove"
)

// maxRowsPerCall bounds one AddRows call so that its per-partition totals,
// each row ≤ 2^41 grid units (MaxGridSteps, or its square in coarser
// units), stay far from int64 overflow before they reach the checked sums.
const maxRowsPerCall = 1 << 20

// rowTotals are the per-partition totals of one AddRows call.
type rowTotals struct {
	n, s1, s2 []int64
	touched   []int32 // with many partitions: those with n > 0, in first-touch order
}

// fewParts is how many partitions an output may have for AddRows to flush
// them all after a call (no touched list kept per row: the hot loops of
// count, sum and mean then do two adds per row).
const fewParts = 4096

func (t *rowTotals) size(parts int) {
	if len(t.n) < parts {
		t.n = append(t.n, make([]int64, parts-len(t.n))...)
		t.s1 = append(t.s1, make([]int64, parts-len(t.s1))...)
		t.s2 = append(t.s2, make([]int64, parts-len(t.s2))...)
	}
}

// AddRows records contributions of rows that are each their own privacy
// unit: row i contributes values[i] (ignored for count; values may be nil
// then) to partition parts[i], or nothing when parts[i] is negative. Each
// row is a unit with one contribution, within any L0 ≥ 1 and L∞ ≥ 1, so
// clamping the value is the whole bounding: no per-unit state is kept, and
// the call costs a few nanoseconds per row. A NaN value is dropped.
//
// An accumulator takes rows either through AddRows or per unit (Add,
// AddKey, AddUnits), not both: mixing them would let one unit count twice.
// Errors wrap cove.ErrInvalid (a partition index out of range, mixing, use
// after Release) or cove.ErrLimit (a sum past 2^62 grid units); they never
// quote a value.
func (a *Accumulator) AddRows(parts []int32, values []float64) error {
	if a.released {
		return fmt.Errorf("%w: enclave: AddRows after Release", cove.ErrInvalid)
	}
	if a.err != nil {
		return a.err
	}
	if a.byUnit {
		return fmt.Errorf("%w: enclave: AddRows on an accumulator that takes contributions per unit", cove.ErrInvalid)
	}
	a.byRow = true
	if a.p.usesValues && len(values) != len(parts) {
		return fmt.Errorf("%w: enclave: AddRows with %d partitions and %d values", cove.ErrInvalid, len(parts), len(values))
	}
	for len(parts) > maxRowsPerCall {
		var head []float64
		if values != nil {
			head, values = values[:maxRowsPerCall], values[maxRowsPerCall:]
		}
		if err := a.addRows(parts[:maxRowsPerCall], head); err != nil {
			return err
		}
		parts = parts[maxRowsPerCall:]
	}
	return a.addRows(parts, values)
}

func (a *Accumulator) addRows(parts []int32, values []float64) error {
	nparts := int32(len(a.aggs))
	for _, p := range parts {
		if p >= nparts {
			return fmt.Errorf("%w: enclave: partition index out of range [0, %d)", cove.ErrInvalid, nparts)
		}
	}
	t := &a.rows
	t.size(len(a.aggs))
	p := &a.p
	lower, upper, inv := p.lower, p.upper, 0.0
	if p.gran > 0 {
		inv = 1 / p.gran // exact: the grid step is a power of two
	}
	midU, _ := p.mid()
	switch p.Aggregate {
	case Count:
		if nparts <= fewParts {
			n := t.n[:nparts]
			for _, q := range parts {
				if q >= 0 {
					n[q]++
				}
			}
			break
		}
		for _, q := range parts {
			if q < 0 {
				continue
			}
			if t.n[q] == 0 {
				t.touched = append(t.touched, q)
			}
			t.n[q]++
		}
	case Sum, Mean:
		off := int64(0)
		if p.Aggregate == Mean {
			off = midU
		}
		if nparts <= fewParts {
			n, s1 := t.n[:nparts], t.s1[:nparts]
			for i, q := range parts {
				if q < 0 {
					continue
				}
				v := values[i]
				if v != v {
					continue
				}
				// Round half away from zero onto the grid; x lies within the
				// grid points of the bounds, so the result stays inside them.
				x := min(max(v, lower), upper) * inv
				n[q]++
				s1[q] += int64(x+math.Copysign(0.5, x)) - off
			}
			break
		}
		for i, q := range parts {
			if q < 0 {
				continue
			}
			v := values[i]
			if v != v {
				continue
			}
			u := int64(math.Round(min(max(v, lower), upper)*inv)) - off
			if t.n[q] == 0 {
				t.touched = append(t.touched, q)
			}
			t.n[q]++
			t.s1[q] += u
		}
	case Variance, StdDev:
		va, _ := a.aggs[0].(*varAgg)
		for i, q := range parts {
			if q < 0 {
				continue
			}
			v := values[i]
			if v != v {
				continue
			}
			u := int64(math.Round(min(max(v, lower), upper)*inv)) - midU
			if t.n[q] == 0 {
				t.touched = append(t.touched, q)
			}
			t.n[q]++
			t.s1[q] += u
			t.s2[q] += va.sq(u)
		}
	default:
		// Quantiles and histogram: one unit's slot per row, folded at once.
		var s slot
		one := []float64{0}
		for i, q := range parts {
			if q < 0 {
				continue
			}
			v := values[i]
			if v != v {
				continue
			}
			one[0] = min(max(v, lower), upper)
			s = slot{part: int(q), seen: 1, vals: one}
			if t.n[q] == 0 {
				t.touched = append(t.touched, q)
			}
			t.n[q]++
			if err := a.aggs[q].fold(&s); err != nil {
				a.err = err
				return err
			}
		}
	}
	return a.flushRows()
}

// flushRows hands one call's totals to the partitions' sums and selectors.
func (a *Accumulator) flushRows() error {
	t := &a.rows
	if n := len(a.aggs); n <= fewParts && (a.p.Aggregate == Count || a.p.Aggregate == Sum || a.p.Aggregate == Mean) {
		for q := range int32(n) {
			if t.n[q] != 0 {
				t.touched = append(t.touched, q)
			}
		}
	}
	for _, q := range t.touched {
		n, s1, s2 := t.n[q], t.s1[q], t.s2[q]
		t.n[q], t.s1[q], t.s2[q] = 0, 0, 0
		var err error
		switch g := a.aggs[q].(type) {
		case *countAgg:
			err = g.c.addTotal(n)
		case *sumAgg:
			err = g.s.addTotal(s1)
		case *meanAgg:
			if err = g.c.addTotal(n); err == nil {
				err = g.s.addTotal(s1)
			}
		case *varAgg:
			if err = g.c.addTotal(n); err == nil {
				if err = g.s.addTotal(s1); err == nil {
					err = g.q.addTotal(s2)
				}
			}
		}
		if err == nil && a.sel != nil {
			if a.sel[q].IncrementBy(n) != nil {
				err = addErr("partition selection")
			}
			if a.nUnits[q] == 0 {
				a.present++
			}
			a.nUnits[q] += n
		}
		if err != nil {
			a.err = err
			t.touched = t.touched[:0]
			return err
		}
	}
	t.touched = t.touched[:0]
	return nil
}
