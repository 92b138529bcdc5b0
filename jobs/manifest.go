package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/covedata/cove"
	"github.com/covedata/cove/enclave"
	"github.com/covedata/cove/policy"
)

// Manifest limits: a manifest is untrusted input.
const (
	MaxManifestBytes       = 64 << 10
	MaxOutputs             = 64
	MaxPartitionsPerOutput = 100_000
	maxGroupValues         = 10_000
)

// KeySeparator joins the parts of a group key (ABI v1: U+001F).
const KeySeparator = "\x1f"

// Modes: how a job runs on real data (docs/privacy.md). Each is sound for an
// arbitrary module: in plan mode the guest never sees data; in unit mode it
// sees one privacy unit's rows at a time from a restored snapshot; in block
// mode one block of units, and only a clamped vector per block leaves.
// Batch mode, where a guest sees whole batches, is for mock data only.
const (
	ModePlan  = "plan"
	ModeUnit  = "unit"
	ModeBlock = "block"
	ModeBatch = "batch"
)

// Defaults and limits of the guest settings of unit and block modes.
const (
	DefaultUnitMemoryMiB  = 16
	MaxUnitMemoryMiB      = 256
	DefaultUnitCPU        = 100     // ms per unit
	DefaultBlockCPU       = 10_000  // ms per block
	MaxGuestCPU           = 600_000 // ms
	DefaultFailureEpsilon = 0.01
)

// ManifestLiteral is a manifest as written (YAML or JSON). Unknown fields are
// errors. ParseManifest validates it into a Manifest.
type ManifestLiteral struct {
	Version     int             `yaml:"version"`
	Name        string          `yaml:"name"`
	Grant       string          `yaml:"grant"`
	Purpose     string          `yaml:"purpose"`
	Dataset     string          `yaml:"dataset"`
	Mechanism   string          `yaml:"mechanism"` // dp (default) or he (see docs/he.md)
	Mode        string          `yaml:"mode"`      // plan (default), unit, block, or batch (mock data only)
	Columns     []string        `yaml:"columns"`
	PrivacyUnit UnitLiteral     `yaml:"privacy_unit"`
	Outputs     []OutputLiteral `yaml:"outputs"`
	// Recipient is, for mechanism he, the hex SHA-256 of the operator's
	// registered public key: releases are re-encrypted to it.
	Recipient string `yaml:"recipient"`
	// Plan is, in plan mode without a module, the plan's filter and derived
	// columns (the outputs say the rest: value, where, group_by).
	Plan *PlanLiteral `yaml:"plan"`
	// Guest sets the guest's memory and CPU limit in unit and block modes.
	Guest *GuestLiteral `yaml:"guest"`
	// Blocks is, in block mode, the number of blocks the units are split into.
	Blocks int `yaml:"blocks"`
	// FailureEpsilon is, in unit and block modes, the ε of the noisy count
	// of units or blocks whose guest call failed (0: 0.01).
	FailureEpsilon float64 `yaml:"failure_epsilon"`
}

// PlanLiteral is the part of a manifest plan that is not per output.
type PlanLiteral struct {
	Where  string          `yaml:"where"` // SQL expression: rows that enter at all
	Derive []DeriveLiteral `yaml:"derive"`
}

// DeriveLiteral is one derived column of a manifest plan.
type DeriveLiteral struct {
	Name string `yaml:"name"`
	Expr string `yaml:"expr"`
}

// GuestLiteral holds the guest settings of unit and block modes.
type GuestLiteral struct {
	MemoryMiB int `yaml:"memory_mib"` // guest-visible linear memory (default 16, at most 256)
	CPUMs     int `yaml:"cpu_ms"`     // CPU limit per unit (default 100) or per block (default 10,000)
}

// UnitLiteral names the privacy unit: the columns whose values identify one
// unit (a person, a station-day...), or per_row when every row is its own unit.
type UnitLiteral struct {
	Columns []string `yaml:"columns"`
	PerRow  bool     `yaml:"per_row"`
}

// OutputLiteral declares one aggregate the job may release.
type OutputLiteral struct {
	Name             string         `yaml:"name"`
	Aggregate        string         `yaml:"aggregate"` // count, sum, mean, variance, stddev, quantiles, histogram
	Noise            string         `yaml:"noise"`     // laplace (default) or gaussian (needs delta)
	Epsilon          float64        `yaml:"epsilon"`
	Delta            float64        `yaml:"delta"`
	Bounds           []float64      `yaml:"bounds"`      // [lower, upper]: sum, mean, variance, stddev, quantiles
	Granularity      float64        `yaml:"granularity"` // grid step (a power of two); 0: derived from bounds
	Ranks            []float64      `yaml:"ranks"`       // quantiles
	Buckets          []float64      `yaml:"buckets"`     // histogram edges
	MaxPartitions    int            `yaml:"max_partitions"`
	MaxContributions int            `yaml:"max_contributions"`
	GroupBy          []GroupLiteral `yaml:"group_by"`
	// Partitions is "public" (default: the group_by values, all released)
	// or "private": keys come from the data and only those that private
	// partition selection keeps are released (needs delta).
	Partitions       string  `yaml:"partitions"`
	SelectionEpsilon float64 `yaml:"selection_epsilon"`
	SelectionDelta   float64 `yaml:"selection_delta"`
	// Column is, for mechanism he, the encrypted column the output
	// aggregates (sum, mean, count or weighted_sum) with the guest's weights.
	Column string `yaml:"column"`
	// Value and Where are, in a manifest plan, the contributed value and
	// the output's own filter (SQL expressions).
	Value string `yaml:"value"`
	Where string `yaml:"where"`
	// Block outputs (aggregate block_mean, block mode): the guest's vector
	// length, optional names of its coordinates and the vector of a failed
	// or empty block (default: the midpoint of bounds).
	Dimension int       `yaml:"dimension"`
	Labels    []string  `yaml:"labels"`
	Default   []float64 `yaml:"default"`
	// CoordinateBounds gives each coordinate its own [lower, upper]
	// instead of bounds (block_mean).
	CoordinateBounds [][]float64 `yaml:"coordinate_bounds"`
}

// GroupLiteral is one part of the group key with its public values (none
// for private partitions): a column (dataset or derived), in a manifest
// plan an expression (with an optional display name), or in unit and batch
// modes a name alone, for a key part the guest computes.
type GroupLiteral struct {
	Column string   `yaml:"column"`
	Expr   string   `yaml:"expr"`
	Name   string   `yaml:"name"`
	Values []string `yaml:"values"`
}

// label is the group part's name in releases.
func (g GroupLiteral) label() string {
	switch {
	case g.Column != "":
		return g.Column
	case g.Name != "":
		return g.Name
	}
	return g.Expr
}

// Manifest is a validated job manifest. It is immutable.
type Manifest struct {
	lit    ManifestLiteral
	specs  []enclave.Spec      // DP and HE outputs
	blocks []enclave.BlockSpec // block outputs (block mode)
	cost   enclave.Cost
}

// ParseManifest decodes and validates a manifest, reporting every problem at
// once.
func ParseManifest(b []byte) (*Manifest, error) {
	if len(b) > MaxManifestBytes {
		return nil, fmt.Errorf("%w: manifest is %d bytes, the limit is %d", cove.ErrLimit, len(b), MaxManifestBytes)
	}
	var lit ManifestLiteral
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&lit); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: manifest is empty", cove.ErrInvalid)
		}
		return nil, fmt.Errorf("%w: manifest: %v", cove.ErrInvalid, err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: manifest holds more than one document", cove.ErrInvalid)
	}
	return NewManifest(lit)
}

// NewManifest validates a literal.
func NewManifest(lit ManifestLiteral) (*Manifest, error) {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: manifest: "+format, append([]any{cove.ErrInvalid}, a...)...))
	}
	if lit.Version != 1 {
		bad("version %d is not supported (use 1)", lit.Version)
	}
	for field, v := range map[string]string{"name": lit.Name, "grant": lit.Grant, "purpose": lit.Purpose, "dataset": lit.Dataset} {
		if !policy.ValidName(v) {
			bad("%s %q must be lower case letters, digits, '.', '_' or '-' (at most 63)", field, v)
		}
	}
	switch lit.Mechanism {
	case "":
		lit.Mechanism = policy.MechanismDP
	case policy.MechanismDP, policy.MechanismHE:
	default:
		bad("mechanism %q is not supported (dp, he)", lit.Mechanism)
	}
	errs = append(errs, checkHE(lit)...)
	switch lit.Mode {
	case "":
		lit.Mode = ModePlan
	case ModePlan, ModeUnit, ModeBlock, ModeBatch:
	default:
		bad("mode %q is not plan, unit, block or batch", lit.Mode)
	}
	errs = append(errs, checkMode(&lit)...)
	if len(lit.Columns) == 0 && lit.Mode != ModePlan {
		bad("columns: the job reads no column")
	}
	if dup := firstDuplicate(lit.Columns); dup != "" {
		bad("columns: %q is listed twice", dup)
	}
	switch u := lit.PrivacyUnit; {
	case u.PerRow && len(u.Columns) > 0:
		bad("privacy_unit: give columns or per_row, not both")
	case firstDuplicate(u.Columns) != "":
		bad("privacy_unit: column %q is listed twice", firstDuplicate(u.Columns))
	}
	if len(lit.Outputs) == 0 {
		bad("outputs: the job declares no output")
	}
	if len(lit.Outputs) > MaxOutputs {
		bad("outputs: %d declared, the limit is %d", len(lit.Outputs), MaxOutputs)
	}
	m := &Manifest{lit: lit}
	names := map[string]bool{}

	for i, o := range lit.Outputs {
		where := fmt.Sprintf("outputs[%d] (%s)", i, o.Name)
		if names[o.Name] {
			bad("%s: name is used twice", where)
		}
		names[o.Name] = true
		if lit.Mode == ModeBlock {
			b, err := o.blockSpec(lit.Blocks)
			if err != nil {
				errs = append(errs, fmt.Errorf("%w: manifest: %s: %v", cove.ErrInvalid, where, err))
				continue
			}
			m.blocks = append(m.blocks, b)
			continue
		}
		if err := o.checkPlanFields(lit.Mode); err != nil {
			errs = append(errs, fmt.Errorf("%w: manifest: %s: %v", cove.ErrInvalid, where, err))
			continue
		}
		spec, err := o.spec()
		if lit.Mechanism == policy.MechanismHE {
			spec, err = o.heSpec()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: manifest: %s: %v", cove.ErrInvalid, where, err))
			continue
		}
		m.specs = append(m.specs, spec)
	}
	if len(errs) == 0 {
		// The job's cost: basic composition, with zCDP for Gaussian outputs;
		// in unit and block modes plus the noisy count of failures.
		var cost enclave.Cost
		var err error
		switch {
		case lit.Mechanism == policy.MechanismHE:
			cost, err = heCost(m.specs)
		case lit.Mode == ModeBlock:
			cost, err = enclave.ComposeBlocks(m.blocks)
		default:
			cost, err = enclave.Compose(m.specs)
		}
		if lit.Mode == ModeUnit || lit.Mode == ModeBlock {
			cost.Epsilon += lit.FailureEpsilon
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: manifest: %v", cove.ErrInvalid, err))
		}
		m.cost = cost
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m, nil
}

func (o OutputLiteral) spec() (enclave.Spec, error) {
	s := enclave.Spec{
		Output: o.Name, Aggregate: enclave.Aggregate(o.Aggregate), Mechanism: o.Noise, Epsilon: o.Epsilon, Delta: o.Delta,
		Granularity: o.Granularity, Ranks: o.Ranks, Buckets: o.Buckets,
		MaxPartitions: o.MaxPartitions, MaxContributions: o.MaxContributions,
		SelectionEpsilon: o.SelectionEpsilon, SelectionDelta: o.SelectionDelta,
	}
	if s.MaxPartitions == 0 {
		s.MaxPartitions = 1
	}
	if s.MaxContributions == 0 {
		s.MaxContributions = 1
	}
	bounded := s.Aggregate != enclave.Count && s.Aggregate != enclave.Histogram
	switch {
	case !bounded && len(o.Bounds) != 0:
		return s, fmt.Errorf("bounds are meaningless for a %s", o.Aggregate)
	case bounded && len(o.Bounds) != 2:
		return s, fmt.Errorf("bounds must be [lower, upper] for %s", o.Aggregate)
	case len(o.Bounds) == 2:
		s.Lower, s.Upper = o.Bounds[0], o.Bounds[1]
	}
	if len(o.GroupBy) == 0 {
		return s, errors.New("group_by: name at least one column")
	}
	for i, g := range o.GroupBy {
		n := 0
		for _, set := range []bool{g.Column != "", g.Expr != "", g.Name != "" && g.Expr == ""} {
			if set {
				n++
			}
		}
		if n != 1 {
			return s, fmt.Errorf("group_by[%d]: give one of column, expr (with an optional name) or name", i)
		}
	}
	switch o.Partitions {
	case "", "public":
	case "private":
		s.PrivatePartitions = true
		for _, g := range o.GroupBy {
			if len(g.Values) > 0 {
				return s, fmt.Errorf("group_by column %q: private partitions come from the data, list no values", g.label())
			}
		}
		return s, s.Validate()
	default:
		return s, fmt.Errorf("partitions %q is not public or private", o.Partitions)
	}
	parts := [][]string{{}}
	for _, g := range o.GroupBy {
		if len(g.Values) == 0 || len(g.Values) > maxGroupValues {
			return s, fmt.Errorf("group_by column %q needs 1 to %d public values", g.label(), maxGroupValues)
		}
		if dup := firstDuplicate(g.Values); dup != "" {
			return s, fmt.Errorf("group_by column %q lists a value twice", g.label())
		}
		if len(parts)*len(g.Values) > MaxPartitionsPerOutput {
			return s, fmt.Errorf("group_by makes more than %d partitions", MaxPartitionsPerOutput)
		}
		next := make([][]string, 0, len(parts)*len(g.Values))
		for _, p := range parts {
			for _, v := range g.Values {
				if strings.Contains(v, KeySeparator) {
					return s, fmt.Errorf("group_by column %q has a value containing U+001F", g.label())
				}
				next = append(next, append(slices.Clip(p), v))
			}
		}
		parts = next
	}
	for _, p := range parts {
		s.Partitions = append(s.Partitions, strings.Join(p, KeySeparator))
	}
	if math.IsNaN(s.Epsilon) {
		return s, errors.New("epsilon is NaN")
	}
	return s, s.Validate()
}

func firstDuplicate(xs []string) string {
	seen := map[string]bool{}
	for _, x := range xs {
		if seen[x] {
			return x
		}
		seen[x] = true
	}
	return ""
}

// checkMode validates what depends on the mode, filling in defaults.
func checkMode(lit *ManifestLiteral) []error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: manifest: "+format, append([]any{cove.ErrInvalid}, a...)...))
	}
	groups := lit.Mode == ModeUnit || lit.Mode == ModeBlock
	if lit.Plan != nil && lit.Mode != ModePlan {
		bad("plan is for mode plan")
	}
	if lit.Plan != nil {
		names := map[string]bool{}
		for i, d := range lit.Plan.Derive {
			if d.Name == "" || d.Expr == "" || names[d.Name] {
				bad("plan.derive[%d]: give a name used once and an expr", i)
			}
			names[d.Name] = true
		}
	}
	if lit.Guest != nil && !groups {
		bad("guest is for modes unit and block")
	}
	if lit.Blocks != 0 && lit.Mode != ModeBlock {
		bad("blocks is for mode block")
	}
	if lit.FailureEpsilon != 0 && !groups {
		bad("failure_epsilon is for modes unit and block")
	}
	if !groups {
		return errs
	}
	if lit.Guest == nil {
		lit.Guest = &GuestLiteral{}
	} else {
		g := *lit.Guest
		lit.Guest = &g
	}
	g := lit.Guest
	if g.MemoryMiB == 0 {
		g.MemoryMiB = DefaultUnitMemoryMiB
	}
	if g.MemoryMiB < 1 || g.MemoryMiB > MaxUnitMemoryMiB {
		bad("guest.memory_mib %d is outside [1, %d]", g.MemoryMiB, MaxUnitMemoryMiB)
	}
	if g.CPUMs == 0 {
		g.CPUMs = DefaultUnitCPU
		if lit.Mode == ModeBlock {
			g.CPUMs = DefaultBlockCPU
		}
	}
	if g.CPUMs < 1 || g.CPUMs > MaxGuestCPU {
		bad("guest.cpu_ms %d is outside [1, %d]", g.CPUMs, MaxGuestCPU)
	}
	if lit.FailureEpsilon == 0 {
		lit.FailureEpsilon = DefaultFailureEpsilon
	}
	if !(lit.FailureEpsilon >= enclave.MinEpsilon && lit.FailureEpsilon <= 1) {
		bad("failure_epsilon %g is outside [2^-48, 1]", lit.FailureEpsilon)
	}
	if lit.Mode == ModeBlock {
		if lit.Blocks < 2 || lit.Blocks > enclave.MaxBlocks {
			bad("blocks %d is outside [2, %d]", lit.Blocks, enclave.MaxBlocks)
		}
		if lit.Mechanism == policy.MechanismHE {
			bad("mode block releases block means: mechanism he is not available")
		}
	}
	return errs
}

// checkPlanFields refuses the plan parts of an output outside plan mode,
// and block-output fields outside block mode.
func (o OutputLiteral) checkPlanFields(mode string) error {
	switch {
	case o.Aggregate == string(enclave.BlockMean):
		return errors.New("aggregate block_mean is for mode block")
	case o.Dimension != 0 || len(o.Labels) > 0 || len(o.Default) > 0:
		return errors.New("dimension, labels and default are for block_mean outputs")
	case len(o.CoordinateBounds) > 0:
		return errors.New("coordinate_bounds are for block_mean outputs")
	case mode == ModePlan:
		for i, g := range o.GroupBy {
			if g.Column == "" && g.Expr == "" {
				return fmt.Errorf("group_by[%d]: in mode plan a part is a column or an expr", i)
			}
		}
		return nil
	case o.Value != "" || o.Where != "":
		return errors.New("value and where are for a plan in the manifest (mode plan)")
	}
	for i, g := range o.GroupBy {
		if g.Expr != "" {
			return fmt.Errorf("group_by[%d]: expr is for a plan in the manifest (mode plan)", i)
		}
	}
	return nil
}

// blockSpec validates a block output.
func (o OutputLiteral) blockSpec(blocks int) (enclave.BlockSpec, error) {
	switch {
	case o.Aggregate != string(enclave.BlockMean):
		return enclave.BlockSpec{}, fmt.Errorf("aggregate %q: mode block releases block_mean outputs only", o.Aggregate)
	case len(o.GroupBy) > 0 || o.Partitions != "" || o.MaxPartitions != 0 || o.MaxContributions != 0:
		return enclave.BlockSpec{}, errors.New("a block_mean has no group_by, partitions or contribution bounds: one vector per block")
	case o.Value != "" || o.Where != "" || o.Column != "" || len(o.Ranks) > 0 || len(o.Buckets) > 0 || o.SelectionEpsilon != 0 || o.SelectionDelta != 0:
		return enclave.BlockSpec{}, errors.New("value, where, column, ranks, buckets and selection budgets are not for block_mean")
	case (len(o.Bounds) == 2) == (len(o.CoordinateBounds) > 0) || (len(o.Bounds) != 0 && len(o.Bounds) != 2):
		return enclave.BlockSpec{}, errors.New("give bounds [lower, upper] (every coordinate is clamped to them) or coordinate_bounds, one [lower, upper] per coordinate")
	}
	s := enclave.BlockSpec{Output: o.Name, Mechanism: o.Noise, Epsilon: o.Epsilon, Delta: o.Delta, Blocks: blocks,
		Dimension: o.Dimension, Labels: o.Labels, Default: o.Default, Granularity: o.Granularity}
	if len(o.Bounds) == 2 {
		s.Lower, s.Upper = o.Bounds[0], o.Bounds[1]
	}
	for j, b := range o.CoordinateBounds {
		if len(b) != 2 {
			return s, fmt.Errorf("coordinate_bounds[%d] must be [lower, upper]", j)
		}
		s.Bounds = append(s.Bounds, [2]float64{b[0], b[1]})
	}
	if blocks < 2 {
		s.Blocks = 2 // reported by checkMode
	}
	return s, s.Validate()
}

// Mode is how the job runs: plan, unit, block or batch.
func (m *Manifest) Mode() string { return m.lit.Mode }

// Blocks returns the block outputs' specifications (block mode).
func (m *Manifest) Blocks() []enclave.BlockSpec { return slices.Clone(m.blocks) }

// hasPlan reports whether the manifest itself writes plan parts.
func (m *Manifest) hasPlan() bool {
	if m.lit.Plan != nil {
		return true
	}
	for _, o := range m.lit.Outputs {
		if o.Value != "" || o.Where != "" {
			return true
		}
		for _, g := range o.GroupBy {
			if g.Expr != "" {
				return true
			}
		}
	}
	return false
}

// Literal returns a copy of the manifest as written.
func (m *Manifest) Literal() ManifestLiteral {
	lit := m.lit
	lit.Columns = slices.Clone(lit.Columns)
	lit.Outputs = slices.Clone(lit.Outputs)
	return lit
}

// Specs returns the enclave specification of each output.
func (m *Manifest) Specs() []enclave.Spec { return slices.Clone(m.specs) }

// Epsilon is the job's total ε: the composition of its outputs (basic, with
// zCDP accounting for Gaussian outputs; see enclave.Compose).
func (m *Manifest) Epsilon() float64 { return m.cost.Epsilon }

// Delta is the job's total δ.
func (m *Manifest) Delta() float64 { return m.cost.Delta }

// groupColumns lists the columns the outputs group by, once each.
func (m *Manifest) groupColumns() []string {
	var cols []string
	for _, o := range m.lit.Outputs {
		for _, g := range o.GroupBy {
			if g.Column != "" && !slices.Contains(cols, g.Column) {
				cols = append(cols, g.Column)
			}
		}
	}
	return cols
}

// shape hashes what the job asks of its dataset — columns, unit and outputs —
// without its name: jobs of the same shape with different modules are the
// pattern of a differencing attack (a linkage flag).
func (m *Manifest) shape() string {
	lit := m.lit
	lit.Name = ""
	b, _ := json.Marshal(lit)
	return sha(b)
}

// OutputNames lists the declared outputs in order (the ABI's output ids).
func (m *Manifest) OutputNames() []string {
	names := make([]string, len(m.lit.Outputs))
	for i, o := range m.lit.Outputs {
		names[i] = o.Name
	}
	return names
}
