package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/covedata/cove"
	"github.com/covedata/cove/connectors"
	"github.com/covedata/cove/enclave/he"
	"github.com/covedata/cove/policy"
	"github.com/covedata/cove/store"
)

// HEQueryRequest is an operator's encrypted query: a vector q of length
// len(Columns), encrypted under the operator's own key (he.Query), applied
// to a public aggregate of the dataset: X[g][j] is the sum over the rows of
// group g (rows whose GroupBy value is Groups[g]) of column j clamped to
// Bounds[j]. The reply holds y[g] = Σ_j q[j]·X̃[g][j] under the operator's
// key, where X̃ is X with DP noise on every element. The sandbox never sees q.
//
// DP: one row (the privacy unit) reaches one group and moves X[g][j] by at
// most span_j = max(hi−lo, |lo|, |hi|) in each of the J columns. The enclave
// noises X in the clear before the encrypted evaluation (he.EvaluateQuery:
// l0 = J, lInf = span_j per column), so X̃ is an (ε, δ)-DP release and the
// reply is post-processing of it, for any q: the guarantee does not depend
// on the operator's vector, which the sandbox cannot read or bound.
type HEQueryRequest struct {
	ID        string       `json:"id"`
	Grant     string       `json:"grant"`
	Dataset   string       `json:"dataset"`
	Purpose   string       `json:"purpose"`
	Columns   []string     `json:"columns"`
	Bounds    [][2]float64 `json:"bounds"`
	GroupBy   string       `json:"group_by"`
	Groups    []string     `json:"groups"`
	Mechanism string       `json:"mechanism,omitempty"` // laplace (default) or gaussian
	Epsilon   float64      `json:"epsilon"`
	Delta     float64      `json:"delta,omitempty"`
	Query     []byte       `json:"query"` // serialized he.Query (base64 in JSON)
}

// HEQueryReply is the sandbox's answer: the encrypted reply (serialized
// he.QueryReply: only the operator opens it) and what the ledger recorded.
// Noise is the per-element noise of X̃, from which the operator computes the
// noise of its own y (he.QueryNoiseInfo.StdOf, Interval).
type HEQueryReply struct {
	Record store.HEQuery     `json:"record"`
	Reply  []byte            `json:"reply"`
	Groups []string          `json:"groups"`
	Noise  he.QueryNoiseInfo `json:"noise"`
}

// querySpec is the public part of a query, recorded in the ledger: the
// sensitivities (l0 = the number of columns, linf = span_j per column) and
// the scale of the noise on each element of X (Laplace b_j or Gaussian σ_j).
type querySpec struct {
	Columns   []string     `json:"columns"`
	Bounds    [][2]float64 `json:"bounds"`
	GroupBy   string       `json:"group_by"`
	Groups    []string     `json:"groups"`
	Mechanism string       `json:"mechanism"`
	L0        int64        `json:"l0"`
	LInf      []float64    `json:"linf"`
	Scale     []float64    `json:"scale,omitempty"`
}

// MaxQueryGroups bounds the groups of one query.
const MaxQueryGroups = 4096

// AnswerHEQuery answers an operator's encrypted query. The grant must be
// the operator's, live, allow mechanism he and the purpose, and cover the
// dataset's columns (no direct identifier); the budget must pay for (ε, δ).
// The reply, the budget debit and the he.query ledger entry are committed
// together (store.RecordHEQuery); a retry under the same id with the same
// request returns the stored reply, with no new noise and no new debit.
func (r *Runner) AnswerHEQuery(ctx context.Context, operator string, req HEQueryRequest, requestSHA256 [32]byte) (*HEQueryReply, error) {
	reqHash := hex.EncodeToString(requestSHA256[:])
	if q, reply, err := r.store.HEQueryByID(ctx, req.ID); err == nil {
		if q.Operator != operator || q.RequestSHA256 != reqHash {
			return nil, fmt.Errorf("%w: HE query id %s is used by another request", cove.ErrExists, req.ID)
		}
		return storedReply(q, reply)
	} else if !errors.Is(err, cove.ErrNotFound) {
		return nil, err
	}
	spec, err := r.checkHEQuery(ctx, operator, req)
	if err != nil {
		return nil, err
	}
	q, err := he.UnmarshalQuery(req.Query)
	if err != nil {
		return nil, err
	}
	if q.Len() != len(req.Columns) {
		return nil, fmt.Errorf("%w: the encrypted vector has %d values for %d columns", cove.ErrInvalid, q.Len(), len(req.Columns))
	}
	d, err := r.store.Dataset(ctx, req.Dataset)
	if err != nil {
		return nil, err
	}
	X, err := r.queryMatrix(ctx, d, req)
	if err != nil {
		return nil, err
	}
	mech := he.Laplace
	if spec.Mechanism == string(he.Gaussian) {
		mech = he.Gaussian
	}
	rep, err := he.EvaluateQuery(ctx, q, X, he.QueryNoise{DP: he.DP{Mechanism: mech, Epsilon: req.Epsilon, Delta: req.Delta}, Span: spec.LInf})
	for _, row := range X {
		clear(row)
	}
	if err != nil {
		return nil, err
	}
	spec.Scale = rep.Noise().Scale
	reply, err := rep.MarshalBinary()
	if err != nil {
		return nil, err
	}
	qs, rs := sha256.Sum256(req.Query), sha256.Sum256(reply)
	rec := store.HEQuery{ID: req.ID, Operator: operator, Grant: req.Grant, Dataset: req.Dataset, Purpose: req.Purpose, Spec: spec,
		RequestSHA256: reqHash, QuerySHA256: hex.EncodeToString(qs[:]), ReplySHA256: hex.EncodeToString(rs[:]), Epsilon: req.Epsilon, Delta: req.Delta}
	rec, err = r.store.RecordHEQuery(context.WithoutCancel(ctx), rec, reply)
	if errors.Is(err, cove.ErrExists) {
		// A concurrent request of the same id won: answer with its reply
		// (this one's noise is discarded, never shown).
		stored, sreply, gerr := r.store.HEQueryByID(ctx, req.ID)
		if gerr != nil || stored.Operator != operator || stored.RequestSHA256 != reqHash {
			return nil, err
		}
		return storedReply(stored, sreply)
	}
	if err != nil {
		return nil, err
	}
	return &HEQueryReply{Record: rec, Reply: reply, Groups: spec.Groups, Noise: rep.Noise()}, nil
}

// StoredHEQuery returns operator's stored query reply by id; another
// operator's query is not found.
func StoredHEQuery(ctx context.Context, st *store.Store, operator, id string) (*HEQueryReply, error) {
	q, reply, err := st.HEQueryByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if q.Operator != operator {
		return nil, fmt.Errorf("%w: HE query %s", cove.ErrNotFound, id)
	}
	return storedReply(q, reply)
}

func storedReply(q store.HEQuery, reply []byte) (*HEQueryReply, error) {
	rep, err := he.UnmarshalQueryReply(reply)
	if err != nil {
		return nil, err
	}
	out := &HEQueryReply{Record: q, Reply: reply, Noise: rep.Noise()}
	if s, ok := q.Spec.(map[string]any); ok {
		if gs, ok := s["groups"].([]any); ok {
			for _, g := range gs {
				out.Groups = append(out.Groups, fmt.Sprint(g))
			}
		}
	}
	return out, nil
}

// checkHEQuery checks a query against its grant and returns its public spec
// with the sensitivities of X: l0 = J (a row reaches the J columns of its
// group) and lInf = span_j per column.
func (r *Runner) checkHEQuery(ctx context.Context, operator string, req HEQueryRequest) (querySpec, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: HE query: "+format, append([]any{cove.ErrInvalid}, a...)...)
	}
	var spec querySpec
	switch {
	case !policy.ValidName(req.ID):
		return spec, bad("id %q is not a valid name", req.ID)
	case len(req.Columns) < 1 || len(req.Columns) != len(req.Bounds):
		return spec, bad("one bound pair per column, at least one column")
	case req.GroupBy == "" || len(req.Groups) < 1:
		return spec, bad("group_by and groups (public values) are required")
	case len(req.Groups) > MaxQueryGroups || len(req.Columns) > 4096:
		return spec, fmt.Errorf("%w: HE query: at most %d groups and 4096 columns", cove.ErrLimit, MaxQueryGroups)
	case !(req.Epsilon > 0) || math.IsInf(req.Epsilon, 0) || !(req.Delta >= 0 && req.Delta < 1):
		return spec, bad("epsilon must be positive and finite, delta in [0, 1)")
	}
	mech := req.Mechanism
	if mech == "" {
		mech = string(he.Laplace)
	}
	if mech != string(he.Laplace) && mech != string(he.Gaussian) {
		return spec, bad("mechanism %q is not laplace or gaussian", mech)
	}
	if (mech == string(he.Gaussian)) != (req.Delta > 0) {
		return spec, bad("gaussian needs delta > 0, laplace delta 0")
	}
	seen := map[string]bool{}
	for _, g := range req.Groups {
		if seen[g] {
			return spec, bad("group value %q repeated", g)
		}
		seen[g] = true
	}
	gs, err := r.store.Grant(ctx, req.Grant)
	if err != nil {
		return spec, err
	}
	d, err := r.store.Dataset(ctx, req.Dataset)
	if err != nil {
		return spec, err
	}
	g := gs.Grant
	switch {
	case g.Operator != operator:
		return spec, fmt.Errorf("%w: grant %s is not operator %s's", cove.ErrOutOfScope, g.ID, operator)
	case !slices.Contains(g.Mechanisms, policy.MechanismHE):
		return spec, fmt.Errorf("%w: grant %s does not allow mechanism he", cove.ErrOutOfScope, g.ID)
	case !slices.Contains(g.Purposes, req.Purpose):
		return spec, fmt.Errorf("%w: purpose %q is not one of grant %s's", cove.ErrOutOfScope, req.Purpose, g.ID)
	case !g.Covers(d) || d.Sharing == policy.NotShared:
		return spec, fmt.Errorf("%w: dataset %s is not in grant %s", cove.ErrOutOfScope, d.Name, g.ID)
	case gs.RevokedAt != nil:
		return spec, fmt.Errorf("%w: grant %s was revoked", cove.ErrGrantInactive, g.ID)
	}
	spans := make([]float64, 0, len(req.Columns))
	for j, c := range append(slices.Clone(req.Columns), req.GroupBy) {
		if !g.CanRead(d, c) {
			return spec, fmt.Errorf("%w: column %q of dataset %s is not in grant %s", cove.ErrOutOfScope, c, d.Name, g.ID)
		}
		if j == len(req.Columns) {
			break
		}
		lo, hi := req.Bounds[j][0], req.Bounds[j][1]
		if !(lo <= hi) || math.Abs(lo) > 1<<30 || math.Abs(hi) > 1<<30 || (lo == 0 && hi == 0) {
			return spec, bad("bounds of column %q are empty, [0, 0] or beyond ±2^30", c)
		}
		spans = append(spans, max(hi-lo, math.Abs(lo), math.Abs(hi)))
	}
	b, err := r.store.Budget(ctx, g.ID, d.Name)
	if err != nil {
		return spec, err
	}
	if b.Spent+b.Reserved+req.Epsilon > b.Cap+1e-12 {
		return spec, fmt.Errorf("%w: query needs ε %g; grant %s has %g left on dataset %s", cove.ErrBudgetExceeded, req.Epsilon, g.ID, b.Cap-b.Spent-b.Reserved, d.Name)
	}
	return querySpec{Columns: req.Columns, Bounds: req.Bounds, GroupBy: req.GroupBy, Groups: req.Groups,
		Mechanism: mech, L0: int64(len(spans)), LInf: spans}, nil
}

// queryMatrix computes X[g][j]: per group, the sum of each column clamped
// to its bounds (nulls count 0; rows outside the groups are dropped).
func (r *Runner) queryMatrix(ctx context.Context, d policy.Dataset, req HEQueryRequest) ([][]float64, error) {
	loc := d.Location
	if !strings.HasPrefix(loc, "s3://") && !strings.HasPrefix(loc, "file://") && !filepath.IsAbs(loc) && r.cfg.dataDir != "" {
		loc = filepath.Join(r.cfg.dataDir, loc)
	}
	cols := append(slices.Clone(req.Columns), req.GroupBy)
	rd, err := connectors.Open(ctx, loc, connectors.Options{Columns: cols, BatchRows: r.cfg.batchRows, Allocator: r.cfg.alloc, S3: r.cfg.s3})
	if err != nil {
		return nil, err
	}
	defer rd.Release()
	if snap := rd.Snapshot(); d.SHA256 != "" && snap.SHA256 != d.SHA256 {
		return nil, fmt.Errorf("%w: dataset %s changed since registration", cove.ErrInvalid, d.Name)
	}
	idx := make(map[string]int, len(req.Groups))
	for i, g := range req.Groups {
		idx[g] = i
	}
	X := make([][]float64, len(req.Groups))
	for i := range X {
		X[i] = make([]float64, len(req.Columns))
	}
	n := len(req.Columns)
	for rd.Next() {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%w: %v", cove.ErrCancelled, err)
		}
		rec := rd.RecordBatch()
		keys := rec.Column(n)
		for i := 0; i < int(rec.NumRows()); i++ {
			if keys.IsNull(i) {
				continue
			}
			g, ok := idx[keyString(keys, i)]
			if !ok {
				continue
			}
			for j := range n {
				v, ok, err := numberAt(rec.Column(j), i)
				if err != nil {
					return nil, fmt.Errorf("%w: column %q: %v", cove.ErrInvalid, req.Columns[j], err)
				}
				if ok {
					X[g][j] += min(max(v, req.Bounds[j][0]), req.Bounds[j][1])
				}
			}
		}
	}
	return X, rd.Err()
}

func keyString(a arrow.Array, i int) string {
	switch a := a.(type) {
	case *array.String:
		return a.Value(i)
	case *array.LargeString:
		return a.Value(i)
	case *array.Int64:
		return strconv.FormatInt(a.Value(i), 10)
	case *array.Int32:
		return strconv.FormatInt(int64(a.Value(i)), 10)
	case *array.Boolean:
		return strconv.FormatBool(a.Value(i))
	}
	return a.ValueStr(i)
}

func numberAt(a arrow.Array, i int) (float64, bool, error) {
	if a.IsNull(i) {
		return 0, false, nil
	}
	var v float64
	switch a := a.(type) {
	case *array.Float64:
		v = a.Value(i)
	case *array.Float32:
		v = float64(a.Value(i))
	case *array.Int64:
		v = float64(a.Value(i))
	case *array.Int32:
		v = float64(a.Value(i))
	default:
		return 0, false, fmt.Errorf("type %s is not a number", a.DataType())
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false, nil
	}
	return v, true, nil
}
