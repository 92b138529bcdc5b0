package he

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tuneinsight/lattigo/v6/core/rlwe"
)

// measureNoise returns log2 of the standard deviation of the noise of ct
// (decrypted with the ideal secret minus the expected plaintext).
func measureNoise(f *fixture, ct *rlwe.Ciphertext, want []float64) float64 {
	p := f.params
	pt := rlwe.NewDecryptor(p.rlwe, f.idealSecret()).DecryptNew(ct)
	exp := rlwe.NewPlaintext(p.rlwe, ct.Level())
	exp.MetaData = ct.MetaData.CopyNew()
	ev := NewEvaluator(f.keys)
	ibuf := make([]int64, p.Slots())
	w := make([]float64, p.Slots())
	copy(w, want)
	if err := ev.encode(w, ibuf, exp, true); err != nil {
		panic(err)
	}
	rq := p.rlwe.RingQ().AtLevel(ct.Level())
	rq.Sub(pt.Value, exp.Value, pt.Value)
	if pt.IsNTT {
		rq.INTT(pt.Value, pt.Value)
	}
	return rq.Log2OfStandardDeviation(pt.Value)
}

// TestNoiseBound measures the noise of Cove's circuit with the ideal secret
// key over several weight shapes (one row, full chunks, large weights, many
// chunks, many groups) against noiseBound, which flooding is sized from. The
// columns encrypt zeros: what flooding must hide is the noise that depends on
// the keys and the encryption randomness; the CKKS approximation error of
// large messages (float64 encoding) is a function of the public circuit and
// the values, not of the keys.
func TestNoiseBound(t *testing.T) {
	for _, lit := range []ParamsLiteral{DefaultCKKS(), DefaultBGV()} {
		t.Run(string(lit.Scheme), func(t *testing.T) {
			f := sharedFixture(t, lit.Scheme)
			p := f.params
			r := rand.New(rand.NewPCG(1, 2))
			enc := NewEncryptor(f.keys)
			ev := NewEvaluator(f.keys)
			s := p.Slots()
			for _, c := range []struct {
				name      string
				rows, sel int
				w         float64
				random    bool
				groups    int
			}{
				{"one row", s, 1, 1, false, 1},
				{"full chunk", s, s, 1, false, 1},
				{"large weights", s, s, 1000, false, 1},
				{"four chunks random weights", 4 * s, 4 * s, 7, true, 4},
				{"sixteen groups", s, s, 1, false, 16},
			} {
				var col *Column
				var err error
				if lit.Scheme == CKKS {
					col, err = enc.EncryptFloats(make([]float64, c.rows), 0, 1)
				} else {
					col, err = enc.EncryptInts(make([]int64, c.rows), 0, 1)
				}
				if err != nil {
					t.Fatal(err)
				}
				spec := Spec{Kind: WeightedSum}
				for range c.groups {
					w := make([]float64, c.rows)
					for i := range c.sel {
						w[i] = c.w
						if c.random {
							w[i] = float64(r.IntN(int(c.w) + 1))
						}
					}
					spec.Weights = append(spec.Weights, w)
				}
				agg, err := ev.Aggregate(context.Background(), col, spec)
				if err != nil {
					t.Fatal(err)
				}
				got := measureNoise(f, agg.ct, make([]float64, c.groups))
				bound := math.Log2(agg.bound)
				t.Logf("%s: log2 noise std %.1f, bound %.1f", c.name, got, bound)
				if got > bound {
					t.Errorf("%s: noise 2^%.1f exceeds the flooding bound 2^%.1f", c.name, got, bound)
				}
			}
		})
	}
}
