package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/covedata/cove/connectors"
	"github.com/covedata/cove/demodata"
)

// The mode benchmarks' data: the Beijing air-quality table replicated, with
// fresh privacy units per replica, written once per test binary into a
// directory removed when the binary ends (removeModeData, from TestMain).
//
// The station column is written as a dictionary (its Arrow schema stored
// in the file), so that it reads back as dictionary<utf8>: Parquet stores a
// low-cardinality string column dictionary-encoded anyway, and both Cove
// and the native baselines read the same file through the same connector.

// beijing is the air-quality table held in memory: the columns the mode
// benchmarks write, in their order, and each row's station code.
type beijing struct {
	rows    int
	station []int32 // index into stations
	ints    map[string][]int64
	floats  map[string][]float64
	valid   map[string][]bool // of the float columns
}

var beijingInts = []string{"year", "month", "day", "hour"}
var beijingFloats = []string{"PM2.5", "TEMP", "DEWP", "WSPM"}

var (
	beijingOnce sync.Once
	beijingData *beijing
	beijingErr  error
)

// loadBeijing decodes the embedded table once.
func loadBeijing() (*beijing, error) {
	beijingOnce.Do(func() {
		src, err := demodata.Open(demodata.AirQuality)
		if err != nil {
			beijingErr = err
			return
		}
		cols := append(append([]string{"station"}, beijingInts...), beijingFloats...)
		r, err := connectors.OpenBytes(demodata.AirQuality+".parquet", src, connectors.Options{Columns: cols})
		if err != nil {
			beijingErr = err
			return
		}
		defer r.Release()
		code := map[string]int32{}
		for i, s := range demodata.AirQualityStations() {
			code[s] = int32(i)
		}
		t := &beijing{ints: map[string][]int64{}, floats: map[string][]float64{}, valid: map[string][]bool{}}
		for r.Next() {
			rec := r.RecordBatch()
			st := rec.Column(0).(*array.String)
			for i := range st.Len() {
				c, ok := code[st.Value(i)]
				if !ok {
					beijingErr = fmt.Errorf("unknown station %q", st.Value(i))
					return
				}
				t.station = append(t.station, c)
			}
			for j, c := range beijingInts {
				t.ints[c] = append(t.ints[c], rec.Column(1+j).(*array.Int64).Int64Values()...)
			}
			for j, c := range beijingFloats {
				a := rec.Column(1 + len(beijingInts) + j).(*array.Float64)
				for i := range a.Len() {
					t.floats[c] = append(t.floats[c], a.Value(i))
					t.valid[c] = append(t.valid[c], a.IsValid(i))
				}
			}
			t.rows += int(rec.NumRows())
		}
		if beijingErr = r.Err(); beijingErr == nil {
			beijingData = t
		}
	})
	return beijingData, beijingErr
}

// modeFile is a written benchmark file.
type modeFile struct {
	path string
	rows int64
}

var (
	modeDataMu   sync.Mutex
	modeDataDir  string
	modeDataSets = map[string]modeFile{}
)

// removeModeData removes the mode benchmarks' files (TestMain calls it).
func removeModeData() {
	modeDataMu.Lock()
	defer modeDataMu.Unlock()
	if modeDataDir != "" {
		os.RemoveAll(modeDataDir)
	}
}

// unitRows is the number of consecutive rows of a replica that share a uid
// in the plan files (BenchmarkPlanModeBounded's privacy unit).
const unitRows = 10

// modeData returns a Parquet file of the air-quality table replicated to
// rows rows (whole replicas, then part of one), with extra columns
//   - replica: the copy a row belongs to (0, 1, ...);
//   - uid (when withUID): a unit id shared by unitRows consecutive rows of
//     a replica, unique across replicas;
//
// then station (dictionary), year, month, day, hour and the given float
// columns. It is written once per (rows, columns) for the test binary.
func modeData(b *testing.B, rows int64, withUID bool, floats []string) modeFile {
	b.Helper()
	key := fmt.Sprint(rows, withUID, floats)
	modeDataMu.Lock()
	defer modeDataMu.Unlock()
	if f, ok := modeDataSets[key]; ok {
		return f
	}
	if modeDataDir == "" {
		dir, err := os.MkdirTemp("", "cove-bench-modes-")
		if err != nil {
			b.Fatal(err)
		}
		modeDataDir = dir
	}
	t, err := loadBeijing()
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(modeDataDir, fmt.Sprintf("air-%d.parquet", len(modeDataSets)))
	if err := writeModeData(path, t, rows, withUID, floats); err != nil {
		b.Fatal(err)
	}
	f := modeFile{path: path, rows: rows}
	modeDataSets[key] = f
	return f
}

func writeModeData(path string, t *beijing, rows int64, withUID bool, floats []string) error {
	mem := memory.NewGoAllocator()
	dictType := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
	fields := []arrow.Field{{Name: "replica", Type: arrow.PrimitiveTypes.Int64}}
	if withUID {
		fields = append(fields, arrow.Field{Name: "uid", Type: arrow.PrimitiveTypes.Int64})
	}
	fields = append(fields, arrow.Field{Name: "station", Type: dictType})
	for _, c := range beijingInts {
		fields = append(fields, arrow.Field{Name: c, Type: arrow.PrimitiveTypes.Int64})
	}
	for _, c := range floats {
		fields = append(fields, arrow.Field{Name: c, Type: arrow.PrimitiveTypes.Float64, Nullable: true})
	}
	schema := arrow.NewSchema(fields, nil)

	sb := array.NewStringBuilder(mem)
	sb.AppendValues(demodata.AirQualityStations(), nil)
	dict := sb.NewArray()
	sb.Release()
	defer dict.Release()

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	// The id columns are written plain (zstd compresses them well): a
	// dictionary of 100,000 ids per row group decodes slowly, and arrow-go
	// v18.8.0's DELTA_BINARY_PACKED decoder leaks a buffer from the
	// allocator (deltaBitPackDecoder.initBlock), which the checked
	// allocator reports.
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd), parquet.WithMaxRowGroupLength(1<<20),
		parquet.WithDictionaryFor("replica", false), parquet.WithDictionaryFor("uid", false))
	w, err := pqarrow.NewFileWriter(schema, f, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return err
	}
	perReplica := int64(t.rows)
	unitsPerReplica := (perReplica + unitRows - 1) / unitRows
	const batch = 1 << 16
	for start := int64(0); start < rows; start += batch {
		n := min(batch, rows-start)
		var cols []arrow.Array
		rb := array.NewInt64Builder(mem)
		ub := array.NewInt64Builder(mem)
		ib := array.NewInt32Builder(mem)
		intB := make([]*array.Int64Builder, len(beijingInts))
		for j := range intB {
			intB[j] = array.NewInt64Builder(mem)
		}
		floatB := make([]*array.Float64Builder, len(floats))
		for j := range floatB {
			floatB[j] = array.NewFloat64Builder(mem)
		}
		for r := start; r < start+n; r++ {
			rep, i := r/perReplica, int(r%perReplica)
			rb.Append(rep)
			ub.Append(rep*unitsPerReplica + int64(i)/unitRows)
			ib.Append(t.station[i])
			for j, c := range beijingInts {
				intB[j].Append(t.ints[c][i])
			}
			for j, c := range floats {
				if t.valid[c][i] {
					floatB[j].Append(t.floats[c][i])
				} else {
					floatB[j].AppendNull()
				}
			}
		}
		cols = append(cols, rb.NewArray())
		if withUID {
			cols = append(cols, ub.NewArray())
		}
		idx := ib.NewArray()
		cols = append(cols, array.NewDictionaryArray(dictType, idx, dict))
		idx.Release()
		for _, bld := range intB {
			cols = append(cols, bld.NewArray())
			bld.Release()
		}
		for _, bld := range floatB {
			cols = append(cols, bld.NewArray())
			bld.Release()
		}
		rb.Release()
		ub.Release()
		ib.Release()
		rec := array.NewRecordBatch(schema, cols, n)
		for _, c := range cols {
			c.Release()
		}
		err := w.WriteBuffered(rec)
		rec.Release()
		if err != nil {
			w.Close()
			return err
		}
	}
	return w.Close()
}
