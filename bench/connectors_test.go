package bench

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/csv"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/covedata/cove/connectors"
	"github.com/covedata/cove/demodata"
	"github.com/covedata/cove/internal/miniotest"
)

// writeReplicas writes the air-quality data, all 18 columns, `replicas`
// times over as Parquet (zstd, row groups of 35,064 rows like the demo
// file) and as CSV ("NA" for null).
func writeReplicas(b *testing.B, dir string) (pq, csvPath string, rows int64) {
	b.Helper()
	src, err := demodata.Open(demodata.AirQuality)
	if err != nil {
		b.Fatal(err)
	}
	pq, csvPath = filepath.Join(dir, "air-x10.parquet"), filepath.Join(dir, "air-x10.csv")
	pf, err := os.Create(pq)
	if err != nil {
		b.Fatal(err)
	}
	cf, err := os.Create(csvPath)
	if err != nil {
		b.Fatal(err)
	}
	cbuf := bufio.NewWriterSize(cf, 1<<20)
	var pw *pqarrow.FileWriter
	var cw *csv.Writer
	for range replicas {
		r, err := connectors.OpenBytes("air.parquet", src, connectors.Options{BatchRows: 35064})
		if err != nil {
			b.Fatal(err)
		}
		if pw == nil {
			props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd), parquet.WithMaxRowGroupLength(35064))
			if pw, err = pqarrow.NewFileWriter(r.Schema(), pf, props, pqarrow.NewArrowWriterProperties(pqarrow.WithAllocator(memory.DefaultAllocator))); err != nil {
				b.Fatal(err)
			}
			cw = csv.NewWriter(cbuf, r.Schema(), csv.WithHeader(true), csv.WithNullWriter("NA"))
		}
		for r.Next() {
			rec := r.RecordBatch()
			if err := pw.Write(rec); err != nil {
				b.Fatal(err)
			}
			if err := cw.Write(rec); err != nil {
				b.Fatal(err)
			}
			rows += rec.NumRows()
		}
		if err := r.Err(); err != nil {
			b.Fatal(err)
		}
		r.Release()
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		b.Fatal(err)
	}
	if err := pw.Close(); err != nil {
		b.Fatal(err)
	}
	if err := cbuf.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := cf.Close(); err != nil {
		b.Fatal(err)
	}
	return pq, csvPath, rows
}

// BenchmarkConnectors reads the air-quality data replicated ten times
// (4,207,680 rows, 18 columns) from a local Parquet file, a local CSV file
// and the same Parquet in MinIO, each for two columns and for all, opening
// included (so the snapshot's sha256 pass counts), and reports rows/s. The
// MinIO cases skip when MinIO is not installed (see internal/miniotest).
func BenchmarkConnectors(b *testing.B) {
	dir := b.TempDir()
	pq, csvPath, rows := writeReplicas(b, dir)
	pqInfo, _ := os.Stat(pq)
	csvInfo, _ := os.Stat(csvPath)
	b.Logf("%d rows; Parquet %d bytes, CSV %d bytes", rows, pqInfo.Size(), csvInfo.Size())

	schema, err := connectors.ReadSchema(pq)
	if err != nil {
		b.Fatal(err)
	}

	// One MinIO for all MinIO cases, if installed; without it those cases
	// skip (or fail under CI=true) on their own.
	var s3 *connectors.S3
	const loc = "s3://bench/air-x10.parquet"
	if _, err := miniotest.Binary(); err == nil {
		srv := miniotest.Start(b)
		c, err := minio.New(srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, ""), Region: "us-east-1"})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		if err := c.MakeBucket(ctx, "bench", minio.MakeBucketOptions{}); err != nil {
			b.Fatal(err)
		}
		if _, err := c.FPutObject(ctx, "bench", "air-x10.parquet", pq, minio.PutObjectOptions{}); err != nil {
			b.Fatal(err)
		}
		if s3, err = connectors.NewS3(connectors.S3Config{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}); err != nil {
			b.Fatal(err)
		}
	}
	useS3 := func(b *testing.B) string {
		if s3 == nil {
			miniotest.Require(b)
		}
		return loc
	}

	for _, cols := range []struct {
		name    string
		columns []string
	}{{"station,PM2.5", []string{"station", "PM2.5"}}, {"all", nil}} {
		for _, src := range []struct {
			name string
			loc  func(*testing.B) string
			skip bool // SkipContentHash
		}{
			{"local-parquet", func(*testing.B) string { return pq }, false},
			{"local-csv", func(*testing.B) string { return csvPath }, false},
			{"minio-parquet", useS3, false},
			{"minio-parquet-nohash", useS3, true},
		} {
			b.Run(src.name+"/"+cols.name, func(b *testing.B) {
				where := src.loc(b)
				var n int64
				for b.Loop() {
					opt := connectors.Options{Columns: cols.columns, S3: s3, SkipContentHash: src.skip}
					if src.name == "local-csv" {
						opt.Schema = schema // inference from 1,000 rows would take CO, PM2.5 for int64
					}
					r, err := connectors.Open(context.Background(), where, opt)
					if err != nil {
						b.Fatal(err)
					}
					for r.Next() {
						n += r.RecordBatch().NumRows()
					}
					if err := r.Err(); err != nil {
						b.Fatal(err)
					}
					r.Release()
				}
				if n != rows*int64(b.N) {
					b.Fatalf("read %d rows, want %d", n, rows*int64(b.N))
				}
				b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "rows/s")
			})
		}
	}
}
