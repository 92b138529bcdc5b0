package connectors_test

import (
	"fmt"
	"log"

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
