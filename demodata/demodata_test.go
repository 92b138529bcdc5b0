package demodata_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/covedata/cove"
	"github.com/covedata/cove/demodata"
)

// The schemas as a reader sees them: plain types, no dictionaries.
var wantSchemas = map[string]string{
	demodata.AirQuality: "No:int64 year:int64 month:int64 day:int64 hour:int64 " +
		"PM2.5:float64? PM10:float64? SO2:float64? NO2:float64? CO:float64? O3:float64? " +
		"TEMP:float64? PRES:float64? DEWP:float64? RAIN:float64? wd:utf8? WSPM:float64? station:utf8",
	demodata.Adult: "age:int64 workclass:utf8? fnlwgt:int64 education:utf8? education-num:int64 " +
		"marital-status:utf8? occupation:utf8? relationship:utf8? race:utf8? sex:utf8? " +
		"capital-gain:int64 capital-loss:int64 hours-per-week:int64 native-country:utf8? income:utf8?",
}

func TestEmbedded(t *testing.T) {
	tests := []struct {
		name      string
		rows      int64
		rowGroups int
	}{
		{demodata.Adult, 32561, 1},
		{demodata.AirQuality, 420768, 12},
	}
	ds := demodata.Datasets()
	if len(ds) != len(tests) {
		t.Fatalf("Datasets() has %d entries, want %d", len(ds), len(tests))
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := ds[i]
			if d.Name != tt.name || d.Rows != tt.rows {
				t.Fatalf("Datasets()[%d] = %s with %d rows, want %s with %d", i, d.Name, d.Rows, tt.name, tt.rows)
			}
			if d.Title == "" || d.Domain == "" || d.Source == "" || d.Citation == "" || d.License != "CC BY 4.0" {
				t.Errorf("incomplete provenance: %+v", d)
			}
			b, err := demodata.Open(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(b)
			if got := hex.EncodeToString(sum[:]); got != d.SHA256 {
				t.Errorf("sha256 = %s, recorded %s (rerun internal/tools/mkdemodata and update demodata.go)", got, d.SHA256)
			}
			r, err := file.NewParquetReader(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if r.NumRows() != tt.rows || r.NumRowGroups() != tt.rowGroups {
				t.Errorf("%d rows in %d row groups, want %d in %d", r.NumRows(), r.NumRowGroups(), tt.rows, tt.rowGroups)
			}
			sc, err := pqarrow.FromParquet(r.MetaData().Schema, nil, r.MetaData().KeyValueMetadata())
			if err != nil {
				t.Fatal(err)
			}
			if got := schemaString(sc); got != wantSchemas[tt.name] {
				t.Errorf("schema\n got %s\nwant %s", got, wantSchemas[tt.name])
			}
			if r.MetaData().KeyValueMetadata().FindValue("ARROW:schema") != nil {
				t.Error("file stores an Arrow schema; readers may then return dictionaries")
			}
		})
	}
}

func schemaString(sc *arrow.Schema) string {
	var b bytes.Buffer
	for i, f := range sc.Fields() {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s:%s", f.Name, f.Type)
		if f.Nullable {
			b.WriteByte('?')
		}
	}
	return b.String()
}

func TestNotFound(t *testing.T) {
	if _, err := demodata.Open("census"); !errors.Is(err, cove.ErrNotFound) {
		t.Errorf("Open(census) error = %v, want ErrNotFound", err)
	}
	if _, err := demodata.Lookup(""); !errors.Is(err, cove.ErrNotFound) {
		t.Errorf("Lookup(\"\") error = %v, want ErrNotFound", err)
	}
}

// TestDomains checks that each published domain is exactly the set of
// distinct non-null values in the data.
func TestDomains(t *testing.T) {
	tests := []struct {
		name    string
		dataset string
		column  string
		want    []string
	}{
		{"stations", demodata.AirQuality, "station", demodata.AirQualityStations()},
		{"years", demodata.AirQuality, "year", strs(demodata.AirQualityYears())},
		{"education", demodata.Adult, "education", demodata.AdultEducation()},
		{"occupations", demodata.Adult, "occupation", demodata.AdultOccupations()},
	}
	wantLen := map[string]int{"stations": 12, "years": 5, "education": 16, "occupations": 14}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.want) != wantLen[tt.name] {
				t.Errorf("domain has %d values, want %d", len(tt.want), wantLen[tt.name])
			}
			got := distinct(t, tt.dataset, tt.column)
			want := slices.Sorted(slices.Values(tt.want))
			if !slices.Equal(got, want) {
				t.Errorf("distinct values in data\n got %q\nwant %q", got, want)
			}
		})
	}
}

func strs(v []int64) []string {
	out := make([]string, len(v))
	for i, x := range v {
		out[i] = fmt.Sprint(x)
	}
	return out
}

func distinct(t *testing.T, dataset, column string) []string {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	b, err := demodata.Open(dataset)
	if err != nil {
		t.Fatal(err)
	}
	pf, err := file.NewParquetReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1 << 16}, mem)
	if err != nil {
		t.Fatal(err)
	}
	idx := pf.MetaData().Schema.ColumnIndexByName(column)
	if idx < 0 {
		t.Fatalf("no column %s", column)
	}
	rr, err := fr.GetRecordReader(context.Background(), []int{idx}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Release()
	seen := map[string]bool{}
	for rr.Next() {
		col := rr.RecordBatch().Column(0)
		for i := range col.Len() {
			if col.IsValid(i) {
				seen[col.ValueStr(i)] = true
			}
		}
	}
	if err := rr.Err(); err != nil {
		t.Fatal(err)
	}
	return slices.Sorted(func(yield func(string) bool) {
		for k := range seen {
			if !yield(k) {
				return
			}
		}
	})
}

func TestDomainsAreCopies(t *testing.T) {
	s := demodata.AirQualityStations()
	s[0] = "changed"
	if demodata.AirQualityStations()[0] != "Aotizhongxin" {
		t.Error("AirQualityStations shares its backing array")
	}
}
