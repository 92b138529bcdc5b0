package enclave

import (
	"fmt"
	"math"

	"github.com/covedata/cove"
)

// MaxBufferedContributions bounds what AddUnits holds until Release (24 to
// 40 bytes each: at most 1.25 GiB at the limit).
const MaxBufferedContributions = 1 << 25

// bulkBuckets is how many buckets AddUnits spreads contributions over, by
// the top bits of the unit id. A bucket holds about 1/256 of the units, so
// its bounding state fits in cache at Release; that, not the asymptotics,
// is what makes bulk bounding several times faster than a stream of Add
// calls over millions of live units.
const bulkBuckets = 256

// bulkChunk is the largest capacity of a bucket's chunks: buckets grow
// chunk by chunk (from 64 entries, doubling), never copying what they hold.
const bulkChunk = 4096

// contrib is one buffered contribution (any L0, L∞).
type contrib struct {
	unit uint64
	val  float64
	part int32
}

// single is, for L0 = L∞ = 1, the best contribution of a unit in one run of
// its consecutive contributions: the one with the smallest (priority of
// its partition, tag), the key Release keeps the smallest of per unit.
type single struct {
	unit, prio, tag uint64
	val             float64
	part            int32
}

// buckets holds buffered entries by the top 8 bits of their unit id.
type buckets[T any] struct {
	b [bulkBuckets][][]T
}

func (bs *buckets[T]) add(unit uint64, e T) {
	k := unit >> 56
	cs := bs.b[k]
	if n := len(cs); n == 0 || len(cs[n-1]) == cap(cs[n-1]) {
		size := 64
		if n > 0 {
			size = min(2*cap(cs[n-1]), bulkChunk)
		}
		cs = append(cs, make([]T, 0, size))
		bs.b[k] = cs
	}
	last := &cs[len(cs)-1]
	*last = append(*last, e)
}

// take removes bucket k and returns its entries, chunk by chunk, and how
// many there are.
func (bs *buckets[T]) take(k int) ([][]T, int) {
	cs := bs.b[k]
	bs.b[k] = nil
	n := 0
	for _, c := range cs {
		n += len(c)
	}
	return cs, n
}

type bulkBuffer struct {
	all    buckets[contrib] // any L0, L∞
	single buckets[single]  // L0 = L∞ = 1
	n      int
	// pos numbers the contributions offered, for their tags; tagKey keys
	// the tags.
	pos, tagKey uint64
}

// AddUnits records contributions of privacy units in bulk: contribution i
// adds values[i] (ignored for count; values may be nil then) to partition
// parts[i] on behalf of unit units[i]; a negative partition is skipped. The
// contributions are kept until Release, which bounds each unit exactly as a
// stream of Add calls would (bottom-L0 partitions, reservoir of L∞ values,
// both uniformly random), bucket by bucket. Unit ids must come from the
// host (a keyed hash of the unit columns), never from a guest.
//
// With L0 = L∞ = 1 a unit keeps one contribution, the one of least keyed
// (partition priority, tag): a run of one unit's consecutive contributions
// is reduced to its least here, so that data laid out by unit (a person's
// rows together) buffers one entry per run, not per row.
//
// An accumulator takes AddUnits calls only, or no AddUnits call. Errors
// wrap cove.ErrInvalid (lengths, partition out of range, mixing, after
// Release) or cove.ErrLimit (more than MaxBufferedContributions).
func (a *Accumulator) AddUnits(units []uint64, parts []int32, values []float64) error {
	switch {
	case a.released:
		return fmt.Errorf("%w: enclave: AddUnits after Release", cove.ErrInvalid)
	case a.err != nil:
		return a.err
	case a.byRow || (a.byUnit && a.bulk == nil):
		return fmt.Errorf("%w: enclave: AddUnits on an accumulator that takes rows or a stream of units", cove.ErrInvalid)
	case len(parts) != len(units) || (a.p.usesValues && len(values) != len(units)):
		return fmt.Errorf("%w: enclave: AddUnits with %d units, %d partitions and %d values", cove.ErrInvalid, len(units), len(parts), len(values))
	}
	a.byUnit = true
	if a.bulk == nil {
		a.bulk = &bulkBuffer{tagKey: a.rng.Uint64()}
	}
	b := a.bulk
	if b.n+len(units) > MaxBufferedContributions {
		a.err = fmt.Errorf("%w: enclave: output %q takes more than %d contributions", cove.ErrLimit, a.p.Output, MaxBufferedContributions)
		return a.err
	}
	nparts := int32(len(a.aggs))
	for _, q := range parts {
		if q >= nparts {
			return fmt.Errorf("%w: enclave: partition index out of range [0, %d)", cove.ErrInvalid, nparts)
		}
	}
	lower, upper, uses := a.p.lower, a.p.upper, a.p.usesValues
	if a.l0 != 1 || a.linf != 1 {
		for i, u := range units {
			q := parts[i]
			if q < 0 {
				continue
			}
			var v float64
			if uses {
				if v = values[i]; math.IsNaN(v) {
					continue
				}
				v = min(max(v, lower), upper)
			}
			b.all.add(u, contrib{unit: u, val: v, part: q})
			b.n++
		}
		return nil
	}
	for i := 0; i < len(units); {
		u := units[i]
		best := single{unit: u, prio: math.MaxUint64, tag: math.MaxUint64, part: -1}
		lastQ, lastP := int32(-1), uint64(0) // a run's rows are mostly in one partition
		for ; i < len(units) && units[i] == u; i++ {
			q := parts[i]
			tag := mix64(b.pos ^ b.tagKey)
			b.pos++
			if q < 0 {
				continue
			}
			var v float64
			if uses {
				if v = values[i]; math.IsNaN(v) {
					continue
				}
			}
			if q != lastQ {
				lastQ, lastP = q, a.priority(u, int(q))
			}
			if p := lastP; p < best.prio || (p == best.prio && tag < best.tag) {
				best.prio, best.tag, best.val, best.part = p, tag, v, q
			}
		}
		if best.part >= 0 {
			best.val = min(max(best.val, lower), upper)
			b.single.add(u, best)
			b.n++
		}
	}
	return nil
}

// foldBulk bounds and folds the buffered contributions, one bucket at a
// time (units never span buckets).
func (a *Accumulator) foldBulk() {
	b := a.bulk
	if b == nil {
		return
	}
	a.bulk = nil
	if a.l0 == 1 && a.linf == 1 {
		a.foldBulkSingle(b)
		return
	}
	live := make(map[uint64]*unitState)
	for k := range bulkBuckets {
		chunks, _ := b.all.take(k)
		if a.err != nil {
			continue
		}
		for _, cs := range chunks {
			for i := range cs {
				c := &cs[i]
				u := live[c.unit]
				if u == nil {
					u = a.newUnit()
					live[c.unit] = u
				}
				a.offer(u, c.unit, int(c.part), c.val)
			}
		}
		for id, u := range live {
			for i := range u.slots {
				if a.err != nil {
					break
				}
				if err := a.fold(&u.slots[i]); err != nil {
					a.err = err
				}
			}
			u.slots = u.slots[:0]
			a.free = append(a.free, u)
			delete(live, id)
		}
	}
}

// foldBulkSingle is foldBulk for L0 = L∞ = 1, the common case: a unit keeps
// the one contribution with the smallest (priority of its partition, tag).
// The priority is the keyed hash Add samples partitions with, so the kept
// partition is uniform among those the unit touched, and the tag, a keyed
// hash of the contribution's position, makes the kept value uniform among
// the unit's contributions to it: what bottom-1 sampling and a reservoir of
// one keep. The kept contributions, one per unit, then go through the
// per-row path (addRows).
func (a *Accumulator) foldBulkSingle(b *bulkBuffer) {
	var (
		table []int32
		bests []single
		parts []int32
		vals  []float64
	)
	for k := range bulkBuckets {
		chunks, n := b.single.take(k)
		if a.err != nil || n == 0 {
			continue
		}
		size := 1
		for size < 2*n {
			size <<= 1
		}
		if cap(table) < size {
			table = make([]int32, size)
		}
		table = table[:size]
		for i := range table {
			table[i] = -1
		}
		mask := uint64(size - 1)
		bests = bests[:0]
		for _, cs := range chunks {
			for i := range cs {
				c := &cs[i]
				h := mix64(c.unit) & mask
				for {
					j := table[h]
					if j < 0 {
						table[h] = int32(len(bests))
						bests = append(bests, *c)
						break
					}
					if e := &bests[j]; e.unit == c.unit {
						if c.prio < e.prio || (c.prio == e.prio && c.tag < e.tag) {
							*e = *c
						}
						break
					}
					h = (h + 1) & mask
				}
			}
		}
		parts, vals = parts[:0], vals[:0]
		for i := range bests {
			parts = append(parts, bests[i].part)
			vals = append(vals, bests[i].val)
		}
		var vs []float64
		if a.p.usesValues {
			vs = vals
		}
		if err := a.addRows(parts, vs); err != nil {
			a.err = err
		}
	}
}
