package connectors_test

import (
	"testing"

	"github.com/covedata/cove/connectors"
	"github.com/covedata/cove/demodata"
)

// BenchmarkReadAirQuality opens (hashing included) and streams the embedded
// air-quality data, all columns or two.
func BenchmarkReadAirQuality(b *testing.B) {
	file, data := demo(b, demodata.AirQuality)
	for _, bc := range []struct {
		name    string
		columns []string
	}{
		{"all", nil},
		{"station,PM2.5", []string{"station", "PM2.5"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			var rows int64
			for b.Loop() {
				r, err := connectors.OpenBytes(file, data, connectors.Options{Columns: bc.columns})
				if err != nil {
					b.Fatal(err)
				}
				for r.Next() {
					rows += r.RecordBatch().NumRows()
				}
				if err := r.Err(); err != nil {
					b.Fatal(err)
				}
				r.Release()
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
