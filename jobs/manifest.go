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

// ManifestLiteral is a manifest as written (YAML or JSON). Unknown fields are
// errors. ParseManifest validates it into a Manifest.
type ManifestLiteral struct {
	Version     int             `yaml:"version"`
	Name        string          `yaml:"name"`
	Grant       string          `yaml:"grant"`
	Purpose     string          `yaml:"purpose"`
	Dataset     string          `yaml:"dataset"`
	Mechanism   string          `yaml:"mechanism"` // dp (default) or he (see docs/he.md)
	Columns     []string        `yaml:"columns"`
	PrivacyUnit UnitLiteral     `yaml:"privacy_unit"`
	Outputs     []OutputLiteral `yaml:"outputs"`
	// Recipient is, for mechanism he, the hex SHA-256 of the operator's
	// registered public key: releases are re-encrypted to it.
	Recipient string `yaml:"recipient"`
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
}

// GroupLiteral is one part of the group key with its public values (none
// for private partitions).
type GroupLiteral struct {
	Column string   `yaml:"column"`
	Values []string `yaml:"values"`
}

// Manifest is a validated job manifest. It is immutable.
type Manifest struct {
	lit   ManifestLiteral
	specs []enclave.Spec
	cost  enclave.Cost
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
	if len(lit.Columns) == 0 {
		bad("columns: the job reads no column")
	}
	if dup := firstDuplicate(lit.Columns); dup != "" {
		bad("columns: %q is listed twice", dup)
	}
	switch u := lit.PrivacyUnit; {
	case u.PerRow && len(u.Columns) > 0:
		bad("privacy_unit: give columns or per_row, not both")
	case !u.PerRow && len(u.Columns) == 0:
		bad("privacy_unit: give the columns that identify a unit, or per_row: true")
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
		// The job's cost: basic composition, with zCDP for Gaussian outputs.
		cost, err := enclave.Compose(m.specs)
		if lit.Mechanism == policy.MechanismHE {
			cost, err = heCost(m.specs)
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
	switch o.Partitions {
	case "", "public":
	case "private":
		s.PrivatePartitions = true
		for _, g := range o.GroupBy {
			if g.Column == "" || len(g.Values) > 0 {
				return s, fmt.Errorf("group_by column %q: private partitions come from the data, list no values", g.Column)
			}
		}
		return s, s.Validate()
	default:
		return s, fmt.Errorf("partitions %q is not public or private", o.Partitions)
	}
	parts := [][]string{{}}
	for _, g := range o.GroupBy {
		if g.Column == "" || len(g.Values) == 0 || len(g.Values) > maxGroupValues {
			return s, fmt.Errorf("group_by column %q needs 1 to %d public values", g.Column, maxGroupValues)
		}
		if dup := firstDuplicate(g.Values); dup != "" {
			return s, fmt.Errorf("group_by column %q lists a value twice", g.Column)
		}
		if len(parts)*len(g.Values) > MaxPartitionsPerOutput {
			return s, fmt.Errorf("group_by makes more than %d partitions", MaxPartitionsPerOutput)
		}
		next := make([][]string, 0, len(parts)*len(g.Values))
		for _, p := range parts {
			for _, v := range g.Values {
				if strings.Contains(v, KeySeparator) {
					return s, fmt.Errorf("group_by column %q has a value containing U+001F", g.Column)
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
			if !slices.Contains(cols, g.Column) {
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
	names := make([]string, len(m.specs))
	for i, s := range m.specs {
		names[i] = s.Output
	}
	return names
}
