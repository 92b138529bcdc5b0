package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/covedata/cove"
	"github.com/covedata/cove/connectors"
	"github.com/covedata/cove/enclave"
	"github.com/covedata/cove/enclave/he"
	"github.com/covedata/cove/policy"
	"github.com/covedata/cove/store"
)

// The homomorphic path (mechanism he). The guest reads public columns only
// and emits, per row and group, a weight; the host aggregates an encrypted
// column with those weights under the key holders' collective key, adds DP
// noise under encryption, records the approval of the release in the ledger,
// collects every key holder's share of the key switch to the operator's key
// and releases the result encrypted to that key. See docs/he.md.
//
// Retries never reuse randomness: each run draws its own noise and session,
// a job's output is approved at most once (store), and a key holder gives one
// share per ciphertext (its ShareLog). A job whose release coordination was
// interrupted fails and is refunded; a fresh result needs a new job and new
// budget.

// ShareSource reaches the key holders: Share sends a serialized
// he.ShareRequest to provider and returns its key-switch share. A provider
// that refuses, or cannot be reached, blocks the release.
// Implementations must be safe for concurrent use.
type ShareSource interface {
	Share(ctx context.Context, provider string, request []byte) ([]byte, error)
}

// WithShareSource sets how a Runner reaches the key holders of HE jobs.
// Without one, HE jobs fail (refunded).
func (c Config) WithShareSource(src ShareSource) Config { c.shares = src; return c }

// HEOutput is an HE output's release: the result encrypted to the
// operator's key (only the operator can open it: OpenHE), the group keys of
// its slots and the noise it carries.
type HEOutput struct {
	Column     string       `json:"column"`
	Keys       string       `json:"keys"`              // fingerprint of the collective keys
	Groups     [][]string   `json:"groups"`            // value g is group Groups[g]
	Release    string       `json:"release"`           // base64 of the serialized he.Release
	Ciphertext string       `json:"ciphertext_sha256"` // the noised aggregate the release approval names
	Recipient  string       `json:"recipient_sha256"`
	Noise      he.NoiseInfo `json:"noise"`
}

// heAggregates are the aggregates an HE output may declare.
var heAggregates = []string{string(he.Sum), string(he.Mean), string(he.Count), string(he.WeightedSum)}

// checkHE validates what a manifest says about the HE path: an HE job needs
// a recipient and a per-row privacy unit (the DP guarantee of an encrypted
// aggregate bounds one row: the provider's column has no unit columns); a DP
// job names neither a recipient nor encrypted columns.
func checkHE(lit ManifestLiteral) []error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: manifest: "+format, append([]any{cove.ErrInvalid}, a...)...))
	}
	if lit.Mechanism != policy.MechanismHE {
		if lit.Recipient != "" {
			bad("recipient is for mechanism he")
		}
		for i, o := range lit.Outputs {
			if o.Column != "" {
				bad("outputs[%d] (%s): column is for mechanism he", i, o.Name)
			}
		}
		return errs
	}
	if b, err := hex.DecodeString(lit.Recipient); err != nil || len(b) != sha256.Size || lit.Recipient != strings.ToLower(lit.Recipient) {
		bad("recipient must be the lower-case hex SHA-256 of the operator's registered key")
	}
	if !lit.PrivacyUnit.PerRow {
		bad("privacy_unit: mechanism he bounds one row: give per_row: true (one row per privacy unit)")
	}
	for i, o := range lit.Outputs {
		if slices.Contains(lit.Columns, o.Column) {
			bad("outputs[%d] (%s): encrypted column %q cannot be among the columns the guest reads", i, o.Name, o.Column)
		}
	}
	return errs
}

// heSpec validates an HE output. Its group keys are public partitions,
// checked as a DP count's would be; the bounds are the provider's, attached
// to the encrypted column, so the manifest gives none.
func (o OutputLiteral) heSpec() (enclave.Spec, error) {
	switch {
	case o.Column == "":
		return enclave.Spec{}, errors.New("column: name the encrypted column")
	case !slices.Contains(heAggregates, o.Aggregate):
		return enclave.Spec{}, fmt.Errorf("aggregate %q is not one of %s", o.Aggregate, strings.Join(heAggregates, ", "))
	case len(o.Bounds) != 0 || o.Granularity != 0 || len(o.Ranks) != 0 || len(o.Buckets) != 0:
		return enclave.Spec{}, errors.New("bounds, granularity, ranks and buckets are not for mechanism he (the bounds are the encrypted column's)")
	case o.Partitions == "private" || o.SelectionEpsilon != 0 || o.SelectionDelta != 0:
		return enclave.Spec{}, errors.New("mechanism he releases public partitions only")
	case o.MaxContributions > 1:
		return enclave.Spec{}, errors.New("max_contributions: a row contributes once per group under mechanism he")
	}
	c := o
	c.Aggregate, c.Column = string(enclave.Count), ""
	s, err := c.spec()
	if err != nil {
		return s, err
	}
	s.Aggregate = enclave.Aggregate(o.Aggregate)
	return s, nil
}

// heCost is an HE job's cost: basic composition of its outputs' (ε, δ).
func heCost(specs []enclave.Spec) (enclave.Cost, error) {
	var c enclave.Cost
	for _, s := range specs {
		c.Epsilon += s.Epsilon
		c.Delta += s.Delta
	}
	if !(c.Epsilon > 0) || math.IsInf(c.Epsilon, 0) || !(c.Delta >= 0 && c.Delta < 1) {
		return c, fmt.Errorf("%w: composed cost (ε %g, δ %g) is out of range", cove.ErrInvalid, c.Epsilon, c.Delta)
	}
	return c, nil
}

// maxHEWeights bounds the weights of one HE output (groups × rows): 2^25
// weights are 256 MiB.
const maxHEWeights = 1 << 25

// heInput is one HE output's encrypted column, loaded and checked: its
// segments (one when a single provider attached it whole), in row order.
type heInput struct {
	regs []store.HEColumn
	segs []he.Segment
}

// rows is the number of table rows the column's segments reach.
func (in heInput) rows() int {
	last := in.regs[len(in.regs)-1]
	return int(last.End)
}

// executeHE runs an HE job: guest over the public columns, weights per
// group, encrypted aggregate, noise, approval, shares, release.
func (r *Runner) executeHE(ctx context.Context, x *pass, md mode) (*Release, error) {
	job, m, d := x.job, x.m, x.d
	if r.cfg.shares == nil {
		return nil, fmt.Errorf("%w: job %s: no key holders are reachable (the runner has no share source)", cove.ErrPrivacy, job.ID)
	}
	if md, ok := md.(blockMode); ok {
		_ = md
		return nil, fmt.Errorf("%w: mechanism he does not run in mode block", cove.ErrInvalid)
	}
	g, err := r.store.Grant(ctx, job.Grant)
	if err != nil {
		return nil, err
	}
	recOp, recKey, err := r.store.HERecipientKey(ctx, m.lit.Recipient)
	if err != nil {
		return nil, err
	}
	if recOp != job.Operator {
		return nil, fmt.Errorf("%w: recipient key %s is not operator %s's", cove.ErrOutOfScope, m.lit.Recipient, job.Operator)
	}
	recipient, err := he.UnmarshalOperatorKey(recKey)
	if err != nil {
		return nil, err
	}

	// The encrypted columns: in the grant's scope, registered, unchanged,
	// all under one collective key; each in segments that tile the table's
	// rows without gap (segments never overlap: the store refuses it).
	var keys *he.PublicKeys
	inputs := make([]heInput, len(m.lit.Outputs))
	for i, o := range m.lit.Outputs {
		c, ok := d.Column(o.Column)
		if !ok || c.Role == policy.DirectIdentifier || !g.CanRead(d, o.Column) {
			return nil, fmt.Errorf("%w: encrypted column %q of dataset %s is not in grant %s", cove.ErrOutOfScope, o.Column, d.Name, g.ID)
		}
		regs, err := r.store.HEColumnSegments(ctx, d.Name, o.Column)
		if err != nil {
			return nil, err
		}
		in := heInput{regs: regs}
		next := int64(0)
		for _, reg := range regs {
			if reg.Start != next {
				if reg.Start > next {
					return nil, heGap(d.Name, []string{o.Column}, next, reg.Start)
				}
				return nil, fmt.Errorf("%w: encrypted column %s.%s: segments overlap at row %d", cove.ErrInvalid, d.Name, o.Column, reg.Start)
			}
			if reg.Lo != regs[0].Lo || reg.Hi != regs[0].Hi || reg.Nulls != regs[0].Nulls {
				return nil, fmt.Errorf("%w: encrypted column %s.%s: segments differ in bounds or nulls", cove.ErrInvalid, d.Name, o.Column)
			}
			next = reg.End
			if keys == nil {
				if keys, err = r.loadKeys(ctx, reg.Keys); err != nil {
					return nil, err
				}
			} else if reg.Keys != hex.EncodeToString(fpOf(keys)) {
				return nil, fmt.Errorf("%w: the encrypted columns of job %s are under different keys", cove.ErrInvalid, job.ID)
			}
			what := fmt.Sprintf("encrypted column %s.%s, rows [%d, %d)", d.Name, o.Column, reg.Start, reg.End)
			b, err := r.readChecked(reg.Path, reg.SHA256, what)
			if err != nil {
				return nil, err
			}
			col, err := he.UnmarshalColumn(keys, b)
			if err != nil {
				return nil, err
			}
			if lo, hi := col.Bounds(); int64(col.Rows()) != reg.Rows || reg.End-reg.Start != reg.Rows || lo != reg.Lo || hi != reg.Hi {
				return nil, fmt.Errorf("%w: %s does not match its registration", cove.ErrInvalid, what)
			}
			in.segs = append(in.segs, he.Segment{Start: int(reg.Start), Column: col})
		}
		inputs[i] = in
	}
	// Every column must reach the table's last row: the catalog's count
	// when it has one, else the longest column (the table is counted when
	// the guest reads it).
	rows := int(d.Rows)
	for _, in := range inputs {
		rows = max(rows, in.rows())
	}
	for i, in := range inputs {
		if in.rows() < rows {
			return nil, heGap(d.Name, []string{m.lit.Outputs[i].Column}, int64(in.rows()), int64(rows))
		}
	}

	// The weights are dense (groups × rows): bound them before allocating.
	for _, sp := range m.Specs() {
		if len(sp.Partitions) > keys.Params().Slots() || len(sp.Partitions)*rows > maxHEWeights {
			return nil, fmt.Errorf("%w: output %s: %d groups × %d rows exceed the HE limits (%d groups, %d weights)",
				cove.ErrLimit, sp.Output, len(sp.Partitions), rows, keys.Params().Slots(), maxHEWeights)
		}
	}
	acc := newHEWeights(m.Specs(), rows)
	if err := md.run(ctx, x, acc); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: job %s", cove.ErrDeadline, job.ID)
		}
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: job %s", cove.ErrDeadline, job.ID)
	}
	weights, tableRows := acc.weights, int(x.meter.Rows)
	if tableRows != rows {
		if tableRows > rows {
			var cols []string
			for _, o := range m.lit.Outputs {
				if !slices.Contains(cols, o.Column) {
					cols = append(cols, o.Column)
				}
			}
			return nil, heGap(d.Name, cols, int64(rows), int64(tableRows))
		}
		return nil, fmt.Errorf("%w: dataset %s has %d rows; encrypted column %s.%s reaches row %d", cove.ErrInvalid, d.Name, tableRows, d.Name, m.lit.Outputs[0].Column, rows)
	}

	// Aggregate and noise every output before asking anyone for a share.
	ev := he.NewEvaluator(keys)
	specs := m.Specs()
	noised := make([]*he.Noised, len(specs))
	for i, s := range specs {
		// Per segment over its rows, fused with Evaluator.Add: one
		// aggregate, one noise, one release, whoever encrypted which rows.
		agg, err := ev.AggregateSegments(ctx, inputs[i].segs, he.Spec{Kind: he.Kind(s.Aggregate), Weights: weights[i]})
		if err != nil {
			return nil, err
		}
		weights[i] = nil
		mech := he.Laplace
		if s.Mechanism == enclave.MechanismGaussian {
			mech = he.Gaussian
		}
		if noised[i], err = ev.AddNoise(agg, he.DP{Mechanism: mech, Epsilon: s.Epsilon, Delta: s.Delta}); err != nil {
			return nil, err
		}
	}

	rel := &Release{Job: job.ID, Grant: job.Grant, Dataset: job.Dataset, Mode: m.lit.Mode, Epsilon: job.Epsilon}
	if m.lit.Mode == ModeUnit {
		n, sd, err := enclave.NoisyCount(acc.fails, m.lit.FailureEpsilon)
		if err != nil {
			return nil, err
		}
		rel.Failures = &Failures{Of: "units", Count: n, NoiseStdDev: sd, Epsilon: m.lit.FailureEpsilon}
	}
	for i, s := range specs {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%w: job %s: %v", cove.ErrCancelled, job.ID, context.Cause(ctx))
		}
		out, err := r.releaseHE(ctx, job, s, keys, recipient, noised[i])
		if err != nil {
			return nil, err
		}
		lit := m.lit.Outputs[i]
		o := Output{Name: s.Output, Aggregate: string(s.Aggregate), Mechanism: string(out.Noise.Mechanism), Epsilon: s.Epsilon, Delta: s.Delta,
			Lower: inputs[i].regs[0].Lo, Upper: inputs[i].regs[0].Hi, MaxPartitions: s.MaxPartitions, MaxContributions: 1, HE: out}
		for _, gb := range lit.GroupBy {
			o.GroupBy = append(o.GroupBy, gb.label())
		}
		out.Column = lit.Column
		for _, p := range s.Partitions {
			out.Groups = append(out.Groups, strings.Split(p, KeySeparator))
		}
		rel.Outputs = append(rel.Outputs, o)
	}
	return rel, nil
}

// heGap is the refusal of a job whose encrypted column (or columns) does
// not cover rows [from, to) of the dataset's table: it names the columns
// and the range, nothing of the data.
func heGap(dataset string, columns []string, from, to int64) error {
	also := ""
	if len(columns) > 1 {
		also = " (nor does " + dataset + "." + strings.Join(columns[1:], ", "+dataset+".") + ")"
	}
	return fmt.Errorf("%w: encrypted column %s.%s does not cover rows [%d, %d) of the dataset's table%s: attach the missing segment",
		cove.ErrInvalid, dataset, columns[0], from, to, also)
}

// heWeightSet collects the weights the guest emits for an HE job's
// outputs: weights[o][p][i] is row i's weight in partition p of output o.
type heWeightSet struct {
	specs     []enclave.Spec
	weights   [][][]float64
	set       [][][]bool
	reach     [][]uint16
	partIndex []map[string]int
	fails     int64
}

func newHEWeights(specs []enclave.Spec, rows int) *heWeightSet {
	a := &heWeightSet{specs: specs, weights: make([][][]float64, len(specs)), set: make([][][]bool, len(specs)),
		reach: make([][]uint16, len(specs)), partIndex: make([]map[string]int, len(specs))}
	for i, s := range specs {
		a.weights[i] = make([][]float64, len(s.Partitions))
		a.set[i] = make([][]bool, len(s.Partitions))
		for p := range s.Partitions {
			a.weights[i][p] = make([]float64, rows)
			a.set[i][p] = make([]bool, rows)
		}
		a.reach[i] = make([]uint16, rows)
		a.partIndex[i] = make(map[string]int, len(s.Partitions))
		for p, k := range s.Partitions {
			a.partIndex[i][k] = p
		}
	}
	return a
}

// The sink methods: HE weights are per row, so they take rows (plan mode)
// and per-row units (unit mode); an encrypted aggregate bounds one row.

func (a *heWeightSet) partition(o int, key string) (int, error) {
	if p, ok := a.partIndex[o][key]; ok {
		return p, nil
	}
	return -1, nil // a key outside the public partitions is dropped, unreported
}

func (a *heWeightSet) rows(o int, first int64, parts []int32, values []float64) error {
	for i, p := range parts {
		if p < 0 {
			continue
		}
		w := 1.0
		if values != nil {
			w = values[i]
		}
		if err := a.add(o, int(p), first+int64(i), w); err != nil {
			return err
		}
	}
	return nil
}

func (a *heWeightSet) units(int, []uint64, []int32, []float64) error {
	return fmt.Errorf("%w: mechanism he bounds one row: give per_row: true", cove.ErrInvalid)
}

func (a *heWeightSet) unit(o int, _ uint64, row int64, p int, w float64) error {
	return a.add(o, p, row, w)
}

func (a *heWeightSet) seal(uint64) {}

func (a *heWeightSet) vector(int, int, []float64) error {
	return fmt.Errorf("%w: mechanism he takes no block vectors", cove.ErrInvalid)
}

func (a *heWeightSet) failed() { a.fails++ }

// add records the weight w of table row i in partition p of output o: the
// bounding of the HE path, a row weighs once per group and in at most
// max_partitions groups. What passes the bound is dropped, never reported
// (a refusal would tell the operator something of the row). Rows past the
// encrypted columns are counted by the pass and refused after it.
func (a *heWeightSet) add(o, p int, i int64, w float64) error {
	if w == 0 || i >= int64(len(a.reach[o])) || math.IsNaN(w) || math.IsInf(w, 0) {
		return nil
	}
	if a.set[o][p][i] || int(a.reach[o][i]) >= a.specs[o].MaxPartitions {
		return nil
	}
	a.set[o][p][i] = true
	a.reach[o][i]++
	a.weights[o][p][i] = w
	return nil
}

// releaseHE coordinates one output's release: approval in the ledger, one
// share from every key holder (each recorded before it is used), combine.
// Any failure leaves the result unreleased.
func (r *Runner) releaseHE(ctx context.Context, job store.Job, s enclave.Spec, keys *he.PublicKeys, recipient *he.OperatorKey, n *he.Noised) (*HEOutput, error) {
	req, err := he.NewShareRequest(job.ID, n, recipient, nil)
	if err != nil {
		return nil, err
	}
	ct, rec := req.CiphertextHash(), req.RecipientHash()
	a := store.HEApproval{Job: job.ID, Output: s.Output, Ciphertext: hex.EncodeToString(ct[:]), Recipient: hex.EncodeToString(rec[:]),
		Session: hex.EncodeToString(req.Session[:]), Keys: hex.EncodeToString(fpOf(keys))}
	seq, err := r.store.ApproveHERelease(context.WithoutCancel(ctx), a)
	if err != nil {
		return nil, err
	}
	req.Token = binary.BigEndian.AppendUint64(nil, seq)
	body, err := req.MarshalBinary()
	if err != nil {
		return nil, err
	}
	shares, err := r.gatherShares(ctx, job, s, a, keys.Providers(), body)
	if err != nil {
		return nil, err
	}
	out, err := req.Combine(keys, shares)
	if err != nil {
		return nil, err
	}
	b, err := out.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return &HEOutput{Keys: a.Keys, Release: base64.StdEncoding.EncodeToString(b), Ciphertext: a.Ciphertext, Recipient: a.Recipient, Noise: out.Noise()}, nil
}

// selfRecording is a ShareSource that records each share in the ledger as
// it arrives (ShareBox): the Runner does not record it again, and asks
// every holder at once, since asking only parks the request.
type selfRecording interface{ recordsShares() }

// gatherShares asks every holder for its share of the approved release a.
// From a source that does not record shares itself, holders are asked in
// turn and each share is recorded (he.share) before the next is asked for;
// the first refusal stops the rest.
func (r *Runner) gatherShares(ctx context.Context, job store.Job, s enclave.Spec, a store.HEApproval, holders []string, body []byte) ([][]byte, error) {
	refused := func(p string, err error) error {
		return fmt.Errorf("%w: output %s: key holder %s gave no share: %v", cove.ErrPrivacy, s.Output, p, err)
	}
	if _, ok := r.cfg.shares.(selfRecording); !ok {
		var shares [][]byte
		for _, p := range holders {
			sh, err := r.cfg.shares.Share(ctx, p, body)
			if err != nil {
				return nil, refused(p, err)
			}
			sum := sha256.Sum256(sh)
			if err := r.store.RecordHEShare(context.WithoutCancel(ctx), store.HEShare{Job: job.ID, Output: s.Output, Provider: p,
				Ciphertext: a.Ciphertext, Session: a.Session, ShareSHA256: hex.EncodeToString(sum[:])}); err != nil {
				return nil, err
			}
			shares = append(shares, sh)
		}
		return shares, nil
	}
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	shares := make([][]byte, len(holders))
	errs := make([]error, len(holders))
	var wg sync.WaitGroup
	for i, p := range holders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if shares[i], errs[i] = r.cfg.shares.Share(gctx, p, body); errs[i] != nil {
				cancel() // one holder refused: the release is blocked, stop asking the others
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil && !errors.Is(err, cove.ErrCancelled) {
			return nil, refused(holders[i], err)
		}
	}
	for i, err := range errs {
		if err != nil {
			return nil, refused(holders[i], err)
		}
	}
	return shares, nil
}

func fpOf(k *he.PublicKeys) []byte {
	f := k.Fingerprint()
	return f[:]
}

// loadKeys reads registered collective keys from their file.
func (r *Runner) loadKeys(ctx context.Context, fingerprint string) (*he.PublicKeys, error) {
	return LoadHEKeys(ctx, r.store, r.cfg.dataDir, fingerprint)
}

// readChecked reads a file of the sandbox (relative to the data directory)
// and checks its SHA-256.
func (r *Runner) readChecked(path, sum, what string) ([]byte, error) {
	return readChecked(r.cfg.dataDir, path, sum, what)
}

// OpenHE is the operator's side: it decrypts every HE output of rel with
// the operator's key and returns a copy whose rows carry the values, each
// with the standard deviation of its noise (DP and flooding) and a 95%
// interval from he.NoiseInfo.Interval. Outputs without HE are copied as is.
func OpenHE(op *he.Operator, rel *Release) (*Release, error) {
	out := *rel
	out.Outputs = slices.Clone(rel.Outputs)
	for i, o := range out.Outputs {
		if o.HE == nil {
			continue
		}
		opened, err := op.OpenEncoded(o.HE.Release, len(o.HE.Groups))
		if err != nil {
			return nil, fmt.Errorf("output %s: %w", o.Name, err)
		}
		o.Rows = nil
		for g, v := range opened.Values {
			o.Rows = append(o.Rows, Row{Key: o.HE.Groups[g], Value: v, NoiseStdDev: opened.NoiseStd, CILow: v - opened.Half95, CIHigh: v + opened.Half95})
		}
		out.Outputs[i] = o
	}
	return &out, nil
}

// --- Key holders (providers): their directory, their side of the protocol.

// A provider's directory (he.ProviderDir) holds its secret share and its
// record of shares given; nothing in it ever enters the sandbox.
const (
	secretFile   = he.SecretFile
	shareLogFile = he.ShareLogFile
)

// HESetupOf turns a registered setup into the protocol's setup.
func HESetupOf(su store.HESetup) (he.Setup, error) {
	var lit he.ParamsLiteral
	if err := json.Unmarshal(su.Params, &lit); err != nil {
		return he.Setup{}, fmt.Errorf("%w: HE setup %s: parameters: %v", cove.ErrInvalid, su.Name, err)
	}
	p, err := he.NewParams(lit)
	if err != nil {
		return he.Setup{}, err
	}
	return he.Setup{Params: p, Providers: slices.Clone(su.Providers), Seed: slices.Clone(su.Seed)}, nil
}

// ProviderKeygen is `cove provider keygen`: it creates (first time, id
// needed) or loads the provider's secret share in dir and returns its keygen
// share for setup su, written to dir as well. A provider gives one keygen
// share per setup: asking again returns the stored share, never a new one
// (two shares on the same reference string would leak the secret).
func ProviderKeygen(dir, id string, su store.HESetup) ([]byte, error) {
	setup, err := HESetupOf(su)
	if err != nil {
		return nil, err
	}
	if !policy.ValidName(su.Name) {
		return nil, fmt.Errorf("%w: HE setup name %q", cove.ErrInvalid, su.Name)
	}
	return he.ProviderDir(dir).Keygen(id, su.Name, setup)
}

// ProviderParams returns the parameters of the provider of dir.
func ProviderParams(dir string) (string, he.Params, error) {
	return he.ProviderDir(dir).Info()
}

// ProviderShare is `cove provider share`: the provider of dir answers a
// serialized share request, giving its share only if the sandbox's ledger
// (st, verified first) records the approval of that release and the
// provider's own share log, in dir, has no share of that ciphertext.
func ProviderShare(ctx context.Context, dir string, st *store.Store, request []byte) ([]byte, error) {
	_, p, err := ProviderParams(dir)
	if err != nil {
		return nil, err
	}
	pr, err := he.ProviderDir(dir).Open("", p, he.ProviderOptions{Approver: LedgerApprover{Store: st}, Shares: he.ProviderDir(dir).ShareLog()})
	if err != nil {
		return nil, err
	}
	req, err := he.UnmarshalShareRequest(p, request)
	if err != nil {
		return nil, err
	}
	return pr.ReleaseShare(ctx, req)
}

// LedgerApprover approves a release only if the sandbox's ledger, verified,
// records its approval: the request's token is the approval entry's
// sequence number (8 bytes, big-endian), and the entry must name the job,
// the ciphertext and the recipient, with the job not ended since.
type LedgerApprover struct{ Store *store.Store }

// Approve implements he.Approver.
func (l LedgerApprover) Approve(ctx context.Context, a he.Approval) error {
	if len(a.Token) != 8 {
		return errors.New("the request carries no ledger approval")
	}
	return l.Store.CheckHEApproval(ctx, a.Job, hex.EncodeToString(a.Ciphertext[:]), hex.EncodeToString(a.Recipient[:]), binary.BigEndian.Uint64(a.Token))
}

// FileShareLog is a provider's durable he.ShareLog (he.FileShareLog).
type FileShareLog = he.FileShareLog

// DirShareSource reaches providers whose directories are on this machine
// (tests, the demo): each request is answered by ProviderShare with the
// sandbox's store as the ledger the providers check.
type DirShareSource struct {
	Store *store.Store
	Dirs  map[string]string // provider id → directory
}

// Share implements ShareSource.
func (s DirShareSource) Share(ctx context.Context, provider string, request []byte) ([]byte, error) {
	dir, ok := s.Dirs[provider]
	if !ok {
		return nil, fmt.Errorf("%w: provider %s is not reachable", cove.ErrNotFound, provider)
	}
	return ProviderShare(ctx, dir, s.Store, request)
}

// CombineKeys is the sandbox's side of key generation: the collective keys
// from one keygen share per holder of su (by holder id), with the SHA-256 of
// each share for the ledger.
func CombineKeys(su store.HESetup, shares map[string][]byte) (*he.PublicKeys, map[string]string, error) {
	setup, err := HESetupOf(su)
	if err != nil {
		return nil, nil, err
	}
	var list [][]byte
	sums := map[string]string{}
	for _, p := range su.Providers {
		b, ok := shares[p]
		if !ok {
			return nil, nil, fmt.Errorf("%w: no keygen share from provider %s", cove.ErrInvalid, p)
		}
		s := sha256.Sum256(b)
		sums[p] = hex.EncodeToString(s[:])
		list = append(list, b)
	}
	keys, err := he.CollectiveKeys(setup, list)
	return keys, sums, err
}

// RegisterKeys writes the collective keys to path (inside the sandbox's
// data directory) and registers them for setup su.
func RegisterKeys(ctx context.Context, st *store.Store, su store.HESetup, keys *he.PublicKeys, sums map[string]string, path, rel string) (string, error) {
	b, err := keys.MarshalBinary()
	if err != nil {
		return "", err
	}
	if err := he.WriteFileDurable(path, b, 0o644); err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	fp := hex.EncodeToString(fpOf(keys))
	return fp, st.RegisterHEKeys(ctx, store.HEKeys{Fingerprint: fp, Setup: su.Name, Path: rel, SHA256: hex.EncodeToString(sum[:]), KeygenShares: sums})
}

// Null handling when a provider encrypts a column.
const (
	NullsRefuse = "refuse" // a missing value is an error (the default)
	NullsZero   = "zero"   // a missing value is entered as 0; encrypt the presence indicator too to count them
)

// EncryptOptions say how a provider encrypts a column of its table.
type EncryptOptions struct {
	Lo, Hi float64
	Nulls  string // NullsRefuse (default) or NullsZero
	// Start and End, when End > 0, encrypt only rows [Start, End) of the
	// provider's table (a provider whose table follows the public table's
	// rows, encrypting its own segment). Where the segment lies in the
	// dataset's table is said when it is attached.
	Start, End int
}

// EncryptColumn is `cove provider encrypt`: it reads one column of the
// provider's table (Parquet, CSV or Arrow IPC, through connectors) and
// encrypts it under the collective keys, clamped to [Lo, Hi]. Row i of the
// column is row i of the table, so nulls cannot be dropped: they are
// refused or, with NullsZero, entered as 0, and the second column returned
// is then the presence indicator (1 where a value was present), encrypted
// with bounds [0, 1] for a count of the values behind a sum.
func EncryptColumn(keys *he.PublicKeys, path, column string, opt EncryptOptions) (col, present *he.Column, err error) {
	if opt.Nulls == "" {
		opt.Nulls = NullsRefuse
	}
	if opt.Nulls != NullsRefuse && opt.Nulls != NullsZero {
		return nil, nil, fmt.Errorf("%w: nulls %q is not %s or %s", cove.ErrInvalid, opt.Nulls, NullsRefuse, NullsZero)
	}
	rd, err := connectors.OpenFile(path, connectors.Options{Columns: []string{column}})
	if err != nil {
		return nil, nil, err
	}
	defer rd.Release()
	var vals, has []float64
	nulls := 0
	for rd.Next() {
		a := rd.RecordBatch().Column(0)
		for i := 0; i < a.Len(); i++ {
			if a.IsNull(i) {
				nulls++
				vals, has = append(vals, 0), append(has, 0)
				continue
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
				return nil, nil, fmt.Errorf("%w: column %q has type %s, not a number", cove.ErrInvalid, column, a.DataType())
			}
			vals, has = append(vals, v), append(has, 1)
		}
	}
	if err := rd.Err(); err != nil {
		return nil, nil, err
	}
	if opt.End != 0 || opt.Start != 0 {
		if opt.Start < 0 || opt.End <= opt.Start || opt.End > len(vals) {
			return nil, nil, fmt.Errorf("%w: rows [%d, %d) of a table of %d rows", cove.ErrInvalid, opt.Start, opt.End, len(vals))
		}
		vals, has = vals[opt.Start:opt.End], has[opt.Start:opt.End]
		nulls = 0
		for _, h := range has {
			if h == 0 {
				nulls++
			}
		}
	}
	if nulls > 0 && opt.Nulls == NullsRefuse {
		return nil, nil, fmt.Errorf("%w: column %q has %d nulls; decide how they enter (-nulls zero)", cove.ErrInvalid, column, nulls)
	}
	enc := he.NewEncryptor(keys)
	encrypt := func(v []float64, lo, hi float64) (*he.Column, error) {
		if keys.Params().Scheme() == he.CKKS {
			return enc.EncryptFloats(v, lo, hi)
		}
		iv := make([]int64, len(v))
		for i, x := range v {
			if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
				return nil, fmt.Errorf("%w: column %q has a non-integer value; BGV encrypts integers", cove.ErrInvalid, column)
			}
			iv[i] = int64(x)
		}
		if lo != math.Trunc(lo) || hi != math.Trunc(hi) {
			return nil, fmt.Errorf("%w: BGV bounds must be integers", cove.ErrInvalid)
		}
		return enc.EncryptInts(iv, int64(lo), int64(hi))
	}
	if col, err = encrypt(vals, opt.Lo, opt.Hi); err != nil {
		return nil, nil, err
	}
	if opt.Nulls == NullsZero {
		if present, err = encrypt(has, 0, 1); err != nil {
			return nil, nil, err
		}
	}
	return col, present, nil
}

// AttachColumn writes a serialized encrypted column into the sandbox's data
// directory (path; rel is what the store records, relative to the data
// directory) and registers it for dataset.column. c.Start and c.End place
// it in the dataset's table: both 0 for the whole table; End SegmentToEnd
// (or 0 with a Start > 0) for the segment [Start, Start + its rows); both
// set must span its rows. The file must not exist; on a refusal it is
// removed.
func AttachColumn(ctx context.Context, st *store.Store, keys *he.PublicKeys, b []byte, path, rel string, c store.HEColumn) error {
	col, err := he.UnmarshalColumn(keys, b)
	if err != nil {
		return err
	}
	if err := segmentRange(&c, col.Rows()); err != nil {
		return err
	}
	// Never over a file already there: it may be a registered segment's.
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%w: encrypted column %s.%s: file %s exists", cove.ErrExists, c.Dataset, c.Column, rel)
	}
	if err := he.WriteFileDurable(path, b, 0o644); err != nil {
		return err
	}
	sum := sha256.Sum256(b)
	c.Path, c.SHA256, c.Keys, c.Rows = rel, hex.EncodeToString(sum[:]), hex.EncodeToString(fpOf(keys)), int64(col.Rows())
	c.Lo, c.Hi = col.Bounds()
	if err := st.RegisterHEColumn(ctx, c); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// SegmentToEnd, as the End of a segment to attach, places it at its Start
// with as many rows as the encrypted column has (a segment from row 0 that
// is not the whole table's column).
const SegmentToEnd = -1

// segmentRange completes the row range of a segment of rows rows (see
// AttachColumn).
func segmentRange(c *store.HEColumn, rows int) error {
	switch {
	case c.Start < 0:
		return fmt.Errorf("%w: encrypted column %s.%s: start row %d", cove.ErrInvalid, c.Dataset, c.Column, c.Start)
	case c.End == SegmentToEnd || (c.End == 0 && c.Start > 0):
		c.End = c.Start + int64(rows)
	case c.End != 0 && c.End-c.Start != int64(rows):
		return fmt.Errorf("%w: encrypted column %s.%s: rows [%d, %d) for a segment of %d rows", cove.ErrInvalid, c.Dataset, c.Column, c.Start, c.End, rows)
	}
	return nil
}

// RegisterRecipient registers an operator's public key as a recipient of
// HE releases and returns its hash (the manifest's recipient).
func RegisterRecipient(ctx context.Context, st *store.Store, operator string, key *he.OperatorKey) (string, error) {
	b, err := key.MarshalBinary()
	if err != nil {
		return "", err
	}
	h := key.Hash()
	hash := hex.EncodeToString(h[:])
	return hash, st.RegisterHERecipient(ctx, operator, hash, b)
}
