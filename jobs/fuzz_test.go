package jobs

import (
	"errors"
	"testing"

	"github.com/covedata/cove"
	"github.com/covedata/cove/examples"
)

// FuzzParseManifest: a manifest is hostile input. Parsing never panics, and
// either succeeds with a self-consistent manifest or fails with a category.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(leakManifest))
	f.Add([]byte(advanced))
	f.Add(examples.AirQuality().Manifest)
	f.Add(examples.Adult().Manifest)
	f.Add(examples.PM25Days().Manifest)
	f.Add(examples.PM25Regress().Manifest)
	f.Add([]byte(manifestPlan))
	f.Add([]byte(`{"version": 1, "outputs": [{"group_by": [{"values": ["a", "a"]}]}]}`))
	f.Add([]byte("version: 1\noutputs: &a [*a]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			if !errors.Is(err, cove.ErrInvalid) && !errors.Is(err, cove.ErrLimit) {
				t.Fatalf("uncategorized error: %v", err)
			}
			return
		}
		if len(m.Specs())+len(m.Blocks()) == 0 || len(m.OutputNames()) != len(m.Specs())+len(m.Blocks()) || !(m.Epsilon() > 0) {
			t.Fatalf("accepted an inconsistent manifest: %+v", m.Literal())
		}
	})
}
