package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/covedata/cove"
	"github.com/covedata/cove/plan"
	"github.com/covedata/cove/runtime/wasm"
	"github.com/covedata/cove/store"
)

// planMode evaluates a plan natively, vectorized over the batches: no
// guest sees the data. A row contributes at most once per output, so rows
// that are their own units go to the sink as rows (clamping is the whole
// bounding), other units in bulk.
type planMode struct {
	plan *plan.Plan
}

func (pm planMode) run(ctx context.Context, x *pass, s sink) error {
	rd, err := x.open(ctx, pm.plan.Columns())
	if err != nil {
		return err
	}
	defer rd.Release()
	ev := pm.plan.NewEvaluator()
	var remap, parts []int32
	var first int64
	for rd.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec := rd.RecordBatch()
		n := int(rec.NumRows())
		outs, err := ev.Batch(rec)
		if err != nil {
			return err
		}
		var ids []uint64
		if !x.perRow {
			if ids, err = x.ids(rec, first); err != nil {
				return err
			}
		}
		for o, ob := range outs {
			ps := ob.Part
			if ob.Keys != nil {
				// Private partitions: the batch's keys, registered with the
				// sink, and each row's key index mapped to its partition.
				remap = remap[:0]
				for _, k := range ob.Keys {
					p, err := s.partition(o, k)
					if err != nil {
						return err
					}
					remap = append(remap, int32(p))
				}
				parts = slices.Grow(parts[:0], n)[:n]
				for i, k := range ps {
					parts[i] = -1
					if k >= 0 {
						parts[i] = remap[k]
					}
				}
				ps = parts
			}
			if x.perRow {
				err = s.rows(o, first, ps, ob.Value)
			} else {
				err = s.units(o, ids, ps, ob.Value)
			}
			if err != nil {
				return err
			}
		}
		x.batch(n)
		first += int64(n)
	}
	return rd.Err()
}

// unitMode calls the guest once per privacy unit with that unit's rows, from
// the same snapshot each time (runtime/wasm GroupInstance). A unit whose
// call fails contributes nothing and is counted.
type unitMode struct {
	cfg wasm.GroupConfig
}

// blockMode splits the units into k blocks by a keyed hash with a per-job
// secret, calls the guest once per block from the same snapshot, and takes
// a vector per block output.
type blockMode struct {
	cfg    wasm.GroupConfig
	blocks int
}

// groupsInstance starts the job's guest for per-unit or block calls.
func (x *pass) groupsInstance(ctx context.Context, cfg wasm.GroupConfig) (wasm.GroupInstance, func(), error) {
	mod, done, err := x.r.modules.get(ctx, x.r.engine, x.job.ModuleSHA256, x.module)
	if err != nil {
		return nil, nil, err
	}
	inst, err := mod.InstantiateGroups(wasm.WithScope(ctx, guestScope(x.job, x.m)), x.m.OutputNames(), cfg)
	if err != nil {
		done()
		return nil, nil, err
	}
	return inst, func() { inst.Close(context.WithoutCancel(ctx)); done() }, nil
}

// groupSink adapts a sink to the runtime's per-group results: group g of a
// call is unit base+g (per-unit mode) or block blocks[g] (block mode), its
// rows are table rows rows[...] of the call's record.
type groupSink struct {
	s       sink
	inst    wasm.GroupInstance
	base    uint64
	rows    []int64 // table row of each row of the call's record
	blocks  []int   // block mode: block of each group
	keyPart []map[uint32]int
}

func newGroupSink(s sink, inst wasm.GroupInstance, outputs int) *groupSink {
	g := &groupSink{s: s, inst: inst, keyPart: make([]map[uint32]int, outputs)}
	for o := range g.keyPart {
		g.keyPart[o] = map[uint32]int{}
	}
	return g
}

func (g *groupSink) Emit(group int, e wasm.Emission) error {
	cache := g.keyPart[e.Output]
	for j, row := range e.Rows {
		if int(row) >= len(g.rows) {
			return fmt.Errorf("%w: a contribution to output %d names a row the host did not give", cove.ErrInvalid, e.Output)
		}
		p, ok := cache[e.Keys[j]]
		if !ok {
			var err error
			if p, err = g.s.partition(e.Output, g.inst.KeyName(e.Keys[j])); err != nil {
				return err
			}
			cache[e.Keys[j]] = p
		}
		if p < 0 {
			continue // outside the public partitions: dropped, unreported
		}
		if err := g.s.unit(e.Output, g.base+uint64(group), g.rows[row], p, e.Values[j]); err != nil {
			return err
		}
	}
	return nil
}

func (g *groupSink) Vector(group, o int, v []float64) error { return g.s.vector(o, g.blocks[group], v) }

func (g *groupSink) Failed(int) error { g.s.failed(); return nil }

// maxChunkRows bounds the rows of one call of RunGroups (several units or
// blocks), and maxGroupRows the rows one unit or block may have: a larger
// one fails, counted like any failed unit (its own size decides it).
const (
	maxChunkRows = 1 << 16
	maxGroupRows = 1 << 22
)

func (um unitMode) run(ctx context.Context, x *pass, s sink) error {
	inst, done, err := x.groupsInstance(ctx, um.cfg)
	if err != nil {
		return err
	}
	defer done()
	gs := newGroupSink(s, inst, len(x.m.lit.Outputs))
	if x.perRow {
		// Every row is a unit: stream, one group per row.
		rd, err := x.open(ctx, x.m.lit.Columns)
		if err != nil {
			return err
		}
		defer rd.Release()
		var first int64
		var bounds []uint32
		for rd.Next() {
			rec := rd.RecordBatch()
			n := int(rec.NumRows())
			bounds = bounds[:0]
			gs.rows = gs.rows[:0]
			for i := range n + 1 {
				bounds = append(bounds, uint32(i))
			}
			for i := range n {
				gs.rows = append(gs.rows, first+int64(i))
			}
			gs.base = uint64(first)
			g := project(rec, len(x.m.lit.Columns))
			err := x.call(func() error { return inst.RunGroups(ctx, g, bounds, gs) })
			g.Release()
			if err != nil {
				return err
			}
			x.batch(n)
			first += int64(n)
			s.seal(uint64(first))
		}
		return rd.Err()
	}
	all, err := x.gather(ctx, true)
	if err != nil {
		return err
	}
	defer all.release()
	order := all.byUnit()
	// Consecutive units, whole, up to maxChunkRows per call.
	var unit uint64
	return all.chunks(order, func(i int) uint64 { return all.ids[order[i]] }, func(rec arrow.RecordBatch, rows []int64, bounds []uint32) error {
		gs.base, gs.rows = unit, rows
		err := x.call(func() error { return inst.RunGroups(ctx, rec, bounds, gs) })
		unit += uint64(len(bounds) - 1)
		s.seal(unit)
		return err
	}, func() { s.failed(); unit++ })
}

func (bm blockMode) run(ctx context.Context, x *pass, s sink) error {
	inst, done, err := x.groupsInstance(ctx, bm.cfg)
	if err != nil {
		return err
	}
	defer done()
	gs := newGroupSink(s, inst, len(x.m.lit.Outputs))
	all, err := x.gather(ctx, false)
	if err != nil {
		return err
	}
	defer all.release()
	// The block of a unit: a keyed hash of its id with a secret drawn for
	// this job (the unit ids are keyed hashes already; the second key keeps
	// the split independent of anything else the job reveals).
	key := mix64(x.hasher.k1 ^ 0x9e3779b97f4a7c15)
	block := make([]uint32, len(all.ids))
	for i, id := range all.ids {
		block[i] = uint32((mix64(id^key) >> 1) % uint64(bm.blocks))
	}
	if len(block) == 0 {
		return nil
	}
	// Each row's place in block order (a stable counting sort), the columns
	// scattered there in one pass, then the blocks as slices of them.
	start := make([]int, bm.blocks+1)
	for _, b := range block {
		start[b+1]++
	}
	for b := 1; b <= bm.blocks; b++ {
		start[b] += start[b-1]
	}
	dest := make([]uint32, len(block))
	next := slices.Clone(start)
	for i, b := range block {
		dest[i] = uint32(next[b])
		next[b]++
	}
	gat, err := newGatherer(all.parts)
	if err != nil {
		return err
	}
	cols, err := gat.scatter(x.r.cfg.alloc, dest)
	if err != nil {
		return err
	}
	all.release() // the batches as read: all is in cols now
	all.ids, block, dest = nil, nil, nil
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	// Calls of whole blocks, up to maxChunkRows rows each (or one larger
	// block); a block past maxGroupRows fails without a call.
	var bounds []uint32
	from := 0 // first block of the call
	run := func(to int) error {
		if to == from {
			return nil
		}
		lo, hi := start[from], start[to]
		// One group per block with rows: an empty block gets no call and
		// counts as its output's default. Block outputs take no rows.
		bounds, gs.blocks, gs.rows = append(bounds[:0], 0), gs.blocks[:0], nil
		for b := from; b < to; b++ {
			if start[b+1] > start[b] {
				bounds = append(bounds, uint32(start[b+1]-lo))
				gs.blocks = append(gs.blocks, b)
			}
		}
		if len(gs.blocks) == 0 {
			return nil
		}
		sliced := make([]arrow.Array, len(cols))
		for c, a := range cols {
			sliced[c] = array.NewSlice(a, int64(lo), int64(hi))
		}
		rec := array.NewRecordBatch(all.sch, sliced, int64(hi-lo))
		for _, a := range sliced {
			a.Release()
		}
		defer rec.Release()
		return x.call(func() error { return inst.RunGroups(ctx, rec, bounds, gs) })
	}
	for b := 0; b < bm.blocks; b++ {
		size := start[b+1] - start[b]
		switch {
		case size > maxGroupRows:
			if err := run(b); err != nil {
				return err
			}
			s.failed()
			from = b + 1
		case start[b+1]-start[from] > maxChunkRows && b > from:
			if err := run(b); err != nil {
				return err
			}
			from = b
		}
	}
	return run(bm.blocks)
}

// gathered is a dataset read whole for per-unit or block calls: the guest's
// columns as the batches came (parts[c][b]), where each gathered row is
// (batch<<32 | row), and each row's unit id.
type gathered struct {
	x     *pass
	parts [][]arrow.Array
	sch   *arrow.Schema // of the gathered records (dictionaries as utf8)
	where []uint64
	ids   []uint64
}

// maxGatherBytes bounds what per-unit and block modes hold in memory.
const maxGatherBytes = 4 << 30

// gather reads the dataset whole; with where it also records each row's
// (batch, row), which per-unit calls gather rows by (block calls scatter
// the columns in batch order and need none).
func (x *pass) gather(ctx context.Context, where bool) (*gathered, error) {
	rd, err := x.open(ctx, x.m.lit.Columns)
	if err != nil {
		return nil, err
	}
	defer rd.Release()
	ncol := len(x.m.lit.Columns)
	g := &gathered{x: x, parts: make([][]arrow.Array, ncol)}
	if n := x.d.Rows; n > 0 && n < 1<<32 {
		g.ids = make([]uint64, 0, n)
		if where {
			g.where = make([]uint64, 0, n)
		}
	}
	var size int64
	var first int64
	for b := uint64(0); rd.Next(); b++ {
		rec := rd.RecordBatch()
		n := int(rec.NumRows())
		ids, err := x.ids(rec, first)
		if err != nil {
			g.release()
			return nil, err
		}
		g.ids = append(g.ids, ids...)
		if where {
			for r := range n {
				g.where = append(g.where, b<<32|uint64(r))
			}
		}
		for c := range ncol {
			a := rec.Column(c)
			a.Retain()
			g.parts[c] = append(g.parts[c], a)
			for _, buf := range a.Data().Buffers() {
				if buf != nil {
					size += int64(buf.Len())
				}
			}
		}
		size += int64(n) * 16 // ids and where
		if g.sch == nil {
			fields := slices.Clone(rec.Schema().Fields()[:ncol])
			for i := range fields {
				fields[i].Type = gatheredType(fields[i].Type)
			}
			g.sch = arrow.NewSchema(fields, nil)
		}
		if size > maxGatherBytes {
			g.release()
			return nil, fmt.Errorf("%w: mode %s holds the dataset in memory: more than %d bytes", cove.ErrLimit, x.m.lit.Mode, int64(maxGatherBytes))
		}
		x.batch(n)
		first += int64(n)
	}
	if err := rd.Err(); err != nil {
		g.release()
		return nil, err
	}
	return g, nil
}

func (g *gathered) release() {
	for _, ps := range g.parts {
		for _, a := range ps {
			a.Release()
		}
	}
	g.parts = nil
}

// byUnit orders the gathered rows by unit id, stably (LSD radix sort).
func (g *gathered) byUnit() []uint32 {
	n := len(g.ids)
	order := make([]uint32, n)
	for i := range order {
		order[i] = uint32(i)
	}
	tmp := make([]uint32, n)
	var count [1 << 16]int
	for shift := 0; shift < 64; shift += 16 {
		clear(count[:])
		for _, i := range order {
			count[(g.ids[i]>>shift)&0xffff]++
		}
		sum := 0
		for d, c := range count {
			count[d] = sum
			sum += c
		}
		for _, i := range order {
			d := (g.ids[i] >> shift) & 0xffff
			tmp[count[d]] = i
			count[d]++
		}
		order, tmp = tmp, order
	}
	return order
}

// chunks walks the rows in order, grouped by key (equal for a group's
// rows, which are consecutive in order: key(i) is the group of order[i]),
// and calls run with records of whole groups (up to maxChunkRows rows, or
// one larger group), the gathered row of each of their rows and the group
// bounds. A group past maxGroupRows is not run: tooBig is called for it.
func (g *gathered) chunks(order []uint32, key func(i int) uint64, run func(rec arrow.RecordBatch, rows []int64, bounds []uint32) error, tooBig func()) error {
	n := len(order)
	if n == 0 {
		return nil
	}
	var bounds []uint32
	var rows []int64
	gat, err := newGatherer(g.parts)
	if err != nil {
		return err
	}
	flush := func(from, to int) error {
		if to == from {
			return nil
		}
		cols, err := gat.gather(g.where, order[from:to])
		if err != nil {
			return err
		}
		defer func() {
			for _, c := range cols {
				c.Release()
			}
		}()
		rec := array.NewRecordBatch(g.sch, cols, int64(to-from))
		defer rec.Release()
		rows = rows[:0]
		for _, i := range order[from:to] {
			rows = append(rows, int64(i))
		}
		return run(rec, rows, bounds)
	}
	start := 0 // first row of the current chunk
	bounds = append(bounds[:0], 0)
	for i := 0; i < n; {
		j := i + 1
		for j < n && key(j) == key(i) {
			j++
		}
		size := j - i
		switch {
		case size > maxGroupRows:
			// Run what is pending, skip this group.
			if err := flush(start, i); err != nil {
				return err
			}
			tooBig()
			start, bounds = j, append(bounds[:0], 0)
		case i-start+size > maxChunkRows && i > start:
			if err := flush(start, i); err != nil {
				return err
			}
			start, bounds = i, append(bounds[:0], 0, uint32(size))
		default:
			bounds = append(bounds, uint32(j-start))
		}
		i = j
	}
	return flush(start, n)
}

// batchMode hands whole batches to the guest: the guest may read one
// unit's rows and emit on behalf of another, so it runs on mock data only.
type batchMode struct{}

func (batchMode) run(ctx context.Context, x *pass, s sink) error {
	if !x.r.cfg.mock {
		return fmt.Errorf("%w: mode batch runs on mock data only: on real data use mode plan, unit or block", cove.ErrOutOfScope)
	}
	mod, done, err := x.r.modules.get(ctx, x.r.engine, x.job.ModuleSHA256, x.module)
	if err != nil {
		return err
	}
	defer done()
	inst, err := mod.Instantiate(wasm.WithScope(ctx, guestScope(x.job, x.m)), x.m.OutputNames())
	if err != nil {
		return err
	}
	defer inst.Close(context.WithoutCancel(ctx))
	rd, err := x.open(ctx, x.m.lit.Columns)
	if err != nil {
		return err
	}
	defer rd.Release()
	keyPart := make([]map[uint32]int, len(x.m.lit.Outputs))
	for o := range keyPart {
		keyPart[o] = map[uint32]int{}
	}
	var first int64
	var us []uint64
	var ps []int32
	var vs []float64
	for rd.Next() {
		rec := rd.RecordBatch()
		n := int(rec.NumRows())
		ids, err := x.ids(rec, first)
		if err != nil {
			return err
		}
		emit := func(e wasm.Emission) error {
			us, ps, vs = us[:0], ps[:0], vs[:0]
			cache := keyPart[e.Output]
			err := e.Each(func(row, key uint32, v float64) error {
				p, ok := cache[key]
				if !ok {
					var err error
					if p, err = s.partition(e.Output, inst.KeyName(key)); err != nil {
						return err
					}
					cache[key] = p
				}
				us, ps, vs = append(us, ids[row]), append(ps, int32(p)), append(vs, v)
				return nil
			})
			if err != nil {
				return err
			}
			return s.units(e.Output, us, ps, vs)
		}
		g := project(rec, len(x.m.lit.Columns))
		err = x.call(func() error { return inst.ProcessBatchRuns(ctx, g, emit) })
		g.Release()
		if err != nil {
			return err
		}
		x.batch(n)
		first += int64(n)
	}
	return rd.Err()
}

// modeOf builds the mode a job runs in.
func (r *Runner) modeOf(ctx context.Context, job store.Job, m *Manifest, p *plan.Plan) (mode, error) {
	switch m.lit.Mode {
	case ModePlan:
		if p == nil {
			return nil, errors.New("jobs: plan-mode job without a plan")
		}
		return planMode{plan: p}, nil
	case ModeUnit, ModeBlock:
		g := m.lit.Guest
		cfg := wasm.NewGroupConfig().WithMemoryPages(uint32(g.MemoryMiB) * 16).WithCPULimit(time.Duration(g.CPUMs) * time.Millisecond)
		if m.lit.Mode == ModeUnit {
			return unitMode{cfg: cfg}, nil
		}
		vec := make([]int, len(m.lit.Outputs))
		for i, o := range m.lit.Outputs {
			vec[i] = o.Dimension
		}
		return blockMode{cfg: cfg.WithVectors(vec), blocks: m.lit.Blocks}, nil
	case ModeBatch:
		return batchMode{}, nil
	}
	return nil, fmt.Errorf("%w: mode %q", cove.ErrInvalid, m.lit.Mode)
}
