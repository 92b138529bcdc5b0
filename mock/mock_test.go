package mock_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/covedata/cove/demodata"
	"github.com/covedata/cove/examples"
	"github.com/covedata/cove/mock"
	"github.com/covedata/cove/policy"
)

func airQuality() policy.Dataset {
	d := policy.Dataset{Name: "beijing-air-quality", Title: "mock", Sharing: policy.Open, Level: 1, Location: "x"}
	for _, c := range []struct{ name, typ string }{{"No", "int64"}, {"year", "int64"}, {"month", "int64"}, {"day", "int64"},
		{"hour", "int64"}, {"PM2.5", "float64"}, {"PM10", "float64"}, {"wd", "utf8"}, {"station", "utf8"}} {
		col := policy.Column{Name: c.name, Type: c.typ}
		if c.name == "station" {
			col.Domain = demodata.AirQualityStations()
		}
		d.Columns = append(d.Columns, col)
	}
	return d
}

func TestGenerateSchemaTrue(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	d := airQuality()
	rec, err := mock.Generate(d, mock.Options{Rows: 500, Seed: 7, Allocator: mem, Domains: map[string][]string{"year": {"2013", "2014"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	if rec.NumRows() != 500 || int(rec.NumCols()) != len(d.Columns) {
		t.Fatalf("shape %dx%d", rec.NumRows(), rec.NumCols())
	}
	for i, c := range d.Columns {
		if got := rec.Schema().Field(i).Type.String(); got != c.Type || rec.ColumnName(i) != c.Name {
			t.Errorf("column %d: %s %s, want %s %s", i, rec.ColumnName(i), got, c.Name, c.Type)
		}
	}
	stations := map[string]bool{}
	for _, s := range demodata.AirQualityStations() {
		stations[s] = true
	}
	for r := range 500 {
		if s := rec.Column(8).ValueStr(r); !stations[s] {
			t.Fatalf("row %d station %q outside the public domain", r, s)
		}
		if y := rec.Column(1).ValueStr(r); y != "2013" && y != "2014" {
			t.Fatalf("row %d year %q outside the added domain", r, y)
		}
	}
	again, _ := mock.Generate(d, mock.Options{Rows: 500, Seed: 7, Allocator: mem, Domains: map[string][]string{"year": {"2013", "2014"}}})
	defer again.Release()
	if again.Column(5).ValueStr(42) != rec.Column(5).ValueStr(42) {
		t.Error("same seed, different data")
	}
}

func TestGenerateRefusesUnknownType(t *testing.T) {
	d := policy.Dataset{Name: "x", Columns: []policy.Column{{Name: "a", Type: "list<item: int64>"}}}
	if _, err := mock.Generate(d, mock.Options{}); err == nil {
		t.Fatal("no error for a type without a generator")
	}
}

func TestRunShowsGuestOutputAndRows(t *testing.T) {
	var out bytes.Buffer
	ex := examples.AirQuality()
	res, err := mock.Run(context.Background(), mock.RunOptions{Dataset: airQuality(), Manifest: ex.Manifest, Module: ex.Module, Rows: 300, Out: &out, MaxTrace: 5})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if res.Release == nil || len(res.Release.Outputs) != 1 || res.Emits["pm25_mean"] == 0 {
		t.Fatalf("result %+v", res)
	}
	for _, want := range []string{"guest output", "row ", "key ", "station=", "release on mock data"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	t.Log(out.String())
}
