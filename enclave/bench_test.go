package enclave

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkAdd reports contributions per second (contribs/s) for the two
// stream shapes the runtime produces.
func BenchmarkAdd(b *testing.B) {
	parts := make([]string, 16)
	for i := range parts {
		parts[i] = string(rune('a' + i))
	}
	spec := Spec{Output: "o", Aggregate: Sum, Epsilon: 1, Lower: 0, Upper: 100,
		MaxPartitions: 4, MaxContributions: 4, Partitions: parts}
	// Precomputed pseudo-random partitions and values keep generation out
	// of the loop.
	r := rand.New(rand.NewPCG(3, 4))
	const table = 1 << 16
	pidx := make([]int, table)
	vals := make([]float64, table)
	for i := range table {
		pidx[i] = r.IntN(len(parts))
		vals[i] = 120 * r.Float64()
	}

	run := func(b *testing.B, add func(a *Accumulator, i int)) {
		a := mustAccumulator(b, spec)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			add(a, i)
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "contribs/s")
		if _, err := a.Release(); err != nil {
			b.Fatal(err)
		}
	}

	// One unit per row (row-level privacy): every unit is new, sealed per
	// 64Ki-row batch.
	b.Run("row-scoped-sealed-64Ki", func(b *testing.B) {
		const batch = 1 << 16
		run(b, func(a *Accumulator, i int) {
			a.Add(uint64(i), pidx[i%table], vals[i%table])
			if (i+1)%batch == 0 {
				a.Seal(uint64(i + 1))
			}
		})
	})
	// 10,000 units each recurring throughout the stream, never sealed: the
	// reservoirs fill and most contributions are sampled out.
	b.Run("repeated-units-10k", func(b *testing.B) {
		run(b, func(a *Accumulator, i int) {
			a.Add(uint64(i%10_000), pidx[i%table], vals[i%table])
		})
	})
}
