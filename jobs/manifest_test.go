package jobs

import (
	"errors"
	"strings"
	"testing"

	"github.com/covedata/cove"
)

func TestParseManifest(t *testing.T) {
	m, err := ParseManifest([]byte(leakManifest))
	if err != nil {
		t.Fatal(err)
	}
	if m.Epsilon() != 0.1 || len(m.Specs()) != 1 || m.Specs()[0].Partitions[0] != "all" {
		t.Fatalf("parsed %+v", m.Literal())
	}
	tests := []struct {
		name, manifest string
		is             error
		want           []string
	}{
		{"unknown field", leakManifest + "colour: blue\n", cove.ErrInvalid, []string{"colour"}},
		{"empty", "", cove.ErrInvalid, []string{"empty"}},
		{"too big", strings.Repeat("#", MaxManifestBytes+1), cove.ErrLimit, []string{"limit"}},
		{"two documents", leakManifest + "---\nversion: 1\n", cove.ErrInvalid, []string{"more than one"}},
		{"many problems at once", strings.NewReplacer("version: 1", "version: 2", "grant: g1", "grant: G 1",
			"aggregate: sum", "aggregate: median", "privacy_unit: {per_row: true}", "privacy_unit: {per_row: true, columns: [name]}").Replace(leakManifest),
			cove.ErrInvalid, []string{"version 2", `grant "G 1"`, "privacy_unit", "median"}},
		{"count with bounds", strings.Replace(leakManifest, "aggregate: sum", "aggregate: count", 1), cove.ErrInvalid, []string{"bounds"}},
		{"bad epsilon", strings.Replace(leakManifest, "    epsilon: 0.05", "    epsilon: -1", 1), cove.ErrInvalid, []string{"psilon"}},
		{"json", `{"version": 1, "name": "x"}`, cove.ErrInvalid, []string{"grant"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseManifest([]byte(tc.manifest))
			if !errors.Is(err, tc.is) {
				t.Fatalf("err = %v, want %v", err, tc.is)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestGroupKeysAreCrossProduct(t *testing.T) {
	m, err := ParseManifest([]byte(strings.Replace(leakManifest, "group_by: [{column: name, values: [all]}]",
		"group_by: [{column: a, values: [x, y]}, {column: b, values: [2013, 2014, 2015]}]", 1)))
	if err != nil {
		t.Fatal(err)
	}
	p := m.Specs()[0].Partitions
	if len(p) != 6 || p[0] != "x\x1f2013" || p[5] != "y\x1f2015" {
		t.Fatalf("partitions %q", p)
	}
}

const advanced = `version: 1
name: adv
grant: g1
purpose: research
dataset: secrets
columns: [name, value]
privacy_unit: {per_row: true}
outputs:
  - name: q
    aggregate: quantiles
    epsilon: 0.5
    bounds: [0, 100]
    ranks: [0.25, 0.5, 0.75]
    group_by: [{column: name, values: [all]}]
  - name: g
    aggregate: sum
    noise: gaussian
    epsilon: 0.5
    delta: 1.0e-6
    bounds: [0, 100]
    partitions: private
    group_by: [{column: name}]
  - name: h
    aggregate: histogram
    epsilon: 0.2
    buckets: [0, 10, 100]
    group_by: [{column: name, values: [all]}]
`

func TestManifestAdvancedOutputs(t *testing.T) {
	m, err := ParseManifest([]byte(advanced))
	if err != nil {
		t.Fatal(err)
	}
	specs := m.Specs()
	if len(specs[0].Ranks) != 3 || !specs[1].PrivatePartitions || specs[1].Mechanism != "gaussian" || len(specs[2].Buckets) != 3 {
		t.Fatalf("specs %+v", specs)
	}
	if !(m.Epsilon() > 0 && m.Epsilon() <= 1.2+1e-9) || m.Delta() != 1e-6 {
		t.Fatalf("cost ε %v δ %v", m.Epsilon(), m.Delta())
	}
	for name, tc := range map[string]struct{ old, new, want string }{
		"private with values": {"    group_by: [{column: name}]", "    group_by: [{column: name, values: [x]}]", "list no values"},
		"histogram bounds":    {"    buckets: [0, 10, 100]", "    buckets: [0, 10, 100]\n    bounds: [0, 1]", "meaningless"},
		"partition mode":      {"    partitions: private", "    partitions: secret", "not public or private"},
		"gaussian without δ":  {"    delta: 1.0e-6\n", "", "elta"},
	} {
		_, err := ParseManifest([]byte(strings.Replace(advanced, tc.old, tc.new, 1)))
		if !errors.Is(err, cove.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", name, err, tc.want)
		}
	}
}
