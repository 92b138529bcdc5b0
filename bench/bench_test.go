package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/covedata/cove/connectors"
	"github.com/covedata/cove/demodata"
	"github.com/covedata/cove/examples"
	"github.com/covedata/cove/jobs"
	"github.com/covedata/cove/policy"
	"github.com/covedata/cove/runtime/wasm"
	"github.com/covedata/cove/store"
)

const replicas = 10

// replicate writes the air-quality data `replicas` times over into one
// Parquet file, reading only the columns the job needs.
func replicate(b *testing.B, dir string) (string, int64) {
	b.Helper()
	src, err := demodata.Open("beijing-air-quality")
	if err != nil {
		b.Fatal(err)
	}
	cols := []string{"station", "year", "month", "day", "hour", "PM2.5"}
	path := filepath.Join(dir, "air-x10.parquet")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var w *pqarrow.FileWriter
	var rows int64
	for range replicas {
		r, err := connectors.OpenBytes("beijing-air-quality.parquet", src, connectors.Options{Columns: cols})
		if err != nil {
			b.Fatal(err)
		}
		for r.Next() {
			rec := r.RecordBatch()
			if w == nil {
				props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd), parquet.WithMaxRowGroupLength(1<<20))
				if w, err = pqarrow.NewFileWriter(rec.Schema(), f, props, pqarrow.DefaultWriterProps()); err != nil {
					b.Fatal(err)
				}
			}
			if err := w.WriteBuffered(rec); err != nil {
				b.Fatal(err)
			}
			rows += rec.NumRows()
		}
		if err := r.Err(); err != nil {
			b.Fatal(err)
		}
		r.Release()
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	return path, rows
}

// native computes the exact mean PM2.5 per station and year, reading the same
// file through the same connector: the baseline Cove is measured against.
func native(b *testing.B, path string) map[string]float64 {
	r, err := connectors.OpenFile(path, connectors.Options{Columns: []string{"station", "year", "PM2.5"}})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Release()
	type acc struct{ sum, n float64 }
	m := map[string]*acc{}
	for r.Next() {
		rec := r.RecordBatch()
		st := rec.Column(0).(*array.String)
		yr := rec.Column(1).(*array.Int64)
		pm := rec.Column(2).(*array.Float64)
		for i := 0; i < int(rec.NumRows()); i++ {
			if pm.IsNull(i) {
				continue
			}
			k := st.Value(i) + "|" + strconv.FormatInt(yr.Value(i), 10)
			a := m[k]
			if a == nil {
				a = &acc{}
				m[k] = a
			}
			a.sum += pm.Value(i)
			a.n++
		}
	}
	out := map[string]float64{}
	for k, a := range m {
		out[k] = a.sum / a.n
	}
	return out
}

func BenchmarkAirQuality(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	path, rows := replicate(b, dir)
	info, _ := os.Stat(path)
	st, err := store.Open(ctx, filepath.Join(dir, "cove.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	schema, err := connectors.ReadSchema(path)
	if err != nil {
		b.Fatal(err)
	}
	d := policy.Dataset{Name: "beijing-air-quality", Location: path, Sharing: policy.Open, Level: 1}
	for _, f := range schema.Fields() {
		d.Columns = append(d.Columns, policy.Column{Name: f.Name, Type: f.Type.String()})
	}
	if err := st.RegisterDataset(ctx, d); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	if err := st.CreateGrant(ctx, policy.Grant{ID: "g-acme-2026", Operator: "bench", Mode: policy.Scenario,
		Mechanisms: []string{policy.MechanismDP}, Pricing: policy.Industry, Purposes: []string{"public-research"},
		Datasets: []string{d.Name}, Columns: map[string][]string{d.Name: {"station", "year", "PM2.5"}},
		EpsilonCap: map[string]float64{d.Name: 1e9}, ValidFrom: now.Add(-time.Hour), ValidUntil: now.Add(24 * time.Hour)}); err != nil {
		b.Fatal(err)
	}
	eng, err := wasm.NewEngine(ctx, wasm.NewConfig().WithCompilationCacheDir(filepath.Join(dir, "cache")))
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close(ctx)
	alloc := memory.NewCheckedAllocator(memory.NewGoAllocator())
	runner := jobs.NewRunner(st, eng, jobs.NewConfig().WithDeadline(10*time.Minute).WithAllocator(alloc))
	job := examples.AirQuality()

	var coveTime, nativeTime time.Duration
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		if _, err := runner.Run(ctx, jobs.Submission{ID: fmt.Sprintf("bench-%d", i), Operator: "bench", Manifest: job.Manifest, Module: job.Module}); err != nil {
			b.Fatal(err)
		}
		coveTime += time.Since(t0)
		t0 = time.Now()
		if len(native(b, path)) == 0 {
			b.Fatal("native computation found nothing")
		}
		nativeTime += time.Since(t0)
	}
	b.StopTimer()
	alloc.AssertSize(b, 0)
	n := float64(b.N) * float64(rows)
	b.ReportMetric(n/coveTime.Seconds(), "cove-rows/s")
	b.ReportMetric(n/nativeTime.Seconds(), "native-rows/s")
	b.ReportMetric(nativeTime.Seconds()/coveTime.Seconds(), "cove/native")
	b.ReportMetric(float64(rows), "rows")
	b.SetBytes(info.Size())
}
