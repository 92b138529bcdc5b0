package connectors_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"math"
	"sort"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/csv"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/covedata/cove/connectors"
)

// converted holds a demo dataset in every format, made from its Parquet.
type converted struct {
	schema    *arrow.Schema
	parquet   []byte
	csv       []byte // header, "NA" for null
	ipcFile   []byte
	ipcStream []byte
}

var (
	convertOnce sync.Map // dataset name -> *sync.Once
	convertMemo sync.Map // dataset name -> *converted
)

// convert returns the demo dataset name as CSV, IPC file and IPC stream,
// written by arrow-go's writers from the Parquet batches.
func convert(t testing.TB, name string) *converted {
	t.Helper()
	once, _ := convertOnce.LoadOrStore(name, &sync.Once{})
	once.(*sync.Once).Do(func() {
		_, b := demo(t, name)
		r, err := connectors.OpenBytes(name+".parquet", b, connectors.Options{BatchRows: 50000})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Release()
		c := &converted{schema: r.Schema(), parquet: b}
		var csvBuf, fileBuf, streamBuf bytes.Buffer
		cw := csv.NewWriter(&csvBuf, r.Schema(), csv.WithHeader(true), csv.WithNullWriter("NA"))
		fw, err := ipc.NewFileWriter(&fileBuf, ipc.WithSchema(r.Schema()))
		if err != nil {
			t.Fatal(err)
		}
		sw := ipc.NewWriter(&streamBuf, ipc.WithSchema(r.Schema()))
		for r.Next() {
			rec := r.RecordBatch()
			for _, err := range []error{cw.Write(rec), fw.Write(rec), sw.Write(rec)} {
				if err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		cw.Flush()
		for _, err := range []error{cw.Error(), fw.Close(), sw.Close()} {
			if err != nil {
				t.Fatal(err)
			}
		}
		c.csv, c.ipcFile, c.ipcStream = csvBuf.Bytes(), fileBuf.Bytes(), streamBuf.Bytes()
		convertMemo.Store(name, c)
	})
	c, ok := convertMemo.Load(name)
	if !ok {
		t.Fatalf("converting %s failed earlier", name)
	}
	return c.(*converted)
}

// fingerprint is a digest of every value and null of each column, and the
// row count: two readers agree exactly when their fingerprints do.
type fingerprint struct {
	Rows    int64
	Columns []string // name=hex sha256
}

func fingerprintOf(t testing.TB, r *connectors.Reader) fingerprint {
	t.Helper()
	hs := make([]hash.Hash, r.Schema().NumFields())
	for i := range hs {
		hs[i] = sha256.New()
	}
	var fp fingerprint
	for r.Next() {
		rec := r.RecordBatch()
		fp.Rows += rec.NumRows()
		for i, col := range rec.Columns() {
			hashColumn(t, hs[i], col)
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	for i, f := range r.Schema().Fields() {
		fp.Columns = append(fp.Columns, f.Name+"="+hex.EncodeToString(hs[i].Sum(nil))[:16])
	}
	return fp
}

func hashColumn(t testing.TB, out hash.Hash, col arrow.Array) {
	var buf [9]byte
	h := bufio.NewWriterSize(out, 64<<10)
	defer h.Flush()
	for i := 0; i < col.Len(); i++ {
		if col.IsNull(i) {
			h.WriteByte(0)
			continue
		}
		buf[0] = 1
		switch a := col.(type) {
		case *array.Int64:
			binary.LittleEndian.PutUint64(buf[1:], uint64(a.Value(i)))
			h.Write(buf[:])
		case *array.Float64:
			binary.LittleEndian.PutUint64(buf[1:], math.Float64bits(a.Value(i)))
			h.Write(buf[:])
		case *array.String:
			binary.LittleEndian.PutUint64(buf[1:], uint64(len(a.Value(i))))
			h.Write(buf[:])
			h.WriteString(a.Value(i))
		case *array.Boolean:
			if a.Value(i) {
				buf[1] = 1
			} else {
				buf[1] = 0
			}
			h.Write(buf[:2])
		default:
			t.Fatalf("fingerprint: type %s", col.DataType())
		}
	}
}

// stationMeans computes, natively, the mean PM2.5 of each station (sum and
// count exact in float64 order of rows) from a reader of "station", "PM2.5".
func stationMeans(t testing.TB, r *connectors.Reader) []string {
	t.Helper()
	sums, counts := map[string]float64{}, map[string]int64{}
	for r.Next() {
		rec := r.RecordBatch()
		st, pm := rec.Column(0).(*array.String), rec.Column(1).(*array.Float64)
		for i := 0; i < int(rec.NumRows()); i++ {
			if pm.IsValid(i) {
				sums[st.Value(i)] += pm.Value(i)
				counts[st.Value(i)]++
			}
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	var out []string
	for s, n := range counts {
		out = append(out, fmt.Sprintf("%s %d %.17g", s, n, sums[s]/float64(n)))
	}
	sort.Strings(out)
	return out
}

// adultCounts counts the Adult rows per (sex, income) from a reader of
// "sex", "income", "age"; it also sums ages.
func adultCounts(t testing.TB, r *connectors.Reader) []string {
	t.Helper()
	counts, ages := map[string]int64{}, map[string]int64{}
	for r.Next() {
		rec := r.RecordBatch()
		sex, inc, age := rec.Column(0).(*array.String), rec.Column(1).(*array.String), rec.Column(2).(*array.Int64)
		for i := 0; i < int(rec.NumRows()); i++ {
			k := sex.Value(i) + "/" + inc.Value(i)
			counts[k]++
			ages[k] += age.Value(i)
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	var out []string
	for k, n := range counts {
		out = append(out, fmt.Sprintf("%s %d %d", k, n, ages[k]))
	}
	sort.Strings(out)
	return out
}

func checked(t testing.TB) *memory.CheckedAllocator {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return mem
}

func sha256hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
