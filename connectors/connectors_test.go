package connectors_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/covedata/cove"
	"github.com/covedata/cove/connectors"
	"github.com/covedata/cove/demodata"
)

var airColumns = []string{
	"No", "year", "month", "day", "hour", "PM2.5", "PM10", "SO2", "NO2", "CO", "O3",
	"TEMP", "PRES", "DEWP", "RAIN", "wd", "WSPM", "station",
}

func demo(t testing.TB, name string) (string, []byte) {
	t.Helper()
	d, err := demodata.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	b, err := demodata.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	return d.File, b
}

// drain reads r to the end and returns the batch sizes.
func drain(t *testing.T, r *connectors.Reader, want []string) []int64 {
	t.Helper()
	var sizes []int64
	for r.Next() {
		rec := r.RecordBatch()
		if got := names(rec.Schema()); !slices.Equal(got, want) {
			t.Fatalf("batch columns %q, want %q", got, want)
		}
		sizes = append(sizes, rec.NumRows())
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return sizes
}

func names(sc *arrow.Schema) []string {
	var out []string
	for _, f := range sc.Fields() {
		out = append(out, f.Name)
	}
	return out
}

func sum(v []int64) (n int64) {
	for _, x := range v {
		n += x
	}
	return n
}

func TestProjection(t *testing.T) {
	tests := []struct {
		name    string
		dataset string
		columns []string
		want    []string
		types   []arrow.Type
	}{
		{"all air columns", demodata.AirQuality, nil, airColumns, nil},
		{"two air columns reordered", demodata.AirQuality, []string{"station", "PM2.5"}, []string{"station", "PM2.5"},
			[]arrow.Type{arrow.STRING, arrow.FLOAT64}},
		{"three air columns", demodata.AirQuality, []string{"wd", "No", "TEMP"}, []string{"wd", "No", "TEMP"},
			[]arrow.Type{arrow.STRING, arrow.INT64, arrow.FLOAT64}},
		{"adult last and first", demodata.Adult, []string{"income", "age"}, []string{"income", "age"},
			[]arrow.Type{arrow.STRING, arrow.INT64}},
		{"adult hyphenated", demodata.Adult, []string{"education-num"}, []string{"education-num"}, []arrow.Type{arrow.INT64}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
			defer mem.AssertSize(t, 0)
			file, b := demo(t, tt.dataset)
			ds, _ := demodata.Lookup(tt.dataset)

			r, err := connectors.OpenBytes(file, b, connectors.Options{Columns: tt.columns, Allocator: mem})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Release()
			if got := names(r.Schema()); !slices.Equal(got, tt.want) {
				t.Fatalf("schema columns %q, want %q", got, tt.want)
			}
			for i, typ := range tt.types {
				if got := r.Schema().Field(i).Type.ID(); got != typ {
					t.Errorf("column %s has type %s, want %s", tt.want[i], got, typ)
				}
			}
			sizes := drain(t, r, tt.want)
			if got := sum(sizes); got != ds.Rows {
				t.Errorf("read %d rows, want %d", got, ds.Rows)
			}
			snap := r.Snapshot()
			if snap.SHA256 != ds.SHA256 || snap.Bytes != int64(len(b)) || snap.Rows != ds.Rows {
				t.Errorf("Snapshot() = %+v, want sha256 %s, %d bytes, %d rows", snap, ds.SHA256, len(b), ds.Rows)
			}
		})
	}
}

func TestBatchRows(t *testing.T) {
	tests := []struct {
		name      string
		dataset   string
		batchRows int
		want      int64 // size of every batch but the last
	}{
		{"default", demodata.AirQuality, 0, connectors.DefaultBatchRows},
		{"1000 across row groups", demodata.AirQuality, 1000, 1000},
		{"one row group", demodata.AirQuality, 35064, 35064},
		{"larger than a row group", demodata.AirQuality, 100000, 100000},
		{"larger than the file", demodata.Adult, 1 << 20, 32561},
		{"tiny", demodata.Adult, 7, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
			defer mem.AssertSize(t, 0)
			file, b := demo(t, tt.dataset)
			ds, _ := demodata.Lookup(tt.dataset)
			cols := []string{"age"}
			if tt.dataset == demodata.AirQuality {
				cols = []string{"No", "wd"}
			}
			r, err := connectors.OpenBytes(file, b, connectors.Options{Columns: cols, BatchRows: tt.batchRows, Allocator: mem})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Release()
			sizes := drain(t, r, cols)
			if got := sum(sizes); got != ds.Rows {
				t.Fatalf("read %d rows, want %d", got, ds.Rows)
			}
			for i, n := range sizes {
				last := i == len(sizes)-1
				if (!last && n != tt.want) || (last && (n < 1 || n > tt.want)) {
					t.Fatalf("batch %d of %d has %d rows, want %d", i, len(sizes), n, tt.want)
				}
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	file, b := demo(t, demodata.Adult)
	corruptFooter := slices.Clone(b)
	copy(corruptFooter[len(b)-200:], make([]byte, 100))
	tests := []struct {
		name     string
		file     string
		data     []byte
		opt      connectors.Options
		sentinel error
		mention  []string // substrings of the message
	}{
		{"unknown column", file, b, connectors.Options{Columns: []string{"age", "salary"}}, cove.ErrInvalid, []string{`"salary"`, file}},
		{"column asked twice", file, b, connectors.Options{Columns: []string{"age", "age"}}, cove.ErrInvalid, []string{`"age"`, "twice"}},
		{"negative batch", file, b, connectors.Options{BatchRows: -1}, cove.ErrInvalid, []string{file}},
		{"negative limit", file, b, connectors.Options{MaxBytes: -1}, cove.ErrInvalid, []string{file}},
		{"over the size limit", file, b, connectors.Options{MaxBytes: 1000}, cove.ErrLimit, []string{file, "limit 1000"}},
		{"unsupported format", "adult.txt", b, connectors.Options{}, cove.ErrInvalid, []string{"adult.txt", "unsupported format"}},
		{"no extension", "adult", b, connectors.Options{}, cove.ErrInvalid, []string{"unsupported format"}},
		{"truncated", file, b[:len(b)/2], connectors.Options{}, cove.ErrInvalid, []string{file, "corrupt or truncated"}},
		{"footer only cut", file, b[:len(b)-4], connectors.Options{}, cove.ErrInvalid, []string{file}},
		{"empty", file, nil, connectors.Options{}, cove.ErrInvalid, []string{file}},
		{"corrupt footer", file, corruptFooter, connectors.Options{}, cove.ErrInvalid, []string{file}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
			defer mem.AssertSize(t, 0)
			tt.opt.Allocator = mem
			r, err := connectors.OpenBytes(tt.file, tt.data, tt.opt)
			if err == nil {
				// Some damage only shows when pages are decoded.
				for r.Next() {
				}
				err = r.Err()
				r.Release()
			}
			if !errors.Is(err, tt.sentinel) {
				t.Fatalf("error = %v, want %v", err, tt.sentinel)
			}
			for _, m := range tt.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
}

// TestCorruptPages damages the body of the file, leaving the footer intact.
// The demo data's pages are zstd frames with checksums, so the damage must be
// reported as ErrInvalid naming the file, without a panic or a leak.
func TestCorruptPages(t *testing.T) {
	file, b := demo(t, demodata.Adult)
	for _, frac := range []int{2, 5, 10, 20, 50, 80, 95} {
		mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
		damaged := slices.Clone(b)
		off := len(b) * frac / 100
		for i := off; i < off+64; i++ {
			damaged[i] ^= 0x5a
		}
		r, err := connectors.OpenBytes(file, damaged, connectors.Options{Allocator: mem})
		if err == nil {
			for r.Next() {
			}
			err = r.Err()
			r.Release()
		}
		if !errors.Is(err, cove.ErrInvalid) || !strings.Contains(err.Error(), file) {
			t.Errorf("damage at %d%%: error %v, want ErrInvalid naming %s", frac, err, file)
		}
		mem.AssertSize(t, 0)
	}
}

func TestOpenFile(t *testing.T) {
	_, b := demo(t, demodata.AirQuality)
	dir := t.TempDir()
	path := filepath.Join(dir, "air.parquet")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(b)

	t.Run("reads and hashes", func(t *testing.T) {
		mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
		defer mem.AssertSize(t, 0)
		r, err := connectors.OpenFile(path, connectors.Options{Columns: []string{"PM10"}, Allocator: mem})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Release()
		if got := sum(drain(t, r, []string{"PM10"})); got != 420768 {
			t.Errorf("read %d rows, want 420768", got)
		}
		snap := r.Snapshot()
		if snap.SHA256 != hex.EncodeToString(want[:]) || snap.Bytes != int64(len(b)) || snap.Rows != 420768 {
			t.Errorf("Snapshot() = %+v", snap)
		}
	})
	t.Run("size limit", func(t *testing.T) {
		_, err := connectors.OpenFile(path, connectors.Options{MaxBytes: int64(len(b)) - 1})
		if !errors.Is(err, cove.ErrLimit) || !strings.Contains(err.Error(), path) {
			t.Errorf("error = %v, want ErrLimit naming the file", err)
		}
	})
	t.Run("exactly at the limit", func(t *testing.T) {
		r, err := connectors.OpenFile(path, connectors.Options{MaxBytes: int64(len(b))})
		if err != nil {
			t.Fatal(err)
		}
		r.Release()
	})
	t.Run("missing", func(t *testing.T) {
		_, err := connectors.OpenFile(filepath.Join(dir, "nope.parquet"), connectors.Options{})
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("error = %v, want fs.ErrNotExist", err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		sub := filepath.Join(dir, "d.parquet")
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		_, err := connectors.OpenFile(sub, connectors.Options{})
		if !errors.Is(err, cove.ErrInvalid) {
			t.Errorf("error = %v, want ErrInvalid", err)
		}
	})
	t.Run("ReadSchema", func(t *testing.T) {
		sc, err := connectors.ReadSchema(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := names(sc); !slices.Equal(got, airColumns) {
			t.Errorf("ReadSchema columns %q, want %q", got, airColumns)
		}
		if f, _ := sc.FieldsByName("wd"); len(f) != 1 || f[0].Type.ID() != arrow.STRING || !f[0].Nullable {
			t.Errorf("wd field = %v, want nullable utf8", f)
		}
		if _, err := connectors.ReadSchema(filepath.Join(dir, "air.txt")); !errors.Is(err, cove.ErrInvalid) {
			t.Errorf("ReadSchema(.txt) error = %v, want ErrInvalid", err)
		}
		bad := filepath.Join(dir, "bad.parquet")
		if err := os.WriteFile(bad, b[:1000], 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := connectors.ReadSchema(bad); !errors.Is(err, cove.ErrInvalid) || !strings.Contains(err.Error(), bad) {
			t.Errorf("ReadSchema(truncated) error = %v, want ErrInvalid naming the file", err)
		}
	})
}

// TestFileChanged: a file modified after it was hashed must not pass as the
// snapshot.
func TestFileChanged(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	_, b := demo(t, demodata.Adult)
	path := filepath.Join(t.TempDir(), "adult.parquet")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := connectors.OpenFile(path, connectors.Options{Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	for r.Next() {
	}
	if err := r.Err(); !errors.Is(err, cove.ErrInvalid) || !strings.Contains(err.Error(), "changed") {
		t.Errorf("Err() = %v, want ErrInvalid saying the file changed", err)
	}
}

func TestRetainRelease(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	file, b := demo(t, demodata.Adult)
	r, err := connectors.OpenBytes(file, b, connectors.Options{Columns: []string{"sex"}, BatchRows: 100, Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	if r.RecordBatch() != nil {
		t.Error("RecordBatch() before Next is not nil")
	}
	r.Retain()
	if !r.Next() {
		t.Fatal(r.Err())
	}
	rec := r.RecordBatch()
	rec.Retain() // outlives the reader
	r.Release()
	if !r.Next() {
		t.Fatal("reader closed after the first of two Releases")
	}
	r.Release()
	if rec.NumRows() != 100 || rec.Column(0).Len() != 100 {
		t.Errorf("retained batch has %d rows", rec.NumRows())
	}
	rec.Release()
}
