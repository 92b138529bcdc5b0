package connectors_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/covedata/cove"
	"github.com/covedata/cove/connectors"
	"github.com/covedata/cove/demodata"
)

// readAll opens and drains; it returns the rows read and the error.
func readAll(t *testing.T, name string, data []byte, opt connectors.Options) (int64, error) {
	t.Helper()
	opt.Allocator = checked(t)
	r, err := connectors.OpenBytes(name, data, opt)
	if err != nil {
		return 0, err
	}
	defer r.Release()
	var rows int64
	for r.Next() {
		rows += r.RecordBatch().NumRows()
	}
	return rows, r.Err()
}

var csvSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "pm", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "site", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

// TestCSVBadInput: every message names the file, the row and the column,
// and never a cell's content (each bad cell holds the marker "SECRET").
func TestCSVBadInput(t *testing.T) {
	tests := []struct {
		name     string
		data     string
		opt      connectors.Options
		sentinel error
		mention  string
	}{
		{"wrong column count", "id,pm,site\n1,2.5,a\n2,SECRET\n", connectors.Options{Schema: csvSchema}, cove.ErrInvalid,
			"bad.csv: row 2 (line 3): 2 fields, want 3"},
		{"too many fields", "id,pm,site\n1,2.5,a,SECRET\n", connectors.Options{Schema: csvSchema}, cove.ErrInvalid,
			"bad.csv: row 1 (line 2): 4 fields, want 3"},
		{"unparsable number", "id,pm,site\n1,2.5,a\n2,1.2.SECRET,b\n", connectors.Options{Schema: csvSchema}, cove.ErrInvalid,
			`bad.csv: row 2 (line 3), column "pm": not a valid float64`},
		{"wrong type", "id,pm,site\nSECRET,2.5,a\n", connectors.Options{Schema: csvSchema}, cove.ErrInvalid,
			`bad.csv: row 1 (line 2), column "id": not a valid int64`},
		{"out of range", "id,pm,site\n99999999999999999999,2.5,SECRET\n", connectors.Options{Schema: csvSchema}, cove.ErrInvalid,
			`row 1 (line 2), column "id": not a valid int64`},
		{"null where not nullable", "id,pm,site\nNA,2.5,SECRET\n", connectors.Options{Schema: csvSchema}, cove.ErrInvalid,
			`bad.csv: row 1 (line 2), column "id": null in a column the schema says is not nullable`},
		{"invalid UTF-8", "id,pm,site\n1,2.5,SECRET\xff\n", connectors.Options{Schema: csvSchema}, cove.ErrInvalid,
			`bad.csv: row 1 (line 2), column "site": not a valid UTF-8 string`},
		{"field too long", "id,pm,site\n1,2.5,SECRET" + strings.Repeat("x", 100) + "\n", connectors.Options{Schema: csvSchema, MaxFieldBytes: 64}, cove.ErrLimit,
			`bad.csv: row 1 (line 2), column "site": field longer than 64 bytes`},
		{"record too long", "id,pm,site\n1,2.5,\"SECRET" + strings.Repeat("x\n", 200<<10) + "\"\n", connectors.Options{Schema: csvSchema, MaxFieldBytes: 64}, cove.ErrLimit,
			"bad.csv: row 1: record longer than"},
		{"bare quote", "id,pm,site\n1,2.5,SE\"CRET\n", connectors.Options{Schema: csvSchema}, cove.ErrInvalid,
			`bad.csv: row 1 (line 2, column 9): bare " in non-quoted-field`},
		{"unterminated quote", "id,pm,site\n1,2.5,\"SECRET\n", connectors.Options{Schema: csvSchema}, cove.ErrInvalid,
			"bad.csv: row 1 (line 2, column"},
		{"header differs from schema", "id,pm,place\n1,2.5,a\n", connectors.Options{Schema: csvSchema}, cove.ErrInvalid,
			`bad.csv: header column 3 is "place", the schema says "site"`},
		{"header too short", "id,pm\n1,2.5\n", connectors.Options{Schema: csvSchema}, cove.ErrInvalid,
			"bad.csv: header has 2 columns, the schema 3"},
		{"duplicate header", "a,a\n1,2\n", connectors.Options{}, cove.ErrInvalid, `bad.csv: header names column "a" twice`},
		{"empty file", "", connectors.Options{}, cove.ErrInvalid, "bad.csv: empty, no header line"},
		{"no header and no schema", "1,2\n", connectors.Options{CSV: connectors.CSVOptions{NoHeader: true}}, cove.ErrInvalid, "needs Options.Schema"},
		{"inferred, then a misfit", "a,b\n1,x\n2,y\n3.5,SECRET\n", connectors.Options{CSV: connectors.CSVOptions{InferRows: 2}}, cove.ErrInvalid,
			`bad.csv: row 3 (line 4), column "a": not a valid int64`},
		{"inferred, wrong count in sample", "a,b\n1,SECRET,3\n", connectors.Options{}, cove.ErrInvalid, "bad.csv: row 1 (line 2): 3 fields, want 2"},
		{"unknown column", "a,b\n1,2\n", connectors.Options{Columns: []string{"c"}}, cove.ErrInvalid, `bad.csv: no column "c"`},
		{"column outside schema", "id,pm,site\n1,2,a\n", connectors.Options{Schema: csvSchema, Columns: []string{"x"}}, cove.ErrInvalid, `column "x" is not in the schema`},
		{"unsupported type", "d\n1\n", connectors.Options{Schema: arrow.NewSchema([]arrow.Field{{Name: "d", Type: arrow.ListOf(arrow.PrimitiveTypes.Int64)}}, nil)}, cove.ErrInvalid,
			`bad.csv: column "d": CSV cannot decode type list`},
		{"too many rows", "a\n1\n2\n3\n", connectors.Options{MaxRows: 2}, cove.ErrLimit, "bad.csv: more than 2 rows"},
		{"batch rows over the cap", "a\n1\n", connectors.Options{BatchRows: connectors.MaxBatchRows + 1}, cove.ErrLimit, "BatchRows"},
		{"over the size limit", "a\n1\n", connectors.Options{MaxBytes: 3}, cove.ErrLimit, "bad.csv: 4 bytes, limit 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readAll(t, "bad.csv", []byte(tt.data), tt.opt)
			if !errors.Is(err, tt.sentinel) || !strings.Contains(fmt.Sprint(err), tt.mention) {
				t.Fatalf("error = %v\nwant %v mentioning %q", err, tt.sentinel, tt.mention)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error %q shows a cell's content", err)
			}
		})
	}
}

// TestCSVDialect: NA tokens, quoting, CRLF, comments, separators, no header.
func TestCSVDialect(t *testing.T) {
	tests := []struct {
		name string
		data string
		opt  connectors.Options
		want string // rows rendered as "v|v|v;"
	}{
		{"defaults", "id,pm,site\n1,2.5,a\n2,NA,\n", connectors.Options{Schema: csvSchema}, "1|2.5|a;2|null|null;"},
		{"CRLF", "id,pm,site\r\n1,2.5,a\r\n2,,b\r\n", connectors.Options{Schema: csvSchema}, "1|2.5|a;2|null|b;"},
		{"quoted separators, quotes and newlines", "id,pm,site\n1,\"3\",\"a, \"\"b\"\"\nc\"\n", connectors.Options{Schema: csvSchema}, "1|3|a, \"b\"\nc;"},
		{"own NA tokens", "id,pm,site\n1,?,NA\n", connectors.Options{Schema: csvSchema, CSV: connectors.CSVOptions{NullValues: []string{"?"}}}, "1|null|NA;"},
		{"no NA tokens", "id,pm,site\n1,2,\n", connectors.Options{Schema: csvSchema, CSV: connectors.CSVOptions{NullValues: []string{}}}, "1|2|;"},
		{"semicolons, comments, spaces", "# note\nid;pm;site\n1; 2.5; a\n", connectors.Options{Schema: csvSchema, CSV: connectors.CSVOptions{Comma: ';', Comment: '#', TrimLeadingSpace: true}}, "1|2.5|a;"},
		{"no header", "1,2.5,a\n", connectors.Options{Schema: csvSchema, CSV: connectors.CSVOptions{NoHeader: true}}, "1|2.5|a;"},
		{"lazy quotes", "id,pm,site\n1,2,a\"b\n", connectors.Options{Schema: csvSchema, CSV: connectors.CSVOptions{LazyQuotes: true}}, "1|2|a\"b;"},
		{"byte order mark", "\ufeffid,pm,site\n1,2,a\n", connectors.Options{Schema: csvSchema}, "1|2|a;"},
		{"projection", "id,pm,site\n1,2.5,a\n", connectors.Options{Schema: csvSchema, Columns: []string{"site", "id"}}, "a|1;"},
		{"inferred", "n,x,b,s\n1,1.5,true,a\n,2,false,\n", connectors.Options{}, "1|1.5|true|a;null|2|false|null;"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opt.Allocator = checked(t)
			r, err := connectors.OpenBytes("d.csv", []byte(tt.data), tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Release()
			var sb strings.Builder
			for r.Next() {
				rec := r.RecordBatch()
				for i := 0; i < int(rec.NumRows()); i++ {
					for j, col := range rec.Columns() {
						if j > 0 {
							sb.WriteString("|")
						}
						if col.IsNull(i) {
							sb.WriteString("null")
						} else {
							sb.WriteString(col.ValueStr(i))
						}
					}
					sb.WriteString(";")
				}
			}
			if err := r.Err(); err != nil {
				t.Fatal(err)
			}
			if got := sb.String(); got != tt.want {
				t.Errorf("read %q, want %q", got, tt.want)
			}
		})
	}
}

// TestIPCBadInput damages IPC files and streams: each damage is an error
// naming the file, or (where the damage hits no checked structure) a read
// of the right number of rows; never a panic or a leak.
func TestIPCBadInput(t *testing.T) {
	c := convert(t, demodata.Adult)
	for _, f := range []struct {
		name string
		data []byte
	}{{"adult.arrow", c.ipcFile}, {"adult.arrows", c.ipcStream}} {
		t.Run(f.name+"/truncated", func(t *testing.T) {
			for _, cut := range []int{0, 7, 100, len(f.data) / 2, len(f.data) - 9} {
				_, err := readAll(t, f.name, f.data[:cut], connectors.Options{})
				if !errors.Is(err, cove.ErrInvalid) || !strings.Contains(err.Error(), f.name) {
					t.Errorf("cut at %d: error %v, want ErrInvalid naming %s", cut, err, f.name)
				}
			}
		})
		t.Run(f.name+"/damaged", func(t *testing.T) {
			failed := 0
			for off := 0; off < len(f.data); off += len(f.data) / 97 {
				bad := slices.Clone(f.data)
				for i := off; i < min(off+16, len(bad)); i++ {
					bad[i] ^= 0xa5
				}
				rows, err := readAll(t, f.name, bad, connectors.Options{Columns: []string{"age", "education"}})
				switch {
				case err != nil && (!errors.Is(err, cove.ErrInvalid) || !strings.Contains(err.Error(), f.name)):
					t.Errorf("damage at %d: error %v, want ErrInvalid naming %s", off, err, f.name)
				case err != nil:
					failed++
				case rows != 32561:
					t.Errorf("damage at %d: %d rows without an error", off, rows)
				}
			}
			t.Logf("%d damaged copies refused", failed)
		})
	}
	t.Run("wrong type against the schema", func(t *testing.T) {
		sc := arrow.NewSchema([]arrow.Field{{Name: "age", Type: arrow.PrimitiveTypes.Float64}}, nil)
		_, err := readAll(t, "adult.arrow", c.ipcFile, connectors.Options{Schema: sc})
		if !errors.Is(err, cove.ErrInvalid) || !strings.Contains(err.Error(), `adult.arrow: column "age" has type int64, the schema says float64`) {
			t.Errorf("error %v", err)
		}
	})
}

// TestSchemaChecks: the catalog schema is enforced on Parquet too.
func TestSchemaChecks(t *testing.T) {
	file, b := demo(t, demodata.AirQuality)
	wrong := arrow.NewSchema([]arrow.Field{{Name: "PM2.5", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil)
	_, err := readAll(t, file, b, connectors.Options{Schema: wrong})
	if !errors.Is(err, cove.ErrInvalid) || !strings.Contains(err.Error(), file+`: column "PM2.5" has type float64, the schema says int64`) {
		t.Errorf("wrong type: error %v", err)
	}
	notNull := arrow.NewSchema([]arrow.Field{{Name: "station", Type: arrow.BinaryTypes.String}, {Name: "PM2.5", Type: arrow.PrimitiveTypes.Float64}}, nil)
	_, err = readAll(t, file, b, connectors.Options{Schema: notNull})
	if !errors.Is(err, cove.ErrInvalid) || !strings.Contains(err.Error(), file+`: row 1`) || !strings.Contains(err.Error(), `column "PM2.5": null in a column the schema says is not nullable`) {
		t.Errorf("null: error %v", err)
	}
	rows, err := readAll(t, file, b, connectors.Options{Schema: arrow.NewSchema([]arrow.Field{{Name: "station", Type: arrow.BinaryTypes.String}}, nil)})
	if err != nil || rows != 420768 {
		t.Errorf("conforming schema: %d rows, %v", rows, err)
	}
}

// TestIPCBatchRows: stored batches larger than BatchRows come in slices.
func TestIPCBatchRows(t *testing.T) {
	c := convert(t, demodata.Adult)
	mem := checked(t)
	r, err := connectors.OpenBytes("adult.arrows", c.ipcStream, connectors.Options{Columns: []string{"age"}, BatchRows: 10000, Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	var sizes []int64
	var sum int64
	for r.Next() {
		rec := r.RecordBatch()
		sizes = append(sizes, rec.NumRows())
		for _, v := range rec.Column(0).(*array.Int64).Int64Values() {
			sum += v
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sizes, []int64{10000, 10000, 10000, 2561}) {
		t.Errorf("batch sizes %v", sizes)
	}
	if sum != 1256257 {
		t.Errorf("sum of ages %d, want 1256257", sum)
	}
}
