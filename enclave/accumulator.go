package enclave

import (
	crand "crypto/rand"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/google/differential-privacy/go/v3/dpagg"
	"github.com/google/differential-privacy/go/v3/noise"

	"github.com/covedata/cove"
)

// slot is one kept partition of one unit: the reservoir of its contributions.
type slot struct {
	prio uint64    // bottom-L0 sampling priority of (unit, part)
	part int       // index into Spec.Partitions
	seen uint64    // contributions offered to this (unit, part), kept or not
	vals []float64 // reservoir of ≤ L∞ clamped values; unused for count
}

// unitState holds one live unit's ≤ L0 slots.
type unitState struct {
	slots []slot
}

// Accumulator bounds contributions per privacy unit and feeds them to one DP
// aggregator per partition. Not safe for concurrent use.
//
// Memory is O(live units × L0 × L∞ + partitions): a unit's state is freed
// when a Seal covers it. Seal and Release cost O(log live units) per unit
// folded.
type Accumulator struct {
	p     plan
	prims []primitive
	aggs  []partAgg
	keys  []string       // partition keys, by index
	index map[string]int // key → index
	// maxKeys is MaxPartitionKeys (a field so that a test can lower it).
	maxKeys int
	linf    uint64
	l0      int
	rng     *rand.Rand
	k0, k1  uint64 // secret key of the partition-priority hash

	// Private partitions only: the selector and the number of folded units
	// of each partition, and how many partitions have at least one.
	sel     []*dpagg.PreAggSelectPartition
	nUnits  []int64
	present int64

	// How rows arrive (see AddRows and AddUnits): per row, per unit as a
	// stream (Add, AddKey), or per unit in bulk, buffered until Release.
	byRow, byUnit bool
	rows          rowTotals
	bulk          *bulkBuffer

	units    map[uint64]*unitState
	order    unitHeap // ids of live units, smallest first
	free     []*unitState
	sealed   uint64 // units < sealed are folded and may not be added again
	released bool
	err      error // first folding failure, reported by Add and Release
}

// NewAccumulator validates s and returns an empty accumulator for it.
func NewAccumulator(s Spec) (*Accumulator, error) {
	p, err := s.plan()
	if err != nil {
		return nil, err
	}
	p.Partitions = slices.Clone(s.Partitions) // the caller may reuse its slices
	p.Ranks = slices.Clone(s.Ranks)
	p.Buckets = slices.Clone(s.Buckets)
	var seed [32]byte
	crand.Read(seed[:]) // never fails (Go ≥ 1.24); see package doc on why ChaCha8 is fine here
	rng := rand.New(rand.NewChaCha8(seed))
	a := &Accumulator{
		p:       p,
		prims:   p.primitives(),
		index:   make(map[string]int, len(p.Partitions)),
		maxKeys: MaxPartitionKeys,
		linf:    uint64(s.MaxContributions),
		l0:      s.MaxPartitions,
		rng:     rng,
		k0:      rng.Uint64(),
		k1:      rng.Uint64(),
		units:   make(map[uint64]*unitState),
	}
	for _, k := range p.Partitions {
		if _, err := a.newPartition(k); err != nil {
			return nil, err
		}
	}
	return a, nil
}

func (a *Accumulator) newPartition(key string) (int, error) {
	agg, err := newPartAgg(&a.p, a.prims, len(a.aggs) == 0)
	if err != nil {
		return 0, err
	}
	if a.p.PrivatePartitions {
		sel, err := dpagg.NewPreAggSelectPartition(&dpagg.PreAggSelectPartitionOptions{
			Epsilon: a.p.selEps, Delta: a.p.selDelta, MaxPartitionsContributed: int64(a.p.MaxPartitions),
		})
		if err != nil {
			return 0, privacyErr("partition selection", err)
		}
		a.sel = append(a.sel, sel)
		a.nUnits = append(a.nUnits, 0)
	}
	i := len(a.keys)
	a.aggs = append(a.aggs, agg)
	a.keys = append(a.keys, key)
	a.index[key] = i
	return i, nil
}

// Partition returns the index of the partition called key, for Add. With
// public partitions it is the key's index in Spec.Partitions, or -1 when the
// key is not declared (its contributions must be dropped: releasing or
// reporting them would reveal data). With private partitions the key is
// registered on first sight (invalid UTF-8 replaced by U+FFFD); more than
// MaxPartitionKeys distinct keys is an error wrapping cove.ErrLimit, which
// the caller must treat like a guest failure (see the package doc).
func (a *Accumulator) Partition(key string) (int, error) {
	if a.released {
		return 0, fmt.Errorf("%w: enclave: Partition after Release", cove.ErrInvalid)
	}
	if i, ok := a.index[key]; ok {
		return i, nil
	}
	if !a.p.PrivatePartitions {
		return -1, nil
	}
	if !utf8.ValidString(key) {
		key = strings.ToValidUTF8(key, "\uFFFD")
		if i, ok := a.index[key]; ok {
			return i, nil
		}
	}
	if len(a.keys) >= a.maxKeys {
		return 0, fmt.Errorf("%w: enclave: output %q has more than %d distinct partition keys", cove.ErrLimit, a.p.Output, a.maxKeys)
	}
	return a.newPartition(strings.Clone(key))
}

// AddKey records one contribution of unit to the partition called key:
// Partition then Add. A key outside the public partitions is dropped
// silently (nil error).
func (a *Accumulator) AddKey(unit uint64, key string, value float64) error {
	i, err := a.Partition(key)
	if err != nil || i < 0 {
		return err
	}
	return a.Add(unit, i, value)
}

// Add records one contribution of privacy unit `unit` to partition index
// `partition` (into Spec.Partitions, or as returned by Partition). For all
// aggregates but count, value is clamped to the effective bounds (see
// Release.Lower) and a NaN value is dropped; for count it is ignored.
//
// Errors wrap cove.ErrInvalid (partition out of range, unit below the sealed
// mark, accumulator released) or cove.ErrPrivacy (an earlier fold failed).
// They never quote the contribution.
func (a *Accumulator) Add(unit uint64, partition int, value float64) error {
	if a.released {
		return fmt.Errorf("%w: enclave: Add after Release", cove.ErrInvalid)
	}
	if a.err != nil {
		return a.err
	}
	if partition < 0 || partition >= len(a.aggs) {
		return fmt.Errorf("%w: enclave: partition index out of range [0, %d)", cove.ErrInvalid, len(a.aggs))
	}
	if unit < a.sealed {
		return fmt.Errorf("%w: enclave: unit is below the sealed mark", cove.ErrInvalid)
	}
	if a.byRow || a.bulk != nil {
		return fmt.Errorf("%w: enclave: Add on an accumulator that takes rows or bulk contributions", cove.ErrInvalid)
	}
	a.byUnit = true
	if a.p.usesValues {
		if math.IsNaN(value) {
			return nil
		}
		value = min(max(value, a.p.lower), a.p.upper)
	}

	u := a.units[unit]
	if u == nil {
		u = a.newUnit()
		a.units[unit] = u
		a.order.push(unit)
	}
	a.offer(u, unit, partition, value)
	return nil
}

// offer is one contribution (its value clamped) of unit, whose state is u:
// bottom-L0 sampling of its partitions, reservoir sampling of L∞ values.
func (a *Accumulator) offer(u *unitState, unit uint64, partition int, value float64) {
	var s *slot
	for i := range u.slots {
		if u.slots[i].part == partition {
			s = &u.slots[i]
			break
		}
	}
	if s == nil {
		if s = a.admit(u, unit, partition); s == nil {
			return // partition not among this unit's sampled L0
		}
	}
	s.seen++
	if !a.p.usesValues {
		return
	}
	// Reservoir sampling (Algorithm R): after n offers each is kept with
	// probability L∞/n, independently of arrival order.
	if uint64(len(s.vals)) < a.linf {
		s.vals = append(s.vals, value)
	} else if j := a.rng.Uint64N(s.seen); j < a.linf {
		s.vals[j] = value
	}
}

// admit decides whether partition enters unit u's sample. Bottom-L0 sampling:
// a unit keeps the L0 partitions with the smallest keyed-hash priority among
// all it has touched, a uniformly random L0-subset. The priority is a
// function of (unit, partition), so a partition once refused or evicted can
// never come back (the L0-th smallest priority only decreases), and nothing
// about refused partitions needs remembering.
func (a *Accumulator) admit(u *unitState, unit uint64, partition int) *slot {
	p := a.priority(unit, partition)
	if len(u.slots) < a.l0 {
		n := len(u.slots)
		if n < cap(u.slots) {
			u.slots = u.slots[:n+1]
		} else {
			u.slots = append(u.slots, slot{})
		}
		s := &u.slots[n]
		*s = slot{prio: p, part: partition, vals: s.vals[:0]}
		return s
	}
	worst := 0
	for i := 1; i < len(u.slots); i++ {
		if u.slots[i].prio > u.slots[worst].prio {
			worst = i
		}
	}
	if p >= u.slots[worst].prio {
		return nil
	}
	s := &u.slots[worst] // evicted: its contributions are dropped
	*s = slot{prio: p, part: partition, vals: s.vals[:0]}
	return s
}

// priority is a keyed 64-bit mix of (unit, partition). The key is secret to
// this accumulator, so the guest cannot aim for low priorities.
func (a *Accumulator) priority(unit uint64, partition int) uint64 {
	return mix64(mix64(unit^a.k0) ^ (uint64(partition) + a.k1))
}

// mix64 is the SplitMix64 finalizer: a bijection with full avalanche.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func (a *Accumulator) newUnit() *unitState {
	if n := len(a.free); n > 0 {
		u := a.free[n-1]
		a.free = a.free[:n-1]
		return u
	}
	return &unitState{}
}

// Seal declares that no unit < below will be added again: their contributions
// are bounded and folded into the DP aggregators now, freeing memory. Add of a
// unit < the sealed mark is an error (it would break the bound). A mark lower
// than the current one, or a Seal after Release, does nothing.
func (a *Accumulator) Seal(below uint64) {
	if a.released || below <= a.sealed {
		return
	}
	a.sealed = below
	a.foldBelow(below, false)
}

// foldBelow folds every live unit < below (all of them when all is set).
func (a *Accumulator) foldBelow(below uint64, all bool) {
	for len(a.order) > 0 && (all || a.order[0] < below) {
		id := a.order.pop()
		u := a.units[id]
		delete(a.units, id)
		if a.err == nil {
			for i := range u.slots {
				s := &u.slots[i]
				if err := a.fold(s); err != nil {
					a.err = err
					break
				}
			}
		}
		u.slots = u.slots[:0]
		a.free = append(a.free, u)
	}
}

// fold hands one unit's bounded contributions to a partition to its
// aggregator and, with private partitions, to its selector.
func (a *Accumulator) fold(s *slot) error {
	if err := a.aggs[s.part].fold(s); err != nil {
		return err
	}
	if a.sel != nil {
		if a.sel[s.part].Increment() != nil {
			return addErr("partition selection")
		}
		if a.nUnits[s.part]++; a.nUnits[s.part] == 1 {
			a.present++
		}
	}
	return nil
}

// Release bounds what is left, draws noise once and returns the release. A
// second call is an error. The accumulator is spent even when Release fails:
// noise may have been drawn, and drawing again would let it be averaged away.
func (a *Accumulator) Release() (*Release, error) {
	if a.released {
		return nil, fmt.Errorf("%w: enclave: Release called twice", cove.ErrInvalid)
	}
	a.released = true
	a.foldBelow(0, true)
	a.foldBulk()
	a.units, a.order, a.free = nil, nil, nil
	if a.err != nil {
		return nil, a.err
	}
	p := &a.p
	r := &Release{
		Output:            p.Output,
		Aggregate:         p.Aggregate,
		Mechanism:         p.Mechanism,
		Epsilon:           p.Epsilon,
		Delta:             p.Delta,
		MaxPartitions:     p.MaxPartitions,
		MaxContributions:  p.MaxContributions,
		Granularity:       p.gran,
		PrivatePartitions: p.PrivatePartitions,
	}
	if p.usesValues {
		r.Lower, r.Upper = p.lower, p.upper
	}
	for _, pr := range a.prims {
		n := Noise{Primitive: pr.name, Mechanism: MechanismLaplace, Epsilon: pr.eps, Delta: pr.delta,
			L0: pr.l0, LInf: pr.linf, Unit: pr.unit, Scale: pr.scale, StdDev: pr.sd}
		switch {
		case pr.selector:
			n.Mechanism, n.Scale, n.StdDev = "partition_selection", 0, 0
		case pr.gaussian:
			n.Mechanism = MechanismGaussian
		}
		r.Noise = append(r.Noise, n)
	}

	order := make([]int, len(a.keys))
	for i := range order {
		order[i] = i
	}
	if p.PrivatePartitions {
		// Key order: arrival order is data.
		slices.SortFunc(order, func(i, j int) int { return strings.Compare(a.keys[i], a.keys[j]) })
	}
	var kept int64
	r.Rows = []Row{}
	for _, i := range order {
		if p.PrivatePartitions {
			keep, err := a.sel[i].ShouldKeepPartition()
			if err != nil {
				return nil, privacyErr("partition selection", err)
			}
			if !keep {
				continue
			}
			kept++
		}
		rows, err := a.aggs[i].rows()
		if err != nil {
			return nil, fmt.Errorf("partition %q: %w", a.keys[i], err)
		}
		for _, row := range rows {
			if !finite(row.Value, row.NoiseStdDev, row.CILow, row.CIHigh) {
				return nil, fmt.Errorf("%w: enclave: partition %q: the library produced a non-finite result", cove.ErrPrivacy, a.keys[i])
			}
			row.Key = a.keys[i]
			r.Rows = append(r.Rows, row)
		}
	}
	if p.PrivatePartitions {
		sup, sd, err := a.suppressed(kept)
		if err != nil {
			return nil, err
		}
		r.Suppressed, r.SuppressedNoiseStdDev = sup, sd
	}
	a.aggs, a.sel = nil, nil
	return r, nil
}

// suppressed is the noisy number of partitions present in the bounded data
// but not kept: a Laplace count of present partitions (a unit makes at most
// L0 of them present) minus the kept ones, clamped at 0.
func (a *Accumulator) suppressed(kept int64) (int64, float64, error) {
	pr := a.prims[len(a.prims)-1] // suppressed_count, last by construction
	c, err := dpagg.NewCount(&dpagg.CountOptions{Epsilon: pr.eps, MaxPartitionsContributed: pr.l0, Noise: noise.Laplace()})
	if err != nil {
		return 0, 0, privacyErr("suppressed count", err)
	}
	if c.IncrementBy(a.present) != nil {
		return 0, 0, addErr("suppressed count")
	}
	n, err := c.Result()
	if err != nil {
		return 0, 0, privacyErr("suppressed count", err)
	}
	return max(n-kept, 0), pr.sd, nil
}

func finite(xs ...float64) bool {
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}

// unitHeap is a binary min-heap of unit ids.
type unitHeap []uint64

func (h *unitHeap) push(x uint64) {
	*h = append(*h, x)
	q := *h
	i := len(q) - 1
	for i > 0 {
		p := (i - 1) / 2
		if q[p] <= q[i] {
			break
		}
		q[p], q[i] = q[i], q[p]
		i = p
	}
}

func (h *unitHeap) pop() uint64 {
	q := *h
	top := q[0]
	n := len(q) - 1
	q[0] = q[n]
	q = q[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && q[r] < q[l] {
			m = r
		}
		if q[i] <= q[m] {
			break
		}
		q[i], q[m] = q[m], q[i]
		i = m
	}
	*h = q
	return top
}
