package enclave

import (
	"fmt"
	"math"

	"github.com/covedata/cove"
)

// MaxBufferedContributions bounds what AddUnits holds until Release
// (24 bytes each: 1.5 GiB at the limit).
const MaxBufferedContributions = 1 << 26

// bulkBuckets is how many buckets AddUnits spreads contributions over, by
// the top bits of the unit id. A bucket holds about 1/256 of the units, so
// its bounding state fits in cache at Release; that, not the asymptotics,
// is what makes bulk bounding several times faster than a stream of Add
// calls over millions of live units.
const bulkBuckets = 256

type contrib struct {
	unit uint64
	val  float64
	part int32
}

// bulkChunk is the capacity of a bucket's chunks: buckets grow chunk by
// chunk, never copying what they hold.
const bulkChunk = 4096

type bulkBuffer struct {
	buckets [bulkBuckets][][]contrib
	n       int
}

func (b *bulkBuffer) add(c contrib) {
	k := c.unit >> 56
	cs := b.buckets[k]
	if n := len(cs); n == 0 || len(cs[n-1]) == bulkChunk {
		cs = append(cs, make([]contrib, 0, bulkChunk))
		b.buckets[k] = cs
	}
	last := &cs[len(cs)-1]
	*last = append(*last, c)
}

// take removes bucket k and returns its contributions, chunk by chunk.
func (b *bulkBuffer) take(k int) [][]contrib {
	cs := b.buckets[k]
	b.buckets[k] = nil
	return cs
}

func chunksLen(cs [][]contrib) int {
	n := 0
	for _, c := range cs {
		n += len(c)
	}
	return n
}

// AddUnits records contributions of privacy units in bulk: contribution i
// adds values[i] (ignored for count; values may be nil then) to partition
// parts[i] on behalf of unit units[i]; a negative partition is skipped. The
// contributions are kept until Release, which bounds each unit exactly as a
// stream of Add calls would (bottom-L0 partitions, reservoir of L∞ values,
// both uniformly random), bucket by bucket. Unit ids must come from the
// host (a keyed hash of the unit columns), never from a guest.
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
		a.bulk = &bulkBuffer{}
	}
	b := a.bulk
	if b.n+len(units) > MaxBufferedContributions {
		a.err = fmt.Errorf("%w: enclave: output %q takes more than %d contributions", cove.ErrLimit, a.p.Output, MaxBufferedContributions)
		return a.err
	}
	nparts := int32(len(a.aggs))
	lower, upper := a.p.lower, a.p.upper
	for i, u := range units {
		q := parts[i]
		if q < 0 {
			continue
		}
		if q >= nparts {
			return fmt.Errorf("%w: enclave: partition index out of range [0, %d)", cove.ErrInvalid, nparts)
		}
		var v float64
		if a.p.usesValues {
			if v = values[i]; math.IsNaN(v) {
				continue
			}
			v = min(max(v, lower), upper)
		}
		b.add(contrib{unit: u, val: v, part: q})
		b.n++
	}
	return nil
}

// foldBulk bounds and folds the buffered contributions, one bucket at a
// time (units never span buckets), with the per-unit state of Add.
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
	for k := range b.buckets {
		chunks := b.take(k)
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
// the one contribution with the smallest (priority of its partition,
// random tag). The priority is the keyed hash Add samples partitions with,
// so the kept partition is uniform among those the unit touched, and the
// tag, a keyed hash of the contribution's position, makes the kept value
// uniform among the unit's contributions to it: what bottom-1 sampling and
// a reservoir of one keep. The kept contributions, one per unit, then go
// through the per-row path (addRows).
func (a *Accumulator) foldBulkSingle(b *bulkBuffer) {
	type best struct {
		unit, prio, tag uint64
		val             float64
		part            int32
	}
	var (
		table []int32
		bests []best
		parts []int32
		vals  []float64
	)
	tagKey := a.rng.Uint64()
	pos := uint64(0)
	for k := range b.buckets {
		chunks := b.take(k)
		n := chunksLen(chunks)
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
				prio := a.priority(c.unit, int(c.part))
				tag := mix64(pos ^ tagKey)
				pos++
				h := mix64(c.unit) & mask
				for {
					j := table[h]
					if j < 0 {
						table[h] = int32(len(bests))
						bests = append(bests, best{unit: c.unit, prio: prio, tag: tag, val: c.val, part: c.part})
						break
					}
					if e := &bests[j]; e.unit == c.unit {
						if prio < e.prio || (prio == e.prio && tag < e.tag) {
							e.prio, e.tag, e.val, e.part = prio, tag, c.val, c.part
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
