package connectors_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/covedata/cove/connectors"
	"github.com/covedata/cove/demodata"
)

// Read two columns of the embedded air-quality data and count the hours
// without a PM2.5 reading.
func ExampleOpenBytes() {
	b, err := demodata.Open(demodata.AirQuality)
	if err != nil {
		log.Fatal(err)
	}
	r, err := connectors.OpenBytes(demodata.AirQuality+".parquet", b, connectors.Options{
		Columns:   []string{"station", "PM2.5"},
		BatchRows: 10000,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Release()

	var rows, missing int64
	for r.Next() {
		rec := r.RecordBatch()
		pm := rec.Column(1).(*array.Float64)
		rows += rec.NumRows()
		missing += int64(pm.NullN())
	}
	if err := r.Err(); err != nil {
		log.Fatal(err)
	}
	for _, f := range r.Schema().Fields() {
		fmt.Printf("%s %s nullable=%t\n", f.Name, f.Type, f.Nullable)
	}
	fmt.Println("rows:", rows, "missing PM2.5:", missing)
	fmt.Println("snapshot rows:", r.Snapshot().Rows, "sha256 matches:", r.Snapshot().SHA256 == mustLookup(demodata.AirQuality).SHA256)
	// Output:
	// station utf8 nullable=false
	// PM2.5 float64 nullable=true
	// rows: 420768 missing PM2.5: 8739
	// snapshot rows: 420768 sha256 matches: true
}

func mustLookup(name string) demodata.Dataset {
	d, err := demodata.Lookup(name)
	if err != nil {
		log.Fatal(err)
	}
	return d
}

// Read a CSV file with the catalog's schema: "NA" is null, quoted fields
// may hold the separator, and only the requested columns are decoded.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "readings.csv")
	data := "station,PM2.5,note\r\nDongsi,12.5,\"calm, clear\"\r\nDongsi,NA,\r\nTiantan,30,windy\r\n"
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		log.Fatal(err)
	}
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "station", Type: arrow.BinaryTypes.String},
		{Name: "PM2.5", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "note", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	r, err := connectors.Open(context.Background(), path, connectors.Options{
		Columns: []string{"PM2.5", "station"},
		Schema:  schema,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Release()
	for r.Next() {
		rec := r.RecordBatch()
		pm, st := rec.Column(0).(*array.Float64), rec.Column(1).(*array.String)
		for i := 0; i < int(rec.NumRows()); i++ {
			fmt.Println(st.Value(i), pm.ValueStr(i))
		}
	}
	if err := r.Err(); err != nil {
		log.Fatal(err)
	}
	snap := r.Snapshot()
	fmt.Println("rows:", snap.Rows, "bytes:", snap.Bytes, "objects:", len(snap.Objects))
	// Output:
	// Dongsi 12.5
	// Dongsi (null)
	// Tiantan 30
	// rows: 3 bytes: 77 objects: 1
}

// Read every object under an S3 prefix. The Snapshot lists each object's
// key, size, sha256, ETag and version, for the release's lineage.
func ExampleNewS3() {
	s3, err := connectors.NewS3(connectors.S3Config{
		Endpoint:  "127.0.0.1:9000",
		AccessKey: os.Getenv("S3_ACCESS_KEY"),
		SecretKey: os.Getenv("S3_SECRET_KEY"),
		Secure:    false,
		Bucket:    "public",
	})
	if err != nil {
		log.Fatal(err)
	}
	r, err := connectors.Open(context.Background(), "s3://public/air-quality/", connectors.Options{
		Columns: []string{"station", "PM2.5"},
		S3:      s3,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Release()
	for r.Next() {
		_ = r.RecordBatch()
	}
	if err := r.Err(); err != nil {
		log.Fatal(err)
	}
	for _, o := range r.Snapshot().Objects {
		fmt.Println(o.Location, o.Bytes, o.SHA256, o.ETag, o.VersionID)
	}
}
