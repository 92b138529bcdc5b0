package he

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/bits"

	"github.com/tuneinsight/lattigo/v6/core/rlwe"
	"github.com/tuneinsight/lattigo/v6/schemes/ckks"

	"github.com/covedata/cove"
	"github.com/covedata/cove/enclave/he/internal/wire"
)

// queryLogPrecision is the DecodePublic precision of query replies: the
// operator decrypts under its own key, so the rounding only bounds what it
// reads of the enclave's rescale noise.
const queryLogPrecision = 20

// Query is an operator's vector encrypted under its own key (CKKS), with the
// Galois keys the enclave needs to sum it, also under the operator's key.
// The platform never sees the vector.
type Query struct {
	params Params
	n      int
	ct     *rlwe.Ciphertext
	evk    *rlwe.MemEvaluationKeySet
}

// Len returns the length of the encrypted vector.
func (q *Query) Len() int { return q.n }

func queryWidth(n int) int { return 1 << bits.Len(uint(n-1)) }

// EncryptQuery encrypts vec (for instance weights per district, or the
// coefficients of a linear model) under the operator's own secret key.
func (o *Operator) EncryptQuery(vec []float64) (*Query, error) {
	p := o.params
	if p.lit.Scheme != CKKS {
		return nil, fmt.Errorf("%w: he: encrypted queries need CKKS", cove.ErrInvalid)
	}
	if len(vec) < 1 || len(vec) > p.Slots() {
		return nil, fmt.Errorf("%w: he: query of %d values (1..%d)", cove.ErrLimit, len(vec), p.Slots())
	}
	for _, v := range vec {
		if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > 1<<20 {
			return nil, fmt.Errorf("%w: he: query value %v", cove.ErrInvalid, v)
		}
	}
	// The vector is replicated in every block of width w, so the enclave
	// evaluates all rows of X with one product and one inner sum.
	w := queryWidth(len(vec))
	rep := make([]float64, p.Slots())
	for b := 0; b < len(rep); b += w {
		copy(rep[b:], vec)
	}
	pt := ckks.NewPlaintext(p.ckks, p.topLevel())
	if err := ckks.NewEncoder(p.ckks).Encode(rep, pt); err != nil {
		return nil, wrap(err)
	}
	ct, err := rlwe.NewEncryptor(p.rlwe, o.sk).EncryptNew(pt)
	if err != nil {
		return nil, wrap(err)
	}
	els := rlwe.GaloisElementsForInnerSum(p.rlwe, 1, w)
	gks := rlwe.NewKeyGenerator(p.rlwe).GenGaloisKeysNew(els, o.sk, evkParams(p))
	return &Query{params: p, n: len(vec), ct: ct, evk: rlwe.NewMemEvaluationKeySet(nil, gks...)}, nil
}

// MarshalBinary serializes the query for the platform.
func (q *Query) MarshalBinary() ([]byte, error) {
	lit, _ := json.Marshal(q.params.lit)
	ct, err := q.ct.MarshalBinary()
	if err != nil {
		return nil, err
	}
	evk, err := q.evk.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return wire.Encode(wire.KindQuery, lit, wire.Uint64(uint64(q.n)), ct, evk), nil
}

// UnmarshalQuery parses an operator's query.
func UnmarshalQuery(b []byte) (*Query, error) {
	f, err := wire.Parse(b, wire.KindQuery, 4)
	if err != nil {
		return nil, fmt.Errorf("%w: he: query: %v", cove.ErrInvalid, err)
	}
	p, err := paramsFromJSON(f[0])
	if err != nil {
		return nil, err
	}
	n, err := wire.ReadUint64(f[1])
	if err != nil || n < 1 || n > uint64(p.Slots()) || p.lit.Scheme != CKKS {
		return nil, fmt.Errorf("%w: he: query: length", cove.ErrInvalid)
	}
	q := &Query{params: p, n: int(n), ct: rlwe.NewCiphertext(p.rlwe, 1, p.topLevel()), evk: &rlwe.MemEvaluationKeySet{}}
	if err := q.ct.UnmarshalBinary(f[2]); err != nil || q.ct.Degree() != 1 || q.ct.Level() != p.topLevel() || q.ct.Scale.Cmp(p.ckks.DefaultScale()) != 0 {
		return nil, fmt.Errorf("%w: he: query: ciphertext", cove.ErrInvalid)
	}
	if err := q.evk.UnmarshalBinary(f[3]); err != nil {
		return nil, fmt.Errorf("%w: he: query: keys: %v", cove.ErrInvalid, err)
	}
	for _, el := range rlwe.GaloisElementsForInnerSum(p.rlwe, 1, queryWidth(q.n)) {
		if _, err := q.evk.GetGaloisKey(el); err != nil {
			return nil, fmt.Errorf("%w: he: query: keys: %v", cove.ErrInvalid, err)
		}
	}
	return q, nil
}

// QueryReply is the enclave's answer to a query, under the operator's key.
type QueryReply struct {
	params Params
	n      int
	width  int
	noise  QueryNoiseInfo
	ct     *rlwe.Ciphertext
}

// Noise describes the DP noise of the reply: per column, the noise of each
// element of the noised aggregate the reply was computed from.
func (r *QueryReply) Noise() QueryNoiseInfo { return r.noise }

// EvaluateQuery adds DP noise to the public matrix X in the clear (qn: one
// draw per element from google's noise package, see QueryNoise), then
// computes, under the operator's key, y[r] = Σ_j q[j]·X̃[r][j] for each row
// of the noised X̃ and returns the reply only the operator opens. X̃ is an
// (ε, δ)-DP release on its own, so the reply is one for any vector q, which
// the enclave cannot read or bound. Row r is placed in block r of the
// replicated query: one product, one inner sum over the block width, one
// mask for all rows. X is not modified; X̃ is cleared before returning.
func EvaluateQuery(ctx context.Context, q *Query, X [][]float64, qn QueryNoise) (*QueryReply, error) {
	p := q.params
	w := queryWidth(q.n)
	if len(X) < 1 || len(X) > p.Slots()/w {
		return nil, fmt.Errorf("%w: he: %d rows (1..%d for a query of %d)", cove.ErrLimit, len(X), p.Slots()/w, q.n)
	}
	if len(qn.Span) != q.n {
		return nil, fmt.Errorf("%w: he: %d column spans for a query of %d", cove.ErrInvalid, len(qn.Span), q.n)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: he: %v", cove.ErrCancelled, err)
	}
	for r, row := range X {
		if len(row) != q.n {
			return nil, fmt.Errorf("%w: he: row %d has %d values for a query of %d", cove.ErrInvalid, r, len(row), q.n)
		}
		for j, x := range row {
			// Only a non-finite X is refused (the aggregate of clamped
			// columns is always finite). A large X is not: a refusal that
			// depends on the data before noise would itself disclose it.
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, fmt.Errorf("%w: he: X[%d][%d] is not finite", cove.ErrInvalid, r, j)
			}
		}
	}
	noised, info, err := noiseMatrix(X, qn)
	if err != nil {
		return nil, err
	}
	// The encoding holds values within ±2^30: X̃ is clamped there after the
	// noise, which is post-processing of the DP release, so the count of
	// clamped elements may be told to the operator.
	for _, row := range noised {
		for j, v := range row {
			if c := max(-queryMaxAbs, min(queryMaxAbs, v)); c != v {
				row[j] = c
				info.Clamped++
			}
		}
	}
	eval := ckks.NewEvaluator(p.ckks, q.evk)
	ecd := ckks.NewEncoder(p.ckks)
	top := p.topLevel()
	buf := make([]float64, p.Slots())
	for r, row := range noised {
		copy(buf[r*w:], row)
		clear(row)
	}
	ptX := ckks.NewPlaintext(p.ckks, top)
	ptX.Scale = rlwe.NewScale(p.rlwe.Q()[top])
	err = ecd.Encode(buf, ptX)
	clear(buf)
	if err != nil {
		return nil, wrap(err)
	}
	prod := ckks.NewCiphertext(p.ckks, 1, top)
	if err := eval.Mul(q.ct, ptX, prod); err != nil {
		return nil, wrap(err)
	}
	sum := ckks.NewCiphertext(p.ckks, 1, top-1)
	if err := eval.Rescale(prod, sum); err != nil {
		return nil, wrap(err)
	}
	if err := eval.InnerSum(sum, 1, w, sum); err != nil {
		return nil, wrap(err)
	}
	for r := range X {
		buf[r*w] = 1
	}
	ptM := ckks.NewPlaintext(p.ckks, top-1)
	ptM.Scale = rlwe.NewScale(p.rlwe.Q()[top-1])
	if err := ecd.Encode(buf, ptM); err != nil {
		return nil, wrap(err)
	}
	if err := eval.Mul(sum, ptM, sum); err != nil {
		return nil, wrap(err)
	}
	out := ckks.NewCiphertext(p.ckks, 1, top-2)
	if err := eval.Rescale(sum, out); err != nil {
		return nil, wrap(err)
	}
	return &QueryReply{params: p, n: len(X), width: w, noise: info, ct: out}, nil
}

// MarshalBinary serializes the reply for the operator.
func (r *QueryReply) MarshalBinary() ([]byte, error) {
	lit, _ := json.Marshal(r.params.lit)
	info, _ := json.Marshal(r.noise)
	ct, err := r.ct.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return wire.Encode(wire.KindQueryReply, lit, wire.Uint64(uint64(r.n)), wire.Uint64(uint64(r.width)), info, ct), nil
}

// UnmarshalQueryReply parses a reply.
func UnmarshalQueryReply(b []byte) (*QueryReply, error) {
	f, err := wire.Parse(b, wire.KindQueryReply, 5)
	if err != nil {
		return nil, fmt.Errorf("%w: he: reply: %v", cove.ErrInvalid, err)
	}
	p, err := paramsFromJSON(f[0])
	if err != nil {
		return nil, err
	}
	n, err := wire.ReadUint64(f[1])
	if err != nil || n < 1 || n > uint64(p.Slots()) {
		return nil, fmt.Errorf("%w: he: reply: length", cove.ErrInvalid)
	}
	w, err := wire.ReadUint64(f[2])
	if err != nil || w < 1 || w&(w-1) != 0 || n*w > uint64(p.Slots()) {
		return nil, fmt.Errorf("%w: he: reply: width", cove.ErrInvalid)
	}
	r := &QueryReply{params: p, n: int(n), width: int(w), ct: rlwe.NewCiphertext(p.rlwe, 1, p.releaseLevel())}
	if err := json.Unmarshal(f[3], &r.noise); err != nil {
		return nil, fmt.Errorf("%w: he: reply: %v", cove.ErrInvalid, err)
	}
	if nz := r.noise; len(nz.Std) < 1 || len(nz.Scale) != len(nz.Std) || len(nz.LInf) != len(nz.Std) || nz.L0 != int64(len(nz.Std)) {
		return nil, fmt.Errorf("%w: he: reply: noise description", cove.ErrInvalid)
	}
	if err := r.ct.UnmarshalBinary(f[4]); err != nil {
		return nil, fmt.Errorf("%w: he: reply: %v", cove.ErrInvalid, err)
	}
	return r, nil
}

// OpenReply decrypts a reply to one of the operator's queries with
// DecodePublic.
func (o *Operator) OpenReply(r *QueryReply) ([]float64, error) {
	if !r.params.rlwe.Equal(&o.params.rlwe) {
		return nil, fmt.Errorf("%w: he: reply under other parameters", cove.ErrInvalid)
	}
	pt := rlwe.NewDecryptor(o.params.rlwe, o.sk).DecryptNew(r.ct)
	all, err := decodePublic(o.params, pt, o.params.Slots(), queryLogPrecision)
	if err != nil {
		return nil, err
	}
	out := make([]float64, r.n)
	for i := range out {
		out[i] = all[i*r.width]
	}
	return out, nil
}
