package he

import (
	"context"
	"fmt"
	"math"

	"github.com/google/differential-privacy/go/v3/noise"
	"github.com/tuneinsight/lattigo/v6/core/rlwe"
	"github.com/tuneinsight/lattigo/v6/schemes/bgv"
	"github.com/tuneinsight/lattigo/v6/schemes/ckks"

	"github.com/covedata/cove"
)

// Kind names an encrypted aggregate.
type Kind string

const (
	// Sum is Σ xᵢ over the rows a group selects (weights 0 or 1).
	Sum Kind = "sum"
	// Count is Σ xᵢ over the selected rows of an indicator column (bounds
	// [0, 1]): for instance "value present" or "above a threshold", computed
	// by the provider before encryption.
	Count Kind = "count"
	// Mean is Σ wᵢxᵢ / Σ wᵢ with non-negative weights; the denominator comes
	// from the public weights. CKKS only.
	Mean Kind = "mean"
	// WeightedSum is Σ wᵢxᵢ with any real weights (integers for BGV).
	WeightedSum Kind = "weighted_sum"
)

// Spec describes one encrypted aggregate: Weights[g][i] is the weight of row
// i in group g, computed by the guest from public columns only.
type Spec struct {
	Kind    Kind
	Weights [][]float64
}

// Evaluator is the host's side: it computes aggregates over encrypted
// columns with the collective evaluation keys, and adds DP noise under
// encryption. It holds no secret. Not safe for concurrent use.
type Evaluator struct {
	keys *PublicKeys
	p    Params
	ck   *ckks.Evaluator
	bg   *bgv.Evaluator
	rl   *rlwe.Evaluator
}

// NewEvaluator returns an evaluator for the collective keys.
func NewEvaluator(keys *PublicKeys) *Evaluator {
	ev := &Evaluator{keys: keys, p: keys.params}
	if ev.p.lit.Scheme == CKKS {
		ev.ck = ckks.NewEvaluator(ev.p.ckks, keys.evk)
		ev.rl = ev.ck.Evaluator
	} else {
		ev.bg = bgv.NewEvaluator(ev.p.bgv, keys.evk)
		ev.rl = ev.bg.Evaluator
	}
	return ev
}

// Aggregate is an encrypted aggregate: group g's value is in slot g.
type Aggregate struct {
	params Params
	groups int
	bound  float64
	l0     int64
	linf   float64
	ct     *rlwe.Ciphertext
}

// Groups returns the number of groups.
func (a *Aggregate) Groups() int { return a.groups }

// Sensitivity returns the L0 (groups one row reaches) and L∞ (most one row
// moves one group) sensitivities of the aggregate, from the column's bounds
// and the weights.
func (a *Aggregate) Sensitivity() (l0 int64, linf float64) { return a.l0, a.linf }

// Aggregate computes spec over col. Per group it multiplies each ciphertext
// by the plaintext weight vector of its rows and accumulates (slot-wise),
// sums the slots by rotations (an inner sum), then masks the sum into slot g;
// the groups are added into one ciphertext.
func (ev *Evaluator) Aggregate(ctx context.Context, col *Column, spec Spec) (*Aggregate, error) {
	p := ev.p
	if col.keys != ev.keys.Fingerprint() {
		return nil, fmt.Errorf("%w: he: column encrypted under other keys", cove.ErrInvalid)
	}
	weights, l0, linf, err := checkSpec(p, col, spec)
	if err != nil {
		return nil, err
	}
	a := &Aggregate{params: p, groups: len(weights), l0: l0, linf: linf, bound: noiseBound(p, weights)}
	a.ct, err = ev.aggregate(ctx, col.cts, weights)
	if err != nil {
		return nil, err
	}
	return a, nil
}

// checkSpec validates the weights and returns them (normalized for a mean)
// with the sensitivities.
func checkSpec(p Params, col *Column, spec Spec) ([][]float64, int64, float64, error) {
	g := len(spec.Weights)
	if g < 1 || g > p.Slots() {
		return nil, 0, 0, fmt.Errorf("%w: he: %d groups (1..%d)", cove.ErrLimit, g, p.Slots())
	}
	switch spec.Kind {
	case Sum, Count, WeightedSum:
	case Mean:
		if p.lit.Scheme != CKKS {
			return nil, 0, 0, fmt.Errorf("%w: he: mean needs CKKS; with BGV release the sum and divide by the public count", cove.ErrInvalid)
		}
	default:
		return nil, 0, 0, fmt.Errorf("%w: he: unknown aggregate %q", cove.ErrInvalid, spec.Kind)
	}
	if spec.Kind == Count && (col.lo != 0 || col.hi != 1) {
		return nil, 0, 0, fmt.Errorf("%w: he: count needs an indicator column with bounds [0, 1]", cove.ErrInvalid)
	}
	// A row's value can move by at most its range (a change) or its
	// magnitude (a removal with the row's weights fixed).
	span := max(col.hi-col.lo, math.Abs(col.lo), math.Abs(col.hi))
	out := make([][]float64, g)
	reach := make([]int64, col.rows)
	var linf float64
	limit := math.Exp2(20)
	if p.lit.Scheme == BGV {
		limit = float64(p.lit.PlaintextModulus / 2)
	}
	for gi, w := range spec.Weights {
		if len(w) != col.rows {
			return nil, 0, 0, fmt.Errorf("%w: he: group %d has %d weights for %d rows", cove.ErrInvalid, gi, len(w), col.rows)
		}
		var total, most float64
		for i, x := range w {
			switch {
			case math.IsNaN(x) || math.IsInf(x, 0) || math.Abs(x) > limit:
				return nil, 0, 0, fmt.Errorf("%w: he: weight %d of group %d is %v", cove.ErrInvalid, i, gi, x)
			case (spec.Kind == Sum || spec.Kind == Count) && x != 0 && x != 1:
				return nil, 0, 0, fmt.Errorf("%w: he: %s needs 0/1 weights", cove.ErrInvalid, spec.Kind)
			case spec.Kind == Mean && x < 0:
				return nil, 0, 0, fmt.Errorf("%w: he: mean needs non-negative weights", cove.ErrInvalid)
			case p.lit.Scheme == BGV && x != math.Trunc(x):
				return nil, 0, 0, fmt.Errorf("%w: he: BGV needs integer weights", cove.ErrInvalid)
			}
			if x != 0 {
				reach[i]++
			}
			total += x
			most = max(most, math.Abs(x))
		}
		out[gi] = w
		if spec.Kind == Mean {
			if total <= 0 {
				return nil, 0, 0, fmt.Errorf("%w: he: group %d selects no rows", cove.ErrInvalid, gi)
			}
			n := make([]float64, len(w))
			for i, x := range w {
				n[i] = x / total
			}
			out[gi], most = n, most/total
		}
		linf = max(linf, most*span)
	}
	// The largest possible aggregate must fit the release level: exact mod t
	// for BGV, below the modulus over the scale for CKKS.
	mag := max(math.Abs(col.lo), math.Abs(col.hi))
	room := float64(p.lit.PlaintextModulus / 2)
	if p.lit.Scheme == CKKS {
		room = math.Exp2(float64(p.lit.LogQ[0]+p.lit.LogQ[1]-p.lit.LogScale-2)) / 2
	}
	for gi, w := range out {
		var s float64
		for _, x := range w {
			s += math.Abs(x)
		}
		if s*mag > room/2 {
			return nil, 0, 0, fmt.Errorf("%w: he: group %d could reach %v, beyond the ±%v the parameters hold", cove.ErrLimit, gi, s*mag, room/2)
		}
	}
	var l0 int64
	for _, r := range reach {
		l0 = max(l0, r)
	}
	return out, max(l0, 1), linf, nil
}

// aggregate is the circuit: Σ_chunks ct ⊙ w, inner sum, mask, Σ_groups.
func (ev *Evaluator) aggregate(ctx context.Context, cts []*rlwe.Ciphertext, weights [][]float64) (*rlwe.Ciphertext, error) {
	p := ev.p
	slots := p.Slots()
	top := p.topLevel()
	var out *rlwe.Ciphertext
	wbuf := make([]float64, slots)
	ibuf := make([]int64, slots)
	ptW := ev.newPlaintext(top)
	ptM := ev.newPlaintext(top - 1)
	acc := ev.newCiphertext(top)
	tmp := ev.newCiphertext(top - 2)
	for g, w := range weights {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%w: he: %v", cove.ErrCancelled, err)
		}
		used := false
		for c, ct := range cts {
			chunk := w[c*slots : min((c+1)*slots, len(w))]
			if allZero(chunk) {
				continue
			}
			clear(wbuf)
			copy(wbuf, chunk)
			if err := ev.encode(wbuf, ibuf, ptW, true); err != nil {
				return nil, err
			}
			if !used {
				if err := ev.mul(ct, ptW, acc); err != nil {
					return nil, err
				}
				used = true
			} else if err := ev.mulThenAdd(ct, ptW, acc); err != nil {
				return nil, err
			}
		}
		if !used {
			// An empty group: its slot stays an encryption of zero plus noise.
			continue
		}
		sum := ev.newCiphertext(top - 1)
		if err := ev.rescale(acc, sum); err != nil {
			return nil, err
		}
		if err := ev.innerSum(sum); err != nil {
			return nil, err
		}
		clear(wbuf)
		wbuf[g] = 1
		if err := ev.encode(wbuf, ibuf, ptM, true); err != nil {
			return nil, err
		}
		if err := ev.mul(sum, ptM, sum); err != nil {
			return nil, err
		}
		if out == nil {
			out = ev.newCiphertext(top - 2)
			if err := ev.rescale(sum, out); err != nil {
				return nil, err
			}
			continue
		}
		if err := ev.rescale(sum, tmp); err != nil {
			return nil, err
		}
		if err := ev.add(out, tmp, out); err != nil {
			return nil, err
		}
	}
	if out == nil {
		return nil, fmt.Errorf("%w: he: every group is empty", cove.ErrInvalid)
	}
	return out, nil
}

func allZero(w []float64) bool {
	for _, x := range w {
		if x != 0 {
			return false
		}
	}
	return true
}

func (ev *Evaluator) newPlaintext(level int) *rlwe.Plaintext {
	if ev.ck != nil {
		pt := ckks.NewPlaintext(ev.p.ckks, level)
		// A weight plaintext at the scale of the prime the rescale removes
		// keeps the ciphertext's scale exactly.
		pt.Scale = rlwe.NewScale(ev.p.rlwe.Q()[level])
		return pt
	}
	return bgv.NewPlaintext(ev.p.bgv, level)
}

func (ev *Evaluator) newCiphertext(level int) *rlwe.Ciphertext {
	if ev.ck != nil {
		return ckks.NewCiphertext(ev.p.ckks, 1, level)
	}
	return bgv.NewCiphertext(ev.p.bgv, 1, level)
}

// encode encodes weights (as floats for CKKS, integers for BGV) on pt.
func (ev *Evaluator) encode(w []float64, ibuf []int64, pt *rlwe.Plaintext, _ bool) error {
	var err error
	if ev.ck != nil {
		err = ev.ck.Encode(w, pt)
	} else {
		for i, x := range w {
			ibuf[i] = int64(x)
		}
		err = ev.bg.Encode(ibuf, pt)
	}
	if err != nil {
		return fmt.Errorf("%w: he: %v", cove.ErrPrivacy, err)
	}
	return nil
}

func (ev *Evaluator) mul(ct *rlwe.Ciphertext, pt *rlwe.Plaintext, out *rlwe.Ciphertext) error {
	var err error
	if ev.ck != nil {
		err = ev.ck.Mul(ct, pt, out)
	} else {
		err = ev.bg.Mul(ct, pt, out)
	}
	return wrap(err)
}

func (ev *Evaluator) mulThenAdd(ct *rlwe.Ciphertext, pt *rlwe.Plaintext, out *rlwe.Ciphertext) error {
	var err error
	if ev.ck != nil {
		err = ev.ck.MulThenAdd(ct, pt, out)
	} else {
		err = ev.bg.MulThenAdd(ct, pt, out)
	}
	return wrap(err)
}

func (ev *Evaluator) add(a *rlwe.Ciphertext, b rlwe.Operand, out *rlwe.Ciphertext) error {
	var err error
	if ev.ck != nil {
		err = ev.ck.Add(a, b, out)
	} else {
		err = ev.bg.Add(a, b, out)
	}
	return wrap(err)
}

func (ev *Evaluator) rescale(in, out *rlwe.Ciphertext) error {
	var err error
	if ev.ck != nil {
		err = ev.ck.Rescale(in, out)
	} else {
		err = ev.bg.Rescale(in, out)
	}
	return wrap(err)
}

// innerSum leaves the sum of all slots in every slot.
func (ev *Evaluator) innerSum(ct *rlwe.Ciphertext) error {
	if ev.ck != nil {
		return wrap(ev.rl.InnerSum(ct, 1, ev.p.Slots(), ct))
	}
	if err := ev.rl.InnerSum(ct, 1, ev.p.Slots()/2, ct); err != nil {
		return wrap(err)
	}
	rot := ev.newCiphertext(ct.Level())
	if err := ev.bg.RotateRows(ct, rot); err != nil {
		return wrap(err)
	}
	return ev.add(ct, rot, ct)
}

func wrap(err error) error {
	if err != nil {
		return fmt.Errorf("%w: he: %v", cove.ErrPrivacy, err)
	}
	return nil
}

// Mechanism names the DP noise distribution.
type Mechanism string

const (
	// Laplace: ε-DP (δ = 0); the discrete Laplace of google's noise package.
	Laplace Mechanism = "laplace"
	// Gaussian: (ε, δ)-DP; google's binomial-sampled Gaussian.
	Gaussian Mechanism = "gaussian"
)

// DP sets the privacy parameters of one release. The lead debits ε and δ
// from the budget before it calls AddNoise.
type DP struct {
	Mechanism Mechanism
	Epsilon   float64
	Delta     float64
}

// Noised is an aggregate with DP noise added under encryption, ready for
// release. The host never sees it in the clear.
type Noised struct {
	params Params
	meta   releaseMeta
	ct     *rlwe.Ciphertext
}

// Groups returns the number of groups.
func (n *Noised) Groups() int { return n.meta.Groups }

// Noise describes the noise of the aggregate.
func (n *Noised) Noise() NoiseInfo { return n.meta.Noise }

// AddNoise draws one noise value per group with google's secure noise
// package, encodes the vector and adds it to the aggregate's ciphertext.
// Slots beyond the groups stay encryptions of (near) zero. The aggregate
// must not be released without it: only a Noised can be.
func (ev *Evaluator) AddNoise(a *Aggregate, dp DP) (*Noised, error) {
	p := ev.p
	var nz noise.Noise
	switch dp.Mechanism {
	case Laplace:
		nz = noise.Laplace()
	case Gaussian:
		nz = noise.Gaussian()
	default:
		return nil, fmt.Errorf("%w: he: unknown mechanism %q", cove.ErrInvalid, dp.Mechanism)
	}
	linf := a.linf
	if p.lit.Scheme == BGV {
		linf = math.Ceil(linf)
	}
	info := NoiseInfo{Mechanism: dp.Mechanism, Epsilon: dp.Epsilon, Delta: dp.Delta, L0: a.l0, LInf: linf}
	vals := make([]float64, p.Slots())
	ivals := make([]int64, p.Slots())
	for g := range a.groups {
		var err error
		if p.lit.Scheme == CKKS {
			vals[g], err = nz.AddNoiseFloat64(0, a.l0, linf, dp.Epsilon, dp.Delta)
		} else {
			ivals[g], err = nz.AddNoiseInt64(0, a.l0, int64(linf), dp.Epsilon, dp.Delta)
			vals[g] = float64(ivals[g])
		}
		if err != nil {
			return nil, fmt.Errorf("%w: he: %v", cove.ErrPrivacy, err)
		}
	}
	if dp.Mechanism == Laplace {
		info.Std = math.Sqrt2 * float64(a.l0) * linf / dp.Epsilon
	} else {
		info.Std = noise.SigmaForGaussian(a.l0, linf, dp.Epsilon, dp.Delta)
	}
	ct := a.ct.CopyNew()
	var pt *rlwe.Plaintext
	if p.lit.Scheme == CKKS {
		pt = ckks.NewPlaintext(p.ckks, ct.Level())
		pt.Scale = ct.Scale
		if err := ev.ck.Encode(vals, pt); err != nil {
			return nil, wrap(err)
		}
	} else {
		pt = bgv.NewPlaintext(p.bgv, ct.Level())
		pt.Scale = ct.Scale
		if err := ev.bg.Encode(ivals, pt); err != nil {
			return nil, wrap(err)
		}
	}
	if err := ev.add(ct, pt, ct); err != nil {
		return nil, err
	}
	meta := releaseMeta{Scheme: p.lit.Scheme, Groups: a.groups, Noise: info, NoiseBound: a.bound, Providers: len(ev.keys.providers)}
	if _, err := flooding(p, a.bound, meta.Providers); err != nil {
		return nil, err
	}
	if p.lit.Scheme == CKKS {
		meta.LogPrecision, meta.Noise.FloodStdOut = ckksPrecision(p, meta.Providers, a.bound, ct.Scale.Float64())
		meta.Noise.Rounding = math.Exp2(-meta.LogPrecision)
	}
	clear(vals)
	clear(ivals)
	return &Noised{params: p, meta: meta, ct: ct}, nil
}

// ckksPrecision chooses the DecodePublic precision of a CKKS release: the
// grid is the smallest power of two at least the standard deviation of the
// flooding noise as it appears in a decoded slot (σ·√(providers·N/2)/scale).
// Flooding hides the key-dependent noise; the rounding removes the low bits
// that flooding leaves (lattigo SECURITY.md). lattigo's DecodePublic treats 0
// as "no rounding", so a grid of 1 becomes 2.
func ckksPrecision(p Params, providers int, bound, scale float64) (logPrec, floodStd float64) {
	floodStd = floodSigma(p, bound) * math.Sqrt(float64(providers)*float64(p.rlwe.N())/2) / scale
	logPrec = math.Floor(-math.Log2(floodStd))
	if logPrec == 0 {
		logPrec = -1
	}
	return logPrec, floodStd
}

// Add sums aggregates with the same groups over different columns (for
// instance one per provider): multi-source fusion. Each row belongs to one
// column, so a row still reaches at most the larger L0 and moves a group by
// at most the larger L∞.
func (ev *Evaluator) Add(aggs ...*Aggregate) (*Aggregate, error) {
	if len(aggs) == 0 {
		return nil, fmt.Errorf("%w: he: nothing to add", cove.ErrInvalid)
	}
	out := &Aggregate{params: ev.p, groups: aggs[0].groups, ct: aggs[0].ct.CopyNew()}
	var b2 float64
	for i, a := range aggs {
		if a.groups != out.groups || a.ct.Level() != out.ct.Level() {
			return nil, fmt.Errorf("%w: he: aggregates differ in groups or level", cove.ErrInvalid)
		}
		if i > 0 {
			if err := ev.add(out.ct, a.ct, out.ct); err != nil {
				return nil, err
			}
		}
		out.l0, out.linf = max(out.l0, a.l0), max(out.linf, a.linf)
		b2 += a.bound * a.bound
	}
	out.bound = math.Sqrt(b2)
	return out, nil
}

// Segment is one part of an encrypted column attached in segments, each
// encrypted by its own provider under the same collective keys: Column holds
// rows [Start, Start+Column.Rows()) of the table.
type Segment struct {
	Start  int
	Column *Column
}

// AggregateSegments computes spec over a column attached in segments:
// spec.Weights has one weight per row of the whole table, and the segments,
// in order, must tile [0, rows) exactly, under the evaluator's keys and
// with the same bounds. The weights are checked (and, for a mean,
// normalized by the public total) over the whole table, so the
// sensitivities and a mean's denominator are those of the whole column;
// each segment is aggregated over its slice of the weights and the
// per-segment aggregates are fused with Add. A row lies in one segment, so
// the sensitivity is the whole column's, as if one provider had encrypted
// it. A segment none of whose rows is weighted adds exactly 0 and is
// skipped. One segment is the same computation as Aggregate.
func (ev *Evaluator) AggregateSegments(ctx context.Context, segs []Segment, spec Spec) (*Aggregate, error) {
	p := ev.p
	if len(segs) == 0 {
		return nil, fmt.Errorf("%w: he: no segments", cove.ErrInvalid)
	}
	lo, hi := segs[0].Column.lo, segs[0].Column.hi
	next := 0
	for i, s := range segs {
		switch {
		case s.Column == nil:
			return nil, fmt.Errorf("%w: he: segment %d has no column", cove.ErrInvalid, i)
		case s.Column.keys != ev.keys.Fingerprint():
			return nil, fmt.Errorf("%w: he: segment %d is encrypted under other keys", cove.ErrInvalid, i)
		case s.Column.lo != lo || s.Column.hi != hi:
			return nil, fmt.Errorf("%w: he: segment %d has bounds [%v, %v], segment 0 [%v, %v]", cove.ErrInvalid, i, s.Column.lo, s.Column.hi, lo, hi)
		case s.Start < next:
			return nil, fmt.Errorf("%w: he: segment %d starts at row %d, inside rows [0, %d) already covered", cove.ErrInvalid, i, s.Start, next)
		case s.Start > next:
			return nil, fmt.Errorf("%w: he: no segment covers rows [%d, %d)", cove.ErrInvalid, next, s.Start)
		}
		next += s.Column.rows
	}
	if next > MaxRows {
		return nil, fmt.Errorf("%w: he: %d rows (1..%d)", cove.ErrLimit, next, MaxRows)
	}
	// The whole column as the sensitivity sees it: its rows and bounds.
	whole := &Column{params: p, keys: ev.keys.Fingerprint(), rows: next, lo: lo, hi: hi}
	weights, l0, linf, err := checkSpec(p, whole, spec)
	if err != nil {
		return nil, err
	}
	var aggs []*Aggregate
	for _, s := range segs {
		part := make([][]float64, len(weights))
		empty := true
		for g, w := range weights {
			part[g] = w[s.Start : s.Start+s.Column.rows]
			empty = empty && allZero(part[g])
		}
		if empty {
			continue
		}
		a := &Aggregate{params: p, groups: len(weights), l0: l0, linf: linf, bound: noiseBound(p, part)}
		if a.ct, err = ev.aggregate(ctx, s.Column.cts, part); err != nil {
			return nil, err
		}
		aggs = append(aggs, a)
	}
	if len(aggs) == 0 {
		return nil, fmt.Errorf("%w: he: every group is empty", cove.ErrInvalid)
	}
	if len(aggs) == 1 {
		return aggs[0], nil
	}
	return ev.Add(aggs...)
}
