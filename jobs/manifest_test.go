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
			"aggregate: sum", "aggregate: median", "privacy_unit: {per_row: true}", "privacy_unit: {}").Replace(leakManifest),
			cove.ErrInvalid, []string{"version 2", `grant "G 1"`, "privacy_unit", "median"}},
		{"count with bounds", strings.Replace(leakManifest, "aggregate: sum", "aggregate: count", 1), cove.ErrInvalid, []string{"bounds"}},
		{"bad epsilon", strings.Replace(leakManifest, "epsilon: 0.1", "epsilon: -1", 1), cove.ErrInvalid, []string{"psilon"}},
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
