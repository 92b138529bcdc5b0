package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// sourceDir finds the reference data: /work/shared/data, or shared/data next
// to the repository root.
func sourceDir(t *testing.T) string {
	t.Helper()
	for _, dir := range []string{"/work/shared/data", filepath.Join("..", "..", "..", "..", "shared", "data")} {
		if _, err := os.Stat(filepath.Join(dir, adultData.path)); err == nil {
			return dir
		}
	}
	t.Skip("reference data not found at /work/shared/data or ../shared/data from the repository root; cannot check that the embedded Parquet regenerates byte for byte")
	return ""
}

// TestRegenerate checks that the embedded demo data is exactly what this
// tool produces from the published sources.
func TestRegenerate(t *testing.T) {
	if testing.Short() {
		t.Skip("regenerating the demo data takes several seconds")
	}
	src := sourceDir(t)
	out := t.TempDir()
	if err := run(src, out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{airOut, adultOut} {
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join("..", "..", "..", "demodata", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: regenerated file (%d bytes) differs from demodata/%s (%d bytes); rerun the tool and update the recorded sha256",
				name, len(got), name, len(want))
		}
	}
}

func TestSHA256Mismatch(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "adult"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, adultData.path), []byte("39, State-gov\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := readVerified(dir, adultData)
	if err == nil || !strings.Contains(err.Error(), adultData.path) || !strings.Contains(err.Error(), "sha256 mismatch") {
		t.Errorf("error = %v, want a sha256 mismatch naming %s", err, adultData.path)
	}
}

const airHeader = `"No","year","month","day","hour","PM2.5","PM10","SO2","NO2","CO","O3","TEMP","PRES","DEWP","RAIN","wd","WSPM","station"` + "\r\n"
const airRow = `1,2013,3,1,0,4,4,4,7,300,77,-0.7,1023,-18.8,0,"NNW",4.4,"Aotizhongxin"` + "\r\n"

func TestParseAirErrors(t *testing.T) {
	tests := []struct {
		name string
		data string
		want string // substring of the error
	}{
		{"no final CRLF", airHeader + strings.TrimSuffix(airRow, "\r\n"), "not terminated by CRLF"},
		{"bad header", strings.Replace(airHeader, "PM10", "PM1O", 1) + airRow, "line 1: header"},
		{"too few rows", airHeader + airRow, "1 data lines, want 35064"},
		{"field count", airHeader + strings.Replace(airRow, ",4.4,", ",", 1), "line 2: 17 fields"},
		{"bad integer", airHeader + strings.Replace(airRow, ",2013,", ",2O13,", 1), `line 2: column "year": not an integer`},
		{"missing integer", airHeader + strings.Replace(airRow, ",2013,", ",NA,", 1), `line 2: column "year": not an integer`},
		{"bad float", airHeader + strings.Replace(airRow, ",1023,", ",1O23,", 1), `line 2: column "PRES": not a finite number`},
		{"NaN", airHeader + strings.Replace(airRow, ",1023,", ",NaN,", 1), `line 2: column "PRES": not a finite number`},
		{"quoted number", airHeader + strings.Replace(airRow, ",1023,", `,"1023",`, 1), `line 2: column "PRES": not a finite number`},
		{"unquoted string", airHeader + strings.Replace(airRow, `"NNW"`, "NNW", 1), `line 2: column "wd": not a double-quoted string`},
		{"other station", airHeader + strings.Replace(airRow, "Aotizhongxin", "Dongsi", 1), `line 2: column "station": differs`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := tt.data
			if !strings.Contains(tt.want, "data lines") && !strings.Contains(tt.want, "CRLF") && !strings.Contains(tt.want, "header") {
				// A bad first row must be reported before the row count is.
				data += strings.Repeat(airRow, airRowsPerStation-1)
			}
			rec, err := parseAir(memory.DefaultAllocator, schemaOf(airColumns), "x.csv", "Aotizhongxin", []byte(data))
			if err == nil {
				rec.Release()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), "x.csv: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to name the file and contain %q", err, tt.want)
			}
			for _, v := range []string{"2O13", "1O23", "Dongsi", "NaN"} {
				if strings.Contains(err.Error(), v) {
					t.Errorf("error %q echoes the cell value %q", err, v)
				}
			}
		})
	}
}

const adultRow = "39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, Male, 2174, 0, 40, United-States, <=50K\n"

func TestParseAdult(t *testing.T) {
	tests := []struct {
		name string
		data string
		want string // substring of the error; empty for success
	}{
		{"ok", adultRow + strings.Replace(adultRow, "Adm-clerical", "?", 1) + "\n", ""},
		{"no blank line", adultRow, "does not end with one blank line"},
		{"inner blank line", adultRow + "\n" + adultRow + "\n", "line 2: blank line"},
		{"CRLF", strings.Replace(adultRow, "\n", "\r\n", 1) + "\n", "line 1: stray CR"},
		{"field count", strings.Replace(adultRow, ", <=50K", "", 1) + "\n", "line 1: 14 fields"},
		{"bad integer", strings.Replace(adultRow, "77516", "77S16", 1) + "\n", `line 1: column "fnlwgt": not an integer`},
		{"missing integer", strings.Replace(adultRow, "39,", "?,", 1) + "\n", `line 1: column "age": not an integer`},
		{"padded string", strings.Replace(adultRow, ", Male", ",  Male", 1) + "\n", `line 1: column "sex": empty, padded`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
			defer mem.AssertSize(t, 0)
			rec, err := parseAdult(mem, schemaOf(adultColumns), "adult.data", []byte(tt.data))
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				defer rec.Release()
				if rec.NumRows() != 2 || rec.Column(6).NullN() != 1 {
					t.Errorf("got %d rows, %d null occupations; want 2 and 1", rec.NumRows(), rec.Column(6).NullN())
				}
				return
			}
			if err == nil {
				rec.Release()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), "adult.data: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to name the file and contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "77S16") {
				t.Errorf("error %q echoes the cell value", err)
			}
		})
	}
}
