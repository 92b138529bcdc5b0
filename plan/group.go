package plan

import (
	"encoding/binary"
	"math"
	"strings"
)

// keyIndex maps a part's values to the index of the public value they
// format to.
type keyIndex struct {
	t      typ
	ints   map[int64]int32
	dense  []int32 // ints over [lo, lo+len(dense)) when their range is small
	lo     int64
	floats map[uint64]int32
	strs   map[string]int32
	bools  [2]int32 // index + 1; 0: not a value
}

// maxDense bounds the lookup table of an int part (int32s).
const maxDense = 1 << 16

func (ix *keyIndex) addInt(v int64, id int32) {
	if ix.ints == nil {
		ix.ints = map[int64]int32{}
	}
	if _, dup := ix.ints[v]; !dup {
		ix.ints[v] = id
	}
}

func (ix *keyIndex) addFloat(v float64, id int32) {
	if ix.floats == nil {
		ix.floats = map[uint64]int32{}
	}
	if _, dup := ix.floats[floatKey(v)]; !dup {
		ix.floats[floatKey(v)] = id
	}
}

// finish builds the dense table of a small range of int values.
func (ix *keyIndex) finish() {
	if len(ix.ints) == 0 {
		return
	}
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for v := range ix.ints {
		lo, hi = min(lo, v), max(hi, v)
	}
	if span := uint64(hi - lo); span < maxDense {
		ix.dense = make([]int32, span+1)
		fill(ix.dense, -1)
		for v, id := range ix.ints {
			ix.dense[v-lo] = id
		}
		ix.lo = lo
	}
}

func (ix *keyIndex) lookupInt(v int64) int32 {
	if ix.dense != nil {
		if d := uint64(v - ix.lo); d < uint64(len(ix.dense)) {
			return ix.dense[d]
		}
		return -1
	}
	if id, ok := ix.ints[v]; ok {
		return id
	}
	return -1
}

func (ix *keyIndex) lookupString(s string) int32 {
	if id, ok := ix.strs[formatKeyString(s)]; ok {
		return id
	}
	return -1
}

// partState is one group part's per-batch state.
type partState struct {
	// Dictionary-form values: the code (public) or local id (private) of
	// each dictionary entry, for batch stamp.
	stamp uint64
	codes []int32
	// Private: local ids of this batch's distinct values and their keys.
	names   []string
	ints    map[int64]int32
	floats  map[uint64]int32
	strs    map[string]int32
	bools   [2]int32 // id + 1
	codeBuf []int32
}

// publicParts writes each row's partition (row-major over the parts) into
// part, clearing mask where a part is null.
func (e *Evaluator) publicParts(o *outPlan, os *outState, part []int32, mask []uint8) {
	if len(o.parts) == 0 {
		clear(part)
		return
	}
	for j := 0; j < len(o.parts); j++ {
		pp := &o.parts[j]
		x := e.eval(pp.expr)
		andMask(mask, x.v)
		n := int32(len(pp.values))
		if j == 0 && x.isDict() && len(o.parts) > 1 {
			// A dictionary part (station) then a small-range int part
			// (year): both in one pass.
			pn := &o.parts[1]
			if y := e.eval(pn.expr); pn.index.dense != nil && y.i != nil {
				andMask(mask, y.v)
				codes := e.entryCodes(&os.parts[0], x, func(ent *vec, out []int32) {
					codeFlat(pp.index, pp.expr.t, ent, out)
				})
				dictDense(part, x.idx, codes, y.i, pn.index.dense, pn.index.lo, int32(len(pn.values)))
				j++
				continue
			}
		}
		if x.isDict() {
			codes := e.entryCodes(&os.parts[j], x, func(ent *vec, out []int32) {
				codeFlat(pp.index, pp.expr.t, ent, out)
			})
			gatherCodes(part, x.idx, codes, j == 0, n)
			continue
		}
		if j == 0 {
			codeFlat(pp.index, pp.expr.t, x, part)
			continue
		}
		if ix := pp.index; ix.dense != nil && x.i != nil {
			combineDense(part, x.i, ix.dense, ix.lo, n)
			continue
		}
		ps := &os.parts[j]
		ps.codeBuf = grow(ps.codeBuf, len(part))
		codeFlat(pp.index, pp.expr.t, x, ps.codeBuf)
		combine(part, ps.codeBuf, n)
	}
}

// entryCodes computes, once per batch, a code per dictionary entry.
func (e *Evaluator) entryCodes(ps *partState, x *vec, code func(ent *vec, out []int32)) []int32 {
	if ps.stamp != e.bstamp {
		ps.codes = grow(ps.codes, x.ent.n)
		code(x.ent, ps.codes)
		if x.ent.v != nil {
			for k, v := range x.ent.v {
				if v == 0 {
					ps.codes[k] = -1
				}
			}
		}
		ps.stamp = e.bstamp
	}
	return ps.codes
}

// gatherCodes writes (first) or combines the codes of dictionary indices.
func gatherCodes(part []int32, idx []int32, codes []int32, first bool, n int32) {
	idx = idx[:len(part)]
	if first {
		for k, ix := range idx {
			c := int32(-1)
			if uint(ix) < uint(len(codes)) {
				c = codes[ix]
			}
			part[k] = c
		}
		return
	}
	for k, ix := range idx {
		c := int32(-1)
		if uint(ix) < uint(len(codes)) {
			c = codes[ix]
		}
		p := part[k]
		r := p*n + c
		if p|c < 0 {
			r = -1
		}
		part[k] = r
	}
}

// dictDense writes the partitions of a dictionary part and a dense int
// part in one pass.
func dictDense(part, idx, codes []int32, xs []int64, d []int32, lo int64, n int32) {
	idx = idx[:len(part)]
	xs = xs[:len(part)]
	for k, ix := range idx {
		p := int32(-1)
		if uint(ix) < uint(len(codes)) {
			p = codes[ix]
		}
		c := int32(-1)
		if u := uint64(xs[k] - lo); u < uint64(len(d)) {
			c = d[u]
		}
		r := p*n + c
		if p|c < 0 {
			r = -1
		}
		part[k] = r
	}
}

// combineDense is codeFlat and combine in one pass, for an int part with a
// dense table (the common year-like part).
func combineDense(part []int32, xs []int64, d []int32, lo int64, n int32) {
	xs = xs[:len(part)]
	for k, v := range xs {
		c := int32(-1)
		if u := uint64(v - lo); u < uint64(len(d)) {
			c = d[u]
		}
		p := part[k]
		r := p*n + c
		if p|c < 0 {
			r = -1
		}
		part[k] = r
	}
}

// combine folds the next part's codes into row-major partition indices.
func combine(part, codes []int32, n int32) {
	codes = codes[:len(part)]
	for k, p := range part {
		c := codes[k]
		r := p*n + c
		if p|c < 0 {
			r = -1
		}
		part[k] = r
	}
}

// codeFlat writes the public value index of each row of x (-1: none).
func codeFlat(ix *keyIndex, t typ, x *vec, out []int32) {
	out = out[:x.n]
	switch t {
	case tInt, tDate, tTimestamp:
		xs := x.i[:len(out)]
		if ix.dense != nil {
			lo, d := ix.lo, ix.dense
			for k, v := range xs {
				c := int32(-1)
				if u := uint64(v - lo); u < uint64(len(d)) {
					c = d[u]
				}
				out[k] = c
			}
			return
		}
		for k, v := range xs {
			out[k] = ix.lookupInt(v)
		}
	case tFloat:
		for k, f := range x.f[:len(out)] {
			c, ok := ix.floats[floatKey(f)]
			if !ok {
				c = -1
			}
			out[k] = c
		}
	case tBool:
		for k, b := range x.b[:len(out)] {
			out[k] = ix.bools[b&1] - 1
		}
	case tString:
		for k, s := range x.s[:len(out)] {
			out[k] = ix.lookupString(s)
		}
	}
}

func (e *Evaluator) resetPrivate(os *outState) {
	os.keys = os.keys[:0]
	clear(os.pairs)
	clear(os.tuples)
	for j := range os.parts {
		ps := &os.parts[j]
		ps.names = ps.names[:0]
		clear(ps.ints)
		clear(ps.floats)
		clear(ps.strs)
		ps.bools = [2]int32{}
	}
}

// privateParts writes each contributing row's key index into part: local
// ids per part (assigned only to rows that contribute, so that Keys holds
// no key without a contribution), then one index per distinct tuple.
func (e *Evaluator) privateParts(o *outPlan, os *outState, part []int32, mask []uint8) {
	rows := len(part)
	xs := os.xs[:0]
	for j := range o.parts {
		x := e.eval(o.parts[j].expr)
		andMask(mask, x.v)
		xs = append(xs, x)
	}
	os.xs = xs
	for j := range o.parts {
		pp := &o.parts[j]
		ps := &os.parts[j]
		os.ids[j] = grow(os.ids[j], rows)
		ids := os.ids[j]
		x := xs[j]
		if pp.index != nil {
			// A public part of a private output: its values filter and are
			// its key parts.
			if x.isDict() {
				codes := e.entryCodes(ps, x, func(ent *vec, out []int32) { codeFlat(pp.index, pp.expr.t, ent, out) })
				gatherCodes(ids, x.idx, codes, true, 0)
			} else {
				codeFlat(pp.index, pp.expr.t, x, ids)
			}
			for k, id := range ids {
				if id < 0 {
					mask[k] = 0
				}
			}
			continue
		}
		e.localIDs(pp.expr.t, ps, x, ids, mask)
	}
	if len(o.parts) == 1 && o.parts[0].index == nil {
		// Local ids are given in order of first appearance among
		// contributing rows: they are the key indices (Keys: the names).
		copy(part, os.ids[0][:rows])
		return
	}
	if len(o.parts) == 1 {
		ids := os.ids[0]
		for k := range part {
			if mask[k] == 0 {
				part[k] = -1
				continue
			}
			part[k] = e.tupleIndex(os, o, ids[k:k+1], o.parts[0].values)
		}
		return
	}
	os.tuple = grow(os.tuple, len(o.parts))
	tuple := os.tuple
	for k := range part {
		if mask[k] == 0 {
			part[k] = -1
			continue
		}
		for j := range tuple {
			tuple[j] = os.ids[j][k]
		}
		part[k] = e.tupleIndex(os, o, tuple, nil)
	}
}

// tupleIndex returns the key index of a tuple of local ids, adding its key
// when new.
func (e *Evaluator) tupleIndex(os *outState, o *outPlan, tuple []int32, single []string) int32 {
	var key uint64
	packed := len(tuple) <= 2
	if packed {
		key = uint64(uint32(tuple[0]))
		if len(tuple) == 2 {
			key = key<<32 | uint64(uint32(tuple[1]))
		}
		if os.pairs == nil {
			os.pairs = map[uint64]int32{}
		}
		if id, ok := os.pairs[key]; ok {
			return id
		}
	} else {
		os.tkey = os.tkey[:0]
		for _, t := range tuple {
			os.tkey = binary.LittleEndian.AppendUint32(os.tkey, uint32(t))
		}
		if os.tuples == nil {
			os.tuples = map[string]int32{}
		}
		if id, ok := os.tuples[string(os.tkey)]; ok {
			return id
		}
	}
	id := int32(len(os.keys))
	var k string
	if single != nil {
		k = single[tuple[0]]
	} else {
		var sb strings.Builder
		for j, t := range tuple {
			if j > 0 {
				sb.WriteString("\x1f")
			}
			sb.WriteString(e.partName(os, o, j, t))
		}
		k = sb.String()
	}
	os.keys = append(os.keys, k)
	if packed {
		os.pairs[key] = id
	} else {
		os.tuples[string(os.tkey)] = id
	}
	return id
}

func (e *Evaluator) partName(os *outState, o *outPlan, j int, id int32) string {
	if o.parts[j].index != nil {
		return o.parts[j].values[id]
	}
	return os.parts[j].names[id]
}

// localIDs numbers the distinct values of a private part among the rows of
// mask, keeping each one's key (cloned: it outlives the batch's buffers).
func (e *Evaluator) localIDs(t typ, ps *partState, x *vec, ids []int32, mask []uint8) {
	if x.isDict() {
		// Entries are numbered on first use by a contributing row.
		if ps.stamp != e.bstamp {
			ps.codes = grow(ps.codes, x.ent.n)
			fill(ps.codes, -1)
			ps.stamp = e.bstamp
		}
		m := uint32(x.ent.n)
		for k, ix := range x.idx {
			if mask[k] == 0 {
				continue
			}
			if uint32(ix) >= m || !x.ent.valid(int(ix)) {
				mask[k] = 0
				continue
			}
			id := ps.codes[ix]
			if id < 0 {
				id = ps.stringID(keyString(t, x.ent, int(ix)))
				ps.codes[ix] = id
			}
			ids[k] = id
		}
		return
	}
	switch t {
	case tInt, tDate, tTimestamp:
		if ps.ints == nil {
			ps.ints = map[int64]int32{}
		}
		have, last, lastID := false, int64(0), int32(0)
		for k, v := range x.i[:len(ids)] {
			if mask[k] == 0 {
				continue
			}
			if have && v == last {
				ids[k] = lastID
				continue
			}
			id, ok := ps.ints[v]
			if !ok {
				id = int32(len(ps.names))
				ps.ints[v] = id
				switch t {
				case tInt:
					ps.names = append(ps.names, formatInt(v))
				case tDate:
					ps.names = append(ps.names, formatDate(v))
				default:
					ps.names = append(ps.names, formatTimestamp(v))
				}
			}
			have, last, lastID = true, v, id
			ids[k] = id
		}
	case tFloat:
		if ps.floats == nil {
			ps.floats = map[uint64]int32{}
		}
		for k, f := range x.f[:len(ids)] {
			if mask[k] == 0 {
				continue
			}
			key := floatKey(f)
			id, ok := ps.floats[key]
			if !ok {
				id = int32(len(ps.names))
				ps.floats[key] = id
				ps.names = append(ps.names, formatFloat(f))
			}
			ids[k] = id
		}
	case tBool:
		for k, b := range x.b[:len(ids)] {
			if mask[k] == 0 {
				continue
			}
			if ps.bools[b&1] == 0 {
				ps.names = append(ps.names, formatBool(b&1 == 1))
				ps.bools[b&1] = int32(len(ps.names))
			}
			ids[k] = ps.bools[b&1] - 1
		}
	case tString:
		have, last, lastID := false, "", int32(0)
		for k, s := range x.s[:len(ids)] {
			if mask[k] == 0 {
				continue
			}
			if have && s == last {
				ids[k] = lastID
				continue
			}
			id := ps.stringID(s)
			have, last, lastID = true, s, id
			ids[k] = id
		}
	}
}

// stringID is the local id of a string value (by its key form).
func (ps *partState) stringID(s string) int32 {
	if ps.strs == nil {
		ps.strs = map[string]int32{}
	}
	k := formatKeyString(s)
	if id, ok := ps.strs[k]; ok {
		return id
	}
	k = strings.Clone(k)
	id := int32(len(ps.names))
	ps.strs[k] = id
	ps.names = append(ps.names, k)
	return id
}

// keyString formats row k of a flat vec as a key part.
func keyString(t typ, x *vec, k int) string {
	switch t {
	case tInt:
		return formatInt(x.i[k])
	case tDate:
		return formatDate(x.i[k])
	case tTimestamp:
		return formatTimestamp(x.i[k])
	case tFloat:
		return formatFloat(x.f[k])
	case tBool:
		return formatBool(x.b[k] != 0)
	}
	return formatKeyString(x.s[k])
}
