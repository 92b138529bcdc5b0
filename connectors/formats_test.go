package connectors_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/covedata/cove"
	"github.com/covedata/cove/connectors"
	"github.com/covedata/cove/demodata"
)

// TestFormatsAgree reads each demo dataset from Parquet, CSV (with the
// catalog schema, and inferred), IPC file and IPC stream, and requires the
// same rows, the same values bit for bit, and the same native aggregates.
func TestFormatsAgree(t *testing.T) {
	for _, ds := range []struct {
		name    string
		columns []string
		agg     func(testing.TB, *connectors.Reader) []string
	}{
		{demodata.AirQuality, []string{"station", "PM2.5"}, stationMeans},
		{demodata.Adult, []string{"sex", "income", "age"}, adultCounts},
	} {
		c := convert(t, ds.name)
		inputs := []struct {
			format string
			file   string
			data   []byte
			schema *arrow.Schema
		}{
			{"parquet", ds.name + ".parquet", c.parquet, nil},
			{"csv with schema", ds.name + ".csv", c.csv, c.schema},
			{"ipc file", ds.name + ".arrow", c.ipcFile, nil},
			{"ipc stream", ds.name + ".arrows", c.ipcStream, nil},
		}
		var wantFP, wantAll fingerprint
		var wantAgg []string
		for i, in := range inputs {
			t.Run(ds.name+"/"+in.format, func(t *testing.T) {
				mem := checked(t)
				open := func(cols []string, batch int) *connectors.Reader {
					r, err := connectors.OpenBytes(in.file, in.data, connectors.Options{
						Columns: cols, Schema: in.schema, Allocator: mem, BatchRows: batch,
					})
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(r.Release)
					return r
				}
				all := fingerprintOf(t, open(nil, 0))
				fp := fingerprintOf(t, open(ds.columns, 10000))
				r := open(ds.columns, 4096)
				if got := r.Schema().Field(0).Name; got != ds.columns[0] {
					t.Fatalf("first column %q, want %q", got, ds.columns[0])
				}
				agg := ds.agg(t, r)
				if i == 0 {
					wantFP, wantAll, wantAgg = fp, all, agg
					t.Logf("%d rows; %v", fp.Rows, agg[:2])
					return
				}
				if !slices.Equal(all.Columns, wantAll.Columns) || all.Rows != wantAll.Rows {
					t.Errorf("all columns: %+v\nparquet: %+v", all, wantAll)
				}
				if !slices.Equal(fp.Columns, wantFP.Columns) || fp.Rows != wantFP.Rows {
					t.Errorf("projection: %+v\nparquet: %+v", fp, wantFP)
				}
				if !slices.Equal(agg, wantAgg) {
					t.Errorf("aggregates differ:\n%v\nparquet:\n%v", agg, wantAgg)
				}
			})
		}
	}
}

// TestCSVInferred: without a schema, types are inferred from the first rows
// and then enforced. The first 1000 rows of the air-quality data hold only
// whole PM10 values, so a later decimal is an error naming row and column;
// sampling 40,000 rows infers the Parquet's types (every column nullable)
// and reads the same values, except for CO, whose values are all whole and
// so inferred as int64.
func TestCSVInferred(t *testing.T) {
	mem := checked(t)
	c := convert(t, demodata.AirQuality)
	short, err := connectors.OpenBytes("air.csv", c.csv, connectors.Options{Allocator: mem, Columns: []string{"PM10"}})
	if err != nil {
		t.Fatal(err)
	}
	for short.Next() {
	}
	if err := short.Err(); !errors.Is(err, cove.ErrInvalid) || !strings.Contains(err.Error(), `air.csv: row 6304 (line 6305), column "PM10": not a valid int64`) {
		t.Errorf("inferred from 1000 rows: Err() = %v", err)
	}
	short.Release()

	noCO := slices.DeleteFunc(slices.Clone(airColumns), func(c string) bool { return c == "CO" })
	if sc, err := connectors.OpenBytes("air.csv", c.csv, connectors.Options{Allocator: mem, CSV: connectors.CSVOptions{InferRows: 40000}}); err != nil {
		t.Fatal(err)
	} else {
		if f, _ := sc.Schema().FieldsByName("CO"); f[0].Type.ID() != arrow.INT64 {
			t.Errorf("CO inferred as %s, want int64", f[0].Type)
		}
		sc.Release()
	}
	r, err := connectors.OpenBytes("air.csv", c.csv, connectors.Options{Allocator: mem, Columns: noCO, CSV: connectors.CSVOptions{InferRows: 40000}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	for _, f := range r.Schema().Fields() {
		fs, _ := c.schema.FieldsByName(f.Name)
		want := fs[0]
		if f.Name != want.Name || !arrow.TypeEqual(f.Type, want.Type) || !f.Nullable {
			t.Errorf("inferred %s %s nullable=%t, want %s %s nullable", f.Name, f.Type, f.Nullable, want.Name, want.Type)
		}
	}
	got := fingerprintOf(t, r)
	p, err := connectors.OpenBytes("air.parquet", c.parquet, connectors.Options{Allocator: mem, Columns: noCO})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Release()
	if want := fingerprintOf(t, p); !slices.Equal(got.Columns, want.Columns) || got.Rows != want.Rows {
		t.Errorf("inferred CSV read %+v, Parquet %+v", got, want)
	}
}
