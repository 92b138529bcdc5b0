package plan

import (
	"cmp"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The kernels below compute one op over flat vecs of rows rows. None fails:
// whatever a value, an anomaly (overflow, division by zero, a non-finite
// result, a string that does not parse) is a null.
//
// Why hand-written rather than arrow/compute: compute's checked integer
// kernels return an error on overflow or division by zero (a data-dependent
// failure a plan must not have) and its unchecked ones wrap silently; its
// casts from strings fail on the first bad value. Where compute's semantics
// would fit (float64 arithmetic, comparisons), it allocates every result
// (8 MiB per call for a + b over 1M rows); these loops write into buffers
// reused chunk after chunk, in cache, and measure on par with compute on
// the same arrays (BenchmarkKernels). compute does the widening of narrow
// integer and float32 columns (colState.load), which cannot fail.
func (e *Evaluator) apply(n *node, a []vec, rows int, b *buffers) vec {
	switch n.op {
	case opAdd, opSub, opMul, opMod:
		if n.t == tInt {
			return arithInt(n.op, &a[0], &a[1], rows, b)
		}
		return arithFloat(n.op, &a[0], &a[1], rows, b)
	case opDiv, opPow:
		return arithFloat(n.op, &a[0], &a[1], rows, b)
	case opNeg, opAbs:
		return negAbs(n.op, n.t, &a[0], rows, b)
	case opFloor, opCeil, opSqrt, opExp, opLog:
		return mathFloat(n.op, &a[0], rows, b)
	case opRound:
		var d *vec
		if len(a) > 1 {
			d = &a[1]
		}
		return round(n.t, &a[0], d, rows, b)
	case opEq, opNe, opLt, opLe, opGt, opGe:
		if l := n.args[1]; l.op == opLit && !l.lit.null {
			return compareLit(n.op, n.args[0].t, &a[0], l.lit, rows, b)
		}
		if l := n.args[0]; l.op == opLit && !l.lit.null {
			return compareLit(mirror[n.op], n.args[1].t, &a[1], l.lit, rows, b)
		}
		return compare(n.op, n.args[0].t, &a[0], &a[1], rows, b)
	case opAnd, opOr:
		return kleene(n.op, a, rows, b)
	case opNot:
		r := b.bools(rows)
		for k, x := range a[0].b[:rows] {
			r[k] = x ^ 1
		}
		return vec{n: rows, b: r, v: a[0].v}
	case opIsNull, opIsNotNull:
		r := b.bools(rows)
		x := &a[0]
		switch {
		case x.v == nil:
			fill(r, b2u8(n.op == opIsNotNull))
		case n.op == opIsNotNull:
			return vec{n: rows, b: x.v}
		default:
			for k, v := range x.v[:rows] {
				r[k] = v ^ 1
			}
		}
		return vec{n: rows, b: r}
	case opIn:
		return in(n.set, n.args[0].t, &a[0], rows, b)
	case opCase:
		return caseOf(n, a, rows, b)
	case opCoalesce:
		return coalesce(n.t, a, rows, b)
	case opCast:
		return cast(n.args[0].t, n.t, &a[0], rows, b)
	case opLeast, opGreatest:
		return leastGreatest(n.op, n.t, a, rows, b)
	case opLength, opLower, opUpper, opSubstr, opPrefix, opContains:
		return stringOp(n.op, a, rows, b)
	case opYear, opMonth, opDay, opHour, opMinute, opSecond, opDow, opDoy:
		return datePart(n.op, n.args[0].t, &a[0], rows, b)
	case opBucket:
		return bucket(n.t, a, rows, b)
	}
	panic("plan: no kernel for op")
}

// overflowBit is 0 when the sign bit of x is set.
func okSign(x int64) uint8 { return uint8(uint64(^x) >> 63) }

func arithInt(op opcode, x, y *vec, rows int, b *buffers) vec {
	r := b.ints(rows)
	v := andInto(b.valid(rows), x.v, y.v)[:rows]
	xs, ys := x.i[:rows], y.i[:rows]
	switch op {
	case opAdd:
		for k := range r {
			s := xs[k] + ys[k]
			r[k] = s
			v[k] &= okSign((xs[k] ^ s) & (ys[k] ^ s))
		}
	case opSub:
		for k := range r {
			s := xs[k] - ys[k]
			r[k] = s
			v[k] &= okSign((xs[k] ^ ys[k]) & (xs[k] ^ s))
		}
	case opMul:
		for k := range r {
			p, q := xs[k], ys[k]
			hi, lo := bits.Mul64(uint64(p), uint64(q))
			h := int64(hi)
			if p < 0 {
				h -= q
			}
			if q < 0 {
				h -= p
			}
			r[k] = int64(lo)
			v[k] &= b2u8(h == int64(lo)>>63)
		}
	case opMod:
		for k := range r {
			if ys[k] == 0 {
				r[k], v[k] = 0, 0
				continue
			}
			r[k] = xs[k] % ys[k]
		}
	}
	return vec{n: rows, i: r, v: v}
}

func arithFloat(op opcode, x, y *vec, rows int, b *buffers) vec {
	r := b.flts(rows)
	v := andInto(b.valid(rows), x.v, y.v)[:rows]
	xs, ys := x.f[:rows], y.f[:rows]
	switch op {
	case opAdd:
		for k := range r {
			r[k] = xs[k] + ys[k]
		}
	case opSub:
		for k := range r {
			r[k] = xs[k] - ys[k]
		}
	case opMul:
		for k := range r {
			r[k] = xs[k] * ys[k]
		}
	case opDiv:
		for k := range r {
			r[k] = xs[k] / ys[k]
		}
	case opMod:
		for k := range r {
			r[k] = math.Mod(xs[k], ys[k])
		}
	case opPow:
		for k := range r {
			if v[k] != 0 {
				r[k] = math.Pow(xs[k], ys[k])
			}
		}
	}
	for k, f := range r {
		v[k] &= finiteBit(f)
	}
	return vec{n: rows, f: r, v: v}
}

func negAbs(op opcode, t typ, x *vec, rows int, b *buffers) vec {
	if t == tFloat {
		r := b.flts(rows)
		for k, f := range x.f[:rows] {
			if op == opNeg {
				r[k] = -f
			} else {
				r[k] = math.Abs(f)
			}
		}
		return vec{n: rows, f: r, v: x.v}
	}
	r := b.ints(rows)
	v := andInto(b.valid(rows), x.v, nil)[:rows]
	for k, i := range x.i[:rows] {
		if op == opAbs && i >= 0 {
			r[k] = i
		} else {
			r[k] = -i
		}
		v[k] &= b2u8(i != math.MinInt64)
	}
	return vec{n: rows, i: r, v: v}
}

func mathFloat(op opcode, x *vec, rows int, b *buffers) vec {
	r := b.flts(rows)
	xs := x.f[:rows]
	switch op {
	case opFloor:
		for k, f := range xs {
			r[k] = math.Floor(f)
		}
		return vec{n: rows, f: r, v: x.v}
	case opCeil:
		for k, f := range xs {
			r[k] = math.Ceil(f)
		}
		return vec{n: rows, f: r, v: x.v}
	case opSqrt:
		for k, f := range xs {
			r[k] = math.Sqrt(f)
		}
	case opExp:
		for k, f := range xs {
			r[k] = math.Exp(f)
		}
	case opLog:
		for k, f := range xs {
			r[k] = math.Log(f)
		}
	}
	v := andInto(b.valid(rows), x.v, nil)[:rows]
	for k, f := range r {
		v[k] &= finiteBit(f)
	}
	return vec{n: rows, f: r, v: v}
}

var pow10 = func() (p [19]int64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

func roundFloat(x float64, d int64) float64 {
	switch {
	case d == 0:
		return math.Round(x)
	case d > 0:
		if d > 308 { // finer than any float64 but subnormals
			return x
		}
		p := math.Pow(10, float64(d))
		y := x * p
		if math.IsInf(y, 0) {
			return x
		}
		return math.Round(y) / p
	default:
		if d < -308 {
			return 0
		}
		p := math.Pow(10, float64(-d))
		return math.Round(x/p) * p
	}
}

// roundInt rounds x to -d decimal digits (d < 0), halves away from zero;
// ok is false on overflow.
func roundInt(x, d int64) (int64, bool) {
	if d >= 0 {
		return x, true
	}
	if d < -18 {
		// 10^19 exceeds int64: x rounds to 0 unless |x| ≥ 5·10^18.
		if x >= 5e18 || x <= -5e18 {
			return 0, false
		}
		return 0, true
	}
	p := pow10[-d]
	q, r := x/p, x%p
	if r >= (p+1)/2 {
		q++
	} else if -r >= (p+1)/2 {
		q--
	}
	hi, lo := bits.Mul64(uint64(q), uint64(p))
	h := int64(hi)
	if q < 0 {
		h -= p
	}
	return int64(lo), h == int64(lo)>>63
}

func round(t typ, x, d *vec, rows int, b *buffers) vec {
	v := andInto(b.valid(rows), x.v, nil)[:rows]
	if d != nil {
		v = andInto(v, v, d.v)
	}
	digits := func(k int) int64 {
		if d == nil {
			return 0
		}
		return d.i[k]
	}
	if t == tFloat {
		r := b.flts(rows)
		for k, f := range x.f[:rows] {
			r[k] = roundFloat(f, digits(k))
			v[k] &= finiteBit(r[k])
		}
		return vec{n: rows, f: r, v: v}
	}
	r := b.ints(rows)
	for k, i := range x.i[:rows] {
		y, ok := roundInt(i, digits(k))
		r[k] = y
		v[k] &= b2u8(ok)
	}
	return vec{n: rows, i: r, v: v}
}

func cmpLoop[T int64 | float64 | string | uint8](op opcode, r []uint8, x, y []T) {
	y = y[:len(x)]
	r = r[:len(x)]
	switch op {
	case opEq:
		for k := range r {
			r[k] = b2u8(x[k] == y[k])
		}
	case opNe:
		for k := range r {
			r[k] = b2u8(x[k] != y[k])
		}
	case opLt:
		for k := range r {
			r[k] = b2u8(x[k] < y[k])
		}
	case opLe:
		for k := range r {
			r[k] = b2u8(x[k] <= y[k])
		}
	case opGt:
		for k := range r {
			r[k] = b2u8(x[k] > y[k])
		}
	case opGe:
		for k := range r {
			r[k] = b2u8(x[k] >= y[k])
		}
	}
}

// mirror is the comparison with its operands swapped.
var mirror = map[opcode]opcode{opEq: opEq, opNe: opNe, opLt: opGt, opLe: opGe, opGt: opLt, opGe: opLe}

func cmpLit[T int64 | float64 | string | uint8](op opcode, r []uint8, x []T, y T) {
	r = r[:len(x)]
	switch op {
	case opEq:
		for k := range r {
			r[k] = b2u8(x[k] == y)
		}
	case opNe:
		for k := range r {
			r[k] = b2u8(x[k] != y)
		}
	case opLt:
		for k := range r {
			r[k] = b2u8(x[k] < y)
		}
	case opLe:
		for k := range r {
			r[k] = b2u8(x[k] <= y)
		}
	case opGt:
		for k := range r {
			r[k] = b2u8(x[k] > y)
		}
	case opGe:
		for k := range r {
			r[k] = b2u8(x[k] >= y)
		}
	}
}

// compareLit compares with a literal: one operand to read, not two (the
// common col > 10).
func compareLit(op opcode, t typ, x *vec, y value, rows int, b *buffers) vec {
	r := b.bools(rows)
	switch t {
	case tInt, tDate, tTimestamp:
		cmpLit(op, r, x.i[:rows], y.i)
	case tFloat:
		cmpLit(op, r, x.f[:rows], y.f)
	case tString:
		cmpLit(op, r, x.s[:rows], y.s)
	case tBool:
		cmpLit(op, r, x.b[:rows], b2u8(y.b))
	}
	return vec{n: rows, b: r, v: x.v}
}

func compare(op opcode, t typ, x, y *vec, rows int, b *buffers) vec {
	r := b.bools(rows)
	switch t {
	case tInt, tDate, tTimestamp:
		cmpLoop(op, r, x.i[:rows], y.i)
	case tFloat:
		cmpLoop(op, r, x.f[:rows], y.f)
	case tString:
		cmpLoop(op, r, x.s[:rows], y.s)
	case tBool:
		cmpLoop(op, r, x.b[:rows], y.b)
	}
	return vec{n: rows, b: r, v: andView(b.valid(rows), x.v, y.v)}
}

// kleene is SQL's three-valued and/or: a false (true) operand decides an
// and (or) even when another is null.
func kleene(op opcode, a []vec, rows int, b *buffers) vec {
	allValid := true
	for k := range a {
		allValid = allValid && a[k].v == nil
	}
	t := b.bools(rows)
	copy(t, a[0].b[:rows])
	if allValid {
		for j := 1; j < len(a); j++ {
			y := a[j].b[:rows]
			if op == opAnd {
				for k := range t {
					t[k] &= y[k]
				}
			} else {
				for k := range t {
					t[k] |= y[k]
				}
			}
		}
		return vec{n: rows, b: t}
	}
	// t: known true; f: known false.
	f := b.auxb(rows)
	x := &a[0]
	for k := range t {
		xv := uint8(1)
		if x.v != nil {
			xv = x.v[k]
		}
		t[k] = x.b[k] & xv
		f[k] = (x.b[k] ^ 1) & xv
	}
	for j := 1; j < len(a); j++ {
		y := &a[j]
		for k := range t {
			yv := uint8(1)
			if y.v != nil {
				yv = y.v[k]
			}
			yt, yf := y.b[k]&yv, (y.b[k]^1)&yv
			if op == opAnd {
				t[k] &= yt
				f[k] |= yf
			} else {
				t[k] |= yt
				f[k] &= yf
			}
		}
	}
	v := b.valid(rows)
	for k := range v {
		v[k] = t[k] | f[k]
	}
	return vec{n: rows, b: t, v: v}
}

func in(set *inSet, t typ, x *vec, rows int, b *buffers) vec {
	r := b.bools(rows)
	switch t {
	case tInt, tDate, tTimestamp:
		if set.intMap != nil {
			for k, i := range x.i[:rows] {
				_, ok := set.intMap[i]
				r[k] = b2u8(ok)
			}
		} else {
			for k, i := range x.i[:rows] {
				found := false
				for _, w := range set.ints {
					found = found || w == i
				}
				r[k] = b2u8(found)
			}
		}
	case tFloat:
		for k, f := range x.f[:rows] {
			_, ok := set.floats[floatKey(f)]
			r[k] = b2u8(ok)
		}
	case tString:
		for k, s := range x.s[:rows] {
			_, ok := set.strs[s]
			r[k] = b2u8(ok)
		}
	case tBool:
		for k, v := range x.b[:rows] {
			r[k] = b2u8(set.bools[v&1])
		}
	}
	if !set.hasNull {
		return vec{n: rows, b: r, v: x.v}
	}
	// Not found in a list holding NULL: unknown.
	v := andInto(b.valid(rows), x.v, nil)[:rows]
	for k := range v {
		v[k] &= r[k]
	}
	return vec{n: rows, b: r, v: v}
}

func pick[T any](dst, src []T, take []uint8) {
	src = src[:len(take)]
	dst = dst[:len(take)]
	for k, t := range take {
		if t != 0 {
			dst[k] = src[k]
		}
	}
}

// result returns a typed result vec with buffers of rows rows.
func result(t typ, rows int, b *buffers) vec {
	x := vec{n: rows}
	switch t {
	case tBool:
		x.b = b.bools(rows)
	case tInt, tDate, tTimestamp:
		x.i = b.ints(rows)
	case tFloat:
		x.f = b.flts(rows)
	case tString:
		x.s = b.strs(rows)
		clear(x.s)
	}
	return x
}

func pickInto(t typ, dst, src *vec, take []uint8) {
	switch t {
	case tBool:
		pick(dst.b, src.b, take)
	case tInt, tDate, tTimestamp:
		pick(dst.i, src.i, take)
	case tFloat:
		pick(dst.f, src.f, take)
	case tString:
		pick(dst.s, src.s, take)
	}
}

func caseOf(n *node, a []vec, rows int, b *buffers) vec {
	res := result(n.t, rows, b)
	rem := b.auxb(rows)
	fill(rem, 1)
	v := b.valid(rows)
	fill(v, 0)
	take := b.take(rows)
	pairs := len(a) / 2
	for p := 0; p < pairs; p++ {
		c, val := &a[2*p], &a[2*p+1]
		for k := range take {
			t := rem[k] & c.b[k]
			if c.v != nil {
				t &= c.v[k]
			}
			take[k] = t
			rem[k] &^= t
			vv := uint8(1)
			if val.v != nil {
				vv = val.v[k]
			}
			v[k] |= t & vv
		}
		pickInto(n.t, &res, val, take)
	}
	if n.els {
		val := &a[len(a)-1]
		for k := range take {
			vv := uint8(1)
			if val.v != nil {
				vv = val.v[k]
			}
			v[k] |= rem[k] & vv
		}
		pickInto(n.t, &res, val, rem)
	}
	res.v = v
	return res
}

func coalesce(t typ, a []vec, rows int, b *buffers) vec {
	res := result(t, rows, b)
	rem := b.auxb(rows)
	fill(rem, 1)
	take := b.take(rows)
	for j := range a {
		x := &a[j]
		for k := range take {
			tk := rem[k]
			if x.v != nil {
				tk &= x.v[k]
			}
			take[k] = tk
			rem[k] &^= tk
		}
		pickInto(t, &res, x, take)
	}
	v := b.valid(rows)
	for k := range v {
		v[k] = rem[k] ^ 1
	}
	res.v = v
	return res
}

// int64Bound is 2^63 as a float64: float64 values in [-2^63, 2^63) convert.
const int64Bound = 9.223372036854775808e18

func cast(from, to typ, x *vec, rows int, b *buffers) vec {
	res := result(to, rows, b)
	var v []uint8
	own := func() []uint8 {
		if v == nil {
			v = andInto(b.valid(rows), x.v, nil)[:rows]
		}
		return v
	}
	switch {
	case from == tInt && to == tFloat:
		for k, i := range x.i[:rows] {
			res.f[k] = float64(i)
		}
		v = x.v
	case from == tFloat && to == tInt:
		v = own()
		for k, f := range x.f[:rows] {
			r := math.Round(f)
			ok := r >= -int64Bound && r < int64Bound
			if ok {
				res.i[k] = int64(r)
			} else {
				res.i[k] = 0
			}
			v[k] &= b2u8(ok)
		}
	case from == tBool && to == tInt:
		for k, x := range x.b[:rows] {
			res.i[k] = int64(x & 1)
		}
		v = x.v
	case from == tBool && to == tFloat:
		for k, x := range x.b[:rows] {
			res.f[k] = float64(x & 1)
		}
		v = x.v
	case from == tInt && to == tBool:
		for k, i := range x.i[:rows] {
			res.b[k] = b2u8(i != 0)
		}
		v = x.v
	case from == tFloat && to == tBool:
		for k, f := range x.f[:rows] {
			res.b[k] = b2u8(f != 0)
		}
		v = x.v
	case from == tDate && to == tTimestamp:
		v = own()
		for k, d := range x.i[:rows] {
			ok := d >= minTimestampDay && d <= maxTimestampDay
			res.i[k] = d * nsPerDay
			v[k] &= b2u8(ok)
		}
	case from == tTimestamp && to == tDate:
		for k, ns := range x.i[:rows] {
			res.i[k] = floorDiv(ns, nsPerDay)
		}
		v = x.v
	case from == tString:
		v = own()
		for k, s := range x.s[:rows] {
			if v[k] == 0 {
				continue
			}
			ok := true
			switch to {
			case tInt:
				res.i[k], ok = parseIntLoose(s)
			case tFloat:
				res.f[k], ok = parseFloatLoose(s)
			case tBool:
				var err error
				res.b[k], err = parseBool(strings.TrimSpace(s))
				ok = err == nil
			case tDate:
				res.i[k], ok = parseDate(strings.TrimSpace(s))
			case tTimestamp:
				res.i[k], ok = parseTimestamp(strings.TrimSpace(s))
			}
			v[k] &= b2u8(ok)
		}
	case to == tString:
		v = x.v
		for k := range res.s {
			if !x.valid(k) {
				continue
			}
			switch from {
			case tInt:
				res.s[k] = formatInt(x.i[k])
			case tFloat:
				res.s[k] = formatFloat(x.f[k])
			case tBool:
				res.s[k] = formatBool(x.b[k] != 0)
			case tDate:
				res.s[k] = formatDate(x.i[k])
			case tTimestamp:
				res.s[k] = formatTimestamp(x.i[k])
			}
		}
	}
	res.v = v
	return res
}

func parseIntLoose(s string) (int64, bool) {
	i, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	return i, err == nil
}

func parseFloatLoose(s string) (float64, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return f, err == nil && !math.IsInf(f, 0) && !math.IsNaN(f)
}

func parseBool(s string) (uint8, error) {
	v, err := strconv.ParseBool(s)
	return b2u8(v), err
}

func minMax[T cmp.Ordered](op opcode, dst, x []T) {
	x = x[:len(dst)]
	if op == opLeast {
		for k := range dst {
			dst[k] = min(dst[k], x[k])
		}
	} else {
		for k := range dst {
			dst[k] = max(dst[k], x[k])
		}
	}
}

func leastGreatest(op opcode, t typ, a []vec, rows int, b *buffers) vec {
	res := result(t, rows, b)
	v := andInto(b.valid(rows), a[0].v, nil)[:rows]
	switch t {
	case tBool:
		copy(res.b, a[0].b[:rows])
	case tInt, tDate, tTimestamp:
		copy(res.i, a[0].i[:rows])
	case tFloat:
		copy(res.f, a[0].f[:rows])
	case tString:
		copy(res.s, a[0].s[:rows])
	}
	for j := 1; j < len(a); j++ {
		x := &a[j]
		andMask(v, x.v)
		switch t {
		case tBool:
			minMax(op, res.b, x.b)
		case tInt, tDate, tTimestamp:
			minMax(op, res.i, x.i)
		case tFloat:
			minMax(op, res.f, x.f)
		case tString:
			minMax(op, res.s, x.s)
		}
	}
	res.v = v
	return res
}

func stringOp(op opcode, a []vec, rows int, b *buffers) vec {
	x := &a[0]
	switch op {
	case opLength:
		r := b.ints(rows)
		for k, s := range x.s[:rows] {
			r[k] = int64(utf8.RuneCountInString(s))
		}
		return vec{n: rows, i: r, v: x.v}
	case opLower, opUpper:
		r := b.strs(rows)
		for k, s := range x.s[:rows] {
			switch {
			case !x.valid(k):
				r[k] = ""
			case op == opLower:
				r[k] = strings.ToLower(s)
			default:
				r[k] = strings.ToUpper(s)
			}
		}
		return vec{n: rows, s: r, v: x.v}
	case opPrefix, opContains:
		r := b.bools(rows)
		y := &a[1]
		ys := y.s[:rows]
		for k, s := range x.s[:rows] {
			if op == opPrefix {
				r[k] = b2u8(strings.HasPrefix(s, ys[k]))
			} else {
				r[k] = b2u8(strings.Contains(s, ys[k]))
			}
		}
		return vec{n: rows, b: r, v: andView(b.valid(rows), x.v, y.v)}
	}
	// substr
	r := b.strs(rows)
	v := andInto(b.valid(rows), x.v, a[1].v)[:rows]
	var ln *vec
	if len(a) > 2 {
		ln = &a[2]
		andMask(v, ln.v)
	}
	for k, s := range x.s[:rows] {
		if v[k] == 0 {
			r[k] = ""
			continue
		}
		length := int64(math.MaxInt64)
		if ln != nil {
			length = ln.i[k]
		}
		r[k] = substr(s, a[1].i[k], length)
	}
	return vec{n: rows, s: r, v: v}
}

// substr is MySQL's SUBSTRING(s, start, length) in characters: start is
// 1-based, a negative start counts from the end, 0 gives "".
func substr(s string, start, length int64) string {
	if start == 0 || length <= 0 {
		return ""
	}
	n := int64(utf8.RuneCountInString(s))
	var from int64
	if start > 0 {
		from = start - 1
	} else {
		from = n + start
		if from < 0 {
			return ""
		}
	}
	if from >= n {
		return ""
	}
	to := n
	if length < n-from {
		to = from + length
	}
	if n == int64(len(s)) { // ASCII
		return s[from:to]
	}
	bs, be := len(s), len(s)
	i := int64(0)
	for off := range s {
		if i == from {
			bs = off
		}
		if i == to {
			be = off
			break
		}
		i++
	}
	return s[bs:be]
}

func datePart(op opcode, t typ, x *vec, rows int, b *buffers) vec {
	r := b.ints(rows)
	for k, i := range x.i[:rows] {
		days, sod := i, int64(0)
		if t == tTimestamp {
			days = floorDiv(i, nsPerDay)
			sod = i - days*nsPerDay
		}
		var out int64
		switch op {
		case opYear, opMonth, opDay, opDoy:
			y, m, d := civil(days)
			switch op {
			case opYear:
				out = y
			case opMonth:
				out = int64(m)
			case opDay:
				out = int64(d)
			default:
				out = days - daysFromCivil(y, 1, 1) + 1
			}
		case opHour:
			out = sod / (3600 * 1e9)
		case opMinute:
			out = sod / (60 * 1e9) % 60
		case opSecond:
			out = sod / 1e9 % 60
		case opDow:
			out = ((days+4)%7 + 7) % 7
		}
		r[k] = out
	}
	return vec{n: rows, i: r, v: x.v}
}

func bucket(t typ, a []vec, rows int, b *buffers) vec {
	x, w := &a[0], &a[1]
	var o *vec
	v := andInto(b.valid(rows), x.v, w.v)[:rows]
	if len(a) > 2 {
		o = &a[2]
		andMask(v, o.v)
	}
	if t == tFloat {
		r := b.flts(rows)
		for k, f := range x.f[:rows] {
			origin := 0.0
			if o != nil {
				origin = o.f[k]
			}
			wd := w.f[k]
			r[k] = origin + math.Floor((f-origin)/wd)*wd
			v[k] &= b2u8(wd > 0) & finiteBit(r[k])
		}
		return vec{n: rows, f: r, v: v}
	}
	r := b.ints(rows)
	for k, i := range x.i[:rows] {
		origin := int64(0)
		if o != nil {
			origin = o.i[k]
		}
		wd := w.i[k]
		if wd <= 0 || v[k] == 0 {
			r[k], v[k] = 0, 0
			continue
		}
		d := i - origin
		ok := okSign((i^origin)&(i^d)) != 0
		q := floorDiv(d, wd)
		hi, lo := bits.Mul64(uint64(q), uint64(wd))
		h := int64(hi)
		if q < 0 {
			h -= wd
		}
		m := int64(lo)
		ok = ok && h == m>>63
		s := origin + m
		ok = ok && okSign((origin^s)&(m^s)) != 0
		r[k] = s
		v[k] &= b2u8(ok)
	}
	return vec{n: rows, i: r, v: v}
}
